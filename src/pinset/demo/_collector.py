"""A report collector on loopback for the demo: the real one if its extra is installed.

:func:`start_collector` runs :mod:`pinset.collector` (FastAPI + SQLite in the demo's
work directory) under uvicorn in a background thread; without the ``collector`` extra
it falls back to a few lines of :mod:`http.server` that keep the reports in memory.
Either way the demo asks the collector, over HTTP, how many reports it stored.
"""

from __future__ import annotations

import http.server
import json
import secrets
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["LocalCollector", "post_direct", "start_collector"]

_START_TIMEOUT = 15.0


class LocalCollector:
    """A running collector: where to report, how to count what it stored, how to stop it."""

    def __init__(
        self,
        kind: str,
        report_uri: str,
        count: Callable[[], int],
        stop: Callable[[], None],
    ) -> None:
        self.kind = kind
        self.report_uri = report_uri
        self._count = count
        self._stop = stop

    def stored_reports(self) -> int:
        """How many reports the collector says it stored (asked over its HTTP API)."""
        return self._count()

    def stop(self) -> None:
        """Shut the collector down (idempotent)."""
        self._stop()
        self._stop = lambda: None

    def __enter__(self) -> LocalCollector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def post_direct(uri: str, body: bytes) -> int:
    """POST a JSON report to a loopback *uri*, bypassing any proxy from the environment.

    The demo hands this to :class:`~pinset.reporting.BackgroundReporter` as its
    transport: with ``HTTP_PROXY`` set, urllib would otherwise send a report meant
    for 127.0.0.1 to that proxy.
    """
    request = urllib.request.Request(  # noqa: S310 - the demo's own loopback collector
        uri, data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with _DIRECT.open(request, timeout=5) as response:
            response.read()
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def _loopback_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    return sock


# Straight to loopback: an HTTP_PROXY in the environment must not see the collector's API.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _get_json(url: str, token: str | None = None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 - loopback http URL
    with _DIRECT.open(request, timeout=5) as response:
        return json.loads(response.read())


def _start_pinset_collector(work_dir: Path) -> LocalCollector:
    import uvicorn

    from pinset.collector import Settings, create_app

    token = secrets.token_urlsafe(16)
    settings = Settings(
        db_url=f"sqlite:///{work_dir / 'collector.db'}", token=token, rate_per_second=0
    )
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), log_level="critical", access_log=False)
    )
    sock = _loopback_socket()
    port = sock.getsockname()[1]
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="pinset-demo-collector", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + _START_TIMEOUT
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            raise RuntimeError("the collector did not start")
        time.sleep(0.02)
    base = f"http://127.0.0.1:{port}"

    def count() -> int:
        total, cursor = 0, None
        while True:
            page = _get_json(
                f"{base}/v1/reports?limit=500" + (f"&cursor={cursor}" if cursor else ""), token
            )
            total += len(page["items"])
            cursor = page.get("next_cursor")
            if not cursor:
                return total

    def stop() -> None:
        server.should_exit = True
        thread.join(5)
        sock.close()

    return LocalCollector("pinset collector (FastAPI, SQLite)", f"{base}/v1/report", count, stop)


def _start_stdlib_receiver() -> LocalCollector:
    reports: list[Any] = []
    lock = threading.Lock()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            try:
                report = json.loads(self.rfile.read(length))
            except ValueError:
                self.send_response(400)
            else:
                with lock:
                    reports.append(report)
                self.send_response(202)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self) -> None:
            with lock:
                body = json.dumps({"items": reports}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the demo narrates; no access log on the terminal

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, name="pinset-demo-receiver", daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(5)

    return LocalCollector(
        "stdlib receiver (collector extra not installed)",
        f"{base}/v1/report",
        lambda: len(_get_json(f"{base}/v1/reports")["items"]),
        stop,
    )


def start_collector(work_dir: Path) -> LocalCollector:
    """Start pinset's collector on 127.0.0.1 (or the stdlib fallback without the extra)."""
    try:
        return _start_pinset_collector(work_dir)
    except (ImportError, RuntimeError):  # the extra is not installed, or it did not start
        return _start_stdlib_receiver()
