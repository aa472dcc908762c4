"""Enforcement: an :class:`ssl.SSLContext` whose connections check the pin verdict.

Normal certificate validation (trust store, host name, validity) runs first and
is never relaxed. Right after the handshake the *verified* chain, the path
OpenSSL built to a trust anchor, is judged by :func:`pinset.verdict.evaluate`
for ``server_hostname``. A refused connection is closed and
:class:`PinMismatchError` (an :class:`ssl.SSLCertVerificationError`) is raised
before any application byte is written; implicit handshakes (a first
``send``/``recv`` on a socket made with ``do_handshake_on_connect=False``) are
checked the same way.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import os
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pinset.errors import ChainError, ConfigError, PinMismatchError
from pinset.policy import Policy
from pinset.verdict import Verdict, evaluate

__all__ = ["Connection", "PinnedSSLObject", "PinnedSSLSocket", "ssl_context"]

log = logging.getLogger("pinset")

Clock = Callable[[], dt.datetime]
VerdictObserver = Callable[[Verdict, "Connection"], None]

_ENCODING_DER = 2  # _ssl.ENCODING_DER, the argument of Certificate.public_bytes
_HINT = "check that the server's key is one of the pinned keys, or update the policy"


@dataclass(frozen=True, slots=True)
class Connection:
    """What the TLS layer knows about a judged connection, for observers and reporters.

    ``served_chain`` is what the server sent (DER, in its order), which may differ
    from the verified chain the verdict was computed on.
    """

    hostname: str
    port: int | None
    served_chain: tuple[bytes, ...]


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _der_list(chain: Any) -> list[bytes]:
    # _ssl's chain accessors return Certificate objects, or None when there is no chain.
    if not chain:
        return []
    return [cert.public_bytes(_ENCODING_DER) for cert in chain]


class _PinnedContextMixin:
    """Guards on a pinned context: verification can be tightened, never turned off.

    Client libraries configure the context they are handed (urllib3 sets
    ``verify_mode``, ``check_hostname=False`` for ``assert_hostname``); every
    assignment that would weaken validation or drop the pin check is refused here.
    """

    _pinset_policy: Policy
    _pinset_observers: tuple[VerdictObserver, ...]
    _pinset_clock: Clock

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "verify_mode" and value != ssl.CERT_REQUIRED:
            raise ConfigError(
                f"cannot set verify_mode={_mode_name(value)} on a pinned context",
                key="verify_mode",
                hint=(
                    "pinning only narrows normal certificate validation; a client that does "
                    "not verify certificates cannot be pinned (remove verify=False / CERT_NONE)"
                ),
            )
        if name == "check_hostname" and not value:
            raise ConfigError(
                "cannot turn off check_hostname on a pinned context",
                key="check_hostname",
                hint="pins apply on top of host name verification; keep it on "
                "(urllib3: do not pass assert_hostname)",
            )
        if name == "sslsocket_class" and not _is_subclass(value, PinnedSSLSocket):
            raise ConfigError(
                "a pinned context's sslsocket_class must subclass pinset.tls.PinnedSSLSocket",
                key="sslsocket_class",
                hint="subclass PinnedSSLSocket instead of ssl.SSLSocket",
            )
        if name == "sslobject_class" and not _is_subclass(value, PinnedSSLObject):
            raise ConfigError(
                "a pinned context's sslobject_class must subclass pinset.tls.PinnedSSLObject",
                key="sslobject_class",
                hint="subclass PinnedSSLObject instead of ssl.SSLObject",
            )
        super().__setattr__(name, value)

    @property
    def pinset_policy(self) -> Policy:
        """The policy this context enforces."""
        return self._pinset_policy


def _mode_name(value: Any) -> str:
    try:
        return ssl.VerifyMode(value).name
    except ValueError:
        return repr(value)


def _is_subclass(value: Any, cls: type) -> bool:
    return isinstance(value, type) and issubclass(value, cls)


class PinnedSSLContext(_PinnedContextMixin, ssl.SSLContext):
    """An :class:`ssl.SSLContext` that enforces a pin policy (made by :func:`ssl_context`)."""


# One pinned subclass per context class a caller hands in as ``base``.
_pinned_classes: dict[type[ssl.SSLContext], type[ssl.SSLContext]] = {
    ssl.SSLContext: PinnedSSLContext
}


def _pinned_class(cls: type[ssl.SSLContext]) -> type[ssl.SSLContext]:
    if issubclass(cls, _PinnedContextMixin):
        return cls
    pinned = _pinned_classes.get(cls)
    if pinned is None:
        pinned = type(f"Pinned{cls.__name__}", (_PinnedContextMixin, cls), {})
        _pinned_classes[cls] = pinned
    return pinned


class _VerdictMemo:
    """Verdicts already reached under one policy, keyed by host and verified chain (DER).

    Judging a chain means slicing and hashing every SubjectPublicKeyInfo; a client
    sees the same few chains over and over, so the verdict is kept. ``evaluate`` is
    pure and depends on the time only through the rule's expiration date, so a kept
    verdict is reused only while that rule's expired-or-not state at ``now`` is
    the one the verdict was reached with; otherwise it is judged afresh.
    """

    __slots__ = ("_entries", "_lock", "policy")

    MAX_ENTRIES = 256
    _KEEP = frozenset({"pinned", "not-pinned", "pin-mismatch", "report-only-mismatch"})

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self._entries: dict[tuple[str, tuple[bytes, ...]], Verdict] = {}
        self._lock = threading.Lock()

    def verdict(self, hostname: str, chain: tuple[bytes, ...], now: dt.datetime) -> Verdict:
        key = (hostname, chain)
        kept = self._entries.get(key)
        if kept is not None and kept.now is not None and now.tzinfo is not None:
            rule = kept.rule
            expired = rule is not None and not rule.exclude and rule.is_expired(now)
            if not expired:
                return dataclasses.replace(kept, now=now)
        verdict = evaluate(self.policy, hostname, chain, now=now)
        # Expired and failed-closed verdicts are cheap or exceptional: not kept.
        if verdict.reason in self._KEEP and chain:
            with self._lock:
                if len(self._entries) >= self.MAX_ENTRIES:
                    self._entries.clear()
                self._entries[key] = verdict
        return verdict


def _memo(context: Any) -> _VerdictMemo:
    policy: Policy = context._pinset_policy
    memo: _VerdictMemo | None = getattr(context, "_pinset_memo", None)
    if memo is None or memo.policy is not policy:
        memo = _VerdictMemo(policy)
        context._pinset_memo = memo
    return memo


def _judge(conn: PinnedSSLSocket | PinnedSSLObject) -> Verdict:
    """Evaluate and, on refusal, raise. Runs once per connection, right after the handshake."""
    context = conn.context
    hostname = conn.server_hostname
    try:
        if hostname is None:
            raise ValueError("the connection has no server_hostname to look the pins up by")
        # Fail closed: a chain that cannot be read is judged as empty, and any
        # surprise below (a context that is not pinned, a clock that returns a
        # naive time) refuses the connection.
        verdict = _memo(context).verdict(
            hostname,
            tuple(conn.get_verified_chain()),
            context._pinset_clock(),  # type: ignore[attr-defined]
        )
    except Exception as exc:
        verdict = Verdict(
            host=str(hostname or ""),
            allowed=False,
            reason="internal-error",
            error=f"{type(exc).__name__}: {exc}",
        )
    observers: tuple[VerdictObserver, ...] = getattr(context, "_pinset_observers", ())
    if observers and verdict.reason != "not-pinned":
        _notify(conn, verdict, observers)
    if not verdict.allowed:
        raise PinMismatchError(
            verdict.describe(),
            hostname=verdict.host,
            expected=verdict.rule.pins if verdict.rule else (),
            served=verdict.served_pins,
            verdict=verdict,
            hint=_HINT,
        )
    return verdict


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


class PinnedSSLSocket(ssl.SSLSocket):
    """An :class:`ssl.SSLSocket` that checks the pins right after the handshake.

    ``pinset_verdict`` is the verdict once the handshake passed; a refused socket
    is closed and raises :class:`PinMismatchError`.
    """

    pinset_verdict: Verdict | None = None

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
        if (
            self.pinset_verdict is None
            and not self.server_side
            and getattr(self, "_sslobj", None) is not None
        ):
            self.do_handshake()

    def send(self, data: Any, flags: int = 0) -> int:
        self._pinset_require()
        return super().send(data, flags)

    def sendall(self, data: Any, flags: int = 0) -> None:
        self._pinset_require()
        super().sendall(data, flags)

    def sendfile(self, file: Any, offset: int = 0, count: int | None = None) -> int:
        # From 3.12 sendfile may go through kernel TLS and skip send(): check first.
        self._pinset_require()
        return super().sendfile(file, offset, count)

    def write(self, data: Any) -> int:
        self._pinset_require()
        return super().write(data)

    def recv(self, buflen: int = 1024, flags: int = 0) -> bytes:
        self._pinset_require()
        return super().recv(buflen, flags)

    def recv_into(self, buffer: Any, nbytes: int | None = None, flags: int = 0) -> int:
        self._pinset_require()
        return super().recv_into(buffer, nbytes, flags)

    def read(self, len: int = 1024, buffer: Any = None) -> Any:
        self._pinset_require()
        return super().read(len, buffer)


class PinnedSSLObject(ssl.SSLObject):
    """An :class:`ssl.SSLObject` (asyncio, anyio, urllib3's TLS-in-TLS) that checks the pins.

    A refused object raises :class:`PinMismatchError` from ``do_handshake`` and
    again from every later ``read``/``write``.
    """

    pinset_verdict: Verdict | None = None

    def get_verified_chain(self) -> list[bytes]:
        """The chain certificate validation built, leaf to trust anchor, as DER (``[]`` if none)."""
        return _der_list(self._sslobj.get_verified_chain())  # type: ignore[attr-defined]

    def get_unverified_chain(self) -> list[bytes]:
        """The certificates the server sent, in its order, as DER (``[]`` if none)."""
        return _der_list(self._sslobj.get_unverified_chain())  # type: ignore[attr-defined]

    def do_handshake(self) -> None:
        super().do_handshake()
        if self.server_side or self.pinset_verdict is not None:
            return
        self.pinset_verdict = _judge(self)

    def _pinset_require(self) -> None:
        if self.pinset_verdict is None and not self.server_side:
            self.do_handshake()

    def read(self, len: int = 1024, buffer: Any = None) -> Any:
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
    reporter: VerdictObserver | bool | None = True,
    clock: Clock | None = None,
) -> ssl.SSLContext:
    """A client :class:`ssl.SSLContext` that verifies certificates as usual and enforces ``policy``.

    Trust comes from the system store, or from ``cafile`` / ``capath`` /
    ``cadata`` when given, or from ``base``, a context you configured yourself
    (client certificates, ciphers, trust); ``base`` is turned into a pinned
    context in place and returned (a base that is already pinned is refused).
    ``on_verdict`` is called with every verdict on a pinned host (it can log or
    report; it cannot change the verdict).
    ``reporter`` sends failure reports: ``True`` (the default) uses
    :func:`pinset.reporting.default_reporter`, a background sender to the rules'
    ``report-uris`` (nothing when the policy has none); ``False`` or ``None``
    sends nothing; any other callable is used as given. Reporting never
    changes or delays a verdict.
    ``clock`` returns the current UTC time (tests and demos move it).

    The returned context refuses ``verify_mode`` other than ``CERT_REQUIRED``,
    ``check_hostname = False`` and socket/object classes that skip the check,
    with a :class:`~pinset.errors.ConfigError`.
    """
    if not isinstance(policy, Policy):
        policy = Policy.load(Path(policy))
    if on_verdict is not None and not callable(on_verdict):
        raise ConfigError("on_verdict must be a callable (verdict, connection) -> None")
    if clock is not None and not callable(clock):
        raise ConfigError("clock must be a callable returning an aware UTC datetime")
    if base is not None:
        if not isinstance(base, ssl.SSLContext):
            raise ConfigError(f"base must be an ssl.SSLContext, not {type(base).__name__}")
        if base.verify_mode != ssl.CERT_REQUIRED or not base.check_hostname:
            raise ConfigError(
                "the base context does not verify certificates and host names",
                key="base",
                hint="use ssl.create_default_context() (or set verify_mode=CERT_REQUIRED and "
                "check_hostname=True) before pinning it",
            )
        if isinstance(base, _PinnedContextMixin):
            # Pinning is done in place: a second policy would silently replace the
            # first for every client that already holds this context.
            raise ConfigError(
                "the base context is already pinned",
                key="base",
                hint="ssl_context(base=ctx) pins ctx in place; give each policy its own fresh "
                "base context, or put all the domains in one policy",
            )
        if any(x is not None for x in (cafile, capath, cadata)):
            raise ConfigError(
                "give either base or cafile/capath/cadata, not both",
                key="base",
                hint="load the CA material into your base context yourself",
            )
        base.__class__ = _pinned_class(type(base))
        ctx = base
    else:
        ctx = PinnedSSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        if cafile is None and capath is None and cadata is None:
            ctx.load_default_certs(ssl.Purpose.SERVER_AUTH)
        else:
            try:
                ctx.load_verify_locations(cafile=cafile, capath=capath, cadata=cadata)
            except (OSError, ValueError) as exc:
                # ssl.SSLError is an OSError: a file that is missing or holds no certificate.
                raise ChainError(
                    f"cannot load the CA certificates: {getattr(exc, 'strerror', None) or exc}",
                    source=str(cafile or capath or "<cadata>"),
                    hint="pass a PEM file (or directory) of trusted CA certificates",
                ) from None
    # A renegotiation could swap the certificate after the check.
    ctx.options |= getattr(ssl, "OP_NO_RENEGOTIATION", 0)
    ctx._pinset_policy = policy  # type: ignore[attr-defined]
    observers: list[VerdictObserver] = [on_verdict] if on_verdict else []
    if reporter is True:
        from pinset.reporting import BackgroundReporter, default_reporter

        # A reporter passed as on_verdict (the older spelling) already reports.
        if not isinstance(on_verdict, BackgroundReporter):
            made = default_reporter(policy)
            if made is not None:
                observers.append(made)
    elif reporter is not None and reporter is not False:
        if not callable(reporter):
            raise ConfigError(
                "reporter must be True, False, None or a callable (verdict, connection)"
            )
        observers.append(reporter)
    ctx._pinset_observers = tuple(observers)  # type: ignore[attr-defined]
    ctx._pinset_clock = clock or _utc_now  # type: ignore[attr-defined]
    ctx.sslsocket_class = PinnedSSLSocket
    ctx.sslobject_class = PinnedSSLObject
    return ctx
