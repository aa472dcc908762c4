"""Certificate Transparency log lists in the v3 JSON format (Google's and Apple's).

:func:`parse_log_list` turns the parsed JSON into a :class:`LogList` of
:class:`Log` values, strictly: a log whose ``log_id`` is not the SHA-256 of its
key, a key that is not an SPKI, a duplicate ``log_id`` or a state that is not one
of the schema's six is refused with a :class:`~pinset.errors.ConfigError`. Pure:
no files (the shipped lists are read by :mod:`pinset.ct._shipped`), no clock.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from pinset.errors import ConfigError

__all__ = [
    "STATES",
    "Log",
    "LogList",
    "LogState",
    "StaleLogListWarning",
    "parse_log_list",
    "parse_time",
]

# The six states of the v3 schema (Chrome's CT log lifecycle).
LogState = Literal["pending", "qualified", "usable", "readonly", "retired", "rejected"]
STATES: tuple[LogState, ...] = get_args(LogState)


class StaleLogListWarning(UserWarning):
    """A CT log list in use is older than ``pinset.ct.MAX_LIST_AGE``, or undated."""


@dataclass(frozen=True, slots=True)
class Log:
    """One CT log: its id (SHA-256 of ``key``), key (DER SPKI), operator and state.

    ``state`` is ``None`` for a log the list gives no state (the schema makes it
    optional; the Google lists leave it out for test and monitoring-only logs):
    such a log's SCTs are verified but never count. ``state_since`` is the state's
    timestamp (for ``retired``, the retirement instant). ``interval`` is the
    temporal interval ``[start, end)`` of a sharded log: it only accepts
    certificates that expire inside it.
    """

    log_id: bytes
    key: bytes = field(repr=False)
    description: str
    operator: str
    state: LogState | None = None
    state_since: dt.datetime | None = None
    interval: tuple[dt.datetime, dt.datetime] | None = None
    url: str | None = None

    @property
    def log_id_b64(self) -> str:
        """The log id in standard base64, as the lists write it."""
        return base64.b64encode(self.log_id).decode("ascii")

    def public_key(self) -> ec.EllipticCurvePublicKey | rsa.RSAPublicKey:
        """The log's key as a ``cryptography`` key object (ECDSA P-256 or RSA)."""
        key = serialization.load_der_public_key(self.key)
        if not isinstance(key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
            raise ConfigError(f"log {self.description!r}: key is neither ECDSA nor RSA")
        return key


@dataclass(frozen=True, slots=True)
class LogList:
    """A log list: its logs by id, where it came from and when it was published.

    ``timestamp`` is the list's ``log_list_timestamp`` (or, for a shipped list that
    lacks one, the date it was published, from ``data/SOURCES.md``); ``None`` when
    unknown, which :meth:`age_warning` reports like a stale list.
    """

    logs: tuple[Log, ...]
    source: str
    timestamp: dt.datetime | None = None
    version: str | None = None
    _by_id: dict[bytes, Log] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_id", {log.log_id: log for log in self.logs})

    def find(self, log_id: bytes) -> Log | None:
        """The log with this id, or ``None`` when the list does not know it."""
        return self._by_id.get(log_id)

    @property
    def operators(self) -> tuple[str, ...]:
        """The operators' names, in list order, each once."""
        return tuple(dict.fromkeys(log.operator for log in self.logs))

    def age(self, now: dt.datetime) -> dt.timedelta | None:
        """How old the list is at ``now`` (``None``: its date is unknown)."""
        return None if self.timestamp is None else now - self.timestamp

    def age_warning(self, now: dt.datetime, max_age: dt.timedelta) -> str | None:
        """Why the list is too old (older than ``max_age`` at ``now``, or undated), else None."""
        age = self.age(now)
        fix = "pass a newer v3 log list (--log-list FILE, ssl_context(ct_log_list=...))"
        if age is None:
            return f"CT log list {self.source} has no date, so its age is unknown; {fix}"
        if age > max_age:
            return (
                f"CT log list {self.source} is {age.days} days old "
                f"(published {self.timestamp:%Y-%m-%d}, threshold {max_age.days} days): logs "
                f"added or retired since are unknown to it; {fix}"
            )
        return None


def parse_time(text: Any, what: str, source: str) -> dt.datetime:
    """An RFC 3339 timestamp of the list (``2024-11-14T12:55:19Z``) as an aware UTC datetime."""
    if not isinstance(text, str):
        raise ConfigError(f"{what} must be an RFC 3339 timestamp, not {text!r}", source=source)
    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"{what} is not an RFC 3339 timestamp: {text!r}", source=source) from None
    if value.utcoffset() is None:
        raise ConfigError(f"{what} has no time zone: {text!r}", source=source)
    return value.astimezone(dt.timezone.utc)


def parse_log_list(
    data: Any, *, source: str = "<log list>", timestamp: dt.datetime | None = None
) -> LogList:
    """A :class:`LogList` from a parsed v3 log list (Google's or Apple's schema).

    Reads ``operators[].logs[]`` and ``operators[].tiled_logs[]``. ``timestamp``
    stands in for a list that has no ``log_list_timestamp``.
    """
    if not isinstance(data, Mapping) or not isinstance(data.get("operators"), list):
        raise ConfigError(
            "not a v3 CT log list: no 'operators' list",
            source=source,
            hint="pass a log list in the v3 JSON format (log_list.json, all_logs_list.json)",
        )
    if "log_list_timestamp" in data:
        timestamp = parse_time(data["log_list_timestamp"], "log_list_timestamp", source)
    version = data.get("version")
    logs: list[Log] = []
    seen: set[bytes] = set()
    for operator in data["operators"]:
        if not isinstance(operator, Mapping) or not isinstance(operator.get("name"), str):
            raise ConfigError("an operator has no name", source=source, key="operators")
        entries = [*operator.get("logs", []), *operator.get("tiled_logs", [])]
        for entry in entries:
            log = _log(entry, operator["name"], source)
            if log.log_id in seen:
                raise ConfigError(
                    f"log id {log.log_id_b64} appears twice", source=source, key="log_id"
                )
            seen.add(log.log_id)
            logs.append(log)
    return LogList(
        logs=tuple(logs),
        source=source,
        timestamp=timestamp,
        version=None if version is None else str(version),
    )


def _b64(value: Any, what: str, source: str) -> bytes:
    if not isinstance(value, str):
        raise ConfigError(f"{what} must be base64 text, not {value!r}", source=source)
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(f"{what} is not valid base64: {value!r}", source=source) from None


def _log(entry: Any, operator: str, source: str) -> Log:
    if not isinstance(entry, Mapping):
        raise ConfigError(f"a log of {operator!r} is not an object", source=source)
    description = entry.get("description")
    if not isinstance(description, str):
        raise ConfigError(f"a log of {operator!r} has no description", source=source)
    where = f"log {description!r}"
    key = _b64(entry.get("key"), f"{where}: key", source)
    log_id = _b64(entry.get("log_id"), f"{where}: log_id", source)
    try:
        serialization.load_der_public_key(key)
    except (ValueError, TypeError):
        raise ConfigError(
            f"{where}: key is not a DER SubjectPublicKeyInfo", source=source
        ) from None
    if hashlib.sha256(key).digest() != log_id:
        raise ConfigError(
            f"{where}: log_id is not the SHA-256 of its key",
            source=source,
            key="log_id",
            hint="the list is damaged or forged: use the list as its publisher signed it",
        )
    state, since = _state(entry.get("state"), where, source)
    interval = None
    if "temporal_interval" in entry:
        span = entry["temporal_interval"]
        if not isinstance(span, Mapping):
            raise ConfigError(f"{where}: temporal_interval is not an object", source=source)
        interval = (
            parse_time(span.get("start_inclusive"), f"{where}: start_inclusive", source),
            parse_time(span.get("end_exclusive"), f"{where}: end_exclusive", source),
        )
    url = entry.get("url", entry.get("submission_url"))
    return Log(
        log_id=log_id,
        key=key,
        description=description,
        operator=operator,
        state=state,
        state_since=since,
        interval=interval,
        url=url if isinstance(url, str) else None,
    )


def _state(value: Any, where: str, source: str) -> tuple[LogState | None, dt.datetime | None]:
    if value is None:
        return None, None
    if not isinstance(value, Mapping) or len(value) != 1:
        raise ConfigError(f"{where}: state must hold exactly one state", source=source)
    ((name, detail),) = value.items()
    if name not in STATES:
        raise ConfigError(
            f"{where}: unknown state {name!r}",
            source=source,
            hint=f"the v3 states are {', '.join(STATES)}",
        )
    since = None
    if isinstance(detail, Mapping) and "timestamp" in detail:
        since = parse_time(detail["timestamp"], f"{where}: state timestamp", source)
    if name == "retired" and since is None:
        raise ConfigError(f"{where}: a retired state needs its timestamp", source=source)
    state: LogState = name
    return state, since
