"""The log lists shipped as package data, and reading a log list file.

Reading the packaged lists (:mod:`importlib.resources`) and a user's file is the
only I/O of :mod:`pinset.ct`. Each shipped list is parsed once, when first asked
for. Where each file comes from is written in ``data/SOURCES.md``.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import os
from dataclasses import dataclass
from importlib import resources

from pinset.ct._loglist import LogList, parse_log_list
from pinset.errors import ConfigError

__all__ = ["DEFAULT_LOG_LIST", "SHIPPED", "ShippedList", "load_log_list", "shipped_log_list"]


@dataclass(frozen=True, slots=True)
class ShippedList:
    """A log list in the package: its name, file, publisher and publication date."""

    name: str
    file: str
    publisher: str
    published: dt.datetime  # the list's own log_list_timestamp, or the day it last changed


def _utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.timezone.utc)


SHIPPED: tuple[ShippedList, ...] = (
    # The mirror strips log_list_timestamp from newer copies: the date is the day the
    # file last changed upstream (data/SOURCES.md).
    ShippedList("google", "google_all_logs_list_latest.json", "Google", _utc("2026-08-21")),
    ShippedList(
        "google-2024-11", "google_all_logs_list.json", "Google", _utc("2024-11-14T12:55:19")
    ),
    ShippedList("apple", "apple_current_log_list.json", "Apple", _utc("2026-04-01")),
)
DEFAULT_LOG_LIST = "google"


@functools.cache
def shipped_log_list(name: str = DEFAULT_LOG_LIST) -> LogList:
    """The shipped list called ``name`` (``google``, ``google-2024-11``, ``apple``)."""
    for shipped in SHIPPED:
        if shipped.name == name:
            text = resources.files("pinset.ct").joinpath("data", shipped.file).read_bytes()
            return parse_log_list(
                json.loads(text), source=f"{name} (shipped)", timestamp=shipped.published
            )
    raise ConfigError(
        f"no shipped CT log list is called {name!r}",
        key="log-list",
        hint=f"use one of {', '.join(s.name for s in SHIPPED)}, or the path of a v3 JSON file",
    )


def load_log_list(where: str | os.PathLike[str] | LogList | None = None) -> LogList:
    """A log list: ``None`` (the default shipped list), a shipped name, a file path or a list."""
    if isinstance(where, LogList):
        return where
    if where is None:
        return shipped_log_list(DEFAULT_LOG_LIST)
    text = os.fspath(where)
    if any(s.name == text for s in SHIPPED):
        return shipped_log_list(text)
    try:
        with open(text, "rb") as handle:
            raw = handle.read()
    except OSError as exc:
        raise ConfigError(
            f"cannot read the CT log list: {exc.strerror or exc}",
            source=text,
            hint="pass the path of a v3 JSON log list, or a shipped name (pinset ct logs)",
        ) from None
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise ConfigError(f"the CT log list is not JSON: {exc}", source=text) from None
    return parse_log_list(data, source=text)
