"""``pinset init HOST...``: write a policy from live chains plus backup pins.

A thin shell: it reads the backup keys, fetches each host's chain and hands both to
:func:`pinset.chain.policy_from_chains`, which picks the pin at the chosen level (leaf,
intermediate or root) and refuses a policy without a backup that the servers do not
already use (it would lock every client out at the next key change); then it writes
the policy and says what it wrote.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click

from pinset import policyfile
from pinset.chain import (
    ChainPolicy,
    PinSource,
    Role,
    check_backups,
    fetch_chain,
    order_chain,
    policy_from_chains,
)
from pinset.cli._app import Choice, SectionedCommand
from pinset.cli._files import write_atomically, write_new_file
from pinset.cli._inputs import load_key_file, parse_host_port
from pinset.cli._options import (
    cafile_option,
    json_option,
    output_option,
    password_file_option,
    timeout_option,
)
from pinset.cli._output import error_console, plain_table, print_json, terminal_width
from pinset.errors import ChainError, ConfigError
from pinset.pins import Pin, spki_pin
from pinset.status import ExitStatus

__all__ = ["backup_pin_of_file", "command"]


def backup_pin_of_file(path: str, password_file: str | None) -> Pin:
    """The one public key in ``path`` (a private or public key, CSR or certificate)."""
    loaded = load_key_file(path, password_file)
    found = [*loaded.keys, *loaded.csrs, *order_chain(loaded.certificates)]
    pins = list(dict.fromkeys(spki_pin(obj) for obj in found))
    if len(pins) != 1:
        raise ChainError(
            f"the backup file holds {len(pins)} different public keys",
            source=path,
            hint="give a file with the backup key only (its private key, public key, CSR or cert)",
        )
    return pins[0]


def _backups(
    keys: tuple[str, ...], pins: tuple[str, ...], password_file: str | None
) -> list[PinSource]:
    backups = [PinSource(Pin.parse(text, source="--backup-pin"), "backup pin") for text in pins]
    backups += [PinSource(backup_pin_of_file(p, password_file), f"backup key {p}") for p in keys]
    check_backups(backups)  # before any host is contacted
    return backups


def _write(path: Path, text: str, force: bool) -> None:
    data = text.encode("utf-8")
    if force:
        # Replace atomically: a crash mid-write must not leave half a policy behind.
        write_atomically(path, data)
    else:
        write_new_file(path, data, 0o644)


def _report(built: ChainPolicy, output: Path, expiration: dt.date, as_json: bool) -> None:
    """Say what was written: JSON, a table, or (a narrow terminal) whole pins one per line."""
    if as_json:
        print_json(
            {
                "output": str(output),
                "expiration": expiration.isoformat(),
                "domains": [
                    {"name": n, "pins": [{"pin": str(s.pin), "source": s.source} for s in ss]}
                    for n, ss in built.sources.items()
                ],
            }
        )
        return
    count = len(built.policy.rules)
    click.echo(
        f"wrote {output}: {count} domain{'s' if count != 1 else ''}, "
        f"pins enforced until {expiration.isoformat()} (UTC)"
    )
    rows = [(n, str(s.pin), s.source) for n, ss in built.sources.items() for s in ss]
    lines = plain_table(("domain", "pin", "from"), rows)
    width = terminal_width()
    if width is not None and max(len(line) for line in lines) > width:
        lines = []
        for name, sources in built.sources.items():
            lines.append(name)
            lines.extend(f"  {source.pin}  ({source.source})" for source in sources)
    for line in lines:
        click.echo(line)


_EPILOG = """\b
Examples:
  pinset keygen --out backup.key
  pinset init api.example.com --backup-key backup.key --expires-in 90
  pinset init api.example.com www.example.com --level intermediate \\
      --backup-pin sha256/... --expires-in 60 --include-subdomains -o app.toml
  pinset init 127.0.0.1:8443 --cafile root.pem --backup-key backup.csr --expires-in 30

\b
Exit status: 0 written; 2 no or bad backup, an existing file, no such level
in the chain; 3 a host cannot be reached."""


@click.command(
    "init",
    cls=SectionedCommand,
    epilog=_EPILOG,
    sections={
        "Pins": ["level", "backup_keys", "backup_pins", "password_file"],
        "Policy": ["expires_in", "include_subdomains", "report_uris"],
        "Connection": ["cafile", "timeout"],
        "Output": ["output", "force", "as_json"],
    },
)
@click.argument("hosts", nargs=-1, required=True, metavar="HOST...")
@click.option(
    "--level",
    type=Choice(["leaf", "intermediate", "root"]),
    default="leaf",
    show_default=True,
    help="Which certificate of each chain to pin.",
)
@click.option(
    "--backup-key",
    "backup_keys",
    multiple=True,
    type=click.Path(dir_okay=False),
    help="Backup key file (private/public key, CSR or cert). Repeatable.",
)
@click.option(
    "--backup-pin",
    "backup_pins",
    multiple=True,
    metavar="PIN",
    help="Backup pin (sha256/...). Repeatable.",
)
@password_file_option(help="Password of encrypted backup keys (first line), instead of a prompt.")
@click.option(
    "--expires-in",
    type=click.IntRange(min=1),
    required=True,
    metavar="DAYS",
    help="Days until the pins stop being enforced (UTC date).",
)
@output_option(help="Policy file to write.", default="pinset.toml")
@click.option("--include-subdomains", is_flag=True, help="Pin the hosts' subdomains too.")
@click.option(
    "--report-uri",
    "report_uris",
    multiple=True,
    metavar="URL",
    help="Where clients send pin failure reports. Repeatable.",
)
@cafile_option()
@timeout_option()
@click.option("--force", is_flag=True, help="Overwrite an existing output file.")
@json_option(help="Print what was written as JSON.")
def command(
    hosts: tuple[str, ...],
    level: Role,
    backup_keys: tuple[str, ...],
    backup_pins: tuple[str, ...],
    password_file: str | None,
    expires_in: int,
    output: str,
    include_subdomains: bool,
    report_uris: tuple[str, ...],
    cafile: str | None,
    timeout: float,
    force: bool,
    as_json: bool,
) -> int:
    """Write a policy from the hosts' live chains plus backup pins."""
    path = Path(output)
    if path.exists() and not force:
        raise ConfigError(
            "refusing to overwrite an existing policy",
            source=output,
            hint="pass --force to replace it, or choose another -o path",
        )
    backups = _backups(backup_keys, backup_pins, password_file)
    expiration = dt.datetime.now(dt.timezone.utc).date() + dt.timedelta(days=expires_in)
    chains = [
        fetch_chain(*parse_host_port(target), timeout=timeout, cafile=cafile) for target in hosts
    ]
    built = policy_from_chains(
        chains,
        backups,
        expiration=expiration,
        level=level,
        include_subdomains=include_subdomains,
        report_uris=report_uris,
    )
    _write(path, policyfile.dumps(built.policy), force)
    err = error_console()
    for note in built.warnings:
        err.print(f"warning: {note}", markup=False)
    _report(built, path, expiration, as_json)
    return int(ExitStatus.OK)
