"""The audit rules: stable ids, default severities, one-line fixes, and who computes each.

Every rule is one small function ``(subject, context) -> findings`` in
:mod:`~pinset.audit.rules_policy`, :mod:`~pinset.audit.rules_live` or
:mod:`~pinset.audit.rules_platform`. :func:`check` runs them all and merges
what the importer already found, with one owner per rule id:

* **as written** (``AS_WRITTEN``): ``missing-backup-pin``, ``placeholder-pin``,
  ``non-canonical-pin``, ``no-expiration``, ``user-trust-anchors``,
  ``override-pins``, ``cleartext-permitted``. Only an importer sees what a
  platform file says literally (``tools:ignore="MissingBackupPin"``, a pin's
  spelling, placeholder-only pin-sets that never reach the policy, trust
  anchors), so for platform formats the importer's findings are taken as they
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
from dataclasses import dataclass

from pinset.audit import rules_live, rules_platform, rules_policy
from pinset.audit.model import Context, Finding, Severity, Subject

__all__ = ["AS_WRITTEN", "RULES", "Rule", "check"]


@dataclass(frozen=True, slots=True)
class Rule:
    """One audit rule: its id, default severity, what it means and how to fix it."""

    id: str
    severity: Severity
    summary: str
    fix: str


RULES: dict[str, Rule] = {
    r.id: r
    for r in (
        Rule("invalid-pin", "error", "not a valid SHA-256 SPKI pin",
             "replace it with 'sha256/' + base64 of the key's SPKI digest (pinset pin FILE)"),
        Rule("missing-backup-pin", "error",
             "enforced domain with fewer than two distinct real pins (warning when a single pin "
             "is explicitly accepted)", "add the pin of an offline backup key (pinset keygen)"),
        Rule("placeholder-pin", "warning", "placeholder digest, not counted as a backup",
             "replace it with the pin of a real offline backup key (pinset keygen)"),
        Rule("non-canonical-pin", "warning", "unpadded or whitespace-laden base64",
             "write the pin as 'sha256/' + 44 characters of padded standard base64"),
        Rule("no-live-match", "error",
             "the live (or supplied) chain matches none of the pins: users would be locked out",
             "ship the pin of the served key before deploying it, or serve a pinned key"),
        Rule("no-offline-backup", "warning",
             "every pin is in the live chain: no backup key outside it",
             "add the pin of an offline backup key kept off the server (pinset keygen)"),
        Rule("pin-set-expired", "error",
             "the expiration date has passed: the domain is effectively unpinned",
             "ship fresh pins with a new expiration date, or remove the rule"),
        Rule("pin-set-expiring", "warning", "the pins expire within --min-days",
             "ship a release with a later expiration date before this one passes"),
        Rule("no-expiration", "info", "no expiration date: a lost key bricks old installs",
             "set an expiration date a few months past the app's update cycle"),
        Rule("leaf-pin-cert-expiring", "warning",
             "only leaf keys pinned and the leaf certificate expires within --min-days",
             "renew with the same key, or ship the new leaf's pin before the renewal"),
        Rule("root-only-pins", "warning",
             "only root CA keys pinned: little gain over the system store",
             "pin your own leaf or intermediate key, plus an offline backup key"),
        Rule("include-subdomains-public-suffix", "error",
             "include-subdomains on a public suffix (com, co.uk, appspot.com)",
             "pin your registered domain, not the public suffix above it"),
        Rule("overlapping-rules", "info", "a subdomain rule overrides a parent's pins",
             "check the subdomain should not use the parent's pins (or nest it)"),
        Rule("user-trust-anchors", "error",
             "user-installed CAs trusted (info inside debug-overrides)",
             "trust user CAs only inside <debug-overrides>"),
        Rule("override-pins", "error",
             "a trust anchor with overridePins=\"true\" outside debug-overrides",
             "remove overridePins=\"true\" (keep it for debug-overrides only)"),
        Rule("debuggable-release", "warning", "the APK is debuggable, so debug-overrides are live",
             "build the release with debuggable false (the release build type)"),
        Rule("cleartext-permitted", "error", "cleartext traffic allowed for a pinned domain",
             "set cleartextTrafficPermitted=\"false\" / usesCleartextTraffic=\"false\""),
        Rule("report-uri-on-pinned-host", "warning",
             "reports would travel through the failing connection",
             "send reports to a host that is not pinned by this policy"),
        Rule("report-uri-cleartext", "warning", "http:// report URI",
             "use an https:// report URI"),
        Rule("pins-in-code-differ", "warning",
             "sha256/ pins in the APK code that no config domain carries, or the reverse",
             "keep one source of pins: generate both from pinset.toml (pinset export)"),
        Rule("config-error", "error", "the config does not load",
             "fix the config so that it loads (pinset import shows the same error)"),
        Rule("live-fetch-failed", "warning",
             "the live chain of a pinned domain could not be fetched",
             "check the host is reachable from CI, or give the chain with --chain HOST=FILE"),
    )
}  # fmt: skip

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
    rules_platform.config_error,
    rules_platform.invalid_pin,
    rules_policy.missing_backup_pin,
    rules_policy.placeholder_pin,
    rules_policy.non_canonical_pin,
    rules_policy.no_expiration,
    rules_policy.pin_set_expired,
    rules_policy.pin_set_expiring,
    rules_policy.include_subdomains_public_suffix,
    rules_policy.overlapping_rules,
    rules_policy.report_uri_cleartext,
    rules_policy.report_uri_on_pinned_host,
    rules_live.live_fetch_failed,
    rules_live.no_live_match,
    rules_live.no_offline_backup,
    rules_live.leaf_pin_cert_expiring,
    rules_live.root_only_pins,
    rules_platform.debuggable_release,
    rules_platform.cleartext_permitted,
    rules_platform.pins_in_code_differ,
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
