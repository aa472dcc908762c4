"""The one strict date parser: ``yyyy-MM-dd`` text, ASCII digits only, as a date.

Every format that writes a pin-set expiration (pinset's own file, Android's
``<pin-set expiration>``, TrustKit's ``TSKExpirationDate``) spells it the same
way, so every reader accepts exactly this spelling through :func:`parse_iso_date`
and words its own error (the key, the element and the fix differ per format).
Python's ``date.fromisoformat`` alone takes more (``20270630``, ``2027-W26-3``
on 3.11+), and ``\\d`` would take non-ASCII digits. Pure: no I/O.
"""

from __future__ import annotations

import datetime as dt
import re

__all__ = ["parse_iso_date"]

_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def parse_iso_date(text: str) -> dt.date | None:
    """``text`` (surrounding whitespace ignored) as a date, or ``None`` if it is not one."""
    stripped = text.strip()
    if not _ISO_DATE.fullmatch(stripped):
        return None
    try:
        return dt.date.fromisoformat(stripped)
    except ValueError:  # 2027-02-30, month 13
        return None
