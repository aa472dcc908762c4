"""``pinset pin TARGET...``: print the SPKI pins of hosts and files (the click command).

The work is in ``_pin_core.py`` (:func:`pin_targets`), which the core install's fallback
(``_core.py``, no click) runs too: what targets are files and what hosts, the output and
the exit status are described there.
"""

from __future__ import annotations

import click

from pinset.cli._app import SectionedCommand
from pinset.cli._options import (
    cafile_option,
    json_option,
    password_file_option,
    server_name_option,
    timeout_option,
)
from pinset.cli._pin_core import DEFAULT_TIMEOUT, pin_targets

__all__ = ["command"]

_EPILOG = """\b
Examples:
  pinset pin api.example.com                  # the chain a server sends
  pinset pin 127.0.0.1:8443 --cafile root.pem # verify against a private CA
  pinset pin leaf.pem backup.csr --json       # files: certs, keys, CSRs, ...
  openssl x509 -in cert.pem | pinset pin -    # standard input

\b
Exit status: 0 every target worked, 2 a target failed (bad file, bad name),
3 every failure was a network error."""


@click.command(
    "pin",
    cls=SectionedCommand,
    epilog=_EPILOG,
    sections={
        "Hosts": ["server_name", "cafile", "timeout"],
        "Files": ["password_file"],
        "Output": ["log_list", "as_json"],
    },
)
@click.argument("targets", nargs=-1, required=True, metavar="TARGET...")
@server_name_option()
@timeout_option(DEFAULT_TIMEOUT)
@cafile_option()
@password_file_option(
    help="File whose first line is the password of PKCS#12 files and encrypted keys."
)
@click.option(
    "--log-list",
    metavar="FILE",
    help="CT log list for the leaf's SCTs: a v3 JSON file or a shipped name (default: google).",
)
@json_option(help="Print JSON instead of tables.")
def command(
    targets: tuple[str, ...],
    server_name: str | None,
    timeout: float,
    cafile: str | None,
    password_file: str | None,
    log_list: str | None,
    as_json: bool,
) -> int:
    """Print the SPKI pins of hosts and files.

    A TARGET is a file (certificate, chain, key, CSR, PKCS#7, PKCS#12; - for
    standard input) or a host: host, host:port, [v6addr]:port or https://host:port/.
    A leaf that embeds SCTs, with its issuer known, gets its SCTs checked too.
    """
    return pin_targets(
        targets,
        server_name=server_name,
        timeout=timeout,
        cafile=cafile,
        password_file=password_file,
        log_list=log_list,
        as_json=as_json,
    )
