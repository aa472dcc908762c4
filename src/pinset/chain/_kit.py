"""The disaster-recovery kit: backup keys, their pins and CSRs, a bundle signing key, a README.

:func:`recovery_kit` makes every key and writes every file *in memory*, as
:class:`KitFile` values; ``pinset keygen --kit DIR`` only puts them on disk. What each
file is, who may see it and where it is kept is said once, in the :class:`KitFile`
(``description``, ``secret``), and the README, ``pins.txt`` and ``--json`` all read it
from there. The README's text is in :mod:`pinset.chain._kit_readme`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization

from pinset.chain import key_type
from pinset.chain._keys import (
    KEY_TYPES,
    SIGNING_KEY_TYPES,
    csr_names,
    generate_key,
    private_key_pem,
    public_key_pem,
    signing_request,
)
from pinset.chain._kit_readme import policy_snippet, readme
from pinset.errors import ConfigError
from pinset.pins import Pin, spki_pin

__all__ = ["KitFile", "KitKey", "RecoveryKit", "recovery_kit"]

# Enough for a spare after the first emergency; more than a handful is a typing mistake.
_MAX_BACKUPS = 10

_SECRET_MODE = 0o600
_SHARED_MODE = 0o644


@dataclass(frozen=True, slots=True)
class KitFile:
    """One file of the kit: its name in the kit directory, its bytes and what it is for.

    ``secret`` files (private keys) are created with mode 0600 and kept offline; the
    others (public keys, CSRs, pins, the README) may be shared and get 0644.
    """

    name: str
    data: bytes
    kind: str
    description: str
    secret: bool = False

    @property
    def mode(self) -> int:
        """The file mode the kit is written with: 0600 for a secret, else 0644."""
        return _SECRET_MODE if self.secret else _SHARED_MODE


@dataclass(frozen=True, slots=True)
class KitKey:
    """A key pair of the kit: ``role`` is ``backup`` or ``signing``; files by name."""

    role: str
    label: str
    key_type: str
    pin: Pin
    key: str
    public_key: str
    csr: str | None = None


@dataclass(frozen=True, slots=True)
class RecoveryKit:
    """What :func:`recovery_kit` made: the keys (backups first) and every file, README last."""

    names: tuple[str, ...]
    made: dt.date
    keys: tuple[KitKey, ...]
    files: tuple[KitFile, ...]

    @property
    def backups(self) -> tuple[KitKey, ...]:
        """The backup keys, in order."""
        return tuple(k for k in self.keys if k.role == "backup")

    @property
    def signing(self) -> KitKey:
        """The bundle signing key."""
        return next(k for k in self.keys if k.role == "signing")


def recovery_kit(
    names: Sequence[str],
    *,
    password: bytes,
    today: dt.date,
    backups: int = 2,
    backup_type: str = "ec-p256",
    signing_type: str = "ed25519",
) -> RecoveryKit:
    """A new kit for the servers called ``names``, every private key encrypted with ``password``.

    ``backups`` key pairs of ``backup_type`` each get a CSR (CN: the first name; SAN: all
    of them), and one ``signing_type`` key signs pin-set bundles. ``today`` dates the
    README. Everything is checked before the first key is made.
    """
    hosts = csr_names(names)
    if not 1 <= backups <= _MAX_BACKUPS:
        raise ConfigError(
            f"{backups} backup keys: a kit holds 1 to {_MAX_BACKUPS}",
            key="--backups",
            hint="2 (the default) leaves a spare after the first emergency",
        )
    if backup_type not in KEY_TYPES:
        raise ConfigError(
            f"unknown key type {backup_type!r}",
            key="--type",
            hint=f"use one of {', '.join(KEY_TYPES)}",
        )
    if signing_type not in SIGNING_KEY_TYPES:
        raise ConfigError(
            f"{signing_type!r} cannot sign bundles",
            key="--signing-type",
            hint=f"use one of {', '.join(SIGNING_KEY_TYPES)}",
        )
    if not password:
        raise ConfigError(
            "refusing to make a kit without a password",
            key="--password-file",
            hint="type a non-empty password, or put one on the first line of --password-file",
        )
    keys: list[KitKey] = []
    files: list[KitFile] = []
    for number in range(1, backups + 1):
        label = f"backup-{number}"
        private = generate_key(backup_type)
        kind = key_type(private)
        csr = signing_request(private, hosts)
        key = KitKey(
            "backup", label, kind, spki_pin(private), f"{label}.key", f"{label}.pub", f"{label}.csr"
        )
        keys.append(key)
        files += [
            KitFile(
                key.key,
                private_key_pem(private, password),
                "backup-key",
                f"backup private key {number} ({kind}, encrypted)",
                secret=True,
            ),
            KitFile(
                key.public_key,
                public_key_pem(private),
                "backup-public-key",
                f"public key of {key.key}",
            ),
            KitFile(
                f"{label}.csr",
                csr.public_bytes(serialization.Encoding.PEM),
                "csr",
                f"CSR of {key.key} for {', '.join(hosts)}: a CA certifies the key from it",
            ),
        ]
    signer = generate_key(signing_type)
    signing = KitKey(
        "signing", "signing", key_type(signer), spki_pin(signer), "signing.key", "signing.pub"
    )
    keys.append(signing)
    files += [
        KitFile(
            signing.key,
            private_key_pem(signer, password),
            "signing-key",
            f"the bundle signing key ({signing.key_type}, encrypted)",
            secret=True,
        ),
        KitFile(
            signing.public_key,
            public_key_pem(signer),
            "signing-public-key",
            f"public key of {signing.key}: apps trust the bundles it signs",
        ),
    ]
    kit = RecoveryKit(hosts, today, tuple(keys), ())
    files += [
        KitFile("pins.txt", _pins_txt(kit).encode(), "pins", "the pins of the kit's keys"),
        KitFile(
            "pinset-snippet.toml",
            policy_snippet(kit).encode(),
            "policy-snippet",
            "the backup pins as pinset.toml lines",
        ),
    ]
    kit = RecoveryKit(hosts, today, tuple(keys), tuple(files))
    readme_file = KitFile(
        "README.md", readme(kit).encode(), "readme", "where to keep each file; what to run when"
    )
    return RecoveryKit(hosts, today, tuple(keys), (*files, readme_file))


def _pins_txt(kit: RecoveryKit) -> str:
    lines = [
        f"# Pins of the disaster-recovery kit for {', '.join(kit.names)}, made {kit.made}.",
        "# Backup keys: add these pins to every [[domain]] of pinset.toml they protect.",
    ]
    lines += [f"{k.pin}  {k.key}  {k.key_type}" for k in kit.backups]
    lines.append("# Bundle signing key: how signed pin-set bundles name it (not a TLS pin).")
    lines.append(f"{kit.signing.pin}  {kit.signing.key}  {kit.signing.key_type}")
    return "\n".join(lines) + "\n"
