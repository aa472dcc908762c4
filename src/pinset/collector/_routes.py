"""The HTTP API: ``POST /v1/report``, ``/v1/tallies``, ``/v1/update-events`` (open), the reads."""

from __future__ import annotations

import datetime as dt
import hmac
import logging
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from pinset.collector import _queries as queries
from pinset.collector import _rates as rates
from pinset.collector._bundles import APP_ID_PATTERN, MAX_APP_ID
from pinset.collector._ingest import (
    REPORT_PATH,
    RETRY_UNAVAILABLE,
    Refused,
    accept,
    read_json,
)
from pinset.collector._normalize import ReportError
from pinset.collector._state import Collector
from pinset.collector._tallies import (
    COUNT_FIELDS,
    MAX_COUNT,
    TALLY_PATH,
    parse_tallies,
    store_tallies,
)
from pinset.collector._update_events import (
    MAX_SOURCE,
    UPDATE_EVENTS_PATH,
    event_summary,
    list_events,
    parse_event,
    store_event,
)
from pinset.reporting import EVENT_KEY, EVENT_KINDS, MAX_DETAIL
from pinset.updates import FETCH_REASONS, REASONS

__all__ = ["REPORT_SCHEMA", "TALLY_SCHEMA", "UPDATE_EVENT_SCHEMA", "router"]

log = logging.getLogger("pinset.collector")

router = APIRouter()
_bearer = HTTPBearer(auto_error=False, description="The collector token (--token).")

_PEM_LIST = {"type": "array", "items": {"type": "string"}, "maxItems": 16}
REPORT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "An RFC 7469 section 3 report, or a TrustKit iOS/Android report.",
    "required": ["hostname"],
    "properties": {
        "date-time": {"type": "string", "format": "date-time"},
        "hostname": {"type": "string", "maxLength": 255},
        "port": {"type": "integer", "minimum": 0, "maximum": 65535, "description": "0: unknown"},
        "effective-expiration-date": {"type": ["string", "null"]},
        "include-subdomains": {"type": "boolean"},
        "noted-hostname": {"type": "string"},
        "served-certificate-chain": _PEM_LIST,
        "validated-certificate-chain": _PEM_LIST,
        "known-pins": {"type": "array", "items": {"type": "string"}, "maxItems": 64},
        "app-bundle-id": {"type": ["string", "null"]},
        "app-version": {"type": ["string", "null"]},
        "app-platform": {"type": ["string", "null"]},
        "enforce-pinning": {"type": "boolean"},
        "validation-result": {"type": ["integer", "string"]},
        "known-pins-expiration-date": {"type": ["string", "null"]},
    },
    "additionalProperties": True,
}
_ERROR = {"description": "Refused; the body says why: {error, detail}."}

_OPTIONAL_TEXT = {"type": ["string", "null"], "maxLength": 255}
TALLY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Verdict counts of one interval (pinset.reporting.VerdictTally).",
    "required": ["interval_start", "interval_seconds", "domains"],
    "properties": {
        "app_id": _OPTIONAL_TEXT,
        "app_version": _OPTIONAL_TEXT,
        "pin_set_version": {"type": ["string", "null"], "pattern": "^[0-9]{1,32}$"},
        "interval_start": {"type": "integer", "minimum": 0, "description": "epoch seconds"},
        "interval_seconds": {"type": "integer", "minimum": 60, "maximum": 86400},
        "domains": {
            "type": "array",
            "minItems": 1,
            "maxItems": 256,
            "items": {
                "type": "object",
                "required": ["domain"],
                "properties": {
                    "domain": {"type": "string", "maxLength": 255},
                    **{
                        field: {"type": "integer", "minimum": 0, "maximum": MAX_COUNT}
                        for field in COUNT_FIELDS
                    },
                },
            },
        },
    },
}


_VERSION = {"type": ["integer", "null"], "minimum": 1, "maximum": 2**63 - 1}
UPDATE_EVENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "A refused pin-set bundle or a failed update check (pinset UpdateEvent).",
    "required": [EVENT_KEY, "reason", "source", "date-time"],
    "properties": {
        EVENT_KEY: {"type": "string", "enum": list(EVENT_KINDS)},
        "reason": {"type": "string", "enum": sorted({*REASONS, *FETCH_REASONS})},
        "detail": {"type": "string", "maxLength": MAX_DETAIL},
        "version": _VERSION,
        "app-id": _OPTIONAL_TEXT,
        "source": {"type": "string", "maxLength": MAX_SOURCE},
        "date-time": {"type": "string", "format": "date-time"},
        "pin-set-version": _VERSION,
        "bundle-sha256": {"type": ["string", "null"], "pattern": "^[0-9a-f]{64}$"},
    },
}


def _json_body(schema: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI ``requestBody`` of a route that reads its JSON body itself."""
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


_POST_ERRORS: dict[int | str, dict[str, Any]] = {400: _ERROR, 413: _ERROR, 429: _ERROR, 503: _ERROR}


def _collector(request: Request) -> Collector:
    collector: Collector = request.app.state.collector
    return collector


@router.post(
    REPORT_PATH,
    status_code=202,
    summary="Receive one pin-failure report",
    openapi_extra=_json_body(REPORT_SCHEMA),
    responses=_POST_ERRORS,
)
async def post_report(request: Request) -> Response:
    """Store a report; 202 only once it is committed. Repeats within 24 h are counted."""
    c = _collector(request)
    address = request.client.host if request.client else "unknown"
    length = request.headers.get("content-length")
    status, payload, headers = await accept(c, address, length, request.stream())
    return JSONResponse(payload, status_code=status, headers=headers)


@router.post(
    TALLY_PATH,
    status_code=202,
    summary="Receive the verdict tallies of one interval",
    openapi_extra=_json_body(TALLY_SCHEMA),
    responses=_POST_ERRORS,
)
async def post_tallies(request: Request) -> Response:
    """Add the counts to the stored tallies; 202 once committed, nothing stored on a refusal."""
    c = _collector(request)
    data = await _posted_json(c, request, "a tally")
    if isinstance(data, Response):
        return data
    try:
        batch = parse_tallies(data, now=int(c.clock()))
    except ReportError as exc:
        return _refused(400, exc.reason, str(exc))
    stored = await _stored("the tallies", store_tallies, c.engine, batch)
    if isinstance(stored, Response):
        return stored
    return JSONResponse({"status": "accepted", "domains": len(batch.domains)}, status_code=202)


@router.post(
    UPDATE_EVENTS_PATH,
    status_code=202,
    summary="Receive one refused pin-set bundle or failed update check",
    openapi_extra=_json_body(UPDATE_EVENT_SCHEMA),
    responses=_POST_ERRORS,
)
async def post_update_event(request: Request) -> Response:
    """Store the event (repeats within the hour are counted); 202 once committed."""
    c = _collector(request)
    data = await _posted_json(c, request, "an update event")
    if isinstance(data, Response):
        return data
    now = int(c.clock())
    try:
        event = parse_event(data, now=now)
    except ReportError as exc:
        return _refused(400, exc.reason, str(exc))
    new = await _stored("the event", store_event, c.engine, event, received=now)
    if isinstance(new, Response):
        return new
    return JSONResponse({"status": "accepted", "new": new}, status_code=202)


async def _posted_json(c: Collector, request: Request, what: str) -> Any:
    """The JSON body of a post to the tally and update-event routes (rate-limited, bounded),
    or the refusal to answer with."""
    address = request.client.host if request.client else "unknown"
    if not c.limiter.allow(address):
        return _refused(429, "rate-limited", "too many posts from this address", retry_after=1)
    length = request.headers.get("content-length")
    try:
        return await read_json(c.settings.max_body, length, request.stream(), what)
    except Refused as refused:
        return _refused(refused.status, refused.error, refused.detail)


async def _stored(what: str, store: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``store(*args, **kwargs)`` in the thread pool, or a 503 when the database refused it."""
    try:
        return await run_in_threadpool(store, *args, **kwargs)
    except Exception as exc:
        log.warning("%s not stored: %s", what, exc)
        detail = f"the database did not take {what}: {type(exc).__name__}"
        return _refused(503, "storage", detail, retry_after=RETRY_UNAVAILABLE)


def _refused(status: int, error: str, detail: str, *, retry_after: int | None = None) -> Response:
    headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
    return JSONResponse({"error": error, "detail": detail}, status_code=status, headers=headers)


def require_token(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Collector:
    """The collector, if the request carries its bearer token; else 401."""
    c = _collector(request)
    token = c.settings.token
    given = credentials.credentials if credentials else ""
    if not token or not hmac.compare_digest(given.encode(), token.encode()):
        raise HTTPException(
            status_code=401,
            detail="a valid token is required: Authorization: Bearer <token>",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return c


Guarded = Annotated[Collector, Depends(require_token)]
_TIME = "An RFC 3339 date-time (2026-11-28T08:00:00Z) or epoch seconds."


_LAST_INSTANT = 253_402_300_799  # 9999-12-31T23:59:59Z, the last instant datetime can name


def _instant(value: str | None, name: str) -> int | None:
    if value is None or value == "":
        return None
    if value.isascii() and value.isdigit():
        if int(value) > _LAST_INSTANT:
            raise HTTPException(400, f"{name} is past the year 9999: {value!r}")
        return int(value)
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise HTTPException(400, f"{name} is not an RFC 3339 date-time: {value!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.timezone.utc)
    return int(parsed.timestamp())


def _range(c: Collector, since: str | None, until: str | None, default: int) -> tuple[int, int]:
    end = _instant(until, "until")
    end = int(c.clock()) + 1 if end is None else end
    start = _instant(since, "since")
    start = end - default if start is None else start
    if start >= end:
        raise HTTPException(400, "since must be before until")
    return start, end


@router.get("/v1/summary", summary="Failures per domain, app version, result and time")
def get_summary(
    c: Guarded,
    since: Annotated[str | None, Query(description=_TIME + " Default: 7 days ago.")] = None,
    until: Annotated[str | None, Query(description=_TIME + " Default: now.")] = None,
    bucket: Annotated[str, Query(pattern="^(hour|day)$")] = "hour",
) -> dict[str, Any]:
    start, end = _range(c, since, until, 7 * 86400)
    with c.engine.connect() as conn:
        out = queries.summary(conn, since=start, until=end, bucket=bucket)
        out["failure_rates"] = rates.failure_rates(conn, since=start, until=end)
        return out


@router.get("/v1/adoption", summary="Share of tallied traffic per pin-set and app version")
def get_adoption(
    c: Guarded,
    app_id: Annotated[str | None, Query(max_length=255, description="Default: every app.")] = None,
    since: Annotated[str | None, Query(description=_TIME + " Default: 24 hours ago.")] = None,
    until: Annotated[str | None, Query(description=_TIME + " Default: now.")] = None,
) -> dict[str, Any]:
    start, end = _range(c, since, until, 86400)
    with c.engine.connect() as conn:
        shares = rates.adoption(conn, app_id=app_id, since=start, until=end)
    return {"app_id": app_id, "since": queries.iso(start), **shares}


@router.get("/v1/reports", summary="Reports, newest first, filtered and paged")
def get_reports(
    c: Guarded,
    hostname: str | None = None,
    app_version: str | None = None,
    validation_result: str | None = None,
    since: Annotated[str | None, Query(description=_TIME)] = None,
    until: Annotated[str | None, Query(description=_TIME)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[
        int | None, Query(ge=1, le=2**62, description="next_cursor of the previous page")
    ] = None,
) -> dict[str, Any]:
    flt = queries.ReportFilter(
        hostname=hostname,
        app_version=app_version,
        validation_result=validation_result,
        since=_instant(since, "since"),
        until=_instant(until, "until"),
    )
    with c.engine.connect() as conn:
        return queries.list_reports(conn, flt, limit=limit, cursor=cursor)


@router.get("/v1/chains", summary="The served chains seen most, with their pins")
def get_chains(
    c: Guarded,
    since: Annotated[str | None, Query(description=_TIME + " Default: 7 days ago.")] = None,
    until: Annotated[str | None, Query(description=_TIME + " Default: now.")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
) -> dict[str, Any]:
    start, end = _range(c, since, until, 7 * 86400)
    with c.engine.connect() as conn:
        return queries.top_chains(conn, since=start, until=end, limit=limit)


@router.get("/v1/alerts", summary="Domains over the alert count or rate in the last hour")
def get_alerts(c: Guarded) -> dict[str, Any]:
    now = int(c.clock())
    settings = c.settings
    with c.engine.connect() as conn:
        out = queries.alerts(conn, now=now, threshold=settings.alert_threshold)
        out["rate_threshold"] = settings.alert_rate
        out["rate_min_total"] = settings.alert_min_total
        out["rate_alerts"] = rates.rate_alerts(
            conn, now=now, rate=settings.alert_rate, min_total=settings.alert_min_total
        )
        return out


@router.get(
    UPDATE_EVENTS_PATH,
    summary="Refused bundles and failed update checks: per app and reason, and the newest rows",
)
def get_update_events(
    c: Guarded,
    app_id: Annotated[str | None, Query(max_length=255, description="Default: every app.")] = None,
    kind: Annotated[str | None, Query(pattern="^(bundle-refused|fetch-failed)$")] = None,
    reason: Annotated[str | None, Query(max_length=32)] = None,
    since: Annotated[str | None, Query(description=_TIME + " Default: 7 days ago.")] = None,
    until: Annotated[str | None, Query(description=_TIME + " Default: now.")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[
        int | None, Query(ge=1, le=2**62, description="next_cursor of the previous page")
    ] = None,
) -> dict[str, Any]:
    start, end = _range(c, since, until, 7 * 86400)
    which = {"app_id": app_id, "kind": kind, "reason": reason}
    with c.engine.connect() as conn:
        summary = event_summary(conn, since=start, until=end, **which)
        page = list_events(conn, since=start, until=end, limit=limit, cursor=cursor, **which)
    return {
        "since": queries.iso(start),
        "until": queries.iso(end),
        "total": sum(row["count"] for row in summary),
        "by_app_and_reason": summary,
        **page,
    }


@router.get(
    "/metrics",
    summary="Prometheus metrics of this process",
    response_class=PlainTextResponse,
)
def get_metrics(c: Guarded) -> PlainTextResponse:
    return PlainTextResponse(
        c.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8"
    )


_BUNDLE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The newest bundle for the app: the signed document, byte for byte.",
        "content": {"application/json": {"schema": {"type": "object"}}},
    },
    304: {"description": "Not modified (If-None-Match named the current ETag)."},
    404: {"description": "No bundle for this app (or no --bundles directory)."},
}


@router.get(
    "/v1/pins/{app_id}",
    summary="The newest signed pin-set bundle for an app",
    response_class=Response,
    responses=_BUNDLE_RESPONSES,
)
def get_pins(
    request: Request,
    app_id: Annotated[
        str,
        Path(
            pattern=APP_ID_PATTERN,
            max_length=MAX_APP_ID,
            description="The app's package name or bundle id, as the bundle's app_id names it.",
        ),
    ],
) -> Response:
    """Open to anyone: the bundle is signed, and the app verifies it before applying it.

    The body is the file's exact bytes (the signature covers them); the ETag is their
    SHA-256, so an unchanged bundle costs a 304; ``Cache-Control: no-cache`` lets caches
    keep it but makes them ask again each time, so that a kill switch is not held back.
    """
    c = _collector(request)
    bundle = None if c.bundles is None else c.bundles.latest(app_id)
    if bundle is None:
        return _refused(404, "no-bundle", f"no bundle is published for app {app_id!r}")
    headers = {
        "ETag": bundle.etag,
        "Cache-Control": "no-cache",
        "X-Content-Type-Options": "nosniff",
    }
    if _etag_matches(request.headers.get("if-none-match"), bundle.etag):
        return Response(status_code=304, headers=headers)
    return Response(bundle.data, media_type="application/json", headers=headers)


def _etag_matches(header: str | None, etag: str) -> bool:
    """RFC 9110 section 13.1.2: ``*`` or any listed tag, compared weakly (``W/`` ignored)."""
    if not header:
        return False
    tags = [tag.strip().removeprefix("W/") for tag in header.split(",")]
    return "*" in tags or etag in tags


@router.get(
    "/healthz",
    summary="Liveness: the database answers",
    responses={503: {"description": "The database does not answer (Retry-After)."}},
)
def get_health(request: Request) -> Response:
    c = _collector(request)
    try:
        with c.engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except Exception as exc:
        detail = f"the database does not answer: {type(exc).__name__}"
        return _refused(503, "unavailable", detail, retry_after=RETRY_UNAVAILABLE)
    return JSONResponse({"status": "ok"})
