"""Fetching a bundle: over pinned HTTPS (the embedded policy's pins) or from a local file.

Every way a fetch can fail is a :class:`FetchFailure` with a stable reason, never an
exception: the caller keeps its last good state and records the failure.
"""

from __future__ import annotations

import os
import socket
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pinset.errors import PinMismatchError
from pinset.updates._document import MAX_BUNDLE_BYTES

__all__ = ["FETCH_REASONS", "FetchFailure", "FetchReason", "fetch_file", "fetch_url"]

FetchReason = Literal[
    "unreachable", "timeout", "http-status", "pin-mismatch", "tls-error", "unreadable"
]
#: Every fetch failure reason, by its stable id.
FETCH_REASONS: tuple[FetchReason, ...] = (
    "unreachable",
    "timeout",
    "http-status",
    "pin-mismatch",
    "tls-error",
    "unreadable",
)


@dataclass(frozen=True, slots=True)
class FetchFailure:
    """A bundle that could not be fetched: ``reason`` (one of :data:`FETCH_REASONS`), ``detail``.

    ``valid`` is always False, so code that checks ``result.valid`` treats a failed
    fetch and a refused bundle alike: nothing changes.
    """

    reason: FetchReason
    detail: str

    @property
    def valid(self) -> bool:
        """Always False: nothing was fetched, nothing changes."""
        return False


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # A redirect would leave the host the fetch is pinned to: it is a failure.
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def fetch_url(url: str, context: ssl.SSLContext, timeout: float) -> bytes | FetchFailure:
    """GET ``url`` through ``context`` (pinned), directly (no proxy), without redirects.

    Reads at most one byte more than :data:`MAX_BUNDLE_BYTES`, so that an oversized
    answer is refused as ``too-large`` by the verifier, not read to the end.
    """
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({}),
        urllib.request.HTTPSHandler(context=context),
        _NoRedirect(),
    )
    # The caller checked the scheme (https only).
    request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310
    try:
        with opener.open(request, timeout=timeout) as response:
            return bytes(response.read(MAX_BUNDLE_BYTES + 1))
    except urllib.error.HTTPError as exc:
        exc.close()
        return FetchFailure("http-status", f"{url} answered HTTP {exc.code}")
    except urllib.error.URLError as exc:
        return _failure(url, exc.reason)
    except Exception as exc:  # a read that times out or breaks after the headers
        return _failure(url, exc)


def _failure(url: str, error: Any) -> FetchFailure:
    if isinstance(error, PinMismatchError):
        return FetchFailure("pin-mismatch", f"{url}: {error.message.splitlines()[0]}")
    if isinstance(error, TimeoutError | socket.timeout):
        return FetchFailure("timeout", f"{url}: timed out")
    if isinstance(error, ssl.SSLError | ssl.CertificateError):
        return FetchFailure("tls-error", f"{url}: {error}")
    if isinstance(error, OSError):
        return FetchFailure("unreachable", f"{url}: {error.strerror or error}")
    return FetchFailure("unreachable", f"{url}: {error}")


def fetch_file(path: str | os.PathLike[str]) -> bytes | FetchFailure:
    """The bytes of a local bundle file (at most one byte over the limit)."""
    try:
        with Path(path).open("rb") as handle:
            return handle.read(MAX_BUNDLE_BYTES + 1)
    except OSError as exc:
        return FetchFailure("unreadable", f"{path}: {exc.strerror or exc}")
