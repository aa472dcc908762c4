"""HTTP Public Key Pinning headers (RFC 7469)."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import pytest

from pinset import policyfile
from pinset.audit import imported_findings
from pinset.cli import main
from pinset.errors import ConfigError
from pinset.formats import _hpkp as hpkp
from pinset.formats._model import ExportError, ExportWarning
from pinset.pins import Pin
from pinset.policy import DomainRule, Policy

pytestmark = pytest.mark.filterwarnings("error::pinset.formats._model.ExportWarning")

A, B, C = (Pin(hashlib.sha256(f"key-{n}".encode()).digest()) for n in "abc")
PLACEHOLDER = Pin(bytes(32))
KEYGEN = "add the pin-sha256 of an offline backup key (pinset keygen)"
SHA1 = 'pin-sha1="cO/Xg/r7O87qWxnCNUt5NDFpD34="'  # 20 bytes, as a SHA-1 digest is
REPORT = "https://example.net/pkp-report"
TWO = f'pin-sha256="{A.b64}"; pin-sha256="{B.b64}"'
HEADER = (
    f'Public-Key-Pins: pin-sha256="{A.b64}"; pin-sha256="{B.b64}"; max-age=5184000; '
    f'includeSubDomains; report-uri="{REPORT}"'
)


def test_header_with_host_line() -> None:
    imported = hpkp.loads(f"Host: Example.COM\n{HEADER}\n", source="headers.txt")
    assert imported.format == "hpkp"
    assert imported.policy == Policy(
        rules=(
            DomainRule("example.com", pins=(A, B), include_subdomains=True, report_uris=(REPORT,)),
        )
    )
    assert imported.platform == {"max_age": 5184000, "header": "Public-Key-Pins"}
    assert imported.lines == {"example.com": 2}
    assert imported.findings == ()  # HPKP bounds pins with max-age, not a date


def test_host_option_and_bare_header_value() -> None:
    value = HEADER.split(": ", 1)[1]
    imported = hpkp.loads(value, host="api.example.com")
    assert imported.policy.rules[0].name == "api.example.com"
    assert imported.policy.rules[0].enforce
    # The option wins over a Host: line.
    both = hpkp.loads(f"Host: other.example\n{HEADER}", host="api.example.com")
    assert both.policy.rules[0].name == "api.example.com"


def test_missing_host_is_an_error_that_says_how_to_give_it() -> None:
    with pytest.raises(ConfigError, match="no host is given") as caught:
        hpkp.loads(HEADER, source="h.txt")
    assert caught.value.line == 1
    assert caught.value.hint is not None
    assert "host=" in caught.value.hint


def test_report_only_header() -> None:
    text = f'Public-Key-Pins-Report-Only: pin-sha256="{A.b64}"; report-uri="{REPORT}"'
    imported = hpkp.loads(text, host="example.com")
    rule = imported.policy.rules[0]
    assert (rule.enforce, rule.pins, rule.report_uris) == (False, (A,), (REPORT,))
    assert imported.platform == {"max_age": None, "header": "Public-Key-Pins-Report-Only"}
    assert hpkp.dumps(imported.policy, max_age=60).startswith("Public-Key-Pins-Report-Only: ")


def test_directive_names_are_case_insensitive() -> None:
    text = (
        f'public-key-pins: PIN-SHA256="{A.b64}";Pin-Sha256="{B.b64}";MAX-AGE=10;INCLUDESUBDOMAINS'
    )
    rule = hpkp.loads(text, host="example.com").policy.rules[0]
    assert (rule.pins, rule.include_subdomains) == ((A, B), True)


@pytest.mark.parametrize(
    ("value", "message", "hint"),
    [
        (f'{TWO}; max-age=1; max-age=2', "appears twice", None),
        (TWO, "needs max-age", "add max-age=5184000 (60 days)"),
        (f'{TWO}; max-agee=1', "needs max-age", "'max-agee' is not max-age: write max-age=…"),
        (f'{TWO}; max-age=1d', "number of seconds", None),
        (f'{TWO}; max-age=1; includeSubDomains=1', "takes no value", None),
        (f'pin-sha256="{A.b64}"; max-age=1', "without a backup pin", KEYGEN),
        (f'{SHA1}; pin-sha256="{B.b64}"; max-age=1',
         r"without a backup pin \(skipped: pin-sha1\)", KEYGEN),
        (f'{SHA1}; {SHA1}; max-age=1', r"no pin-sha256 directive \(skipped: pin-sha1, pin-sha1\)",
         "pin the keys with pin-sha256 (pinset pin HOST prints them)"),
        (f'{TWO}; max-age=1; x-note="${{NOTE}}"', "placeholder", None),
        (f'pin-sha256="{A.b64[:-4]}"; pin-sha256="{B.b64}"; max-age=1', "decodes to", None),
        ('pin-sha256="${PIN}"; max-age=1', "placeholder", None),
        ("max-age=1", "no pin-sha256", None),
    ],
)  # fmt: skip
def test_header_errors(value: str, message: str, hint: str | None) -> None:
    text = f"# comment\nHost: example.com\nPublic-Key-Pins: {value}\n"
    with pytest.raises(ConfigError, match=message) as caught:
        hpkp.loads(text, source="h.txt")
    assert (caught.value.source, caught.value.line) == ("h.txt", 3)
    if hint is not None:
        assert caught.value.hint == hint


def test_unknown_directives_are_skipped_as_browsers_skip_them() -> None:
    """RFC 7469 §2.1, rule 5: the UA MUST ignore directives it does not recognise."""
    text = (
        "Host: example.com\n"
        f'Public-Key-Pins: {TWO}; max-age=600; includeSubdomain; report-url="{REPORT}"; '
        'x-future-directive="on"; x-future-directive\n'
    )
    imported = hpkp.loads(text, source="h.txt")
    assert imported.policy == Policy(rules=(DomainRule("example.com", pins=(A, B)),))
    assert imported.platform == {"max_age": 600, "header": "Public-Key-Pins"}
    assert [(f.id, f.severity, f.source, f.line, f.domain) for f in imported.findings] == [
        ("hpkp-unknown-directive", "warning", "h.txt", 2, "example.com")
    ] * 4
    assert [(f.message, f.fix) for f in imported.findings] == [
        (
            "browsers skip the unknown directive 'includeSubdomain' (RFC 7469 §2.1, rule 5), "
            "so the names below example.com are not pinned",
            "did you mean 'includeSubDomains'?",
        ),
        (
            "browsers skip the unknown directive 'report-url' (RFC 7469 §2.1, rule 5), "
            "so no failure reports are sent",
            "did you mean 'report-uri'?",
        ),
        *[
            (
                "browsers skip the unknown directive 'x-future-directive' (RFC 7469 §2.1, rule 5)",
                "known directives: pin-sha256, max-age, includeSubDomains, report-uri",
            )
        ]
        * 2,
    ]


def test_a_typo_beside_the_real_directive_costs_nothing() -> None:
    text = f"Public-Key-Pins: {TWO}; max-age=600; includeSubDomains; includeSubdomain"
    imported = hpkp.loads(text, host="example.com")
    assert imported.policy.rules[0].include_subdomains
    (finding,) = imported.findings
    assert finding.message.endswith("(RFC 7469 §2.1, rule 5)")


def test_max_age_typo_in_a_report_only_header_is_a_warning() -> None:
    # max-age has no effect in a report-only header, so nothing is lost.
    text = f"Public-Key-Pins-Report-Only: {TWO}; max-agee=600"
    imported = hpkp.loads(text, host="example.com")
    assert not imported.policy.rules[0].enforce
    assert imported.platform["max_age"] is None
    assert [(f.id, f.fix) for f in imported.findings] == [
        ("hpkp-unknown-directive", "did you mean 'max-age'?")
    ]


@pytest.mark.parametrize(
    ("directive", "fix"),
    [
        (SHA1, "pin the key with pin-sha256 (pinset pin HOST prints it)"),
        ('PIN-SHA1="cO/Xg/r7O87qWxnCNUt5NDFpD34="',
         "pin the key with pin-sha256 (pinset pin HOST prints it)"),
        ('pin-sha512="not even base64"', "pin the key with pin-sha256 (pinset pin HOST prints it)"),
        (f'pin-sha265="{C.b64}"', "did you mean 'pin-sha256'?"),
    ],
)  # fmt: skip
def test_pins_of_other_hash_algorithms_are_skipped(directive: str, fix: str) -> None:
    """RFC 7469 §2.1.1: UAs ignore pin-directives naming hash algorithms they do not know."""
    text = f"Host: example.com\nPublic-Key-Pins: {directive}; {TWO}; max-age=600\n"
    imported = hpkp.loads(text, source="h.txt")
    assert imported.policy.rules[0].pins == (A, B)
    (finding,) = imported.findings
    name = directive.split("=", 1)[0]
    assert (finding.id, finding.severity, finding.line, finding.fix) == (
        "hpkp-unknown-pin-algorithm",
        "warning",
        2,
        fix,
    )
    assert finding.message == (
        f"{name} is skipped: RFC 7469 §2.1.1 has browsers ignore a pin whose hash algorithm "
        "they do not recognise, and pinset compares SHA-256 pins only"
    )


def test_sha1_stays_a_load_error_in_pinset_policy_files() -> None:
    """BRIEF §6: skipping is how browsers read HPKP; pinset's own files refuse ``sha1/``."""
    toml = '[[domain]]\nname = "example.com"\npins = ["sha1/cO/Xg/r7O87qWxnCNUt5NDFpD34="]\n'
    with pytest.raises(ConfigError, match="sha1/ pins are not supported") as caught:
        policyfile.loads(toml)
    assert caught.value.line == 3


def test_cli_import_prints_the_skipped_directives(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    header = tmp_path / "h.txt"
    header.write_text(f"Host: example.com\nPublic-Key-Pins: {TWO}; max-age=6; includeSubdomain\n")
    assert main(["import", str(header)]) == 0
    out, err = capsys.readouterr()
    assert policyfile.loads(out).rules == (DomainRule("example.com", pins=(A, B)),)
    assert err == (
        f"warning: {header}:2: browsers skip the unknown directive 'includeSubdomain' "
        "(RFC 7469 §2.1, rule 5), so the names below example.com are not pinned "
        "[hpkp-unknown-directive]\n  fix: did you mean 'includeSubDomains'?\n"
    )


def test_lines_that_are_not_headers_are_errors() -> None:
    with pytest.raises(ConfigError, match="not an HPKP header line") as caught:
        hpkp.loads("Host: example.com\nStrict-Transport-Security: max-age=1\n")
    assert caught.value.line == 2
    with pytest.raises(ConfigError, match="no Public-Key-Pins header"):
        hpkp.loads("Host: example.com\n")


def test_findings_for_what_browsers_accept() -> None:
    text = (
        f'Public-Key-Pins: pin-sha256="{A.b64}"; pin-sha256="{PLACEHOLDER.b64}"; max-age=0\n'
        f'Public-Key-Pins: pin-sha256="{A.b64}"; pin-sha256="{B.b64}"; max-age=99\n'
    )
    imported = hpkp.loads(text, host="example.com")
    assert imported.policy.rules[0].pins == (A, PLACEHOLDER)
    assert imported.policy.rules[0].allow_single_pin
    assert {(f.id, f.line) for f in imported_findings(imported)} == {
        ("hpkp-extra-header", 2),
        ("hpkp-max-age-zero", 1),
        ("missing-backup-pin", 1),
        ("placeholder-pin", 1),
    }


# -- export ---------------------------------------------------------------------


def test_export_and_read_back() -> None:
    policy = hpkp.loads(f"Host: example.com\n{HEADER}\n").policy
    text = hpkp.dumps(policy, max_age=5184000, host_line=True)
    assert text == f"Host: example.com\n{HEADER}\n"
    assert hpkp.dumps(policy) == f"{HEADER}\n"  # 60 days is the default
    assert hpkp.loads(text).policy == policy


def test_export_picks_the_rule_for_the_host() -> None:
    policy = Policy(
        rules=(
            DomainRule("a.example.com", pins=(A, B)),
            DomainRule("b.example.com", pins=(B, C), include_subdomains=True),
            DomainRule("example.com", pins=(A, C), one_label=True),
        )
    )
    assert hpkp.dumps(policy, host="B.example.com", max_age=1) == (
        f'Public-Key-Pins: pin-sha256="{B.b64}"; pin-sha256="{C.b64}"; max-age=1; '
        "includeSubDomains\n"
    )
    with pytest.raises(ExportError, match="pins one host") as caught:
        hpkp.dumps(policy)
    assert caught.value.hint is not None
    assert "host=" in caught.value.hint
    with pytest.raises(ExportError, match=r"no rule for c\.example\.com"):
        hpkp.dumps(policy, host="c.example.com")
    only_wildcard = Policy(rules=(DomainRule("example.com", pins=(A, C), one_label=True),))
    with pytest.raises(ExportError, match=r"cannot express \*\.example\.com"):
        hpkp.dumps(only_wildcard)


def test_export_errors_and_warnings() -> None:
    single = Policy(rules=(DomainRule("example.com", pins=(A,), allow_single_pin=True),))
    with pytest.raises(ExportError, match="one pin"):
        hpkp.dumps(single)
    with pytest.raises(ExportError, match="max-age"):
        hpkp.dumps(Policy(rules=(DomainRule("example.com", pins=(A, B)),)), max_age=-1)
    dated = Policy(
        rules=(
            DomainRule(
                "example.com",
                pins=(A, B),
                expiration=dt.date(2028, 1, 1),
                report_uris=(REPORT, "https://second.example.net/r"),
            ),
        )
    )
    with pytest.warns(ExportWarning) as caught:
        text = hpkp.dumps(dated)
    messages = " ".join(str(w.message) for w in caught)
    assert "2028-01-01" in messages
    assert "second.example.net" in messages
    assert text.count("report-uri=") == 1


def test_sniff() -> None:
    assert hpkp.sniff(HEADER.encode())
    assert hpkp.sniff(HEADER.split(": ", 1)[1].encode())
    assert not hpkp.sniff(b"Strict-Transport-Security: max-age=1")


def test_max_age_from_the_command_line_is_text() -> None:
    policy = Policy(rules=(DomainRule("example.com", pins=(A, B)),))
    assert hpkp.dumps(policy, max_age="86400") == hpkp.dumps(policy, max_age=86400)
    with pytest.raises(ExportError, match="whole number"):
        hpkp.dumps(policy, max_age="1 day")
