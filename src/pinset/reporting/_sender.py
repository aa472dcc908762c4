"""Send failure reports in the background: bounded, de-duplicated, never blocking.

:class:`BackgroundReporter` is a verdict observer: ``ssl_context(policy,
observers=[reporter])`` (``ssl_context`` makes one by itself when the policy has
report URIs and no ``observers`` are given). The observer call only checks a de-duplication table
and puts the facts on a bounded queue; one daemon thread builds the JSON and
posts it with :mod:`urllib` over a *plain* verifying context, so report traffic
is never pinned, never judged and never reported on. Environment proxies are used
for remote collectors, never for one on a loopback address.

A report counts as delivered only when the collector answers 2xx: a delivery that
fails for a passing reason waits in the same bounded queue and is tried again with
backoff and jitter (:class:`~pinset.reporting._retry.RetryPolicy`), so one outage of
the collector does not silence that failure for the 24 hours of de-duplication.
"""

from __future__ import annotations

import datetime as dt
import heapq
import ipaddress
import logging
import random
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pinset.errors import ConfigError
from pinset.hosts import canonical_host
from pinset.reporting._report import REPORTED_REASONS, FailureReport
from pinset.reporting._retry import (
    CollectorStatus,
    RetryPolicy,
    parse_http_date,
    retry_after_seconds,
)
from pinset.reporting._worker import DeliveredKeys, SenderWorker

if TYPE_CHECKING:
    from pinset.policy import DomainRule, Policy
    from pinset.verdict import Connection, Verdict

__all__ = [
    "BackgroundReporter",
    "ReporterStats",
    "Transport",
    "default_reporter",
    "is_loopback_host",
    "urllib_transport",
]

log = logging.getLogger("pinset.reporting")

# (uri, body) -> HTTP status, a plain int or a CollectorStatus that carries Retry-After.
# Raises OSError when the collector cannot be reached, ValueError for a URI it cannot use.
Transport = Callable[[str, bytes], int]
ReportCallback = Callable[[FailureReport], None]

DAY = 24 * 3600.0
_NO_URI = ""  # the target of a report that only goes to the callback
_worker = threading.local()


@dataclass(frozen=True, slots=True)
class ReporterStats:
    """Counters since the reporter was made.

    ``sent`` counts deliveries to a URI answered 2xx, ``failed`` every attempt that was
    not (a retried delivery can fail several times), ``retried`` the retry rounds,
    ``given_up`` the deliveries abandoned, and ``retrying`` the reports waiting for a
    retry right now.
    """

    queued: int
    sent: int
    failed: int
    dropped: int
    deduplicated: int
    skipped: int
    retried: int = 0
    given_up: int = 0
    retrying: int = 0


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # A redirect could point the report at the pinned host: a 3xx counts as a failure.
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` (a URI's host: name, IPv4 or IPv6, brackets allowed) is this machine.

    127.0.0.0/8, ``::1``, ``localhost`` and names under ``.localhost`` (RFC 6761).
    Names are not resolved: a name that merely resolves to loopback is not loopback here.
    """
    try:
        text = canonical_host(host)
    except ConfigError:  # not a host name: not this machine either
        return False
    if text == "localhost" or text.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(text.partition("%")[0]).is_loopback
    except ValueError:
        return False


def urllib_transport(
    context: ssl.SSLContext | None = None,
    *,
    timeout: float = 10.0,
    proxies: Mapping[str, str] | None = None,
) -> Transport:
    """A :data:`Transport` that POSTs JSON with urllib over ``context`` (default: system trust).

    Proxies: ``proxies=None`` takes them from the environment (``HTTP_PROXY``,
    ``HTTPS_PROXY``, and ``NO_PROXY`` for the hosts to reach directly), as read
    when the transport is made; ``proxies={}`` never uses one; a mapping such as
    ``{"https": "http://proxy:3128"}`` names them. A collector on a loopback
    address (:func:`is_loopback_host`) is always reached directly: a report about
    this machine's failing connection has no business leaving it.
    """
    ctx = context or ssl.create_default_context()
    https = urllib.request.HTTPSHandler(context=ctx)
    via_proxy = urllib.request.build_opener(
        urllib.request.ProxyHandler(None if proxies is None else dict(proxies)),
        https,
        _NoRedirect(),
    )
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}), https, _NoRedirect())

    def send(uri: str, body: bytes) -> int:
        parts = urlsplit(uri)
        if parts.scheme not in ("http", "https"):
            raise ValueError(f"report URI {uri!r} is not http(s)")
        opener = direct if is_loopback_host(parts.hostname or "") else via_proxy
        request = urllib.request.Request(  # noqa: S310 - scheme checked above
            uri,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", "User-Agent": "pinset-reporter"},
        )
        try:
            with opener.open(request, timeout=timeout) as response:
                response.read()
                return CollectorStatus(response.status)
        except urllib.error.HTTPError as exc:
            with exc:
                return CollectorStatus(exc.code, _retry_after(exc.headers))

    return send


def _retry_after(headers: Any) -> float | None:
    value = headers.get("Retry-After") if headers is not None else None
    if value is None:
        return None
    # An HTTP-date is measured against the collector's own Date, so that this machine's
    # clock skew cannot stretch or shrink the wait.
    now = parse_http_date(headers.get("Date") or "") or dt.datetime.now(dt.timezone.utc)
    return retry_after_seconds(value, now=now)


def _uri_host(uri: str) -> str | None:
    try:
        host = urlsplit(uri).hostname
        return canonical_host(host) if host else None
    except Exception:
        return None


@dataclass(slots=True, eq=False)
class _Job:
    """One failure report on its way to the URIs that have not taken it yet."""

    key: tuple[Any, ...]
    verdict: Verdict
    connection: Connection
    rule: DomainRule
    uris: list[str]
    observed: float  # the de-duplication window runs from here, not from the delivery
    body: bytes | None = None
    attempts: int = 0
    retry_in: float = 0.0


class BackgroundReporter(SenderWorker[_Job]):
    """Reports every pin failure of a pinned domain to its rule's ``report_uris``.

    Call it as ``reporter(verdict, connection)`` (one of the ``observers`` of
    :func:`pinset.ssl_context`); the call returns at once and never changes the
    verdict. What it promises:

    * only failures are reported (:data:`~pinset.reporting._report.REPORTED_REASONS`,
      report-only mismatches included; ``policy-expired`` is not a failure);
    * a report counts as delivered to a URI only when that URI answers 2xx; from then
      on identical reports (same host, port, noted host, chains, pins and result) go
      to that URI once per ``dedup_seconds`` (24 h) of ``clock`` (``time.monotonic``),
      and while one is on its way (queued or waiting for a retry) its twins are not queued;
    * a delivery that fails for a reason that may pass (unreachable, timeout, 408,
      429, 5xx) is tried again later by ``retry`` (:class:`RetryPolicy`): exponential
      backoff with ``jitter()`` (``random.random``), at least the ``Retry-After`` of a
      429 or 503; other statuses, and the last attempt, give the delivery up;
    * at most ``queue_size`` reports wait, new ones and those waiting for a retry
      together (plus the one being sent); more are dropped and counted;
    * a URI whose host is the failing host, or is covered by the same rule (or by
      any rule of ``policy``), is skipped: the report would go over the link that just failed;
    * reports go over ``context`` (default: system trust) and, for a collector that
      is not on a loopback address, through the environment's proxies unless
      ``proxies`` says otherwise (see :func:`urllib_transport`);
    * send errors are counted in ``failed`` and never raised;
    * ``callback(report)`` runs on the sender thread once for each report built.
    """

    def __init__(
        self,
        policy: Policy | None = None,
        *,
        app_bundle_id: str | None = None,
        app_version: str | None = None,
        app_platform: str | None = "PYTHON",
        queue_size: int = 100,
        dedup_seconds: float = DAY,
        dedup_entries: int = 10_000,
        retry: RetryPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
        jitter: Callable[[], float] = random.random,
        transport: Transport | None = None,
        context: ssl.SSLContext | None = None,
        timeout: float = 10.0,
        proxies: Mapping[str, str] | None = None,
        callback: ReportCallback | None = None,
    ) -> None:
        if queue_size < 1:
            raise ValueError("queue_size must be at least 1")
        self.policy = policy
        self.app_bundle_id = app_bundle_id
        self.app_version = app_version
        self.app_platform = app_platform
        self.callback = callback
        self.retry = retry or RetryPolicy()
        super().__init__(clock)
        self._transport = transport or urllib_transport(context, timeout=timeout, proxies=proxies)
        self._jitter = jitter
        self._queue_size = queue_size
        self._delivered = DeliveredKeys(dedup_seconds, dedup_entries)
        self._inflight: set[tuple[Any, ...]] = set()
        self._fresh: deque[_Job] = deque()
        self._counts = dict.fromkeys(
            (
                "queued",
                "sent",
                "failed",
                "dropped",
                "deduplicated",
                "skipped",
                "retried",
                "given_up",
            ),
            0,
        )

    # -- the observer (runs on the connecting thread: keep it tiny) -------------

    def __call__(self, verdict: Verdict, connection: Connection) -> None:
        """Queue a report for ``verdict`` if it is a failure worth reporting. Never blocks."""
        if getattr(_worker, "active", False) or verdict.reason not in REPORTED_REASONS:
            return
        rule = self._rule(verdict)
        if rule is None:
            return
        key = (
            connection.hostname,
            connection.port,
            rule.pattern,
            connection.served_chain,
            verdict.chain,
            rule.pins,
            verdict.reason,
        )
        uris = rule.report_uris or (self.policy.report_uris if self.policy else ())
        # With no URI the report only goes to the callback; it is de-duplicated all the same.
        targets = tuple(dict.fromkeys(uris)) or (_NO_URI,)
        now = self._clock()
        with self._lock:
            if self._closed:
                self._counts["dropped"] += 1
                return
            pending = [
                uri
                for uri in targets
                if (key, uri) not in self._inflight and not self._delivered.recent((key, uri), now)
            ]
            if not pending:
                self._counts["deduplicated"] += 1
                return
            if len(self._fresh) + len(self._retries) >= self._queue_size:
                self._counts["dropped"] += 1
                return
            self._fresh.append(_Job(key, verdict, connection, rule, pending, now))
            self._inflight.update((key, uri) for uri in pending)
            self._counts["queued"] += 1
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="pinset-reporter", daemon=True
                )
                self._thread.start()
            self._wakeup.notify_all()

    def _rule(self, verdict: Verdict) -> DomainRule | None:
        rule = verdict.rule
        if rule is None and self.policy is not None:
            # internal-error verdicts carry no rule; find it again.
            try:
                rule = self.policy.rule_for(verdict.host)
            except Exception:
                return None
        return None if rule is None or rule.exclude else rule

    def _settle(self, job: _Job, uri: str, *, delivered: bool) -> None:
        # Called with the lock held: the URI is done with this report, for good or not.
        self._inflight.discard((job.key, uri))
        if delivered:
            self._delivered.remember((job.key, uri), job.observed)

    # -- the sender thread -----------------------------------------------------

    def _run(self) -> None:
        _worker.active = True
        while True:
            job = self._next_item()
            if job is None:
                return
            try:
                self._attempt(job)
            except Exception:
                log.exception("pinset reporter: could not build or send a report")
                with self._lock:
                    for uri in job.uris:
                        self._settle(job, uri, delivered=False)
                    job.uris = []
            finally:
                self._finish(job)

    def _pop_fresh(self) -> _Job | None:
        return self._fresh.popleft() if self._fresh else None

    def _finish(self, job: _Job) -> None:
        with self._wakeup:
            self._busy = False
            if job.uris and not self._closed:
                due = self._clock() + job.retry_in
                heapq.heappush(self._retries, (due, next(self._order), job))
            elif job.uris:
                self._counts["given_up"] += len(job.uris)
                for uri in job.uris:
                    self._settle(job, uri, delivered=False)
            self._wakeup.notify_all()

    def _attempt(self, job: _Job) -> None:
        job.attempts += 1
        if job.body is None:
            job.body = self._build(job)
        retry_in: list[float] = []
        still: list[str] = []
        for uri in job.uris:
            delay = self._send(job, uri, job.body)
            if delay is not None:
                still.append(uri)
                retry_in.append(delay)
        job.uris = still
        job.retry_in = max(retry_in, default=0.0)

    def _build(self, job: _Job) -> bytes:
        verdict = job.verdict
        if verdict.rule is None:
            # Rebuild the verdict with its rule so that the report can name the pins.
            verdict = replace(verdict, rule=job.rule)
        report = FailureReport.from_verdict(
            verdict,
            job.connection,
            app_bundle_id=self.app_bundle_id,
            app_version=self.app_version,
            app_platform=self.app_platform,
        )
        if self.callback is not None:
            try:
                self.callback(report)
            except Exception:
                log.exception("pinset reporter callback failed")
        return report.to_json().encode()

    def _send(self, job: _Job, uri: str, body: bytes) -> float | None:
        """Deliver ``body`` to ``uri`` once; the seconds until the next try, or None if done."""
        if uri == _NO_URI:
            self._done(job, uri, delivered=True)
            return None
        if self._is_self(uri, job.connection.hostname, job.rule):
            log.warning("pinset reporter: not sending to %s, it is a pinned host", uri)
            self._count("skipped")
            # Skipping is a decision about the URI, not a failed delivery: remember it.
            self._done(job, uri, delivered=True)
            return None
        outcome = self._post_once(uri, body, job.attempts, "pinset reporter")
        if isinstance(outcome, str):
            self._done(job, uri, delivered=outcome == "sent")
            return None
        return outcome

    def _done(self, job: _Job, uri: str, *, delivered: bool) -> None:
        with self._lock:
            self._settle(job, uri, delivered=delivered)

    def _is_self(self, uri: str, failing_host: str, rule: DomainRule) -> bool:
        host = _uri_host(uri)
        if host is None:
            return True
        if host == failing_host or rule.covers(host):
            return True
        if self.policy is not None:
            try:
                return self.policy.rule_for(host) is not None
            except Exception:
                return True
        return False

    # -- control ---------------------------------------------------------------

    @property
    def stats(self) -> ReporterStats:
        """A snapshot of the counters."""
        with self._lock:
            return ReporterStats(**self._counts, retrying=len(self._retries))

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every report that is due has been tried; False if ``timeout`` ran out.

        A report waiting for a later retry is not waited for (``stats.retrying`` counts
        them); with an injected ``clock``, move the clock and flush again to let it go.
        """
        with self._wakeup:
            self._wakeup.notify_all()  # the clock may have moved: let the sender look again
            return self._wait_idle(timeout)

    def close(self, timeout: float | None = 5.0) -> bool:
        """Send what is queued (within ``timeout``), then stop the thread.

        Reports still waiting for a retry are given up (and counted); failures
        observed after closing are dropped (and counted).
        """
        return self._stop(self.flush(timeout), timeout)

    def _queued(self) -> bool:
        return bool(self._fresh)

    def _give_up_retries(self) -> None:
        for _, _, job in self._retries:
            self._counts["given_up"] += len(job.uris)
            for uri in job.uris:
                self._settle(job, uri, delivered=False)


def default_reporter(policy: Policy, **kwargs: Any) -> BackgroundReporter | None:
    """A :class:`BackgroundReporter` for ``policy``, or ``None`` when no rule has report URIs."""
    if not policy.report_uris and not any(r.report_uris for r in policy.rules if not r.exclude):
        return None
    return BackgroundReporter(policy, **kwargs)
