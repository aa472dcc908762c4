"""Text, JSON, SARIF (valid against the 2.1.0 schema) and JUnit output; exit codes; ``-o``."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import defusedxml.ElementTree as SafeET
import jsonschema
import pytest

from pinset.audit import audit
from pinset.audit._model import AuditReport
from pinset.audit._output.junit import to_junit
from pinset.audit._output.sarif import to_sarif_dict
from pinset.cli import main

FIXTURES = Path(__file__).parent / "fixtures"
NOW = dt.datetime(2026, 11, 28, tzinfo=dt.timezone.utc)
AFTERPAY = (
    FIXTURES
    / "corpus"
    / "android-nsc"
    / "afterpay__sdk-android__example_network_security_config.xml"
)
GOOD = (
    FIXTURES / "corpus" / "android-nsc" / "MuntashirAkon__AppManager__network_security_config.xml"
)
APK = FIXTURES / "apk" / "code-differs.apk"


@pytest.fixture(scope="module")
def report() -> AuditReport:
    return audit([AFTERPAY, APK, GOOD], now=NOW)


@pytest.fixture(scope="module")
def sarif_validator() -> jsonschema.Draft7Validator:
    schema = json.loads((FIXTURES / "sarif-2.1.0-schema.json").read_text(encoding="utf-8"))
    return jsonschema.Draft7Validator(schema, format_checker=jsonschema.FormatChecker())


def test_sarif_is_valid_and_points_at_config_lines(
    report: AuditReport, sarif_validator: jsonschema.Draft7Validator
) -> None:
    log = to_sarif_dict(report)
    errors = [str(e) for e in sarif_validator.iter_errors(log)]
    assert errors == []
    results = log["runs"][0]["results"]
    assert len(results) == len(report.findings)
    expired = next(r for r in results if r["ruleId"] == "pin-set-expired")
    physical = expired["locations"][0]["physicalLocation"]
    assert physical["artifactLocation"]["uri"] == AFTERPAY.as_uri()  # absolute path: file URI
    assert physical["region"]["startLine"] == 12
    assert expired["level"] == "error"
    rules = log["runs"][0]["tool"]["driver"]["rules"]
    assert rules[expired["ruleIndex"]]["id"] == "pin-set-expired"
    assert "help" in rules[expired["ruleIndex"]]


def test_sarif_for_apk_entries_uses_the_apk_and_a_logical_location(report: AuditReport) -> None:
    results = to_sarif_dict(report)["runs"][0]["results"]
    in_apk = [r for r in results if "code-differs.apk" in json.dumps(r["locations"])]
    assert in_apk
    for result in in_apk:
        location = result["locations"][0]
        assert location["physicalLocation"]["artifactLocation"]["uri"] == APK.as_uri()
        assert "region" not in location["physicalLocation"]  # lines of decoded XML, not the zip
        names = [loc["name"] for loc in location["logicalLocations"]]
        assert names[0] in ("classes.dex", "res/xml/network_security_config.xml")


def test_sarif_uri_of_a_relative_target_stays_relative(monkeypatch: pytest.MonkeyPatch) -> None:
    # Code scanning resolves relative URIs against the repository root.
    monkeypatch.chdir(FIXTURES.parent.parent)
    relative = AFTERPAY.relative_to(FIXTURES.parent.parent)
    log = to_sarif_dict(audit([relative], now=NOW))
    uris = {
        r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        for r in log["runs"][0]["results"]
    }
    assert uris == {relative.as_posix()}


def test_schema_rejects_a_broken_log(
    sarif_validator: jsonschema.Draft7Validator, report: AuditReport
) -> None:
    log = to_sarif_dict(report)
    log["runs"][0]["results"][0]["level"] = "fatal"
    assert not sarif_validator.is_valid(log)


def test_json_shape(report: AuditReport, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        ["audit", str(AFTERPAY), str(APK), str(GOOD), "--now", "2026-11-28", "--format", "json"]
    )
    data = json.loads(capsys.readouterr().out)
    assert code == 1
    assert set(data) == {"findings", "summary"}
    first = data["findings"][0]
    assert set(first) == {"id", "severity", "domain", "message", "fix", "location"}
    assert data["summary"]["errors"] == report.count("error")
    assert data["summary"]["exit_code"] == 1
    in_apk = [f for f in data["findings"] if f["location"]["uri"] == str(APK)]
    assert {f["location"]["entry"] for f in in_apk} == {
        "classes.dex",
        "res/xml/network_security_config.xml",
    }


def test_junit_one_case_per_domain_failures_for_errors(report: AuditReport) -> None:
    root = SafeET.fromstring(to_junit(report).split("\n", 1)[1])
    cases = {case.get("name"): case for case in root.iter("testcase")}
    assert {"portal.afterpay.com", "portal.sandbox.afterpay.com", "api.example.com"} <= set(cases)
    assert cases["portal.afterpay.com"].find("failure") is not None
    good_cases = [c for c in root.iter("testcase") if c.get("classname") == str(GOOD)]
    assert good_cases
    assert all(c.find("failure") is None for c in good_cases)
    assert int(root.get("failures", "0")) >= 2


def test_text_is_grouped_by_file_and_domain(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["audit", str(AFTERPAY), str(GOOD), "--now", "2026-11-28"])
    out = capsys.readouterr().out
    assert code == 1
    assert "\x1b[" not in out  # no colour codes into a pipe
    head = out.index(str(AFTERPAY))
    assert out.index("  portal.afterpay.com", head) < out.index(
        "  portal.sandbox.afterpay.com", head
    )
    assert "pin-set-expired (line 12)" in out
    assert "no findings for 1 domain: www.virustotal.com" in out
    assert "FAILED: 2 error(s)" in out


def test_clean_target_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", str(GOOD), "--now", "2026-11-28"]) == 0
    assert "passed" in capsys.readouterr().out


def test_unreadable_target_exits_two(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "missing.toml"
    assert main(["audit", str(GOOD), str(missing), "--now", "2026-11-28"]) == 2
    captured = capsys.readouterr()
    assert f"cannot read {missing}" in captured.err
    garbage = tmp_path / "notes.txt"
    garbage.write_text("hello", encoding="utf-8")
    assert main(["audit", str(garbage)]) == 2


def test_output_file_for_every_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for fmt in ("text", "json", "sarif", "junit"):
        out = tmp_path / f"report.{fmt}"
        code = main(
            ["audit", str(AFTERPAY), "--now", "2026-11-28", "--format", fmt, "-o", str(out)]
        )
        assert code == 1
        text = out.read_text(encoding="utf-8")
        assert "pin-set-expired" in text
    assert capsys.readouterr().out == ""


def test_bad_now_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", str(GOOD), "--now", "yesterday"]) == 2
    assert "--now" in capsys.readouterr().err
