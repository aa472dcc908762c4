"""Audit rules over the policy alone: pins, dates, rule shapes and report URIs.

Pure functions of a :class:`~pinset.audit._model.Subject` and the run's
:class:`~pinset.audit._model.Context`. The rules over the pins as written
(``missing-backup-pin``, ``placeholder-pin``, ``non-canonical-pin``,
``no-expiration``) are in :mod:`pinset.audit._rules.written`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from functools import lru_cache
from urllib.parse import urlsplit

from pinset.audit._model import Context, Finding, Subject
from pinset.audit._rules.catalog import finding
from pinset.hosts import parent_domains
from pinset.policy import DomainRule

__all__ = [
    "ct_only",
    "include_subdomains_public_suffix",
    "overlapping_rules",
    "pin_set_expired",
    "pin_set_expiring",
    "public_suffixes",
    "report_uri_cleartext",
    "report_uri_on_pinned_host",
]


@lru_cache(maxsize=1)
def public_suffixes() -> frozenset[str]:
    """The embedded subset of the Public Suffix List (``public_suffixes.txt``)."""
    from importlib import resources  # only when a rule needs it (pinset import never does)

    text = resources.files("pinset.audit").joinpath("public_suffixes.txt").read_text("utf-8")
    return frozenset(
        line.strip().lower() for line in text.splitlines() if line.strip() and line[0] != "#"
    )


def _pinned(subject: Subject) -> Iterator[DomainRule]:
    if subject.imported is None:
        return
    for rule in subject.imported.policy.rules:
        if not rule.exclude:
            yield rule


def _expiry(subject: Subject, rule: DomainRule) -> tuple[dt.datetime | None, str]:
    """When ``rule``'s pins stop on the platform (the earliest instant), and how to say it.

    An Android or TrustKit-Android date ends at the device's local midnight, which
    comes up to 14 hours before 00:00 UTC (``PlatformDomain.expires_between``).
    """
    if subject.imported is not None and rule.expiration is not None:
        for facts in subject.imported.domains:
            if facts.scope == "domain" and facts.name == rule.name and facts.expires_between:
                first, last = facts.expires_between
                if first != last:
                    return first, (
                        f"{rule.expiration} at the device's local midnight (from "
                        f"{first:%Y-%m-%d %H:%M} UTC)"
                    )
    return rule.expires_at(), f"{rule.expiration}"


def pin_set_expired(subject: Subject, context: Context) -> Iterator[Finding]:
    """Rules whose pins have stopped on some device at ``context.now``."""
    for rule in _pinned(subject):
        expires, when = _expiry(subject, rule)
        if expires is not None and context.now >= expires:
            yield finding(
                "pin-set-expired",
                f"{rule.pattern}: the pins expired on {when}; the domain is effectively unpinned",
                **subject.where(rule),
            )


def pin_set_expiring(subject: Subject, context: Context) -> Iterator[Finding]:
    """Rules expiring within ``context.min_days``, on the earliest device to reach the date."""
    for rule in _pinned(subject):
        expires, when = _expiry(subject, rule)
        if expires is not None and context.now < expires <= context.horizon:
            days = (expires - context.now).days
            yield finding(
                "pin-set-expiring",
                f"{rule.pattern}: the pins expire on {when} (in {days} day"
                f"{'' if days == 1 else 's'}, within {context.min_days})",
                **subject.where(rule),
            )


def include_subdomains_public_suffix(subject: Subject, context: Context) -> Iterator[Finding]:
    """``include-subdomains`` (or ``*.``) on a public suffix such as ``com`` or ``github.io``."""
    suffixes = public_suffixes()
    for rule in _pinned(subject):
        if (rule.include_subdomains or rule.one_label) and rule.name in suffixes:
            yield finding(
                "include-subdomains-public-suffix",
                f"{rule.pattern} is a public suffix: including its subdomains pins every "
                "site registered under it",
                **subject.where(rule),
            )


def ct_only(subject: Subject, context: Context) -> Iterator[Finding]:
    """A ``require-ct`` rule without pins: Certificate Transparency alone guards it."""
    for rule in _pinned(subject):
        if rule.ct_only:
            yield finding(
                "ct-only",
                f"{rule.pattern} pins no key and requires Certificate Transparency alone: "
                "a certificate any trusted CA issues passes once it embeds enough valid SCTs",
                **subject.where(rule),
            )


def overlapping_rules(subject: Subject, context: Context) -> Iterator[Finding]:
    """A rule below a parent that includes subdomains, with other pins (or an exclusion)."""
    if subject.imported is None:
        return
    policy = subject.imported.policy
    for rule in policy.rules:
        parent = next(
            (
                found
                for name in parent_domains(rule.name)
                if (found := policy.match(name)) is not None
                and found.name == name
                and found.include_subdomains
                and not found.exclude
            ),
            None,
        )
        if parent is None or set(parent.pins) == set(rule.pins):
            continue
        what = "excludes it from" if rule.exclude else "replaces"
        yield finding(
            "overlapping-rules",
            f"{rule.pattern} has its own rule, which {what} the pins of {parent.pattern} "
            "(include-subdomains)",
            fix=f"check {rule.pattern} should not use {parent.pattern}'s pins",
            **subject.where(rule),
        )


def _report_uris(subject: Subject) -> Iterator[tuple[DomainRule | None, str]]:
    if subject.imported is None:
        return
    policy = subject.imported.policy
    seen = set()
    for rule in _pinned(subject):
        for uri in rule.report_uris:
            seen.add(uri)
            yield rule, uri
    for uri in policy.report_uris:
        if uri not in seen:
            yield None, uri


def report_uri_cleartext(subject: Subject, context: Context) -> Iterator[Finding]:
    """``http://`` report URIs: reports (and the hosts they name) travel in clear text."""
    for rule, uri in _report_uris(subject):
        if urlsplit(uri).scheme.lower() == "http":
            yield finding(
                "report-uri-cleartext",
                f"report URI {uri} is plain http: anyone on the path reads or drops the reports",
                **subject.where(rule),
            )


def report_uri_on_pinned_host(subject: Subject, context: Context) -> Iterator[Finding]:
    """Report URIs on a host this policy pins: a pin failure would also block its report."""
    if subject.imported is None:
        return
    policy = subject.imported.policy
    for rule, uri in _report_uris(subject):
        host = urlsplit(uri).hostname
        if not host:
            continue
        try:
            target = policy.rule_for(host)
        except ValueError:
            continue
        if target is not None:
            yield finding(
                "report-uri-on-pinned-host",
                f"report URI {uri} is on {host}, which {target.pattern} pins: when the pins "
                "fail, the report fails with them",
                **subject.where(rule),
            )
