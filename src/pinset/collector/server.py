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
* **Many clients.** ``max_connections`` caps open connections and running
  requests; beyond it uvicorn answers 503.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["DEFAULT_READ_TIMEOUT", "ServerLimits", "SlowClientGuard", "uvicorn_options"]

log = logging.getLogger("pinset.collector")

DEFAULT_READ_TIMEOUT = 10.0
DEFAULT_MAX_CONNECTIONS = 1000


@dataclass(frozen=True, slots=True)
class ServerLimits:
    """How the HTTP server treats clients.

    ``forwarded_allow_ips``: addresses (comma-separated, ``*`` for any) of the proxies
    whose ``X-Forwarded-For`` / ``X-Forwarded-Proto`` name the client; ``None``: none,
    the peer address is the client. ``read_timeout``: seconds a client has to send one
    request, headers and body. ``max_connections``: open connections (and running
    requests) before new requests are answered 503.
    """

    forwarded_allow_ips: str | None = None
    read_timeout: float = DEFAULT_READ_TIMEOUT
    max_connections: int = DEFAULT_MAX_CONNECTIONS

    def __post_init__(self) -> None:
        if not self.read_timeout > 0:
            raise ValueError(f"read_timeout must be positive, not {self.read_timeout!r}")
        if self.max_connections < 1:
            raise ValueError(f"max_connections must be at least 1, not {self.max_connections}")


def uvicorn_options(limits: ServerLimits) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.run`` / ``uvicorn.Config`` that apply ``limits``."""
    return {
        # A partial of a module-level class pickles, so --workers processes get it too.
        "http": functools.partial(SlowClientGuard, read_timeout=limits.read_timeout),
        "limit_concurrency": limits.max_connections,
        "proxy_headers": limits.forwarded_allow_ips is not None,
        # Given even when proxy headers are off, so $FORWARDED_ALLOW_IPS is never read.
        "forwarded_allow_ips": limits.forwarded_allow_ips or "",
    }


class SlowClientGuard(HttpToolsProtocol):
    """uvicorn's httptools protocol with a deadline for reading each request.

    The deadline starts when the connection opens and again at each request's first
    byte (between requests uvicorn's keep-alive timeout applies); it ends when the
    parser has the whole request. What the app then takes is not the client's doing.
    """

    def __init__(self, *args: Any, read_timeout: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.read_timeout = read_timeout
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._deadline is None:
            self._arm()

    def on_message_complete(self) -> None:
        self._disarm()
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
