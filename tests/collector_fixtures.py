"""Fixtures for the reporting and collector tests (import them into a test module).

``db_url`` runs a test on SQLite and on a real PostgreSQL (``PINSET_TEST_POSTGRES_URL``,
see .ci/setup-postgres.sh); each PostgreSQL test gets a database of its own.
``ReportSink`` is a tiny loopback HTTP collector that records what it receives.
"""

from __future__ import annotations

import http.server
import json
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pinset.testing import LeafCert, TestPKI

PG_ENV = "PINSET_TEST_POSTGRES_URL"
PIN_A = 'pin-sha256="d6qzRu9zOECb90Uez27xWltNsj0e1Md7GkYYkVoZWmM="'
PIN_B = 'pin-sha256="E9CZ9INDbd+2eRQozYqqbQ2yXLVKB9+xcprMF+44U1g="'
T0 = 1_795_000_000.0  # 2026-11-18T...Z: a fixed receive time for the fake clock


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


class LoopbackCollector:
    """A loopback HTTP server on an ephemeral port, answering POSTs with ``Handler``.

    Subclasses define the handler and :meth:`let_go`, which frees any request the test is
    holding back so that :meth:`close` never waits on one.
    """

    def serve(self, handler: type[http.server.BaseHTTPRequestHandler]) -> None:
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1/report"

    def let_go(self) -> None:
        """Release whatever a handler is waiting for."""

    def close(self) -> None:
        self.let_go()
        self.server.shutdown()
        self.server.server_close()


class ReportSink(LoopbackCollector):
    """A loopback HTTP server that stores every POSTed body. ``gate`` holds answers back."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.received = threading.Event()
        self.gate = threading.Event()
        self.gate.set()
        self.status = 202
        sink = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length))
                sink.bodies.append(body)
                sink.received.set()
                sink.gate.wait(10)
                self.send_response(sink.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.serve(Handler)

    def let_go(self) -> None:
        self.gate.set()


@pytest.fixture
def sink() -> Iterator[ReportSink]:
    server = ReportSink()
    try:
        yield server
    finally:
        server.close()
