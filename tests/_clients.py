"""One call per HTTP client, sync and asyncio: each takes a URL, a context and a proxy URL.

Each returns the HTTP status. :data:`CLIENTS` names every client with the error it
raises for a refused certificate; :data:`ASYNCIO` the ones on the asyncio path
(PinnedSSLObject), :data:`PROXYLESS` the ones that cannot use a proxy.
"""

from __future__ import annotations

import asyncio
import http.client
import ssl
import urllib.error
import urllib.request
from collections.abc import Callable, Coroutine
from typing import Any

import aiohttp
import httpx
import requests
import urllib3

from pinset.integrations.requests import PinnedAdapter

__all__ = ["ASYNCIO", "CLIENTS", "PROXYLESS", "Client", "via_asyncio"]

Client = Callable[[str, ssl.SSLContext, "str | None"], int]
AsyncClient = Callable[[str, ssl.SSLContext, "str | None"], Coroutine[Any, Any, int]]

# -- synchronous clients ---------------------------------------------------------------


def via_http_client(target: str, ctx: ssl.SSLContext, proxy: str | None) -> int:
    parts = urllib3.util.parse_url(target)
    if proxy is None:
        conn = http.client.HTTPSConnection(parts.host or "", parts.port, context=ctx, timeout=5)
    else:
        p = urllib3.util.parse_url(proxy)
        conn = http.client.HTTPSConnection(p.host or "", p.port, context=ctx, timeout=5)
        conn.set_tunnel(parts.host or "", parts.port)
    try:
        conn.request("GET", "/")
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def via_urllib_request(target: str, ctx: ssl.SSLContext, proxy: str | None) -> int:
    handlers: list[urllib.request.BaseHandler] = [urllib.request.HTTPSHandler(context=ctx)]
    handlers.append(urllib.request.ProxyHandler({"https": proxy} if proxy else {}))
    opener = urllib.request.build_opener(*handlers)
    with opener.open(target, timeout=5) as response:
        response.read()
        status: int = response.status
        return status


def via_urllib3(target: str, ctx: ssl.SSLContext, proxy: str | None) -> int:
    manager: urllib3.PoolManager
    if proxy is None:
        manager = urllib3.PoolManager(ssl_context=ctx)
    else:
        manager = urllib3.ProxyManager(proxy, ssl_context=ctx)
    with manager:
        return manager.request("GET", target, retries=False, timeout=5).status


def via_requests(target: str, ctx: ssl.SSLContext, proxy: str | None) -> int:
    with requests.Session() as session:
        session.mount("https://", PinnedAdapter(ctx))
        proxies = {"https": proxy} if proxy else {}
        return session.get(target, timeout=5, proxies=proxies).status_code


def via_httpx(target: str, ctx: ssl.SSLContext, proxy: str | None) -> int:
    with httpx.Client(verify=ctx, proxy=proxy, trust_env=False, timeout=5) as client:
        return client.get(target).status_code


# -- asyncio clients (through PinnedSSLObject, memory BIOs) ----------------------------


async def via_httpx_async(target: str, ctx: ssl.SSLContext, proxy: str | None) -> int:
    async with httpx.AsyncClient(verify=ctx, proxy=proxy, trust_env=False, timeout=5) as client:
        return (await client.get(target)).status_code


async def via_aiohttp(target: str, ctx: ssl.SSLContext, proxy: str | None) -> int:
    async with aiohttp.ClientSession() as session:
        response = await session.get(target, ssl=ctx, proxy=proxy)
        async with response:
            await response.read()
            return response.status


async def via_asyncio(target: str, ctx: ssl.SSLContext, proxy: str | None) -> int:
    assert proxy is None, "asyncio.open_connection has no proxy support"
    parts = urllib3.util.parse_url(target)
    host, port = parts.host or "", parts.port
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ctx, server_hostname=host)
    try:
        writer.write(f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        status_line = await reader.readline()
        await reader.read()
        return int(status_line.split()[1])
    finally:
        writer.close()
        await writer.wait_closed()


def _run(client: AsyncClient) -> Client:
    def call(target: str, ctx: ssl.SSLContext, proxy: str | None) -> int:
        return asyncio.run(client(target, ctx, proxy))

    return call


CLIENTS: dict[str, tuple[Client, type[BaseException]]] = {
    "http.client": (via_http_client, ssl.SSLCertVerificationError),
    "urllib.request": (via_urllib_request, urllib.error.URLError),
    "urllib3": (via_urllib3, urllib3.exceptions.SSLError),
    "requests": (via_requests, requests.exceptions.SSLError),
    "httpx": (via_httpx, httpx.ConnectError),
    "httpx-async": (_run(via_httpx_async), httpx.ConnectError),
    "aiohttp": (_run(via_aiohttp), aiohttp.ClientConnectorCertificateError),
    "asyncio": (_run(via_asyncio), ssl.SSLCertVerificationError),
}
ASYNCIO = frozenset({"httpx-async", "aiohttp", "asyncio"})
PROXYLESS = frozenset({"asyncio"})  # asyncio.open_connection takes no proxy
