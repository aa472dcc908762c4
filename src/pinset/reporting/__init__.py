"""Pin-failure reports: the RFC 7469 / TrustKit report model and a background sender.

Core dependencies only (standard library and cryptography). A report counts as sent
only on a 2xx answer; other deliveries are retried by a :class:`RetryPolicy`::

    reporter = pinset.reporting.default_reporter(policy, app_version="2.4.1")
    tally = pinset.reporting.VerdictTally(policy, app_version="2.4.1")  # opt-in counts
    ctx = pinset.ssl_context(policy, observers=[reporter, tally])
"""

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
    "REPORTED_REASONS",
    "TALLY_FIELDS",
    "TRUSTKIT_RESULTS",
    "BackgroundReporter",
    "CollectorStatus",
    "FailureReport",
    "ReporterStats",
    "RetryPolicy",
    "TallyStats",
    "Transport",
    "VerdictTally",
    "default_reporter",
    "der_to_pem",
    "is_loopback_host",
    "known_pin_text",
    "tally_url",
    "urllib_transport",
]
