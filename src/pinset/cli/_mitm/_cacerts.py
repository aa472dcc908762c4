"""The JVM's own default trust store (``cacerts``): where it is, and the certificates in it.

``pinset mitm --jvm-cacerts`` adds these to the JVM trust store it writes, so a JVM
under attack keeps trusting what it trusted before (for TLS that does not go through
the proxy, such as a database driver) on top of ``--cafile`` or the system bundle.
``cacerts`` is a JKS file up to JDK 17 and a password-less PKCS#12 file from JDK 18 on;
JKS is read here after OpenJDK's ``sun.security.provider.JavaKeyStore.engineLoad``.
Only public certificates are read; the integrity digest is not checked, because the
file is the JVM's own and nothing in it is secret or trusted more for being read here.
"""

from __future__ import annotations

import os
import shutil
import struct
import warnings
from collections.abc import Mapping
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.utils import CryptographyDeprecationWarning

from pinset.errors import ConfigError

__all__ = ["cacerts_certificates", "find_cacerts", "jvm_cacerts"]

_JKS_MAGIC = 0xFEEDFEED
_PRIVATE_KEY, _TRUSTED_CERT = 1, 2
# The password every JDK ships cacerts with (JDK 18+ stores need none).
_DEFAULT_PASSWORD = b"changeit"


def find_cacerts(env: Mapping[str, str]) -> Path:
    """The ``cacerts`` of the JVM the client would run: ``$JAVA_HOME``'s, else ``java``'s."""
    homes: list[Path] = []
    if env.get("JAVA_HOME"):
        homes.append(Path(env["JAVA_HOME"]))
    java = shutil.which("java", path=env.get("PATH", os.defpath))
    if java is not None:
        homes.append(Path(os.path.realpath(java)).parent.parent)
    for home in homes:
        for candidate in (home / "lib/security/cacerts", home / "jre/lib/security/cacerts"):
            if candidate.is_file():
                return candidate
    raise ConfigError(
        "cannot find the JVM's cacerts (lib/security/cacerts)",
        key="--jvm-cacerts",
        hint="set JAVA_HOME to the JDK the client runs on, or put its java on PATH",
    )


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.at = 0

    def take(self, size: int) -> bytes:
        if size < 0 or self.at + size > len(self.data):
            raise ValueError("truncated")
        chunk = self.data[self.at : self.at + size]
        self.at += size
        return chunk

    def u16(self) -> int:
        value: int = struct.unpack(">H", self.take(2))[0]
        return value

    def u32(self) -> int:
        value: int = struct.unpack(">I", self.take(4))[0]
        return value

    def utf(self) -> bytes:  # Java's DataInput.readUTF: a 2-byte length, then the bytes
        return self.take(self.u16())


def _jks_certificates(data: bytes) -> list[bytes]:
    """The DER of every trusted-certificate entry of a JKS store (keys are skipped)."""
    read = _Reader(data)
    if read.u32() != _JKS_MAGIC:
        raise ValueError("not a JKS key store")
    version = read.u32()
    if version not in (1, 2):
        raise ValueError(f"unknown JKS version {version}")
    out: list[bytes] = []
    for _ in range(read.u32()):
        tag = read.u32()
        read.utf()  # alias
        read.take(8)  # creation date
        if tag == _TRUSTED_CERT:
            cert_type = read.utf() if version == 2 else b"X.509"
            der = read.take(read.u32())
            if cert_type == b"X.509":
                out.append(der)
        elif tag == _PRIVATE_KEY:
            read.take(read.u32())  # the encrypted key
            for _ in range(read.u32()):  # its certificate chain
                if version == 2:
                    read.utf()
                read.take(read.u32())
        else:
            raise ValueError(f"unknown JKS entry type {tag}")
    return out


def _pkcs12_certificates(data: bytes) -> list[x509.Certificate]:
    for password in (None, _DEFAULT_PASSWORD):
        try:
            store = pkcs12.load_pkcs12(data, password)
        except ValueError:
            continue
        certs = [c.certificate for c in store.additional_certs]
        return [store.cert.certificate, *certs] if store.cert is not None else certs
    raise ValueError("not a JKS or PKCS#12 key store, or not the default password")


def cacerts_certificates(data: bytes, source: str) -> list[x509.Certificate]:
    """Every trusted certificate in a JVM ``cacerts`` file (JKS or PKCS#12)."""
    try:
        with warnings.catch_warnings():
            # Shipped roots with negative serial numbers are still roots the JVM trusts.
            warnings.simplefilter("ignore", CryptographyDeprecationWarning)
            if data[:4] == struct.pack(">I", _JKS_MAGIC):
                return [x509.load_der_x509_certificate(der) for der in _jks_certificates(data)]
            return _pkcs12_certificates(data)
    except ValueError as exc:
        raise ConfigError(
            f"cannot read the JVM's cacerts: {exc}",
            source=source,
            key="--jvm-cacerts",
            hint="leave out --jvm-cacerts, or give the CAs with --cafile",
        ) from None


def jvm_cacerts(env: Mapping[str, str]) -> list[x509.Certificate]:
    """The certificates of the ``cacerts`` that :func:`find_cacerts` finds in *env*."""
    store = find_cacerts(env)
    try:
        data = store.read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"cannot read the JVM's cacerts: {exc.strerror or exc}", source=str(store)
        ) from None
    return cacerts_certificates(data, str(store))
