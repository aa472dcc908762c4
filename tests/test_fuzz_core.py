"""Property tests: bad input to the core only ever raises pinset's own errors."""

from __future__ import annotations

import base64
import contextlib
import hashlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pinset import (
    ChainError,
    ConfigError,
    DomainRule,
    Pin,
    PinFormatError,
    Policy,
    canonical_host,
    policyfile,
    spki_pin,
)
from pinset._der import DerError, certificate_spki, csr_spki, public_key_spki
from pinset.pins import spki_der

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

_b64_chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=-_: \t\n"
_pin_texts = st.one_of(
    st.text(),
    st.text(alphabet=_b64_chars, max_size=60),
    st.builds(
        "{}{}".format,
        st.sampled_from(
            ["sha256/", "sha256//", "sha1/", "md5/", "pin-sha256=", 'pin-sha256="', ""]
        ),
        st.text(alphabet=_b64_chars, max_size=50),
    ),
)


@FUZZ
@given(_pin_texts)
def test_pin_parse_raises_only_pin_format_error(text: str) -> None:
    try:
        pin = Pin.parse(text)
    except PinFormatError as exc:
        error: PinFormatError | None = exc
    else:
        error = None
        assert len(pin.digest) == 32
        assert Pin.parse(str(pin)) == pin
    if error is not None:
        assert error.message
        assert error.hint


@FUZZ
@given(
    st.binary(min_size=32, max_size=32),
    st.sampled_from(["", "sha256/", "sha256//"]),
    st.booleans(),
    st.integers(0, 43),
)
def test_every_digest_parses_in_every_spelling(
    digest: bytes, prefix: str, padded: bool, cut: int
) -> None:
    pin = Pin(digest)
    body = pin.b64 if padded else pin.b64.rstrip("=")
    spaced = body[:cut] + " \n" + body[cut:]
    assert Pin.parse(prefix + body) == pin
    assert Pin.parse(prefix + spaced) == pin
    assert Pin.parse(f'pin-sha256="{body}"') == pin


_toml_keys = st.sampled_from(
    [
        "name",
        "pins",
        "enforce",
        "include-subdomains",
        "expiration",
        "exclude",
        "report-uris",
        "allow-single-pin",
        "defaults",
        "domain",
        "x",
    ]
)
_scalars = st.one_of(
    st.booleans(),
    st.integers(-10, 10),
    st.text(max_size=20),
    st.dates(),
    st.datetimes(),
    st.sampled_from(
        [
            "example.com",
            "*.example.com",
            "**.a.b",
            "sha256/" + "A" * 43 + "=",
            str(Pin(hashlib.sha256(b"k").digest())),
            "https://r.example.net/",
            "2027-01-01",
            "ex..ample",
            "[::1]",
        ]
    ),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_toml_keys, inner, max_size=5),
    max_leaves=20,
)


@FUZZ
@given(st.dictionaries(_toml_keys, _values, max_size=4))
def test_from_dict_raises_only_config_error(data: dict[str, object]) -> None:
    try:
        policy = policyfile.from_dict(data)
    except ConfigError as exc:
        message = exc.message
    else:
        message = "loaded"
        assert policyfile.loads(policyfile.dumps(policy)) == policy
    assert message


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.dictionaries(_toml_keys, _values, max_size=6), max_size=3))
def test_domain_tables_raise_only_config_error(domains: list[dict[str, object]]) -> None:
    with contextlib.suppress(ConfigError):
        policyfile.from_dict({"domain": domains})


@FUZZ
@given(st.text())
def test_loads_on_arbitrary_text_raises_only_config_error(text: str) -> None:
    for fmt in ("toml", "json"):
        with contextlib.suppress(ConfigError):
            policyfile.loads(text, format=fmt)


_toml_lines = st.lists(
    st.one_of(
        st.sampled_from(["[defaults]", "[[domain]]", "[domain]", "pins = [", "]", "#", ""]),
        st.builds(
            "{} = {}".format,
            _toml_keys,
            st.sampled_from(
                [
                    "true",
                    "1",
                    '"x"',
                    "2027-01-01",
                    "[]",
                    '["a", "b"]',
                    '"example.com"',
                    "2027-01-01T00:00:00",
                ]
            ),
        ),
        st.just(f'"{Pin(hashlib.sha256(b"a").digest())}",'),
    ),
    max_size=15,
).map("\n".join)


@FUZZ
@given(_toml_lines)
def test_loads_on_toml_like_text_raises_only_config_error(text: str) -> None:
    try:
        policyfile.loads(text, source="fuzz.toml")
    except ConfigError as exc:
        source, line = exc.source, exc.line
    else:
        return
    assert source == "fuzz.toml"
    assert line is None or 1 <= line <= max(1, len(text.splitlines()))


def test_deep_nesting_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        policyfile.loads("[" * 100_000, format="json")
    with pytest.raises(ConfigError):
        policyfile.loads('{"a": ' + "1" * 10_000 + "}", format="json")
    with pytest.raises(ConfigError):
        policyfile.loads("x = " + "[" * 100_000)


@FUZZ
@given(st.binary(max_size=300))
def test_der_cutters_raise_only_der_error(data: bytes) -> None:
    for cutter in (certificate_spki, csr_spki, public_key_spki):
        try:
            out = cutter(data)
        except DerError:
            continue
        assert out
        assert out[0] == 0x30
        assert out in data


@FUZZ
@given(st.binary(max_size=300))
def test_spki_pin_on_random_bytes_raises_only_chain_error(data: bytes) -> None:
    try:
        der = spki_der(data)
    except ChainError:
        return
    assert spki_pin(data) == Pin.of_spki(der)


@FUZZ
@given(
    st.sampled_from(
        [
            b"CERTIFICATE",
            b"PUBLIC KEY",
            b"PRIVATE KEY",
            b"CERTIFICATE REQUEST",
            b"RSA PUBLIC KEY",
            b"EC PRIVATE KEY",
            b"X",
        ]
    ),
    st.binary(max_size=120),
)
def test_spki_pin_on_random_pem_raises_only_chain_error(kind: bytes, body: bytes) -> None:
    pem = (
        b"-----BEGIN "
        + kind
        + b"-----\n"
        + base64.encodebytes(body)
        + b"-----END "
        + kind
        + b"-----\n"
    )
    with contextlib.suppress(ChainError):
        spki_pin(pem)


@FUZZ
@given(st.one_of(st.text(), st.text(alphabet="abcXYZ019-_.*[]:éü \u3002", max_size=40)))
def test_canonical_host_raises_only_config_error(name: str) -> None:
    try:
        host = canonical_host(name)
    except ConfigError:
        return
    assert host == canonical_host(host)  # canonical form is a fixed point
    assert host == host.lower()
    assert not host.endswith(".")


@FUZZ
@given(
    st.text(alphabet="abcxyz-.", min_size=1, max_size=30), st.text(alphabet="abcxyz-.", max_size=30)
)
def test_match_is_label_bounded(rule_name: str, host: str) -> None:
    try:
        rule = DomainRule(
            rule_name,
            include_subdomains=True,
            enforce=False,
            pins=(Pin(hashlib.sha256(b"x").digest()),),
        )
        canonical = canonical_host(host)
    except ConfigError:
        return
    found = Policy(rules=(rule,)).rule_for(canonical)
    expected = canonical == rule.name or canonical.endswith("." + rule.name)
    assert (found is not None) == expected
