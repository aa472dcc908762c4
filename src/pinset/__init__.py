"""pinset: certificate and public-key (SPKI) pinning, end to end.

The public names live in private-ish modules and are re-exported here::

    policy = pinset.load_policy("pinset.toml")
    ctx = pinset.ssl_context(policy)          # hand it to requests/httpx/aiohttp/urllib3/asyncio
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Any

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

# Each public name and the module that defines it. They load on first use (PEP 562), so
# ``import pinset.cli`` or ``import pinset.pins`` does not pay for the pinned context (ssl,
# logging, threading) or the verdict: ``pinset pin FILE`` starts faster (docs/performance.md).
_LAZY = {
    "PinnedSSLContext": "pinset.enforce",
    "ssl_context": "pinset.enforce",
    "ChainError": "pinset.errors",
    "ConfigError": "pinset.errors",
    "NetworkError": "pinset.errors",
    "PinFormatError": "pinset.errors",
    "PinMismatchError": "pinset.errors",
    "PinsetError": "pinset.errors",
    "canonical_host": "pinset.hosts",
    "Pin": "pinset.pins",
    "spki_pin": "pinset.pins",
    "DomainRule": "pinset.policy",
    "Policy": "pinset.policy",
    "Verdict": "pinset.verdict",
    "evaluate": "pinset.verdict",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'pinset' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # the next lookup is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


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
