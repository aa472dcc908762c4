"""``pinset init HOST...``: write a policy from live chains plus backup pins.

Each host's chain is fetched; the pin at the chosen level (leaf, intermediate or
root) is the current pin, every ``--backup-key`` / ``--backup-pin`` is added as a
backup. A policy without a backup that the servers do not already use is refused:
it would lock every client out at the next key change.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import click
from rich.table import Table

from pinset import policyfile
from pinset.chain import FetchedChain, fetch_chain, order_chain
from pinset.cli._app import Choice, SectionedCommand
from pinset.cli._keygen import load_key_file, write_new_file
from pinset.cli._options import cafile_option, json_option, timeout_option
from pinset.cli._output import console, error_console, fits, print_json
from pinset.cli._pin import parse_host_port
from pinset.errors import ChainError, ConfigError
from pinset.hosts import canonical_host
from pinset.pins import Pin, spki_pin
from pinset.policy import DomainRule, Policy
from pinset.status import ExitStatus

__all__ = ["Level", "backup_pin_of_file", "command", "pin_at_level"]

Level = Literal["leaf", "intermediate", "root"]
_NO_BACKUP_HINT = (
    "make an offline backup key with 'pinset keygen --out backup.key' and pass "
    "--backup-key backup.key (or --backup-pin sha256/...)"
)


@dataclass(frozen=True, slots=True)
class _Entry:
    pin: Pin
    source: str


def pin_at_level(fetched: FetchedChain, level: Level) -> tuple[Pin, str, list[str]]:
    """The pin of ``fetched`` at ``level``, a description of its certificate, and warnings.

    The verified chain is used when validation succeeded (so a root pin is the
    trust anchor clients build to, even if the server does not send it);
    otherwise the served chain, with a warning.
    """
    where = f"{fetched.host}:{fetched.port}"
    notes: list[str] = []
    chain = fetched.verified
    if chain is None:
        notes.append(
            f"{where}: the chain does not verify ({fetched.verify_error}); "
            "using the served chain, which clients with the same trust would refuse"
        )
        chain = order_chain(fetched.served)
    if not chain:
        raise ChainError("the server sent no certificate", source=where)
    if level == "leaf":
        cert = chain[0]
    elif level == "intermediate":
        if len(chain) < 2 or (fetched.verified is not None and len(chain) < 3):
            raise ChainError(
                "the chain has no intermediate certificate",
                source=where,
                hint="use --level leaf or --level root",
            )
        cert = chain[1]
    else:
        cert = chain[-1]
        if fetched.verified is None:
            notes.append(
                f"{where}: root level without a verified chain: pinning the last served "
                f"certificate ({cert.subject.rfc4514_string()}), which may not be the anchor "
                "your clients trust; pass --cafile to verify"
            )
    return spki_pin(cert), f"{level}: {cert.subject.rfc4514_string()}", notes


def backup_pin_of_file(path: str, passphrase_file: str | None) -> Pin:
    """The one public key in ``path`` (a private or public key, CSR or certificate)."""
    loaded = load_key_file(path, passphrase_file)
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
    keys: tuple[str, ...], pins: tuple[str, ...], passphrase_file: str | None
) -> list[_Entry]:
    entries = [_Entry(Pin.parse(text, source="--backup-pin"), "backup pin") for text in pins]
    entries += [_Entry(backup_pin_of_file(p, passphrase_file), f"backup key {p}") for p in keys]
    for entry in entries:
        if entry.pin.is_placeholder:
            raise ConfigError(
                f"{entry.pin} is a placeholder, not a backup key", hint=_NO_BACKUP_HINT
            )
    if not entries:
        raise ConfigError("refusing to write a policy without a backup pin", hint=_NO_BACKUP_HINT)
    return entries


def _write(path: Path, text: str, force: bool) -> None:
    if not force:
        write_new_file(path, text.encode("utf-8"), 0o644)
        return
    # Replace atomically: a crash mid-write must not leave half a policy behind.
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent or Path("."), prefix=f".{path.name}.")
    except OSError as exc:
        raise ConfigError(f"cannot write: {exc.strerror or exc}", source=str(path)) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
        "Pins": ["level", "backup_keys", "backup_pins", "passphrase_file"],
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
@click.option(
    "--passphrase-file",
    type=click.Path(dir_okay=False),
    help="Passphrase of encrypted backup keys (first line), instead of a prompt.",
)
@click.option(
    "--expires-in",
    type=click.IntRange(min=1),
    required=True,
    metavar="DAYS",
    help="Days until the pins stop being enforced (UTC date).",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("pinset.toml"),
    show_default=True,
    help="Policy file to write.",
)
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
    level: Level,
    backup_keys: tuple[str, ...],
    backup_pins: tuple[str, ...],
    passphrase_file: str | None,
    expires_in: int,
    output: Path,
    include_subdomains: bool,
    report_uris: tuple[str, ...],
    cafile: str | None,
    timeout: float,
    force: bool,
    as_json: bool,
) -> int:
    """Write a policy from the hosts' live chains plus backup pins."""
    if output.exists() and not force:
        raise ConfigError(
            "refusing to overwrite an existing policy",
            source=str(output),
            hint="pass --force to replace it, or choose another -o path",
        )
    backups = _backups(backup_keys, backup_pins, passphrase_file)
    expiration = dt.datetime.now(dt.timezone.utc).date() + dt.timedelta(days=expires_in)
    per_host: dict[str, list[_Entry]] = {}
    notes: list[str] = []
    for target in hosts:
        host, port = parse_host_port(target)
        fetched = fetch_chain(host, port, timeout=timeout, cafile=cafile)
        pin, what, warnings = pin_at_level(fetched, level)
        notes += warnings
        served = {spki_pin(cert) for cert in (*fetched.served, *(fetched.verified or ()))}
        if all(b.pin in served for b in backups):
            raise ConfigError(
                f"every backup pin is already used by {target}'s chain",
                hint="a backup must be a key the servers do not use yet; " + _NO_BACKUP_HINT,
            )
        entries = per_host.setdefault(canonical_host(host), [])
        entries.append(_Entry(pin, what))
    rules = []
    for name, current in per_host.items():
        entries = list({e.pin: e for e in (*current, *backups)}.values())
        per_host[name] = entries
        rules.append(
            DomainRule(
                name=name,
                pins=tuple(e.pin for e in entries),
                include_subdomains=include_subdomains,
                expiration=expiration,
                report_uris=report_uris,
            )
        )
    policy = Policy(rules=tuple(rules), report_uris=report_uris)
    text = policyfile.dumps(policy)
    _write(output, text, force)
    err = error_console()
    for note in notes:
        err.print(f"warning: {note}", markup=False)
    if as_json:
        print_json(
            {
                "output": str(output),
                "expiration": expiration.isoformat(),
                "domains": [
                    {"name": n, "pins": [{"pin": str(e.pin), "source": e.source} for e in es]}
                    for n, es in per_host.items()
                ],
            }
        )
        return int(ExitStatus.OK)
    table = Table()
    table.add_column("domain")
    table.add_column("pin", no_wrap=True, min_width=51)
    table.add_column("from")
    for name, entries in per_host.items():
        for entry in entries:
            table.add_row(name, str(entry.pin), entry.source)
    out = console()
    out.print(
        f"wrote {output}: {len(rules)} domain{'s' if len(rules) != 1 else ''}, "
        f"pins enforced until {expiration.isoformat()} (UTC)",
        markup=False,
    )
    if fits(out, table):
        out.print(table)
        return int(ExitStatus.OK)
    for name, entries in per_host.items():  # a narrow terminal: whole pins, one per line
        out.print(name, markup=False)
        for entry in entries:
            out.print(f"  {entry.pin}  ({entry.source})", markup=False)
    return int(ExitStatus.OK)
