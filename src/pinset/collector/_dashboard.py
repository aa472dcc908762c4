"""The dashboard: ``GET /`` and its three static files, served from package data.

The page itself is public: it holds no data. Its script reads the token-guarded
JSON API (``/v1/summary``, ``/v1/chains``, ``/v1/reports``, ``/v1/alerts``) with
the token the user types once (kept in ``sessionStorage`` for the tab) or passes
as ``/?token=…`` (the script stores it and removes it from the address bar).

Reports are written by anyone who can reach ``POST /v1/report``, so every page
answer carries a strict Content-Security-Policy (no inline script, no foreign
origin) and the script only ever inserts report text as text, never as markup.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

from fastapi import APIRouter, HTTPException
from fastapi.responses import Response

__all__ = ["SECURITY_HEADERS", "STATIC_FILES", "router"]

# Only these names are served: no path from the request ever reaches the file system.
STATIC_FILES: dict[str, str] = {
    "index.html": "text/html; charset=utf-8",
    "dashboard.js": "text/javascript; charset=utf-8",
    "dashboard.css": "text/css; charset=utf-8",
}

SECURITY_HEADERS: dict[str, str] = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    # The token may arrive in the query string: never hand the URL to another origin.
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # Cheap revalidation: a collector upgrade shows its new page without a hard reload.
    "Cache-Control": "no-cache",
}

router = APIRouter(include_in_schema=False)


@lru_cache(maxsize=len(STATIC_FILES))
def _read(name: str) -> bytes:
    return (resources.files("pinset.collector") / "static" / name).read_bytes()


def _file(name: str) -> Response:
    media_type = STATIC_FILES.get(name)
    if media_type is None:
        raise HTTPException(status_code=404, detail=f"no static file {name!r}")
    try:
        body = _read(name)
    except FileNotFoundError:
        raise HTTPException(
            status_code=404, detail=f"the dashboard file {name!r} is not installed"
        ) from None
    return Response(body, media_type=media_type, headers=SECURITY_HEADERS)


@router.api_route("/", methods=["GET", "HEAD"], summary="The dashboard page")
def index() -> Response:
    """The dashboard HTML (public; its data comes from the token-guarded API)."""
    return _file("index.html")


@router.api_route(
    "/static/{name}", methods=["GET", "HEAD"], summary="The dashboard's script and style sheet"
)
def static(name: str) -> Response:
    """One of :data:`STATIC_FILES`; anything else is 404."""
    return _file(name)
