"""Enforcement: an :class:`ssl.SSLContext` whose connections check the pin verdict.

Normal certificate validation (trust store, host name, validity) runs first and
is never relaxed. Right after the handshake the *verified* chain, the path
OpenSSL built to a trust anchor, is judged by :func:`pinset.evaluate.evaluate`
for ``server_hostname``. A refused connection is closed and
:class:`PinMismatchError` (an :class:`ssl.SSLCertVerificationError`) is raised
before any application byte is written; implicit handshakes (a first
``send``/``recv`` on a socket made with ``do_handshake_on_connect=False``) are
checked the same way.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pinset.errors import ConfigError, PinMismatchError
from pinset.evaluate import Verdict, chain_der, evaluate
from pinset.policy import Policy

__all__ = ["Connection", "PinnedSSLObject", "PinnedSSLSocket", "ssl_context"]

log = logging.getLogger("pinset")

Clock = Callable[[], dt.datetime]


@dataclass(frozen=True, slots=True)
class Connection:
    """What the TLS layer knows about a judged connection, for observers and reporters."""

    hostname: str
    port: int | None
    served_chain: tuple[bytes, ...]


VerdictObserver = Callable[[Verdict, Connection], None]


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class _PinnedContextMixin:
    """Guards on a pinned context: verification can be tightened, never turned off."""

    _pinset_policy: Policy
    _pinset_observers: tuple[VerdictObserver, ...]
    _pinset_clock: Clock

    @property  # type: ignore[misc]
    def verify_mode(self) -> ssl.VerifyMode:
        return super().verify_mode  # type: ignore[misc,no-any-return]

    @verify_mode.setter
    def verify_mode(self, value: ssl.VerifyMode) -> None:
        if value != ssl.CERT_REQUIRED:
            raise ConfigError(
                f"cannot set verify_mode={ssl.VerifyMode(value).name} on a pinned context",
                hint=(
                    "pinning only narrows normal certificate validation; a client that does "
                    "not verify certificates cannot be pinned (remove verify=False)"
                ),
            )
        ssl.SSLContext.verify_mode.__set__(self, value)  # type: ignore[attr-defined]

    @property  # type: ignore[misc]
    def check_hostname(self) -> bool:
        return super().check_hostname  # type: ignore[misc,no-any-return]

    @check_hostname.setter
    def check_hostname(self, value: bool) -> None:
        if not value:
            raise ConfigError(
                "cannot turn off check_hostname on a pinned context",
                hint="pins apply on top of host name verification; keep it on",
            )
        ssl.SSLContext.check_hostname.__set__(self, value)  # type: ignore[attr-defined]

    @property
    def pinset_policy(self) -> Policy:
        """The policy this context enforces."""
        return self._pinset_policy


class PinnedSSLContext(_PinnedContextMixin, ssl.SSLContext):
    """An :class:`ssl.SSLContext` that enforces a pin policy (made by :func:`ssl_context`)."""


def _judge(conn: PinnedSSLSocket | PinnedSSLObject) -> Verdict:
    """Evaluate and, on refusal, raise. Runs once per connection, right after the handshake."""
    context = conn.context
    policy: Policy = context._pinset_policy  # type: ignore[attr-defined]
    clock: Clock = context._pinset_clock  # type: ignore[attr-defined]
    hostname = conn.server_hostname
    if hostname is None:
        raise PinMismatchError(
            "pinned TLS connection without server_hostname: nothing to check the pins against",
            hostname="",
        )
    try:
        chain = conn._sslobj.get_verified_chain()  # type: ignore[union-attr]
    except Exception as exc:
        log.debug("could not read the verified chain for %s: %s", hostname, exc)
        chain = []
    verdict = evaluate(policy, hostname, chain or (), now=clock())
    observers: tuple[VerdictObserver, ...] = context._pinset_observers  # type: ignore[attr-defined]
    if observers and verdict.reason != "not-pinned":
        _notify(conn, verdict, observers)
    if not verdict.allowed:
        raise PinMismatchError(
            verdict.describe(),
            hostname=verdict.host,
            expected=verdict.rule.pins if verdict.rule else (),
            served=verdict.served_pins,
            verdict=verdict,
            hint="check that the server's key is one of the pinned keys, or update the policy",
        )
    return verdict


def _notify(
    conn: PinnedSSLSocket | PinnedSSLObject,
    verdict: Verdict,
    observers: tuple[VerdictObserver, ...],
) -> None:
    # Observers never change a verdict: their failures are logged and swallowed.
    try:
        served = chain_der(conn._sslobj.get_unverified_chain() or ())  # type: ignore[union-attr]
    except Exception:
        served = ()
    port: int | None = None
    if isinstance(conn, ssl.SSLSocket):
        try:
            port = int(conn.getpeername()[1])
        except (OSError, IndexError, TypeError, ValueError):
            port = None
    info = Connection(hostname=verdict.host, port=port, served_chain=served)
    for observer in observers:
        try:
            observer(verdict, info)
        except Exception:
            log.exception("pinset verdict observer %r failed", observer)


class PinnedSSLSocket(ssl.SSLSocket):
    """An :class:`ssl.SSLSocket` that checks the pins right after the handshake."""

    pinset_verdict: Verdict | None = None

    def do_handshake(self, block: bool = False) -> None:
        super().do_handshake(block)  # type: ignore[arg-type]
        if self.server_side or self.pinset_verdict is not None:
            return
        try:
            self.pinset_verdict = _judge(self)
        except BaseException:
            self.close()
            raise

    def _pinset_require(self) -> None:
        # A first send/recv on a socket made with do_handshake_on_connect=False
        # would let OpenSSL handshake implicitly, past do_handshake(): do it here.
        if self.pinset_verdict is None and not self.server_side and self._sslobj is not None:
            self.do_handshake()

    def send(self, data: Any, flags: int = 0) -> int:
        self._pinset_require()
        return super().send(data, flags)

    def sendall(self, data: Any, flags: int = 0) -> None:
        self._pinset_require()
        super().sendall(data, flags)

    def write(self, data: Any) -> int:
        self._pinset_require()
        return super().write(data)

    def recv(self, buflen: int = 1024, flags: int = 0) -> bytes:
        self._pinset_require()
        return super().recv(buflen, flags)

    def recv_into(self, buffer: Any, nbytes: int | None = None, flags: int = 0) -> int:
        self._pinset_require()
        return super().recv_into(buffer, nbytes, flags)  # type: ignore[arg-type]

    def read(self, len: int = 1024, buffer: Any = None) -> Any:  # noqa: A002 - ssl's name
        self._pinset_require()
        return super().read(len, buffer)


class PinnedSSLObject(ssl.SSLObject):
    """An :class:`ssl.SSLObject` (asyncio, anyio) that checks the pins right after the handshake."""

    pinset_verdict: Verdict | None = None

    def do_handshake(self) -> None:
        super().do_handshake()
        if self.server_side or self.pinset_verdict is not None:
            return
        self.pinset_verdict = _judge(self)

    def _pinset_require(self) -> None:
        if self.pinset_verdict is None and not self.server_side:
            self.do_handshake()

    def read(self, len: int = 1024, buffer: Any = None) -> Any:  # noqa: A002 - ssl's name
        self._pinset_require()
        return super().read(len, buffer)

    def write(self, data: Any) -> int:
        self._pinset_require()
        return super().write(data)


def ssl_context(
    policy: Policy | str | os.PathLike[str],
    *,
    cafile: str | os.PathLike[str] | None = None,
    capath: str | os.PathLike[str] | None = None,
    cadata: str | bytes | None = None,
    base: ssl.SSLContext | None = None,
    on_verdict: VerdictObserver | None = None,
    clock: Clock | None = None,
) -> ssl.SSLContext:
    """A client :class:`ssl.SSLContext` that verifies certificates as usual and enforces ``policy``.

    Trust comes from the system store, or from ``cafile`` / ``capath`` /
    ``cadata`` when given, or from ``base``, a context you configured yourself
    (client certificates, ciphers, trust); ``base`` is turned into a pinned
    context in place and returned. ``on_verdict`` is called with every verdict
    on a pinned host (it can log or report; it cannot change the verdict).
    ``clock`` returns the current UTC time (tests and demos move it).
    """
    if not isinstance(policy, Policy):
        policy = Policy.load(Path(policy))
    if base is not None:
        if base.verify_mode != ssl.CERT_REQUIRED or not base.check_hostname:
            raise ConfigError(
                "the base context does not verify certificates and host names",
                hint="use ssl.create_default_context() (or set verify_mode=CERT_REQUIRED and "
                "check_hostname=True) before pinning it",
            )
        if any(x is not None for x in (cafile, capath, cadata)):
            raise ConfigError(
                "give either base or cafile/capath/cadata, not both",
                hint="load the CA material into your base context yourself",
            )
        cls = type(base)
        if not issubclass(cls, _PinnedContextMixin):
            pinned_cls = type(f"Pinned{cls.__name__}", (_PinnedContextMixin, cls), {})
            base.__class__ = pinned_cls
        ctx = base
    else:
        ctx = PinnedSSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        if cafile is None and capath is None and cadata is None:
            ctx.load_default_certs(ssl.Purpose.SERVER_AUTH)
        else:
            ctx.load_verify_locations(cafile=cafile, capath=capath, cadata=cadata)
    # A renegotiation could swap the certificate after the check.
    ctx.options |= getattr(ssl, "OP_NO_RENEGOTIATION", 0)
    ctx._pinset_policy = policy  # type: ignore[attr-defined]
    ctx._pinset_observers = (on_verdict,) if on_verdict else ()  # type: ignore[attr-defined]
    ctx._pinset_clock = clock or _utc_now  # type: ignore[attr-defined]
    ctx.sslsocket_class = PinnedSSLSocket
    ctx.sslobject_class = PinnedSSLObject
    return ctx
