"""The pin policy: which hosts are pinned to which keys, until when, and how strictly.

Pure: no sockets, clocks or files, and no import of anything above it. Values are
validated on construction and immutable; rules are indexed once, when the policy is
built. A :class:`Policy` holds values and matching only: reading and writing the
policy file is :mod:`pinset.policyfile` (``load``, ``loads``, ``from_dict``,
``dumps``, ``to_dict``), and judging a chain is :func:`pinset.verdict.evaluate`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from pinset.errors import ConfigError
from pinset.hosts import canonical_host, is_ip_literal, parent_domains
from pinset.pins import Pin

__all__ = ["DebugOverrides", "DomainRule", "Policy"]


@dataclass(frozen=True, slots=True)
class DomainRule:
    """One pinned (or excluded) domain.

    ``name`` is canonical. ``one_label`` marks an OkHttp-style ``*.name`` rule that
    covers exactly one extra label and not ``name`` itself; ``**.name`` is
    ``name`` with ``include_subdomains``. ``expiration`` is a UTC calendar date:
    the pins are enforced until 00:00:00 UTC of that date, not after.
    ``placeholder_only`` says, explicitly, that every pin is a placeholder: no
    key can match, so every connection to the domain is refused, which is what
    a platform does with such a set. Importers set it so that the domain stays
    visible to the audit; without it such a rule is refused, so a hand-written
    policy never enforces a set that matches nothing by accident.
    ``kill_switch`` marks a domain switched off by a signed bundle (its ``disable``
    list): its pins are not enforced and every connection to it gets the verdict
    ``kill-switch``, which reporters send, so the fallback is never silent. Only
    :func:`pinset.updates.apply_bundle` sets it; a policy file cannot write it.
    ``require_ct`` asks, beside the pins, for a certificate that embeds enough
    valid SCTs from public CT logs (:mod:`pinset.ct`; enforced by ``ssl_context``
    after the pin check, report-only when ``enforce`` is false). A rule with
    ``require_ct`` may have no pins at all (:attr:`ct_only`): CT alone decides.
    """

    name: str
    pins: tuple[Pin, ...] = ()
    include_subdomains: bool = False
    expiration: dt.date | None = None
    enforce: bool = True
    report_uris: tuple[str, ...] = ()
    exclude: bool = False
    allow_single_pin: bool = False
    one_label: bool = False
    placeholder_only: bool = False
    kill_switch: bool = False
    require_ct: bool = False

    def __post_init__(self) -> None:
        name = canonical_host(self.name)
        object.__setattr__(self, "name", name)
        pins = tuple(dict.fromkeys(self.pins))
        for pin in pins:
            if not isinstance(pin, Pin):
                raise ConfigError(f"domain {name!r}: pins must be Pin values, not {pin!r}")
        object.__setattr__(self, "pins", pins)
        object.__setattr__(self, "report_uris", tuple(self.report_uris))
        if isinstance(self.expiration, dt.datetime) or (
            self.expiration is not None and not isinstance(self.expiration, dt.date)
        ):
            raise ConfigError(
                f"domain {name!r}: expiration must be a calendar date",
                key="expiration",
                hint="write expiration = 2027-06-30 (a date, UTC, no time)",
            )
        if self.one_label and self.include_subdomains:
            raise ConfigError(
                f"domain '*.{name}': a one-label wildcard cannot also include subdomains",
                key="include-subdomains",
                hint=f"use '**.{name}' (or include-subdomains = true on {name!r}) for any depth",
            )
        if is_ip_literal(name) and (self.include_subdomains or self.one_label):
            raise ConfigError(
                f"domain {name!r} is an IP address; it has no subdomains",
                key="include-subdomains",
                hint="remove include-subdomains from this rule",
            )
        for uri in self.report_uris:
            check_report_uri(uri, name)
        if self.kill_switch and (self.exclude or self.enforce):
            raise ConfigError(
                f"domain {self.pattern!r}: a kill-switched rule is a pinned rule that is "
                "not enforced",
                key="kill-switch",
                hint="the kill switch is set by a signed bundle's disable list (apply_bundle)",
            )
        if not isinstance(self.require_ct, bool):
            raise ConfigError(
                f"domain {name!r}: require-ct must be true or false, not {self.require_ct!r}",
                key="require-ct",
            )
        if self.exclude:
            if self.placeholder_only:
                raise ConfigError(
                    f"domain {self.pattern!r} is an exclusion and cannot be placeholder-only",
                    key="placeholder-only",
                    hint="remove placeholder-only = true from the exclude = true rule",
                )
            if pins:
                raise ConfigError(
                    f"domain {self.pattern!r} is an exclusion but lists pins",
                    key="pins",
                    hint="an exclude = true rule carves the name out of a parent: remove its pins",
                )
            return
        if not pins:
            if self.require_ct and not self.placeholder_only:
                # CT alone: no pin check, the certificate must meet the CT policy.
                return
            raise ConfigError(
                f"domain {self.pattern!r} has no pins",
                key="pins",
                hint=(
                    "add the current key's pin and an offline backup pin (pinset pin HOST), "
                    "or set require-ct = true to check Certificate Transparency alone"
                ),
            )
        real = [p for p in pins if not p.is_placeholder]
        if self.placeholder_only:
            if real:
                raise ConfigError(
                    f"domain {self.pattern!r} is marked placeholder-only but lists the real "
                    f"pin {real[0]}",
                    key="placeholder-only",
                    hint="remove placeholder-only = true: it is only for sets of placeholders",
                )
            return
        if not real:
            raise ConfigError(
                # No pin is quoted: re-encoded, a written BBBB…BBB= would read BBBB…BBA=.
                f"domain {self.pattern!r} has only placeholder pins, which match no key",
                key="pins",
                hint=(
                    "a placeholder matches no key; add the current key's pin (pinset pin HOST), "
                    "or set placeholder-only = true to refuse every connection to the domain"
                ),
            )
        if self.enforce and not self.allow_single_pin and len(real) < 2:
            placeholders = len(pins) - len(real)
            counted = "pins do" if placeholders > 1 else "pin does"
            why = f" ({placeholders} placeholder {counted} not count)" if placeholders else ""
            raise ConfigError(
                f"domain {self.pattern!r} is enforced with {len(real)} real pin"
                f"{'s' if len(real) != 1 else ''}{why}; it needs a backup pin",
                key="pins",
                hint=(
                    "add the pin of an offline backup key (pinset keygen --out backup.key), "
                    "or set allow-single-pin = true if you accept a lock-out on key loss"
                ),
            )

    @property
    def ct_only(self) -> bool:
        """True for a rule that pins no key and requires CT: the CT check alone decides."""
        return self.require_ct and not self.pins and not self.exclude

    @property
    def pattern(self) -> str:
        """The rule's name as written in OkHttp style: ``example.com``, ``*.example.com``."""
        return f"*.{self.name}" if self.one_label else self.name

    def expires_at(self) -> dt.datetime | None:
        """The instant the pins stop being enforced: 00:00:00 UTC of ``expiration``."""
        if self.expiration is None:
            return None
        return dt.datetime.combine(self.expiration, dt.time(0), tzinfo=dt.timezone.utc)

    def is_expired(self, now: dt.datetime) -> bool:
        """True at and after 00:00:00 UTC of the expiration date. ``now`` must be timezone-aware."""
        expires = self.expires_at()
        return expires is not None and now >= expires

    def covers(self, host: str) -> bool:
        """True when this rule's pattern matches the canonical ``host`` (ignoring other rules)."""
        if self.one_label:
            head, _, rest = host.partition(".")
            return bool(head) and rest == self.name
        if host == self.name:
            return True
        return self.include_subdomains and host.endswith("." + self.name)


@dataclass(frozen=True, slots=True)
class DebugOverrides:
    """Extra trust for debugging (a team proxy CA), honoured only by ``ssl_context(debug=True)``.

    ``trust_anchors`` are the paths of PEM files of CA certificates, as written in
    the policy file (a relative path is read relative to the policy file's directory, or
    to the working directory for a policy that was not read from a file);
    this value only names them, :func:`pinset.ssl_context` reads them, and only with
    ``debug=True``. With ``override_pins`` a chain that verifies to one of these
    anchors is allowed without a pin match (Android's ``overridePins``), with its
    own verdict reason, ``debug-override``. ``lines`` are where each anchor is
    written (for error messages; not part of the value).
    """

    trust_anchors: tuple[str, ...] = ()
    override_pins: bool = False
    lines: tuple[int | None, ...] = field(default=(), compare=False, repr=False)

    def __post_init__(self) -> None:
        if isinstance(self.trust_anchors, str):
            raise ConfigError(
                "trust-anchors of [debug-overrides] must be a list of PEM file paths",
                key="trust-anchors",
                hint='write trust-anchors = ["team-proxy-ca.pem"]',
            )
        anchors = tuple(self.trust_anchors)
        for anchor in anchors:
            if not isinstance(anchor, str) or not anchor.strip():
                raise ConfigError(
                    f"trust anchor {anchor!r} of [debug-overrides] is not a file path",
                    key="trust-anchors",
                    hint='write trust-anchors = ["team-proxy-ca.pem"] (PEM files)',
                )
        if not isinstance(self.override_pins, bool):
            raise ConfigError(
                f"override-pins of [debug-overrides] must be true or false, not "
                f"{self.override_pins!r}",
                key="override-pins",
            )
        if self.override_pins and not anchors:
            raise ConfigError(
                "override-pins = true in [debug-overrides] without trust anchors overrides nothing",
                key="override-pins",
                hint='add trust-anchors = ["team-proxy-ca.pem"], or remove override-pins',
            )
        object.__setattr__(self, "trust_anchors", anchors)
        object.__setattr__(self, "lines", tuple(self.lines))


@dataclass(frozen=True, slots=True)
class Policy:
    """A set of :class:`DomainRule` with policy-wide defaults.

    Build one directly or read it with :func:`pinset.load_policy` (the functions of
    :mod:`pinset.policyfile`). Look a host up with :meth:`match`; judge a verified
    chain with :func:`pinset.evaluate`. Equality ignores where the policy was read from.
    ``debug_overrides`` (``None``: none) is extra trust for debug builds, ignored
    unless the context is made with ``ssl_context(policy, debug=True)``.
    ``require_ct`` is the ``[defaults]`` value of each rule's ``require_ct``.
    ``allow_signing_key_rotation`` (policy file: ``[updates]``) lets a signed bundle
    remove or replace the keys bundles are signed by; without it a bundle may only add one.
    """

    rules: tuple[DomainRule, ...] = ()
    enforce: bool = True
    include_subdomains: bool = False
    report_uris: tuple[str, ...] = ()
    source: str | None = field(default=None, compare=False)
    debug_overrides: DebugOverrides | None = None
    require_ct: bool = False
    allow_signing_key_rotation: bool = False
    _exact: dict[str, DomainRule] = field(init=False, repr=False, compare=False)
    _one_label: dict[str, DomainRule] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        exact: dict[str, DomainRule] = {}
        one_label: dict[str, DomainRule] = {}
        for rule in self.rules:
            if not isinstance(rule, DomainRule):
                raise ConfigError(f"policy rules must be DomainRule values, not {rule!r}")
            table = one_label if rule.one_label else exact
            if rule.name in table:
                raise ConfigError(
                    f"domain {rule.pattern!r} appears twice",
                    key="name",
                    hint="merge the two [[domain]] tables into one",
                )
            table[rule.name] = rule
        for uri in self.report_uris:
            check_report_uri(uri, None)
        if self.debug_overrides is not None and not isinstance(
            self.debug_overrides, DebugOverrides
        ):
            raise ConfigError(
                f"debug_overrides must be a DebugOverrides value, not {self.debug_overrides!r}"
            )
        object.__setattr__(self, "rules", tuple(sorted(self.rules, key=_rule_order)))
        object.__setattr__(self, "report_uris", tuple(self.report_uris))
        object.__setattr__(self, "_exact", exact)
        object.__setattr__(self, "_one_label", one_label)

    # -- lookup -----------------------------------------------------------------

    def match(self, host: str) -> DomainRule | None:
        """The most specific rule for ``host``: exact name, then the nearest parent.

        A parent counts when it includes subdomains (or is a ``*.`` rule one label
        up). The result may be an exclusion rule; :meth:`rule_for` hides those.
        """
        name = canonical_host(host)
        rule = self._exact.get(name)
        if rule is not None:
            return rule
        for depth, parent in enumerate(parent_domains(name)):
            if depth == 0:
                wildcard = self._one_label.get(parent)
                if wildcard is not None:
                    return wildcard
            rule = self._exact.get(parent)
            if rule is not None and rule.include_subdomains:
                return rule
        return None

    def rule_for(self, host: str) -> DomainRule | None:
        """The rule that pins ``host``, or ``None`` when it is not pinned (or excluded)."""
        rule = self.match(host)
        return None if rule is None or rule.exclude else rule


def _rule_order(rule: DomainRule) -> tuple[str, bool]:
    return (rule.name, rule.one_label)


def check_report_uri(uri: Any, domain: str | None) -> None:
    """Refuse a report URI that is not an http(s) URL (``domain``: the rule, ``None``: defaults).

    Used by :class:`DomainRule` and :class:`Policy`, and by the policy-file reader to
    name the line of a bad URI before the values are built.
    """
    where = f"domain {domain!r}" if domain else "[defaults]"
    if not isinstance(uri, str):
        raise ConfigError(f"report-uris in {where} must be strings, not {uri!r}", key="report-uris")
    if "${" in uri or "$(" in uri:
        raise ConfigError(
            f"report URI {uri!r} in {where} has an unresolved placeholder",
            key="report-uris",
            hint="write the real URL; pinset does not expand ${...} or $(...)",
        )
    try:
        parts = urlsplit(uri)
        hostname = parts.hostname
    except ValueError:
        parts, hostname = None, None
    if (
        parts is None
        or parts.scheme not in ("https", "http")
        or not hostname
        or any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in uri)
    ):
        raise ConfigError(
            f"report URI {uri!r} in {where} is not an http(s) URL",
            key="report-uris",
            hint="write a full URL such as https://pin-reports.example.net/v1/report",
        )
