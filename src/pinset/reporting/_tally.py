"""Opt-in verdict tallies: how many connections were pinned, mismatched or expired, per interval.

A failure report says *that* something failed; a tally says how often compared with what
worked, and which app and pin-set versions the traffic comes from. :class:`VerdictTally`
is a verdict observer (``ssl_context(policy, observers=[tally])``) that only counts: per
interval (default one hour, aligned to the epoch), per pin-set version and per domain (the
policy rule's name, never the connected host), four numbers. No chains, no addresses, no
user data leave the process. Finished intervals are posted as JSON to the collector's
``POST /v1/tallies`` by one daemon thread, retried like failure reports
(:class:`~pinset.reporting._retry.RetryPolicy`, ``Retry-After`` honoured) over the same
:data:`~pinset.reporting._sender.Transport`.
"""

from __future__ import annotations

import heapq
import json
import logging
import random
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from pinset.errors import ConfigError
from pinset.reporting._retry import RetryPolicy
from pinset.reporting._sender import Transport, urllib_transport
from pinset.reporting._worker import MAX_WAIT, SenderWorker

if TYPE_CHECKING:
    from pinset.policy import Policy
    from pinset.verdict import Connection, Reason, Verdict

__all__ = ["TALLY_FIELDS", "TallyStats", "VerdictTally", "tally_url"]

log = logging.getLogger("pinset.reporting")

# The verdicts a tally counts, and the field each is counted in. not-pinned is no pinning
# traffic; no-verified-chain and internal-error are failures of the check itself, which
# failure reports carry in full.
TALLY_FIELDS: dict[Reason, str] = {
    "pinned": "pinned",
    "pin-mismatch": "mismatch",
    "report-only-mismatch": "report_only_mismatch",
    "policy-expired": "expired",
}
_FIELDS = tuple(TALLY_FIELDS.values())

VersionSource = str | int | Callable[[], "str | int | None"] | None


def tally_url(policy: Policy) -> str:
    """The tally URL for ``policy``: its first report URI with ``/report`` → ``/tallies``.

    ``https://c.example.net/v1/report`` gives ``https://c.example.net/v1/tallies``. A
    report URI whose path does not end in ``/report`` is not a pinset collector's: a
    :class:`~pinset.errors.ConfigError` asks for the URL.
    """
    uris = list(policy.report_uris)
    for rule in policy.rules:
        if not rule.exclude:
            uris.extend(rule.report_uris)
    if not uris:
        raise ConfigError(
            "the policy has no report URI to derive the tally URL from",
            hint="give VerdictTally(url='https://collector.example.net/v1/tallies')",
        )
    parts = urlsplit(uris[0])
    head, sep, _ = parts.path.rpartition("/report")
    if not sep or parts.path != head + "/report":
        raise ConfigError(
            f"report URI {uris[0]!r} does not end in /report: cannot derive the tally URL",
            hint="give VerdictTally(url=...) with the collector's /v1/tallies URL",
        )
    return urlunsplit((parts.scheme, parts.netloc, head + "/tallies", "", ""))


@dataclass(frozen=True, slots=True)
class TallyStats:
    """Counters since the tally was made.

    ``counted`` verdicts were counted, ``dropped`` were not (a new domain over
    ``max_domains``, a full send queue, or after close); ``sent`` and ``given_up`` count
    interval batches, ``failed`` every attempt that was not answered 2xx, ``pending`` the
    batches waiting to be sent or retried.
    """

    counted: int
    dropped: int
    sent: int
    failed: int
    retried: int
    given_up: int
    pending: int


@dataclass(slots=True, eq=False)
class _Batch:
    start: int
    version: str | None
    counts: dict[str, dict[str, int]]
    attempts: int = 0


class VerdictTally(SenderWorker[_Batch]):
    """Counts verdicts per (interval, pin-set version, domain) and posts finished intervals.

    * ``url``: the collector's ``/v1/tallies``; default :func:`tally_url` of ``policy``;
    * ``app_id``, ``app_version``: sent with every batch (``app_id`` like a report's
      ``app-bundle-id``);
    * ``pin_set_version``: a string, an int, or a callable asked at each verdict (the
      version of the signed pin-set bundle in force); ``None``: the embedded policy;
    * ``interval`` seconds (default 3600): an interval is sent once ``clock()`` (epoch
      seconds, default ``time.time``) has passed its end and a verdict arrives, or on
      :meth:`flush` and :meth:`close` (which also sends the open interval);
    * deliveries that fail for a passing reason are retried by ``retry`` with backoff and
      ``jitter()``, due times on ``clock``; at most ``queue_size`` batches wait.

    The observer call takes a lock and adds one; it never blocks on the network and never
    changes the verdict.
    """

    # Interval ends are on the clock: an idle thread still looks at least hourly.
    _idle_wait = MAX_WAIT

    def __init__(
        self,
        policy: Policy | None = None,
        *,
        url: str | None = None,
        app_id: str | None = None,
        app_version: str | None = None,
        pin_set_version: VersionSource = None,
        interval: float = 3600.0,
        clock: Callable[[], float] = time.time,
        retry: RetryPolicy | None = None,
        jitter: Callable[[], float] = random.random,
        transport: Transport | None = None,
        context: ssl.SSLContext | None = None,
        timeout: float = 10.0,
        proxies: Mapping[str, str] | None = None,
        max_domains: int = 256,
        queue_size: int = 48,
    ) -> None:
        if not 60 <= interval <= 86400 or interval != int(interval):
            raise ValueError("interval must be whole seconds from 60 to 86400")
        if url is None:
            if policy is None:
                raise ValueError("VerdictTally needs a policy or a url")
            url = tally_url(policy)
        self.url = url
        self.app_id = app_id
        self.app_version = app_version
        self.interval = int(interval)
        self.retry = retry or RetryPolicy()
        super().__init__(clock)
        self._version_source = pin_set_version
        self._jitter = jitter
        self._transport = transport or urllib_transport(context, timeout=timeout, proxies=proxies)
        self._max_domains = max_domains
        self._queue_size = queue_size
        self._open: dict[tuple[int, str | None], dict[str, dict[str, int]]] = {}
        self._ready: list[_Batch] = []
        self._counts = dict.fromkeys(
            ("counted", "dropped", "sent", "failed", "retried", "given_up"), 0
        )

    # -- the observer -----------------------------------------------------------

    def __call__(self, verdict: Verdict, connection: Connection) -> None:
        """Count ``verdict`` if it is one of :data:`TALLY_FIELDS` on a pinned domain."""
        field = TALLY_FIELDS.get(verdict.reason)
        if field is None or verdict.rule is None or verdict.rule.exclude:
            return
        version = self._version()
        now = self._clock()
        start = int(now) // self.interval * self.interval
        with self._lock:
            if self._closed:
                self._counts["dropped"] += 1
                return
            self._roll(now)
            domains = self._open.setdefault((start, version), {})
            counts = domains.get(verdict.rule.pattern)
            if counts is None:
                if len(domains) >= self._max_domains:
                    self._counts["dropped"] += 1
                    return
                counts = domains[verdict.rule.pattern] = dict.fromkeys(_FIELDS, 0)
            counts[field] += 1
            self._counts["counted"] += 1

    def _version(self) -> str | None:
        source = self._version_source
        try:
            value = source() if callable(source) else source
        except Exception:
            log.exception("pinset tally: the pin-set version source failed")
            value = None
        return None if value is None else str(value)

    def _roll(self, now: float, *, everything: bool = False) -> None:
        # With the lock held: intervals that have ended (or all, on close) become batches.
        for key in sorted(self._open):
            start, version = key
            if everything or start + self.interval <= now:
                domains = self._open.pop(key)
                if len(self._ready) + len(self._retries) >= self._queue_size:
                    self._counts["dropped"] += sum(sum(c.values()) for c in domains.values())
                    continue
                self._ready.append(_Batch(start, version, domains))
        if self._ready:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="pinset-tally", daemon=True)
                self._thread.start()
            self._wakeup.notify_all()

    def _body(self, batch: _Batch) -> bytes:
        # The collector's POST /v1/tallies body (docs/reporting.md shows one).
        return json.dumps(
            {
                "app_id": self.app_id,
                "app_version": self.app_version,
                "pin_set_version": batch.version,
                "interval_start": batch.start,
                "interval_seconds": self.interval,
                "domains": [
                    {"domain": domain, **counts} for domain, counts in sorted(batch.counts.items())
                ],
            },
            separators=(",", ":"),
        ).encode()

    # -- the sender thread ------------------------------------------------------

    def _run(self) -> None:
        while True:
            batch = self._next_item()
            if batch is None:
                return
            delay: float | None = None
            try:
                delay = self._attempt(batch)
            except Exception:
                log.exception("pinset tally: could not send a batch")
            with self._wakeup:
                self._busy = False
                if delay is not None and not self._closed:
                    due = self._clock() + delay
                    heapq.heappush(self._retries, (due, next(self._order), batch))
                elif delay is not None:
                    self._counts["given_up"] += 1
                self._wakeup.notify_all()

    def _pop_fresh(self) -> _Batch | None:
        return self._ready.pop(0) if self._ready else None

    def _attempt(self, batch: _Batch) -> float | None:
        """Send once; the seconds until the next try, or ``None`` when done (sent or given up)."""
        batch.attempts += 1
        outcome = self._post_once(self.url, self._body(batch), batch.attempts, "pinset tally")
        return None if isinstance(outcome, str) else outcome

    # -- control ----------------------------------------------------------------

    @property
    def stats(self) -> TallyStats:
        """A snapshot of the counters."""
        with self._lock:
            pending = len(self._ready) + len(self._retries) + (1 if self._busy else 0)
            return TallyStats(**self._counts, pending=pending)

    def flush(self, timeout: float | None = None) -> bool:
        """Queue the intervals that have ended by ``clock()`` and wait until every due batch
        has been tried; False if ``timeout`` ran out. Batches waiting for a later retry are
        not waited for: with an injected clock, move it and flush again.
        """
        with self._wakeup:
            self._roll(self._clock())
            self._wakeup.notify_all()
            return self._wait_idle(timeout)

    def close(self, timeout: float | None = 5.0) -> bool:
        """Send every interval, the open one included (within ``timeout``), then stop.

        Batches still waiting for a retry are given up (and counted); verdicts after
        closing are dropped (and counted).
        """
        with self._wakeup:
            self._roll(self._clock(), everything=True)
        return self._stop(self.flush(timeout), timeout)

    def _queued(self) -> bool:
        return bool(self._ready)

    def _give_up_retries(self) -> None:
        self._counts["given_up"] += len(self._retries)
