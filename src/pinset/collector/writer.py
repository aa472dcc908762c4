"""The batching writer: one thread that commits accepted reports, then acknowledges them.

A request handler submits a :class:`NormalizedReport` and awaits the result;
the writer takes everything queued (up to ``batch_size``), writes it in one
transaction (chains, report upserts, roll-ups) and only after the commit
resolves each waiter. So a report answered 202 is in the database. Identical
reports of one day are merged in Python first, then upserted with
``ON CONFLICT … DO UPDATE SET count = count + n``, which is also what keeps
several collector processes on one PostgreSQL consistent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from pinset.collector.normalize import NormalizedReport, certificate_facts
from pinset.collector.upsert import Upserts, to_json

__all__ = ["BatchWriter", "Busy", "WriteResult"]

log = logging.getLogger("pinset.collector")

DAY = 86400


class Busy(Exception):
    """The write queue is full: the client should retry later (HTTP 503)."""


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What one committed report became: a new row, or a count on an existing one."""

    new: bool


Outcome = WriteResult | BaseException
# The request waiting for a report: its event loop and the future to settle there.
Waiter = tuple[asyncio.AbstractEventLoop, "asyncio.Future[WriteResult]"]


@dataclass(slots=True)
class _Group:
    first: NormalizedReport
    count: int = 0
    last_seen: int = 0
    waiters: list[Waiter] = field(default_factory=list)


class BatchWriter:
    """Commits reports in batches on a background thread. Start with :meth:`start`."""

    def __init__(
        self,
        engine: sa.Engine,
        *,
        batch_size: int = 500,
        queue_size: int = 20_000,
        on_commit: Callable[[int, int], None] | None = None,
    ) -> None:
        self.engine = engine
        self.batch_size = batch_size
        self._queue: queue.Queue[tuple[NormalizedReport, Waiter] | None] = queue.Queue(queue_size)
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._on_commit = on_commit
        self._sql = Upserts(engine.dialect.name)
        # Chains this writer has committed: most reports repeat a known chain.
        self._known_chains: set[str] = set()
        self._new_chains: list[str] = []

    def start(self) -> None:
        """Start the writer thread (again after :meth:`stop`); idempotent."""
        with self._start_lock:
            if self._thread is not None:
                return
            thread = threading.Thread(target=self._run, name="collector-writer", daemon=True)
            thread.start()
            self._thread = thread

    def stop(self, timeout: float = 10.0) -> None:
        """Commit what is queued, then stop."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout)
            self._thread = None

    def submit(self, report: NormalizedReport, waiter: Waiter) -> None:
        """Queue ``report``; ``waiter``'s future is settled on its loop after the commit."""
        if self._thread is None:
            self.start()
        try:
            self._queue.put_nowait((report, waiter))
        except queue.Full:
            raise Busy("the collector is overloaded; retry later") from None

    async def write(self, report: NormalizedReport) -> WriteResult:
        """Queue ``report`` and wait until it is committed."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[WriteResult] = loop.create_future()
        self.submit(report, (loop, future))
        return await future

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            batch = [item]
            stop = False
            while len(batch) < self.batch_size:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                batch.append(nxt)
            self._commit(batch)
            if stop:
                return

    def _commit(self, batch: list[tuple[NormalizedReport, Waiter]]) -> None:
        groups: dict[tuple[str, int], _Group] = {}
        for report, waiter in batch:
            key = (report.dedup_key, report.received // DAY)
            group = groups.get(key)
            if group is None:
                group = groups[key] = _Group(first=report)
            group.count += 1
            group.last_seen = max(group.last_seen, report.received)
            group.waiters.append(waiter)
        try:
            with self.engine.begin() as conn:
                totals = self._write(conn, groups)
        except Exception as exc:
            if len(batch) > 1:
                # One report the database refuses must not fail the others: one by one.
                log.warning("collector: batch of %d failed (%s); retrying singly", len(batch), exc)
                for item in batch:
                    self._commit([item])
                return
            log.exception("collector: could not commit a report")
            _settle([(waiter, exc) for _, waiter in batch])
            return
        if len(self._known_chains) > 100_000:
            self._known_chains.clear()
        self._known_chains.update(self._new_chains)  # only once committed
        new_rows = 0
        outcomes: list[tuple[Waiter, Outcome]] = []
        for key, group in groups.items():
            # The returned count equals what this batch added only when the row is new.
            is_new = totals.get(key) == group.count
            new_rows += int(is_new)
            outcomes.extend(
                (waiter, WriteResult(new=is_new and index == 0))
                for index, waiter in enumerate(group.waiters)
            )
        if self._on_commit is not None:
            self._on_commit(len(batch), new_rows)
        _settle(outcomes)

    def _write(
        self, conn: sa.Connection, groups: dict[tuple[str, int], _Group]
    ) -> dict[tuple[str, int], int]:
        ordered = sorted(groups.items())  # one lock order across processes: no deadlocks
        chain_rows = _chain_rows((g.first for _, g in ordered), self._known_chains)
        self._sql.chains(conn, chain_rows)
        self._new_chains = [row[0] for row in chain_rows]
        totals = self._sql.reports(conn, [_report_row(g, day) for (_, day), g in ordered])
        hours: dict[tuple[str, int, str], int] = {}
        minutes: dict[tuple[int, str], int] = {}
        for _, group in ordered:
            r = group.first
            hour = group.last_seen // 3600 * 3600
            values = [
                ("hostname", r.hostname),
                ("app_version", r.app_version or ""),
                ("validation_result", r.validation_result),
            ]
            if r.served_chain_key:
                values.append(("chain", f"{r.served_chain_key} {r.hostname}"))
            for dimension, value in values:
                key = (dimension, hour, value)
                hours[key] = hours.get(key, 0) + group.count
            minute = (group.last_seen // 60 * 60, r.hostname)
            minutes[minute] = minutes.get(minute, 0) + group.count
        self._sql.hours(conn, [(*k, n) for k, n in sorted(hours.items())])
        self._sql.minutes(conn, [(*k, n) for k, n in sorted(minutes.items())])
        return totals


def _chain_rows(firsts: Iterable[NormalizedReport], known: set[str]) -> list[tuple[Any, ...]]:
    rows: dict[str, tuple[Any, ...]] = {}
    for report in firsts:
        for pems in (report.served_chain, report.validated_chain):
            key = report.served_key if pems is report.served_chain else report.validated_key
            if key is None or key in rows or key in known:
                continue
            facts = [certificate_facts(p) for p in pems]
            rows[key] = (
                key,
                to_json(list(pems)),
                to_json([pin for pin, _ in facts]),
                to_json([subject for _, subject in facts]),
                report.received,
            )
    return [rows[k] for k in sorted(rows)]


def _report_row(group: _Group, day: int) -> tuple[Any, ...]:
    r = group.first
    return (
        r.dedup_key,
        day,
        r.received,
        group.last_seen,
        group.count,
        r.date_time,
        r.hostname,
        r.port,
        r.noted_hostname,
        r.include_subdomains,
        r.effective_expiration_date,
        r.known_pins_expiration_date,
        r.app_bundle_id,
        r.app_version,
        r.app_platform,
        r.enforce_pinning,
        r.validation_result,
        r.served_chain_key,
        r.validated_key,
        to_json(list(r.known_pins)),
        r.variant,
        to_json(r.extra),
    )


def _settle(outcomes: list[tuple[Waiter, Outcome]]) -> None:
    # One wake-up per event loop and batch, not one per report.
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[WriteResult], Outcome]]] = {}
    for (loop, future), outcome in outcomes:
        by_loop.setdefault(loop, []).append((future, outcome))
    for loop, items in by_loop.items():
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
            loop.call_soon_threadsafe(_settle_on_loop, items)


def _settle_on_loop(items: list[tuple[asyncio.Future[WriteResult], Outcome]]) -> None:
    for future, outcome in items:
        if future.done():  # the client went away; the report is committed all the same
            continue
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)
