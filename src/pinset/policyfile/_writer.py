"""Write a :class:`~pinset.policy.Policy` as the policy file: a mapping, JSON or ``pinset.toml``.

Keys are the ones :mod:`pinset.policyfile._reader` reads; a value equal to the
``[defaults]`` is left out of a ``[[domain]]`` table. The TOML text is deterministic
and reads back equal.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pinset.policy import Policy

__all__ = ["to_dict", "to_json", "to_toml"]


def to_dict(policy: Policy) -> dict[str, Any]:
    """:func:`pinset.policyfile.to_dict`: keys as in the policy file."""
    defaults: dict[str, Any] = {
        "enforce": policy.enforce,
        "include-subdomains": policy.include_subdomains,
    }
    if policy.report_uris:
        defaults["report-uris"] = list(policy.report_uris)
    if policy.require_ct:
        defaults["require-ct"] = True
    domains = []
    for rule in policy.rules:
        entry: dict[str, Any] = {"name": rule.pattern}
        # A "*." name already says which subdomains it covers.
        if not rule.one_label and rule.include_subdomains != policy.include_subdomains:
            entry["include-subdomains"] = rule.include_subdomains
        if rule.exclude:
            entry["exclude"] = True
        if rule.expiration is not None:
            entry["expiration"] = rule.expiration
        if rule.enforce != policy.enforce:
            entry["enforce"] = rule.enforce
        if rule.allow_single_pin:
            entry["allow-single-pin"] = True
        if rule.placeholder_only:
            entry["placeholder-only"] = True
        if rule.require_ct != policy.require_ct and not rule.exclude:
            entry["require-ct"] = rule.require_ct
        if rule.report_uris != policy.report_uris:
            entry["report-uris"] = list(rule.report_uris)
        if rule.pins:
            entry["pins"] = [str(p) for p in rule.pins]
        domains.append(entry)
    data: dict[str, Any] = {"defaults": defaults, "domain": domains}
    debug = policy.debug_overrides
    if debug is not None:
        data["debug-overrides"] = {
            "trust-anchors": list(debug.trust_anchors),
            "override-pins": debug.override_pins,
        }
    if policy.allow_signing_key_rotation:
        data["updates"] = {"allow-signing-key-rotation": True}
    return data


def to_json(policy: Policy) -> str:
    """:func:`pinset.policyfile.dumps`: JSON text, TOML keys."""
    data = to_dict(policy)
    for entry in data["domain"]:
        if "expiration" in entry:
            entry["expiration"] = entry["expiration"].isoformat()
    return json.dumps(data, indent=2) + "\n"


def to_toml(policy: Policy) -> str:
    """:func:`pinset.policyfile.dumps`: deterministic ``pinset.toml`` text."""
    data = to_dict(policy)
    out = ["[defaults]"]
    for key, value in data["defaults"].items():
        out.append(f"{key} = {_toml_value(value)}")
    for entry in data["domain"]:
        out.append("")
        out.append("[[domain]]")
        for key, value in entry.items():
            if key == "pins":
                out.append("pins = [")
                out.extend(f"  {_toml_value(pin)}," for pin in value)
                out.append("]")
            else:
                out.append(f"{key} = {_toml_value(value)}")
    if "debug-overrides" in data:
        out.append("")
        out.append("[debug-overrides]")
        for key, value in data["debug-overrides"].items():
            out.append(f"{key} = {_toml_value(value)}")
    if "updates" in data:
        out.append("")
        out.append("[updates]")
        for key, value in data["updates"].items():
            out.append(f"{key} = {_toml_value(value)}")
    return "\n".join(out) + "\n"


_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\f": "\\f",
    "\r": "\\r",
}


def _toml_string(value: str) -> str:
    """``value`` as an ASCII TOML basic string: JSON's escapes, with two differences.

    A character beyond U+FFFF is ``\\UXXXXXXXX``: JSON writes a surrogate pair of
    ``\\uXXXX``, which TOML refuses ("not a Unicode scalar value"), so a file written
    with one did not load again. A DEL, which JSON leaves raw and TOML forbids, is
    ``\\u007f``.
    """
    out = []
    for char in value:
        code = ord(char)
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif 0x20 <= code < 0x7F:
            out.append(char)
        elif code > 0xFFFF:
            out.append(f"\\U{code:08x}")
        else:
            out.append(f"\\u{code:04x}")
    return '"' + "".join(out) + '"'


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")
