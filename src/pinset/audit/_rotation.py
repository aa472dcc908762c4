"""Would a server switching to a new certificate or key still pass the pins already shipped?

Pure: the caller reads the files. A rotation is safe for a rule when a pin of
the rule matches a key of the new chain (the new leaf, or an intermediate or
root the chain carries) or the new key; when the rule is expired or
report-only, nothing is enforced and the switch cannot lock users out.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cryptography import x509

from pinset.audit._model import Subject
from pinset.chain import cert_role
from pinset.hosts import canonical_host
from pinset.pins import Pin, spki_pin
from pinset.policy import DomainRule, Policy

__all__ = ["RotationVerdict", "check_rotation", "names_of"]


@dataclass(frozen=True, slots=True)
class RotationVerdict:
    """The answer for one pinned rule.

    ``matched`` is the shipped pin that accepts the new chain or key, ``matched_by``
    says what it pins (``"leaf"``, ``"intermediate"``, ``"root"`` or ``"key"``).
    ``next_step`` says what to do when the switch is unsafe.
    """

    source: str
    domain: str
    safe: bool
    reason: str
    matched: Pin | None = None
    matched_by: str | None = None
    next_step: str | None = None
    line: int | None = None


def names_of(cert: x509.Certificate) -> list[str]:
    """The DNS names and IP addresses of a certificate's subjectAltName, canonical."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    names = [str(n) for n in san.get_values_for_type(x509.DNSName)]
    names += [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    out = []
    for name in names:
        try:
            out.append(canonical_host(name.removeprefix("*.")))
        except ValueError:
            continue
    return out


def _candidates(chain: Sequence[x509.Certificate], key_pin: Pin | None) -> list[tuple[Pin, str]]:
    found: list[tuple[Pin, str]] = [
        (spki_pin(c), cert_role(c, i, chain)) for i, c in enumerate(chain)
    ]
    if key_pin is not None:
        found.append((key_pin, "key"))
    return found


def _policy(subject: Subject) -> Policy:
    assert subject.imported is not None
    return subject.imported.policy


def _effective(subjects: list[Subject], names: list[str]) -> list[tuple[Subject, DomainRule]]:
    """The rule each name is pinned by (the most specific one), once per subject and rule."""
    found: dict[tuple[int, str], tuple[Subject, DomainRule]] = {}
    for index, subject in enumerate(subjects):
        for name in names:
            rule = _policy(subject).rule_for(name)
            if rule is not None:
                found.setdefault((index, rule.pattern), (subject, rule))
    return list(found.values())


def check_rotation(
    subjects: Iterable[Subject],
    *,
    now: dt.datetime,
    new_chain: Sequence[x509.Certificate] = (),
    new_key_pin: Pin | None = None,
    domains: Iterable[str] = (),
) -> list[RotationVerdict]:
    """A verdict per pinned rule the new certificate is for.

    The rules judged are those covering ``domains`` if given, else those
    covering a name of the new leaf certificate, else (a bare key, or a
    certificate for none of the pinned names) every pinned rule.
    """
    candidates = _candidates(tuple(new_chain), new_key_pin)
    if not candidates:
        raise ValueError("give a new certificate chain or a new key pin")
    wanted = [canonical_host(d) for d in domains]
    leaf_names = names_of(new_chain[0]) if new_chain else []
    subjects = [s for s in subjects if s.imported is not None]
    every = [(s, r) for s in subjects for r in _policy(s).rules if not r.exclude]
    pairs = _effective(subjects, wanted) if wanted else _effective(subjects, leaf_names) or every
    return [_verdict(s, r, candidates, now, has_chain=bool(new_chain)) for s, r in pairs]


def _verdict(
    subject: Subject,
    rule: DomainRule,
    candidates: list[tuple[Pin, str]],
    now: dt.datetime,
    *,
    has_chain: bool,
) -> RotationVerdict:
    """Whether installed apps pinned by ``rule`` would accept the new key or chain."""
    base = subject.where(rule)
    new_pin = candidates[0][0]
    match = next(((p, role) for p, role in candidates if p in rule.pins), None)
    if rule.is_expired(now):
        return RotationVerdict(
            **base, safe=True,
            reason=f"the pins expired on {rule.expiration}; nothing is enforced "
            "(renew the pins: pinset audit reports pin-set-expired)",
        )  # fmt: skip
    if match is not None:
        pin, role = match
        what = "the new key" if role == "key" else f"the new chain's {role} key"
        return RotationVerdict(
            **base, safe=True, matched=pin, matched_by=role,
            reason=f"{pin} (pinned by {rule.pattern}) matches {what}",
        )  # fmt: skip
    if not rule.enforce:
        return RotationVerdict(
            **base, safe=True,
            reason=f"{rule.pattern} is report-only: clients report the mismatch but connect",
            next_step=f"add {new_pin} to {rule.pattern} before enforcing",
        )  # fmt: skip
    return RotationVerdict(
        **base, safe=False,
        reason=f"none of the {len(rule.pins)} pins of {rule.pattern} matches "
        f"{'any key of the new chain' if has_chain else 'the new key'} ({new_pin}): "
        "every installed app would refuse the server",
        next_step=f"add {new_pin} to {rule.pattern}, ship it in an app release, wait "
        "until most installs have it, then deploy the new certificate",
    )  # fmt: skip
