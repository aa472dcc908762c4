"""Fetch the chain a TLS server serves, and the chain validation builds from it.

:func:`fetch_chain` (and :func:`async_fetch_chain`) connect over TCP and TLS and
return the chain the server *served* and, when validation against the given trust
succeeds, the chain OpenSSL *verified*. :func:`verifying_context` builds the trust
once for many fetches; :func:`network_error` explains a failed connection. All of it
is re-exported by :mod:`pinset.chain`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from cryptography import x509

from pinset.errors import ChainError, NetworkError
from pinset.verdict import chain_der

__all__ = [
    "FetchedChain",
    "async_fetch_chain",
    "fetch_chain",
    "network_error",
    "peer_chain",
    "verifying_context",
]

# Capturing what a server sends should work even for weak or old servers; only the
# verifying handshake keeps OpenSSL's default security level.
_CAPTURE_CIPHERS = "DEFAULT:@SECLEVEL=0"


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
