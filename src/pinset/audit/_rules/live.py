"""Audit rules that compare the pins with a chain a host served (``--live``) or a file gave.

The chains are in ``context.chains``, keyed by the host name audited: each
pinned rule's own name (the apex of an ``include-subdomains`` rule) plus extra
``--host`` names, which are judged by the rule that covers them. Pins are
compared as digests with every certificate of the chain.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import lru_cache, wraps

from cryptography import x509

from pinset.audit._model import Context, Finding, LiveChain, Subject
from pinset.audit._rules.catalog import finding
from pinset.chain import cert_role
from pinset.ct import MAX_LIST_AGE, check_chain, load_log_list
from pinset.errors import PinsetError
from pinset.pins import Pin, spki_pin
from pinset.policy import DomainRule

__all__ = [
    "chains_for",
    "ct_insufficient",
    "leaf_pin_cert_expiring",
    "live_fetch_failed",
    "matches",
    "no_live_match",
    "no_offline_backup",
    "root_only_pins",
]


def chains_for(subject: Subject, context: Context) -> Iterator[tuple[DomainRule, LiveChain]]:
    """Each (rule, chain) pair: the chains of the hosts this subject's rules cover."""
    if subject.imported is None:
        return
    policy = subject.imported.policy
    for host in sorted(context.chains):
        try:
            rule = policy.rule_for(host)
        except (PinsetError, ValueError):
            continue
        if rule is not None:
            yield rule, context.chains[host]


@lru_cache(maxsize=8192)
def _pin_of(cert: x509.Certificate) -> Pin:
    # Every live rule looks at the same chains: hash each certificate's key once.
    return spki_pin(cert)


def matches(rule: DomainRule, chain: LiveChain) -> list[tuple[int, Pin]]:
    """(position in the chain, pin) for each chain member whose key the rule pins."""
    pins = set(rule.pins)
    found = []
    for position, cert in enumerate(chain.certificates):
        pin = _pin_of(cert)
        if pin in pins:
            found.append((position, pin))
    return found


def _via(rule: DomainRule, chain: LiveChain) -> str:
    host = "" if chain.host == rule.name else f" ({chain.host})"
    return f"{rule.pattern}{host}, chain from {chain.origin}"


_ChainCheck = Callable[[DomainRule, LiveChain, Context], str | None]
_LiveRule = Callable[[Subject, Context], Iterator[Finding]]


def _per_chain(rule_id: str) -> Callable[[_ChainCheck], _LiveRule]:
    """Make a rule of ``rule_id`` from a check of one (rule, chain) pair.

    The check returns what is wrong with the pair, or ``None``; the rule runs it on
    every pair of :func:`chains_for` and reports each problem after :func:`_via`.
    """

    def make(check: _ChainCheck) -> _LiveRule:
        @wraps(check)
        def rule_function(subject: Subject, context: Context) -> Iterator[Finding]:
            for rule, chain in chains_for(subject, context):
                problem = check(rule, chain, context)
                if problem is not None:
                    yield finding(rule_id, f"{_via(rule, chain)}: {problem}", **subject.where(rule))

        return rule_function

    return make


@_per_chain("live-fetch-failed")
def live_fetch_failed(rule: DomainRule, chain: LiveChain, context: Context) -> str | None:
    """A pinned host whose chain could not be fetched: nothing was checked for it."""
    return chain.error


@_per_chain("no-live-match")
def no_live_match(rule: DomainRule, chain: LiveChain, context: Context) -> str | None:
    """The chain matches none of the rule's pins: an enforcing client refuses this server.

    A CT-only rule has no pins to match: ``ct-insufficient`` judges its chain.
    """
    if rule.ct_only or chain.error is not None or not chain.certificates or matches(rule, chain):
        return None
    served = ", ".join(str(_pin_of(c)) for c in chain.certificates)
    return f"no pin matches the chain (served keys: {served}); users would be locked out"


@_per_chain("no-offline-backup")
def no_offline_backup(rule: DomainRule, chain: LiveChain, context: Context) -> str | None:
    """Every real pin is a key of the live chain: there is no backup key held elsewhere."""
    found = {pin for _position, pin in matches(rule, chain)}
    real = {p for p in rule.pins if not p.is_placeholder}
    if not found or not real <= found:
        return None
    return "every pin is a key of the served chain, so no backup key exists outside it"


@_per_chain("leaf-pin-cert-expiring")
def leaf_pin_cert_expiring(rule: DomainRule, chain: LiveChain, context: Context) -> str | None:
    """Only the leaf key matches, and the leaf certificate expires within ``min_days``."""
    found = matches(rule, chain)
    if not found or any(position != 0 for position, _pin in found):
        return None
    leaf = chain.certificates[0]
    if cert_role(leaf, 0, chain.certificates) != "leaf":
        return None
    expires = leaf.not_valid_after_utc
    if expires > context.horizon:
        return None
    return (
        f"only the leaf key is pinned and the leaf certificate expires on {expires.date()}; "
        "a renewal with a new key locks users out"
    )


@_per_chain("root-only-pins")
def root_only_pins(rule: DomainRule, chain: LiveChain, context: Context) -> str | None:
    """The only chain keys pinned are root CAs': any certificate that CA issues passes."""
    found = matches(rule, chain)
    roles = {cert_role(chain.certificates[p], p, chain.certificates) for p, _pin in found}
    if roles != {"root"}:
        return None
    return (
        "only a root CA key is pinned; every certificate that CA issues for the name "
        "passes, little more than the system store"
    )


@_per_chain("ct-insufficient")
def ct_insufficient(rule: DomainRule, chain: LiveChain, context: Context) -> str | None:
    """A ``require-ct`` domain whose leaf lacks enough valid embedded SCTs.

    Checked against the run's log list (``--log-list``; default: the shipped one).
    """
    if not rule.require_ct or chain.error is not None or not chain.certificates:
        return None
    logs = load_log_list(context.ct_logs)
    result = check_chain(chain.certificates, logs, now=context.now)
    if result.compliant:
        return None
    date = f"{logs.timestamp:%Y-%m-%d}" if logs.timestamp else "undated"
    stale = ", older than 70 days" if logs.age_warning(context.now, MAX_LIST_AGE) else ""
    return (
        f"{result.reason}: {result.detail}; an enforcing pinset client refuses it "
        f"(log list {logs.source}, {date}{stale})"
    )
