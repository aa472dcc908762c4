"""The pinned :class:`ssl.SSLContext`: :func:`ssl_context` and the guards on it.

Verification can be tightened on a pinned context, never turned off: the guards
refuse ``CERT_NONE``, ``check_hostname = False`` and socket or object classes that
skip the check of :mod:`pinset.enforce._sockets`.
"""

from __future__ import annotations

import datetime as dt
import os
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pinset.enforce._sockets import PinnedSSLObject, PinnedSSLSocket, VerdictObserver
from pinset.errors import ChainError, ConfigError
from pinset.policy import Policy

__all__ = ["PinnedSSLContext", "ssl_context"]


Clock = Callable[[], dt.datetime]


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


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
                "a pinned context's sslsocket_class must subclass pinset.enforce.PinnedSSLSocket",
                key="sslsocket_class",
                hint="subclass PinnedSSLSocket instead of ssl.SSLSocket",
            )
        if name == "sslobject_class" and not _is_subclass(value, PinnedSSLObject):
            raise ConfigError(
                "a pinned context's sslobject_class must subclass pinset.enforce.PinnedSSLObject",
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
