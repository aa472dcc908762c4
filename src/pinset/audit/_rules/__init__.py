"""Who computes each audit rule, and :func:`check`, which runs them all.

The ids, default severities and fixes are in :mod:`~pinset.audit._rules.catalog`.
Every rule is one small function in :mod:`~pinset.audit._rules.written`,
:mod:`~pinset.audit._rules.policy`, :mod:`~pinset.audit._rules.live` or
:mod:`~pinset.audit._rules.platform`. :func:`check` runs them all and adds what
the importer found, with one owner per rule id:

* **as written** (``AS_WRITTEN``): ``missing-backup-pin``, ``placeholder-pin``,
  ``non-canonical-pin``, ``no-expiration``. Computed by the audit for every
  format alike, from the policy and the pins as the importer recorded them
  (:class:`~pinset.formats.WrittenPins`: spellings, lines, whether the file
  accepts a single pin, how the format writes an expiration). ``pinset import``
  runs the same functions (:func:`imported_findings`).
* **from the importer** (``FROM_IMPORTER``): ``user-trust-anchors``,
  ``override-pins``, ``cleartext-permitted``. Only the importer sees trust
  anchors and cleartext settings as the platform inherits them, so its findings
  are taken as they are; the APK manifest's ``usesCleartextTraffic`` adds
  ``cleartext-permitted`` findings the importer cannot see.
* **auditor-owned**: every other id of :data:`RULES`, computed from the
  :class:`~pinset.policy.Policy`, the platform facts, the chains and the artefact;
  importer findings with these ids (``overlapping-rules``) are dropped in favour
  of the auditor's.

Importer ids the auditor does not know (``trustkit-report-only``,
``ats-subdomain-depth``, …) pass through unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from pinset.audit._model import Context, Finding, Subject
from pinset.audit._rules import live, platform, policy
from pinset.audit._rules.catalog import RULES, Rule
from pinset.audit._rules.written import written_findings, written_groups
from pinset.formats import Imported

__all__ = ["AS_WRITTEN", "FROM_IMPORTER", "RULES", "Rule", "check", "imported_findings"]


AS_WRITTEN = frozenset(
    {"missing-backup-pin", "placeholder-pin", "non-canonical-pin", "no-expiration"}
)
FROM_IMPORTER = frozenset({"user-trust-anchors", "override-pins", "cleartext-permitted"})

RuleFunction = Callable[[Subject, Context], Iterable[Finding]]

CHECKS: tuple[RuleFunction, ...] = (
    platform.config_error,
    platform.invalid_pin,
    policy.pin_set_expired,
    policy.pin_set_expiring,
    policy.include_subdomains_public_suffix,
    policy.overlapping_rules,
    policy.ct_only,
    policy.report_uri_cleartext,
    policy.report_uri_on_pinned_host,
    live.live_fetch_failed,
    live.no_live_match,
    live.no_offline_backup,
    live.leaf_pin_cert_expiring,
    live.root_only_pins,
    live.ct_insufficient,
    platform.debuggable_release,
    platform.debug_overrides,
    platform.cleartext_permitted,
    platform.pins_in_code_differ,
)


def imported_findings(imported: Imported) -> list[Finding]:
    """What reading a config found: the importer's findings and the as-written rules', in
    file order (each rule's findings after the importer's up to the line of the rule).

    What ``pinset import`` prints; it needs no chains, clock or artefact.
    """
    keyed = [(f.line or 0, [f]) for f in imported.findings]
    keyed += [(line or 0, group) for line, group in written_groups(imported)]
    keyed.sort(key=lambda item: item[0])  # stable: the importer's first on one line
    return [f for _, group in keyed for f in group]


def check(subject: Subject, context: Context) -> list[Finding]:
    """Every finding for ``subject``: the auditor's rules plus the importer's own, de-duplicated."""
    found: list[Finding] = []
    if subject.imported is not None:
        # The importer's own findings, less the ids the auditor computes itself.
        found = [f for f in subject.imported.findings if f.id not in RULES or f.id in FROM_IMPORTER]
        found.extend(written_findings(subject.imported))
    for rule in CHECKS:
        found.extend(rule(subject, context))
    return list(dict.fromkeys(found))
