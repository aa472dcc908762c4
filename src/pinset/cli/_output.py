"""Output helpers shared by the commands: a console, JSON, and the chain table.

The console is made at call time on the current ``sys.stdout`` / ``sys.stderr``,
so tests that capture them see the output. Colour follows rich's rules: ``NO_COLOR``
turns it off, a pipe or file gets plain text. Text lines are never wrapped by pinset
(the terminal wraps them), and a table that does not fit the terminal becomes a list,
so a 51-character pin is never cut, folded or wrapped in the middle.

A chain written to a pipe or a file (no terminal, no ``COLUMNS``) is a plain table:
a header and one line per certificate, columns aligned with spaces, no box drawing, so
``awk``/``cut`` read it and no rich is loaded. rich itself is imported on first use:
``pinset pin FILE`` into a pipe, or with ``--json``, does not load it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import IO, TYPE_CHECKING, Any, TextIO

import click
from cryptography import x509

from pinset.chain import cert_role, key_type
from pinset.pins import Pin, spki_pin

if TYPE_CHECKING:  # rich is imported when something is drawn: --json output needs none of it
    from rich.console import Console
    from rich.table import Table

__all__ = [
    "certificate_rows",
    "chain_table",
    "console",
    "error_console",
    "fits",
    "iso_utc",
    "key_row",
    "piped",
    "plain_chain",
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


def fits(out: Console, table: Table) -> bool:
    """Whether ``table`` fits ``out``'s width without squeezing any column."""
    from rich.measure import Measurement

    natural = Measurement.get(out, out.options.update(max_width=10_000), table).maximum
    return natural <= out.width


def print_json(data: Any) -> None:
    """Print ``data`` as indented JSON on standard output (no colour, no wrapping)."""
    click.echo(json.dumps(data, indent=2, default=str))


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


def chain_table(rows: Iterable[Mapping[str, Any]], *, matched: Pin | None = None) -> Table:
    """A table of rows from :func:`certificate_rows` / :func:`key_row`.

    Names are shortened with :func:`short_name`; with ``matched`` a column marks
    the row whose pin it is.
    """
    from rich.table import Table

    table = Table()
    table.add_column("#", justify="right")
    table.add_column("role")
    table.add_column("subject", overflow="fold")
    table.add_column("issuer", overflow="fold")
    table.add_column("not after")
    table.add_column("key", no_wrap=True)
    table.add_column("pin", no_wrap=True, min_width=51)
    if matched is not None:
        table.add_column("match", justify="center")
    for row in rows:
        not_after = row.get("not_after")
        cells = [
            str(row["position"]),
            str(row["role"]),
            short_name(row["subject"]),
            short_name(row["issuer"]),
            (not_after or "")[:10],
            str(row["key_type"]),
            str(row["pin"]),
        ]
        if matched is not None:
            cells.append("✓" if row["pin"] == str(matched) else "")
        table.add_row(*cells)
    return table


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

    The pin is always the last column, so it is never padded, cut or folded and
    ``awk '{print $NF}'`` prints the pins; an empty cell reads ``-``.
    """
    header = [*_PLAIN_HEADER, *(["match"] if matched is not None else []), "pin"]
    table = [header] + [_cells(row, matched) for row in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    return [
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in table
    ]


def print_chain(
    out: Console | None,
    rows: Iterable[Mapping[str, Any]],
    *,
    title: str | None = None,
    caption: str | None = None,
    matched: Pin | None = None,
) -> None:
    """Print ``title``, the :func:`chain_table` of ``rows`` and ``caption`` (plain text lines).

    On a terminal too narrow for the table (80 columns is), each certificate is
    printed as three lines instead: position, role and subject; issuer, key and
    expiry; the whole pin on a line of its own. Into a pipe or a file (:func:`piped`),
    or when ``out`` is ``None``, the table is :func:`plain_chain` and rich is not used.
    """
    rows = list(rows)
    if out is None or piped(out.file):
        lines = ([title] if title else []) + plain_chain(rows, matched=matched)
        for line in lines + ([caption] if caption else []):
            if out is None:
                click.echo(line)
            else:
                out.print(line, markup=False, highlight=False)
        return
    if title:
        out.print(title, markup=False, style="bold")
    table = chain_table(rows, matched=matched)
    if fits(out, table):
        out.print(table)
    else:
        for row in rows:
            mark = "  ✓ matches" if matched is not None and row["pin"] == str(matched) else ""
            out.print(
                f"{row['position']} {row['role']}: {short_name(row['subject'])}", markup=False
            )
            details = [str(row["key_type"])]
            if row.get("issuer"):
                details.insert(0, f"issuer {short_name(row['issuer'])}")
            if row.get("not_after"):
                details.append(f"not after {str(row['not_after'])[:10]}")
            out.print("  " + ", ".join(details), markup=False)
            out.print(f"  {row['pin']}{mark}", markup=False)
    if caption:
        out.print(caption, markup=False)
