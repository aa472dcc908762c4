"""Update events: a refused pin-set bundle or a failed update check, sent to the collector.

A failure report (RFC 7469 / TrustKit) describes one TLS connection; a refused bundle has
no connection to describe, so it travels as a pinset report type of its own, posted to
the collector's ``POST /v1/update-events`` (not to the report URIs, which third-party
RFC 7469 collectors may serve). :class:`UpdateEventReporter` is what
:class:`pinset.updates.UpdateSource` calls with each event: the call only checks a
de-duplication table and puts the event on a bounded queue; one daemon thread posts it,
retried like failure reports (:class:`~pinset.reporting._retry.RetryPolicy`) over the
same :data:`~pinset.reporting._sender.Transport`. No user data and no chains: the event
names the app, the update source, the stable reason and the versions involved.
"""

from __future__ import annotations

import datetime as dt
import heapq
import json
import logging
import random
import re
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pinset.errors import ConfigError
from pinset.reporting._retry import RetryPolicy
from pinset.reporting._sender import Transport, urllib_transport
from pinset.reporting._worker import DeliveredKeys, SenderWorker

if TYPE_CHECKING:
    from pinset.policy import Policy

__all__ = [
    "EVENT_KEY",
    "EVENT_KINDS",
    "MAX_DETAIL",
    "EventKind",
    "UpdateEvent",
    "UpdateEventReporter",
    "UpdateEventStats",
    "update_events_url",
]

log = logging.getLogger("pinset.reporting")

#: The key that makes a JSON object an update event (its value is the kind).
EVENT_KEY = "pinset-update-event"
EventKind = Literal["bundle-refused", "fetch-failed"]
#: Every event kind: a bundle that was fetched and refused, or a check that fetched nothing.
EVENT_KINDS: tuple[EventKind, ...] = ("bundle-refused", "fetch-failed")
MAX_DETAIL = 500  # characters of ``detail`` an event carries (the rest is cut with "…")
DAY = 24 * 3600.0
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class UpdateEvent:
    """One update event, as :class:`~pinset.updates.UpdateSource` observed it.

    ``kind``: ``bundle-refused`` or ``fetch-failed``; ``reason``: the stable id (a bundle
    refusal reason such as ``rollback``, or a fetch failure reason such as ``timeout``);
    ``detail``: the words of the log line. ``app_id``: the app that refused or failed (the
    source's ``app_id``, else the refused bundle's). ``version``: the refused bundle's,
    once its signature was verified (``None`` for a bad or unknown signature, whose
    payload is not to be believed, and for a failed fetch).
    ``source``: the update URL, or ``"file"`` for a local path (a path names the user's
    disk, so it is not sent). ``pin_set_version``: the bundle version in effect when it
    happened (``None``: the embedded policy alone). ``bundle_sha256``: the hex SHA-256 of
    the refused bytes, so the operator can tell which document was refused.
    """

    kind: EventKind
    reason: str
    detail: str
    date_time: dt.datetime
    source: str
    version: int | None = None
    app_id: str | None = None
    pin_set_version: int | None = None
    bundle_sha256: str | None = None

    def dedup_key(self) -> tuple[Any, ...]:
        """What makes two events the same: not the time, not the words of the detail."""
        return (
            self.kind,
            self.reason,
            self.source,
            self.version,
            self.app_id,
            self.pin_set_version,
            self.bundle_sha256,
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON object posted to ``/v1/update-events`` (docs/reporting.md)."""
        detail = _CONTROL.sub(" ", self.detail)  # the collector refuses control characters
        if len(detail) > MAX_DETAIL:
            detail = detail[: MAX_DETAIL - 1] + "…"
        when = self.date_time.astimezone(dt.timezone.utc).replace(microsecond=0)
        return {
            EVENT_KEY: self.kind,
            "reason": self.reason,
            "detail": detail,
            "version": self.version,
            "app-id": self.app_id,
            "source": self.source,
            "date-time": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "pin-set-version": self.pin_set_version,
            "bundle-sha256": self.bundle_sha256,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":"))


def update_events_url(policy: Policy) -> str | None:
    """The event URL for ``policy``: its first report URI with ``/report`` → ``/update-events``.

    ``https://c.example.net/v1/report`` gives ``https://c.example.net/v1/update-events``.
    ``None`` when the policy has no report URI, or its first one does not end in
    ``/report`` (not a pinset collector: it would answer an event with 400).
    """
    uris = list(policy.report_uris)
    for rule in policy.rules:
        if not rule.exclude:
            uris.extend(rule.report_uris)
    if not uris:
        return None
    parts = urlsplit(uris[0])
    head, sep, _ = parts.path.rpartition("/report")
    if not sep or parts.path != head + "/report" or parts.scheme not in ("http", "https"):
        return None
    return urlunsplit((parts.scheme, parts.netloc, head + "/update-events", "", ""))


@dataclass(frozen=True, slots=True)
class UpdateEventStats:
    """Counters since the reporter was made: like :class:`~pinset.reporting.ReporterStats`."""

    queued: int
    sent: int
    failed: int
    dropped: int
    deduplicated: int
    retried: int = 0
    given_up: int = 0
    retrying: int = 0


@dataclass(slots=True, eq=False)
class _Post:
    key: tuple[Any, ...]
    body: bytes
    observed: float
    attempts: int = 0
    retry_in: float | None = None


class UpdateEventReporter(SenderWorker[_Post]):
    """Posts :class:`UpdateEvent` objects to ``url`` in the background; ``reporter(event)``.

    What it promises, as :class:`~pinset.reporting.BackgroundReporter` does for reports:

    * the call returns at once (a de-duplication check and a bounded queue): it never
      blocks :meth:`pinset.updates.UpdateSource.refresh`, whatever the collector does;
    * an event counts as delivered only on a 2xx answer; from then on the same event
      (:meth:`UpdateEvent.dedup_key`: same kind, reason, source, versions, app and bytes)
      is sent once per ``dedup_seconds`` (24 h) of ``clock``, and while one is on its way
      its twins are not queued: the same refusal every hour does not flood the collector;
    * a delivery that fails for a reason that may pass is retried by ``retry``; at most
      ``queue_size`` events wait (new and retrying together); more are dropped and counted;
    * events go over ``context`` (default: system trust, never pinned) and, for a remote
      collector, the environment's proxies unless ``proxies`` says otherwise.
    """

    def __init__(
        self,
        url: str,
        *,
        queue_size: int = 20,
        dedup_seconds: float = DAY,
        dedup_entries: int = 1000,
        retry: RetryPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
        jitter: Callable[[], float] = random.random,
        transport: Transport | None = None,
        context: ssl.SSLContext | None = None,
        timeout: float = 10.0,
        proxies: Mapping[str, str] | None = None,
    ) -> None:
        if urlsplit(url).scheme not in ("http", "https"):
            raise ConfigError(
                f"update event URL {url!r} is not http(s)",
                hint="give the collector's /v1/update-events URL",
            )
        if queue_size < 1:
            raise ValueError("queue_size must be at least 1")
        super().__init__(clock)
        self.url = url
        self.retry = retry or RetryPolicy()
        self._transport = transport or urllib_transport(context, timeout=timeout, proxies=proxies)
        self._jitter = jitter
        self._queue_size = queue_size
        self._delivered = DeliveredKeys(dedup_seconds, dedup_entries)
        self._inflight: set[tuple[Any, ...]] = set()
        self._fresh: deque[_Post] = deque()
        self._counts = dict.fromkeys(
            ("queued", "sent", "failed", "dropped", "deduplicated", "retried", "given_up"), 0
        )

    def __repr__(self) -> str:
        return f"UpdateEventReporter({self.url!r})"

    def __call__(self, event: UpdateEvent) -> None:
        """Queue ``event`` unless its twin was delivered lately or is on its way. Never blocks."""
        key = event.dedup_key()
        now = self._clock()
        with self._lock:
            if self._closed:
                self._counts["dropped"] += 1
                return
            if key in self._inflight or self._delivered.recent(key, now):
                self._counts["deduplicated"] += 1
                return
            if len(self._fresh) + len(self._retries) >= self._queue_size:
                self._counts["dropped"] += 1
                return
            self._fresh.append(_Post(key, event.to_json().encode(), now))
            self._inflight.add(key)
            self._counts["queued"] += 1
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="pinset-update-events", daemon=True
                )
                self._thread.start()
            self._wakeup.notify_all()

    # -- the sender thread -----------------------------------------------------

    def _run(self) -> None:
        while True:
            post = self._next_item()
            if post is None:
                return
            try:
                post.retry_in = self._send(post)
            except Exception:
                log.exception("pinset update events: could not send an event")
                post.retry_in = None
            self._finish(post)

    def _send(self, post: _Post) -> float | None:
        """Post once; the seconds until the next try, or ``None`` when done (sent or given up)."""
        post.attempts += 1
        outcome = self._post_once(self.url, post.body, post.attempts, "pinset update events")
        if outcome == "sent":
            with self._lock:
                self._delivered.remember(post.key, post.observed)
        return None if isinstance(outcome, str) else outcome

    def _finish(self, post: _Post) -> None:
        with self._wakeup:
            self._busy = False
            if post.retry_in is not None and not self._closed:
                due = self._clock() + post.retry_in
                heapq.heappush(self._retries, (due, next(self._order), post))
            else:
                if post.retry_in is not None:
                    self._counts["given_up"] += 1
                self._inflight.discard(post.key)
            self._wakeup.notify_all()

    def _pop_fresh(self) -> _Post | None:
        return self._fresh.popleft() if self._fresh else None

    def _queued(self) -> bool:
        return bool(self._fresh)

    def _give_up_retries(self) -> None:
        for _, _, post in self._retries:
            self._counts["given_up"] += 1
            self._inflight.discard(post.key)

    # -- control ---------------------------------------------------------------

    @property
    def stats(self) -> UpdateEventStats:
        """A snapshot of the counters."""
        with self._lock:
            return UpdateEventStats(**self._counts, retrying=len(self._retries))

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every event that is due has been tried; False if ``timeout`` ran out."""
        with self._wakeup:
            self._wakeup.notify_all()
            return self._wait_idle(timeout)

    def close(self, timeout: float | None = 5.0) -> bool:
        """Send what is queued (within ``timeout``), then stop; later events are dropped."""
        return self._stop(self.flush(timeout), timeout)
