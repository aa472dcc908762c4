"""Taking one report in: rate limit, size limits, JSON, normalisation, commit.

:func:`accept` is the one implementation; two thin adapters call it: the
FastAPI route (documented in the OpenAPI schema) and :class:`IngestFastPath`,
an ASGI middleware that answers ``POST /v1/report`` before FastAPI's routing
and dependency machinery, which cost more CPU per report than everything else
together (benchmarks/collector_ingest.py).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any

from pinset.collector._normalize import ReportError, normalize
from pinset.collector._state import Collector
from pinset.collector._writer import Busy, Unavailable

__all__ = [
    "REPORT_PATH",
    "RETRY_BUSY",
    "RETRY_UNAVAILABLE",
    "IngestFastPath",
    "Outcome",
    "Refused",
    "accept",
    "read_json",
]

REPORT_PATH = "/v1/report"
# Retry-After (seconds) of a 503: a full queue drains in about a second; a database
# that is restarting takes a few.
RETRY_BUSY = 1
RETRY_UNAVAILABLE = 5
_BUSY = "the collector is overloaded; retry later"
Outcome = tuple[int, dict[str, Any], dict[str, str]]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def _refuse(
    c: Collector, status: int, error: str, detail: str, *, retry_after: int | None = None
) -> Outcome:
    c.metrics.count_rejected(error)
    headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
    return status, {"error": error, "detail": detail}, headers


class Refused(Exception):
    """A posted body refused before it is parsed: ``status``, the ``error`` id, a ``detail``."""

    def __init__(self, status: int, error: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.error = error
        self.detail = detail


async def read_json(
    limit: int, content_length: str | None, chunks: AsyncIterator[bytes], what: str
) -> Any:
    """The posted JSON, read at most ``limit`` bytes far; :class:`Refused` (400/413) else.

    ``what`` names one item in the 413 detail ("a report", "a tally").
    """
    if content_length is not None:
        if not (content_length.isascii() and content_length.isdigit()):
            raise Refused(400, "bad-length", "Content-Length is not a number")
        if int(content_length) > limit:
            raise Refused(413, "too-large", f"{what} is at most {limit} bytes")
    body = bytearray()
    async for chunk in chunks:
        body += chunk
        if len(body) > limit:
            raise Refused(413, "too-large", f"{what} is at most {limit} bytes")
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Refused(400, "bad-json", f"the body is not JSON: {exc}") from None
    except RecursionError:
        raise Refused(400, "bad-json", "the JSON is nested too deeply") from None


async def accept(
    c: Collector, address: str, content_length: str | None, chunks: AsyncIterator[bytes]
) -> Outcome:
    """Decide on one posted report: ``(status, JSON body, extra headers)``.

    202 only after the report is committed; 400 with the reason for anything
    that is not a valid report; 413 over ``max_body`` (by header, or counted
    while reading); 429 over the address's rate; 503 when the database cannot
    take it: ``busy`` when the write queue is full, ``unavailable`` when the
    database cannot be reached, ``storage`` when it failed otherwise (nothing is
    acknowledged that is not stored; each 503 carries ``Retry-After``).
    """
    c.metrics.count_received()
    if not c.limiter.allow(address):
        c.metrics.count_rate_limited()
        return (
            429,
            {"error": "rate-limited", "detail": "too many reports from this address"},
            {"Retry-After": "1"},
        )
    if c.writer.queue_full:
        # Shed before reading and parsing the body: under a flood that work is the cost.
        return _refuse(c, 503, "busy", _BUSY, retry_after=RETRY_BUSY)
    try:
        data = await read_json(c.settings.max_body, content_length, chunks, "a report")
    except Refused as refused:
        return _refuse(c, refused.status, refused.error, refused.detail)
    try:
        report = normalize(data, received=int(c.clock()))
    except ReportError as exc:
        return _refuse(c, 400, exc.reason, str(exc))
    try:
        result = await c.writer.write(report)
    except Busy as exc:
        return _refuse(c, 503, "busy", str(exc), retry_after=RETRY_BUSY)
    except Unavailable as exc:
        return _refuse(c, 503, "unavailable", str(exc), retry_after=RETRY_UNAVAILABLE)
    except Exception as exc:
        detail = f"the database did not take the report: {type(exc).__name__}"
        return _refuse(c, 503, "storage", detail, retry_after=RETRY_UNAVAILABLE)
    return 202, {"status": "accepted", "new": result.new}, {}


class _Disconnected(Exception):
    pass


class IngestFastPath:
    """ASGI middleware: ``POST /v1/report`` straight to :func:`accept`, the rest to ``app``."""

    def __init__(self, app: ASGIApp, collector: Collector) -> None:
        self.app = app
        self.collector = collector

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not (
            scope["type"] == "http" and scope["path"] == REPORT_PATH and scope["method"] == "POST"
        ):
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        address = str(client[0]) if client else "unknown"
        length = None
        for name, value in scope["headers"]:
            if name == b"content-length":
                length = value.decode("latin-1")
                break

        async def chunks() -> AsyncIterator[bytes]:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise _Disconnected
                yield message.get("body", b"")
                if not message.get("more_body", False):
                    return

        try:
            status, payload, headers = await accept(self.collector, address, length, chunks())
        except _Disconnected:
            return
        body = json.dumps(payload).encode()
        raw_headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ]
        raw_headers += [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        await send({"type": "http.response.start", "status": status, "headers": raw_headers})
        await send({"type": "http.response.body", "body": body})
