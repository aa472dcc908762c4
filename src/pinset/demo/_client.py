"""The demo's HTTPS client: one GET to a named host at a loopback address, maybe via CONNECT.

The demo's API is called ``api.pinset.test``, a name no resolver knows. The client
therefore opens the TCP connection to the loopback address itself and hands
:mod:`http.client` an already-wrapped TLS socket whose SNI and certificate check use
the name: exactly what a real client resolving ``api.pinset.test`` would do.
"""

from __future__ import annotations

import http.client
import socket
import ssl
from contextlib import suppress
from dataclasses import dataclass

from cryptography import x509

from pinset.verdict import Verdict

__all__ = ["Exchange", "fetch"]

_MAX_PROXY_REPLY = 16 * 1024


@dataclass(frozen=True, slots=True)
class Exchange:
    """What one GET did: the status and body, the leaf the client saw, or the error."""

    status: int | None = None
    body: bytes = b""
    leaf_subject: str | None = None
    leaf_issuer: str | None = None
    verdict: Verdict | None = None
    error: BaseException | None = None

    @property
    def ok(self) -> bool:
        """True when the request completed with a 2xx answer."""
        return self.error is None and self.status is not None and 200 <= self.status < 300


def _connect_tunnel(
    proxy: tuple[str, int], target: tuple[str, int], timeout: float
) -> socket.socket:
    sock = socket.create_connection(proxy, timeout=timeout)
    try:
        host, port = target
        sock.sendall(f"CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
        reply = b""
        while b"\r\n\r\n" not in reply:
            data = sock.recv(4096)
            if not data or len(reply) > _MAX_PROXY_REPLY:
                raise OSError("the proxy closed the connection during CONNECT")
            reply += data
        status_line = reply.split(b"\r\n", 1)[0].decode("latin-1")
        if status_line.split(" ")[1:2] != ["200"]:
            raise OSError(f"the proxy refused CONNECT: {status_line}")
        return sock
    except BaseException:
        sock.close()
        raise


def fetch(
    context: ssl.SSLContext,
    address: tuple[str, int],
    server_name: str,
    *,
    proxy: tuple[str, int] | None = None,
    timeout: float = 5.0,
) -> Exchange:
    """GET ``/`` from *server_name* at *address*, through the CONNECT *proxy* if given.

    Never raises for a network or TLS failure: the exception is in ``Exchange.error``.
    """
    raw: socket.socket | None = None
    try:
        if proxy is None:
            raw = socket.create_connection(address, timeout=timeout)
        else:
            raw = _connect_tunnel(proxy, address, timeout)
        tls = context.wrap_socket(raw, server_hostname=server_name)
    except (OSError, ssl.SSLError) as exc:
        if raw is not None:
            raw.close()
        return Exchange(error=exc)
    leaf = tls.getpeercert(binary_form=True)
    subject = issuer = None
    if leaf:
        cert = x509.load_der_x509_certificate(leaf)
        subject, issuer = cert.subject.rfc4514_string(), cert.issuer.rfc4514_string()
    verdict: Verdict | None = getattr(tls, "pinset_verdict", None)
    conn = http.client.HTTPSConnection(server_name, address[1], timeout=timeout)
    conn.sock = tls  # already connected: http.client sends on it as is
    try:
        conn.request("GET", "/", headers={"Connection": "close"})
        response = conn.getresponse()
        body = response.read()
        return Exchange(response.status, body, subject, issuer, verdict)
    except (OSError, http.client.HTTPException) as exc:
        return Exchange(leaf_subject=subject, leaf_issuer=issuer, verdict=verdict, error=exc)
    finally:
        with suppress(OSError):
            conn.close()
