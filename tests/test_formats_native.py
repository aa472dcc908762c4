"""The native pinset format: TOML and JSON through the registry interface."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest

from pinset import policyfile
from pinset.errors import ConfigError
from pinset.formats import _native as native
from pinset.pins import Pin
from pinset.policy import DomainRule, Policy

P1, P2 = (Pin(hashlib.sha256(b"n %d" % n).digest()) for n in (1, 2))

POLICY = Policy(
    rules=(
        DomainRule(
            "api.example.com",
            pins=(P1, P2),
            include_subdomains=True,
            expiration=dt.date(2027, 6, 30),
            report_uris=("https://r.example.net/",),
        ),
        DomainRule("static.api.example.com", exclude=True),
    ),
)


def test_toml_is_policy_to_toml_and_reads_back_equal() -> None:
    text = native.dumps(POLICY)
    assert text == policyfile.dumps(POLICY)
    imported = native.loads(text, source="pinset.toml")
    assert imported.policy == POLICY
    assert (imported.format, imported.source, imported.findings) == ("pinset", "pinset.toml", ())


def test_json_is_policy_to_json_and_reads_back_equal() -> None:
    text = native.dumps(POLICY, json=True)
    assert text == policyfile.dumps(POLICY, format="json")
    assert native.loads(text.encode()).policy == POLICY


def test_hand_written_policy_keeps_the_two_pin_rule() -> None:
    text = f'[[domain]]\nname = "a.example"\npins = ["sha256/{P1.b64}"]\n'
    with pytest.raises(ConfigError, match="backup pin") as info:
        native.loads(text, source="pinset.toml")
    assert info.value.source == "pinset.toml"


def test_bytes_that_are_not_utf8_are_a_config_error() -> None:
    with pytest.raises(ConfigError, match="not UTF-8"):
        native.loads(b"\xff\xfe[defaults]", source="p.toml")


def test_sniff() -> None:
    assert native.sniff(policyfile.dumps(POLICY).encode())
    assert native.sniff(policyfile.dumps(POLICY, format="json").encode())
    assert not native.sniff(b"<network-security-config/>")
    assert not native.sniff(b'{"NSAppTransportSecurity": {}}')
    assert not native.sniff(b"\xff\xfe")


ZERO, BBBB = Pin(bytes(32)), "sha256/" + "B" * 43 + "="


def test_a_placeholder_only_rule_must_say_so_in_a_hand_written_policy() -> None:
    body = f'[[domain]]\nname = "a.example.com"\npins = ["{ZERO}", "{BBBB}"]\n'
    with pytest.raises(ConfigError, match="only placeholder pins") as caught:
        native.loads(body, source="pinset.toml")
    assert "placeholder-only = true" in (caught.value.hint or "")
    assert "B" * 42 + "A=" not in caught.value.message  # never a re-encoded spelling
    said = native.loads(body + "placeholder-only = true\n", source="pinset.toml").policy
    assert said.rules[0].placeholder_only
    # What an importer keeps survives pinset.toml: export, then import, gives the same policy.
    assert native.loads(policyfile.dumps(said)).policy == said
    with pytest.raises(ConfigError, match="marked placeholder-only but lists the real pin"):
        native.loads(body.replace(BBBB, str(P1)) + "placeholder-only = true\n")


def test_the_reader_returns_where_each_rule_and_pin_is_written() -> None:
    text = (
        '[[domain]]\nname = "Bücher.example"\nexpiration = 2027-06-30\npins = [\n'
        f'  "{P1}",\n  "{P2.b64.rstrip("=")}",\n]\n'
        f'\n[[domain]]\nname = "*.api.example.com"\npins = ["{P1}", "{P2}"]\n'
    )
    imported = native.loads(text, source="pinset.toml")
    assert imported.lines == {"xn--bcher-kva.example": 2, "*.api.example.com": 10}
    first, second = sorted(imported.written, key=lambda w: w.line or 0)
    assert (first.pattern, first.line, first.lines) == ("xn--bcher-kva.example", 2, (5, 6))
    assert first.texts == (str(P1), P2.b64.rstrip("="))
    assert (first.prefix, first.single_pin_accepted) == ("sha256/", False)
    assert (second.pattern, second.lines) == ("*.api.example.com", (11, 11))
