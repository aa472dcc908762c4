"""Round trips of ios-ats, trustkit, okhttp and hpkp over generated policies (hypothesis).

For every policy a format can express: ``loads(dumps(p)).policy == p``, and
export → import → export is byte-identical. "Can express" is made explicit by
``expressible_*``: each maps a generated policy onto what the format keeps
(for example ``allow_single_pin`` exactly when a rule needs it), so the
properties run on every example instead of discarding most of them.
"""

from __future__ import annotations

import dataclasses
import warnings

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from pinset.formats import _hpkp as hpkp
from pinset.formats import _okhttp as okhttp
from pinset.formats._apple import ios_ats, trustkit
from pinset.formats._model import ExportError, ExportWarning
from pinset.policy import DomainRule, Policy
from strategies import REPORT_URIS, hostnames, pins, policies

_SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _single(rule: DomainRule) -> DomainRule:
    """``allow_single_pin`` as importers set it: exactly when an enforced rule needs it."""
    if rule.exclude:
        return rule
    real = [p for p in rule.pins if not p.is_placeholder]
    return dataclasses.replace(rule, allow_single_pin=rule.enforce and len(real) < 2)


def _policy(rules: list[DomainRule]) -> Policy:
    return Policy(rules=tuple(_single(r) for r in rules))


def expressible_ats(policy: Policy) -> Policy:
    return _policy(list(policy.rules))


def expressible_trustkit(policy: Policy) -> Policy:
    rules = [r for r in policy.rules if "." in r.name]
    kept = []
    for rule in rules:
        if not rule.exclude:
            kept.append(rule)
        elif any(p.include_subdomains and not p.exclude and rule.name.endswith("." + p.name)
                 for p in rules):  # fmt: skip
            kept.append(dataclasses.replace(rule, include_subdomains=False))
    return _policy(kept)


def expressible_okhttp(policy: Policy) -> Policy:
    """Each rule also lists the pins of the patterns covering it (OkHttp unions them)."""

    def covers(other: DomainRule, rule: DomainRule) -> bool:
        probe = "x." + rule.name if rule.one_label else rule.name
        return other is not rule and other.covers(probe)

    rules = [
        dataclasses.replace(
            rule, pins=rule.pins + tuple(p for o in policy.rules if covers(o, rule) for p in o.pins)
        )
        for rule in policy.rules
    ]
    return _policy(rules)


def quietly(dump: object, *args: object, **kwargs: object) -> str | bytes:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExportWarning)  # include-subdomains warns on ATS, by design
        result = dump(*args, **kwargs)  # type: ignore[operator]
    assert isinstance(result, str | bytes)
    return result


@_SETTINGS
@given(
    policies(report_only=False, report_uris=False, exclusions=False, expiration=False),
    st.booleans(),
)
def test_ios_ats_round_trip(generated: Policy, binary: bool) -> None:
    policy = expressible_ats(generated)
    data = quietly(ios_ats.dumps, policy, binary=binary)
    back = ios_ats.loads(data)
    assert back.policy == policy
    assert quietly(ios_ats.dumps, back.policy, binary=binary) == data
    # The record of identity arrays reproduces the same file too.
    kinds = back.platform["identities"]
    assert quietly(ios_ats.dumps, back.policy, binary=binary, identities=kinds) == data


@_SETTINGS
@given(policies(min_pins=2), st.booleans())
def test_trustkit_round_trip(generated: Policy, binary: bool) -> None:
    policy = expressible_trustkit(generated)
    if not policy.rules:
        with pytest.raises(ExportError, match="empty TSKPinnedDomains"):
            trustkit.dumps(policy)
        return
    with warnings.catch_warnings():
        warnings.simplefilter("error", ExportWarning)  # everything here is expressible
        data = trustkit.dumps(policy, binary=binary)
        back = trustkit.loads(data)
        assert back.policy == policy
        assert trustkit.dumps(back.policy, binary=binary) == data
        assert trustkit.dumps_swift(back.policy) == trustkit.dumps_swift(policy)


@_SETTINGS
@given(
    policies(
        report_only=False, report_uris=False, exclusions=False, expiration=False, one_label=True
    ),
    st.sampled_from(["kotlin", "java"]),
)
def test_okhttp_round_trip(generated: Policy, language: str) -> None:
    policy = expressible_okhttp(generated)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", ExportWarning)
            # The one expected warning: a **. pattern is lost on OkHttp before 4.3.
            warnings.filterwarnings("ignore", "OkHttp before 4.3 reads", ExportWarning)
            text = okhttp.dumps(policy, language=language)
    except ExportError:
        # A `*.` rule under a `**.` rule under another: coverage is not transitive.
        assume(False)
    back = okhttp.loads(text)
    assert back.policy == policy
    assert quietly(okhttp.dumps, back.policy, language=language) == text


@st.composite
def hpkp_policies(draw: st.DrawFn) -> Policy:
    enforce = draw(st.booleans())
    rule = DomainRule(
        draw(hostnames()),
        pins=tuple(draw(st.lists(pins(), unique=True, min_size=2 if enforce else 1, max_size=4))),
        include_subdomains=draw(st.booleans()),
        enforce=enforce,
        report_uris=tuple(draw(st.lists(st.sampled_from(REPORT_URIS), max_size=1))),
    )
    return _policy([rule])


@_SETTINGS
@given(hpkp_policies(), st.integers(0, 10**9))
def test_hpkp_round_trip(policy: Policy, max_age: int) -> None:
    text = hpkp.dumps(policy, max_age=max_age, host_line=True)
    back = hpkp.loads(text)
    assert back.policy == policy
    assert back.platform["max_age"] == max_age
    assert hpkp.dumps(back.policy, max_age=max_age, host_line=True) == text
    host = policy.rules[0].name
    assert hpkp.loads(hpkp.dumps(policy, max_age=max_age), host=host).policy == policy


@_SETTINGS
@given(policies(report_only=False, report_uris=False, exclusions=False, expiration=False))
def test_ats_export_warns_exactly_for_rules_deeper_than_one_label(generated: Policy) -> None:
    policy = expressible_ats(generated)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ios_ats.dumps(policy)
    warned = sorted(str(w.message).split()[2] for w in caught if w.category is ExportWarning)
    assert warned == sorted(r.name for r in policy.rules if r.include_subdomains)
