"""From a parsed network security config to a :class:`Policy`, platform facts and findings.

Effective values follow Android's inheritance: a nested domain-config takes the
pin-set (as a block), trust anchors and cleartext setting of its parent when it
does not set them, and top-level domain-configs inherit trust anchors and
cleartext from base-config. Read as TrustKit (``trustkit=True``), the nearest
``trustkit-config`` decides enforcement (absent ``enforcePinning``: not enforced)
and the report URIs; only ``disableDefaultReportUri`` is inherited from a parent
that sets it, and without it reports also go to TrustKit's default report URI.
"""

from __future__ import annotations

from pinset.formats._android._nsc_tree import Config, Document, PinSet, ancestors
from pinset.formats._apple._trustkit_keys import DEFAULT_REPORT_URI as TRUSTKIT_DEFAULT_REPORT_URI
from pinset.formats._expiry import expiration_window
from pinset.formats._importing import import_rule, make_policy
from pinset.formats._model import (
    Finding,
    Imported,
    PlatformDomain,
    Severity,
    TrustAnchor,
    TrustKitSettings,
    WrittenPins,
)
from pinset.policy import DebugOverrides, DomainRule, Policy

__all__ = ["TRUSTKIT_DEFAULT_REPORT_URI", "to_imported"]


class _Mapper:
    def __init__(self, doc: Document, trustkit: bool) -> None:
        self.doc = doc
        self.trustkit = trustkit
        self.fmt = "trustkit-android" if trustkit else "android"
        self.findings: list[Finding] = list(doc.findings)
        self.written: list[WrittenPins] = []

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

    def requires_ct(self, config: Config) -> bool:
        """Whether Android requires CT for ``config``'s domains (``<certificateTransparency>``).

        Android's order, per config from the innermost out: the element's ``enabled``
        decides; else trust anchors ``user`` or inline (``@raw/...``) turn CT off; else the
        parent's (up to ``<base-config>``) decides. Nothing says: off, as on Android 16 (an
        app that targets Android 17 gets CT by default, which a file cannot say).
        """
        for node in [*ancestors(config), self.doc.base]:
            if node is None:
                continue
            if node.certificate_transparency is not None:
                return node.certificate_transparency
            if any(a.src != "system" for a in node.anchors or ()):
                return False
        return False

    def anchors(self, config: Config) -> tuple[TrustAnchor, ...]:
        value = self.inherited(config, "anchors")
        return value if isinstance(value, tuple) else ()

    def trustkit_settings(self, config: Config) -> TrustKitSettings | None:
        found = [c.trustkit for c in ancestors(config) if c.trustkit is not None]
        if not found:
            return None
        # TrustKit-Android's parser gives every <trustkit-config> its own enforcePinning (false
        # when absent) and its own report URIs, so only disableDefaultReportUri is inherited.
        enforce = found[0].enforce_pinning
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
                if pin_set is None and self.requires_ct(config) and not self.trustkit:
                    # No pins, CT required: CT alone guards the domain.
                    rules.append(DomainRule(name, include_subdomains=include, require_ct=True))
                elif pin_set is None:
                    unpinned.append((name, include, line))
                elif not pin_set.pins:
                    rules.append(DomainRule(name, include_subdomains=include, exclude=True))
                else:
                    rules.append(self.pinned_rule(config, name, include, line, pin_set, tk))
        rules.extend(self.carve_outs(rules, unpinned))
        policy = make_policy(rules, source=self.doc.source, debug_overrides=self.debug_overrides())
        platform = {"trustkit-config": self.doc.trustkit_seen}
        return Imported(
            policy=policy,
            format=self.fmt,
            source=self.doc.source,
            findings=tuple(self.findings),
            domains=tuple(domains),
            platform=platform,
            lines=lines,
            written=tuple(self.written),
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
        enforce, uris = self.trustkit_enforcement(name, line, tk) if self.trustkit else (True, ())
        if self.inherited(config, "cleartext") is True:
            self.finding(
                "cleartext-permitted",
                "error",
                f"{name} is pinned but cleartext HTTP is permitted for it",
                domain=name,
                fix='set cleartextTrafficPermitted="false" (on base-config too)',
                line=config.line,
            )
        rule, written = import_rule(
            source=self.doc.source,
            line=pin_set.line,
            # XML indentation around the digest is layout, not spelling.
            pin_texts=tuple(t.strip() for t in pin_set.texts),
            pin_lines=pin_set.lines,
            expiration_fix='add expiration="yyyy-MM-dd" to the <pin-set>',
            # Android 7.0+ enforces the pin-set whatever TrustKit's enforcePinning says.
            backup_needed=True,
            single_pin_accepted=pin_set.ignore_missing_backup,
            name=name,
            pins=pin_set.pins,
            include_subdomains=include,
            expiration=pin_set.expiration,
            enforce=enforce,
            report_uris=uris,
            require_ct=self.requires_ct(config) and not self.trustkit,
        )
        self.written.append(written)
        return rule

    def debug_overrides(self) -> DebugOverrides | None:
        """``<debug-overrides>`` as a policy section: each ``@raw/NAME`` becomes ``NAME.pem``.

        ``system`` is the trust a pinset context has anyway; ``user`` and ``wfa`` have
        no file to name (and their own findings): they stay platform facts in
        ``Imported.domains`` (scope ``debug``), not in the policy.
        """
        debug = self.doc.debug
        raw = [a for a in (debug.anchors or ()) if "raw/" in a.src] if debug else []
        if debug is None or not raw:
            return None
        overrides = {a.override_pins for a in raw}
        if len(overrides) > 1:
            self.finding(
                "debug-override-pins-mixed",
                "warning",
                '<debug-overrides> mixes overridePins="true" and "false"; a pinset policy has '
                "one override-pins for all its debug anchors: imported as false",
                fix="give every debug anchor the same overridePins",
                line=debug.line,
            )
        files = tuple(a.src.rpartition("/")[2] + ".pem" for a in raw)
        return DebugOverrides(files, override_pins=overrides == {True})

    def trustkit_enforcement(
        self, name: str, line: int, tk: TrustKitSettings | None
    ) -> tuple[bool, tuple[str, ...]]:
        """Whether TrustKit enforces ``name``'s pins, and where it reports, with findings."""
        at = tk.line if tk is not None else line
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
                line=at,
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
                line=at,
            )
        return enforce, uris

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
            if anchor.src == "wfa":
                # Before Android 14, XmlConfigSource throws on any src it does not know.
                self.finding(
                    "wfa-trust-anchors",
                    "warning",
                    f'{scope} config trusts src="wfa" (the Wi-Fi Alliance CAs): Android 14+ '
                    "reads it, and earlier versions refuse to load this config at all",
                    domain=domain,
                    fix="keep it only if the app's minSdkVersion is 34 or higher",
                    line=anchor.line,
                )
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
            # As Android decides it (user or inline anchors turn it off); None: nothing says.
            certificate_transparency=None if ct is None else self.requires_ct(config),
            trustkit=tk,
            # Android and TrustKit-Android read the date at the device's local midnight.
            expires_between=expiration_window(pin_set.expiration, "device")
            if pin_set is not None and pin_set.expiration is not None
            else None,
        )


def to_imported(doc: Document, *, trustkit: bool) -> Imported:
    """Map a parsed document to an :class:`Imported` (as Android, or as TrustKit reads it)."""
    return _Mapper(doc, trustkit).run()
