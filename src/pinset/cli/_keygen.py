"""``pinset keygen``: an offline backup key, a bundle signing key, or a disaster-recovery kit.

A key is written encrypted (PKCS#8, the best encryption cryptography offers) with mode
0600, and never over an existing file: losing a backup key to an overwrite is exactly
the disaster it exists to prevent. ``--unencrypted`` is the one way to a clear key,
and it warns. ``--kit DIR`` writes a whole kit (made by :func:`pinset.chain.recovery_kit`)
into a new or empty directory, all or nothing.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from pathlib import Path

import click
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from pinset.chain import (
    KEY_TYPES,
    SIGNING_KEY_TYPES,
    RecoveryKit,
    csr_names,
    generate_key,
    key_type,
    private_key_pem,
    public_key_pem,
    recovery_kit,
    signing_request,
)
from pinset.cli._app import Choice, SectionedCommand
from pinset.cli._files import write_new_file
from pinset.cli._inputs import read_password
from pinset.cli._options import json_option, password_file_option
from pinset.cli._output import console, plain_table, print_json
from pinset.errors import ConfigError
from pinset.pins import spki_pin
from pinset.status import ExitStatus

__all__ = ["command"]

# Options that make one key, and those that make a kit: never mixed.
_KEY_OPTIONS = {
    "out": "--out",
    "public_out": "--public-out",
    "csr_subject": "--csr-subject",
    "csr_out": "--csr-out",
    "unencrypted": "--unencrypted",
}
_KIT_OPTIONS = {"backups": "--backups", "names": "--cn", "signing_type": "--signing-type"}


def _subject(text: str) -> x509.Name:
    try:
        name = x509.Name.from_rfc4514_string(text)
    except ValueError as exc:
        raise ConfigError(
            f"not a distinguished name: {text!r}" + (f" ({exc})" if str(exc) else ""),
            key="--csr-subject",
            hint='write it as in RFC 4514, e.g. "CN=api.example.com,O=Example"',
        ) from None
    if not len(name):
        raise ConfigError(
            "the CSR subject is empty",
            key="--csr-subject",
            hint='e.g. "CN=api.example.com,O=Example"',
        )
    return name


_EPILOG = """\b
Examples:
  pinset keygen --out backup.key
  pinset keygen --type rsa-3072 --out backup.key --password-file pass.txt
  pinset keygen --out backup.key --csr-subject "CN=api.example.com,O=Example" \\
      --csr-out backup.csr --json
  pinset keygen --type ed25519 --out signing.key --public-out signing.pub
  pinset keygen --kit recovery-kit --cn api.example.com --cn www.example.com

\b
Exit status: 0 written, 2 an existing file or non-empty kit directory, a bad
subject or name, an empty password."""


@click.command(
    "keygen",
    cls=SectionedCommand,
    epilog=_EPILOG,
    sections={
        "Key": ["kind", "out", "public_out", "password_file", "unencrypted"],
        "Certificate signing request": ["csr_subject", "csr_out"],
        "Disaster-recovery kit": ["kit", "names", "backups", "signing_type"],
        "Output": ["as_json"],
    },
)
@click.option(
    "--type",
    "kind",
    type=Choice(KEY_TYPES),
    default="ec-p256",
    show_default=True,
    help="Key algorithm and size (bundle signing keys: ed25519, ecdsa-p256). With --kit: the"
    " backup keys'.",
)
@click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the private key (must not exist).",
)
@click.option(
    "--public-out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the public key there (SubjectPublicKeyInfo PEM; must not exist).",
)
@click.option(
    "--unencrypted",
    is_flag=True,
    help="Write the private key without a password (warns; never for a kit).",
)
@click.option("--csr-subject", help='Also make a CSR with this subject, e.g. "CN=api.example.com".')
@click.option(
    "--csr-out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the CSR (PEM; must not exist).",
)
@click.option(
    "--kit",
    type=click.Path(file_okay=False, path_type=Path),
    metavar="DIR",
    help="Write a disaster-recovery kit into this new or empty directory.",
)
@click.option(
    "--cn",
    "names",
    multiple=True,
    metavar="NAME",
    help="Server name for the kit's CSRs (the first is the CN, all go into the SAN). Repeatable.",
)
@click.option(
    "--backups",
    type=click.IntRange(1, 10),
    metavar="N",
    help="Backup key pairs in the kit.  [default: 2]",
)
@click.option(
    "--signing-type",
    type=Choice(SIGNING_KEY_TYPES),
    help="The kit's bundle signing key.  [default: ed25519]",
)
@password_file_option(help="Read the password from the first line of this file, not a prompt.")
@json_option(help="Print the files written and the pins as JSON.")
@click.pass_context
def command(
    ctx: click.Context,
    kind: str,
    out: Path | None,
    public_out: Path | None,
    unencrypted: bool,
    csr_subject: str | None,
    csr_out: Path | None,
    kit: Path | None,
    names: tuple[str, ...],
    backups: int | None,
    signing_type: str | None,
    password_file: str | None,
    as_json: bool,
) -> int:
    """Make a backup or bundle signing key, or a disaster-recovery kit.

    A key is written encrypted with mode 0600 and its pin printed (for a signing
    key its public key too). --kit DIR writes backup keys, their pins and CSRs, a
    signing key, and a README with the commands for an emergency.
    """
    given = {name for name, value in ctx.params.items() if value not in (None, False, ())}
    if (out is None) == (kit is None):
        raise click.UsageError("give --out FILE (one key) or --kit DIR (a disaster-recovery kit)")
    if kit is not None:
        mixed = sorted(flag for name, flag in _KEY_OPTIONS.items() if name in given)
        if mixed:
            raise click.UsageError(f"{', '.join(mixed)} make one key: not with --kit")
        if not names:
            raise click.UsageError("--kit needs --cn NAME: the server name its CSRs are for")
        return _write_kit(
            kit, names, kind, backups or 2, signing_type or "ed25519", password_file, as_json
        )
    assert out is not None
    mixed = sorted(flag for name, flag in _KIT_OPTIONS.items() if name in given)
    if mixed:
        raise click.UsageError(f"{', '.join(mixed)} go with --kit")
    if unencrypted and password_file is not None:
        raise click.UsageError("--unencrypted and --password-file contradict each other")
    return _write_key(
        kind, out, public_out, unencrypted, csr_subject, csr_out, password_file, as_json
    )


def _refuse_existing(*paths: Path | None) -> None:
    for path in paths:
        if path is not None and (path.exists() or path.is_symlink()):
            write_new_file(path, b"", 0o600)  # raises the refusal with the usual message


def _new_password(password_file: str | None, what: str) -> bytes:
    password = read_password(password_file, confirm=True, prompt=f"Password for {what}")
    if not password:
        raise ConfigError(
            f"refusing to write {what} without a password",
            key="--password-file" if password_file else None,
            hint="type a non-empty password, or put one on the first line of --password-file",
        )
    return password


def _write_key(
    kind: str,
    out: Path,
    public_out: Path | None,
    unencrypted: bool,
    csr_subject: str | None,
    csr_out: Path | None,
    password_file: str | None,
    as_json: bool,
) -> int:
    if (csr_subject is None) != (csr_out is None):
        raise click.UsageError("--csr-subject and --csr-out go together")
    # Check everything that can fail before the slow, irreversible part.
    _refuse_existing(out, public_out, csr_out)
    paths = [p.resolve() for p in (out, public_out, csr_out) if p is not None]
    if len(set(paths)) < len(paths):
        raise click.UsageError("--out, --public-out and --csr-out must name different files")
    subject = _subject(csr_subject) if csr_subject is not None else None
    signing = kind in SIGNING_KEY_TYPES
    what = "the new signing key" if signing else "the new key"
    password = None if unencrypted else _new_password(password_file, what)
    key = generate_key(kind)
    write_new_file(out, private_key_pem(key, password), 0o600)
    if unencrypted:
        click.echo(
            f"warning: {out} is NOT encrypted: whoever can read it can "
            + ("sign pin updates your apps accept" if signing else "pose as your server")
            + "; keep it in a secret store, or make it again without --unencrypted",
            err=True,
        )
    pin = spki_pin(key)
    public_pem = public_key_pem(key)
    if public_out is not None:
        write_new_file(public_out, public_pem, 0o644)
    if csr_out is not None:
        csr_pem = signing_request(key, subject=subject).public_bytes(serialization.Encoding.PEM)
        write_new_file(csr_out, csr_pem, 0o644)
    if as_json:
        print_json(
            {
                "key": str(out),
                "type": kind,
                "key_type": key_type(key),
                "pin": str(pin),
                "csr": str(csr_out) if csr_out is not None else None,
                "public_key": public_pem.decode("ascii"),
                "public_out": str(public_out) if public_out is not None else None,
                "encrypted": not unencrypted,
            }
        )
        return int(ExitStatus.OK)
    con = console()
    state = "NOT encrypted" if unencrypted else "encrypted"
    con.print(f"wrote {out} ({key_type(key)}, {state}, mode 0600)", markup=False)
    if public_out is not None:
        con.print(f"wrote {public_out} (public key)", markup=False)
    if csr_out is not None:
        con.print(f"wrote {csr_out} (CSR for {csr_subject})", markup=False)
    if signing:
        con.print(public_pem.decode("ascii").rstrip("\n"), markup=False)
    con.print(f"pin: {pin}", markup=False)
    if signing:
        con.print(
            "Keep the key offline. Apps trust the bundles it signs through its public key;"
            " bundles name the key by its pin.",
            markup=False,
        )
    else:
        con.print("Keep the key offline; put the pin in your policy as a backup pin.", markup=False)
    return int(ExitStatus.OK)


# -- the kit -----------------------------------------------------------------------------


def _check_kit_directory(path: Path) -> bool:
    """Whether ``path`` must be created; a :class:`ConfigError` if it holds anything."""
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        raise ConfigError(
            "not a directory", source=str(path), hint="give a new or empty directory for the kit"
        )
    if not path.exists():
        if not path.parent.is_dir():
            raise ConfigError(
                "cannot create the kit directory: its parent does not exist",
                source=str(path),
                hint=f"create {str(path.parent)!r} first, or choose another --kit path",
            )
        return True
    if any(path.iterdir()):
        raise ConfigError(
            "refusing to write a kit into a non-empty directory",
            source=str(path),
            hint="give a new or empty directory: a kit never mixes with, or overwrites, older keys",
        )
    return False


def _write_kit(
    directory: Path,
    names: tuple[str, ...],
    backup_type: str,
    backups: int,
    signing_type: str,
    password_file: str | None,
    as_json: bool,
) -> int:
    create = _check_kit_directory(directory)
    csr_names(names)  # a bad name is refused before the password is asked for
    password = _new_password(password_file, "the kit's private keys")
    made = recovery_kit(
        names,
        password=password,
        today=dt.datetime.now(dt.timezone.utc).date(),
        backups=backups,
        backup_type=backup_type,
        signing_type=signing_type,
    )
    _put_on_disk(made, directory, create)
    if as_json:
        print_json(_kit_json(made, directory))
        return int(ExitStatus.OK)
    con = console()
    con.print(
        f"wrote the disaster-recovery kit for {', '.join(made.names)} to {directory}/:",
        markup=False,
    )
    rows = [
        (f.name, f"{f.mode:04o}", "offline" if f.secret else "shareable", f.description)
        for f in made.files
    ]
    for line in plain_table(("file", "mode", "keep", "what"), rows):
        con.print("  " + line, markup=False)
    con.print("pins:", markup=False)
    for line in plain_table(
        ("key", "role", "pin"), [(k.key, k.role, str(k.pin)) for k in made.keys]
    ):
        con.print("  " + line, markup=False)
    con.print(
        f"Next: read {directory / 'README.md'}, put the backup pins into your policy,"
        " then move the kit offline.",
        markup=False,
    )
    return int(ExitStatus.OK)


def _put_on_disk(made: RecoveryKit, directory: Path, create: bool) -> None:
    """Write every file, README last; on a failure remove what was written (all or nothing)."""
    written: list[Path] = []
    current: Path | None = None
    created = False
    try:
        if create:
            directory.mkdir(mode=0o700)
            created = True
        for file in made.files:
            current = directory / file.name
            write_new_file(current, file.data, file.mode)
            written.append(current)
            current = None
    except (ConfigError, OSError) as exc:
        # A ConfigError: the file could not be created, so it is not ours. An OSError
        # came from writing into the file just created: it goes with the others.
        if isinstance(exc, OSError) and current is not None:
            written.append(current)
        for path in written:
            path.unlink(missing_ok=True)
        if created:
            with contextlib.suppress(OSError):
                directory.rmdir()
        message = exc.message if isinstance(exc, ConfigError) else (exc.strerror or str(exc))
        if isinstance(exc, ConfigError):
            source = exc.source
        else:
            source = str(current if current is not None else directory)
        raise ConfigError(
            f"cannot write the kit: {message}; nothing of it was kept",
            source=source,
            hint="free some space or choose another --kit directory, and run the command again",
        ) from None


def _kit_json(made: RecoveryKit, directory: Path) -> dict[str, object]:
    return {
        "kit": str(directory),
        "names": list(made.names),
        "made": made.made.isoformat(),
        "keys": [
            {
                "role": k.role,
                "key_type": k.key_type,
                "pin": str(k.pin),
                "key": str(directory / k.key),
                "public_key": str(directory / k.public_key),
                "csr": str(directory / k.csr) if k.csr is not None else None,
            }
            for k in made.keys
        ],
        "files": [
            {
                "path": str(directory / f.name),
                "kind": f.kind,
                "mode": f"{f.mode:04o}",
                "secret": f.secret,
            }
            for f in made.files
        ],
    }
