"""What the collector keeps of a report's unknown fields: bounded in count, depth and size.

Reporters add fields of their own (TrustKit's ``app-vendor-id``, ``trustkit-version``
…), so unknown fields are kept for whoever reads the reports. They come from an
unauthenticated POST, though: a value nested a few hundred levels deep is accepted
by ``json.loads`` and then breaks every serialiser that recurses over it on the way
out. :func:`kept_extra` is the one rule for what survives, applied when a report
is taken in and again when a stored one is read (rows stored before the rule existed).
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["MAX_EXTRA_DEPTH", "MAX_EXTRA_FIELDS", "MAX_EXTRA_TEXT", "kept_extra"]

MAX_EXTRA_FIELDS = 32
# Depth counts containers: {"a": [1]} is a field whose value has depth 1.
MAX_EXTRA_DEPTH = 4
MAX_EXTRA_TEXT = 1024


def kept_extra(fields: dict[str, Any]) -> dict[str, Any]:
    """The unknown ``fields`` as stored: a value nested deeper than :data:`MAX_EXTRA_DEPTH`
    or longer than :data:`MAX_EXTRA_TEXT` characters of JSON becomes its JSON text, cut to
    that length (an opaque string); strings are cut to it; fields after the first
    :data:`MAX_EXTRA_FIELDS` are dropped. Applying it twice changes nothing.
    """
    out: dict[str, Any] = {}
    for name, value in fields.items():
        if len(out) == MAX_EXTRA_FIELDS:
            break
        key = str(name)[:MAX_EXTRA_TEXT]
        if isinstance(value, str):
            out[key] = value[:MAX_EXTRA_TEXT]
        elif _depth_exceeds(value, MAX_EXTRA_DEPTH):
            out[key] = _opaque(value)
        else:
            text = json.dumps(value, ensure_ascii=False)
            out[key] = value if len(text) <= MAX_EXTRA_TEXT else text[:MAX_EXTRA_TEXT]
    return out


def _depth_exceeds(value: Any, limit: int) -> bool:
    """Whether ``value`` nests containers more than ``limit`` deep (iterative: no recursion)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth + 1 > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def _opaque(value: Any) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (RecursionError, ValueError):
        return "(unknown field nested too deeply to keep)"
    return text[:MAX_EXTRA_TEXT]
