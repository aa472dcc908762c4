"""Chains from the world: fetch what a host serves, read what a file holds.

:func:`fetch_chain` (and :func:`async_fetch_chain`) connect over TCP and TLS and
return the chain the server *served* and, when validation against the given trust
succeeds, the chain OpenSSL *verified*. :func:`load_chain` reads PEM bundles (with
certificates, keys and CSRs mixed), DER, PKCS#7 and PKCS#12 files.
:func:`order_chain` and :func:`cert_role` arrange and label what was found.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import ssl
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeAlias

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa, x448, x25519
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12

from pinset.errors import ChainError, NetworkError
from pinset.evaluate import chain_der

__all__ = [
    "FetchedChain",
    "Key",
    "LoadedChain",
    "PasswordError",
    "Role",
    "async_fetch_chain",
    "cert_role",
    "fetch_chain",
    "key_type",
    "load_chain",
    "network_error",
    "order_chain",
    "peer_chain",
    "verifying_context",
]

Role = Literal["leaf", "intermediate", "root"]
Key: TypeAlias = Any  # a cryptography public or private key object

_EXPECTED = (
    "expected a certificate, chain, key or CSR in PEM or DER, a PKCS#7 bundle or a PKCS#12 file"
)
# Capturing what a server sends should work even for weak or old servers; only the
# verifying handshake keeps OpenSSL's default security level.
_CAPTURE_CIPHERS = "DEFAULT:@SECLEVEL=0"


# -- fetching ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FetchedChain:
    """What a TLS server presented.

    ``served`` is the list the server sent, in its order. ``verified`` is the path
    certificate validation built from the leaf to a trust anchor (``None`` when
    validation failed or was not attempted; then ``verify_error`` says why).
    """

    host: str
    port: int
    server_name: str | None
    served: tuple[x509.Certificate, ...]
    verified: tuple[x509.Certificate, ...] | None
    verify_error: str | None
    tls_version: str | None
    cipher: str | None


def _capture_context() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with contextlib.suppress(ssl.SSLError):  # a libssl without security levels
        ctx.set_ciphers(_CAPTURE_CIPHERS)
    return ctx


def verifying_context(
    cafile: str | os.PathLike[str] | None = None, cadata: str | bytes | None = None
) -> ssl.SSLContext:
    """A client context checking chains and names against ``cafile``/``cadata`` or the system store.

    Build it once and pass it as ``context=`` when fetching many chains.
    """
    if cafile is None and cadata is None:
        return ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        ctx.load_verify_locations(cafile=cafile, cadata=cadata)
    except (OSError, ssl.SSLError, ValueError) as exc:
        raise ChainError(
            f"cannot load the trusted CA certificates: {exc}",
            source=str(cafile) if cafile is not None else None,
            hint="give a PEM file of CA certificates (--cafile)",
        ) from None
    return ctx


def _certs(chain: Iterable[Any] | None) -> tuple[x509.Certificate, ...]:
    return tuple(x509.load_der_x509_certificate(der) for der in chain_der(list(chain or ())))


def peer_chain(
    obj: ssl.SSLSocket | ssl.SSLObject, *, verified: bool = False
) -> tuple[x509.Certificate, ...]:
    """The chain the peer of handshaken ``obj`` served (with ``verified``: the verified chain)."""
    # Public from Python 3.13; the C object has had both methods since 3.10.
    inner: Any = obj if hasattr(obj, "get_unverified_chain") else obj._sslobj  # type: ignore[union-attr]
    return _certs(inner.get_verified_chain() if verified else inner.get_unverified_chain())


def network_error(host: str, port: int, exc: BaseException, timeout: float) -> NetworkError:
    """A :class:`NetworkError` with a hint for a socket, DNS, timeout or handshake error."""
    where = f"{host}:{port}"
    if isinstance(exc, socket.gaierror):
        return NetworkError(
            f"cannot resolve {host!r}: {exc.strerror or exc}",
            source=where,
            hint="check the host name (and your DNS); use host:port for a port other than 443",
        )
    if isinstance(exc, TimeoutError | socket.timeout | asyncio.TimeoutError):
        return NetworkError(
            f"no answer within {timeout:g} s",
            source=where,
            hint="check that the host is up and no firewall drops the port; or raise --timeout",
        )
    if isinstance(exc, ConnectionRefusedError):
        return NetworkError(
            "connection refused",
            source=where,
            hint=f"nothing listens on port {port}; check the port (host:port)",
        )
    if isinstance(exc, ssl.SSLError):
        return NetworkError(
            f"TLS handshake failed: {exc.reason or exc}",
            source=where,
            hint="check that this port speaks TLS directly (not STARTTLS or plain HTTP)",
        )
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return NetworkError(
        f"connection failed: {text}",
        source=where,
        hint="check the host name, the port and your network",
    )


def _verify_message(exc: ssl.SSLError) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError) and exc.verify_message:
        return str(exc.verify_message)
    return str(exc.reason or exc)


def _fetched(
    host: str,
    port: int,
    server_name: str | None,
    obj: ssl.SSLSocket | ssl.SSLObject,
    verified: bool,
    verify_error: str | None,
) -> FetchedChain:
    cipher = obj.cipher()
    return FetchedChain(
        host=host,
        port=port,
        server_name=server_name,
        served=peer_chain(obj),
        verified=peer_chain(obj, verified=True) if verified else None,
        verify_error=verify_error,
        tls_version=obj.version(),
        cipher=cipher[0] if cipher else None,
    )


def _handshake(
    host: str, port: int, sni: str | None, ctx: ssl.SSLContext, timeout: float
) -> ssl.SSLSocket:
    sock = socket.create_connection((host, port), timeout=timeout)
    try:
        return ctx.wrap_socket(sock, server_hostname=sni)
    except BaseException:
        sock.close()
        raise


def fetch_chain(
    host: str,
    port: int = 443,
    *,
    server_name: str | None = None,
    timeout: float = 10.0,
    cafile: str | os.PathLike[str] | None = None,
    cadata: str | bytes | None = None,
    context: ssl.SSLContext | None = None,
    verify: bool = True,
) -> FetchedChain:
    """Connect to ``host:port`` and return the chain it serves (and the verified chain).

    Validation uses ``context`` (a verifying client context you made), else
    ``cafile``/``cadata``, else the system trust store; the name checked and sent
    as SNI is ``server_name`` or ``host``. When validation fails the served chain
    is captured with a second, non-verifying handshake and ``verify_error`` says
    what failed. ``verify=False`` makes one non-verifying handshake only.
    Unreachable hosts and failed handshakes raise :class:`NetworkError`.
    """
    sni = server_name or host
    verify_error: str | None = None
    if verify:
        ctx = context if context is not None else verifying_context(cafile, cadata)
        try:
            with _handshake(host, port, sni, ctx, timeout) as tls:
                return _fetched(host, port, server_name, tls, True, None)
        except ssl.SSLError as exc:
            # Validation failed (or the verifying settings were refused): fall
            # through to a non-verifying handshake that still sees the chain.
            verify_error = _verify_message(exc)
        except OSError as exc:
            raise network_error(host, port, exc, timeout) from None
    try:
        with _handshake(host, port, sni, _capture_context(), timeout) as tls:
            return _fetched(host, port, server_name, tls, False, verify_error)
    except OSError as exc:
        raise network_error(host, port, exc, timeout) from None


async def _async_handshake(
    host: str,
    port: int,
    sni: str | None,
    ctx: ssl.SSLContext,
    timeout: float,
    verified: bool,
    server_name: str | None,
    verify_error: str | None,
) -> FetchedChain:
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection(host, port, ssl=ctx, server_hostname=sni), timeout
    )
    del reader
    try:
        obj = writer.get_extra_info("ssl_object")
        return _fetched(host, port, server_name, obj, verified, verify_error)
    finally:
        # A scanner does not wait for close_notify from hundreds of servers.
        writer.transport.abort()


async def async_fetch_chain(
    host: str,
    port: int = 443,
    *,
    server_name: str | None = None,
    timeout: float = 10.0,
    cafile: str | os.PathLike[str] | None = None,
    cadata: str | bytes | None = None,
    context: ssl.SSLContext | None = None,
    verify: bool = True,
) -> FetchedChain:
    """:func:`fetch_chain` for asyncio: one handshake when validation succeeds or ``verify=False``.

    Build the verifying ``context`` once and pass it in when scanning many hosts:
    loading the trust store is the costly part of a client context.
    """
    sni = server_name or host
    verify_error: str | None = None
    try:
        if verify:
            ctx = context if context is not None else verifying_context(cafile, cadata)
            try:
                return await _async_handshake(
                    host, port, sni, ctx, timeout, True, server_name, None
                )
            except ssl.SSLError as exc:
                verify_error = _verify_message(exc)
        return await _async_handshake(
            host, port, sni, _capture_context(), timeout, False, server_name, verify_error
        )
    except (OSError, asyncio.TimeoutError) as exc:
        raise network_error(host, port, exc, timeout) from None


# -- loading ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LoadedChain:
    """What a file held: certificates (in file order), keys and CSRs."""

    certificates: tuple[x509.Certificate, ...]
    keys: tuple[Key, ...]
    csrs: tuple[x509.CertificateSigningRequest, ...]
    source: str | None


class PasswordError(ChainError):
    """An encrypted key or PKCS#12 file without the right password.

    ``missing`` is true when no password was given (a caller may prompt and retry).
    """

    def __init__(self, message: str, *, missing: bool, source: str | None, hint: str) -> None:
        self.missing = missing
        super().__init__(message, source=source, hint=hint)


_CERT_BLOCKS = {"CERTIFICATE", "X509 CERTIFICATE", "TRUSTED CERTIFICATE"}
_CSR_BLOCKS = {"CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST"}
_PUBLIC_BLOCKS = {"PUBLIC KEY", "RSA PUBLIC KEY"}
_PKCS7_BLOCKS = {"PKCS7", "PKCS #7 SIGNED DATA", "CMS"}
_PASSWORD_HINT = "give the password (pinset pin --password-file FILE)"  # noqa: S105
# PKCS#12: SEQUENCE { INTEGER 3, ContentInfo { OID pkcs7-data ...
_PKCS12_VERSION = b"\x02\x01\x03\x30"


def load_chain(
    path_or_bytes: str | os.PathLike[str] | bytes,
    *,
    password: bytes | str | None = None,
    source: str | None = None,
) -> LoadedChain:
    """Read certificates, keys and CSRs from a file (path) or its bytes.

    Understands PEM bundles (blocks of any of those kinds, mixed), DER certificates,
    keys and CSRs, PKCS#7 (PEM or DER) and PKCS#12 (with ``password``). Anything
    else raises :class:`ChainError` naming ``source`` (default: the path); a
    missing or wrong password raises :class:`PasswordError`.
    """
    if isinstance(path_or_bytes, bytes | bytearray | memoryview):
        data = bytes(path_or_bytes)
    else:
        source = source or os.fspath(path_or_bytes)
        try:
            data = Path(path_or_bytes).read_bytes()
        except IsADirectoryError:
            raise ChainError("is a directory", source=source, hint=_EXPECTED) from None
        except OSError as exc:
            raise ChainError(
                f"cannot read: {exc.strerror or exc}", source=source, hint=_EXPECTED
            ) from None
    if isinstance(password, str):
        password = password.encode("utf-8", "surrogatepass")
    elif isinstance(password, bytearray | memoryview):
        password = bytes(password)
    elif password is not None and not isinstance(password, bytes):
        raise ChainError(
            f"the password must be text or bytes, not {type(password).__name__}",
            source=source,
            key="password",
            hint=_PASSWORD_HINT,
        )
    if not data.strip():
        raise ChainError("the file is empty", source=source, hint=_EXPECTED)
    if b"-----BEGIN " in data:
        return _load_pem(data, password, source)
    return _load_der(data, password, source)


def _load_pem(data: bytes, password: bytes | None, source: str | None) -> LoadedChain:
    certs: list[x509.Certificate] = []
    keys: list[Key] = []
    csrs: list[x509.CertificateSigningRequest] = []
    start = 0
    index = 0
    while True:
        begin = data.find(b"-----BEGIN ", start)
        if begin < 0:
            break
        head_end = data.find(b"-----", begin + 11)
        if head_end < 0:
            break
        kind = data[begin + 11 : head_end].decode("ascii", "replace").strip()
        end_marker = b"-----END " + kind.encode("ascii", "replace") + b"-----"
        end = data.find(end_marker, head_end)
        if end < 0:
            raise ChainError(
                f"PEM block #{index + 1} ({kind}) has no END line", source=source, hint=_EXPECTED
            )
        block = data[begin : end + len(end_marker)]
        start = end + len(end_marker)
        index += 1
        try:
            if kind in _CERT_BLOCKS:
                certs.append(x509.load_pem_x509_certificate(block.replace(b"TRUSTED ", b"")))
            elif kind in _CSR_BLOCKS:
                csrs.append(x509.load_pem_x509_csr(block))
            elif kind in _PUBLIC_BLOCKS:
                keys.append(serialization.load_pem_public_key(block))
            elif kind in _PKCS7_BLOCKS:
                certs.extend(pkcs7.load_pem_pkcs7_certificates(block))
            elif kind.endswith("PRIVATE KEY"):
                keys.append(_private_key(block, password, source, pem=True))
            # Other blocks (EC PARAMETERS, DH PARAMETERS, ...) carry no public key.
        except PasswordError:
            raise
        except (ValueError, TypeError, UnsupportedAlgorithm, x509.InvalidVersion) as exc:
            raise ChainError(
                f"PEM block #{index} ({kind}) does not parse: {exc}", source=source, hint=_EXPECTED
            ) from None
    if not (certs or keys or csrs):
        raise ChainError(
            "no certificate, key or CSR among the PEM blocks", source=source, hint=_EXPECTED
        )
    return LoadedChain(tuple(certs), tuple(keys), tuple(csrs), source)


def _private_key(data: bytes, password: bytes | None, source: str | None, *, pem: bool) -> Key:
    load = serialization.load_pem_private_key if pem else serialization.load_der_private_key
    try:
        return load(data, password=password)
    except TypeError as exc:
        # cryptography: "Password was not given but private key is encrypted", or the reverse.
        # An empty password counts as none given (cryptography treats it so).
        if "not encrypted" in str(exc):
            return load(data, password=None)
        if not password:
            raise PasswordError(
                "the private key is encrypted and no password was given",
                missing=True,
                source=source,
                hint=_PASSWORD_HINT,
            ) from None
        raise
    except ValueError:
        if password is not None and _is_encrypted_key(load, data):
            raise PasswordError(
                "wrong password for the encrypted private key",
                missing=False,
                source=source,
                hint=_PASSWORD_HINT,
            ) from None
        raise


def _is_encrypted_key(load: Any, data: bytes) -> bool:
    """True if ``data`` is an encrypted key: loading it without a password asks for one."""
    try:
        load(data, password=None)
    except TypeError:  # "Password was not given but private key is encrypted"
        return True
    except ValueError:
        return False
    return False


def _usable_pkcs12_password(password: bytes) -> bool:
    """Whether OpenSSL can take ``password`` for PKCS#12 at all.

    cryptography passes it on as a C string of UTF-8 text: a NUL byte makes it panic
    (a BaseException) and other non-UTF-8 bytes make it raise a bare TypeError. Such a
    password cannot be the right one, so it is treated as a wrong password.
    """
    if b"\x00" in password:
        return False
    try:
        password.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _looks_like_pkcs12(data: bytes) -> bool:
    if len(data) < 8 or data[0] != 0x30:
        return False
    length_octets = data[1] & 0x7F if data[1] & 0x80 else 0
    offset = 2 + length_octets
    return data[offset : offset + 4] == _PKCS12_VERSION


def _load_der(data: bytes, password: bytes | None, source: str | None) -> LoadedChain:
    if _looks_like_pkcs12(data):
        return _load_pkcs12(data, password, source)
    readers: tuple[Callable[[], LoadedChain], ...] = (
        lambda: LoadedChain((x509.load_der_x509_certificate(data),), (), (), source),
        lambda: LoadedChain(tuple(pkcs7.load_der_pkcs7_certificates(data)), (), (), source),
        lambda: LoadedChain((), (), (x509.load_der_x509_csr(data),), source),
        lambda: LoadedChain((), (serialization.load_der_public_key(data),), (), source),
        lambda: LoadedChain((), (_private_key(data, password, source, pem=False),), (), source),
    )
    unsupported: UnsupportedAlgorithm | None = None
    for read in readers:
        try:
            return read()
        except PasswordError:  # a ChainError, so a ValueError: let it through
            raise
        except UnsupportedAlgorithm as exc:  # a key structure with an unknown algorithm
            unsupported = unsupported or exc
        except (ValueError, TypeError, x509.InvalidVersion):
            pass
    if unsupported is not None:
        raise ChainError(
            f"unsupported key algorithm: {unsupported}", source=source, hint=_EXPECTED
        ) from None
    raise ChainError(
        "unrecognised content (neither PEM nor a known DER structure)",
        source=source,
        hint=_EXPECTED,
    )


def _load_pkcs12(data: bytes, password: bytes | None, source: str | None) -> LoadedChain:
    # A file without a password opens with none (or an empty one) whatever was given.
    attempts = [None, b""] if password is None else [password, None, b""]
    for attempt in attempts:
        if attempt and not _usable_pkcs12_password(attempt):
            continue
        try:
            key, cert, extra = pkcs12.load_key_and_certificates(data, attempt)
        except ValueError:
            continue
        certs = ([cert] if cert is not None else []) + list(extra)
        keys = [key] if key is not None else []
        if not (certs or keys):
            raise ChainError(
                "the PKCS#12 file holds no certificate or key", source=source, hint=_EXPECTED
            )
        return LoadedChain(tuple(certs), tuple(keys), (), source)
    if not password:
        raise PasswordError(
            "the PKCS#12 file is password-protected and no password was given",
            missing=True,
            source=source,
            hint=_PASSWORD_HINT,
        )
    raise PasswordError(
        "wrong password for the PKCS#12 file (or the file is damaged)",
        missing=False,
        source=source,
        hint=_PASSWORD_HINT,
    )


# -- arranging --------------------------------------------------------------------


def _self_issued(cert: x509.Certificate) -> bool:
    return cert.issuer == cert.subject


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    return cert.issuer == issuer.subject and cert is not issuer


def order_chain(certs: Sequence[x509.Certificate]) -> tuple[x509.Certificate, ...]:
    """``certs`` leaf first, following issuer/subject links; unlinked members follow in input order.

    The leaf is the first certificate that issued no other member (a non-CA
    first, a self-issued one last). Duplicates are kept once.
    """
    unique: list[x509.Certificate] = []
    for cert in certs:
        if cert not in unique:
            unique.append(cert)
    if not unique:
        return ()
    issuers = {id(c) for c in unique for other in unique if _issued_by(other, c)}
    # Prefer a non-CA, then anything not self-issued: a stray root issues nothing
    # either, but it is not where a chain starts.
    ends = [c for c in unique if id(c) not in issuers] or unique
    leaf = next(
        (c for c in ends if _is_ca(c) is False),
        next((c for c in ends if not _self_issued(c)), ends[0]),
    )
    ordered = [leaf]
    current = leaf
    while not _self_issued(current):
        parent = next((c for c in unique if c not in ordered and _issued_by(current, c)), None)
        if parent is None:
            break
        ordered.append(parent)
        current = parent
    ordered.extend(c for c in unique if c not in ordered)
    return tuple(ordered)


def _is_ca(cert: x509.Certificate) -> bool | None:
    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return None


def cert_role(cert: x509.Certificate, position: int, chain: Sequence[x509.Certificate]) -> Role:
    """The role of ``cert`` at ``position`` in ``chain``: leaf, intermediate or root.

    A self-issued CA is a root; position 0 or a non-CA is a leaf; the rest are
    intermediates.

    ``chain`` is the list ``cert`` sits in; a self-issued certificate that is not
    a CA (a self-signed server certificate) is a leaf.
    """
    is_ca = _is_ca(cert)
    if _self_issued(cert) and is_ca is not False:
        return "root"
    if position == 0 or is_ca is False:
        return "leaf"
    issues_member = any(_issued_by(other, cert) for other in chain)
    return "intermediate" if issues_member or is_ca else "leaf"


def key_type(obj: Any) -> str:
    """A short key description: ``"EC P-256"``, ``"RSA 2048"``, ``"Ed25519"``.

    ``obj`` is a certificate, a CSR, or a public or private key.
    """
    key = obj.public_key() if hasattr(obj, "public_key") else obj
    if isinstance(key, rsa.RSAPublicKey):
        return f"RSA {key.key_size}"
    if isinstance(key, ec.EllipticCurvePublicKey):
        names = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}
        return f"EC {names.get(key.curve.name, key.curve.name)}"
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519"
    if isinstance(key, ed448.Ed448PublicKey):
        return "Ed448"
    if isinstance(key, dsa.DSAPublicKey):
        return f"DSA {key.key_size}"
    if isinstance(key, x25519.X25519PublicKey):
        return "X25519"
    if isinstance(key, x448.X448PublicKey):
        return "X448"
    return type(key).__name__
