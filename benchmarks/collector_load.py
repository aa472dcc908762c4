"""Ten times the target load on one collector process (PostgreSQL), and a SIGKILL under load.

    .venv/bin/python benchmarks/collector_load.py [--postgres postgresql+psycopg://…]
        [--seconds 8] [--factor 10] [--queue N] [--max-connections N]

On a fresh database (created and dropped; the admin URL defaults to
``$PINSET_TEST_POSTGRES_URL``):

1. **Target load.** One ``pinset collector serve`` process (real uvicorn, rate limit
   off); 32 keep-alive connections post realistic reports as fast as they are answered
   (closed loop). The rate of 202 answers is the *target*: what one process sustains,
   measured in this run on this machine.
2. **Overload.** Reports arrive at ``--factor`` × the target (open loop: an arrival does
   not wait for earlier answers; it takes an idle connection or opens a new one, as more
   devices would). Printed: the offered and answered rates, how many were accepted (202)
   and shed (503 ``busy`` at the full write queue, 503 ``over-capacity`` past
   ``--max-connections``, 429), p50/p99 of the accepted reports, and the server's resident
   memory (``VmRSS``) sampled every 50 ms.
3. **Accounting.** The counts stored in the database are compared with the 202s:
   ``reports lost`` is 202s minus stored counts (must be 0); stored minus 202s may only
   be the reports whose answer never arrived.
4. **SIGKILL under load.** Two collector processes on one database at the target load;
   one is killed with SIGKILL mid-run, its clients go on with the other. The same
   accounting over both.

``PINSET_BENCH_QUICK=1``: the same steps with a few hundred reports and a second of
overload, in seconds (``_quick.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).parent))
from _quick import scaled  # benchmarks/_quick.py, next to this script
from collector_ingest import make_bodies  # the same realistic reports

_T = TypeVar("_T")
# The answers the overload line always names (0 when none came), then any other.
ANSWERS = ("202", "503 busy", "503 over-capacity")
TOKEN = "load-token"  # noqa: S105 - the throw-away collector's read token


# -- database and server ---------------------------------------------------------------------


@contextlib.contextmanager
def fresh_database(admin_url: str) -> Iterator[str]:
    name = f"pinset_load_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield sa.engine.make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    port: int

    def rss_mib(self) -> float:
        try:
            text = Path(f"/proc/{self.proc.pid}/status").read_text()
        except OSError:
            return 0.0
        for line in text.splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0


@contextlib.contextmanager
def serve(db_url: str, queue: int | None, max_connections: int) -> Iterator[Server]:
    port = _free_port()
    env = {**os.environ, "PINSET_COLLECTOR_TOKEN": TOKEN}
    if queue is not None:
        env["PINSET_COLLECTOR_QUEUE"] = str(queue)
    proc = subprocess.Popen(
        [sys.executable, "-m", "pinset", "collector", "serve", "--port", str(port),
         "--db", db_url, "--rate-limit", "0", "--max-connections", str(max_connections),
         "--log-level", "critical"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"the collector exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5):
                break
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit("the collector did not start") from None
            time.sleep(0.1)
    try:
        yield Server(proc, port)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def stored_count(db_url: str) -> int:
    engine = sa.create_engine(db_url)
    with engine.connect() as conn:
        total = conn.execute(sa.text("SELECT COALESCE(SUM(count), 0) FROM reports")).scalar_one()
    engine.dispose()
    return int(total)


# -- clients ---------------------------------------------------------------------------------


@dataclass
class Tally:
    statuses: Counter[str] = field(default_factory=Counter)
    accepted_latency: list[float] = field(default_factory=list)
    service_latency: list[float] = field(default_factory=list)  # from the request's send
    sent: int = 0
    unanswered: list[bytes] = field(default_factory=list)  # posted, no answer
    rest: list[bytes] = field(default_factory=list)  # never posted (the server went away)

    def add(
        self, status: int | None, error: str | None, latency: float, service: float = 0.0
    ) -> None:
        if status == 202:
            self.statuses["202"] += 1
            self.accepted_latency.append(latency)
            self.service_latency.append(service or latency)
        elif status is None:
            self.statuses["no answer"] += 1
        else:
            self.statuses[f"{status} {error or ''}".strip()] += 1


class Connection:
    """One keep-alive HTTP/1.1 connection; raw asyncio so the client costs little CPU."""

    HEAD = b"POST /v1/report HTTP/1.1\r\nHost: load\r\nContent-Type: application/json\r\n"

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.open = True

    @classmethod
    async def connect(cls, port: int) -> Connection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def post(self, body: bytes) -> tuple[int, str | None]:
        self.writer.write(self.HEAD + b"Content-Length: %d\r\n\r\n" % len(body) + body)
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionResetError
        length = 0
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection" and value.strip().lower() == b"close":
                self.open = False
        payload = await self.reader.readexactly(length)
        status = int(status_line.split()[1])
        error = None
        if status != 202:
            with contextlib.suppress(ValueError):
                error = json.loads(payload).get("error")
        return status, error

    def close(self) -> None:
        self.open = False
        self.writer.close()


async def closed_loop(port: int, bodies: list[bytes], concurrency: int) -> tuple[float, Tally]:
    tally = Tally()
    shared = iter(bodies)

    async def client() -> None:
        try:
            conn = await Connection.connect(port)
        except OSError:
            return
        try:
            for body in shared:
                start = time.perf_counter()
                try:
                    status, error = await conn.post(body)
                except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
                    tally.add(None, None, 0.0)
                    tally.unanswered.append(body)
                    return
                tally.sent += 1
                tally.add(status, error, time.perf_counter() - start)
        finally:
            conn.close()

    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    tally.rest = list(shared)
    return time.perf_counter() - start, tally


async def open_loop(
    port: int, bodies: list[bytes], rate: float, seconds: float, max_client_connections: int
) -> tuple[float, Tally, int]:
    """Arrivals at ``rate``/s for ``seconds``; returns (elapsed, tally, arrivals not sent)."""
    tally = Tally()
    idle: list[Connection] = []
    opened = 0
    not_sent = 0
    tasks: set[asyncio.Task[None]] = set()
    loop = asyncio.get_running_loop()

    async def one(conn: Connection | None, body: bytes, arrived: float) -> None:
        nonlocal opened
        try:
            if conn is None:
                conn = await Connection.connect(port)
            sent = loop.time()
            status, error = await conn.post(body)
        except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
            tally.add(None, None, 0.0)
            if conn is not None:
                conn.close()
            opened -= 1
            return
        done = loop.time()
        tally.add(status, error, done - arrived, done - sent)
        if conn.open:
            idle.append(conn)
        else:
            conn.close()
            opened -= 1

    start = loop.time()
    issued = 0
    index = 0
    while (now := loop.time()) - start < seconds:
        due = int((now - start) * rate) - issued
        for _ in range(due):
            issued += 1
            body = bodies[index % len(bodies)]
            index += 1
            conn = idle.pop() if idle else None
            if conn is None:
                if opened >= max_client_connections:
                    not_sent += 1
                    continue
                opened += 1
            tally.sent += 1
            task = asyncio.ensure_future(one(conn, body, now))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        await asyncio.sleep(0.001)
    elapsed = loop.time() - start
    if tasks:
        await asyncio.wait(tasks, timeout=60)
    for conn in idle:
        conn.close()
    return elapsed, tally, not_sent


def _quantiles_ms(latencies: list[float]) -> tuple[float, float]:
    if len(latencies) < 2:
        return float("nan"), float("nan")
    q = statistics.quantiles(latencies, n=100, method="inclusive")
    return q[49] * 1000, q[98] * 1000


class RssSampler:
    def __init__(self, server: Server) -> None:
        self.server = server
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.samples.append(self.server.rss_mib())

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _run(coroutine: Coroutine[Any, Any, _T]) -> _T:
    try:
        import uvloop

        return uvloop.run(coroutine)
    except ImportError:
        return asyncio.run(coroutine)


# -- the runs ----------------------------------------------------------------------------------


def overload(args: argparse.Namespace, bodies: list[bytes]) -> None:
    with fresh_database(args.postgres) as url, serve(url, args.queue, args.max_connections) as s:
        warm = scaled(1000, 50)
        _run(closed_loop(s.port, bodies[:warm], 8))  # warm up: imports, caches, the pool
        idle_rss = s.rss_mib()
        elapsed, base = _run(closed_loop(s.port, bodies[: args.baseline], 32))
        target = base.statuses["202"] / elapsed
        p50, p99 = _quantiles_ms(base.accepted_latency)
        print(f"target load (one process, 32 connections, closed loop): {target:,.0f} reports/s "
              f"({base.statuses['202']:,}/{base.sent:,} answered 202), p50 {p50:.1f} ms, "
              f"p99 {p99:.1f} ms, RSS {s.rss_mib():.0f} MiB")  # fmt: skip
        rate = target * args.factor
        with RssSampler(s) as rss:
            elapsed, tally, not_sent = _run(
                open_loop(s.port, bodies, rate, args.seconds, args.client_connections)
            )
        after_rss = s.rss_mib()
        accepted = tally.statuses["202"]
        offered = (tally.sent + not_sent) / elapsed
        answered = sum(n for k, n in tally.statuses.items() if k != "no answer")
        p50, p99 = _quantiles_ms(tally.accepted_latency)
        s50, s99 = _quantiles_ms(tally.service_latency)
        print(f"overload: {args.factor:g} x target = {rate:,.0f} arrivals/s for {elapsed:.1f} s, "
              f"offered {offered:,.0f}/s ({offered / target:.1f}x), "
              f"{tally.sent:,} sent, {not_sent:,} not sent (client at "
              f"{args.client_connections:,} connections)")  # fmt: skip
        kinds = [*ANSWERS, *sorted(set(tally.statuses) - set(ANSWERS))]
        print(f"  answered {answered / elapsed:,.0f}/s: "
              + ", ".join(f"{k}: {tally.statuses[k]:,}" for k in kinds))  # fmt: skip
        shed = sum(n for k, n in tally.statuses.items() if k.startswith(("503", "429")))
        held = accepted / elapsed
        print(f"  accepted {held:,.0f} reports/s = {held / target:.2f}x target held; "
              f"shed {shed:,} ({shed / max(1, answered):.0%} of answers); "
              f"accepted p50 {p50:.0f} ms, p99 {p99:.0f} ms from arrival "
              f"(p50 {s50:.0f} ms, p99 {s99:.0f} ms from the request's send)")  # fmt: skip
        peak = max(rss.samples, default=0.0)
        print(f"  server RSS: {idle_rss:.0f} MiB idle, peak {peak:.0f} MiB under overload "
              f"({len(rss.samples)} samples), {after_rss:.0f} MiB after")  # fmt: skip
        counted = stored_count(url)
    total_202 = base.statuses["202"] + accepted + warm  # + the warm-up
    unanswered = tally.statuses["no answer"]
    lost = max(0, total_202 - counted)
    print(f"  accounting: {total_202:,} answered 202, {counted:,} counted in the database, "
          f"{unanswered:,} without an answer; reports lost: {lost}")  # fmt: skip


def kill_under_load(args: argparse.Namespace, bodies: list[bytes]) -> None:
    with fresh_database(args.postgres) as url:
        with (
            serve(url, args.queue, args.max_connections) as a,
            serve(url, args.queue, args.max_connections) as b,
        ):
            half = len(bodies) // 2
            result: dict[str, tuple[float, Tally]] = {}

            def load(name: str, port: int, part: list[bytes]) -> None:
                result[name] = _run(closed_loop(port, part, 16))

            ta = threading.Thread(target=load, args=("a", a.port, bodies[:half]))
            tb = threading.Thread(target=load, args=("b", b.port, bodies[half:]))
            ta.start()
            tb.start()
            time.sleep(args.kill_after)
            a.proc.send_signal(signal.SIGKILL)
            a.proc.wait()
            ta.join()
            tb.join()
            _, ta_tally = result["a"]
            # A's clients retry what got no answer, on B (client retries are at least once),
            # and post what they had not sent yet there too.
            left = ta_tally.unanswered + ta_tally.rest
            retried = _run(closed_loop(b.port, left, 16))[1] if left else Tally()
            tally = Tally()
            for t in (result["a"][1], result["b"][1], retried):
                tally.statuses.update(t.statuses)
        counted = stored_count(url)
    accepted = tally.statuses["202"]
    unanswered = tally.statuses["no answer"]
    print(f"SIGKILL under load: 2 processes, one killed after {args.kill_after:g} s "
          f"({ta_tally.statuses['202']:,} of its reports answered 202, {unanswered:,} in flight "
          f"without an answer); {accepted:,} answered 202 in all, {counted:,} counted in the "
          f"database; reports lost: {max(0, accepted - counted)}, "
          f"counted beyond the 202s: {counted - accepted} (at most {unanswered:,}: answers lost "
          f"with the killed process)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", default=os.environ.get("PINSET_TEST_POSTGRES_URL"))
    parser.add_argument("--baseline", type=int, default=15_000, help="reports of the target run")
    parser.add_argument("--factor", type=float, default=10.0)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--queue", type=int, default=None, help="PINSET_COLLECTOR_QUEUE")
    parser.add_argument("--max-connections", type=int, default=1000)
    parser.add_argument("--client-connections", type=int, default=3000)
    parser.add_argument("--kill-after", type=float, default=2.0)
    args = parser.parse_args()
    args.baseline, args.seconds = scaled(args.baseline, 200), scaled(args.seconds, 0.5)
    args.client_connections = scaled(args.client_connections, 300)
    args.kill_after = scaled(args.kill_after, 0.5)
    if not args.postgres:
        raise SystemExit('no PostgreSQL: eval "$(.ci/setup-postgres.sh)" or --postgres URL')
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))
    queue = args.queue if args.queue is not None else "default"
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"collector load: PostgreSQL, {os.cpu_count()} CPUs (load average {load}), "
          f"write queue {queue}, --max-connections {args.max_connections}")  # fmt: skip
    bodies = make_bodies(scaled(40_000, 1_000))
    overload(args, bodies)
    kill_under_load(args, bodies[: scaled(20_000, 500)])


if __name__ == "__main__":
    main()
