"""Faults and load on PostgreSQL: real ``pinset collector serve`` processes, a real database.

* Two collectors on one database, one killed with SIGKILL while its batch is half written:
  every report answered 202 is stored, and counted once per 202; the killed batch is not.
* The database stopped and started during ingest: 503 with ``Retry-After`` while it is
  down, then 202 again; nothing answered 202 is lost (a private throw-away cluster, made by
  .ci/setup-postgres.sh in a directory of its own, so the shared one is never restarted).
* A flood while the writer cannot commit: the write queue holds ``PINSET_COLLECTOR_QUEUE``
  reports and every one beyond is answered 503 with ``Retry-After`` at once.

Each fault is set up with database locks and polled states (``pg_stat_activity``, the
collector's queue gauge), never with sleeps, so the outcome is the same on every run.
The figures under load come from benchmarks/collector_load.py (docs/security.md).
"""
# ruff: noqa: F811 - the fixtures imported from collector_fixtures are redefined as parameters

from __future__ import annotations

import concurrent.futures
import contextlib
import glob
import http.client
import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from collector_fixtures import make_report, report_leaf  # noqa: F401 - fixtures
from pinset.collector import Settings, create_app

pytestmark = pytest.mark.postgres

PG_ENV = "PINSET_TEST_POSTGRES_URL"
TOKEN = "faults-token"
ROOT = Path(__file__).resolve().parent.parent
_LISTENING = re.compile(r"Uvicorn running on http://127\.0\.0\.1:(\d+) ")
WAIT = 60.0  # seconds any polled state has to arrive before the test gives up


def _until(what: str, ready: Callable[[], bool]) -> None:
    """Poll ``ready`` until it holds; fail naming ``what`` after :data:`WAIT` seconds."""
    deadline = time.monotonic() + WAIT
    while not ready():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting: {what}")
        time.sleep(0.02)


# -- databases -----------------------------------------------------------------------------


@contextlib.contextmanager
def _fresh_database(admin_url: str) -> Iterator[str]:
    name = f"pinset_faults_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield sa.engine.make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with contextlib.suppress(sa.exc.OperationalError), admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A new database on the shared test cluster."""
    admin_url = os.environ.get(PG_ENV)
    if not admin_url:
        pytest.skip(f'{PG_ENV} is not set (run: eval "$(.ci/setup-postgres.sh)")')
    with _fresh_database(admin_url) as url:
        yield url


class PrivateCluster:
    """A throw-away PostgreSQL made by .ci/setup-postgres.sh in a directory of its own.

    :meth:`stop` and :meth:`start` run ``pg_ctl`` the way that script does (as the
    ``postgres`` user when root), so this test restarts its own server, never the shared one.
    """

    def __init__(self) -> None:
        bindirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version)
        if not bindirs or not Path(bindirs[-1], "pg_ctl").exists():
            pytest.skip("a private cluster needs PostgreSQL's server (apt-get install postgresql)")
        self.bindir = Path(bindirs[-1])
        # Under /tmp, not pytest's tmp_path: the postgres user must be able to enter it.
        self.dir = Path(tempfile.mkdtemp(prefix="pinset-pg-restart-"))
        self.owner = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        env = {**os.environ, "PINSET_PG_DIR": str(self.dir), "PINSET_PG_INSTALL": "no"}
        done = subprocess.run(
            ["bash", str(ROOT / ".ci" / "setup-postgres.sh")],
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        found = re.search(r"PINSET_TEST_POSTGRES_URL=(\S+)", done.stdout)
        assert done.returncode == 0, f"no private cluster:\n{done.stderr}"
        assert found, f"no URL from .ci/setup-postgres.sh:\n{done.stdout}"
        self.admin_url = found.group(1)
        self.port = int((self.dir / "port").read_text())

    def _pg_ctl(self, *args: str) -> None:
        subprocess.run(
            [*self.owner, str(self.bindir / "pg_ctl"), "-D", str(self.dir / "data"), *args],
            check=True,
            capture_output=True,
            timeout=120,
        )

    def stop(self) -> None:
        """Stop the server (fast: open transactions are rolled back), and wait until it is."""
        self._pg_ctl("-m", "fast", "-w", "stop")

    def start(self) -> None:
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.dir} -c max_connections=200"
        )
        self._pg_ctl("-l", str(self.dir / "server.log"), "-w", "-o", options, "start")

    def remove(self) -> None:
        with contextlib.suppress(subprocess.SubprocessError):
            self._pg_ctl("-m", "immediate", "-w", "stop")
        shutil.rmtree(self.dir, ignore_errors=True)


def _version(path: str) -> tuple[int, ...]:
    return tuple(int(p) for p in Path(path).parent.name.split(".") if p.isdigit())


@pytest.fixture
def private_cluster() -> Iterator[PrivateCluster]:
    if not os.environ.get(PG_ENV):
        pytest.skip(f'{PG_ENV} is not set (run: eval "$(.ci/setup-postgres.sh)")')
    cluster = PrivateCluster()
    try:
        yield cluster
    finally:
        cluster.remove()


# -- collectors -----------------------------------------------------------------------------


@dataclass
class Served:
    """A running ``pinset collector serve`` subprocess."""

    proc: subprocess.Popen[str]
    port: int
    output: list[str]

    def rss_kib(self) -> int:
        """The server process's resident memory now (``VmRSS`` of /proc, KiB)."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS")

    def metric(self, name: str) -> int:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("GET", "/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
            text = conn.getresponse().read().decode()
        finally:
            conn.close()
        found = re.search(rf"^{name} (\d+)$", text, re.MULTILINE)
        assert found, f"{name} not in /metrics:\n{text}"
        return int(found.group(1))


@contextlib.contextmanager
def _serving(db_url: str, *options: str, **env: str) -> Iterator[Served]:
    """``pinset collector serve --port 0`` on ``db_url``, rate limit off, ``env`` added."""
    environment = {**os.environ, "PINSET_COLLECTOR_TOKEN": TOKEN, **env}
    environment.pop("FORWARDED_ALLOW_IPS", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "pinset", "collector", "serve", "--port", "0", "--db", db_url,
         "--rate-limit", "0", "--log-level", "info", *options],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    output: list[str] = []
    port: queue.Queue[int | None] = queue.Queue()

    def read() -> None:  # drain the pipe for the whole run: a full pipe would block uvicorn
        assert proc.stdout is not None
        for line in proc.stdout:
            output.append(line)
            if found := _LISTENING.search(line):
                port.put(int(found.group(1)))
        port.put(None)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        try:
            listening = port.get(timeout=WAIT)
        except queue.Empty:
            listening = None
        assert listening is not None, "the collector did not start:\n" + "".join(output)
        yield Served(proc, listening, output)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        reader.join(15)
        assert proc.stdout is not None
        proc.stdout.close()


# -- clients --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    status: int | None  # None: no answer (connection refused, reset or closed)
    error: str | None = None
    retry_after: str | None = None


def _post(port: int, report: dict[str, Any]) -> Answer:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=WAIT)
    try:
        conn.request("POST", "/v1/report", json.dumps(report), {"Content-Type": "application/json"})
        response = conn.getresponse()
        body = json.loads(response.read() or b"{}")
        return Answer(response.status, body.get("error"), response.getheader("Retry-After"))
    except (OSError, http.client.HTTPException):
        return Answer(None)
    finally:
        conn.close()


def _health(port: int) -> Answer:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=WAIT)
    try:
        conn.request("GET", "/healthz")
        response = conn.getresponse()
        body = json.loads(response.read() or b"{}")
        return Answer(response.status, body.get("error"), response.getheader("Retry-After"))
    except (OSError, http.client.HTTPException):
        return Answer(None)
    finally:
        conn.close()


@dataclass
class Ledger:
    """What the clients know: each report's identity (its hostname), posts and 202s."""

    posted: Counter[str] = field(default_factory=Counter)
    accepted: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def post(self, port: int, report: dict[str, Any]) -> Answer:
        answer = _post(port, report)
        with self.lock:
            self.posted[report["hostname"]] += 1
            if answer.status == 202:
                self.accepted[report["hostname"]] += 1
        return answer


def _stored(engine: sa.Engine) -> dict[str, tuple[int, int]]:
    """Each stored identity: (rows, reports counted on them)."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT hostname, COUNT(*), SUM(count) FROM reports GROUP BY hostname")
        )
        return {host: (int(n), int(total)) for host, n, total in rows}


def _assert_nothing_lost_or_doubled(ledger: Ledger, stored: dict[str, tuple[int, int]]) -> None:
    """Every report answered 202 is stored, on one row, counted once per 202 it got."""
    for host, accepted in ledger.accepted.items():
        assert stored.get(host) == (1, accepted), host
    assert set(stored) == set(ledger.accepted)


def _report(make: Callable[..., dict[str, Any]], host: str) -> dict[str, Any]:
    # The hostname is each report's identity: it is part of the collector's dedup key.
    return make(hostname=host, **{"noted-hostname": host})


@contextlib.contextmanager
def _row_locked(engine: sa.Engine, host: str) -> Iterator[Callable[[], None]]:
    """Hold ``FOR UPDATE`` on the stored row of ``host``: a writer adding to it waits.

    Yields ``release``; leaving the block releases too.
    """
    conn = engine.connect()
    transaction = conn.begin()
    conn.execute(sa.text("SELECT id FROM reports WHERE hostname = :h FOR UPDATE"), {"h": host})

    def release() -> None:
        if transaction.is_active:
            transaction.rollback()

    try:
        yield release
    finally:
        release()
        conn.close()


_WAITING = (
    "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database()"
    " AND pid <> pg_backend_pid() AND wait_event_type = 'Lock'"
    " AND query LIKE 'WITH v(id, n, seen)%' AND (backend_xid IS NOT NULL OR NOT :written)"
)


def _writers_waiting(engine: sa.Engine, *, written: bool = False) -> int:
    """Collector transactions waiting for a lock on a report row (and with rows written)."""
    with engine.connect() as conn:
        return int(conn.execute(sa.text(_WAITING), {"written": written}).scalar_one())


def _open_transactions(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.text(
                    "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND pid <> pg_backend_pid() AND backend_xid IS NOT NULL"
                )
            ).scalar_one()
        )


# -- the faults -----------------------------------------------------------------------------


def test_a_collector_killed_mid_batch_loses_nothing_answered_and_stores_nothing_twice(
    pg_url: str, make_report: Callable[..., dict[str, Any]]
) -> None:
    engine = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT")
    locks = sa.create_engine(pg_url)
    ledger = Ledger()
    new = [_report(make_report, f"r{i}.kill.example") for i in range(40)]
    zed = _report(make_report, "z.kill.example")
    dub = _report(make_report, "w.kill.example")
    with (
        contextlib.ExitStack() as stack,
        concurrent.futures.ThreadPoolExecutor(max_workers=48) as pool,
    ):
        # Both start at once (and both migrate: one waits on the other's advisory lock).
        a, b = pool.map(lambda _: stack.enter_context(_serving(pg_url)), "ab")
        for i in range(10):  # B takes reports before the fault ...
            assert ledger.post(b.port, _report(make_report, f"b{i}.kill.example")).status == 202
        assert ledger.post(b.port, zed).status == 202
        assert ledger.post(b.port, dub).status == 202
        with _row_locked(locks, "z.kill.example") as release_z:
            with _row_locked(locks, "w.kill.example") as release_w:
                # A's first batch (a repeat of W) waits for W's row ...
                first = pool.submit(ledger.post, a.port, dub)
                _until("A's writer waits for W's row", lambda: _writers_waiting(engine) == 1)
                # ... while 40 new reports and a repeat of Z queue up behind it.
                pending = [pool.submit(ledger.post, a.port, r) for r in [*new, zed]]
                queued = "pinset_ingest_queue_depth"
                _until("41 reports queued in A", lambda: a.metric(queued) == 41)
                release_w()
                assert first.result().status == 202
            # A's second batch inserts the 40 new rows, then waits for Z's row: half written.
            _until("A's batch is half written", lambda: _writers_waiting(engine, written=True) == 1)
            for i in range(10, 20):  # ... B takes reports while A holds a half-written batch ...
                assert ledger.post(b.port, _report(make_report, f"b{i}.kill.example")).status == 202
            a.proc.send_signal(signal.SIGKILL)
            a.proc.wait(WAIT)
            release_z()
        # A's database session ends with its process: the half-written batch is rolled back.
        _until("A's transaction ends", lambda: _open_transactions(engine) == 0)
        answers = [future.result() for future in pending]
        assert [answer.status for answer in answers] == [None] * 41  # nobody got a 202
        stored = _stored(engine)
        assert not any(host.startswith("r") for host in stored)
        assert stored["z.kill.example"] == (1, 1)
        _assert_nothing_lost_or_doubled(ledger, stored)
        # The clients retry what got no answer, on the collector that is left ...
        for report in [*new, zed]:
            assert ledger.post(b.port, report).status == 202
        for i in range(20, 30):  # ... which goes on taking new reports.
            assert ledger.post(b.port, _report(make_report, f"b{i}.kill.example")).status == 202
    stored = _stored(engine)
    _assert_nothing_lost_or_doubled(ledger, stored)
    assert stored["z.kill.example"] == (1, 2)
    assert stored["w.kill.example"] == (1, 2)
    assert sum(rows for rows, _ in stored.values()) == 72  # 30 from B, 40 retried, W, Z
    engine.dispose()
    locks.dispose()


def test_the_database_restarted_during_ingest_gets_503_with_retry_after_then_recovers(
    private_cluster: PrivateCluster, make_report: Callable[..., dict[str, Any]]
) -> None:
    with _fresh_database(private_cluster.admin_url) as url:
        engine = sa.create_engine(url)
        ledger = Ledger()
        unanswered: queue.Queue[dict[str, Any]] = queue.Queue()
        stop = threading.Event()
        statuses: Counter[int | None] = Counter()
        odd: list[Answer] = []  # refusals without Retry-After (asserted empty at the end)
        lock = threading.Lock()

        def background(port: int, name: str) -> None:  # a steady client through the outage
            i = 0
            while not stop.is_set():
                report = _report(make_report, f"{name}{i}.restart.example")
                answer = ledger.post(port, report)
                with lock:
                    statuses[answer.status] += 1
                    if answer.status != 202:
                        unanswered.put(report)
                        if answer.status is not None and not answer.retry_after:
                            odd.append(answer)
                i += 1
                stop.wait(0.005)  # pacing, so the outage is a few hundred posts, not thousands

        def accepted_so_far() -> int:
            with lock:
                return statuses[202]

        with _serving(url) as c:
            for i in range(20):
                assert ledger.post(c.port, _report(make_report, f"a{i}.restart.test")).status == 202
            clients = [threading.Thread(target=background, args=(c.port, n)) for n in "xy"]
            for thread in clients:
                thread.start()
            _until("background reports accepted", lambda: accepted_so_far() >= 20)
            private_cluster.stop()
            refused = []
            for i in range(20):
                report = _report(make_report, f"d{i}.restart.example")
                answer = ledger.post(c.port, report)
                assert answer == Answer(503, "unavailable", "5")
                refused.append(report)
            assert _health(c.port) == Answer(503, "unavailable", "5")
            private_cluster.start()
            _until("the collector answers healthy", lambda: _health(c.port).status == 200)
            recovered = accepted_so_far()
            _until("background reports accepted again", lambda: accepted_so_far() >= recovered + 20)
            stop.set()
            for thread in clients:
                thread.join(WAIT)
            # Clients retry what was refused (after Retry-After; here at once).
            retried = [*refused]
            while not unanswered.empty():
                retried.append(unanswered.get())
            for report in retried:
                assert ledger.post(c.port, report).status == 202
            for i in range(20):
                assert ledger.post(c.port, _report(make_report, f"e{i}.restart.test")).status == 202
            assert statuses[503] > 0  # the outage was seen by the steady clients too
            assert odd == []
        stored = _stored(engine)
        engine.dispose()
    # Nothing answered 202 is lost; each identity is one row; a report whose first post got
    # no 202 may still have been committed (an answer lost with the connection): at most its
    # posts are counted, never less than its 202s.
    for host, accepted in ledger.accepted.items():
        rows, counted = stored[host]
        assert rows == 1, host
        assert accepted <= counted <= ledger.posted[host], host
    assert set(stored) == set(ledger.accepted)
    once = [h for h in ledger.posted if ledger.posted[h] == 1]
    assert all(stored[h] == (1, 1) for h in once)


def test_a_flood_beyond_the_write_queue_is_shed_with_503_and_memory_stays_bounded(
    pg_url: str, make_report: Callable[..., dict[str, Any]]
) -> None:
    engine = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT")
    locks = sa.create_engine(pg_url)
    ledger = Ledger()
    limit = 50
    flood = [_report(make_report, f"f{i}.flood.example") for i in range(600)]
    with (
        _serving(pg_url, PINSET_COLLECTOR_QUEUE=str(limit)) as c,
        concurrent.futures.ThreadPoolExecutor(max_workers=limit + 16) as pool,
    ):
        assert c.metric("pinset_ingest_queue_limit") == limit
        assert ledger.post(c.port, _report(make_report, "z.flood.example")).status == 202
        for i in range(50):  # warm: imports, caches, the connection pool
            assert ledger.post(c.port, _report(make_report, f"w{i}.flood.example")).status == 202
        before = c.rss_kib()
        with _row_locked(locks, "z.flood.example") as release:
            blocked = pool.submit(ledger.post, c.port, _report(make_report, "z.flood.example"))
            _until("the writer waits for Z's row", lambda: _writers_waiting(engine) == 1)
            posts = [pool.submit(ledger.post, c.port, r) for r in flood]
            # The first `limit` wait in the queue; every later one is answered at once.
            _until(
                "the flood beyond the queue answered",
                lambda: sum(f.done() for f in posts) == len(flood) - limit,
            )
            assert c.metric("pinset_ingest_queue_depth") == limit
            after = c.rss_kib()
            shed = [f.result() for f in posts if f.done()]
            release()
        answers = [f.result(WAIT) for f in posts]
    assert blocked.result().status == 202
    assert len(shed) == len(flood) - limit
    assert all((a.status, a.error, a.retry_after) == (503, "busy", "1") for a in shed)
    assert [a.status for a in answers].count(202) == limit  # the queued ones, once released
    assert after - before < 64 * 1024, (before, after)  # KiB: the flood did not pile up
    _assert_nothing_lost_or_doubled(ledger, _stored(engine))
    engine.dispose()
    locks.dispose()


def test_over_max_connections_a_request_gets_503_with_retry_after(pg_url: str) -> None:
    with _serving(pg_url, "--max-connections", "2") as c:
        # Two connections, each in the middle of its request's headers, fill --max-connections.
        holders = [socket.create_connection(("127.0.0.1", c.port), timeout=WAIT) for _ in "ab"]
        try:
            for sock in holders:
                sock.sendall(b"POST /v1/report HTTP/1.1\r\nX-Slow: ")
            # They were accepted first (one listen queue): the third is over the limit.
            with socket.create_connection(("127.0.0.1", c.port), timeout=WAIT) as third:
                third.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                answer = b""
                while chunk := third.recv(4096):
                    answer += chunk
        finally:
            for sock in holders:
                sock.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 503 ")
    assert b"\r\nretry-after: 1\r\n" in head.lower()
    assert b"\r\nconnection: close" in head.lower()
    assert json.loads(body)["error"] == "over-capacity"


def test_a_database_that_cannot_be_reached_is_503_with_retry_after(
    tmp_path: Path, make_report: Callable[..., dict[str, Any]]
) -> None:
    """Without PostgreSQL too: a connection refused fails the batch at once, 503, no 500."""
    from fastapi.testclient import TestClient

    missing = tmp_path / "no" / "such" / "dir" / "collector.db"
    settings = Settings(db_url=f"sqlite:///{missing}", token=TOKEN, migrate=False)
    with TestClient(create_app(settings)) as client:
        response = client.post("/v1/report", json=_report(make_report, "api.example.com"))
        assert response.status_code == 503
        assert response.json()["error"] == "unavailable"
        assert response.headers["Retry-After"] == "5"
        health = client.get("/healthz")
        assert (health.status_code, health.headers["Retry-After"]) == (503, "5")
