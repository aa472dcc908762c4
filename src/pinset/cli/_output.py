"""Output helpers shared by the commands: a console, JSON, and the chain table.

The console is made at call time on the current ``sys.stdout`` / ``sys.stderr``,
so tests that capture them see the output. Colour follows rich's rules: ``NO_COLOR``
turns it off, a pipe or file gets plain text. Text lines are never wrapped by pinset
(the terminal wraps them), and a table that does not fit the terminal becomes a list,
so a 51-character pin is never cut, folded or wrapped in the middle.

A chain (``pin``, ``check``) and ``init``'s pins are a plain table, at a terminal and
into a pipe alike: a header and one line per certificate, columns aligned with spaces,
the pin the last field, no box drawing. That is what ``grep`` and ``awk`` read, and it
needs no rich: ``pinset pin FILE`` does not load rich at all; other commands import it
on first use. Nor click: text goes to ``sys.stdout`` as it is at call time, so the core
install's ``pinset pin`` (no click, ``_core.py``) prints through the same functions.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import IO, TYPE_CHECKING, Any, TextIO

from cryptography import x509

from pinset.chain import cert_role, key_type
from pinset.pins import Pin, spki_pin

if TYPE_CHECKING:  # rich is imported when something is drawn: --json output needs none of it
    from rich.console import Console

__all__ = [
    "certificate_rows",
    "console",
    "error_console",
    "iso_utc",
    "key_row",
    "piped",
    "plain_chain",
    "plain_table",
    "print_chain",
    "print_json",
    "short_name",
    "show_progress",
]

# Without a terminal rich would wrap at 80 columns and fold the 51-character pins.
_PIPE_WIDTH = 200


def _make(stream: TextIO) -> Console:
    from rich.console import Console

    width = None
    if not stream.isatty() and "COLUMNS" not in os.environ:
        width = _PIPE_WIDTH
    return Console(file=stream, width=width, highlight=False, soft_wrap=True)


def piped(stream: IO[str] | None = None) -> bool:
    """Whether ``stream`` (standard output) goes to a pipe or a file rather than a person.

    ``COLUMNS`` in the environment says "a terminal this wide" even without one, as
    for rich's width.
    """
    stream = sys.stdout if stream is None else stream
    return not stream.isatty() and "COLUMNS" not in os.environ


def console() -> Console:
    """A rich console on the current standard output."""
    return _make(sys.stdout)


def error_console() -> Console:
    """A rich console on the current standard error."""
    return _make(sys.stderr)


def show_progress() -> bool:
    """Whether to draw progress bars: only for a person at a terminal, never in CI."""
    return sys.stderr.isatty() and not os.environ.get("CI")


def print_json(data: Any) -> None:
    """Print ``data`` as indented JSON on standard output (no colour, no wrapping)."""
    import json

    print(json.dumps(data, indent=2, default=str), file=sys.stdout, flush=True)


def iso_utc(when: dt.datetime | None) -> str | None:
    """``2027-06-30T00:00:00Z`` for an aware or naive-UTC datetime; ``None`` stays ``None``."""
    if when is None:
        return None
    if when.tzinfo is not None:
        when = when.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return when.isoformat(timespec="seconds") + "Z"


def _name(name: x509.Name) -> str:
    return name.rfc4514_string() or "(empty)"


def certificate_rows(chain: Sequence[x509.Certificate]) -> list[dict[str, Any]]:
    """One JSON-ready row per certificate, in order: position, role, names, validity, key, pin."""
    return [
        {
            "position": position,
            "role": cert_role(cert, position, chain),
            "subject": _name(cert.subject),
            "issuer": _name(cert.issuer),
            "not_before": iso_utc(cert.not_valid_before_utc),
            "not_after": iso_utc(cert.not_valid_after_utc),
            "key_type": key_type(cert),
            "pin": str(spki_pin(cert)),
        }
        for position, cert in enumerate(chain)
    ]


def key_row(obj: Any, role: str) -> dict[str, Any]:
    """The row of a key or CSR (``role`` is ``"key"`` or ``"csr"``): no issuer or validity."""
    subject = _name(obj.subject) if isinstance(obj, x509.CertificateSigningRequest) else ""
    return {
        "position": 0,
        "role": role,
        "subject": subject,
        "issuer": None,
        "not_before": None,
        "not_after": None,
        "key_type": key_type(obj),
        "pin": str(spki_pin(obj)),
    }


def short_name(rfc4514: str | None) -> str:
    """The most specific attribute of an RFC 4514 name (``CN=api.example.com``), for tables.

    JSON keeps the full name; a table of five full names does not fit a terminal.
    """
    if not rfc4514:
        return ""
    first = re.split(r"(?<!\\),", rfc4514, maxsplit=1)[0]
    return first if first != rfc4514 else rfc4514


_PLAIN_HEADER = ("#", "role", "subject", "issuer", "not_after", "key")


def _cells(row: Mapping[str, Any], matched: Pin | None) -> list[str]:
    cells = [
        str(row["position"]),
        str(row["role"]),
        short_name(row["subject"]) or "-",
        short_name(row["issuer"]) or "-",
        (row.get("not_after") or "-")[:10],
        str(row["key_type"]),
    ]
    if matched is not None:
        cells.append("yes" if row["pin"] == str(matched) else "-")
    return [*cells, str(row["pin"])]


def plain_chain(rows: Iterable[Mapping[str, Any]], *, matched: Pin | None = None) -> list[str]:
    """The lines of the plain chain table: a header, then one aligned line per certificate.

    The pin is always the last column, so it is never padded, cut or folded, and it is
    the last field of each certificate's line; an empty cell reads ``-``.
    """
    header = [*_PLAIN_HEADER, *(["match"] if matched is not None else []), "pin"]
    return plain_table(header, [_cells(row, matched) for row in rows])


def plain_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    """A header and rows as lines of columns aligned with spaces (two between columns)."""
    table = [list(header), *(list(row) for row in rows)]
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    return [
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in table
    ]


def terminal_width() -> int | None:
    """The width to fit a table in: ``None`` into a pipe or a file (no limit), else the
    terminal's columns (``COLUMNS`` when set)."""
    if piped():
        return None
    # What shutil.get_terminal_size() does, without the archive modules shutil loads.
    columns = os.environ.get("COLUMNS", "")
    if columns.isascii() and columns.isdigit() and int(columns) > 0:
        return int(columns)
    try:
        return os.get_terminal_size(sys.stdout.fileno()).columns or 80
    except (AttributeError, ValueError, OSError):
        return 80


def _chain_list(rows: Sequence[Mapping[str, Any]], matched: Pin | None) -> list[str]:
    """Three lines a certificate, for a terminal too narrow for the table."""
    lines = []
    for row in rows:
        mark = "  ✓ matches" if matched is not None and row["pin"] == str(matched) else ""
        lines.append(f"{row['position']} {row['role']}: {short_name(row['subject'])}")
        details = [str(row["key_type"])]
        if row.get("issuer"):
            details.insert(0, f"issuer {short_name(row['issuer'])}")
        if row.get("not_after"):
            details.append(f"not after {str(row['not_after'])[:10]}")
        lines.append("  " + ", ".join(details))
        lines.append(f"  {row['pin']}{mark}")
    return lines


def print_chain(
    rows: Iterable[Mapping[str, Any]],
    *,
    title: str | None = None,
    caption: str | None = None,
    matched: Pin | None = None,
) -> None:
    """Print ``title``, the :func:`plain_chain` table of ``rows`` and ``caption``.

    The same plain text at a terminal and into a pipe (what you see is what ``grep``
    and ``awk`` get), and no rich to load. On a terminal too narrow for the table (80
    columns is), each certificate is printed as three lines instead: position, role and
    subject; issuer, key and expiry; the whole pin on a line of its own.
    """
    rows = list(rows)
    lines = plain_chain(rows, matched=matched)
    width = terminal_width()
    if width is not None and max(len(line) for line in lines) > width:
        lines = _chain_list(rows, matched)
    text = "\n".join([*([title] if title else []), *lines, *([caption] if caption else [])])
    print(text, file=sys.stdout, flush=True)
