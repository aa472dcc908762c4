"""``pinset rotate check``: would the shipped pins accept a new certificate or key?"""

from __future__ import annotations

from pathlib import Path

import click
from cryptography import x509

from pinset.audit import read_subjects
from pinset.audit._rotation import RotationVerdict, check_rotation
from pinset.chain import load_chain, order_chain
from pinset.cli._app import SectionedCommand
from pinset.cli._inputs import load_key_file
from pinset.cli._options import json_option, now_option, parse_now, password_file_option
from pinset.cli._output import console, print_json
from pinset.errors import ChainError, ConfigError
from pinset.pins import Pin, spki_pin
from pinset.status import ExitStatus

__all__ = ["group"]


@click.group("rotate")
def group() -> None:
    """Plan and check a key rotation.

    Before a pinned server gets a new certificate or key, 'pinset rotate check'
    tells whether the apps and policies already shipped would still accept it.
    """


def _new_chain(cert: str | None, chain_file: str | None) -> tuple[x509.Certificate, ...]:
    if cert is None:
        if chain_file is not None:
            raise ConfigError("--chain-file needs --new-cert", key="--chain-file")
        return ()
    leaf = load_chain(cert).certificates
    if not leaf:
        raise ChainError(
            "no certificate in the file", source=cert, hint="give the new server certificate"
        )
    extra = load_chain(chain_file).certificates if chain_file else ()
    return order_chain([leaf[0], *leaf[1:], *extra])


def _key_pin(path: str | None, password_file: str | None) -> Pin | None:
    if path is None:
        return None
    loaded = load_key_file(path, password_file)
    if loaded.keys:
        return spki_pin(loaded.keys[0])
    if loaded.csrs:
        return spki_pin(loaded.csrs[0])
    raise ChainError("no key or CSR in the file", source=path, hint="give the new key (or its CSR)")


def _as_dict(verdict: RotationVerdict) -> dict[str, object]:
    return {
        "source": verdict.source,
        "domain": verdict.domain,
        "safe": verdict.safe,
        "reason": verdict.reason,
        "matched_pin": str(verdict.matched) if verdict.matched else None,
        "matched_by": verdict.matched_by,
        "next_step": verdict.next_step,
        "line": verdict.line,
    }


_EPILOG = """\b
Examples:
  pinset rotate check pinset.toml --new-cert new.pem --chain-file intermediates.pem
  pinset rotate check pinset.toml --new-key backup.csr
  pinset rotate check app-release.apk App.ipa --new-cert new.pem --domain api.example.com
  pinset rotate check pinset.toml --new-key backup.key --password-file pass.txt --json

\b
Exit status: 0 every judged rule accepts the switch, 1 one would lock users
out, 2 a file cannot be read or no pinned rule covers --domain."""


@group.command(
    "check",
    cls=SectionedCommand,
    epilog=_EPILOG,
    sections={
        "The new certificate or key": ["new_cert", "chain_file", "new_key", "password_file"],
        "Scope": ["domains", "now_text"],
        "Output": ["as_json"],
    },
)
@click.argument("targets", nargs=-1, required=True, metavar="TARGET...")
@click.option("--new-cert", type=click.Path(dir_okay=False), help="The new server certificate.")
@click.option(
    "--chain-file",
    type=click.Path(dir_okay=False),
    help="Intermediates the server will send with the new certificate.",
)
@click.option("--new-key", type=click.Path(dir_okay=False), help="The new key (or its CSR).")
@password_file_option(help="Password of an encrypted --new-key (first line), instead of a prompt.")
@click.option("--domain", "domains", multiple=True, help="Only judge the rules covering this name.")
@now_option(help="Judge as of this date (UTC).")
@json_option(help="Print the verdicts as JSON.")
def check(
    targets: tuple[str, ...],
    new_cert: str | None,
    chain_file: str | None,
    new_key: str | None,
    password_file: str | None,
    domains: tuple[str, ...],
    now_text: str | None,
    as_json: bool,
) -> int:
    """Would a server switching to this certificate or key still be accepted?

    Judges every pinned rule of each TARGET (policies, platform configs, APKs,
    IPAs) against the new server certificate (--new-cert, with --chain-file) or
    the new key (--new-key: a private key, public key or CSR).
    """
    if (new_cert is None) == (new_key is None):
        raise ConfigError(
            "give exactly one of --new-cert and --new-key",
            key="--new-cert",
            hint="pinset rotate check pinset.toml --new-cert new.pem [--chain-file chain.pem]",
        )
    subjects, unreadable, _names = read_subjects(targets)
    for item in unreadable:
        message = (
            item.message if item.message.startswith("cannot") else f"cannot read: {item.message}"
        )
        raise ConfigError(message, source=item.target, hint=item.hint)
    for subject in subjects:
        if subject.error is not None:
            err = subject.error
            raise ConfigError(err.message, source=err.source, line=err.line, hint=err.fix)
    verdicts = check_rotation(
        subjects,
        now=parse_now(now_text),
        new_chain=_new_chain(new_cert, chain_file),
        new_key_pin=_key_pin(new_key, password_file),
        domains=domains,
    )
    if not verdicts:
        raise ConfigError(
            "no pinned rule to judge", hint="check the targets carry pins (and --domain)"
        )
    safe = all(v.safe for v in verdicts)
    if as_json:
        print_json({"safe": safe, "verdicts": [_as_dict(v) for v in verdicts]})
        return int(ExitStatus.OK if safe else ExitStatus.CHECK_FAILED)
    out = console()
    for v in verdicts:
        where = f"{Path(v.source).name}:{v.line}" if v.line else Path(v.source).name
        mark = "[green]safe[/green]  " if v.safe else "[bold red]UNSAFE[/bold red]"
        out.print(f"{mark} {v.domain} ({where}): {v.reason}", highlight=False, soft_wrap=True)
        if v.next_step:
            out.print(f"        next step: {v.next_step}", highlight=False, soft_wrap=True)
    return int(ExitStatus.OK if safe else ExitStatus.CHECK_FAILED)
