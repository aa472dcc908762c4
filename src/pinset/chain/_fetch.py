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
import inspect
import os
import socket
import ssl
from collections.abc import Callable, Iterable
from dataclasses import KW_ONLY, dataclass
from typing import Any, ParamSpec, TypeVar

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


@dataclass(frozen=True, slots=True)
class _Fetch:
    """One fetch: the parameters of :func:`fetch_chain` and :func:`async_fetch_chain`, once.

    It decides everything that is not I/O: which handshakes to make and in what order
    (:meth:`first` and :meth:`after`), what a handshaken connection yields
    (:meth:`fetched`) and how a failure reads (:meth:`network_error`). The two entry
    points only make the handshakes, one with sockets and one with asyncio.
    """

    host: str
    port: int = 443
    _: KW_ONLY
    server_name: str | None = None
    timeout: float = 10.0
    cafile: str | os.PathLike[str] | None = None
    cadata: str | bytes | None = None
    context: ssl.SSLContext | None = None
    verify: bool = True

    @property
    def sni(self) -> str:
        """The name checked and sent as SNI: ``server_name``, else ``host``."""
        return self.server_name or self.host

    def first(self) -> _Attempt:
        """The verifying handshake (with ``verify=False``, the capturing one)."""
        if not self.verify:
            return _Attempt(_capture_context(), verifying=False, verify_error=None)
        ctx = (
            self.context
            if self.context is not None
            else verifying_context(self.cafile, self.cadata)
        )
        return _Attempt(ctx, verifying=True, verify_error=None)

    def after(self, attempt: _Attempt, exc: ssl.SSLError) -> _Attempt:
        """The handshake to make after ``attempt`` failed with ``exc``, else a NetworkError.

        A failed verifying handshake (validation failed, or the verifying settings were
        refused) is followed by a capturing one that still sees the chain.
        """
        if not attempt.verifying:
            raise self.network_error(exc) from None
        return _Attempt(_capture_context(), verifying=False, verify_error=_verify_message(exc))

    def fetched(self, obj: ssl.SSLSocket | ssl.SSLObject, attempt: _Attempt) -> FetchedChain:
        """What the handshaken ``obj`` shows of the server."""
        cipher = obj.cipher()
        return FetchedChain(
            host=self.host,
            port=self.port,
            server_name=self.server_name,
            served=peer_chain(obj),
            verified=peer_chain(obj, verified=True) if attempt.verifying else None,
            verify_error=attempt.verify_error,
            tls_version=obj.version(),
            cipher=cipher[0] if cipher else None,
        )

    def network_error(self, exc: BaseException) -> NetworkError:
        """:func:`network_error` for this host."""
        return network_error(self.host, self.port, exc, self.timeout)


@dataclass(frozen=True, slots=True)
class _Attempt:
    """One handshake to make: with ``context``; ``verify_error`` is why verifying failed."""

    context: ssl.SSLContext
    verifying: bool
    verify_error: str | None


# What a failed connection raises besides ssl.SSLError: OSError, and asyncio's own
# timeout (not an OSError before Python 3.11).
_CONNECTION_ERRORS = (OSError, asyncio.TimeoutError)

_P = ParamSpec("_P")
_R = TypeVar("_R")


def _parameters_of(spec: Callable[_P, object]) -> Callable[[Callable[..., _R]], Callable[_P, _R]]:
    """Give the decorated function the parameters of ``spec`` (for type checkers and help())."""

    def apply(function: Callable[..., _R]) -> Callable[_P, _R]:
        returns = inspect.signature(function).return_annotation
        function.__signature__ = inspect.signature(spec).replace(  # type: ignore[attr-defined]
            return_annotation=returns
        )
        return function

    return apply


def _handshake(fetch: _Fetch, attempt: _Attempt) -> FetchedChain | ssl.SSLError:
    try:
        sock = socket.create_connection((fetch.host, fetch.port), timeout=fetch.timeout)
        with sock, attempt.context.wrap_socket(sock, server_hostname=fetch.sni) as tls:
            return fetch.fetched(tls, attempt)
    except ssl.SSLError as exc:
        return exc
    except _CONNECTION_ERRORS as exc:
        raise fetch.network_error(exc) from None


async def _async_handshake(fetch: _Fetch, attempt: _Attempt) -> FetchedChain | ssl.SSLError:
    connecting = asyncio.open_connection(
        fetch.host, fetch.port, ssl=attempt.context, server_hostname=fetch.sni
    )
    try:
        _, writer = await asyncio.wait_for(connecting, fetch.timeout)
    except ssl.SSLError as exc:
        return exc
    except _CONNECTION_ERRORS as exc:
        raise fetch.network_error(exc) from None
    try:
        return fetch.fetched(writer.get_extra_info("ssl_object"), attempt)
    finally:
        # A scanner does not wait for close_notify from hundreds of servers.
        writer.transport.abort()


@_parameters_of(_Fetch)
def fetch_chain(*args: Any, **kwargs: Any) -> FetchedChain:
    """Connect to ``host:port`` and return the chain it serves (and the verified chain).

    Validation uses ``context`` (a verifying client context you made), else
    ``cafile``/``cadata``, else the system trust store; the name checked and sent
    as SNI is ``server_name`` or ``host``. When validation fails the served chain
    is captured with a second, non-verifying handshake and ``verify_error`` says
    what failed. ``verify=False`` makes one non-verifying handshake only.
    Unreachable hosts and failed handshakes raise :class:`NetworkError`. The
    parameters are those of ``_Fetch``, shared with :func:`async_fetch_chain`.
    """
    fetch = _Fetch(*args, **kwargs)
    attempt = fetch.first()
    while isinstance(outcome := _handshake(fetch, attempt), ssl.SSLError):
        attempt = fetch.after(attempt, outcome)
    return outcome


@_parameters_of(_Fetch)
async def async_fetch_chain(*args: Any, **kwargs: Any) -> FetchedChain:
    """:func:`fetch_chain` for asyncio, with the same parameters.

    Build the verifying ``context`` once and pass it in when scanning many hosts:
    loading the trust store is the costly part of a client context.
    """
    fetch = _Fetch(*args, **kwargs)
    attempt = fetch.first()
    while isinstance(outcome := await _async_handshake(fetch, attempt), ssl.SSLError):
        attempt = fetch.after(attempt, outcome)
    return outcome
