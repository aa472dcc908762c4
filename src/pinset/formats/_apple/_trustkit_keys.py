"""TrustKit's Info.plist keys, and the readers its current and legacy formats share.

The exclusion key is spelled ``kSKExcludeSubdomainFromParentPolicy`` in TrustKit's
sources (sic), and that string is what the plist must contain.
"""

from __future__ import annotations

from typing import Any

from pinset.formats._apple._plist import KeyPath, PlistText
from pinset.formats._importing import host_name, refuse_build_setting
from pinset.hosts import is_ip_literal

__all__ = [
    "ALGORITHMS",
    "CONFIG",
    "DEFAULT_REPORT_URI",
    "DISABLE_DEFAULT",
    "DOMAIN_KEYS",
    "ENFORCE",
    "EXCLUDE_KEY",
    "EXPIRATION",
    "FORMAT",
    "GLOBAL_KEYS",
    "HASHES",
    "IGNORE_USER_ANCHORS",
    "INCLUDE",
    "LEGACY",
    "PINNED",
    "REPORT_URIS",
    "SWIZZLE",
    "domain_name",
    "strings",
]

FORMAT = "trustkit"
CONFIG = "TSKConfiguration"
LEGACY = "TSKPublicKeyPins"
SWIZZLE = "TSKSwizzleNetworkDelegates"
PINNED = "TSKPinnedDomains"
IGNORE_USER_ANCHORS = "TSKIgnorePinningForUserDefinedTrustAnchors"
HASHES = "TSKPublicKeyHashes"
INCLUDE = "TSKIncludeSubdomains"
ENFORCE = "TSKEnforcePinning"
REPORT_URIS = "TSKReportUris"
DISABLE_DEFAULT = "TSKDisableDefaultReportUri"
EXPIRATION = "TSKExpirationDate"
ALGORITHMS = "TSKPublicKeyAlgorithms"
EXCLUDE_KEY = "kSKExcludeSubdomainFromParentPolicy"
DEFAULT_REPORT_URI = "https://overmind.datatheorem.com/trustkit/report"
GLOBAL_KEYS = (SWIZZLE, PINNED, IGNORE_USER_ANCHORS)
DOMAIN_KEYS = (
    HASHES, INCLUDE, ENFORCE, REPORT_URIS, DISABLE_DEFAULT, EXPIRATION, EXCLUDE_KEY, ALGORITHMS
)  # fmt: skip


def domain_name(plist: PlistText, path: KeyPath, raw: str) -> str:
    name = host_name(raw, source=plist.source, line=plist.line(path), key=PINNED)
    if is_ip_literal(name) or "." not in name:
        raise plist.error(
            f"TrustKit rejects the domain {raw!r}: it needs a name under a public suffix",
            path,
            hint="pin a DNS name such as api.example.com",
        )
    return name


def strings(plist: PlistText, path: KeyPath, value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise plist.error(f"{path[-1]} must be an array of strings", path)
    for index, text in enumerate(value):
        refuse_build_setting(
            text, source=plist.source, line=plist.line((*path, index)), key=str(path[-1])
        )
    return list(value)
