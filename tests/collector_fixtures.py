"""Fixtures for the reporting and collector tests (import them into a test module).

``db_url`` runs a test on SQLite and on a real PostgreSQL (``PINSET_TEST_POSTGRES_URL``,
see .ci/setup-postgres.sh); each PostgreSQL test gets a database of its own.
``api`` is the collector app in a FastAPI TestClient on that database and a fake clock
(``make_client(**settings)`` makes more); its read side takes ``AUTH`` (token ``TOKEN``).
``ReportSink`` is a tiny loopback HTTP collector that records what it receives.
``HeldCommits`` and ``commit_in_one_batch`` drive a ``BatchWriter`` through its public
``submit`` only: they hold a transaction just before its COMMIT.
"""

from __future__ import annotations

import asyncio
import http.server
import json
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pinset.testing import LeafCert, TestPKI

if TYPE_CHECKING:  # the collector extra: imported by the fixtures that use it
    import sqlalchemy as sa
    from fastapi.testclient import TestClient

    from pinset.collector._normalize import NormalizedReport
    from pinset.collector._writer import BatchWriter, WriteResult

PG_ENV = "PINSET_TEST_POSTGRES_URL"
PIN_A = 'pin-sha256="d6qzRu9zOECb90Uez27xWltNsj0e1Md7GkYYkVoZWmM="'
PIN_B = 'pin-sha256="E9CZ9INDbd+2eRQozYqqbQ2yXLVKB9+xcprMF+44U1g="'
T0 = 1_795_000_000.0  # 2026-11-18T...Z: a fixed receive time for the fake clock
TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
MakeClient = Callable[..., "TestClient"]


class FakeClock:
    """A clock the test moves: ``clock()`` returns epoch seconds."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="session")
def report_leaf(pki: TestPKI) -> LeafCert:
    return pki.leaf("api.example.com")


@pytest.fixture(scope="session")
def rogue_leaf(pki: TestPKI) -> LeafCert:
    return pki.rogue.issue_cert("api.example.com")


def pems_of(leaf: LeafCert) -> list[str]:
    return [blob.bytes().decode() for blob in leaf.cert_chain_pems]


@pytest.fixture
def make_report(report_leaf: LeafCert) -> Callable[..., dict[str, Any]]:
    """``make_report(hostname=..., **{"app-version": "2"})``: a valid RFC 7469 + TrustKit report."""
    chain = pems_of(report_leaf)

    def make(**fields: Any) -> dict[str, Any]:
        report: dict[str, Any] = {
            "date-time": "2026-11-18T10:00:00Z",
            "hostname": "api.example.com",
            "port": 443,
            "effective-expiration-date": "2027-06-30T00:00:00Z",
            "include-subdomains": True,
            "noted-hostname": "example.com",
            "served-certificate-chain": chain,
            "validated-certificate-chain": chain,
            "known-pins": [PIN_A, PIN_B],
            "app-bundle-id": "com.example.app",
            "app-version": "2.4.1",
            "app-platform": "IOS",
            "enforce-pinning": True,
            "validation-result": 1,
        }
        report.update({k.replace("_", "-"): v for k, v in fields.items()})
        return report

    return make


def _postgres_database(admin_url: str) -> Iterator[str]:
    import sqlalchemy as sa

    name = f"pinset_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = sa.engine.make_url(admin_url).set(database=name)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database: a SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'collector.db'}"
        return
    admin_url = os.environ.get(PG_ENV)
    if not admin_url:
        pytest.skip(f'{PG_ENV} is not set (run: eval "$(.ci/setup-postgres.sh)")')
    yield from _postgres_database(admin_url)


@pytest.fixture
def make_client(db_url: str, clock: FakeClock) -> Iterator[MakeClient]:
    from fastapi.testclient import TestClient

    from pinset.collector import Settings, create_app

    clients: list[TestClient] = []

    def make(**settings: Any) -> TestClient:
        values: dict[str, Any] = {"db_url": db_url, "token": TOKEN, "rate_per_second": 0}
        values.update(settings)
        client = TestClient(create_app(Settings(**values), clock=clock))
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def api(make_client: MakeClient) -> TestClient:
    return make_client()


class HeldCommits:
    """Hold every transaction on *engine* just before its COMMIT until :meth:`release`.

    The held transaction keeps what it wrote and the locks it took, like a writer that
    is slow to commit. Use as a context manager; leaving it releases. The listener then
    stays on the engine as a no-op (removing it could race a commit running it).
    """

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.reached = threading.Event()  # set once a transaction waits at its COMMIT
        self._released = threading.Event()

    def _hold(self, conn: sa.Connection) -> None:
        if not self._released.is_set():
            self.reached.set()
            self._released.wait(60)

    def release(self) -> None:
        self._released.set()

    def __enter__(self) -> HeldCommits:
        from sqlalchemy import event

        event.listen(self.engine, "commit", self._hold)
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def commit_in_one_batch(
    writer: BatchWriter, plug: NormalizedReport, batch: list[NormalizedReport]
) -> list[WriteResult | BaseException]:
    """Commit *batch* as one batch of *writer*'s thread; each report's result or error.

    The writer takes everything queued as its next batch: its batch before, *plug* alone,
    is held at its COMMIT while *batch* is queued. Stops the writer.
    """
    loop = asyncio.new_event_loop()
    try:
        with HeldCommits(writer.engine) as held:
            first: asyncio.Future[WriteResult] = loop.create_future()
            writer.submit(plug, (loop, first))
            assert held.reached.wait(30), "the writer never reached its first COMMIT"
            futures: list[asyncio.Future[WriteResult]] = [loop.create_future() for _ in batch]
            for report, future in zip(batch, futures, strict=True):
                writer.submit(report, (loop, future))
        loop.run_until_complete(asyncio.wait([first, *futures], timeout=30))
        assert first.result().new
        return [future.exception() or future.result() for future in futures]
    finally:
        writer.stop()
        loop.close()


class LoopbackCollector:
    """A loopback HTTP server on an ephemeral port that keeps every POSTed JSON body.

    Subclasses set up what :meth:`answer` needs, then call ``super().__init__()``, which
    starts serving. :meth:`let_go` frees any request the test is holding back so that
    :meth:`close` never waits on one.
    """

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        collector = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                collector.bodies.append(json.loads(self.rfile.read(length)))
                collector.answer(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1/report"

    def answer(self, handler: http.server.BaseHTTPRequestHandler) -> None:
        """Answer the POST whose body was just added to :attr:`bodies`."""
        raise NotImplementedError

    def let_go(self) -> None:
        """Release whatever a handler is waiting for."""

    def close(self) -> None:
        self.let_go()
        self.server.shutdown()
        self.server.server_close()


class ReportSink(LoopbackCollector):
    """A loopback HTTP server that stores every POSTed body. ``gate`` holds answers back."""

    def __init__(self) -> None:
        self.received = threading.Event()
        self.gate = threading.Event()
        self.gate.set()
        self.status = 202
        super().__init__()

    def answer(self, handler: http.server.BaseHTTPRequestHandler) -> None:
        self.received.set()
        self.gate.wait(10)
        handler.send_response(self.status)
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    def let_go(self) -> None:
        self.gate.set()


@pytest.fixture
def sink() -> Iterator[ReportSink]:
    server = ReportSink()
    try:
        yield server
    finally:
        server.close()
