"""Serving the collector with uvicorn: forwarded client addresses, slow and many clients.

The report endpoint is open to the internet, so the server, not only the app, has
to hold against hostile clients:

* **Forwarded addresses.** uvicorn trusts ``X-Forwarded-For`` from loopback by
  default (or from ``$FORWARDED_ALLOW_IPS``), so any local client, or any proxy that
  passes the header through, could pick a fresh rate-limit bucket per request.
  The collector trusts forwarding headers only from the proxies it is given.
* **Slow clients.** uvicorn bounds neither the time to send a request's headers nor
  its body: one byte every two seconds holds a connection forever.
  :class:`SlowClientGuard` gives each request ``read_timeout`` seconds from its
  first byte (or from the connection's opening) to its last, then closes it.
* **Large headers.** Nor does it bound their size (2 MB of headers are read and
  kept): a request whose headers pass ``max_header_bytes`` is answered 431 and closed.
* **Many clients.** ``max_connections`` caps open connections and running
  requests; beyond it a request is answered 503 with ``Retry-After`` and its
  connection closed (uvicorn's own answer has no ``Retry-After`` and logs a warning
  per request, thousands a second under a flood).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = [
    "DEFAULT_MAX_HEADER_BYTES",
    "DEFAULT_READ_TIMEOUT",
    "RETRY_OVER_CAPACITY",
    "ServerLimits",
    "SlowClientGuard",
    "uvicorn_options",
]

log = logging.getLogger("pinset.collector")

DEFAULT_READ_TIMEOUT = 10.0
DEFAULT_MAX_CONNECTIONS = 1000
# nginx reads at most 4 x 8 KiB of request line and headers by default; 64 KiB is generous.
DEFAULT_MAX_HEADER_BYTES = 64 * 1024
_TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    b"content-type: text/plain; charset=utf-8\r\nconnection: close\r\ncontent-length: 26\r\n\r\n"
    b"request headers too large\n"
)
_OVER_CAPACITY = b'{"error": "over-capacity", "detail": "too many open connections; retry later"}'
RETRY_OVER_CAPACITY = 1  # seconds: connections are freed as fast as requests are answered

_Message = MutableMapping[str, Any]


async def _over_capacity(
    _scope: _Message,
    _receive: Callable[[], Awaitable[_Message]],
    send: Callable[[_Message], Awaitable[None]],
) -> None:
    """The answer over ``max_connections``: 503 with ``Retry-After``, and close."""
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(_OVER_CAPACITY)).encode()),
        (b"retry-after", str(RETRY_OVER_CAPACITY).encode()),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": _OVER_CAPACITY})


@dataclass(frozen=True, slots=True)
class ServerLimits:
    """How the HTTP server treats clients.

    ``forwarded_allow_ips``: addresses (comma-separated, ``*`` for any) of the proxies
    whose ``X-Forwarded-For`` / ``X-Forwarded-Proto`` name the client; ``None``: none,
    the peer address is the client. ``read_timeout``: seconds a client has to send one
    request, headers and body. ``max_connections``: open connections (and running
    requests) before new requests are answered 503. ``max_header_bytes``: the request
    line and headers of one request, beyond which it is answered 431.
    """

    forwarded_allow_ips: str | None = None
    read_timeout: float = DEFAULT_READ_TIMEOUT
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES

    def __post_init__(self) -> None:
        if not self.read_timeout > 0:
            raise ValueError(f"read_timeout must be positive, not {self.read_timeout!r}")
        if self.max_connections < 1:
            raise ValueError(f"max_connections must be at least 1, not {self.max_connections}")
        if self.max_header_bytes < 1024:
            raise ValueError(f"max_header_bytes must be at least 1024, not {self.max_header_bytes}")


def uvicorn_options(limits: ServerLimits) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.run`` / ``uvicorn.Config`` that apply ``limits``."""
    return {
        # A partial of a module-level class pickles, so --workers processes get it too.
        "http": functools.partial(
            SlowClientGuard,
            read_timeout=limits.read_timeout,
            max_header_bytes=limits.max_header_bytes,
        ),
        "limit_concurrency": limits.max_connections,
        "proxy_headers": limits.forwarded_allow_ips is not None,
        # Given even when proxy headers are off, so $FORWARDED_ALLOW_IPS is never read.
        "forwarded_allow_ips": limits.forwarded_allow_ips or "",
    }


class SlowClientGuard(HttpToolsProtocol):
    """uvicorn's httptools protocol with a deadline and a size bound for reading requests.

    The deadline starts when the connection opens and again at each request's first
    byte (between requests uvicorn's keep-alive timeout applies); it ends when the
    parser has the whole request. What the app then takes is not the client's doing.
    Header bytes are counted from the same points until the headers are complete.
    """

    def __init__(
        self,
        *args: Any,
        read_timeout: float = DEFAULT_READ_TIMEOUT,
        max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.read_timeout = read_timeout
        self.max_header_bytes = max_header_bytes
        self._deadline: asyncio.TimerHandle | None = None
        self._reading_headers = True
        self._header_bytes = 0
        self._headers_ended = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._headers_ended = False
        super().data_received(data)
        # Counted after parsing: a chunk in which some headers ended (it may carry a
        # whole body, even the start of the next request) is not counted; a chunk that
        # leaves a request's headers unfinished is header bytes through and through.
        if self._reading_headers and not self._headers_ended and not self.transport.is_closing():
            self._header_bytes += len(data)
            if self._header_bytes > self.max_header_bytes:
                self._refuse_headers()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._deadline is None:
            self._arm()

    def on_headers_complete(self) -> None:
        self._reading_headers = False
        self._headers_ended = True
        # Headers that arrived whole in one chunk were not counted above: measure them.
        size = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
        if size > self.max_header_bytes:
            self._refuse_headers()
            return
        limit = self.limit_concurrency
        if limit is not None and (len(self.connections) >= limit or len(self.tasks) >= limit):
            # uvicorn's own check, with our answer: the request goes to _over_capacity.
            app = self.app
            self.app, self.limit_concurrency = _over_capacity, None
            try:
                super().on_headers_complete()
            finally:
                self.app, self.limit_concurrency = app, limit
            return
        super().on_headers_complete()

    def _refuse_headers(self) -> None:
        self._reading_headers = False
        self._disarm()
        if not self.transport.is_closing():
            self.transport.write(_TOO_LARGE)
            self.transport.close()

    def on_body(self, body: bytes) -> None:
        if not self.transport.is_closing():  # refused at its headers: no request to feed
            super().on_body(body)

    def on_message_complete(self) -> None:
        if self.transport.is_closing():
            return
        self._disarm()
        self._reading_headers = True
        self._header_bytes = 0
        super().on_message_complete()

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.read_timeout, self._expire)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        client = f"{self.client[0]}:{self.client[1]}" if self.client else "a client"
        log.info("closed %s: no complete request within %g s", client, self.read_timeout)
        self.transport.close()
