"""pinset's own policy file, TOML (``pinset.toml``) or JSON: lossless both ways.

A thin wrapper over :func:`pinset.policyfile.loads`, :func:`pinset.policyfile.dumps` and
:func:`pinset.policyfile.dumps`, so native files go through the same registry as every
platform format. Unlike platform imports, a native file is held to pinset's
own rules at load time (two real pins per enforced domain unless
``allow-single-pin = true``).
"""

from __future__ import annotations

import json

from pinset import policyfile
from pinset.errors import ConfigError
from pinset.formats._model import Imported
from pinset.policy import Policy

__all__ = ["FORMAT", "dumps", "loads", "sniff"]

FORMAT = "pinset"


def _text(data: str | bytes, source: str | None) -> str:
    if isinstance(data, str):
        return data
    try:
        return bytes(data).decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8 text: {exc.reason}", source=source) from None


def _is_json(text: str) -> bool:
    return text.lstrip().startswith("{")


def loads(data: str | bytes, *, source: str | None = None) -> Imported:
    """Read a pinset policy (JSON when the text starts with ``{``, TOML otherwise)."""
    text = _text(data, source)
    policy = policyfile.loads(text, format="json" if _is_json(text) else "toml", source=source)
    return Imported(policy=policy, format=FORMAT, source=source)


def sniff(data: bytes) -> bool:
    """True for TOML with ``[defaults]`` / ``[[domain]]`` tables or JSON with a ``domain`` list."""
    try:
        text = data[:200_000].decode("utf-8-sig")
    except UnicodeDecodeError:
        return False
    if _is_json(text):
        try:
            parsed = json.loads(data.decode("utf-8-sig"))
        except (ValueError, UnicodeDecodeError):
            return False
        return isinstance(parsed, dict) and ("domain" in parsed or "defaults" in parsed)
    lines = {line.strip() for line in text.splitlines()}
    return "[[domain]]" in lines or "[defaults]" in lines


def dumps(policy: Policy, *, json: bool = False, **options: object) -> str:
    """The policy as ``pinset.toml`` text, or as JSON with ``json=True``."""
    if options:
        raise TypeError(f"unknown export options: {', '.join(sorted(options))}")
    return policyfile.dumps(policy, format="json") if json else policyfile.dumps(policy)
