"""Reading Android network security config XML into a tree of configs, strictly.

Shared by :mod:`pinset.formats._android` and :mod:`pinset.formats._android.trustkit_android`
(the same XML, read as the platform or as TrustKit sees it). :func:`load`
parses, refuses what Android's ``XmlConfigSource`` refuses, and skips what it
skips (unknown elements and attributes, stray text) with a warning finding and
a did-you-mean, then hands the tree to :mod:`pinset.formats._android._nsc_map`.
"""

from __future__ import annotations

import datetime as dt
import re

from pinset._dates import parse_iso_date
from pinset.errors import ConfigError, PinsetError
from pinset.formats._android._nsc_tree import Config, Document, Kind, PinSet, ancestors
from pinset.formats._importing import did_you_mean
from pinset.formats._model import Finding, Imported, TrustAnchor, TrustKitSettings
from pinset.formats._xml import Element, parse
from pinset.hosts import canonical_host
from pinset.pins import Pin

__all__ = ["MAX_NESTING", "Config", "Document", "PinSet", "ancestors", "load", "read"]

ROOT = "network-security-config"
TOOLS_NS = "http://schemas.android.com/tools"

_CONFIG_TAGS: dict[Kind, str] = {
    "base": "base-config",
    "domain": "domain-config",
    "debug": "debug-overrides",
}
_CONFIG_ATTRS = ("cleartextTrafficPermitted", "hstsEnforced")
_CONFIG_CHILDREN = {
    "base": ("trust-anchors", "certificateTransparency"),
    "debug": ("trust-anchors", "certificateTransparency"),
    "domain": (
        "domain",
        "pin-set",
        "trust-anchors",
        "domain-config",
        "certificateTransparency",
        "trustkit-config",
    ),
}
_BASE64_TEXT = re.compile(r"[A-Za-z0-9+/=\s]+")
# How deep <domain-config> elements may nest; AOSP's own tests nest three levels.
MAX_NESTING = 32
_PLACEHOLDER = re.compile(r"\$\{[^}]*\}?")


def load(data: str | bytes, *, source: str | None, trustkit: bool) -> Imported:
    """Parse and map to an :class:`Imported` (``trustkit``: read it the way TrustKit does)."""
    from pinset.formats._android._nsc_map import to_imported

    return to_imported(read(data, source=source), trustkit=trustkit)


def read(data: str | bytes, *, source: str | None = None) -> Document:
    """Parse network security config XML into a :class:`Document`, or raise :class:`ConfigError`."""
    root = parse(data, source=source)
    reader = _Reader(source)
    doc = reader.document(root)
    doc.findings.extend(reader.findings)
    return doc


class _Reader:
    def __init__(self, source: str | None) -> None:
        self.source = source
        self.seen_domains: dict[str, int] = {}
        self.findings: list[Finding] = []

    # -- errors -------------------------------------------------------------------

    def error(
        self, message: str, el: Element, *, attr: str | None = None, hint: str | None = None
    ) -> ConfigError:
        line, column = el.attr_position(attr) if attr else (el.line, el.column)
        key = attr if attr else el.local
        return ConfigError(
            message, source=self.source, line=line, column=column, key=key, hint=hint
        )

    def skipped(
        self, id: str, message: str, el: Element, *, attr: str | None = None, hint: str
    ) -> None:
        """Record what the platform's parser silently skips: a warning, never a refusal."""
        line, column = el.attr_position(attr) if attr else (el.line, el.column)
        self.findings.append(Finding(id, "warning", message, None, hint, self.source, line, column))

    def check_attrs(self, el: Element, known: tuple[str, ...]) -> None:
        for name, value in el.attrs.items():
            if name.startswith("{"):
                continue  # another namespace (tools:ignore …): not the platform's business
            if name not in known:
                # Android and TrustKit read attributes by name; any other one is skipped.
                self.skipped(
                    "ignored-attribute",
                    f"unknown attribute {name!r} on <{el.local}> is ignored",
                    el,
                    attr=name,
                    hint=did_you_mean(name, known, "attributes"),
                )
                continue
            self.no_placeholder(value, el, attr=name)

    def no_placeholder(self, value: str, el: Element, *, attr: str | None = None) -> None:
        match = _PLACEHOLDER.search(value)
        if match:
            where = f"attribute {attr!r} of <{el.local}>" if attr else f"<{el.local}>"
            raise self.error(
                f"unresolved placeholder {match.group(0)!r} in {where}",
                el,
                attr=attr,
                hint=(
                    "Gradle substitutes ${…} placeholders in the manifest only, never in res/xml: "
                    "write the literal value (use a debug source set for per-build values)"
                ),
            )

    def boolean(self, el: Element, attr: str) -> bool | None:
        value = el.attrs.get(attr)
        if value is None:
            return None
        self.no_placeholder(value, el, attr=attr)
        if value.strip() in ("true", "false"):
            return value.strip() == "true"
        raise self.error(
            f"attribute {attr!r} of <{el.local}> must be true or false, not {value!r}",
            el,
            attr=attr,
            hint=f'write {attr}="true" or {attr}="false"',
        )

    def java_boolean(self, el: Element, attr: str) -> bool | None:
        """The attribute as TrustKit-Android reads it (``Boolean.parseBoolean``); None: absent."""
        value = el.attrs.get(attr)
        if value is None:
            return None
        self.no_placeholder(value, el, attr=attr)
        effective = value.lower() == "true"
        if value not in ("true", "false"):
            self.skipped(
                "ignored-attribute",
                f"TrustKit reads {attr}={value!r} on <{el.local}> as {str(effective).lower()}",
                el,
                attr=attr,
                hint=f'write {attr}="true" or {attr}="false"',
            )
        return effective

    def no_text(self, el: Element) -> None:
        if el.text.strip():
            self.skipped(
                "ignored-text",
                f"<{el.local}> contains text {el.text.strip()[:40]!r}, which is ignored",
                el,
                hint=f"<{el.local}> holds only elements; remove the text or put it in a comment",
            )

    def unknown_child(self, child: Element, parent: Element, known: tuple[str, ...]) -> None:
        hint = did_you_mean(child.local, known, "elements")
        if child.local == "certificates":
            hint = "wrap <certificates> in <trust-anchors>"
        elif child.local in ("domain", "pin-set", "domain-config", "trustkit-config"):
            hint = f"<{child.local}> is only read in a <domain-config>"
        # XmlConfigSource skips an element it does not expect here, with all it contains.
        self.skipped(
            "ignored-element",
            f"<{child.local}> is not read in <{parent.local}>: it is ignored with its contents",
            child,
            hint=hint,
        )

    # -- structure ----------------------------------------------------------------

    def document(self, root: Element) -> Document:
        if root.tag != ROOT:
            raise self.error(
                f"the root element is <{root.local}>, not <{ROOT}>",
                root,
                hint=f"a network security config starts with <{ROOT}>",
            )
        self.check_attrs(root, ())
        self.no_text(root)
        doc = Document(self.source)
        for child in root.children:
            kind: Kind | None = next(
                (k for k, tag in _CONFIG_TAGS.items() if tag == child.tag), None
            )
            if kind is None:
                self.unknown_child(child, root, tuple(_CONFIG_TAGS.values()))
                continue
            if kind == "base" and doc.base is not None:
                raise self.error(
                    "only one <base-config> is allowed",
                    child,
                    hint="merge the two base-config elements",
                )
            if kind == "debug" and doc.debug is not None:
                raise self.error(
                    "only one <debug-overrides> is allowed",
                    child,
                    hint="merge the two debug-overrides elements",
                )
            config = self.config(child, kind, None, doc)
            if kind == "base":
                doc.base = config
            elif kind == "debug":
                doc.debug = config
        return doc

    def config(self, el: Element, kind: Kind, parent: Config | None, doc: Document) -> Config:
        config = self.config_attrs(el, kind, parent)
        if kind == "domain":
            doc.domains.append(config)
        allowed = _CONFIG_CHILDREN[kind]
        for child in el.children:
            if kind != "domain" and child.tag in ("domain", "pin-set", "domain-config"):
                raise self.error(
                    f"<{child.local}> is not allowed in <{el.local}>",
                    child,
                    hint=f"<{child.local}> is only allowed in a <domain-config>",
                )
            if child.tag not in allowed:
                self.unknown_child(child, el, allowed)
                continue
            self.config_child(config, child, doc)
        if kind == "domain" and not config.domains:
            raise self.error(
                "<domain-config> without a <domain>",
                el,
                hint='add <domain includeSubdomains="true">example.com</domain>',
            )
        return config

    def config_attrs(self, el: Element, kind: Kind, parent: Config | None) -> Config:
        """A config with what its own attributes set (nesting depth checked)."""
        depth = sum(1 for _ in ancestors(parent))
        if depth >= MAX_NESTING:
            # Reading is recursive; a config nested thousands deep would overflow the stack.
            raise self.error(
                f"<domain-config> is nested more than {MAX_NESTING} levels deep",
                el,
                hint="flatten the nesting: real configs nest a few levels at most",
            )
        known = _CONFIG_ATTRS + (("enforcePinning",) if kind == "domain" else ())
        self.check_attrs(el, known)
        self.no_text(el)
        config = Config(kind=kind, line=el.line, parent=parent)
        config.cleartext = self.boolean(el, "cleartextTrafficPermitted")
        self.boolean(el, "hstsEnforced")
        if "enforcePinning" in el.attrs:
            self.boolean(el, "enforcePinning")
            config.enforce_attr_line = el.attr_position("enforcePinning")[0]
        return config

    def config_child(self, config: Config, child: Element, doc: Document) -> None:
        """Read one allowed child element of a config into it."""
        if child.tag == "domain":
            config.domains.append(self.domain(child))
        elif child.tag == "pin-set":
            self.only_one(config.pin_set, child, "merge the pins into one <pin-set>")
            config.pin_set = self.pin_set(child)
        elif child.tag == "trust-anchors":
            self.only_one(
                config.anchors, child, "merge the <certificates> into one <trust-anchors>"
            )
            config.anchors = self.anchors(child, debug=config.kind == "debug")
            config.anchors_line = child.line
        elif child.tag == "certificateTransparency":
            self.check_attrs(child, ("enabled",))
            self.no_text(child)
            config.certificate_transparency = self.boolean(child, "enabled")
        elif child.tag == "trustkit-config":
            self.only_one(config.trustkit, child, None)
            config.trustkit = self.trustkit(child)
            doc.trustkit_seen = True
        else:  # nested domain-config
            config.children.append(self.config(child, "domain", config, doc))

    def only_one(self, current: object, child: Element, hint: str | None) -> None:
        """Refuse a second ``child`` where a config takes one (``current`` is the first)."""
        if current is not None:
            raise self.error(f"more than one <{child.local}> in this config", child, hint=hint)

    def domain(self, el: Element) -> tuple[str, bool, int]:
        self.check_attrs(el, ("includeSubdomains",))
        include = self.boolean(el, "includeSubdomains") or False
        if el.children:
            raise self.error(
                "<domain> contains elements", el.children[0], hint="<domain> holds only a host name"
            )
        text = el.text.strip()
        self.no_placeholder(text, el)
        if not text:
            raise self.error("<domain> is empty", el, hint="write the host name inside <domain>")
        try:
            name = canonical_host(text)
        except PinsetError as exc:
            raise self.error(str(exc.message), el, hint=exc.hint) from None
        if name in self.seen_domains:
            raise self.error(
                f"domain {name!r} is already configured on line {self.seen_domains[name]}",
                el,
                hint="Android allows each domain once; merge the two domain-configs",
            )
        self.seen_domains[name] = el.line
        return name, include, el.line

    def pin_set(self, el: Element) -> PinSet:
        self.check_attrs(el, ("expiration",))
        self.no_text(el)
        expiration, expiration_text = None, el.attrs.get("expiration")
        if expiration_text is not None:
            expiration = self.expiration(el, expiration_text)
        ignore = el.attrs.get("{" + TOOLS_NS + "}ignore", "")
        pins: list[Pin] = []
        texts: list[str] = []
        lines: list[int] = []
        for child in el.children:
            if child.tag != "pin":
                self.unknown_child(child, el, ("pin",))
                continue
            pins.append(self.pin(child))
            texts.append(child.text)
            lines.append(child.line)
        return PinSet(
            pins=tuple(pins),
            texts=tuple(texts),
            lines=tuple(lines),
            expiration=expiration,
            expiration_text=expiration_text,
            ignore_missing_backup="MissingBackupPin" in {s.strip() for s in ignore.split(",")}
            or ignore.strip() == "all",
            line=el.line,
        )

    def expiration(self, el: Element, text: str) -> dt.date:
        self.no_placeholder(text, el, attr="expiration")
        date = parse_iso_date(text)
        if date is not None:
            return date
        raise self.error(
            f"pin-set expiration {text!r} is not a date in yyyy-MM-dd form",
            el,
            attr="expiration",
            hint='write expiration="2027-06-30" (year-month-day, zero-padded)',
        )

    def pin(self, el: Element) -> Pin:
        self.check_attrs(el, ("digest",))
        digest = el.attrs.get("digest")
        if digest is None:
            raise self.error(
                "<pin> without a digest attribute", el, hint='write <pin digest="SHA-256">…</pin>'
            )
        if digest.strip().upper() != "SHA-256":
            raise self.error(
                f"unsupported pin digest {digest!r}; Android supports only SHA-256",
                el,
                attr="digest",
                hint='write digest="SHA-256" and the base64 SHA-256 of the key\'s SPKI',
            )
        if el.children:
            raise self.error(
                "<pin> contains elements", el.children[0], hint="<pin> holds only the base64 digest"
            )
        text = el.text.strip()
        self.no_placeholder(text, el)
        if not text:
            raise self.error("<pin> is empty", el, hint="write the base64 SPKI SHA-256 digest")
        if text.lower().startswith(("sha256/", "sha-256/")):
            raise self.error(
                f"the pin {text!r} carries a 'sha256/' prefix",
                el,
                hint="<pin> holds the bare base64 digest: drop the 'sha256/' prefix",
            )
        if not _BASE64_TEXT.fullmatch(text):
            bad = sorted({c for c in text if not (c.isalnum() or c in "+/=" or c.isspace())})
            raise self.error(
                f"the pin {text!r} is not base64 (characters {''.join(bad)!r})",
                el,
                hint="write only the standard base64 digest, without 'sha256/' or quotes",
            )
        try:
            return Pin.parse(text)
        except PinsetError as exc:
            raise self.error(exc.message, el, hint=exc.hint) from None

    def anchors(self, el: Element, *, debug: bool) -> tuple[TrustAnchor, ...]:
        self.check_attrs(el, ())
        self.no_text(el)
        found: list[TrustAnchor] = []
        for child in el.children:
            if child.tag != "certificates":
                self.unknown_child(child, el, ("certificates",))
                continue
            self.check_attrs(child, ("src", "overridePins"))
            src = child.attrs.get("src")
            if src is None:
                raise self.error(
                    "<certificates> without a src attribute",
                    child,
                    hint='write src="system", src="user" or src="@raw/name"',
                )
            src = src.strip()
            # "wfa" (the Wi-Fi Alliance CAs) is a source since Android 14 (WfaCertificateSource).
            known = ("system", "user", "wfa")
            if src not in known and not re.fullmatch(r"@(?:[\w.]+:)?raw/[\w.]+", src):
                raise self.error(
                    f"unknown certificates src {src!r}",
                    child,
                    attr="src",
                    hint='src is "system", "user", "wfa" or a raw resource such as "@raw/my_ca"',
                )
            override = self.boolean(child, "overridePins")
            # In debug-overrides Android defaults overridePins to true.
            found.append(TrustAnchor(src, debug if override is None else override, child.line))
        return tuple(found)

    def trustkit(self, el: Element) -> TrustKitSettings:
        self.check_attrs(el, ("enforcePinning", "disableDefaultReportUri"))
        self.no_text(el)
        uris: list[str] = []
        for child in el.children:
            if child.tag != "report-uri":
                self.unknown_child(child, el, ("report-uri",))
                continue
            self.check_attrs(child, ())
            uri = child.text.strip()
            self.no_placeholder(uri, child)
            if not uri:
                raise self.error("<report-uri> is empty", child, hint="write an https:// URL")
            uris.append(uri)
        return TrustKitSettings(
            enforce_pinning=self.java_boolean(el, "enforcePinning"),
            disable_default_report_uri=self.java_boolean(el, "disableDefaultReportUri"),
            report_uris=tuple(uris),
            line=el.line,
        )
