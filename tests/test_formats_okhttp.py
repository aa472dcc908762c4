"""OkHttp CertificatePinner: reading Kotlin/Java source, writing it."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest

from pinset.errors import ConfigError
from pinset.formats import okhttp
from pinset.formats.model import ExportError, ExportWarning
from pinset.pins import Pin
from pinset.policy import DomainRule, Policy

pytestmark = pytest.mark.filterwarnings("error::pinset.formats.model.ExportWarning")

A, B, C, D = (Pin(hashlib.sha256(f"key-{n}".encode()).digest()) for n in "abcd")
PLACEHOLDER = Pin(bytes(32))


def line_of(text: str, needle: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if needle in line)


KOTLIN = f'''package com.example.net

import okhttp3.CertificatePinner

/* A commented-out call is not a pin: .add("old.example.com", "sha256/{C.b64}") */
object Pinning {{
    const val HOST = "api.example.com"

    val pinner = CertificatePinner.Builder()
        // production key, then the offline backup
        .add("api.example.com", "sha256/{A.b64}", "sha256/{B.b64}")
        .add(
            """**.cdn.example.com""",
            "sha256/{B.b64}", // backup first here
            "sha256/{C.b64.rstrip("=")}",
        )
        .add("*.Users.Example.com", "sha256/{D.b64}")
        .build()
}}
'''


def test_kotlin_source_imports_every_readable_call() -> None:
    imported = okhttp.loads(KOTLIN, source="Pinning.kt")
    assert imported.format == "okhttp"
    assert imported.policy == Policy(
        rules=(
            DomainRule("api.example.com", pins=(A, B)),
            DomainRule("cdn.example.com", pins=(B, C), include_subdomains=True),
            DomainRule("users.example.com", pins=(D,), one_label=True, allow_single_pin=True),
        )
    )
    assert imported.lines == {
        "api.example.com": line_of(KOTLIN, '.add("api'),
        "cdn.example.com": line_of(KOTLIN, '"""**.cdn') - 1,  # the line of its .add(
        "*.users.example.com": line_of(KOTLIN, "*.Users"),
    }
    ids = {(f.id, f.domain) for f in imported.findings}
    assert ("non-canonical-pin", "cdn.example.com") in ids
    assert ("missing-backup-pin", "*.users.example.com") in ids
    assert ("no-expiration", "api.example.com") in ids


JAVA = f"""import okhttp3.CertificatePinner;

class Pins {{
  static final String PIN = "sha256/{B.b64}";
  CertificatePinner pinner() {{
    CertificatePinner.Builder builder = new CertificatePinner.Builder();
    builder.add("a.example.com", "sha256/{A.b64}", PIN);
    builder.add("b.example.com", "sha256/" + "{A.b64}");
    builder.add("c.example.com", "sha256/{A.b64}", "sha256/{C.b64}");
    return builder.build();
  }}
}}
"""


def test_java_builder_variable_and_unreadable_calls_become_findings() -> None:
    imported = okhttp.loads(JAVA, source="Pins.java")
    assert imported.policy.rules == (DomainRule("c.example.com", pins=(A, C)),)
    unreadable = [f for f in imported.findings if f.id == "okhttp-unreadable-call"]
    assert [(f.line, f.source) for f in unreadable] == [
        (line_of(JAVA, '"a.example.com"'), "Pins.java"),
        (line_of(JAVA, '"b.example.com"'), "Pins.java"),
    ]
    assert "'PIN'" in unreadable[0].message
    assert f'\'"sha256/" + "{A.b64}"\'' in unreadable[1].message


def test_kotlin_templates_and_constants_are_reported_not_guessed() -> None:
    source = f"""val p = CertificatePinner.Builder()
    .add(HOST, "sha256/{A.b64}", "sha256/{B.b64}")
    .add("$host", "sha256/{A.b64}", "sha256/{B.b64}")
    .add("x.example.com", "sha256/${{PIN}}", "sha256/{B.b64}")
    .add("y.example.com", *PINS)
    .build()
"""
    imported = okhttp.loads(source)
    assert imported.policy.rules == ()
    assert [f.line for f in imported.findings if f.id == "okhttp-unreadable-call"] == [2, 3, 4, 5]


def test_escapes_in_string_literals_are_decoded() -> None:
    pins = f'"sha256/{A.b64}", "sha256/{B.b64}"'
    source = f'CertificatePinner.Builder().add("\\u0061pi.example.com", {pins})'
    assert okhttp.loads(source).policy.rules[0].name == "api.example.com"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (f'.add("a.example.com", "sha1/{A.b64[:27]}=")', "sha1/ pins are not supported"),
        (f'.add("a..example.com", "sha256/{A.b64}")', "empty label"),
        ('.add("a.example.com")', "without pins"),
        (f'.add("a.example.com", "sha256/{A.b64[:-2]}")', "decodes to"),
    ],
)
def test_invalid_calls_are_errors_with_their_line(call: str, message: str) -> None:
    source = f"val p = CertificatePinner.Builder()\n    // note\n    {call}\n    .build()\n"
    with pytest.raises(ConfigError, match=message) as caught:
        okhttp.loads(source, source="P.kt")
    assert (caught.value.source, caught.value.line) == ("P.kt", 3)


def test_repeated_patterns_merge_and_overlapping_patterns_share_pins() -> None:
    source = f"""CertificatePinner.Builder()
    .add("**.example.com", "sha256/{A.b64}")
    .add("**.example.com", "sha256/{B.b64}")
    .add("api.example.com", "sha256/{C.b64}", "sha256/{D.b64}")
    .add("example.com", "sha256/{C.b64}")
    .build()"""
    imported = okhttp.loads(source)
    # OkHttp checks api.example.com against the pins of every pattern that matches it.
    assert imported.policy.rules == (
        DomainRule("api.example.com", pins=(C, D, A, B)),
        DomainRule("example.com", pins=(A, B, C), include_subdomains=True),
    )
    assert {f.domain for f in imported.findings if f.id == "okhttp-overlapping-patterns"} == {
        "api.example.com",
        "example.com",
    }


def test_a_file_without_builder_calls_gets_a_finding() -> None:
    imported = okhttp.loads("val pinner = CertificatePinner.DEFAULT\n")
    assert [f.id for f in imported.findings] == ["okhttp-no-calls"]


# -- export ---------------------------------------------------------------------

POLICY = Policy(
    rules=(
        DomainRule("api.example.com", pins=(A, B)),
        DomainRule("cdn.example.com", pins=(B, C), include_subdomains=True),
        DomainRule("users.example.com", pins=(D,), one_label=True, allow_single_pin=True),
    )
)


def test_kotlin_export() -> None:
    text = okhttp.dumps(POLICY)
    assert text.splitlines()[:9] == [
        "import okhttp3.CertificatePinner",
        "",
        "val certificatePinner = CertificatePinner.Builder()",
        "    .add(",
        '        "api.example.com",',
        f'        "sha256/{A.b64}",',
        f'        "sha256/{B.b64}"',
        "    )",
        "    .add(",
    ]
    assert '"**.cdn.example.com"' in text
    assert '"*.users.example.com"' in text
    assert text.endswith("    .build()\n")
    assert okhttp.loads(text).policy == POLICY


def test_java_export() -> None:
    text = okhttp.dumps(POLICY, language="java")
    assert text.startswith(
        "import okhttp3.CertificatePinner;\n\nCertificatePinner certificatePinner"
    )
    assert "= new CertificatePinner.Builder()" in text
    assert text.endswith("    .build();\n")
    assert okhttp.loads(text).policy == POLICY
    with pytest.raises(ExportError, match="unknown language"):
        okhttp.dumps(POLICY, language="swift")


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        (
            (
                DomainRule("example.com", pins=(A, B), include_subdomains=True),
                DomainRule("x.example.com", exclude=True),
            ),
            "cannot exclude",
        ),
        ((DomainRule("example.com", pins=(A,), enforce=False),), "report-only"),
        (
            (
                DomainRule("example.com", pins=(A, B), include_subdomains=True),
                DomainRule("api.example.com", pins=(C, D)),
            ),
            r"would accept the pins of \*\*.example.com for api.example.com",
        ),
    ],
)
def test_export_errors(rules: tuple[DomainRule, ...], message: str) -> None:
    with pytest.raises(ExportError, match=message) as caught:
        okhttp.dumps(Policy(rules=rules))
    assert caught.value.hint


def test_a_child_that_lists_the_parent_pins_exports() -> None:
    policy = Policy(
        rules=(
            DomainRule("example.com", pins=(A, B), include_subdomains=True),
            DomainRule("api.example.com", pins=(C, A, B)),
        )
    )
    assert okhttp.loads(okhttp.dumps(policy)).policy == policy


def test_expiration_and_report_uris_export_with_warnings() -> None:
    rule = DomainRule(
        "example.com",
        pins=(A, B),
        expiration=dt.date(2030, 1, 1),
        report_uris=("https://r.example.net/",),
    )
    with pytest.warns(ExportWarning) as caught:
        text = okhttp.dumps(Policy(rules=(rule,)))
    messages = [str(w.message) for w in caught]
    assert any("after 2030-01-01" in m for m in messages)
    assert any("report URIs" in m for m in messages)
    assert "2030" not in text
    assert "r.example.net" not in text


def test_sniff() -> None:
    assert okhttp.sniff(KOTLIN.encode())
    assert okhttp.sniff(JAVA.encode())
    assert not okhttp.sniff(b"<plist><dict/></plist>")
    assert not okhttp.sniff(b"list.add(1)")
