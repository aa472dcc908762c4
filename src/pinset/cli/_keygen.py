"""``pinset keygen``: make an offline backup key, print its pin, optionally a CSR.

The key is written encrypted (PKCS#8, the best encryption cryptography offers)
with mode 0600, and never over an existing file: losing a backup key to an
overwrite is exactly the disaster it exists to prevent.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from pinset.chain import key_type
from pinset.cli._app import Choice, SectionedCommand
from pinset.cli._files import write_new_file
from pinset.cli._inputs import read_password
from pinset.cli._options import json_option, password_file_option
from pinset.cli._output import console, print_json
from pinset.errors import ConfigError
from pinset.pins import spki_pin
from pinset.status import ExitStatus

__all__ = ["KEY_TYPES", "command", "generate"]

KEY_TYPES = ("ec-p256", "ec-p384", "rsa-2048", "rsa-3072", "rsa-4096", "ed25519")


def generate(kind: str) -> Any:
    """A new private key of ``kind`` (one of :data:`KEY_TYPES`)."""
    if kind == "ec-p256":
        return ec.generate_private_key(ec.SECP256R1())
    if kind == "ec-p384":
        return ec.generate_private_key(ec.SECP384R1())
    if kind.startswith("rsa-"):
        return rsa.generate_private_key(public_exponent=65537, key_size=int(kind[4:]))
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    raise ConfigError(f"unknown key type {kind!r}", hint=f"use one of {', '.join(KEY_TYPES)}")


def _csr(key: Any, subject: str) -> x509.CertificateSigningRequest:
    try:
        name = x509.Name.from_rfc4514_string(subject)
    except ValueError as exc:
        raise ConfigError(
            f"not a distinguished name: {subject!r}" + (f" ({exc})" if str(exc) else ""),
            key="--csr-subject",
            hint='write it as in RFC 4514, e.g. "CN=api.example.com,O=Example"',
        ) from None
    if not len(name):
        raise ConfigError(
            "the CSR subject is empty",
            key="--csr-subject",
            hint='e.g. "CN=api.example.com,O=Example"',
        )
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, algorithm)


_EPILOG = """\b
Examples:
  pinset keygen --out backup.key
  pinset keygen --type rsa-3072 --out backup.key --password-file pass.txt
  pinset keygen --out backup.key --csr-subject "CN=api.example.com,O=Example" \\
      --csr-out backup.csr --json

\b
Exit status: 0 written, 2 an existing file, a bad subject or an empty password."""


@click.command(
    "keygen",
    cls=SectionedCommand,
    epilog=_EPILOG,
    sections={
        "Key": ["kind", "out", "password_file"],
        "Certificate signing request": ["csr_subject", "csr_out"],
        "Output": ["as_json"],
    },
)
@click.option(
    "--type",
    "kind",
    type=Choice(KEY_TYPES),
    default="ec-p256",
    show_default=True,
    help="Key algorithm and size.",
)
@click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Where to write the encrypted private key (must not exist).",
)
@click.option("--csr-subject", help='Also make a CSR with this subject, e.g. "CN=api.example.com".')
@click.option(
    "--csr-out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the CSR (PEM; must not exist).",
)
@password_file_option(help="Read the password from the first line of this file, not a prompt.")
@json_option(help="Print the file names and the pin as JSON.")
def command(
    kind: str,
    out: Path,
    csr_subject: str | None,
    csr_out: Path | None,
    password_file: str | None,
    as_json: bool,
) -> int:
    """Make an offline backup key (encrypted, mode 0600) and print its pin."""
    if (csr_subject is None) != (csr_out is None):
        raise click.UsageError("--csr-subject and --csr-out go together")
    # Check everything that can fail before the slow, irreversible part.
    for path in (out, csr_out):
        if path is not None and (path.exists() or path.is_symlink()):
            write_new_file(path, b"", 0o600)  # raises the refusal with the usual message
    if csr_subject is not None:
        _csr(ec.generate_private_key(ec.SECP256R1()), csr_subject)
    password = read_password(password_file, confirm=True, prompt="Password for the new key")
    if not password:
        raise ConfigError(
            "refusing to write a backup key without a password",
            key="--password-file" if password_file else None,
            hint="type a non-empty password, or put one on the first line of --password-file",
        )
    key = generate(kind)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(password),
    )
    write_new_file(out, pem, 0o600)
    pin = spki_pin(key)
    csr_pem: bytes | None = None
    if csr_subject is not None and csr_out is not None:
        csr_pem = _csr(key, csr_subject).public_bytes(serialization.Encoding.PEM)
        write_new_file(csr_out, csr_pem, 0o644)
    if as_json:
        print_json(
            {
                "key": str(out),
                "type": kind,
                "key_type": key_type(key),
                "pin": str(pin),
                "csr": str(csr_out) if csr_out is not None else None,
            }
        )
        return int(ExitStatus.OK)
    con = console()
    con.print(f"wrote {out} ({key_type(key)}, encrypted, mode 0600)", markup=False)
    if csr_out is not None:
        con.print(f"wrote {csr_out} (CSR for {csr_subject})", markup=False)
    con.print(f"pin: {pin}", markup=False)
    con.print("Keep the key offline; put the pin in your policy as a backup pin.", markup=False)
    return int(ExitStatus.OK)
