"""End to end: `pinset collector serve` under real uvicorn, a pinned client reporting to it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pinset import DomainRule, Pin, PinMismatchError, Policy, ssl_context
from pinset.cli import main
from pinset.reporting import BackgroundReporter
from pinset.testing import TestPKI, TLSServer

TOKEN = "e2e-token"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _get(url: str, token: str | None = TOKEN) -> tuple[int, Any]:
    request = urllib.request.Request(url)  # noqa: S310 - a loopback http URL
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
            return int(response.status), json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return int(exc.code), json.loads(exc.read())


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[str]:
    port = _free_port()
    env = {**os.environ, "PINSET_COLLECTOR_TOKEN": TOKEN}
    db = f"sqlite:///{tmp_path / 'e2e.db'}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "pinset", "collector", "serve", "--port", str(port), "--db", db],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    try:
        while True:  # wait until uvicorn answers (or the process died)
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            try:
                if _get(base + "/healthz", None)[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "the collector did not start"
            time.sleep(0.05)
        yield base
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout:
            proc.stdout.close()


def test_pinned_client_reports_to_a_real_collector(pki: TestPKI, collector: str) -> None:
    policy = Policy(
        rules=(
            DomainRule(
                "localhost",
                pins=(Pin(os.urandom(32)), Pin(os.urandom(32))),
                report_uris=(collector + "/v1/report",),
            ),
        )
    )
    reporter = BackgroundReporter(app_bundle_id="org.example.tool", app_version="1.0")
    ctx = ssl_context(policy, cadata=pki.root.cert_pem.bytes().decode(), reporter=reporter)
    with TLSServer(pki.leaf()) as server:
        for _ in range(2):
            with (
                socket.create_connection(server.address, timeout=5) as raw,
                pytest.raises(PinMismatchError),
            ):
                ctx.wrap_socket(raw, server_hostname="localhost")
    assert reporter.close(10)
    assert (reporter.stats.sent, reporter.stats.deduplicated) == (1, 1)
    assert _get(collector + "/v1/reports", None)[0] == 401
    status, page = _get(collector + "/v1/reports")
    assert status == 200
    [item] = page["items"]
    assert (item["hostname"], item["validation_result"]) == ("localhost", "pin-mismatch")
    assert (item["app_bundle_id"], item["variant"]) == ("org.example.tool", "pinset")
    assert len(item["validated_chain"]["members"]) == 3
    status, summary = _get(collector + "/v1/summary")
    assert summary["by_domain"] == [{"hostname": "localhost", "count": 1}]


def test_serve_refuses_an_unsupported_database(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["collector", "serve", "--db", "mysql://db.invalid/x", "--token", "t"]) == 2
    err = capsys.readouterr().err
    assert "database 'mysql' is not supported" in err
    assert "postgresql+psycopg" in err


def test_serve_help_lists_the_options(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["collector", "serve", "--help"]) == 0
    out = capsys.readouterr().out
    for option in ("--host", "--port", "--db", "--token", "--alert-threshold", "--rate-limit"):
        assert option in out
