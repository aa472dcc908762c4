"""Host canonicalisation and rule matching (brief semantics 4 and 5)."""

from __future__ import annotations

import base64
import hashlib

import pytest

from _policies import BACKUP, WRONG
from pinset import ConfigError, DomainRule, Pin, Policy, canonical_host, policyfile
from pinset.hosts import is_ip_literal, parent_domains


def _pin(seed: str) -> Pin:
    return Pin(hashlib.sha256(seed.encode()).digest())


PINS = (_pin("current"), _pin("backup"))


def rule(name: str, **kwargs: object) -> DomainRule:
    kwargs.setdefault("pins", () if kwargs.get("exclude") else PINS)
    return DomainRule(name, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("example.com", "example.com"),
        ("EXAMPLE.com", "example.com"),
        ("Api.EXAMPLE.COM", "api.example.com"),
        ("example.com.", "example.com"),
        ("  example.com  ", "example.com"),
        ("bücher.example", "xn--bcher-kva.example"),
        ("BÜCHER.example.", "xn--bcher-kva.example"),
        ("xn--bcher-kva.example", "xn--bcher-kva.example"),
        ("XN--BCHER-KVA.EXAMPLE", "xn--bcher-kva.example"),
        ("_acme.example.com", "_acme.example.com"),
        ("localhost", "localhost"),
        ("127.0.0.1", "127.0.0.1"),
        ("::1", "::1"),
        ("[::1]", "::1"),
        ("[2001:DB8:0:0::1]", "2001:db8::1"),
        ("2001:0db8::0001", "2001:db8::1"),
    ],
)
def test_canonical_host(raw: str, canonical: str) -> None:
    assert canonical_host(raw) == canonical


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("", "empty host name"),
        ("   ", "empty host name"),
        (".", "empty label"),
        ("example.com..", "empty label"),
        (".example.com", "empty label"),
        ("a..example.com", "empty label"),
        ("exa mple.com", "invalid label"),
        ("-example.com", "invalid label"),
        ("example-.com", "invalid label"),
        ("*.example.com", "invalid label"),
        ("example.com/path", "invalid label"),
        ("a" * 64 + ".com", "invalid label"),
        (".".join(["a" * 60] * 5), "longer than 253"),
        ("exa\x00mple.com", "invalid label"),
        ("[example.com]", "invalid label"),
    ],
)
def test_rejected_hosts(raw: str, why: str) -> None:
    with pytest.raises(ConfigError, match=why):
        canonical_host(raw)


def test_non_text_host() -> None:
    with pytest.raises(ConfigError, match="must be text"):
        canonical_host(b"example.com")  # type: ignore[arg-type]


def test_ip_literals_and_parents() -> None:
    assert is_ip_literal("10.0.0.1")
    assert is_ip_literal("[fe80::1]")
    assert is_ip_literal("::")
    assert not is_ip_literal("example.com")
    assert not is_ip_literal("10.0.0")
    assert parent_domains("a.b.example.com") == ["b.example.com", "example.com", "com"]
    assert parent_domains("com") == []
    assert parent_domains("10.0.0.1") == []


# -- matching --------------------------------------------------------------------------

BASIC = Policy(
    rules=(
        rule("example.com", include_subdomains=True),
        rule("exact.org"),
        rule("xn--bcher-kva.example"),
        rule("10.0.0.1"),
        rule("2001:db8::1"),
    )
)


@pytest.mark.parametrize(
    ("host", "rule_name"),
    [
        ("example.com", "example.com"),
        ("EXAMPLE.com", "example.com"),
        ("example.com.", "example.com"),
        ("api.example.com", "example.com"),
        ("a.b.c.example.com", "example.com"),
        ("notexample.com", None),
        ("example.com.evil.net", None),
        ("example.comx", None),
        ("xexample.com", None),
        ("com", None),
        ("exact.org", "exact.org"),
        ("www.exact.org", None),
        ("bücher.example", "xn--bcher-kva.example"),
        ("xn--bcher-kva.example", "xn--bcher-kva.example"),
        ("www.bücher.example", None),
        ("10.0.0.1", "10.0.0.1"),
        ("10.0.0.10", None),
        ("[2001:db8::1]", "2001:db8::1"),
        ("2001:db8:0::1", "2001:db8::1"),
    ],
)
def test_matching_table(host: str, rule_name: str | None) -> None:
    found = BASIC.rule_for(host)
    assert (found.name if found else None) == rule_name
    assert BASIC.match(host) is found


def test_invalid_host_never_matches_silently() -> None:
    with pytest.raises(ConfigError):
        BASIC.match("example.com..")
    with pytest.raises(ConfigError):
        BASIC.match(".example.com")


NESTED = Policy(
    rules=(
        rule("example.com", include_subdomains=True, pins=(_pin("apex"), _pin("apex-b"))),
        rule("api.example.com", include_subdomains=True),
        rule("v1.api.example.com"),  # exact only
        rule("static.example.com", exclude=True),  # carves out the name only
        rule("cdn.example.com", exclude=True, include_subdomains=True),  # carves a subtree
        rule("pinned.cdn.example.com", include_subdomains=False, pins=(_pin("c"), _pin("d"))),
    )
)


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("example.com", "example.com"),
        ("www.example.com", "example.com"),
        ("api.example.com", "api.example.com"),
        ("x.api.example.com", "api.example.com"),
        ("v1.api.example.com", "v1.api.example.com"),
        # v1 is exact-only, so below it the longest include-subdomains parent wins
        ("x.v1.api.example.com", "api.example.com"),
        ("static.example.com", "excluded"),
        ("img.static.example.com", "example.com"),
        ("cdn.example.com", "excluded"),
        ("a.b.cdn.example.com", "excluded"),
        ("pinned.cdn.example.com", "pinned.cdn.example.com"),
        ("x.pinned.cdn.example.com", "excluded"),
        ("notapi.example.com", "example.com"),
    ],
)
def test_most_specific_rule_wins(host: str, expected: str) -> None:
    matched = NESTED.match(host)
    assert matched is not None
    if expected == "excluded":
        assert matched.exclude
        assert NESTED.rule_for(host) is None
    else:
        assert not matched.exclude
        assert matched.name == expected
        assert NESTED.rule_for(host) is matched


def test_okhttp_wildcards() -> None:
    policy = policyfile.loads(
        f"""
[[domain]]
name = "*.one.example"
pins = ["{PINS[0]}", "{PINS[1]}"]

[[domain]]
name = "**.any.example"
pins = ["{_pin("x")}", "{_pin("y")}"]
"""
    )
    one = policy.rule_for("a.one.example")
    assert one is not None
    assert one.one_label
    assert one.pattern == "*.one.example"
    assert policy.rule_for("B.ONE.EXAMPLE.") is one
    assert policy.rule_for("one.example") is None  # not the apex
    assert policy.rule_for("a.b.one.example") is None  # not two labels
    assert policy.rule_for("xone.example") is None
    anyd = policy.rule_for("any.example")
    assert anyd is not None
    assert anyd.include_subdomains
    assert anyd.pattern == "any.example"
    assert policy.rule_for("a.any.example") is anyd
    assert policy.rule_for("a.b.c.any.example") is anyd
    assert policy.rule_for("notany.example") is None


def test_exact_and_one_label_wildcard_coexist() -> None:
    apex = rule("example.net")
    star = rule("example.net", one_label=True, pins=(_pin("s1"), _pin("s2")))
    policy = Policy(rules=(apex, star))
    assert policy.rule_for("example.net") is apex
    assert policy.rule_for("www.example.net") is star
    assert policy.rule_for("a.www.example.net") is None


def test_one_label_wildcard_beats_include_subdomains_parent() -> None:
    parent = rule("example.net", include_subdomains=True)
    star = rule("example.net", one_label=True, pins=(_pin("s1"), _pin("s2")))
    policy = Policy(rules=(parent, star))
    assert policy.rule_for("www.example.net") is star
    assert policy.rule_for("a.www.example.net") is parent


def test_excluded_one_label_wildcard() -> None:
    parent = rule("example.net", include_subdomains=True)
    hole = rule("example.net", one_label=True, exclude=True)
    policy = Policy(rules=(parent, hole))
    assert policy.rule_for("www.example.net") is None
    assert policy.rule_for("a.www.example.net") is parent
    assert policy.rule_for("example.net") is parent


def test_rule_names_are_canonical() -> None:
    assert rule("Bücher.Example.").name == "xn--bcher-kva.example"
    assert rule("[::1]").name == "::1"
    with pytest.raises(ConfigError, match="IP address"):
        rule("10.0.0.1", include_subdomains=True)
    with pytest.raises(ConfigError, match="empty label"):
        rule("example.com..")


def test_covers_agrees_with_match() -> None:
    for host in ("example.com", "a.example.com", "notexample.com", "example.com.evil.net"):
        expected = BASIC.rule_for(host) is not None
        assert any(r.covers(canonical_host(host)) for r in BASIC.rules) == expected


def test_pin_text_in_rules_is_bytes() -> None:
    text = base64.b64encode(PINS[0].digest).decode()
    assert Pin.parse(text.rstrip("=")) in rule("example.org").pins


# -- four-number names are the address OpenSSL checks ----------------------------------


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [("127.000.000.001", "127.0.0.1"), ("010.0.0.1", "10.0.0.1"), ("127.0.0.1.", "127.0.0.1")],
)
def test_four_number_names_are_the_address_openssl_checks(raw: str, canonical: str) -> None:
    assert canonical_host(raw) == canonical
    rule = DomainRule(raw, pins=(WRONG, BACKUP))
    assert rule.name == canonical
    assert Policy(rules=(rule,)).rule_for(canonical) is rule


@pytest.mark.parametrize("raw", ["4294967423.0.0.1", "127.0.0.256", "1.2.3.99999999999999999999"])
def test_four_number_names_out_of_range_are_refused(raw: str) -> None:
    # OpenSSL's C parsing wraps 4294967423 around to 127: no single reading exists.
    with pytest.raises(ConfigError, match="four numbers"):
        canonical_host(raw)


# -- the most specific rule wins, wildcards and exclusions together --------------------


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("example.com", "**.example.com"),  # a *. rule does not cover its own name
        ("a.example.com", "*.example.com"),  # *. one label beats the ** parent
        ("static.example.com", None),  # exact exclusion beats the *. rule
        ("x.static.example.com", "**.example.com"),  # exclusion covers only its own name
        ("x.cdn.example.com", None),  # an exclusion with subdomains carves a subtree
        ("cdn.example.com", None),
        ("a.b.example.com", "**.example.com"),  # *. covers one label only
        ("notexample.com", None),
        ("example.com.evil.net", None),
    ],
)
def test_precedence_of_wildcards_and_exclusions(host: str, expected: str | None) -> None:
    policy = policyfile.loads(
        f"""
[[domain]]
name = "**.example.com"
pins = ["{WRONG}", "{BACKUP}"]
[[domain]]
name = "*.example.com"
pins = ["{BACKUP}", "{WRONG}"]
enforce = false
[[domain]]
name = "static.example.com"
exclude = true
[[domain]]
name = "cdn.example.com"
exclude = true
include-subdomains = true
"""
    )
    rule = policy.rule_for(host)
    got = None if rule is None else ("*." if rule.one_label else "**.") + rule.name
    assert got == expected
