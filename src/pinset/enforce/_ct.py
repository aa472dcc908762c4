"""Certificate Transparency after the pin check: ``require-ct`` on a pinned context.

:func:`ct_verdict` runs on the verdict :func:`pinset.verdict.evaluate` reached, only
when the pins held (``pinned``) for a rule with ``require_ct``, or on a CT-only rule
(``ct-compliant``: no pins, CT alone decides): the embedded SCTs of
the verified chain's leaf are checked against the context's log list
(:func:`pinset.ct.check_chain`). A chain that fails gets the CT reason
(``ct-missing``, ``ct-insufficient``, ``ct-invalid``) and is refused, or allowed and
reported when the rule is report-only. A pin failure is reported as such: its
reason wins, and an expired pin set (``policy-expired``) switches CT off with the
pins, so an app that is never updated is not locked out by its old log list.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import warnings
from collections.abc import Callable

from pinset.ct import MAX_LIST_AGE, LogList, StaleLogListWarning, check_chain, load_log_list
from pinset.policy import Policy
from pinset.verdict import Reason, Verdict

__all__ = ["context_log_list", "ct_verdict"]

# The verdicts CT is checked after: the pins held, or a CT-only rule has none to check.
_CHECKED: frozenset[Reason] = frozenset({"pinned", "ct-compliant"})


def context_log_list(
    policy: Policy,
    given: LogList | str | os.PathLike[str] | None,
    clock: Callable[[], dt.datetime] | None,
) -> LogList | None:
    """The log list a context checks CT with: ``None`` when no rule of ``policy`` requires CT.

    ``given`` is ``ssl_context``'s ``ct_log_list`` (``None``: the default shipped
    list). A list older than :data:`pinset.ct.MAX_LIST_AGE` at ``clock()`` (``None``:
    the system clock), or undated,
    is used, and a :class:`StaleLogListWarning` says so: never silently.
    """
    if not any(rule.require_ct and not rule.exclude for rule in policy.rules):
        return None
    logs = load_log_list(given)
    now = clock() if clock is not None else None
    if now is None or now.utcoffset() is None:
        now = dt.datetime.now(dt.timezone.utc)
    warning = logs.age_warning(now, MAX_LIST_AGE)
    if warning is not None:
        warnings.warn(warning, StaleLogListWarning, stacklevel=3)
    return logs


def ct_verdict(verdict: Verdict, logs: LogList, now: dt.datetime) -> Verdict:
    """``verdict``, or its CT failure when the rule requires CT and the pins held."""
    rule = verdict.rule
    if rule is None or not rule.require_ct or verdict.reason not in _CHECKED:
        return verdict
    result = check_chain(verdict.chain, logs, now=now)
    if result.compliant or result.reason is None:
        return verdict
    return dataclasses.replace(
        verdict, allowed=not rule.enforce, reason=result.reason, error=result.detail
    )
