"""pinset: certificate and public-key (SPKI) pinning, end to end.

The public names live in private-ish modules and are re-exported here::

    policy = pinset.load_policy("pinset.toml")
    ctx = pinset.ssl_context(policy)          # hand it to requests/httpx/aiohttp/urllib3/asyncio
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from pinset._lazy import lazy_attributes

if TYPE_CHECKING:
    from pinset.enforce import PinnedSSLContext, ssl_context
    from pinset.errors import (
        ChainError,
        ConfigError,
        NetworkError,
        PinFormatError,
        PinMismatchError,
        PinsetError,
    )
    from pinset.hosts import canonical_host
    from pinset.pins import Pin, spki_pin
    from pinset.policy import DomainRule, Policy
    from pinset.verdict import Verdict, evaluate

# Each public name loads its module on first use (PEP 562), so ``import pinset.cli`` or
# ``import pinset.pins`` does not pay for the pinned context (ssl, logging, threading) or
# the verdict: ``pinset pin FILE`` starts faster (docs/performance.md).
if not TYPE_CHECKING:  # type checkers read the imports above: no Any for a typo
    __getattr__, __dir__ = lazy_attributes(
        globals(),
        {
            "pinset.enforce": ("PinnedSSLContext", "ssl_context"),
            "pinset.errors": (
                "ChainError",
                "ConfigError",
                "NetworkError",
                "PinFormatError",
                "PinMismatchError",
                "PinsetError",
            ),
            "pinset.hosts": ("canonical_host",),
            "pinset.pins": ("Pin", "spki_pin"),
            "pinset.policy": ("DomainRule", "Policy"),
            "pinset.verdict": ("Verdict", "evaluate"),
        },
    )


# The one place the version is written: pyproject.toml reads it from here.
__version__ = "0.1.0"

__all__ = [
    "ChainError",
    "ConfigError",
    "DomainRule",
    "NetworkError",
    "Pin",
    "PinFormatError",
    "PinMismatchError",
    "PinnedSSLContext",
    "PinsetError",
    "Policy",
    "Verdict",
    "__version__",
    "canonical_host",
    "evaluate",
    "load_policy",
    "spki_pin",
    "ssl_context",
]


def load_policy(path: str | os.PathLike[str]) -> Policy:
    """Read a policy file (``.toml`` or ``.json``): :func:`pinset.policyfile.load`.

    The policy-file reader is imported on first use, so ``import pinset`` stays light.
    """
    from pinset import policyfile

    return policyfile.load(path)
