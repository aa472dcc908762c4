"""Config errors name the key, the domain and the exact line of the policy file."""

from __future__ import annotations

import base64
import hashlib
import json
import textwrap

import pytest

from _policies import BACKUP, WRONG
from pinset import ConfigError, DomainRule, Pin, PinFormatError, Policy, policyfile


def _pin(seed: str) -> Pin:
    return Pin(hashlib.sha256(seed.encode()).digest())


A, B = _pin("a"), _pin("b")
ZERO = Pin(bytes(32))
BBBB = "sha256/" + "B" * 43 + "="

# Line 1 is the first line after the opening quotes (textwrap.dedent + lstrip).
GOOD_PREFIX = f"""\
[defaults]
enforce = true

[[domain]]
name = "ok.example"
pins = ["{A}", "{B}"]

"""  # six lines; the domain under test starts on line 8


def load(body: str, *, prefix: bool = True) -> ConfigError:
    text = (GOOD_PREFIX if prefix else "") + textwrap.dedent(body).lstrip("\n")
    with pytest.raises(ConfigError) as info:
        policyfile.loads(text, source="pinset.toml")
    return info.value


def check(error: ConfigError, *, line: int, key: str | None, words: tuple[str, ...]) -> None:
    assert error.source == "pinset.toml"
    assert error.line == line, (error.line, str(error))
    assert str(error).startswith(f"pinset.toml:{line}")
    if key is not None:
        assert error.key == key
        assert key in str(error) or key in error.message
    for word in words:
        assert word in error.message, (word, error.message)
    assert f"--> pinset.toml:{line}" in error.diagnostics()


def test_unknown_key_in_domain_with_did_you_mean() -> None:
    error = load(
        f"""
        [[domain]]
        name = "api.example.com"
        include-subdomain = true
        pins = ["{A}", "{B}"]
        """
    )
    check(error, line=10, key="include-subdomain", words=("unknown key", "api.example.com"))
    assert error.hint == "did you mean 'include-subdomains'?"


def test_unknown_key_in_defaults_and_top_level() -> None:
    error = load(
        """
        [defaults]
        enforce = true

        report-uri = ["https://r.example.net/"]
        """,
        prefix=False,
    )
    check(error, line=4, key="report-uri", words=("unknown key", "[defaults]"))
    assert error.hint == "did you mean 'report-uris'?"
    error = load(
        """
        # a comment

        [domains]
        name = "x.example"
        """,
        prefix=False,
    )
    check(error, line=3, key="domains", words=("unknown key", "top level"))
    assert error.hint == "did you mean 'domain'?"


def test_duplicate_domain_names_the_second_table() -> None:
    error = load(
        f"""
        [[domain]]
        name = "OK.example."
        pins = ["{A}", "{B}"]
        """
    )
    check(error, line=9, key="name", words=("ok.example", "appears twice", "#1"))


def test_single_real_pin_points_at_pins() -> None:
    error = load(
        f"""
        [[domain]]
        name = "api.example.com"
        expiration = 2027-01-01

        pins = ["{A}"]
        """
    )
    check(error, line=12, key="pins", words=("api.example.com", "1 real pin", "backup"))
    assert "allow-single-pin" in (error.hint or "")


def test_duplicate_pin_is_not_a_backup() -> None:
    error = load(
        f"""
        [[domain]]
        name = "api.example.com"
        pins = ["{A}", "{A.b64.rstrip("=")}"]
        """
    )
    check(error, line=10, key="pins", words=("1 real pin",))


@pytest.mark.parametrize("placeholder", [str(ZERO), BBBB, "A" * 43])
def test_placeholder_backup_does_not_count(placeholder: str) -> None:
    error = load(
        f"""
        [[domain]]
        name = "api.example.com"
        pins = [
            "{A}",
            "{placeholder}",
        ]
        """
    )
    check(error, line=10, key="pins", words=("1 real pin", "1 placeholder pin does not count"))


def test_only_placeholders_is_refused_even_with_allow_single_pin() -> None:
    error = load(
        f"""
        [[domain]]
        name = "api.example.com"
        allow-single-pin = true
        pins = ["{ZERO}"]
        """
    )
    check(error, line=11, key="pins", words=("only placeholder pins",))


def test_allow_single_pin_lifts_the_two_pin_rule() -> None:
    text = (
        GOOD_PREFIX + f'[[domain]]\nname = "one.example"\nallow-single-pin = true\npins = ["{A}"]\n'
    )
    rule = policyfile.loads(text).rule_for("one.example")
    assert rule is not None
    assert rule.pins == (A,)
    assert rule.allow_single_pin
    report_only = GOOD_PREFIX + f'[[domain]]\nname = "r.example"\nenforce = false\npins = ["{A}"]\n'
    assert policyfile.loads(report_only).rule_for("r.example") is not None
    with pytest.raises(ConfigError, match=r"allow-single-pin in domain 'one\.example' must be"):
        policyfile.loads(text.replace("allow-single-pin = true", 'allow-single-pin = "yes"'))


def test_bad_pin_in_multiline_array_points_at_its_own_line() -> None:
    error = load(
        f"""
        [[domain]]
        name = "api.example.com"
        pins = [
            # the current key
            "{A}",
            "{B}",  # the backup
            "sha1/{A.b64[:27]}=",
        ]
        """
    )
    assert isinstance(error, PinFormatError)
    check(error, line=14, key=None, words=("sha1/ pins are not supported",))


def test_bad_pin_on_one_line_array() -> None:
    error = load(
        f"""
        [[domain]]
        name = "api.example.com"
        pins = ["{A}", "{B.b64.replace("+", "-").replace("/", "_")}x"]
        """
    )
    assert isinstance(error, PinFormatError)
    check(error, line=10, key=None, words=())


def test_pin_of_wrong_type() -> None:
    error = load(
        """
        [[domain]]
        name = "api.example.com"
        pins = [
          42,
        ]
        """
    )
    check(error, line=11, key=None, words=("must be text",))
    error = load(
        """
        [[domain]]
        name = "api.example.com"
        pins = "sha256/abc"
        """
    )
    check(error, line=10, key="pins", words=("must be a list",))


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ('"2027-13-01"', ("not a date",)),
        ('"30.06.2027"', ("not a date",)),
        ('"20270630"', ("not a date",)),
        ("2027-06-30T00:00:00", ("has a time of day",)),
        ("2027-06-30T12:00:00Z", ("has a time of day",)),
        ("2027-06-30 00:00:00+02:00", ("has a time of day",)),
        ("12:00:00", ("not a date",)),
        ("20270630", ("not a date",)),
        ("true", ("not a date",)),
    ],
)
def test_bad_expiration(value: str, words: tuple[str, ...]) -> None:
    error = load(
        f"""
        [[domain]]
        name = "api.example.com"
        pins = ["{A}", "{B}"]
        expiration = {value}
        """
    )
    check(error, line=11, key="expiration", words=("api.example.com", *words))
    assert "YYYY-MM-DD" in (error.hint or "") or "expiration = 2027-06-30" in (error.hint or "")


@pytest.mark.parametrize(
    ("key", "value", "line", "words"),
    [
        ("enforce", '"yes"', 9, ("enforce", "must be true or false")),
        ("include-subdomains", "1", 9, ("include-subdomains", "must be true or false")),
        ("exclude", '"true"', 9, ("exclude", "must be true or false")),
        ("report-uris", '"https://r.example.net/"', 9, ("must be a list",)),
        ("name", "42", 9, ("name", "must be a string")),
    ],
)
def test_wrong_types(key: str, value: str, line: int, words: tuple[str, ...]) -> None:
    name_line = "" if key == "name" else 'name = "api.example.com"\n'
    body = f'[[domain]]\n{key} = {value}\n{name_line}pins = ["{A}", "{B}"]\n'
    error = load(body)
    check(error, line=line, key=key, words=words)


def test_missing_name_points_at_the_table() -> None:
    error = load(f'[[domain]]\npins = ["{A}", "{B}"]\n')
    check(error, line=8, key="name", words=("[[domain]] #2", "has no name"))


@pytest.mark.parametrize(
    "uri",
    [
        "ftp://r.example.net/",
        "r.example.net/report",
        "https:///path",
        "https://[::1",
        "https://a b/",
    ],
)
def test_bad_report_uri_points_at_the_uri(uri: str) -> None:
    error = load(
        f"""
        [[domain]]
        name = "api.example.com"
        pins = ["{A}", "{B}"]
        report-uris = [
            "https://good.example.net/",
            {json.dumps(uri)},
        ]
        """
    )
    check(error, line=13, key="report-uris", words=("not an http(s) URL", "api.example.com"))


def test_bad_report_uri_in_defaults() -> None:
    error = load('[defaults]\nreport-uris = ["mailto:x@example.net"]\n', prefix=False)
    check(error, line=2, key="report-uris", words=("[defaults]", "not an http(s) URL"))


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("example..com", ("empty label",)),
        ("*.*.example.com", ("'*' is only allowed",)),
        ("ex*mple.com", ("'*' is only allowed",)),
        ("*.10.0.0.1", ("IP address",)),
    ],
)
def test_bad_names(name: str, words: tuple[str, ...]) -> None:
    error = load(f'[[domain]]\nname = "{name}"\npins = ["{A}", "{B}"]\n')
    check(error, line=9, key=None, words=words)


def test_wildcard_with_include_subdomains() -> None:
    error = load(
        f'[[domain]]\nname = "*.example.com"\ninclude-subdomains = true\npins = ["{A}", "{B}"]\n'
    )
    check(error, line=10, key="include-subdomains", words=("wildcard name",))


def test_exclusion_with_pins_and_rule_without_pins() -> None:
    error = load(f'[[domain]]\nname = "x.example"\nexclude = true\npins = ["{A}"]\n')
    check(error, line=11, key="pins", words=("exclusion but lists pins",))
    error = load('[[domain]]\nname = "x.example"\n')
    check(error, line=9, key="pins", words=("has no pins",))


def test_toml_syntax_error_has_line_and_column() -> None:
    error = load('[[domain]]\nname = "x.example\n')
    assert error.line == 9
    assert error.column is not None
    assert "invalid TOML" in error.message
    error = load('[[domain]]\nname = "x.example"\nname = "y.example"\n')
    assert error.line == 10


def test_json_errors_have_lines() -> None:
    text = json.dumps(
        {
            "defaults": {"enforce": True},
            "domain": [
                {"name": "ok.example", "pins": [str(A), str(B)]},
                {"name": "bad.example", "pins": [str(A), "md5/AAAA"], "enforce": True},
            ],
        },
        indent=2,
    )
    lines = text.splitlines()
    with pytest.raises(ConfigError) as info:
        policyfile.loads(text, format="json", source="p.json")
    assert info.value.line == next(i for i, s in enumerate(lines, 1) if "md5/" in s)
    bad_key = text.replace('"enforce": true\n    }', '"enforced": true\n    }')
    with pytest.raises(ConfigError) as info:
        policyfile.loads(bad_key, format="json", source="p.json")
    assert info.value.key == "enforced"
    assert info.value.line == next(
        i for i, s in enumerate(lines, 1) if '"enforce": true' in s and i > 3
    )
    with pytest.raises(ConfigError, match="invalid JSON") as info:
        policyfile.loads('{\n  "domain": [,]\n}', format="json")
    assert info.value.line == 2
    with pytest.raises(ConfigError, match="a policy is a table"):
        policyfile.loads("[]", format="json")


def test_structural_errors() -> None:
    with pytest.raises(ConfigError, match=r"\[defaults\] must be a table"):
        policyfile.loads('defaults = "x"\n')
    with pytest.raises(ConfigError, match="must be a table"):
        policyfile.loads('domain = ["x"]\n')
    with pytest.raises(ConfigError, match="unknown policy format"):
        policyfile.loads("", format="yaml")


def test_direct_construction_validates_too() -> None:
    with pytest.raises(ConfigError, match="appears twice"):
        Policy(rules=(DomainRule("a.example", pins=(A, B)), DomainRule("A.example.", pins=(A, B))))
    with pytest.raises(ConfigError, match="calendar date"):
        DomainRule("a.example", pins=(A, B), expiration="2027-01-01")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="must be Pin values"):
        DomainRule("a.example", pins=(str(A), str(B)))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="one-label wildcard"):
        DomainRule("a.example", pins=(A, B), one_label=True, include_subdomains=True)


# -- pins, backups and names that only look different ----------------------------------


def test_url_safe_pin_is_a_load_error_with_file_and_line() -> None:
    digest = next(
        hashlib.sha256(str(n).encode()).digest()
        for n in range(1000)
        if {"-", "_"}
        & set(base64.urlsafe_b64encode(hashlib.sha256(str(n).encode()).digest()).decode())
    )
    urlsafe = "sha256/" + base64.urlsafe_b64encode(digest).decode()
    text = f'[[domain]]\nname = "a.example"\npins = [\n  "{BACKUP}",\n  "{urlsafe}",\n]\n'
    with pytest.raises(PinFormatError, match="URL-safe") as info:
        policyfile.loads(text, source="pinset.toml")
    assert info.value.source == "pinset.toml"
    assert info.value.line == 5


def test_two_spellings_of_one_pin_are_not_a_backup() -> None:
    padded = str(WRONG)
    unpadded = " " + padded.rstrip("=")[:20] + " " + padded.rstrip("=")[20:]
    text = f'[[domain]]\nname = "a.example"\npins = ["{padded}", "{unpadded}"]\n'
    with pytest.raises(ConfigError, match="backup pin"):
        policyfile.loads(text)


@pytest.mark.parametrize(
    ("first", "second"),
    [("api.example.com", "API.Example.COM."), ("127.0.0.1", "127.000.000.001")],
)
def test_one_domain_in_two_spellings_is_a_duplicate(first: str, second: str) -> None:
    text = "".join(
        f'[[domain]]\nname = "{name}"\npins = ["{WRONG}", "{BACKUP}"]\n' for name in (first, second)
    )
    with pytest.raises(ConfigError, match="appears twice") as info:
        policyfile.loads(text, source="pinset.toml")
    assert info.value.line == 5  # the second name


def test_json_policy_with_a_duplicate_key_is_refused() -> None:
    text = (
        '{"domain": [{"name": "a.example", "enforce": true, "enforce": false, '
        f'"pins": ["{WRONG}", "{BACKUP}"]}}]}}'
    )
    with pytest.raises(ConfigError, match="enforce"):
        policyfile.loads(text, format="json")


@pytest.mark.parametrize("escape", ["\\ud800", "\\udc71", "\\ude00\\ud83d"])
def test_json_policy_with_half_a_surrogate_pair_is_refused(escape: str) -> None:
    """``\\ud800`` alone is valid JSON but no character (the fuzz target's round trip).

    The policy loaded, and its TOML export (``\\ud800``) did not load again; a pair in
    the right order is one character and loads (RFC 8259 section 7).
    """
    text = '{"debug-overrides": {"trust-anchors": ["proxy-%s.pem"]}}'
    with pytest.raises(ConfigError, match="half of a surrogate pair") as info:
        policyfile.loads(text % escape, format="json", source="p.json")
    assert info.value.source == "p.json"
    policy = policyfile.loads(text % "\\ud83d\\ude00", format="json")
    assert policy.debug_overrides is not None
    assert policy.debug_overrides.trust_anchors == ("proxy-\U0001f600.pem",)
    assert policyfile.loads(policyfile.dumps(policy)) == policy


def test_placeholder_in_a_report_uri_is_refused() -> None:
    text = (
        '[[domain]]\nname = "a.example"\n'
        'report-uris = ["https://${REPORT_HOST}/r"]\n'
        f'pins = ["{WRONG}", "{BACKUP}"]\n'
    )
    with pytest.raises(ConfigError, match="report"):
        policyfile.loads(text)
