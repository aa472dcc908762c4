"""What a bundle changes, as frozen records, and how those changes make a new policy.

Pure. The records are what :class:`~pinset.updates.BundleResult` reports and what
:func:`apply_bundle` applies; a ``disable`` record is the kill switch, kept so that a
verdict step can say a connection was let through by it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from typing import Any, Literal

from pinset.errors import ConfigError
from pinset.pins import Pin
from pinset.policy import DomainRule, Policy
from pinset.updates._document import BundleError, Payload

__all__ = ["Change", "ChangeKind", "apply_changes", "changes_of"]

ChangeKind = Literal["add-pins", "expiration", "report-only", "disable"]


@dataclass(frozen=True, slots=True)
class Change:
    """One change to one domain (named by its pattern, as in the policy)."""

    domain: str
    kind: ChangeKind
    pins: tuple[Pin, ...] = ()
    expiration: dt.date | None = None

    def to_json(self) -> dict[str, Any]:
        """``{"domain", "change"}`` plus ``pins`` or ``expiration`` where the change has them."""
        entry: dict[str, Any] = {"domain": self.domain, "change": self.kind}
        if self.kind == "add-pins":
            entry["pins"] = [str(pin) for pin in self.pins]
        if self.kind == "expiration" and self.expiration is not None:
            entry["expiration"] = self.expiration.isoformat()
        return entry


def _not_allowed(message: str, hint: str) -> BundleError:
    return BundleError("not-allowed", message, hint=hint)


def _rule(policy: Policy, name: str, why: str) -> DomainRule:
    for rule in policy.rules:
        if rule.pattern == name and not rule.exclude:
            return rule
    raise _not_allowed(
        f"{name!r} is not pinned by the embedded policy; a bundle cannot {why} it",
        "a bundle changes the domains the app already pins; ship an app update for new ones",
    )


def changes_of(payload: Payload, embedded: Policy | None) -> tuple[Change, ...]:
    """The changes ``payload`` makes to ``embedded``; a weakening one is ``not-allowed``.

    Allowed: more pins (the embedded ones kept), a later expiration, ``enforce = false``
    and ``disable``. Without an embedded policy the changes are the payload as written.
    """
    changes: list[Change] = []
    for state in payload.domains:
        rule = None if embedded is None else _rule(embedded, state.name, "change")
        if (
            rule is not None
            and state.include_subdomains is not None
            and state.include_subdomains != rule.include_subdomains
        ):
            raise _not_allowed(
                f"{state.name!r}: include_subdomains differs from the embedded policy",
                "a bundle cannot widen or narrow what a rule covers",
            )
        if state.pins is not None:
            known = () if rule is None else rule.pins
            removed = [pin for pin in known if pin not in state.pins]
            if removed:
                raise _not_allowed(
                    f"{state.name!r}: the bundle drops the embedded pin {removed[0]}",
                    "a bundle adds pins; keep every pin of the embedded policy in it",
                )
            added = tuple(pin for pin in state.pins if pin not in known)
            if added:
                changes.append(Change(state.name, "add-pins", pins=added))
        if state.expiration is not None:
            current = None if rule is None else rule.expiration
            if rule is not None and (current is None or state.expiration < current):
                raise _not_allowed(
                    f"{state.name!r}: expiration {state.expiration} is earlier than the "
                    f"embedded {current or 'none (never expires)'}",
                    "a bundle may only move an expiration later",
                )
            if current is None or state.expiration > current:
                changes.append(Change(state.name, "expiration", expiration=state.expiration))
        if state.enforce is not None:
            if rule is not None and state.enforce and not rule.enforce:
                raise _not_allowed(
                    f"{state.name!r} is report-only in the embedded policy; a bundle cannot "
                    "turn enforcement on",
                    "turn enforcement on with an app release",
                )
            if not state.enforce and (rule is None or rule.enforce):
                changes.append(Change(state.name, "report-only"))
    for name in payload.disable:
        if embedded is not None:
            _rule(embedded, name, "disable")
        changes.append(Change(name, "disable"))
    result = tuple(changes)
    if embedded is not None:
        apply_changes(embedded, result)  # a change the policy's own rules refuse is refused here
    return result


def apply_changes(policy: Policy, changes: tuple[Change, ...]) -> Policy:
    """``policy`` with ``changes`` made; a change it cannot take is ``not-allowed``."""
    rules = {rule.pattern: rule for rule in policy.rules if not rule.exclude}
    try:
        for change in changes:
            rules[change.domain] = _changed(policy, rules.get(change.domain), change)
        kept = [rule for rule in policy.rules if rule.exclude]
        return dataclasses.replace(policy, rules=tuple(kept + list(rules.values())))
    except ConfigError as exc:  # a BundleError is not a ConfigError: it passes through
        raise _not_allowed(
            f"the policy refuses the bundle's change: {exc.message}",
            exc.hint or "sign a bundle the policy can take",
        ) from None


def _changed(policy: Policy, rule: DomainRule | None, change: Change) -> DomainRule:
    if rule is None:
        return _rule(policy, change.domain, "change")  # raises: the policy does not pin it
    if change.kind == "add-pins":
        return dataclasses.replace(rule, pins=rule.pins + change.pins)
    if change.kind == "expiration":
        assert change.expiration is not None
        if rule.expiration is None or change.expiration < rule.expiration:
            raise _not_allowed(
                f"{change.domain!r}: expiration {change.expiration} is earlier than the "
                f"policy's {rule.expiration or 'none (never expires)'}",
                "a bundle may only move an expiration later",
            )
        return dataclasses.replace(rule, expiration=change.expiration)
    if change.kind == "disable":
        # The kill switch: not enforced, and marked so that its verdict says so.
        return dataclasses.replace(rule, enforce=False, kill_switch=True)
    return dataclasses.replace(rule, enforce=False)
