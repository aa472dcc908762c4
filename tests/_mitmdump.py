"""Start and stop a real mitmproxy (``mitmdump``) on loopback for the interop tests.

mitmproxy pins its dependencies below ours, so it lives in a virtualenv of its own
(``make test`` creates ``.venv-mitmproxy``). :func:`find_mitmdump` looks for it in
``PINSET_MITMDUMP``, then in ``.venv-mitmproxy/bin/mitmdump`` under the repository root.

:class:`Mitmdump` runs it with a fresh ``confdir`` (where mitmproxy writes its CA) and
an addon that appends one JSON line per event: the port it listens on (it is started
with ``--listen-port 0`` and the system picks a free one), a client connecting, its TLS
handshake failing, each request mitmproxy decrypted (with its size in bytes), a client
leaving. That log is the leak measure: a pinned client must never produce a request event.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

__all__ = ["ADDON", "ClientConn", "Mitmdump", "find_mitmdump"]

ENV = "PINSET_MITMDUMP"
REPO = Path(__file__).resolve().parent.parent
_START_TIMEOUT = 60.0

# The addon runs inside mitmproxy's own interpreter; it only uses mitmproxy's hook names
# and the listening addresses of its proxyserver addon.
ADDON = """\
import json
import os

from mitmproxy import ctx
from mitmproxy.net.http.http1.assemble import assemble_request_head

LOG = os.environ["PINSET_MITM_EVENTS"]


def _write(record):
    with open(LOG, "a", encoding="utf-8") as out:
        out.write(json.dumps(record) + "\\n")


def _log(event, client, **fields):
    _write({"event": event, "client": client.id, **fields})


def running():
    # The proxy servers are listening by now: report the ports the system gave them.
    addresses = ctx.master.addons.get("proxyserver").listen_addrs()
    _write({"event": "listening", "ports": [address[1] for address in addresses]})


def client_connected(client):
    _log("client_connected", client, peer=list(client.peername))


def tls_failed_client(data):
    _log("tls_failed_client", data.context.client, sni=data.conn.sni, error=str(data.conn.error))


def tls_established_client(data):
    _log("tls_established_client", data.context.client, sni=data.conn.sni)


def request(flow):
    size = len(assemble_request_head(flow.request)) + len(flow.request.raw_content or b"")
    _log("request", flow.client_conn, host=flow.request.host, path=flow.request.path, bytes=size)


def client_disconnected(client):
    _log("client_disconnected", client)
"""


def find_mitmdump() -> Path | None:
    """The mitmdump executable to test against, or ``None`` if there is none.

    ``PINSET_MITMDUMP`` is taken as given, even when it names nothing: whoever set it
    (``make test``) expects the tests to run, so a missing file must fail, not skip.
    """
    configured = os.environ.get(ENV)
    if configured:
        return Path(configured)
    default = REPO / ".venv-mitmproxy" / "bin" / "mitmdump"
    return default if default.is_file() and os.access(default, os.X_OK) else None


@dataclass
class ClientConn:
    """What mitmproxy logged for one client connection."""

    id: str
    peer: tuple[str, int] | None = None
    tls_failed: bool = False
    tls_established: bool = False
    sni: str | None = None
    requests: int = 0
    request_bytes: int = 0
    disconnected: bool = False
    errors: list[str] = field(default_factory=list)


class Mitmdump:
    """A mitmdump process on 127.0.0.1 in *mode* (``regular`` or ``reverse:https://…``)."""

    def __init__(
        self,
        executable: Path,
        work_dir: Path,
        mode: str,
        *,
        upstream_ca: Path | None = None,
    ) -> None:
        self.executable = executable
        self.dir = work_dir
        self.mode = mode
        self.upstream_ca = upstream_ca
        self.confdir = work_dir / "confdir"
        self.events_path = work_dir / "events.jsonl"
        self.output_path = work_dir / "mitmdump.log"
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def ca_cert_path(self) -> Path:
        """mitmproxy's CA certificate (PEM), written into its confdir at start-up."""
        return self.confdir / "mitmproxy-ca-cert.pem"

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (the proxy URL in regular mode)."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Mitmdump:
        """Start mitmdump; return once its CA exists and it listens (:attr:`port`)."""
        if not (self.executable.is_file() and os.access(self.executable, os.X_OK)):
            raise FileNotFoundError(
                f"{ENV}={self.executable} is not an executable mitmdump; create it with "
                "python3 -m venv .venv-mitmproxy && .venv-mitmproxy/bin/pip install 'mitmproxy>=10'"
            )
        self.confdir.mkdir(parents=True, exist_ok=True)
        addon = self.dir / "pinset_events.py"
        addon.write_text(ADDON, encoding="utf-8")
        self.events_path.write_text("", encoding="utf-8")
        self.port = 0
        args = [
            str(self.executable),
            "--listen-host",
            "127.0.0.1",
            "--listen-port",
            "0",
            "--mode",
            self.mode,
            "--set",
            f"confdir={self.confdir}",
            "-s",
            str(addon),
            "--set",
            "flow_detail=0",
        ]
        if self.upstream_ca is not None:
            args += ["--set", f"ssl_verify_upstream_trusted_ca={self.upstream_ca}"]
        else:
            args.append("--ssl-insecure")
        env = {**os.environ, "PINSET_MITM_EVENTS": str(self.events_path)}
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
            env.pop(name, None)
        with self.output_path.open("wb") as output:
            self._process = subprocess.Popen(
                args, stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
            )
        deadline = time.monotonic() + _START_TIMEOUT
        try:
            while not (self.ca_cert_path.exists() and (port := self._listening())):
                if self._process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"mitmdump did not start: {self.output()}")
                time.sleep(0.05)
        except BaseException:
            self.stop()
            raise
        self.port = port
        return self

    def _listening(self) -> int | None:
        """The port the addon reported mitmdump listening on, once it did."""
        for event in self._events(0):
            if event["event"] == "listening":
                ports = event["ports"]
                assert isinstance(ports, list), ports
                # mitmproxy lists its TCP socket first; reverse mode adds UDP (QUIC) after.
                return int(ports[0])
        return None

    def stop(self) -> None:
        """Terminate mitmdump (kill it if it does not exit within 5 s)."""
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)

    def output(self) -> str:
        """What mitmdump printed (for failure messages)."""
        try:
            return self.output_path.read_text(encoding="utf-8", errors="replace")[-4000:]
        except OSError:
            return ""

    def __enter__(self) -> Mitmdump:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- the event log -----------------------------------------------------------

    def mark(self) -> int:
        """The current end of the event log: pass it to :meth:`clients` to see what follows."""
        return self.events_path.stat().st_size

    def _events(self, since: int) -> Iterator[dict[str, object]]:
        with self.events_path.open("rb") as log:
            log.seek(since)
            for line in log.read().splitlines():
                if line.strip():
                    yield json.loads(line)

    def clients(self, since: int = 0) -> list[ClientConn]:
        """Client connections that began after *since* (a :meth:`mark`), in order."""
        conns: dict[str, ClientConn] = {}
        for event in self._events(since):
            if event["event"] == "listening":
                continue
            kind, cid = event["event"], str(event["client"])
            if kind == "client_connected":
                peer = event.get("peer")
                conns[cid] = ClientConn(cid, tuple(peer) if isinstance(peer, list) else None)
                continue
            conn = conns.get(cid)
            if conn is None:  # a connection from before the mark
                continue
            if kind == "tls_failed_client":
                conn.tls_failed = True
                conn.sni = str(event.get("sni"))
                conn.errors.append(str(event.get("error")))
            elif kind == "tls_established_client":
                conn.tls_established = True
                conn.sni = str(event.get("sni"))
            elif kind == "request":
                conn.requests += 1
                size = event.get("bytes")
                conn.request_bytes += size if isinstance(size, int) else 0
            elif kind == "client_disconnected":
                conn.disconnected = True
        return list(conns.values())

    def wait_idle(self, since: int = 0, timeout: float = 10.0) -> list[ClientConn]:
        """Wait until every client connection after *since* has disconnected; return them."""
        deadline = time.monotonic() + timeout
        while True:
            conns = self.clients(since)
            if all(c.disconnected for c in conns):
                return conns
            if time.monotonic() > deadline:
                raise TimeoutError(f"mitmdump connections still open after {timeout}s: {conns}")
            time.sleep(0.05)
