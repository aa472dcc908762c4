"""Who computes each audit rule, and :func:`check`, which runs them all.

The ids, default severities and fixes are in :mod:`~pinset.audit._rules.catalog`.
Every rule is one small function ``(subject, context) -> findings`` in
:mod:`~pinset.audit._rules.policy`, :mod:`~pinset.audit._rules.live` or
:mod:`~pinset.audit._rules.platform`. :func:`check` runs them all and merges
what the importer already found, with one owner per rule id:

* **as written** (``AS_WRITTEN``): ``missing-backup-pin``, ``placeholder-pin``,
  ``non-canonical-pin``, ``no-expiration``, ``user-trust-anchors``,
  ``override-pins``, ``cleartext-permitted``. Only an importer sees what a
  platform file says literally (``tools:ignore="MissingBackupPin"``, a pin's
  spelling, trust anchors), so for platform formats the importer's findings are taken as they
  are. Native pinset policies carry no importer findings; there the auditor
  computes these ids from the policy and the file text. The one adjustment:
  ``missing-backup-pin`` is an error unless the config *says* it accepts a
  single pin; only pinset (``allow-single-pin``) and Android
  (``tools:ignore``) can say so, so from every other format it is an error.
  The APK manifest's ``usesCleartextTraffic`` adds ``cleartext-permitted``
  findings the importer cannot see.
* **auditor-owned**: every other id of :data:`RULES`. The auditor computes them
  from the :class:`~pinset.policy.Policy`, the platform facts, the chains and
  the artefact; importer findings with these ids (``overlapping-rules``) are
  dropped in favour of the auditor's.

Importer ids the auditor does not know (``trustkit-report-only``,
``ats-subdomain-depth``, …) pass through unchanged.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable

from pinset.audit._model import Context, Finding, Subject
from pinset.audit._rules import live, platform, policy
from pinset.audit._rules.catalog import RULES, Rule

__all__ = ["AS_WRITTEN", "RULES", "Rule", "check"]


AS_WRITTEN = frozenset(
    {
        "missing-backup-pin",
        "placeholder-pin",
        "non-canonical-pin",
        "no-expiration",
        "user-trust-anchors",
        "override-pins",
        "cleartext-permitted",
    }
)
# Formats that can say "a single pin is accepted" (Android: tools:ignore="MissingBackupPin").
_SINGLE_PIN_SWITCH = frozenset({"pinset", "android", "trustkit-android"})

RuleFunction = Callable[[Subject, Context], Iterable[Finding]]

CHECKS: tuple[RuleFunction, ...] = (
    platform.config_error,
    platform.invalid_pin,
    policy.missing_backup_pin,
    policy.placeholder_pin,
    policy.non_canonical_pin,
    policy.no_expiration,
    policy.pin_set_expired,
    policy.pin_set_expiring,
    policy.include_subdomains_public_suffix,
    policy.overlapping_rules,
    policy.report_uri_cleartext,
    policy.report_uri_on_pinned_host,
    live.live_fetch_failed,
    live.no_live_match,
    live.no_offline_backup,
    live.leaf_pin_cert_expiring,
    live.root_only_pins,
    platform.debuggable_release,
    platform.cleartext_permitted,
    platform.pins_in_code_differ,
)


def _from_importer(subject: Subject) -> list[Finding]:
    if subject.imported is None:
        return []
    kept = []
    for finding in subject.imported.findings:
        if finding.id in RULES and finding.id not in AS_WRITTEN:
            continue  # the auditor computes this id itself
        if finding.id == "missing-backup-pin" and subject.format not in _SINGLE_PIN_SWITCH:
            finding = dataclasses.replace(finding, severity="error")
        kept.append(finding)
    return kept


def check(subject: Subject, context: Context) -> list[Finding]:
    """Every finding for ``subject``: the auditor's rules plus the importer's own, de-duplicated."""
    found = _from_importer(subject)
    for rule in CHECKS:
        found.extend(rule(subject, context))
    return list(dict.fromkeys(found))
