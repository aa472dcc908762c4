"""Loading and writing policies: TOML and JSON with the same keys, lossless round trips."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pinset import ConfigError, DomainRule, Pin, Policy, policyfile

if sys.version_info >= (3, 11):
    import tomllib
else:  # the backport pinset itself depends on below 3.11
    import tomli as tomllib


def _pin(seed: str) -> Pin:
    return Pin(hashlib.sha256(seed.encode()).digest())


A, B, C = _pin("a"), _pin("b"), _pin("c")
PLACEHOLDER = Pin(bytes(32))

POLICY_TOML = f"""
[defaults]
enforce = true
include-subdomains = false
report-uris = ["https://pin-reports.example.net/v1/report"]

[[domain]]
name = "api.example.com"
include-subdomains = true
expiration = 2027-06-30
pins = [
  "{A}",
  "{B}",
]

[[domain]]
name = "static.api.example.com"
exclude = true

[[domain]]
name = "*.apps.example.com"
enforce = false
report-uris = []
pins = ["{C}"]

[[domain]]
name = "**.cdn.example.com"
allow-single-pin = true
pins = ["{C}", "{PLACEHOLDER}"]
"""

POLICY_JSON = json.dumps(
    {
        "defaults": {
            "enforce": True,
            "include-subdomains": False,
            "report-uris": ["https://pin-reports.example.net/v1/report"],
        },
        "domain": [
            {
                "name": "api.example.com",
                "include-subdomains": True,
                "expiration": "2027-06-30",
                "pins": [str(A), B.b64],
            },
            {"name": "static.api.example.com", "exclude": True},
            {"name": "*.apps.example.com", "enforce": False, "report-uris": [], "pins": [C.b64]},
            {
                "name": "**.cdn.example.com",
                "allow-single-pin": True,
                "pins": [str(C), str(PLACEHOLDER)],
            },
        ],
    },
    indent=2,
)


def test_toml_reads_every_key() -> None:
    policy = policyfile.loads(POLICY_TOML, source="pinset.toml")
    assert policy.enforce is True
    assert policy.include_subdomains is False
    assert policy.report_uris == ("https://pin-reports.example.net/v1/report",)
    assert policy.source == "pinset.toml"
    api = policy.rule_for("api.example.com")
    assert api is not None
    assert api.pins == (A, B)
    assert api.include_subdomains
    assert api.enforce
    assert not api.exclude
    assert api.expiration == dt.date(2027, 6, 30)
    assert api.report_uris == policy.report_uris
    assert policy.rule_for("static.api.example.com") is None
    apps = policy.rule_for("x.apps.example.com")
    assert apps is not None
    assert apps.one_label
    assert not apps.enforce
    assert apps.report_uris == ()
    cdn = policy.rule_for("a.b.cdn.example.com")
    assert cdn is not None
    assert cdn.allow_single_pin
    assert cdn.pins == (C, PLACEHOLDER)


def test_json_with_the_same_keys_is_the_same_policy() -> None:
    assert policyfile.loads(POLICY_JSON, format="json") == policyfile.loads(POLICY_TOML)


def test_load_picks_the_format_from_the_file(tmp_path: Path) -> None:
    toml_path = tmp_path / "pinset.toml"
    toml_path.write_text(POLICY_TOML, encoding="utf-8")
    json_path = tmp_path / "policy.json"
    json_path.write_text(POLICY_JSON, encoding="utf-8")
    sniffed = tmp_path / "policy.conf"
    sniffed.write_text(POLICY_JSON, encoding="utf-8")
    loaded = policyfile.load(toml_path)
    assert loaded.source == str(toml_path)
    assert loaded == policyfile.load(json_path) == policyfile.load(sniffed)


def test_load_errors_for_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read policy") as info:
        policyfile.load(tmp_path / "missing.toml")
    assert info.value.source == str(tmp_path / "missing.toml")
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ConfigError, match="not UTF-8"):
        policyfile.load(binary)


def test_defaults_apply_and_are_overridden() -> None:
    policy = policyfile.loads(
        f"""
[defaults]
enforce = false
include-subdomains = true
report-uris = ["https://r.example.net/a"]

[[domain]]
name = "a.example"
pins = ["{A}"]

[[domain]]
name = "b.example"
enforce = true
include-subdomains = false
report-uris = ["http://r.example.net/b"]
pins = ["{A}", "{B}"]
"""
    )
    a = policy.rule_for("x.a.example")
    assert a is not None
    assert not a.enforce
    assert a.report_uris == ("https://r.example.net/a",)
    assert policy.rule_for("x.b.example") is None
    b = policy.rule_for("b.example")
    assert b is not None
    assert b.enforce
    assert b.report_uris == ("http://r.example.net/b",)


def test_empty_policy_defaults() -> None:
    policy = policyfile.loads("")
    assert policy == Policy()
    assert policy.enforce
    assert not policy.include_subdomains
    assert policy.rules == ()
    assert policy.rule_for("example.com") is None


def test_to_toml_is_readable_and_round_trips() -> None:
    policy = policyfile.loads(POLICY_TOML)
    text = policyfile.dumps(policy)
    assert policyfile.loads(text) == policy
    assert text == policyfile.dumps(policyfile.loads(text))  # deterministic
    assert "expiration = 2027-06-30\n" in text
    assert f'  "{A}",\n' in text
    assert 'name = "*.apps.example.com"' in text
    assert policyfile.loads(policyfile.dumps(policy, format="json"), format="json") == policy
    assert tomllib.loads(text)["defaults"]["enforce"] is True


def test_a_character_beyond_the_basic_plane_is_written_as_toml_reads_it() -> None:
    """Found by fuzzing (tests/fixtures/fuzz/policy/): ``\\ud83d\\ude00`` is JSON, not TOML.

    The writer escaped strings as JSON does, a surrogate pair for a character beyond
    U+FFFF, which TOML refuses as "not a Unicode scalar value": the file pinset wrote
    did not load again. TOML writes such a character as ``\\U0001f600``.
    """
    text = '[debug-overrides]\ntrust-anchors = ["certs/\U0001f600-proxy.pem", "caf\u00e9.pem"]\n'
    policy = policyfile.loads(text)
    written = policyfile.dumps(policy)
    assert 'trust-anchors = ["certs/\\U0001f600-proxy.pem", "caf\\u00e9.pem"]' in written
    assert policyfile.loads(written) == policy


def test_to_dict_uses_file_keys() -> None:
    data = policyfile.to_dict(policyfile.loads(POLICY_TOML))
    assert set(data) == {"defaults", "domain"}
    api = next(d for d in data["domain"] if d["name"] == "api.example.com")
    assert api == {
        "name": "api.example.com",
        "include-subdomains": True,
        "expiration": dt.date(2027, 6, 30),
        "pins": [str(A), str(B)],
    }
    assert policyfile.from_dict(data) == policyfile.loads(POLICY_TOML)


def test_duplicate_pins_collapse_and_rules_are_sorted() -> None:
    rule = DomainRule("z.example", pins=(A, Pin.parse(A.b64.rstrip("=")), B))
    assert rule.pins == (A, B)
    policy = Policy(rules=(rule, DomainRule("a.example", pins=(A, B))))
    assert [r.name for r in policy.rules] == ["a.example", "z.example"]


def test_equality_ignores_source_and_order() -> None:
    r1, r2 = DomainRule("a.example", pins=(A, B)), DomainRule("b.example", pins=(A, B))
    assert Policy(rules=(r1, r2), source="x") == Policy(rules=(r2, r1), source="y")
    assert hash(Policy(rules=(r1, r2))) == hash(Policy(rules=(r2, r1)))
    assert Policy(rules=(r1,)) != Policy(rules=(r1,), enforce=False)


def test_policy_is_immutable() -> None:
    policy = policyfile.loads(POLICY_TOML)
    with pytest.raises(AttributeError):
        policy.enforce = False  # type: ignore[misc]
    assert isinstance(policy.rules, tuple)


# -- property-based round trip ----------------------------------------------------

_labels = st.from_regex(r"[a-z0-9](?:[a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True)
# Four all-number labels are an IPv4 address, not a DNS name (canonical_host reads them as one).
_names = (
    st.lists(_labels, min_size=1, max_size=4)
    .map(".".join)
    .filter(lambda name: not all(label.isdigit() for label in name.split(".")))
)
_pins = st.binary(min_size=32, max_size=32).map(Pin).filter(lambda p: not p.is_placeholder)
_uris = st.lists(
    st.builds(
        "https://{}/{}".format,
        _names,
        st.text(alphabet="abcxyz019-_~%/?=&é", max_size=12),
    ),
    max_size=2,
).map(tuple)


@st.composite
def _rules(draw: st.DrawFn) -> DomainRule:
    name = draw(_names)
    one_label = draw(st.booleans())
    exclude = draw(st.booleans())
    enforce = draw(st.booleans())
    pins: tuple[Pin, ...] = ()
    if not exclude:
        real = draw(st.lists(_pins, min_size=2, max_size=4, unique=True))
        extra = draw(st.lists(st.sampled_from([Pin(bytes(32)), Pin(b"\x41" * 32)]), max_size=1))
        pins = (*real, *extra)
    return DomainRule(
        name=name,
        pins=pins,
        include_subdomains=False if one_label else draw(st.booleans()),
        expiration=draw(st.none() | st.dates(dt.date(1990, 1, 1), dt.date(2200, 1, 1))),
        enforce=enforce,
        report_uris=draw(_uris),
        exclude=exclude,
        allow_single_pin=draw(st.booleans()),
        one_label=one_label,
    )


@st.composite
def _policies(draw: st.DrawFn) -> Policy:
    rules = draw(st.lists(_rules(), max_size=5, unique_by=lambda r: (r.name, r.one_label)))
    return Policy(
        rules=tuple(rules),
        enforce=draw(st.booleans()),
        include_subdomains=draw(st.booleans()),
        report_uris=draw(_uris),
    )


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_policies())
def test_any_policy_round_trips_through_toml_and_json(policy: Policy) -> None:
    text = policyfile.dumps(policy)
    again = policyfile.loads(text)
    assert again == policy
    assert policyfile.dumps(again) == text
    assert policyfile.loads(policyfile.dumps(policy, format="json"), format="json") == policy
    assert policyfile.from_dict(policyfile.to_dict(policy)) == policy


def test_load_policy_reads_a_path_and_dumps_names_only_toml_or_json(tmp_path: Path) -> None:
    import pinset

    path = tmp_path / "pinset.toml"
    path.write_text(POLICY_TOML)
    assert pinset.load_policy(path) == policyfile.load(str(path)) == policyfile.loads(POLICY_TOML)
    with pytest.raises(ConfigError, match="unknown policy format 'yaml'"):
        policyfile.dumps(policyfile.loads(POLICY_TOML), format="yaml")  # type: ignore[arg-type]


def test_a_policy_reads_no_file_and_judges_no_chain() -> None:
    # Purity by construction: those are pinset.policyfile and pinset.evaluate (and the layer
    # contract in make lint keeps policy.py from importing either).
    for name in ("load", "loads", "from_dict", "to_toml", "to_json", "to_dict", "evaluate"):
        assert not hasattr(Policy, name), name
