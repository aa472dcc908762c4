"""urllib_transport and proxies: loopback collectors are always reached directly.

A proxy from the environment (``HTTP_PROXY`` …) is fine for a collector on
another host, but a report to a collector on this machine must not leave it
through a proxy (which would see every failing chain, and may not even reach back).
Everything here runs on 127.0.0.1: the "proxy" is a loopback server that records
what it is asked for.
"""
# ruff: noqa: F811 - the fixtures imported from collector_fixtures are redefined as parameters

from __future__ import annotations

import http.server
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from collector_fixtures import ReportSink, sink  # noqa: F401 - a fixture
from pinset.reporting import urllib_transport
from pinset.reporting._sender import is_loopback_host

PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


class RecordingProxy:
    """A loopback stand-in for a forward proxy: records each request target, answers 202."""

    def __init__(self) -> None:
        self.targets: list[str] = []
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                proxy.targets.append(self.path)
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def proxy(monkeypatch: pytest.MonkeyPatch) -> Iterator[RecordingProxy]:
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    server = RecordingProxy()
    monkeypatch.setenv("HTTP_PROXY", server.url)
    monkeypatch.setenv("HTTPS_PROXY", server.url)
    try:
        yield server
    finally:
        server.close()


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_a_loopback_collector_is_reached_directly_despite_an_env_proxy(
    proxy: RecordingProxy, sink: ReportSink, host: str
) -> None:
    send = urllib_transport(timeout=5)
    uri = sink.url.replace("127.0.0.1", host)
    assert send(uri, b'{"hostname": "api.example.com"}') == 202
    assert sink.bodies == [{"hostname": "api.example.com"}]
    assert proxy.targets == []


def test_other_hosts_still_use_the_env_proxy(proxy: RecordingProxy) -> None:
    # The "collector" name is never resolved: the request goes to the loopback proxy.
    send = urllib_transport(timeout=5)
    assert send("http://collector.example.invalid/v1/report", b"{}") == 202
    assert proxy.targets == ["http://collector.example.invalid/v1/report"]


@pytest.fixture
def lookups(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names a direct connection tried to resolve; each lookup fails without asking any DNS."""
    names: list[str] = []

    def refuse(host: Any, *args: Any, **kwargs: Any) -> Any:
        names.append(str(host))
        raise socket.gaierror(socket.EAI_NONAME, "not resolved in tests")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    return names


def test_no_proxy_is_honoured(
    proxy: RecordingProxy, monkeypatch: pytest.MonkeyPatch, lookups: list[str]
) -> None:
    monkeypatch.setenv("NO_PROXY", "collector.example.invalid")
    send = urllib_transport(timeout=5)
    with pytest.raises(OSError, match="not resolved in tests"):
        send("http://collector.example.invalid/v1/report", b"{}")
    assert lookups == ["collector.example.invalid"]  # tried directly
    assert proxy.targets == []


def test_proxies_can_be_turned_off(proxy: RecordingProxy, lookups: list[str]) -> None:
    send = urllib_transport(timeout=5, proxies={})
    with pytest.raises(OSError, match="not resolved in tests"):
        send("http://collector.example.invalid/v1/report", b"{}")
    assert lookups == ["collector.example.invalid"]
    assert proxy.targets == []


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.5.6.7", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("LOCALHOST.", True),
        ("reports.localhost", True),
        ("10.0.0.1", False),
        ("collector.example.net", False),
        ("localhost.example.net", False),
        ("", False),
    ],
)
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback
