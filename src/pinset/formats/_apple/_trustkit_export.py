"""The ``TSKConfiguration`` dictionary a policy exports as, refused where TrustKit would refuse it.

Both writers build on :func:`trustkit_config`: the Info.plist one in
:mod:`pinset.formats._apple.trustkit` and the Swift one in
:mod:`pinset.formats._apple._trustkit_swift`.
``TSKDisableDefaultReportUri`` is always true.
"""

from __future__ import annotations

import warnings
from typing import Any

from pinset.formats._apple._one_label import one_label_as_subdomains
from pinset.formats._apple._trustkit_keys import (
    DISABLE_DEFAULT,
    ENFORCE,
    EXCLUDE_KEY,
    EXPIRATION,
    HASHES,
    INCLUDE,
    PINNED,
    REPORT_URIS,
    SWIZZLE,
)
from pinset.formats._model import ExportError, ExportWarning
from pinset.hosts import is_ip_literal
from pinset.policy import DomainRule, Policy

__all__ = ["trustkit_config"]


def trustkit_config(policy: Policy, swizzle_network_delegates: bool) -> dict[str, Any]:
    domains: dict[str, dict[str, Any]] = {}
    names = {r.name for r in policy.rules if not r.one_label}
    for rule in policy.rules:
        if rule.exclude:
            domains[rule.name] = {EXCLUDE_KEY: True}
            _check_export_exclusion(policy, rule)
            continue
        if is_ip_literal(rule.name) or "." not in rule.name:
            raise ExportError(
                f"TrustKit cannot pin {rule.name}: it accepts only names under a public suffix",
                key="name",
                hint="pin the host by its DNS name",
            )
        include = rule.include_subdomains
        if rule.one_label:
            one_label_as_subdomains(
                rule,
                names,
                "TrustKit",
                INCLUDE,
                f"TrustKit also pins {rule.name} itself and names more than one label below it",
            )
            include = True
        if rule.enforce and len(rule.pins) < 2:
            raise ExportError(
                f"TrustKit refuses to start with an enforced domain with one pin ({rule.pattern})",
                key="pins",
                hint="add the pin of an offline backup key (pinset keygen)",
            )
        entry: dict[str, Any] = {
            HASHES: [pin.b64 for pin in rule.pins],
            INCLUDE: include,
            ENFORCE: rule.enforce,
            DISABLE_DEFAULT: True,
        }
        if rule.report_uris:
            entry[REPORT_URIS] = list(rule.report_uris)
        if rule.expiration is not None:
            entry[EXPIRATION] = rule.expiration.isoformat()
        domains[rule.name] = entry
    if not domains:
        raise ExportError(
            "the policy pins no domain, and TrustKit refuses an empty TSKPinnedDomains",
            key="domain",
            hint="add a [[domain]] with its pins to the policy",
        )
    return {SWIZZLE: swizzle_network_delegates, PINNED: domains}


def _check_export_exclusion(policy: Policy, rule: DomainRule) -> None:
    parents = [
        p
        for p in policy.rules
        if p.include_subdomains and not p.exclude and rule.name.endswith("." + p.name)
    ]
    if not parents:
        raise ExportError(
            f"TrustKit refuses the exclusion of {rule.name}: no parent rule includes subdomains",
            key="exclude",
            hint="remove the exclusion; nothing above it is pinned",
        )
    if rule.include_subdomains:
        warnings.warn(
            f"TrustKit excludes {rule.name} only, not the names below it: those stay "
            f"pinned by {parents[-1].name}",
            ExportWarning,
            stacklevel=5,
        )
