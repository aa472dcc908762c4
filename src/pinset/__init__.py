"""pinset: certificate and public-key (SPKI) pinning, end to end.

The public names live in private-ish modules and are re-exported here::

    policy = pinset.Policy.load("pinset.toml")
    ctx = pinset.ssl_context(policy)          # hand it to requests/httpx/aiohttp/urllib3/asyncio
"""

from pinset.enforce import ssl_context
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

__version__ = "0.1.0"

__all__ = [
    "ChainError",
    "ConfigError",
    "DomainRule",
    "NetworkError",
    "Pin",
    "PinFormatError",
    "PinMismatchError",
    "PinsetError",
    "Policy",
    "Verdict",
    "__version__",
    "canonical_host",
    "evaluate",
    "spki_pin",
    "ssl_context",
]
