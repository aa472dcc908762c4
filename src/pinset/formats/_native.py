"""pinset's own policy file, TOML (``pinset.toml``) or JSON: lossless both ways.

A thin wrapper over :func:`pinset.policyfile.read_policy` and :func:`pinset.policyfile.dumps`,
so native files go through the same registry as every
platform format. Unlike platform imports, a native file is held to pinset's
own rules at load time (two real pins per enforced domain unless
``allow-single-pin = true``). The reader's positions become ``Imported.lines``
and ``Imported.written``, so the audit quotes pins and lines without reading
the file again.
"""

from __future__ import annotations

import json

from pinset import policyfile
from pinset.errors import ConfigError
from pinset.formats._model import Imported, WrittenPins
from pinset.policy import Policy
from pinset.policyfile import ReadPolicy, read_policy

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
    read = read_policy(text, format="json" if _is_json(text) else "toml", source=source)
    return Imported(
        policy=read.policy,
        format=FORMAT,
        source=source,
        lines={p: at.line for p, at in read.positions.items() if at.line is not None},
        written=_written(read),
    )


def _written(read: ReadPolicy) -> tuple[WrittenPins, ...]:
    """Each pinned rule's pins as the file writes them, with pinset's own semantics."""
    out = []
    for rule in read.policy.rules:
        at = read.positions.get(rule.pattern)
        if rule.exclude or at is None:
            continue
        out.append(
            WrittenPins(
                rule.pattern,
                at.line,
                tuple(text for text, _ in at.pins),
                tuple(line for _, line in at.pins),
                prefix="sha256/",
                single_pin_accepted=rule.allow_single_pin,
                expiration_fix="set expiration = YYYY-MM-DD a few months past the app's update "
                "cycle",
            )
        )
    return tuple(out)


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
