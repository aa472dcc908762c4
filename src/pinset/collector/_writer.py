"""The batching writer: one thread that commits accepted reports, then acknowledges them.

A request handler submits a :class:`NormalizedReport` and awaits the result;
the writer takes everything queued (up to ``batch_size``), writes it in one
transaction (chains, reports, roll-ups) and only after the commit resolves
each waiter. So a report answered 202 is in the database.

De-duplication slides: a report is counted on the newest row of its
``dedup_key`` whose first occurrence is less than :data:`DEDUP_WINDOW` (24 h)
before it, else it starts a new row. "Look up, then update or insert" is only
correct when no other collector process does the same for the same key at the
same time, so the transaction first takes a per-key advisory lock (PostgreSQL)
or SQLite's one write lock (``BEGIN IMMEDIATE``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import sqlalchemy as sa

from pinset.collector._normalize import NormalizedReport, certificate_facts
from pinset.collector._upsert import Upserts, to_json

__all__ = [
    "DEDUP_WINDOW",
    "DEFAULT_QUEUE_SIZE",
    "BatchWriter",
    "Busy",
    "Unavailable",
    "WriteResult",
]

log = logging.getLogger("pinset.collector")

DEDUP_WINDOW = 86400  # seconds: identical reports within 24 h of a row's first are counted on it
# Reports waiting for their commit, beyond which new ones are refused (503, Retry-After):
# one batch more than the one being written, a quarter second at 2,000 reports/s. It binds
# before uvicorn's --max-connections (1000), whose 503 costs the client its connection;
# each waiter holds a request and its memory (benchmarks/collector_load.py, docs/security.md).
DEFAULT_QUEUE_SIZE = 500


class Busy(Exception):
    """The write queue is full: the client should retry later (HTTP 503)."""


class Unavailable(Exception):
    """The database cannot be reached (or refused the transaction as a whole) just now.

    Nothing of the batch is committed; the client should retry later (HTTP 503).
    """


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What one committed report became: a new row, or a count on an existing one."""

    new: bool


Outcome = WriteResult | BaseException
# The request waiting for a report: its event loop and the future to settle there.
Waiter = tuple[asyncio.AbstractEventLoop, "asyncio.Future[WriteResult]"]


@dataclass(slots=True)
class _Group:
    """Reports of one batch that end up on one row: an existing one (``row_id``) or a new one."""

    first: NormalizedReport
    first_seen: int
    row_id: int | None = None
    count: int = 0
    last_seen: int = 0
    waiters: list[Waiter] = field(default_factory=list)


Batch = list[tuple[NormalizedReport, Waiter]]
ChainPin = tuple[str, int, str]  # (chain_key, hour, pin): a chain_pins row


@dataclass(frozen=True, slots=True)
class _Written:
    """What one batch's transaction wrote: its rows, and the chain facts it added."""

    groups: list[_Group]
    chains: list[str]
    chain_pins: list[ChainPin]


# Forget what was committed when the memory of it grows past this: it only saves writes.
_KNOWN_LIMIT = 100_000
_T = TypeVar("_T")


class BatchWriter:
    """Commits reports in batches on a background thread. Start with :meth:`start`."""

    def __init__(
        self,
        engine: sa.Engine,
        *,
        batch_size: int = 500,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        on_commit: Callable[[int, int], None] | None = None,
    ) -> None:
        self.engine = engine
        self.batch_size = batch_size
        self._queue: queue.Queue[tuple[NormalizedReport, Waiter] | None] = queue.Queue(queue_size)
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._on_commit = on_commit
        self._sql = Upserts(engine.dialect.name)
        # PEP 249's names for "the database cannot do it now": a lost or refused
        # connection, a server shutting down, a lock or statement timeout.
        dbapi = engine.dialect.dbapi
        self._outages: tuple[type[BaseException], ...] = (
            sa.exc.OperationalError,
            sa.exc.InterfaceError,
            *(getattr(dbapi, name) for name in ("OperationalError", "InterfaceError") if dbapi),
        )
        self._down = False  # the last commit failed for an outage (log it once, not per batch)
        # Chains this writer has committed: most reports repeat a known chain.
        self._known_chains: set[str] = set()
        # chain_pins rows this writer has committed: most batches add none.
        self._known_chain_pins: set[ChainPin] = set()

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

    @property
    def queue_depth(self) -> int:
        """Reports waiting for the writer thread now."""
        return self._queue.qsize()

    @property
    def queue_full(self) -> bool:
        """Whether :meth:`submit` would refuse a report now."""
        return self._queue.full()

    @property
    def queue_limit(self) -> int:
        """Reports that may wait; one more is refused with :class:`Busy`."""
        return self._queue.maxsize

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

    def _commit(self, batch: Batch) -> None:
        by_key = self._by_key(batch)
        try:
            with self.engine.begin() as conn:
                self._sql.begin(conn)
                written = self._write(conn, by_key)
        except self._outages as exc:
            # The database is down or restarting: trying each report alone would only
            # knock on it once per report. Every waiter gets 503 and retries.
            if not self._down:
                log.warning("collector: database unavailable (%s); answering 503", exc)
            self._down = True
            error = Unavailable(f"the database is unavailable: {type(exc).__name__}")
            _settle([(waiter, error) for _, waiter in batch])
            return
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
        if self._down:
            log.warning("collector: database available again")
            self._down = False
        _remember(self._known_chains, written.chains)  # only once committed
        _remember(self._known_chain_pins, written.chain_pins)
        new_rows = 0
        outcomes: list[tuple[Waiter, Outcome]] = []
        for group in written.groups:
            is_new = group.row_id is None
            new_rows += int(is_new)
            outcomes.extend(
                (waiter, WriteResult(new=is_new and index == 0))
                for index, waiter in enumerate(group.waiters)
            )
        if self._on_commit is not None:
            self._on_commit(len(batch), new_rows)
        _settle(outcomes)

    @staticmethod
    def _by_key(batch: Batch) -> dict[str, Batch]:
        by_key: dict[str, Batch] = {}
        for item in batch:
            by_key.setdefault(item[0].dedup_key, []).append(item)
        return by_key

    def _write(self, conn: sa.Connection, by_key: dict[str, Batch]) -> _Written:
        keys = sorted(by_key)  # one lock order across processes: no deadlocks
        self._sql.lock_keys(conn, keys)
        oldest = min(report.received for items in by_key.values() for report, _ in items)
        newest = self._sql.newest_rows(conn, keys, after=oldest - DEDUP_WINDOW)
        groups = [g for key in keys for g in _window_groups(by_key[key], newest.get(key))]
        chain_rows = _chain_rows((g.first for g in groups), self._known_chains)
        self._sql.chains(conn, chain_rows)
        self._sql.insert_reports(conn, [_report_row(g) for g in groups if g.row_id is None])
        self._sql.add_counts(
            conn,
            sorted((g.row_id, g.count, g.last_seen) for g in groups if g.row_id is not None),
        )
        hours: dict[tuple[str, int, str], int] = {}
        minutes: dict[tuple[int, str], int] = {}
        chain_pins: set[ChainPin] = set()
        for group in groups:
            r = group.first
            hour = group.last_seen // 3600 * 3600
            values = [
                ("hostname", r.hostname),
                ("app_version", r.app_version or ""),
                ("validation_result", r.validation_result),
            ]
            if r.served_chain_key:
                values.append(("chain", f"{r.served_chain_key} {r.hostname}"))
                chain_pins.update((r.served_chain_key, hour, pin) for pin in r.known_pins)
            for dimension, value in values:
                key = (dimension, hour, value)
                hours[key] = hours.get(key, 0) + group.count
            minute = (group.last_seen // 60 * 60, r.hostname)
            minutes[minute] = minutes.get(minute, 0) + group.count
        self._sql.hours(conn, [(*k, n) for k, n in sorted(hours.items())])
        self._sql.minutes(conn, [(*k, n) for k, n in sorted(minutes.items())])
        new_chain_pins = sorted(chain_pins - self._known_chain_pins)
        self._sql.chain_pins(conn, new_chain_pins)
        return _Written(groups, [row[0] for row in chain_rows], new_chain_pins)


def _remember(known: set[_T], committed: list[_T]) -> None:
    if len(known) > _KNOWN_LIMIT:
        known.clear()
    known.update(committed)


def _window_groups(items: Batch, newest: tuple[int, int] | None) -> list[_Group]:
    """Split one key's reports into rows: counted on ``newest`` (id, first_seen) or new.

    A report joins the current row while it arrives less than :data:`DEDUP_WINDOW`
    after that row's first occurrence; otherwise it opens a new row (and window).
    """
    groups: list[_Group] = []
    current: _Group | None = None
    if newest is not None:
        row_id, first_seen = newest
        current = _Group(first=items[0][0], first_seen=first_seen, row_id=row_id)
    for report, waiter in sorted(items, key=lambda item: item[0].received):
        if current is None or report.received - current.first_seen >= DEDUP_WINDOW:
            current = _Group(first=report, first_seen=report.received)
        if not groups or groups[-1] is not current:
            groups.append(current)
        current.count += 1
        current.last_seen = max(current.last_seen, report.received)
        current.waiters.append(waiter)
    return groups


def _chain_rows(firsts: Iterable[NormalizedReport], known: set[str]) -> list[tuple[Any, ...]]:
    rows: dict[str, tuple[Any, ...]] = {}
    for report in firsts:
        for key, pems in (
            (report.served_key, report.served_chain),
            (report.validated_key, report.validated_chain),
        ):
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


def _report_row(group: _Group) -> tuple[Any, ...]:
    r = group.first
    return (
        r.dedup_key,
        group.first_seen,
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
