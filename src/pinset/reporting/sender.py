"""Send failure reports in the background: bounded, de-duplicated, never blocking.

:class:`BackgroundReporter` is a verdict observer: ``ssl_context(policy,
reporter=reporter)`` (``ssl_context`` makes one by itself when the policy has
report URIs). The observer call only checks a de-duplication table
and puts the facts on a bounded queue; one daemon thread builds the JSON and
posts it with :mod:`urllib` over a *plain* verifying context, so report traffic
is never pinned, never judged and never reported on. Environment proxies are used
for remote collectors, never for one on a loopback address.
"""

from __future__ import annotations

import ipaddress
import logging
import queue
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pinset.hosts import canonical_host
from pinset.reporting.report import REPORTED_REASONS, FailureReport

if TYPE_CHECKING:
    from pinset.evaluate import Verdict
    from pinset.policy import DomainRule, Policy
    from pinset.tls import Connection

__all__ = [
    "BackgroundReporter",
    "ReporterStats",
    "Transport",
    "default_reporter",
    "is_loopback_host",
    "urllib_transport",
]

log = logging.getLogger("pinset.reporting")

# (uri, body) -> HTTP status. Raises OSError when the collector cannot be reached.
Transport = Callable[[str, bytes], int]
ReportCallback = Callable[[FailureReport], None]

DAY = 24 * 3600.0
_worker = threading.local()


@dataclass(frozen=True, slots=True)
class ReporterStats:
    """Counters since the reporter was made. ``sent`` and ``failed`` count URI deliveries."""

    queued: int
    sent: int
    failed: int
    dropped: int
    deduplicated: int
    skipped: int


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # A redirect could point the report at the pinned host: a 3xx counts as a failure.
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` (a URI's host: name, IPv4 or IPv6, brackets allowed) is this machine.

    127.0.0.0/8, ``::1``, ``localhost`` and names under ``.localhost`` (RFC 6761).
    Names are not resolved: a name that merely resolves to loopback is not loopback here.
    """
    text = host.strip().strip("[]").rstrip(".").lower()
    if not text:
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
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)

    return send


def _uri_host(uri: str) -> str | None:
    try:
        host = urlsplit(uri).hostname
        return canonical_host(host) if host else None
    except Exception:
        return None


class BackgroundReporter:
    """Reports every pin failure of a pinned domain to its rule's ``report_uris``.

    Call it as ``reporter(verdict, connection)`` (the ``on_verdict`` observer of
    :func:`pinset.ssl_context`); the call returns at once. What it promises:

    * only failures are reported (:data:`~pinset.reporting.report.REPORTED_REASONS`,
      report-only mismatches included; ``policy-expired`` is not a failure);
    * identical reports (same host, port, noted host, chains, pins and result)
      are sent once per ``dedup_seconds`` (24 h) of ``clock`` (``time.monotonic``);
    * at most ``queue_size`` reports wait; more are dropped and counted;
    * a URI whose host is the failing host, or is covered by the same rule (or by
      any rule of ``policy``), is skipped: the report would go over the link that just failed;
    * reports go over ``context`` (default: system trust) and, for a collector that
      is not on a loopback address, through the environment's proxies unless
      ``proxies`` says otherwise (see :func:`urllib_transport`);
    * send errors are counted in ``failed`` and never raised;
    * ``callback(report)`` runs on the sender thread for each report built.
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
        clock: Callable[[], float] = time.monotonic,
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
        self._transport = transport or urllib_transport(context, timeout=timeout, proxies=proxies)
        self._clock = clock
        self._dedup_seconds = dedup_seconds
        self._dedup_entries = dedup_entries
        self._seen: dict[tuple[Any, ...], float] = {}
        self._queue: queue.Queue[tuple[Verdict, Connection, DomainRule] | None] = queue.Queue(
            queue_size
        )
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._pending = 0
        self._counts = dict.fromkeys(
            ("queued", "sent", "failed", "dropped", "deduplicated", "skipped"), 0
        )
        self._thread: threading.Thread | None = None
        self._closed = False

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
        now = self._clock()
        with self._lock:
            if self._closed:
                self._counts["dropped"] += 1
                return
            expires = self._seen.get(key)
            if expires is not None and now < expires:
                self._counts["deduplicated"] += 1
                return
            try:
                self._queue.put_nowait((verdict, connection, rule))
            except queue.Full:
                self._counts["dropped"] += 1
                return
            self._remember(key, now)
            self._counts["queued"] += 1
            self._pending += 1
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="pinset-reporter", daemon=True
                )
                self._thread.start()

    def _rule(self, verdict: Verdict) -> DomainRule | None:
        rule = verdict.rule
        if rule is None and self.policy is not None:
            # internal-error verdicts carry no rule; find it again.
            try:
                rule = self.policy.rule_for(verdict.host)
            except Exception:
                return None
        return None if rule is None or rule.exclude else rule

    def _remember(self, key: tuple[Any, ...], now: float) -> None:
        if len(self._seen) >= self._dedup_entries:
            for old in [k for k, t in self._seen.items() if t <= now]:
                del self._seen[old]
            while len(self._seen) >= self._dedup_entries:
                del self._seen[next(iter(self._seen))]
        self._seen[key] = now + self._dedup_seconds

    # -- the sender thread -----------------------------------------------------

    def _run(self) -> None:
        _worker.active = True
        while True:
            item = self._queue.get()
            if item is None:
                return
            try:
                self._deliver(*item)
            except Exception:
                log.exception("pinset reporter: could not build or send a report")
            finally:
                with self._idle:
                    self._pending -= 1
                    self._idle.notify_all()

    def _deliver(self, verdict: Verdict, connection: Connection, rule: DomainRule) -> None:
        if verdict.rule is None:
            # Rebuild the verdict with its rule so that the report can name the pins.
            verdict = replace(verdict, rule=rule)
        report = FailureReport.from_verdict(
            verdict,
            connection,
            app_bundle_id=self.app_bundle_id,
            app_version=self.app_version,
            app_platform=self.app_platform,
        )
        if self.callback is not None:
            try:
                self.callback(report)
            except Exception:
                log.exception("pinset reporter callback failed")
        uris = rule.report_uris or (self.policy.report_uris if self.policy else ())
        body = report.to_json().encode()
        for uri in dict.fromkeys(uris):
            if self._is_self(uri, connection.hostname, rule):
                log.warning("pinset reporter: not sending to %s, it is a pinned host", uri)
                self._count("skipped")
                continue
            try:
                status = self._transport(uri, body)
            except Exception as exc:
                log.warning("pinset reporter: sending to %s failed: %s", uri, exc)
                self._count("failed")
                continue
            self._count("sent" if 200 <= status < 300 else "failed")

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

    def _count(self, name: str) -> None:
        with self._lock:
            self._counts[name] += 1

    # -- control ---------------------------------------------------------------

    @property
    def stats(self) -> ReporterStats:
        """A snapshot of the counters."""
        with self._lock:
            return ReporterStats(**self._counts)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued report was handled; False if ``timeout`` ran out first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._idle:
            while self._pending:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._idle.wait(left)
        return True

    def close(self, timeout: float | None = 5.0) -> bool:
        """Send what is queued (within ``timeout``), then stop the thread.

        Failures observed after closing are dropped (and counted).
        """
        done = self.flush(timeout)
        with self._lock:
            self._closed = True
            thread = self._thread
        if thread is not None:
            try:
                self._queue.put_nowait(None)
            except queue.Full:
                return False
            thread.join(timeout)
        return done

    def __enter__(self) -> BackgroundReporter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def default_reporter(policy: Policy, **kwargs: Any) -> BackgroundReporter | None:
    """A :class:`BackgroundReporter` for ``policy``, or ``None`` when no rule has report URIs."""
    if not policy.report_uris and not any(r.report_uris for r in policy.rules if not r.exclude):
        return None
    return BackgroundReporter(policy, **kwargs)
