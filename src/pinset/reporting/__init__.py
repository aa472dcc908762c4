"""Pin-failure reports: the RFC 7469 / TrustKit report model and a background sender.

Core dependencies only (standard library and cryptography). A report counts as sent
only on a 2xx answer; other deliveries are retried by a :class:`RetryPolicy`::

    reporter = pinset.reporting.default_reporter(policy, app_version="2.4.1")
    tally = pinset.reporting.VerdictTally(policy, app_version="2.4.1")  # opt-in counts
    ctx = pinset.ssl_context(policy, observers=[reporter, tally])

Update events (a refused pin-set bundle, a failed update check) are posted by
:class:`UpdateEventReporter`, which :class:`pinset.updates.UpdateSource` makes by itself.
"""

from pinset.reporting._events import (
    EVENT_KEY,
    EVENT_KINDS,
    MAX_DETAIL,
    EventKind,
    UpdateEvent,
    UpdateEventReporter,
    UpdateEventStats,
    update_events_url,
)
from pinset.reporting._report import (
    REPORTED_REASONS,
    TRUSTKIT_RESULTS,
    FailureReport,
    der_to_pem,
    known_pin_text,
)
from pinset.reporting._retry import CollectorStatus, RetryPolicy
from pinset.reporting._sender import (
    BackgroundReporter,
    ReporterStats,
    Transport,
    default_reporter,
    is_loopback_host,
    urllib_transport,
)
from pinset.reporting._tally import TALLY_FIELDS, TallyStats, VerdictTally, tally_url

__all__ = [
    "EVENT_KEY",
    "EVENT_KINDS",
    "MAX_DETAIL",
    "REPORTED_REASONS",
    "TALLY_FIELDS",
    "TRUSTKIT_RESULTS",
    "BackgroundReporter",
    "CollectorStatus",
    "EventKind",
    "FailureReport",
    "ReporterStats",
    "RetryPolicy",
    "TallyStats",
    "Transport",
    "UpdateEvent",
    "UpdateEventReporter",
    "UpdateEventStats",
    "VerdictTally",
    "default_reporter",
    "der_to_pem",
    "is_loopback_host",
    "known_pin_text",
    "tally_url",
    "update_events_url",
    "urllib_transport",
]
