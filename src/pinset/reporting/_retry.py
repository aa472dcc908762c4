"""When to try a failed report delivery again: statuses, Retry-After, backoff with jitter.

Pure: no clock, no randomness, no I/O. The sender passes the time and the jitter in.
"""

from __future__ import annotations

import datetime as dt
import email.utils
from dataclasses import dataclass

__all__ = [
    "CollectorStatus",
    "RetryPolicy",
    "is_retryable_status",
    "parse_http_date",
    "retry_after_seconds",
]

# A collector that is overloaded, restarting or behind a failing proxy answers these, and
# answers differently a moment later. Any other status (400, 413, a 3xx that is not followed)
# is the collector's considered refusal of this report: sending it again changes nothing.
_RETRYABLE = frozenset({408, 425, 429, 500, 502, 503, 504})
# RFC 9110 §10.2.3 lets any response carry Retry-After; the issue asks that it be honoured
# where it means "come back later": rate limiting and temporary unavailability.
_HONOURS_RETRY_AFTER = frozenset({429, 503})


class CollectorStatus(int):
    """An HTTP status that compares as the plain ``int`` and may carry ``Retry-After``.

    ``retry_after`` is in seconds (``None``: the answer had none, or an unreadable one).
    A :data:`~pinset.reporting.Transport` may return a plain ``int`` instead.
    """

    retry_after: float | None

    def __new__(cls, status: int, retry_after: float | None = None) -> CollectorStatus:
        self = super().__new__(cls, status)
        self.retry_after = retry_after
        return self

    def __repr__(self) -> str:
        return f"CollectorStatus({int(self)}, retry_after={self.retry_after!r})"


def is_retryable_status(status: int) -> bool:
    """Whether a delivery answered with ``status`` may succeed if sent again later."""
    return status in _RETRYABLE


def retry_after_seconds(value: str | None, *, now: dt.datetime) -> float | None:
    """Seconds to wait from a ``Retry-After`` value: delta-seconds or an HTTP-date.

    ``now`` is the moment the date is measured from (best: the response's own ``Date``,
    so that the client's clock skew does not matter). A date in the past is 0 seconds;
    anything unreadable is ``None``.
    """
    if value is None:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        return float(int(text))
    when = parse_http_date(text)
    return None if when is None else max(0.0, (when - now).total_seconds())


def parse_http_date(text: str) -> dt.datetime | None:
    """An HTTP-date (RFC 9110 §5.6.7, the obsolete forms included) in UTC, or ``None``."""
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    # RFC 9110 dates are GMT; "-0000" (no zone) parses naive and means the same.
    return when.replace(tzinfo=dt.timezone.utc) if when.tzinfo is None else when


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how late a failed delivery is tried again.

    ``attempts`` counts every try, the first included (1 means never retry). Before try
    *n* + 1 the sender waits ``min(max_delay, base_delay * 2**(n-1))`` times a jitter
    factor between 0.5 and 1, so that clients failing together do not come back together;
    for a 429 or 503 it waits at least the collector's ``Retry-After``. A Retry-After over
    ``max_retry_after`` ends the delivery: the report would hold a queue slot for longer
    than a failure report is worth.
    """

    attempts: int = 8
    base_delay: float = 5.0
    max_delay: float = 300.0
    max_retry_after: float = 900.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("RetryPolicy.attempts must be at least 1")
        if not 0 < self.base_delay <= self.max_delay:
            raise ValueError("RetryPolicy needs 0 < base_delay <= max_delay")
        if self.max_retry_after < 0:
            raise ValueError("RetryPolicy.max_retry_after must not be negative")

    def delay(
        self, attempt: int, *, status: int | None, retry_after: float | None, jitter: float
    ) -> float | None:
        """Seconds to wait after failed try number ``attempt`` (1-based); ``None``: give up.

        ``status`` is the answer (``None`` when the collector could not be reached) and
        ``jitter`` a number in [0, 1).
        """
        if attempt >= self.attempts:
            return None
        if status is not None and not is_retryable_status(status):
            return None
        backoff = min(self.max_delay, self.base_delay * 2.0 ** (attempt - 1))
        floor = 0.0
        if status in _HONOURS_RETRY_AFTER and retry_after is not None:
            if retry_after > self.max_retry_after:
                return None
            floor = retry_after
        spread = min(max(jitter, 0.0), 1.0) * backoff / 2
        return max(floor, backoff / 2) + spread
