"""``UpdateSource``: where an app takes signed pin updates from, and the policy they make.

A source fetches a bundle (pinned HTTPS, or a local file), offers it to its
:class:`~pinset.updates.BundleStore` (which refuses rollbacks and writes atomically),
and keeps the *effective* policy: the embedded one with the stored bundle applied.
:func:`pinset.ssl_context` follows it (``updates=source``) through the
:class:`~pinset.enforce.PolicyFeed` protocol, so enforcement never imports this module.

Nothing a fetch or a bundle does can lower the protection: a failed fetch and a
refused bundle keep the last good state; each is logged (logger ``pinset.updates``),
recorded in :attr:`UpdateSource.status`, and handed to the source's observers as a
:class:`~pinset.reporting.UpdateEvent` (by default, one
:class:`~pinset.reporting.UpdateEventReporter` that posts it to the collector).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import logging
import os
import ssl
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from pinset.enforce import PolicyListener, ssl_context
from pinset.errors import ConfigError
from pinset.policy import Policy
from pinset.reporting import UpdateEvent, UpdateEventReporter, update_events_url
from pinset.updates._fetch import FetchFailure, fetch_file, fetch_url
from pinset.updates._signing import PublicKey, TrustedKey, load_trusted_keys
from pinset.updates._store import BundleStore
from pinset.updates._verify import BundleResult, apply_bundle, verify_bundle

__all__ = ["UpdateSource", "UpdateStatus"]

log = logging.getLogger("pinset.updates")

Clock = Callable[[], dt.datetime]
#: Called with each refused bundle and failed check, on the thread that ran the check.
UpdateObserver = Callable[[UpdateEvent], None]


@dataclass(frozen=True, slots=True)
class UpdateStatus:
    """What a source knows, for the app to show or log.

    ``version``: the bundle in effect (``None``: the embedded policy alone).
    ``disabled``: the domains its kill switch turns off. ``checked``: when the last
    check ran; ``last``: its outcome. ``refused`` and ``failure``: the last refused
    bundle and the last failed fetch (kept until a later one replaces them).
    """

    version: int | None = None
    disabled: tuple[str, ...] = ()
    checked: dt.datetime | None = None
    last: BundleResult | FetchFailure | None = None
    refused: BundleResult | None = None
    failure: FetchFailure | None = None


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class UpdateSource:
    """Signed pin updates from ``location``: an ``https://`` URL or a local file path.

    ``trusted_keys``: the bundle signing keys the app ships with (PEM paths, PEM bytes
    or cryptography public keys). ``store``: the directory (or :class:`BundleStore`)
    that keeps the newest applied bundle. ``app_id``: when given, a bundle must name
    it. ``refresh``: seconds between background checks once a context follows the
    source (``None``: only :meth:`refresh`). ``policy``: the embedded policy, when the
    source is used without :func:`pinset.ssl_context` (which otherwise gives it). As soon
    as it knows the embedded policy, the source applies the stored bundle, or, with none
    stored, fetches once.

    The HTTPS fetch is pinned by the *embedded* policy (a bundle cannot loosen the
    channel it arrives on), trusting the system store or ``cafile`` / ``cadata``;
    it never follows a redirect or a proxy. ``timeout`` bounds each fetch.
    ``clock`` returns the current UTC time (tests move it).

    ``observers``: callables given an :class:`~pinset.reporting.UpdateEvent` for each
    refused bundle and failed check (they must return quickly: they run inside the
    check). Left out, the source makes one :class:`~pinset.reporting.UpdateEventReporter`
    when the embedded policy's first report URI is a pinset collector's (ends in
    ``/report``), as :func:`pinset.ssl_context` makes the default failure reporter;
    ``observers=()`` sends nothing.

    Call :meth:`close` (or use ``with``) to stop the background thread (and the
    event reporter the source made).
    """

    def __init__(
        self,
        location: str | os.PathLike[str],
        *,
        trusted_keys: Iterable[TrustedKey],
        store: str | os.PathLike[str] | BundleStore,
        app_id: str | None = None,
        refresh: float | None = 3600.0,
        policy: Policy | None = None,
        cafile: str | os.PathLike[str] | None = None,
        cadata: str | bytes | None = None,
        timeout: float = 10.0,
        clock: Clock | None = None,
        observers: Iterable[UpdateObserver] | None = None,
    ) -> None:
        self.location = location
        self.url: str | None = None
        if isinstance(location, str) and "://" in location:
            if urlsplit(location).scheme != "https":
                raise ConfigError(
                    f"update URL {location!r} is not https://",
                    key="location",
                    hint="serve bundles over HTTPS (the fetch is pinned), or give a file path",
                )
            self.url = location
        if refresh is not None and (isinstance(refresh, bool) or not refresh > 0):
            raise ConfigError(f"refresh must be a positive number of seconds, not {refresh!r}")
        self.keys: tuple[PublicKey, ...] = tuple(load_trusted_keys(trusted_keys).values())
        self.store = store if isinstance(store, BundleStore) else BundleStore(store)
        self.app_id = app_id
        self.interval = refresh
        self.timeout = timeout
        self._cafile, self._cadata = cafile, cadata
        self._clock: Clock = clock or _utcnow
        self._lock = threading.RLock()
        self._embedded: Policy | None = None
        self._fetch_context: ssl.SSLContext | None = None
        self._policy: Policy | None = None
        self._status = UpdateStatus()
        self._listeners: list[PolicyListener] = []
        self._observers: list[UpdateObserver] | None = None if observers is None else [*observers]
        self._reporter: UpdateEventReporter | None = None  # the one the source made, if any
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if policy is not None:
            with self._lock:
                self._bind(policy)

    # -- what the app reads ------------------------------------------------------

    @property
    def policy(self) -> Policy:
        """The effective policy: the embedded one with the newest valid bundle applied."""
        with self._lock:
            self._require()
            assert self._policy is not None
            return self._policy

    @property
    def observers(self) -> tuple[UpdateObserver, ...]:
        """Who is told of refused bundles and failed checks (the default reporter included)."""
        return tuple(self._observers or ())

    @property
    def status(self) -> UpdateStatus:
        """The version in effect, the last check's outcome, the last refusal and failure."""
        return self._status

    # -- the PolicyFeed protocol (pinset.enforce) ------------------------------------

    def follow(self, embedded: Policy, listener: PolicyListener) -> None:
        """Tell ``listener`` the effective policy now and on each change; start the refresh.

        The first follower binds the source to its ``embedded`` policy; another one is
        a :class:`~pinset.errors.ConfigError` (one source serves one app policy).
        """
        with self._lock:
            self._bind(embedded)
            assert self._policy is not None
            if listener(self._policy):
                self._listeners.append(listener)
        self._start()

    # -- checks ------------------------------------------------------------------

    def refresh(self) -> BundleResult | FetchFailure:
        """Fetch and offer the bundle now; return the outcome (a failure changes nothing)."""
        with self._lock:
            self._require()
            return self._check()

    def close(self, timeout: float | None = 5.0) -> None:
        """Stop the background refresh (idempotent); contexts keep the policy they have."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        if self._reporter is not None:
            self._reporter.close(timeout)

    def __enter__(self) -> UpdateSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"UpdateSource({os.fspath(self.location)!r}, version={self._status.version})"

    # -- inside ------------------------------------------------------------------

    def _require(self) -> None:
        if self._embedded is None:
            raise ConfigError(
                "the update source has no embedded policy yet",
                hint="pass policy= to UpdateSource, or give it to ssl_context(policy, updates=...)",
            )

    def _bind(self, embedded: Policy) -> None:
        if self._embedded is not None:
            if embedded != self._embedded:
                raise ConfigError(
                    "this update source already follows another embedded policy",
                    key="updates",
                    hint="make one UpdateSource per app policy",
                )
            return
        self._embedded = embedded
        if self._observers is None:
            url = update_events_url(embedded)
            self._reporter = None if url is None else UpdateEventReporter(url)
            self._observers = [] if self._reporter is None else [self._reporter]
        if self.url is not None:
            # Pinned by the embedded policy, never by a bundle; no reporter of its own.
            self._fetch_context = ssl_context(
                embedded, cafile=self._cafile, cadata=self._cadata, observers=(), clock=self._clock
            )
        self._policy = embedded
        self._settle(self._clock())
        if self._status.version is None:
            self._check()  # nothing stored yet: ask the source once, now

    def _fetch(self) -> bytes | FetchFailure:
        if self.url is not None:
            assert self._fetch_context is not None
            return fetch_url(self.url, self._fetch_context, self.timeout)
        return fetch_file(self.location)

    def _check(self) -> BundleResult | FetchFailure:
        assert self._embedded is not None
        data = self._fetch()
        now = self._clock()
        outcome: BundleResult | FetchFailure
        if isinstance(data, FetchFailure):
            outcome = data
            log.warning("pin update check failed (%s): %s", data.reason, data.detail)
        else:
            outcome = self._offer(data, now)
        in_effect = self._status.version
        status = dataclasses.replace(self._status, checked=now, last=outcome)
        if isinstance(outcome, FetchFailure):
            status = dataclasses.replace(status, failure=outcome)
        elif not outcome.valid:
            status = dataclasses.replace(status, refused=outcome)
        self._status = status
        self._settle(now)  # also drops a stored bundle that has expired since
        if not outcome.valid:
            self._tell_observers(outcome, data, now, in_effect)
        return outcome

    def _tell_observers(
        self,
        outcome: BundleResult | FetchFailure,
        data: bytes | FetchFailure,
        now: dt.datetime,
        in_effect: int | None,
    ) -> None:
        if not self._observers:
            return
        source = "file" if self.url is None else self.url
        detail = outcome.detail
        if self.url is None:  # a path names the user's disk: it stays on the device
            detail = detail.replace(os.fspath(self.location), "<file>")
        if isinstance(outcome, FetchFailure):
            event = UpdateEvent(
                "fetch-failed",
                outcome.reason,
                detail,
                now,
                source,
                app_id=self.app_id,
                pin_set_version=in_effect,
            )
        else:
            assert outcome.reason is not None
            assert isinstance(data, bytes)
            event = UpdateEvent(
                "bundle-refused",
                outcome.reason,
                detail,
                now,
                source,
                version=outcome.version,
                app_id=self.app_id if self.app_id is not None else outcome.app_id,
                pin_set_version=in_effect,
                bundle_sha256=hashlib.sha256(data).hexdigest(),
            )
        for observer in self._observers:
            try:
                observer(event)
            except Exception:
                log.exception("pin update observer %r failed", observer)

    def _offer(self, data: bytes, now: dt.datetime) -> BundleResult:
        assert self._embedded is not None
        stored = self._stored()
        if stored is not None and stored[0] == data:
            # The bundle in effect, fetched again: checked afresh, not a rollback.
            return verify_bundle(
                data,
                trusted_keys=self._keys(),
                now=now,
                embedded=self._embedded,
                app_id=self.app_id,
            )
        result = self.store.offer(
            data, trusted_keys=self.keys, now=now, embedded=self._embedded, app_id=self.app_id
        )
        if result.valid:
            log.info("pin update version %s stored", result.version)
        else:
            log.warning(
                "pin update refused (%s), nothing changed: %s", result.reason, result.detail
            )
        return result

    def _keys(self) -> list[TrustedKey]:
        """The signing keys in effect: those the stored bundles named, else the shipped ones."""
        try:
            return self.store.trusted_keys(self.keys)
        except ConfigError:  # an unreadable store is reported by _stored
            return list(self.keys)

    def _stored(self) -> tuple[bytes, int] | None:
        try:
            stored = self.store.current()
        except ConfigError as exc:
            log.error("pin update store unreadable, using the embedded policy: %s", exc.message)
            return None
        return None if stored is None else (stored.data, stored.version)

    def _settle(self, now: dt.datetime) -> None:
        """Recompute the effective policy from the store; tell the listeners of a change."""
        assert self._embedded is not None
        policy, applied = self._embedded, None
        stored = self._stored()
        if stored is not None:
            result = verify_bundle(
                stored[0],
                trusted_keys=self._keys(),
                now=now,
                embedded=self._embedded,
                app_id=self.app_id,
            )
            if result.valid:
                policy, applied = apply_bundle(self._embedded, result), result
            elif self._status.version == stored[1]:
                log.warning(
                    "pin update version %s no longer applies (%s): back to the embedded policy",
                    stored[1],
                    result.reason,
                )
        version = None if applied is None else applied.version
        disabled = () if applied is None else applied.disabled
        if version != self._status.version and disabled:
            log.warning(
                "pin update version %s switches pinning off (kill switch) for %s",
                version,
                ", ".join(disabled),
            )
        self._status = dataclasses.replace(self._status, version=version, disabled=disabled)
        if policy != self._policy:
            self._policy = policy
            self._listeners = [listener for listener in self._listeners if _tell(listener, policy)]

    def _start(self) -> None:
        with self._lock:
            if self.interval is None or self._thread is not None or self._stop.is_set():
                return
            self._thread = threading.Thread(target=self._run, name="pinset-updates", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        assert self.interval is not None
        while not self._stop.wait(self.interval):
            try:
                self.refresh()
            except Exception:  # never let the refresh thread die silently
                log.exception("pin update check raised")


def _tell(listener: PolicyListener, policy: Policy) -> bool:
    try:
        return listener(policy)
    except Exception:
        log.exception("pin update listener %r failed", listener)
        return True
