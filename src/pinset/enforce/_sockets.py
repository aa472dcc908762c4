"""The pinned socket and object: the check right after the handshake, failing closed.

:class:`PinnedSSLSocket` (blocking sockets) and :class:`PinnedSSLObject` (asyncio,
anyio, TLS-in-TLS) judge the *verified* chain once the handshake is done, before
any application byte, and refuse with :class:`~pinset.errors.PinMismatchError`.
Observers (the ``observers`` of :func:`~pinset.enforce.ssl_context`, reporters among
them) hear of each verdict but cannot change it.
"""

from __future__ import annotations

import datetime as dt
import logging
import ssl
import time
from typing import TYPE_CHECKING, Any

from pinset.enforce._memo import VerdictMemo, verdict_at
from pinset.errors import PinMismatchError
from pinset.verdict import Connection, Verdict, VerdictObserver

if TYPE_CHECKING:
    from pinset.enforce._context import Clock

__all__ = ["PinnedSSLObject", "PinnedSSLSocket"]


log = logging.getLogger("pinset")

_ENCODING_DER = 2  # _ssl.ENCODING_DER, the argument of Certificate.public_bytes
_HINT = "check that the server's key is one of the pinned keys, or update the policy"
_CT_HINT = "the server's certificate must embed SCTs from public CT logs (pinset ct check)"


def _der_list(chain: Any) -> list[bytes]:
    # _ssl's chain accessors return Certificate objects, or None when there is no chain.
    if not chain:
        return []
    return [cert.public_bytes(_ENCODING_DER) for cert in chain]


# A time: a datetime from a given clock, or a POSIX timestamp from the system clock.
_When = dt.datetime | float


def _judge(conn: PinnedSSLSocket | PinnedSSLObject, context: Any) -> tuple[Verdict, _When | None]:
    """Judge the connection and, on refusal, raise. Runs once, right after the handshake.

    Returns the verdict and, when it is one kept from an earlier connection, the time
    of this one (``None``: the verdict is this connection's own). Re-timing a kept
    verdict costs as much as the rest of the check together, so when it is allowed
    and no observer waits for it, the socket re-times it only if someone reads
    ``pinset_verdict``. For the same reason the system clock is read as a timestamp
    (``time.time()``, the clock ``datetime.now`` reads), made a ``datetime`` only
    when a verdict needs it.

    The verified chain goes to the memo as ``_ssl`` returns it: certificate objects
    (``None`` when there is no chain), which compare equal exactly when the
    certificates do, so a chain seen before costs no DER conversion.
    """
    hostname = conn.server_hostname
    at: _When | None = None
    try:
        if hostname is None:
            raise ValueError("the connection has no server_hostname to look the pins up by")
        # Fail closed: any surprise below (a context that is not pinned, a clock that
        # returns a naive time, a chain that cannot be read) refuses the connection.
        memo: VerdictMemo = context._pinset_memo
        clock: Clock | None = context._pinset_clock
        chain = conn._verified_certificates() or ()
        kept = None
        if clock is None:
            at = time.time()
            kept = memo.kept(hostname, chain, at)
        else:
            at = now = clock()
            if now.utcoffset() is not None:  # a naive time goes to evaluate(), which refuses it
                kept = memo.kept(hostname, chain, now.timestamp())
        if kept is None:
            verdict, at = memo.judge(hostname, chain, _datetime(at)), None
        else:
            verdict = kept
    except Exception as exc:
        verdict = Verdict(
            host=str(hostname or ""),
            allowed=False,
            reason="internal-error",
            error=f"{type(exc).__name__}: {exc}",
        )
        at = None
    if verdict.reason == "debug-override":
        # Allowed, but never silently: a debug anchor stood in for the pins.
        log.warning("%s", verdict.describe())
    observers: tuple[VerdictObserver, ...] = getattr(context, "_pinset_observers", ())
    heard = bool(observers) and verdict.reason != "not-pinned"
    if heard or not verdict.allowed:
        if at is not None:
            verdict, at = verdict_at(verdict, at), None
        if heard:
            _notify(conn, verdict, observers)
        if not verdict.allowed:
            raise PinMismatchError(
                verdict.describe(),
                hostname=verdict.host,
                expected=verdict.rule.pins if verdict.rule else (),
                served=verdict.served_pins,
                verdict=verdict,
                hint=_CT_HINT if verdict.reason.startswith("ct-") else _HINT,
            )
    return verdict, at


def _datetime(when: _When) -> dt.datetime:
    return (
        when if isinstance(when, dt.datetime) else dt.datetime.fromtimestamp(when, dt.timezone.utc)
    )


def _notify(
    conn: PinnedSSLSocket | PinnedSSLObject,
    verdict: Verdict,
    observers: tuple[VerdictObserver, ...],
) -> None:
    # Observers never change a verdict: their failures are logged and swallowed.
    try:
        served = tuple(conn.get_unverified_chain())
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


class _Judged:
    """What both pinned classes keep of their check: ``pinset_verdict``, built when first read."""

    _pinset_judged: Verdict | None = None  # the verdict reached, None until one allowed
    _pinset_at: _When | None = None  # this connection's time, for a kept verdict

    @property
    def pinset_verdict(self) -> Verdict | None:
        """The verdict once the handshake passed (``None`` before, or when it was refused)."""
        verdict, at = self._pinset_judged, self._pinset_at
        if verdict is not None and at is not None:
            verdict = self._pinset_judged = verdict_at(verdict, at)
            self._pinset_at = None
        return verdict

    def _verified_certificates(self) -> Any:
        # _ssl's own certificate objects (None when there is no chain), unconverted.
        return self._sslobj.get_verified_chain()  # type: ignore[attr-defined]


class PinnedSSLSocket(_Judged, ssl.SSLSocket):
    """An :class:`ssl.SSLSocket` that checks the pins right after the handshake.

    ``pinset_verdict`` is the verdict once the handshake passed; a refused socket
    is closed and raises :class:`PinMismatchError`.
    """

    def get_verified_chain(self) -> list[bytes]:
        """The chain certificate validation built, leaf to trust anchor, as DER (``[]`` if none)."""
        sslobj = getattr(self, "_sslobj", None)
        return _der_list(sslobj.get_verified_chain()) if sslobj is not None else []

    def get_unverified_chain(self) -> list[bytes]:
        """The certificates the server sent, in its order, as DER (``[]`` if none)."""
        sslobj = getattr(self, "_sslobj", None)
        return _der_list(sslobj.get_unverified_chain()) if sslobj is not None else []

    def do_handshake(self, block: bool = False) -> None:
        super().do_handshake(block)
        if self.server_side or self._pinset_judged is not None:
            return
        try:
            self._pinset_judged, self._pinset_at = _judge(self, self._context)  # type: ignore[attr-defined]
        except BaseException:
            self.close()
            raise

    def _pinset_require(self) -> None:
        # A first send/recv on a socket made with do_handshake_on_connect=False
        # would let OpenSSL handshake implicitly, past do_handshake(): do it here.
        # The callers test _pinset_judged first, so a checked socket pays no call.
        if (
            self._pinset_judged is None
            and not self.server_side
            and getattr(self, "_sslobj", None) is not None
        ):
            self.do_handshake()

    def send(self, data: Any, flags: int = 0) -> int:
        if self._pinset_judged is None:
            self._pinset_require()
        return super().send(data, flags)

    def sendall(self, data: Any, flags: int = 0) -> None:
        if self._pinset_judged is None:
            self._pinset_require()
        super().sendall(data, flags)

    def sendfile(self, file: Any, offset: int = 0, count: int | None = None) -> int:
        # From 3.12 sendfile may go through kernel TLS and skip send(): check first.
        if self._pinset_judged is None:
            self._pinset_require()
        return super().sendfile(file, offset, count)

    def write(self, data: Any) -> int:
        if self._pinset_judged is None:
            self._pinset_require()
        return super().write(data)

    def recv(self, buflen: int = 1024, flags: int = 0) -> bytes:
        if self._pinset_judged is None:
            self._pinset_require()
        return super().recv(buflen, flags)

    def recv_into(self, buffer: Any, nbytes: int | None = None, flags: int = 0) -> int:
        if self._pinset_judged is None:
            self._pinset_require()
        return super().recv_into(buffer, nbytes, flags)

    def read(self, len: int = 1024, buffer: Any = None) -> Any:
        if self._pinset_judged is None:
            self._pinset_require()
        return super().read(len, buffer)


class PinnedSSLObject(_Judged, ssl.SSLObject):
    """An :class:`ssl.SSLObject` (asyncio, anyio, urllib3's TLS-in-TLS) that checks the pins.

    A refused object raises :class:`PinMismatchError` from ``do_handshake`` and
    again from every later ``read``/``write``.
    """

    def get_verified_chain(self) -> list[bytes]:
        """The chain certificate validation built, leaf to trust anchor, as DER (``[]`` if none)."""
        return _der_list(self._sslobj.get_verified_chain())  # type: ignore[attr-defined]

    def get_unverified_chain(self) -> list[bytes]:
        """The certificates the server sent, in its order, as DER (``[]`` if none)."""
        return _der_list(self._sslobj.get_unverified_chain())  # type: ignore[attr-defined]

    def do_handshake(self) -> None:
        super().do_handshake()
        if self.server_side or self._pinset_judged is not None:
            return
        self._pinset_judged, self._pinset_at = _judge(self, self.context)

    def _pinset_require(self) -> None:
        if self._pinset_judged is None and not self.server_side:
            self.do_handshake()

    def read(self, len: int = 1024, buffer: Any = None) -> Any:
        if self._pinset_judged is None:
            self._pinset_require()
        return super().read(len, buffer)

    def write(self, data: Any) -> int:
        if self._pinset_judged is None:
            self._pinset_require()
        return super().write(data)
