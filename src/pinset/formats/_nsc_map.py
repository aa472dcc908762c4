"""From a parsed network security config to a :class:`Policy`, platform facts and findings.

Effective values follow Android's inheritance: a nested domain-config takes the
pin-set (as a block), trust anchors and cleartext setting of its parent when it
does not set them, and top-level domain-configs inherit trust anchors and
cleartext from base-config. Read as TrustKit (``trustkit=True``), the
``trustkit-config`` settings inherit per attribute the same way, with TrustKit's
defaults: not enforced, and reports also go to TrustKit's default report URI
unless ``disableDefaultReportUri="true"``.
"""

from __future__ import annotations

from pinset.formats._importing import make_policy, make_rule
from pinset.formats._nsc import Config, Document, PinSet, ancestors
from pinset.formats._trustkit_keys import DEFAULT_REPORT_URI as TRUSTKIT_DEFAULT_REPORT_URI
from pinset.formats.model import (
    Finding,
    Imported,
    PlatformDomain,
    Severity,
    TrustAnchor,
    TrustKitSettings,
)
from pinset.pins import Pin, is_canonical_pin_text
from pinset.policy import DomainRule, Policy

__all__ = ["TRUSTKIT_DEFAULT_REPORT_URI", "is_dud_pin", "to_imported"]


def is_dud_pin(pin: Pin) -> bool:
    """A placeholder or a pattern no real hash produces (``ABCDEFABCDEF…``): not a backup."""
    # A real SHA-256 in base64 uses ~30 distinct characters; 8 or fewer is a typed-in dud.
    return pin.is_placeholder or len(set(pin.b64.rstrip("="))) <= 8


class _Mapper:
    def __init__(self, doc: Document, trustkit: bool) -> None:
        self.doc = doc
        self.trustkit = trustkit
        self.fmt = "trustkit-android" if trustkit else "android"
        self.findings: list[Finding] = []

    def finding(
        self,
        id: str,
        severity: Severity,
        message: str,
        *,
        domain: str | None = None,
        fix: str | None = None,
        line: int | None = None,
    ) -> None:
        self.findings.append(Finding(id, severity, message, domain, fix, self.doc.source, line))

    # -- effective values ---------------------------------------------------------

    def pin_set(self, config: Config) -> PinSet | None:
        return next((c.pin_set for c in ancestors(config) if c.pin_set is not None), None)

    def inherited(self, config: Config, attr: str) -> object:
        for node in [*ancestors(config), self.doc.base]:
            if node is not None and getattr(node, attr) is not None:
                return getattr(node, attr)
        return None

    def anchors(self, config: Config) -> tuple[TrustAnchor, ...]:
        value = self.inherited(config, "anchors")
        return value if isinstance(value, tuple) else ()

    def trustkit_settings(self, config: Config) -> TrustKitSettings | None:
        found = [c.trustkit for c in ancestors(config) if c.trustkit is not None]
        if not found:
            return None
        enforce = next((t.enforce_pinning for t in found if t.enforce_pinning is not None), None)
        disable = next(
            (
                t.disable_default_report_uri
                for t in found
                if t.disable_default_report_uri is not None
            ),
            None,
        )
        # TrustKit replaces the report URI set as a whole, like Android does for pin-sets.
        return TrustKitSettings(enforce, disable, found[0].report_uris, found[0].line)

    # -- mapping ------------------------------------------------------------------

    def run(self) -> Imported:
        rules: list[DomainRule] = []
        unpinned: list[tuple[str, bool, int]] = []
        lines: dict[str, int] = {}
        domains: list[PlatformDomain] = []
        for scope, config in (("base", self.doc.base), ("debug", self.doc.debug)):
            if config is not None:
                domains.append(self.scope_facts(config, scope))
        for config in self.doc.domains:
            self.config_findings(config)
            pin_set = self.pin_set(config)
            tk = self.trustkit_settings(config)
            for name, include, line in config.domains:
                lines[name] = line
                domains.append(self.domain_facts(config, name, include, line, pin_set, tk))
                if pin_set is None:
                    unpinned.append((name, include, line))
                elif not pin_set.pins:
                    rules.append(DomainRule(name, include_subdomains=include, exclude=True))
                elif all(p.is_placeholder for p in pin_set.pins):
                    self.placeholder_only(name, pin_set)
                else:
                    rules.append(self.pinned_rule(config, name, include, line, pin_set, tk))
        rules.extend(self.carve_outs(rules, unpinned))
        policy = make_policy(rules, source=self.doc.source)
        platform = {"trustkit-config": self.doc.trustkit_seen}
        return Imported(
            policy=policy,
            format=self.fmt,
            source=self.doc.source,
            findings=tuple(self.findings),
            domains=tuple(domains),
            platform=platform,
            lines=lines,
        )

    def pinned_rule(
        self,
        config: Config,
        name: str,
        include: bool,
        line: int,
        pin_set: PinSet,
        tk: TrustKitSettings | None,
    ) -> DomainRule:
        enforce = True
        uris: tuple[str, ...] = ()
        if self.trustkit:
            enforce = bool(tk is not None and tk.enforce_pinning)
            uris = tuple(tk.report_uris) if tk is not None else ()
            if tk is None or not tk.disable_default_report_uri:
                uris = (*uris, TRUSTKIT_DEFAULT_REPORT_URI)
                self.finding(
                    "trustkit-default-report-uri",
                    "info",
                    f"{name}: TrustKit also sends pin-failure reports to its default "
                    f"collector {TRUSTKIT_DEFAULT_REPORT_URI}",
                    domain=name,
                    fix='set disableDefaultReportUri="true" on <trustkit-config>',
                    line=tk.line if tk is not None else line,
                )
            if not enforce:
                self.finding(
                    "trustkit-report-only",
                    "warning",
                    f"{name}: TrustKit does not enforce these pins (enforcePinning is "
                    f"{'false' if tk is not None and tk.enforce_pinning is False else 'unset'}); "
                    "Android 7.0+ still enforces the pin-set itself",
                    domain=name,
                    fix='set enforcePinning="true" once reports show the pins match',
                    line=tk.line if tk is not None else line,
                )
        # Distinct pins: a pin written twice is still one key (the policy counts the same way).
        real = list(dict.fromkeys(p for p in pin_set.pins if not is_dud_pin(p)))
        for pin, text, pin_line in zip(pin_set.pins, pin_set.texts, pin_set.lines, strict=True):
            if is_dud_pin(pin):
                self.finding(
                    "placeholder-pin",
                    "warning",
                    f"{name}: {text.strip()} is a placeholder, not a backup key's pin",
                    domain=name,
                    fix="replace it with the pin of an offline backup key (pinset keygen)",
                    line=pin_line,
                )
            if not is_canonical_pin_text(text):
                self.finding(
                    "non-canonical-pin",
                    "warning",
                    f"{name}: pin {text!r} is not padded standard base64 ({pin.b64})",
                    domain=name,
                    fix=f"write {pin.b64}",
                    line=pin_line,
                )
        single = len(real) < 2 and (enforce or pin_set.ignore_missing_backup)
        if len(real) < 2:
            accepted = pin_set.ignore_missing_backup
            self.finding(
                "missing-backup-pin",
                "warning" if accepted else "error",
                f"{name}: {len(real)} real pin{'s' if len(real) != 1 else ''}; a lost or "
                "changed key locks every installed app out"
                + (' (tools:ignore="MissingBackupPin" accepts it)' if accepted else ""),
                domain=name,
                fix="add the pin of an offline backup key (pinset keygen)",
                line=pin_set.line,
            )
        if pin_set.expiration is None:
            self.finding(
                "no-expiration",
                "info",
                f"{name}: the pin-set never expires; a lost key bricks installs that never update",
                domain=name,
                fix='add expiration="yyyy-MM-dd" to the <pin-set>',
                line=pin_set.line,
            )
        if self.inherited(config, "cleartext") is True:
            self.finding(
                "cleartext-permitted",
                "error",
                f"{name} is pinned but cleartext HTTP is permitted for it",
                domain=name,
                fix='set cleartextTrafficPermitted="false" (on base-config too)',
                line=config.line,
            )
        return make_rule(
            source=self.doc.source,
            line=pin_set.line,
            name=name,
            pins=pin_set.pins,
            include_subdomains=include,
            expiration=pin_set.expiration,
            enforce=enforce,
            report_uris=uris,
            allow_single_pin=single or pin_set.ignore_missing_backup,
        )

    def placeholder_only(self, name: str, pin_set: PinSet) -> None:
        # Android accepts a pin-set of placeholders (it then refuses every connection to the
        # domain); a pinset rule needs one real pin, so the domain stays out of the policy.
        self.finding(
            "placeholder-pin",
            "error",
            f"{name}: every pin is a placeholder, so no server key can match and every "
            "connection fails; pinset cannot express this and left the domain out of the policy",
            domain=name,
            fix="pin the current key (pinset pin HOST) and an offline backup key",
            line=pin_set.line,
        )

    def carve_outs(
        self, rules: list[DomainRule], unpinned: list[tuple[str, bool, int]]
    ) -> list[DomainRule]:
        """Exclusions for unpinned domains that a pinned rule would otherwise cover."""
        if not unpinned:
            return []
        pinned = Policy(rules=tuple(rules))
        extra = []
        for name, include, line in unpinned:
            cover = pinned.match(name)
            if cover is None or cover.exclude:
                continue
            extra.append(DomainRule(name, include_subdomains=include, exclude=True))
            self.finding(
                "overlapping-rules",
                "info",
                f"{name} has its own domain-config without a pin-set, so it is not pinned "
                f"although {cover.name} includes subdomains",
                domain=name,
                fix=f"nest it inside {cover.name}'s domain-config if it should keep the pins",
                line=line,
            )
        return extra

    def config_findings(self, config: Config) -> None:
        first = config.domains[0][0]
        self.anchor_findings(config, "domain", first)
        if config.enforce_attr_line is not None:
            self.finding(
                "ignored-attribute",
                "warning",
                f"{first}: enforcePinning on <domain-config> is read by neither Android nor "
                "TrustKit",
                domain=first,
                fix="move enforcePinning to the <trustkit-config> element",
                line=config.enforce_attr_line,
            )
        if config.trustkit is not None and not self.trustkit:
            self.finding(
                "trustkit-config",
                "info",
                f"{first}: Android ignores <trustkit-config>; only TrustKit reads it",
                domain=first,
                fix="import with --format trustkit-android to see TrustKit's view",
                line=config.trustkit.line,
            )

    def anchor_findings(self, config: Config, scope: str, domain: str | None) -> None:
        for anchor in config.anchors or ():
            if anchor.src == "user":
                debug = scope == "debug"
                self.finding(
                    "user-trust-anchors",
                    "info" if debug else "error",
                    f"{scope} config trusts user-installed CAs"
                    + (" in debuggable builds" if debug else ""),
                    domain=domain,
                    fix="trust user CAs only inside <debug-overrides>",
                    line=anchor.line,
                )
            if anchor.override_pins and scope != "debug":
                self.finding(
                    "override-pins",
                    "error",
                    f'trust anchor {anchor.src!r} has overridePins="true": it bypasses the pins',
                    domain=domain,
                    fix='remove overridePins="true" (keep it for debug-overrides only)',
                    line=anchor.line,
                )

    def scope_facts(self, config: Config, scope: str) -> PlatformDomain:
        self.anchor_findings(config, scope, None)
        return PlatformDomain(
            name=None,
            scope="base" if scope == "base" else "debug",
            trust_anchors=config.anchors or (),
            cleartext_permitted=config.cleartext,
            line=config.line,
            certificate_transparency=config.certificate_transparency,
        )

    def domain_facts(
        self,
        config: Config,
        name: str,
        include: bool,
        line: int,
        pin_set: PinSet | None,
        tk: TrustKitSettings | None,
    ) -> PlatformDomain:
        cleartext = self.inherited(config, "cleartext")
        ct = self.inherited(config, "certificate_transparency")
        return PlatformDomain(
            name=name,
            scope="domain",
            include_subdomains=include,
            trust_anchors=self.anchors(config),
            cleartext_permitted=cleartext if isinstance(cleartext, bool) else None,
            pin_texts=tuple(t.strip() for t in pin_set.texts) if pin_set else (),
            expiration_text=pin_set.expiration_text if pin_set else None,
            line=line,
            certificate_transparency=ct if isinstance(ct, bool) else None,
            trustkit=tk,
        )


def to_imported(doc: Document, *, trustkit: bool) -> Imported:
    """Map a parsed document to an :class:`Imported` (as Android, or as TrustKit reads it)."""
    return _Mapper(doc, trustkit).run()
