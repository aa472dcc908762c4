"""TrustKit's configuration as Swift source: ``let trustKitConfig: [String: Any]``.

The format ``trustkit-swift`` (``dumps(policy, swift=True)`` in
:mod:`pinset.formats._apple.trustkit`); the same dictionary as the Info.plist export.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pinset.formats._apple._trustkit_export import trustkit_config
from pinset.formats._apple._trustkit_keys import (
    DOMAIN_KEYS,
    EXCLUDE_KEY,
    GLOBAL_KEYS,
    PINNED,
    SWIZZLE,
)
from pinset.policy import Policy

__all__ = ["dumps_swift"]

# Swift names of the keys: TrustKit exports each as a kTSK… constant.
_SWIFT = {key: "k" + key for key in (*GLOBAL_KEYS, *DOMAIN_KEYS)}
_SWIFT[EXCLUDE_KEY] = "kTSKExcludeSubdomainFromParentPolicy"


def dumps_swift(policy: Policy, *, swizzle_network_delegates: bool = True) -> str:
    """A Swift ``let trustKitConfig: [String: Any]`` for ``TrustKit.initSharedInstance``."""
    config = trustkit_config(policy, swizzle_network_delegates)
    out = ["let trustKitConfig: [String: Any] = ["]
    out.append(f"    {_SWIFT[SWIZZLE]}: {_swift(config[SWIZZLE])},")
    out.append(f"    {_SWIFT[PINNED]}: [")
    for name, entry in config[PINNED].items():
        out.append(f"        {_swift(name)}: [")
        for key in sorted(entry):
            value = entry[key]
            if isinstance(value, list):
                out.append(f"            {_SWIFT[key]}: [")
                out.extend(f"                {_swift(v)}," for v in value)
                out.append("            ],")
            else:
                out.append(f"            {_SWIFT[key]}: {_swift(value)},")
        out.append("        ],")
    out.append("    ],")
    out.append("]")
    return "\n".join(out) + "\n"


def _swift(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    # JSON string escapes (\" \\ \n \uXXXX) are Swift escapes too, except \u.
    text = json.dumps(str(value), ensure_ascii=False)
    return re.sub(r"\\u([0-9a-fA-F]{4})", r"\\u{\1}", text)
