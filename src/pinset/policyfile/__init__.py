"""The policy file (``pinset.toml`` or JSON) <-> :class:`~pinset.policy.Policy`.

The one way in and out of the file format; :class:`~pinset.policy.Policy` itself
only holds values and matches hosts::

    policy = pinset.policyfile.load("pinset.toml")      # a path (also pinset.load_policy)
    policy = pinset.policyfile.loads(text, format="json", source="pins.json")   # text
    text = pinset.policyfile.dumps(policy)               # pinset.toml text; loads() reads it back
    read = pinset.policyfile.read_policy(text)           # .policy, .positions (lines)

Naming: ``load`` takes a path, ``loads`` takes the text, ``dumps`` returns text.
Behind this module, :mod:`~pinset.policyfile._reader` parses and checks the file,
naming the key and line at fault; :mod:`~pinset.policyfile._writer` writes the same
format back; :mod:`~pinset.policyfile._positions` finds the line of a key or array
item in the text, which ``tomllib`` and ``json`` do not report.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Literal

from pinset.errors import ConfigError
from pinset.policy import Policy
from pinset.policyfile._reader import ReadPolicy, RulePosition, read_policy
from pinset.policyfile._reader import from_dict as _read_mapping
from pinset.policyfile._reader import load as _read_file
from pinset.policyfile._reader import loads as _read_text
from pinset.policyfile._writer import to_dict as _mapping
from pinset.policyfile._writer import to_json as _json
from pinset.policyfile._writer import to_toml as _toml

__all__ = [
    "PolicyFormat",
    "ReadPolicy",
    "RulePosition",
    "dumps",
    "from_dict",
    "load",
    "loads",
    "read_policy",
    "to_dict",
]

PolicyFormat = Literal["toml", "json"]


def load(path: str | os.PathLike[str]) -> Policy:
    """Read a policy file: JSON when the name ends in ``.json`` or the text starts with ``{``.

    Raises :class:`~pinset.errors.ConfigError` naming the file (and the line, for an
    error in the content).
    """
    return _read_file(Policy, os.fspath(path))


def loads(text: str, *, format: PolicyFormat = "toml", source: str | None = None) -> Policy:
    """Parse policy text in ``format``; ``source`` names it in error messages."""
    return _read_text(Policy, text, format=format, source=source)


def from_dict(
    data: Mapping[str, Any],
    *,
    source: str | None = None,
    text: str | None = None,
    json_text: bool = False,
) -> Policy:
    """Build a policy from the parsed TOML/JSON mapping (keys as in the policy file).

    ``text`` is the text ``data`` was parsed from, when there is one: errors then name
    its line (``json_text`` says it is JSON).
    """
    return _read_mapping(Policy, data, source=source, text=text, json_text=json_text)


def dumps(policy: Policy, *, format: PolicyFormat = "toml") -> str:
    """The policy as ``pinset.toml`` text, or JSON with the same keys.

    The TOML text is deterministic, and :func:`loads` reads either back equal.
    """
    if format == "toml":
        return _toml(policy)
    if format == "json":
        return _json(policy)
    raise ConfigError(f"unknown policy format {format!r}", hint="use 'toml' or 'json'")


def to_dict(policy: Policy) -> dict[str, Any]:
    """The policy as a TOML/JSON-ready mapping (keys as in the file, dates as ``datetime.date``)."""
    return _mapping(policy)
