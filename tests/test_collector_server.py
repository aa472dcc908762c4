"""End to end: `pinset collector serve` under real uvicorn, a pinned client reporting to it."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pinset import DomainRule, Pin, PinMismatchError, Policy, ssl_context
from pinset.cli import main
from pinset.collector._server import ServerLimits
from pinset.reporting import BackgroundReporter
from pinset.testing import TestPKI, TLSServer

TOKEN = "e2e-token"


def _get(url: str, token: str | None = TOKEN) -> tuple[int, Any]:
    request = urllib.request.Request(url)  # noqa: S310 - a loopback http URL
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
            return int(response.status), json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return int(exc.code), json.loads(exc.read())


# What uvicorn prints once it listens, with the port the system gave it for --port 0.
_LISTENING = re.compile(r"Uvicorn running on http://127\.0\.0\.1:(\d+) ")


@contextlib.contextmanager
def _running(tmp_path: Path, *options: str) -> Iterator[str]:
    """``pinset collector serve`` with ``options`` in a subprocess; yields its base URL.

    It listens on ``--port 0``, a port the system picks, and the test reads which one from
    uvicorn's start-up line: nothing else can take the port in between.
    """
    env = {**os.environ, "PINSET_COLLECTOR_TOKEN": TOKEN}
    # uvicorn reads this when not told otherwise: the collector must not depend on it.
    env.pop("FORWARDED_ALLOW_IPS", None)
    db = f"sqlite:///{tmp_path / 'e2e.db'}"
    command = [sys.executable, "-m", "pinset", "collector", "serve", "--port", "0"]
    proc = subprocess.Popen(
        [*command, "--db", db, "--log-level", "info", *options],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    output: list[str] = []
    port: queue.Queue[int | None] = queue.Queue()

    def read() -> None:  # drain the pipe for the whole run: a full pipe would block uvicorn
        assert proc.stdout is not None
        for line in proc.stdout:
            output.append(line)
            if found := _LISTENING.search(line):
                port.put(int(found.group(1)))
        port.put(None)  # the process ended

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        try:
            listening = port.get(timeout=30)
        except queue.Empty:
            listening = None
        assert listening is not None, "the collector did not start:\n" + "".join(output)
        yield f"http://127.0.0.1:{listening}"
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        reader.join(15)
        proc.stdout.close()


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[str]:
    with _running(tmp_path) as base:
        yield base


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
    ctx = ssl_context(policy, cadata=pki.root.cert_pem.bytes().decode(), observers=[reporter])
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


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("PINSET_COLLECTOR_ALERT_RATE", "1.5", "alert rate must be over 0 and at most 1"),
        ("PINSET_COLLECTOR_ALERT_MIN_TOTAL", "0", "alert minimum must be at least 1"),
    ],
)
def test_serve_refuses_a_bad_rate_alert_setting(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    variable: str,
    value: str,
    says: str,
) -> None:
    monkeypatch.setenv(variable, value)
    assert main(["collector", "serve", "--token", "t"]) == 2
    assert says in capsys.readouterr().err
    monkeypatch.delenv(variable)
    assert main(["collector", "serve", "--alert-rate", "0", "--token", "t"]) == 2


def test_serve_help_lists_the_options(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["collector", "serve", "--help"]) == 0
    out = capsys.readouterr().out
    options = ("--host", "--port", "--db", "--token", "--alert-threshold", "--rate-limit")
    options += ("--alert-rate", "--alert-min-total")
    limits = ("--forwarded-allow-ips", "--read-timeout", "--max-connections")
    for option in (*options, *limits):
        assert option in out


REPORT = Path(__file__).parent / "fixtures" / "reports" / "rfc7469-section-3.1-example.json"


def _status(url: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> int:
    request = urllib.request.Request(url, data=body, headers=headers or {})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
            return int(response.status)
    except urllib.error.HTTPError as exc:
        exc.close()
        return int(exc.code)


def _post_from(base: str, forwarded_for: str) -> int:
    headers = {"Content-Type": "application/json", "X-Forwarded-For": forwarded_for}
    return _status(base + "/v1/report", REPORT.read_bytes(), headers)


@pytest.mark.parametrize("trusted", [[], ["--forwarded-allow-ips", "192.0.2.1"]])
def test_a_forged_x_forwarded_for_does_not_buy_a_new_rate_bucket(
    tmp_path: Path, trusted: list[str]
) -> None:
    """Unless the peer is a configured proxy, X-Forwarded-For does not name the client."""
    limit = ["--rate-limit", "0.1", "--rate-burst", "5"]
    with _running(tmp_path, *limit, *trusted) as base:
        statuses = [_post_from(base, f"203.0.113.{i}") for i in range(30)]
    assert statuses[:5] == [202] * 5
    assert statuses.count(202) <= 7  # the burst, and what 0.1/s refills meanwhile
    assert statuses.count(429) >= 23


def test_a_configured_proxy_names_the_client_for_the_rate_limit(tmp_path: Path) -> None:
    limit = ["--rate-limit", "0.1", "--rate-burst", "2"]
    with _running(tmp_path, *limit, "--forwarded-allow-ips", "127.0.0.1") as base:
        first = [_post_from(base, "203.0.113.7") for _ in range(4)]
        other = _post_from(base, "198.51.100.9")
    assert first[:2] == [202, 202]
    assert first[3] == 429
    assert other == 202


def test_a_chunked_trustkit_android_report_is_accepted_by_the_real_server(tmp_path: Path) -> None:
    """TrustKit-Android streams its report chunked (BackgroundReporterTask.java)."""
    body = (REPORT.parent / "trustkit-android-1-pin-mismatch.json").read_bytes()
    with _running(tmp_path) as base:
        host, port = base.removeprefix("http://").split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=5)
        try:
            pieces = iter([body[i : i + 1000] for i in range(0, len(body), 1000)])
            headers = {"Content-Type": "application/json"}
            conn.request("POST", "/v1/report", body=pieces, headers=headers, encode_chunked=True)
            response = conn.getresponse()
            assert (response.status, json.loads(response.read())["status"]) == (202, "accepted")
        finally:
            conn.close()


def _closed(sock: socket.socket) -> bool:
    """Whether the server closed ``sock`` (EOF or reset), without waiting."""
    sock.setblocking(False)
    try:
        return sock.recv(1024) == b""
    except BlockingIOError:
        return False
    except OSError:  # reset: closed as well
        return True
    finally:
        sock.setblocking(True)


def _until_closed(sock: socket.socket, drip: bytes, limit: float) -> float | None:
    """Send ``drip`` every 0.2 s until the server closes ``sock``; the seconds it took, or
    ``None`` if it was still open after ``limit`` seconds."""
    start = time.monotonic()
    sock.settimeout(0.2)
    while time.monotonic() - start < limit:
        try:
            if drip:
                sock.sendall(drip)
            if sock.recv(1024) == b"":
                return time.monotonic() - start
        except TimeoutError:
            continue
        except OSError:  # reset or broken pipe: closed as well
            return time.monotonic() - start
    return None


READ_TIMEOUT = 4.0


@pytest.mark.parametrize(
    ("prefix", "drip"),
    [
        pytest.param(b"", b"", id="silent"),
        pytest.param(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ", b"a", id="headers"),
        pytest.param(
            b"POST /v1/report HTTP/1.1\r\nHost: x\r\nContent-Length: 4000\r\n\r\n{",
            b" ",
            id="body",
        ),
    ],
)
def test_a_slow_client_is_dropped_while_others_are_served(
    tmp_path: Path, prefix: bytes, drip: bytes
) -> None:
    with _running(tmp_path, "--read-timeout", str(READ_TIMEOUT)) as base:
        host, port = base.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=5) as slow:
            opened = time.monotonic()
            slow.sendall(prefix)
            # Others are answered while the slow client holds its connection open.
            assert [_status(base + "/healthz") for _ in range(2)] == [200, 200]
            if time.monotonic() - opened < READ_TIMEOUT / 2:  # else the machine stalled
                assert not _closed(slow)
            # The slow client is dropped once the read timeout is over, not for ever held.
            held = _until_closed(slow, drip, limit=30)
            assert held is not None, "the slow client was never dropped"
            assert time.monotonic() - opened >= READ_TIMEOUT - 0.1  # not before its timeout


def test_over_max_connections_new_requests_get_503(tmp_path: Path) -> None:
    options = ["--max-connections", "2", "--read-timeout", "1.5"]
    with _running(tmp_path, *options) as base:
        host, port = base.removeprefix("http://").split(":")
        holders = [socket.create_connection((host, int(port)), timeout=5) for _ in range(2)]
        try:
            for sock in holders:
                sock.sendall(b"GET /healthz HTTP/1.1\r\nX-Slow: ")
            time.sleep(0.3)
            assert _status(base + "/healthz") == 503
            for sock in holders:  # the read timeout frees them
                assert sock.recv(1024) == b""
            assert _status(base + "/healthz") == 200
        finally:
            for sock in holders:
                sock.close()


def test_the_default_read_timeout_is_under_30_s_and_must_be_positive() -> None:
    assert ServerLimits().read_timeout <= 30
    with pytest.raises(ValueError, match="positive"):
        ServerLimits(read_timeout=0)


def _answer_to(address: tuple[str, int], pieces: list[bytes]) -> bytes:
    """Send ``pieces`` one write each (stop when the server closed); what it answered."""
    with socket.create_connection(address, timeout=5) as sock:
        for piece in pieces:
            try:
                sock.sendall(piece)
            except OSError:  # closed while we were still sending
                break
        answer = b""
        with contextlib.suppress(OSError):
            while chunk := sock.recv(65536):
                answer += chunk
    return answer


def test_headers_over_64_kib_are_answered_431(tmp_path: Path) -> None:
    start = b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
    lines = [b"X-Pad-%d: %s\r\n" % (i, b"a" * 1000) for i in range(2000)]  # 2 MB
    with _running(tmp_path) as base:
        host, port = base.removeprefix("http://").split(":")
        address = (host, int(port))
        streamed = _answer_to(address, [start, *lines, b"\r\n"])
        at_once = _answer_to(address, [start + b"".join(lines[:70]) + b"\r\n"])  # 70 KB
        fits = _answer_to(address, [start + b"".join(lines[:50]) + b"\r\n"])  # 50 KB
    assert streamed.startswith(b"HTTP/1.1 431 ")
    assert at_once.startswith(b"HTTP/1.1 431 ")
    assert fits.startswith(b"HTTP/1.1 200 ")


def test_large_bodies_on_one_kept_alive_connection_are_not_header_bytes(tmp_path: Path) -> None:
    report = json.loads(REPORT.read_bytes())
    report["padding"] = "x" * 60_000  # a 64 KiB report arrives in one read with its headers
    body = json.dumps(report).encode()
    with _running(tmp_path) as base:
        host, port = base.removeprefix("http://").split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=5)
        try:
            for _ in range(3):
                conn.request("POST", "/v1/report", body=body)
                response = conn.getresponse()
                assert response.status == 202, response.read()
                response.read()
        finally:
            conn.close()


def test_pinned_clients_tally_to_a_real_collector_and_adoption_shows_it(
    pki: TestPKI, collector: str
) -> None:
    from pinset import spki_pin
    from pinset.reporting import VerdictTally

    leaf = pki.leaf()
    good = Policy(
        rules=(
            DomainRule(
                "localhost",
                pins=(spki_pin(leaf.cert), Pin(os.urandom(32))),
                report_uris=(collector + "/v1/report",),
            ),
        )
    )
    bad = Policy(rules=(DomainRule("localhost", pins=(Pin(os.urandom(32)), Pin(os.urandom(32)))),))
    cadata = pki.root.cert_pem.bytes().decode()
    # Two installs: one on pin-set version 8 whose pins hold, one on 7 whose pins do not.
    # One instant for both: a run across the hour would otherwise make two intervals.
    frozen = time.time()
    updated = VerdictTally(
        good,
        app_id="org.example.tool",
        app_version="2.0",
        pin_set_version=8,
        clock=lambda: frozen,
    )
    stale = VerdictTally(
        url=collector + "/v1/tallies",
        clock=lambda: frozen,
        app_id="org.example.tool",
        app_version="1.0",
        pin_set_version=7,
    )
    assert updated.url == collector + "/v1/tallies"  # derived from the report URI
    with TLSServer(leaf) as server:
        for _ in range(3):
            with (
                socket.create_connection(server.address, timeout=5) as raw,
                ssl_context(good, cadata=cadata, observers=[updated]).wrap_socket(
                    raw, server_hostname="localhost"
                ),
            ):
                pass
        with (
            socket.create_connection(server.address, timeout=5) as raw,
            pytest.raises(PinMismatchError),
        ):
            ssl_context(bad, cadata=cadata, observers=[stale]).wrap_socket(
                raw, server_hostname="localhost"
            )
    assert updated.close(10)  # closing sends the open interval
    assert stale.close(10)
    assert (updated.stats.sent, stale.stats.sent) == (1, 1)
    status, adoption = _get(collector + "/v1/adoption?app_id=org.example.tool")
    assert status == 200
    assert adoption["app_id"] == "org.example.tool"
    assert adoption["pin_set_versions"] == [
        {"version": "8", "share": 0.75, "count": 3},
        {"version": "7", "share": 0.25, "count": 1},
    ]
    assert adoption["app_versions"] == [
        {"version": "2.0", "share": 0.75, "count": 3},
        {"version": "1.0", "share": 0.25, "count": 1},
    ]
    status, summary = _get(collector + "/v1/summary")
    assert summary["failure_rates"]["by_domain"] == [
        {"hostname": "localhost", "failures": 1, "total": 4, "rate": 0.25}
    ]
