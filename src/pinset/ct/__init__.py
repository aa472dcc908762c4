"""Certificate Transparency: embedded SCTs verified against v3 log lists, and the CT policy.

A second layer beside the pins: a domain with ``require-ct = true`` needs its leaf
certificate to embed enough valid SCTs (signed certificate timestamps) from public
logs, so a misissued certificate cannot stay secret.

* :func:`load_log_list` reads a list: the default shipped one (``None``), a shipped
  name (:data:`SHIPPED`: ``google``, ``google-2024-11``, ``apple``) or a v3 JSON file;
  :func:`parse_log_list` builds one from parsed JSON.
* :func:`check_chain` verifies the SCTs of a *verified* chain's leaf at a given
  time and judges them (:class:`CTResult`); :func:`judge` is the pure policy
  decision over checked SCTs, :func:`required_scts` Chrome's table.
* :meth:`LogList.age_warning` says when a list is older than :data:`MAX_LIST_AGE`.

Only the SCTs embedded in the certificate are reachable through Python's ``ssl``
module; docs/ct.md says what that means.
"""

from __future__ import annotations

import datetime as dt

from pinset.ct._loglist import (
    STATES,
    Log,
    LogList,
    LogState,
    StaleLogListWarning,
    parse_log_list,
)
from pinset.ct._policy import REASONS, CTReason, CTResult, check_chain, judge, required_scts
from pinset.ct._sct import SCTCheck, Signature, embedded_scts, signed_data
from pinset.ct._shipped import (
    DEFAULT_LOG_LIST,
    SHIPPED,
    ShippedList,
    load_log_list,
    shipped_log_list,
)

__all__ = [
    "DEFAULT_LOG_LIST",
    "MAX_LIST_AGE",
    "REASONS",
    "SHIPPED",
    "STATES",
    "CTReason",
    "CTResult",
    "Log",
    "LogList",
    "LogState",
    "SCTCheck",
    "ShippedList",
    "Signature",
    "StaleLogListWarning",
    "check_chain",
    "embedded_scts",
    "judge",
    "load_log_list",
    "parse_log_list",
    "required_scts",
    "shipped_log_list",
    "signed_data",
]

# Chrome stops trusting its CT log list 70 days after it was published; pinset
# warns past the same age (and for a list with no date), and still enforces.
MAX_LIST_AGE = dt.timedelta(days=70)
