"""OkHttp CertificatePinner: reading Kotlin/Java source, writing it."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pinset import policyfile
from pinset.audit import imported_findings
from pinset.cli import main
from pinset.errors import ConfigError
from pinset.formats import _okhttp as okhttp
from pinset.formats._model import ExportError, ExportWarning, Imported
from pinset.pins import Pin
from pinset.policy import DomainRule, Policy

pytestmark = pytest.mark.filterwarnings("error::pinset.formats._model.ExportWarning")

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
    ids = {(f.id, f.domain) for f in imported_findings(imported)}
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


def test_java_builder_variable_constants_and_unreadable_calls() -> None:
    imported = okhttp.loads(JAVA, source="Pins.java")
    assert imported.policy.rules == (
        DomainRule("a.example.com", pins=(A, B)),  # PIN: a static final String of the file
        DomainRule("c.example.com", pins=(A, C)),
    )
    unreadable = [f for f in imported.findings if f.id == "okhttp-unreadable-call"]
    assert [(f.line, f.source) for f in unreadable] == [
        (line_of(JAVA, '"b.example.com"'), "Pins.java"),
    ]
    assert f'\'"sha256/" + "{A.b64}"\'' in unreadable[0].message
    assert "an expression" in unreadable[0].message


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
        (f'.add("", "sha256/{A.b64}")', "empty host name"),  # was read as the text ""
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


# -- real-world sources: hosts and pins in constants of the same file --------------------
# Each file in tests/fixtures/okhttp/ is OkHttp's own documentation or public app code,
# listed with its source in tests/fixtures/README.

FIXTURES = Path(__file__).parent / "fixtures" / "okhttp"


def fixture(name: str) -> tuple[str, Imported]:
    text = (FIXTURES / name).read_text(encoding="utf-8")
    return text, okhttp.loads(text, source=name)


def ids(imported: Imported) -> list[tuple[str, str, int | None]]:
    return [(f.id, f.severity, f.line) for f in imported_findings(imported)]


def pins(*texts: str) -> tuple[Pin, ...]:
    return tuple(Pin.parse(t) for t in texts)


def without_line(text: str, needle: str) -> str:
    return "".join(line for line in text.splitlines(keepends=True) if needle not in line)


def test_okhttp_kdoc_broken_configuration_keeps_the_placeholder_host() -> None:
    # The KDoc's first step: `String hostname = "publicobject.com"` and one AAAA… pin.
    # OkHttp accepts it (prefix and base64 only) and refuses every connection.
    text, imported = fixture("kdoc_broken_configuration.java")
    add = line_of(text, ".add(hostname")
    (rule,) = imported.policy.rules
    assert (rule.name, rule.placeholder_only) == ("publicobject.com", True)
    assert rule.pins == (PLACEHOLDER,)
    assert ids(imported) == [("placeholder-pin", "error", add), ("no-expiration", "info", add)]
    assert (
        "sha256/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
        in imported_findings(imported)[0].message
    )
    assert imported.lines == {"publicobject.com": add}


def test_okhttp_kdoc_pasted_pins() -> None:
    text, imported = fixture("kdoc_pasted_pins.java")
    assert imported.policy.rules == (
        DomainRule(
            "publicobject.com",
            pins=pins(
                "sha256/afwiKY3RxoMmLkuRW1l7QsPZTJPwDS2pdDROQjXw8ig=",
                "sha256/klO23nT2ehFDXCfx3eHTDRESMz3asj1muO+4aIdjiuY=",
                "sha256/grX4Ta9HpZx6tSHkmCrvpApTQGo67CYDnvprLg5yRME=",
                "sha256/lCppFqbkrlJ3EcVFAkeip0+44VaoJUymbnOaEUk7tEU=",
            ),
        ),
    )
    assert ids(imported) == [("no-expiration", "info", line_of(text, ".add("))]


def test_java_local_string_with_three_calls() -> None:
    # `String hostname = "api.github.com";` then three .add(hostname, …) calls.
    text, imported = fixture("mockwebserver_demo_OkHttp.java")
    first = line_of(text, ".add(hostname")
    assert imported.policy.rules == (
        DomainRule(
            "api.github.com",
            pins=pins(
                "sha256/6wJsqVDF8K19zxfLxV5DGRneLyzso9adVdUN/exDacw",
                "sha256/k2v657xBsOVe1PQRwOsHsw3bsGT2VzIqz5K+59sNQws=",
                "sha256/WoiWRyIOVNa9ihaBciRSC7XHjliYS9VwUGOIud4PB18=",
            ),
        ),
    )
    assert ids(imported) == [
        ("non-canonical-pin", "warning", first),
        ("no-expiration", "info", first),
    ]


def test_kotlin_local_val_with_three_calls() -> None:
    text, imported = fixture("dicoding_NetworkModule.kt")
    assert [(r.name, len(r.pins)) for r in imported.policy.rules] == [("themoviedb.org", 3)]
    assert imported.lines == {"themoviedb.org": line_of(text, ".add(hostname")}
    assert [f.id for f in imported_findings(imported)] == ["no-expiration"]


@pytest.mark.parametrize(
    ("name", "pattern"),
    [
        ("react_native_SSLPinnerFactory.java", "portalnesia.com"),
        ("react_native_OkHttpCertPin.java", "*.xl.co.id"),
    ],
)
def test_java_static_string_field_never_assigned_again(name: str, pattern: str) -> None:
    # React Native's OkHttpClientFactory recipe: `private static String hostname = "…";`
    # is not final, but nothing in the file assigns it again.
    text, imported = fixture(name)
    (rule,) = imported.policy.rules
    assert rule.pattern == pattern
    assert imported.lines == {pattern: line_of(text, ".add(hostname")}
    assert "okhttp-unreadable-call" not in {f.id for f in imported.findings}


def test_a_field_assigned_again_is_not_guessed() -> None:
    text = (FIXTURES / "react_native_SSLPinnerFactory.java").read_text(encoding="utf-8")
    changed = text.replace(
        "    public OkHttpClient createNewNetworkModuleClient() {\n",
        "    public OkHttpClient createNewNetworkModuleClient() {\n"
        '        hostname = "staging.portalnesia.com";\n',
    )
    imported = okhttp.loads(changed, source="SSLPinnerFactory.java")
    assert imported.policy.rules == ()
    (finding,) = imported.findings
    add = line_of(changed, ".add(hostname")
    assigned = line_of(changed, 'hostname = "staging')
    assert (finding.id, finding.line) == ("okhttp-unreadable-call", add)
    assert f"on line {add}: hostname is assigned again at line {assigned}" in finding.message


def test_kotlin_const_val_reaches_the_pins() -> None:
    # `private const val HOSTNAME = "3.21.30.112"`; the second pin is not a pin
    # ("sha256/backup-pin-from-your-backend-certificate"): an error at its own line.
    text = (FIXTURES / "intellidish_CertificatePinner.kt").read_text(encoding="utf-8")
    with pytest.raises(ConfigError, match="URL-safe") as caught:
        okhttp.loads(text, source="CertificatePinner.kt")
    assert caught.value.line == line_of(text, "backup-pin-from")
    (rule,) = okhttp.loads(without_line(text, "backup-pin-from")).policy.rules
    assert (rule.name, rule.pins) == (
        "3.21.30.112",
        pins("sha256/rA+v2WXDZvZiqHfU4NqgroNn3k0RXwNGqkFV1qFT7g0="),
    )


def test_a_name_imported_from_another_file_says_so() -> None:
    text, imported = fixture("droidcon_NetworkModule.kt")
    add = line_of(text, ".add(PINNING_URL")
    assert imported.policy.rules == ()
    assert ids(imported) == [("okhttp-unreadable-call", "warning", add)]
    message = imported.findings[0].message
    assert f"cannot read 'PINNING_URL' in the add(...) call on line {add}" in message
    assert "imported from com.example.droidconsecuritysample.util.Constant" in message


def test_kotlin_template_of_constants_in_one_file() -> None:
    # The two files of that app as one: Constant.kt (`const val OKHTTP_SSL_PIN =
    # "sha256/$SSL_PIN"`) and the provider's `.add(PINNING_URL, OKHTTP_SSL_PIN)`.
    constants = (FIXTURES / "droidcon_Constant.kt").read_text(encoding="utf-8")
    provider = (FIXTURES / "droidcon_NetworkModule.kt").read_text(encoding="utf-8")
    body = provider[provider.index("@Module") :]
    text = constants + "\n\n" + body
    imported = okhttp.loads(text, source="Network.kt")
    (rule,) = imported.policy.rules
    assert (rule.name, rule.pins) == (
        "jsonplaceholder.typicode.com",
        pins("sha256//UzJAZYxLBnEpBwXAcmd4WHi7f8aYgfMExGnoyp5B04="),
    )
    assert imported.lines == {rule.name: line_of(text, ".add(PINNING_URL")}
    # A template over a name the file does not declare is reported, not guessed.
    broken = text.replace('"sha256/$SSL_PIN"', '"sha256/${BuildConfig.PIN}"')
    (finding,) = okhttp.loads(broken).findings
    assert "a string template with an expression" in finding.message
    missing = text.replace('"sha256/$SSL_PIN"', '"sha256/$REMOTE_PIN"')
    (finding,) = okhttp.loads(missing).findings
    assert "the template uses $REMOTE_PIN: REMOTE_PIN is not a string constant" in finding.message


def test_kotlin_apply_block_is_found_and_its_unreadable_call_named() -> None:
    # `CertificatePinner.Builder().apply { … add(configuration.host, publicKeyHash) }`:
    # the format is detected and the call reported, never "found no add(...) call".
    text, imported = fixture("daimler_CertificatePinnerFactory.kt")
    assert okhttp.sniff(text.encode())
    add = line_of(text, "add(configuration.host")
    assert ids(imported) == [("okhttp-unreadable-call", "warning", add)]
    assert "'configuration.host'" in imported.findings[0].message
    assert "it is an expression" in imported.findings[0].message


def test_apply_block_with_constants_imports() -> None:
    source = f"""object Pins {{
    private const val HOST = "api.example.com"
    private val PRIMARY = "sha256/{A.b64}"
    private val BACKUP = PRIMARY_OLD
    private val PRIMARY_OLD = "sha256/{B.b64}"
    val pinner = CertificatePinner.Builder().apply {{
        add(HOST, PRIMARY, BACKUP)
        this.add("*.example.com", PRIMARY)
        listOf("x").add("not a pinner call")
    }}.add("cdn.example.com", "sha256/{C.b64}", "sha256/{D.b64}").build()
}}
"""
    imported = okhttp.loads(source)
    assert {r.pattern: r.pins for r in imported.policy.rules} == {
        "api.example.com": (A, B),
        "*.example.com": (A,),
        "cdn.example.com": (C, D, A),  # *.example.com covers it too
    }
    assert "okhttp-unreadable-call" not in {f.id for f in imported.findings}


@pytest.mark.parametrize(
    ("declarations", "reason"),
    [
        ('val HOST = "a.example.com"\nval HOST = "b.example.com"', "declared 2 times"),
        ("val HOST = BuildConfig.API_HOST", "HOST is BuildConfig.API_HOST (line 1)"),
        ('val HOST = "a." + DOMAIN', 'HOST is "a." + DOMAIN (line 1)'),
        ("val HOST = OTHER\nval OTHER = HOST", "defined in a cycle (HOST -> OTHER -> HOST)"),
        ("lateinit var HOST: String", "HOST (line 1) has no initialiser"),
        ('class C(val HOST: String = "a.example.com")', "HOST is a parameter (line 1)"),
        ('var HOST = "a.example.com"\nfun f() { HOST += ".cn" }', "assigned again at line 2"),
        ("", "HOST is not a string constant declared in this file"),
    ],
)
def test_constants_that_cannot_be_known_are_explained(declarations: str, reason: str) -> None:
    source = (
        f"{declarations}\nval p = CertificatePinner.Builder()\n"
        f'    .add(HOST, "sha256/{A.b64}", "sha256/{B.b64}")\n    .build()\n'
    )
    imported = okhttp.loads(source)
    assert imported.policy.rules == ()
    (finding,) = imported.findings
    assert finding.id == "okhttp-unreadable-call"
    assert finding.line == line_of(source, ".add(HOST")
    assert reason in finding.message


def test_add_without_pins_is_a_warning_as_okhttp_pins_nothing() -> None:
    # Builder.add(pattern, vararg pins) adds one Pin per pin: with none, nothing.
    source = f"""CertificatePinner.Builder()
    .add("a.example.com")
    .add("b.example.com", "sha256/{A.b64}", "sha256/{B.b64}")
    .build()"""
    imported = okhttp.loads(source, source="P.kt")
    assert [r.name for r in imported.policy.rules] == ["b.example.com"]
    warning = next(f for f in imported.findings if f.id == "okhttp-add-without-pins")
    assert warning.line == 2


def test_pin_calls_on_a_builder_passed_in_are_named() -> None:
    source = f"""fun pins(builder: CertificatePinner.Builder) {{
    builder.add("a.example.com", "sha256/{A.b64}")
    builder.add("b.example.com", "sha256/{B.b64}")
}}
"""
    (finding,) = okhttp.loads(source).findings
    assert finding.id == "okhttp-no-calls"
    assert "line(s) 2, 3" in finding.message
    assert finding.line == 2


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


DOUBLE_STAR_WARNING = r"OkHttp before 4\.3 reads \*\*\.cdn\.example\.com as a literal host name"


def test_kotlin_export() -> None:
    with pytest.warns(ExportWarning, match=DOUBLE_STAR_WARNING):
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
    with pytest.warns(ExportWarning, match=DOUBLE_STAR_WARNING):
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
    with pytest.warns(ExportWarning, match=r"reads \*\*\.example\.com as a literal host"):
        text = okhttp.dumps(policy)
    assert okhttp.loads(text).policy == policy


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


SUBDOMAINS = Policy(rules=(DomainRule("example.com", pins=(A, B), include_subdomains=True),))


def test_double_star_export_always_warns_that_okhttp_before_4_3_pins_nothing() -> None:
    """OkHttp 3's Pin only knows ``*.``: ``**.example.com`` is a host no connection has."""
    with pytest.warns(ExportWarning) as caught:
        text = okhttp.dumps(SUBDOMAINS)
    assert '"**.example.com"' in text
    (message,) = (str(w.message) for w in caught)
    assert message == (
        "OkHttp before 4.3 reads **.example.com as a literal host name and pins nothing for "
        "it, neither the name nor its subdomains; if the app ships OkHttp 3, export with "
        "-O okhttp=3"
    )


def test_a_policy_without_subdomain_rules_exports_without_the_version_warning() -> None:
    policy = Policy(rules=(DomainRule("example.com", pins=(A, B)),))
    text = okhttp.dumps(policy, okhttp="3")  # any ExportWarning fails this module
    assert text == okhttp.dumps(policy)


@pytest.mark.parametrize("version", ["3", "3.12.13", "3.14", "4", "4.2.2", 3])
def test_okhttp_3_export_writes_the_name_and_one_label_below(version: str | int) -> None:
    with pytest.warns(ExportWarning) as caught:
        text = okhttp.dumps(SUBDOMAINS, okhttp=version)
    assert "**." not in text
    pins = f'        "sha256/{A.b64}",\n        "sha256/{B.b64}"\n'
    assert f'    .add(\n        "example.com",\n{pins}    )' in text
    assert f'    .add(\n        "*.example.com",\n{pins}    )' in text
    (message,) = (str(w.message) for w in caught)
    assert message == (
        "OkHttp before 4.3 has no pattern for subdomains at any depth: example.com is "
        "written as example.com and *.example.com (the name and one label below), so names "
        "two or more labels below are not pinned; OkHttp 4.3+ reads **.name (-O okhttp=4.3)"
    )


def test_okhttp_3_export_imports_back_as_an_exact_and_a_one_label_rule() -> None:
    """Import reads what OkHttp 3 enforces: not the include-subdomains rule it came from."""
    with pytest.warns(ExportWarning, match="no pattern for subdomains"):
        text = okhttp.dumps(SUBDOMAINS, okhttp="3")
    assert okhttp.loads(text).policy == Policy(
        rules=(
            DomainRule("example.com", pins=(A, B)),
            DomainRule("example.com", pins=(A, B), one_label=True),
        )
    )


@pytest.mark.parametrize("version", ["4.3", "4.3.0", "4.12", "5", 5])
def test_okhttp_4_3_and_later_get_the_double_star(version: str | int) -> None:
    with pytest.warns(ExportWarning, match="OkHttp before 4.3 reads"):
        text = okhttp.dumps(SUBDOMAINS, okhttp=version)
    assert '"**.example.com"' in text
    assert '"*.example.com"' not in text


@pytest.mark.parametrize("version", ["latest", "", "4.x", "v4"])
def test_okhttp_version_that_is_not_one_is_an_export_error(version: str) -> None:
    with pytest.raises(ExportError, match="is not a version") as caught:
        okhttp.dumps(SUBDOMAINS, okhttp=version)
    assert caught.value.hint is not None
    assert "-O okhttp=3" in caught.value.hint


def test_okhttp_3_overlap_check_follows_the_one_label_it_writes() -> None:
    """``*.example.com`` covers one label on OkHttp 3, so only that overlap is refused."""
    deep = Policy(rules=(*SUBDOMAINS.rules, DomainRule("a.b.example.com", pins=(C, D))))
    with pytest.raises(ExportError, match=r"pins of \*\*\.example\.com for a\.b\.example"):
        okhttp.dumps(deep)
    with pytest.warns(ExportWarning, match="no pattern for subdomains"):
        text = okhttp.dumps(deep, okhttp="3")
    assert '"a.b.example.com"' in text
    near = Policy(rules=(*SUBDOMAINS.rules, DomainRule("api.example.com", pins=(C, D))))
    with pytest.raises(
        ExportError,
        match=r"pins of example\.com and \*\.example\.com for api\.example\.com too",
    ):
        okhttp.dumps(near, okhttp="3")


def test_cli_export_for_okhttp_3_prints_the_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy_file = tmp_path / "pinset.toml"
    policy_file.write_text(policyfile.dumps(SUBDOMAINS))
    assert main(["export", str(policy_file), "-f", "okhttp", "-O", "okhttp=3"]) == 0
    out, err = capsys.readouterr()
    assert '"*.example.com"' in out
    assert "**." not in out
    assert err.startswith("warning: OkHttp before 4.3 has no pattern for subdomains")


def test_sniff() -> None:
    assert okhttp.sniff(KOTLIN.encode())
    assert okhttp.sniff(JAVA.encode())
    assert not okhttp.sniff(b"<plist><dict/></plist>")
    assert not okhttp.sniff(b"list.add(1)")


_SOUP = [
    "val", "var", "const", "String", "static", "final", "private", "HOST", "PIN", "b",
    "=", "==", "+", "+=", ";", ",", ".", "(", ")", "{", "}", "*", "\n", "import a.b.C.HOST\n",
    "CertificatePinner", "Builder", "new", "add", "apply", "this", "build",
    '"api.example.com"', '"*.example.com"', '"$HOST"', '"a..b"', f'"sha256/{A.b64}"',
    f'"sha256/{B.b64}"', '"sha256/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="', '"x"',
]  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_SOUP), max_size=60))
def test_any_token_soup_imports_or_fails_with_a_config_error(words: list[str]) -> None:
    # Declarations, calls and apply blocks in any order, broken or not: the reader
    # returns findings or raises a ConfigError with a line, never anything else.
    source = "CertificatePinner.Builder()" + " ".join(words)
    error: ConfigError | None = None
    try:
        imported = okhttp.loads(source, source="Soup.kt")
    except ConfigError as exc:
        error = exc
    if error is not None:
        assert error.source == "Soup.kt"
        return
    for finding in imported.findings:
        assert finding.id.startswith(
            ("okhttp-", "placeholder-", "missing-", "non-canonical-", "no-expiration")
        )


def test_an_add_call_without_arguments_is_unreadable_not_a_crash() -> None:
    """Found by fuzzing (tests/fixtures/fuzz/okhttp/): ``.add()`` was an IndexError.

    No ``add`` of OkHttp's ``CertificatePinner.Builder`` takes no argument (the host
    pattern comes first), so the call is reported like any other it cannot read.
    """
    imported = okhttp.loads(
        "val pinner = CertificatePinner.Builder()\n    .add()\n    .build()\n", source="P.kt"
    )
    assert not imported.policy.rules
    (finding,) = imported.findings
    assert finding.id == "okhttp-unreadable-call"
    assert finding.line == 2
    assert "the call has no arguments" in finding.message
