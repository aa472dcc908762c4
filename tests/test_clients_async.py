"""The asyncio path (PinnedSSLObject, memory BIOs): what it alone must refuse, and websockets.

The matrix of HTTP clients, the asyncio ones among them, is in test_clients.py.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import pytest
from websockets.asyncio.client import connect as ws_connect
from websockets.asyncio.server import ServerConnection
from websockets.asyncio.server import serve as ws_serve
from websockets.http11 import Request

from _client_helpers import BACKUP, HOSTS, OTHER, find_mismatch, no_proxy_from_environment, pinned  # noqa: F401 - an autouse fixture
from _clients import via_asyncio
from pinset import PinMismatchError
from pinset.enforce import PinnedSSLObject
from pinset.testing import LeafCert, TestPKI, TLSServer


def test_empty_verified_chain_is_refused_on_the_asyncio_path(
    pki: TestPKI, root_pem: str, server: TLSServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(PinnedSSLObject, "_verified_certificates", lambda self: [])
    ctx = pinned(pki, root_pem, "localhost", right=True)
    with pytest.raises(PinMismatchError) as info:
        asyncio.run(via_asyncio(f"https://localhost:{server.port}/", ctx, None))
    assert info.value.verdict is not None
    assert info.value.verdict.reason == "no-verified-chain"
    server.wait_for_connections(1)
    assert server.received_bytes == 0


# -- websockets ------------------------------------------------------------------------


async def _websocket_round_trip(
    leaf: LeafCert, ctx: ssl.SSLContext, host: str, upgrades: list[str]
) -> str:
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    leaf.configure_cert(server_ctx)

    def record(connection: ServerConnection, request: Request) -> Any:
        upgrades.append(request.path)
        return None

    async def echo(connection: ServerConnection) -> None:
        async for message in connection:
            await connection.send(message)

    async with ws_serve(echo, "127.0.0.1", 0, ssl=server_ctx, process_request=record) as ws_server:
        port = next(iter(ws_server.sockets)).getsockname()[1]
        async with ws_connect(
            f"wss://{host}:{port}/pinned", ssl=ctx, open_timeout=5, proxy=None
        ) as websocket:
            await websocket.send("ping")
            reply = await websocket.recv()
            assert isinstance(reply, str)
            return reply


@pytest.mark.parametrize("host", HOSTS)
def test_websockets_right_pins_pass(pki: TestPKI, leaf: LeafCert, root_pem: str, host: str) -> None:
    upgrades: list[str] = []
    ctx = pinned(pki, root_pem, host, right=True)
    assert asyncio.run(_websocket_round_trip(leaf, ctx, host, upgrades)) == "ping"
    assert upgrades == ["/pinned"]


@pytest.mark.parametrize("host", HOSTS)
def test_websockets_wrong_pins_never_send_the_upgrade_request(
    pki: TestPKI, leaf: LeafCert, root_pem: str, host: str
) -> None:
    upgrades: list[str] = []
    ctx = pinned(pki, root_pem, host, right=False)
    with pytest.raises(ssl.SSLCertVerificationError) as info:
        asyncio.run(_websocket_round_trip(leaf, ctx, host, upgrades))
    assert find_mismatch(info.value) is not None
    assert upgrades == []


async def _websocket_open(url: str, ctx: ssl.SSLContext) -> None:
    async with ws_connect(url, ssl=ctx, open_timeout=5, proxy=None):
        pass


@pytest.mark.parametrize("right", [True, False])
def test_websockets_bytes_counted_by_the_loopback_server(
    pki: TestPKI, root_pem: str, server: TLSServer, right: bool
) -> None:
    # TLSServer answers the upgrade with a plain 200, so a handshake that got through
    # fails at the HTTP level, after the server counted the upgrade request.
    ctx = pinned(pki, root_pem, "localhost", right=right)
    with pytest.raises(Exception) as info:  # noqa: PT011 - the type is what differs
        asyncio.run(_websocket_open(f"wss://localhost:{server.port}/pinned", ctx))
    server.wait_for_connections(1)
    if right:
        assert find_mismatch(info.value) is None
        assert b"upgrade: websocket" in server.requests[0].lower()
        assert server.received_bytes > 0
    else:
        assert isinstance(info.value, ssl.SSLCertVerificationError)
        assert find_mismatch(info.value) is not None
        assert server.requests == []
        assert server.received_bytes == 0
