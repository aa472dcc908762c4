"""The pinned :class:`ssl.SSLContext`: :func:`ssl_context` and :class:`PinnedSSLContext`.

:func:`ssl_context` runs in three phases: check the arguments (``_validate``), make
a verifying client context with the trust asked for (``_build``), and attach the
policy, clock, verdict memo and observers to it (``_attach``).

Verification can be tightened on a pinned context, never turned off: the context
refuses ``CERT_NONE``, ``check_hostname = False`` and socket or object classes that
skip the check of :mod:`pinset.enforce._sockets`.
"""

from __future__ import annotations

import datetime as dt
import os
import ssl
import weakref
from collections.abc import Callable, Iterable
from typing import Any, Protocol, runtime_checkable

from pinset.ct import LogList
from pinset.enforce._ct import context_log_list
from pinset.enforce._debug import debug_trust
from pinset.enforce._memo import VerdictMemo
from pinset.enforce._sockets import PinnedSSLObject, PinnedSSLSocket
from pinset.errors import ChainError, ConfigError
from pinset.pins import Pin
from pinset.policy import Policy
from pinset.verdict import VerdictObserver

__all__ = ["Clock", "PinnedSSLContext", "PolicyFeed", "PolicyListener", "ssl_context"]


Clock = Callable[[], dt.datetime]
#: Told each new effective policy; returns False once it wants no more (its context is gone).
PolicyListener = Callable[[Policy], bool]


@runtime_checkable
class PolicyFeed(Protocol):
    """Where a pinned context takes policy updates from (:class:`pinset.updates.UpdateSource`).

    ``follow(embedded, listener)`` calls ``listener`` at once with the effective policy
    for the ``embedded`` one, then again with each new one, until it returns False.
    Defined here so that enforcement never imports the layer that signs and fetches.
    """

    def follow(self, embedded: Policy, listener: PolicyListener) -> None:
        """Start telling ``listener`` the effective policy (at once, then on each change)."""


class PinnedSSLContext(ssl.SSLContext):
    """A client :class:`ssl.SSLContext` that enforces a pin policy; made by :func:`ssl_context`.

    Configure it like any client context (``load_cert_chain``, ``set_ciphers``,
    ``load_verify_locations`` …). Client libraries configure the context they are
    handed too (urllib3 sets ``verify_mode``, and ``check_hostname=False`` for
    ``assert_hostname``): every assignment that would weaken validation or drop the
    pin check raises :class:`~pinset.errors.ConfigError`.
    """

    # Every connection of the context is one of these: they judge the verified chain.
    sslsocket_class = PinnedSSLSocket
    sslobject_class = PinnedSSLObject

    _pinset_observers: tuple[VerdictObserver, ...]
    _pinset_clock: Clock | None  # None: the system clock (read as a timestamp, faster)
    _pinset_memo: VerdictMemo

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
        """The policy this context enforces (with ``updates=``: the newest one applied)."""
        return self._pinset_memo.policy

    @property
    def pinset_observers(self) -> tuple[VerdictObserver, ...]:
        """The observers told of every verdict on a pinned host (the default reporter included)."""
        return self._pinset_observers


def _mode_name(value: Any) -> str:
    try:
        return ssl.VerifyMode(value).name
    except ValueError:
        return repr(value)


def _is_subclass(value: Any, cls: type) -> bool:
    return isinstance(value, type) and issubclass(value, cls)


def ssl_context(
    policy: Policy | str | os.PathLike[str],
    *,
    cafile: str | os.PathLike[str] | None = None,
    capath: str | os.PathLike[str] | None = None,
    cadata: str | bytes | None = None,
    observers: Iterable[VerdictObserver] | None = None,
    clock: Clock | None = None,
    debug: bool = False,
    updates: PolicyFeed | None = None,
    ct_log_list: LogList | str | os.PathLike[str] | None = None,
) -> PinnedSSLContext:
    """A client :class:`ssl.SSLContext` that verifies certificates as usual and enforces ``policy``.

    ``policy`` is a :class:`~pinset.policy.Policy` or the path of a policy file.
    Trust comes from the system store, or from ``cafile`` / ``capath`` / ``cadata``
    when given. The context is new and yours: configure it further like any client
    context (client certificates with ``load_cert_chain``, ``set_ciphers``, more
    trust with ``load_verify_locations``).

    ``observers`` are called as ``observer(verdict, connection)`` with every verdict
    on a pinned host; they can log or report, never change the verdict (an exception
    in one is logged and ignored). ``None`` (the default) means the default reporter,
    a background sender to the policy's ``report-uris`` (nothing when it has none,
    see :func:`pinset.reporting.default_reporter`); an iterable means exactly those
    observers, so ``()`` reports nothing and ``[log, reporter]`` both logs and
    reports. Reporting never changes or delays a verdict.
    ``clock`` returns the current UTC time (tests and demos move it).

    ``debug=True`` honours the policy's ``[debug-overrides]``: its trust anchors
    (PEM files, such as a team proxy CA) are trusted in addition, and with
    ``override-pins = true`` a chain that verifies to one of them is allowed
    without a pin match, with the verdict reason ``debug-override`` (observers hear
    of it). ``debug=False``, the default, ignores the section entirely; no
    environment variable changes that.

    ``updates`` (a :class:`PolicyFeed` such as :class:`pinset.updates.UpdateSource`)
    applies signed pin updates: the context starts with the newest valid bundle
    applied to ``policy`` and takes each newer one as it arrives. A handshake reads
    the policy once, so it sees one policy, the one before a swap or the one after.

    Domains with ``require-ct = true`` also need, once their pins matched, a leaf
    that embeds enough valid SCTs (:mod:`pinset.ct`; verdict reasons ``ct-missing``,
    ``ct-insufficient``, ``ct-invalid``, refused and reported like pin failures).
    ``ct_log_list`` is the CT log list: a :class:`pinset.ct.LogList`, the path of a v3
    JSON list, a shipped list's name, or ``None`` for the default shipped list. A
    list older than ``pinset.ct.MAX_LIST_AGE`` at ``clock()`` warns
    (``StaleLogListWarning``). Without a ``require-ct`` domain no list is read.

    The returned context refuses ``verify_mode`` other than ``CERT_REQUIRED``,
    ``check_hostname = False`` and socket/object classes that skip the check,
    with a :class:`~pinset.errors.ConfigError`.
    """
    policy, chosen, clock = _validate(policy, observers, clock)
    if not isinstance(debug, bool):
        raise ConfigError(f"debug must be True or False, not {debug!r}", key="debug")
    trust = debug_trust(policy) if debug else None
    ctx = _build(cafile=cafile, capath=capath, cadata=cadata)
    if trust is not None:
        ctx.load_verify_locations(cadata=trust.cadata)
    anchors = trust.override_anchors if trust else frozenset()
    _attach(ctx, policy, chosen, clock, anchors)
    logs = context_log_list(policy, ct_log_list, clock)
    if logs is not None:
        ctx._pinset_memo.ct_logs = logs
    if updates is not None:
        _follow(ctx, updates, policy, anchors)
    return ctx


def _follow(
    ctx: PinnedSSLContext, feed: PolicyFeed, embedded: Policy, anchors: frozenset[Pin]
) -> None:
    """Let ``feed`` swap the policy of ``ctx``: one new memo (and its policy) per update."""
    if not isinstance(feed, PolicyFeed):
        raise ConfigError(
            f"updates must be a pinset.updates.UpdateSource (or have follow()), not "
            f"{type(feed).__name__}",
            key="updates",
        )
    # A weak reference: the feed outlives the contexts it updates without keeping them.
    ref = weakref.ref(ctx)

    def swap(policy: Policy) -> bool:
        target = ref()
        if target is None:
            return False
        # One attribute holds the policy and its verdicts; handshakes read it once.
        # The CT log list stays: a bundle can change neither require-ct nor the domains.
        target._pinset_memo = VerdictMemo(policy, anchors, target._pinset_memo.ct_logs)
        return True

    feed.follow(embedded, swap)


def _validate(
    policy: Policy | str | os.PathLike[str],
    observers: Iterable[VerdictObserver] | None,
    clock: Clock | None,
) -> tuple[Policy, tuple[VerdictObserver, ...] | None, Clock | None]:
    """The policy (read when it is a path), the observers as a tuple (or ``None``), the clock."""
    if not isinstance(policy, Policy):
        from pinset.policyfile import load

        policy = load(policy)
    if clock is not None and not callable(clock):
        raise ConfigError("clock must be a callable returning an aware UTC datetime")
    return policy, _observers(observers), clock


def _observers(observers: Iterable[VerdictObserver] | None) -> tuple[VerdictObserver, ...] | None:
    hint = "pass a list of callables (verdict, connection) -> None, or () for none"
    if observers is None:
        return None
    if callable(observers) or isinstance(observers, str | bytes):
        raise ConfigError(
            f"observers must be an iterable of callables, not a single {type(observers).__name__}",
            key="observers",
            hint="wrap a single observer in a list: observers=[observer]",
        )
    try:
        chosen = tuple(observers)
    except TypeError:
        raise ConfigError(
            f"observers must be an iterable of callables, not {type(observers).__name__}",
            key="observers",
            hint=hint,
        ) from None
    for observer in chosen:
        if not callable(observer):
            raise ConfigError(f"observer {observer!r} is not callable", key="observers", hint=hint)
    return chosen


def _build(
    *,
    cafile: str | os.PathLike[str] | None,
    capath: str | os.PathLike[str] | None,
    cadata: str | bytes | None,
) -> PinnedSSLContext:
    """A verifying TLS 1.2+ client context that trusts the system store or the CA material given."""
    ctx = PinnedSSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    # A renegotiation could swap the certificate after the check.
    ctx.options |= getattr(ssl, "OP_NO_RENEGOTIATION", 0)
    if cafile is None and capath is None and cadata is None:
        ctx.load_default_certs(ssl.Purpose.SERVER_AUTH)
        return ctx
    try:
        ctx.load_verify_locations(cafile=cafile, capath=capath, cadata=cadata)
    except (OSError, ValueError) as exc:
        # ssl.SSLError is an OSError: a file that is missing or holds no certificate.
        raise ChainError(
            f"cannot load the CA certificates: {getattr(exc, 'strerror', None) or exc}",
            source=str(cafile or capath or "<cadata>"),
            hint="pass a PEM file (or directory) of trusted CA certificates",
        ) from None
    return ctx


def _attach(
    ctx: PinnedSSLContext,
    policy: Policy,
    observers: tuple[VerdictObserver, ...] | None,
    clock: Clock | None,
    override_anchors: frozenset[Pin] = frozenset(),
) -> None:
    """Give ``ctx`` what the post-handshake check reads: policy, memo, clock and observers."""
    if observers is None:
        # Imported here, not at the top: `import pinset` does not load the report sender.
        from pinset.reporting import default_reporter

        reporter = default_reporter(policy)
        observers = () if reporter is None else (reporter,)
    ctx._pinset_memo = VerdictMemo(policy, override_anchors)
    ctx._pinset_clock = clock
    ctx._pinset_observers = observers
