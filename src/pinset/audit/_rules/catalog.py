"""The audit rule catalogue: each rule's stable id, default severity, summary and fix.

The rule functions build their findings with :func:`finding`, so a finding
carries the severity and fix this table gives (the ones SARIF and the docs
show) unless it has a more specific one. Which function computes each id is in
:mod:`pinset.audit._rules`.
"""

from __future__ import annotations

from dataclasses import dataclass

from pinset.audit._model import Finding, Severity

__all__ = ["RULES", "Rule", "finding"]


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
        Rule("placeholder-pin", "warning",
             "placeholder digest, not counted as a backup (an error when every pin of a domain "
             "is one: no key matches, every connection is refused)",
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
        Rule("debug-overrides-live", "error",
             "a debuggable APK with <debug-overrides>: their trust anchors (and overridePins) "
             "apply on every install",
             "build the release with debuggable false, or move the overrides to a debug "
             "source set (src/debug/res/xml)"),
        Rule("debug-overrides", "info",
             "debug overrides present: honoured only by ssl_context(policy, debug=True), or by "
             "Android only when the app is debuggable",
             "keep them for debug builds; check each release artefact with pinset audit app.apk"),
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
        Rule("ct-only", "info",
             "a require-ct domain with no pins: any publicly trusted certificate that embeds "
             "enough valid SCTs passes",
             "keep it CT-only where pins are too rigid; pin your key and a backup for more"),
        Rule("ct-insufficient", "error",
             "a require-ct domain's live chain does not meet the CT policy (embedded SCTs)",
             "have the CA embed SCTs from enough logs (pinset ct check), or drop require-ct"),
        Rule("live-fetch-failed", "warning",
             "the live chain of a pinned domain could not be fetched",
             "check the host is reachable from CI, or give the chain with --chain HOST=FILE"),
    )
}  # fmt: skip


def finding(
    rule_id: str,
    message: str,
    *,
    severity: Severity | None = None,
    fix: str | None = None,
    domain: str | None = None,
    source: str | None = None,
    line: int | None = None,
) -> Finding:
    """A finding of rule ``rule_id``, with the rule's severity and fix unless given."""
    rule = RULES[rule_id]
    return Finding(
        rule_id,
        rule.severity if severity is None else severity,
        message,
        domain=domain,
        fix=rule.fix if fix is None else fix,
        source=source,
        line=line,
    )
