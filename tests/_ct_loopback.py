"""One echo exchange with "localhost" through a pinned context: the verdict it got.

Shared by the CT handshake tests (test_enforce_ct.py, test_ct_only.py), whose servers are
the ct_* fixtures of conftest.py.
"""

from __future__ import annotations

import socket
import ssl

from pinset.testing import TLSServer
from pinset.verdict import Verdict


def talk(ctx: ssl.SSLContext, server: TLSServer) -> Verdict:
    """Connect, send "ping", expect it back; the connection's pinset verdict."""
    with (
        socket.create_connection(server.address, timeout=5) as sock,
        ctx.wrap_socket(sock, server_hostname="localhost") as tls,
    ):
        tls.sendall(b"ping")
        assert tls.recv(16) == b"ping"
        verdict = tls.pinset_verdict  # type: ignore[attr-defined]
        assert verdict is not None
        return verdict
