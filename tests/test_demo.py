"""``pinset demo``: every step of the story happens for real, and a broken step is caught."""

from __future__ import annotations

import io
import json
import os
import ssl
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from rich.console import Console

import pinset.demo._scenario as scenario
from _client_helpers import no_proxy_from_environment  # noqa: F401 - an autouse fixture
from pinset import Policy, policyfile, spki_pin
from pinset.cli import main
from pinset.demo import HOST, DemoResult, run
from pinset.demo._narrate import Narrator

STEPS = [
    "setup",
    "pins",
    "policy",
    "pinned-request",
    "mitm-unpinned",
    "mitm-pinned",
    "report",
    "rotate",
    "rotate-bundle",
    "expire",
]


def play(work_dir: Path | None = None) -> tuple[DemoResult, str]:
    out = io.StringIO()
    result = run(Console(file=out, width=120), work_dir=work_dir)
    return result, out.getvalue()


@pytest.fixture(scope="module")
def played(tmp_path_factory: pytest.TempPathFactory) -> tuple[DemoResult, str, Path]:
    work = tmp_path_factory.mktemp("demo")
    result, text = play(work)
    return result, text, work


def test_every_step_runs_and_behaves_as_expected(
    played: tuple[DemoResult, str, Path],
) -> None:
    result, _, _ = played
    assert [s.name for s in result.steps] == STEPS
    failed = [(s.name, s.observed) for s in result.steps if not s.ok]
    assert failed == []
    assert result.ok


def test_the_policy_file_holds_the_current_and_the_backup_pin(
    played: tuple[DemoResult, str, Path],
) -> None:
    result, _, work = played
    policy = policyfile.load(work / "pinset.toml")
    (rule,) = policy.rules
    assert rule.name == HOST
    current, backup = rule.pins
    assert result.step("pins").details["leaf_pin"] == str(current)
    assert result.step("policy").details["backup_pin"] == str(backup)
    key_file = work / "backup-key.pem"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = load_pem_private_key(key_file.read_bytes(), password=None)
    assert spki_pin(key.public_key()) == backup
    assert rule.expiration is not None
    assert result.step("policy").details["expiration"] == rule.expiration.isoformat()


def test_pinned_requests_match_the_current_key_then_the_backup_key(
    played: tuple[DemoResult, str, Path],
) -> None:
    result, _, work = played
    current, backup = policyfile.load(work / "pinset.toml").rules[0].pins
    assert result.step("pinned-request").details["matched_pin"] == str(current)
    assert result.step("rotate").details["matched_pin"] == str(backup)


def test_the_attack_fools_the_unpinned_client_and_not_the_pinned_one(
    played: tuple[DemoResult, str, Path],
) -> None:
    result, text, _ = played
    unpinned = result.step("mitm-unpinned").details
    assert "CN=Rogue interception CA" in unpinned["issuer"]
    assert unpinned["leaked_bytes"] > 0
    assert unpinned["relayed_requests"] == 1
    pinned = result.step("mitm-pinned").details
    assert pinned["proxy_verdict"] == "REFUSED"
    assert pinned["leaked_bytes"] == 0
    assert pinned["upstream_bytes"] == 0
    assert pinned["error"].startswith(f"Certificate pinning failure for {HOST}!")
    assert "PinMismatchError" in text


def test_the_failure_is_reported_to_the_collector(played: tuple[DemoResult, str, Path]) -> None:
    result, _, work = played
    report = result.step("report").details
    assert report["stored"] == 1
    assert report["sent"] == 1
    assert report["collector"] == result.collector
    if result.collector and result.collector.startswith("pinset collector"):
        assert (work / "collector.db").is_file()


def test_a_rotation_announced_by_a_bundle_and_the_kill_switch(
    played: tuple[DemoResult, str, Path],
) -> None:
    result, text, work = played
    step = result.step("rotate-bundle")
    assert step.ok, step.observed
    assert step.observed == (
        "updated: HTTP 200, pinned; missed: refused; kill switch: HTTP 200, kill-switch"
    )
    assert step.details["bundle_versions"] == [2, 3]
    assert step.details["disabled"] == [HOST]
    # The first failure, the missed update's failure and the kill switch.
    assert step.details["reports_stored"] == 3
    assert (work / "signing.pub").read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")
    assert "fails closed (PinMismatchError" in text


def test_an_expired_pin_set_fails_open(played: tuple[DemoResult, str, Path]) -> None:
    result, _, work = played
    expire = result.step("expire")
    assert expire.details["reason"] == "policy-expired"
    assert expire.observed.startswith("before: refused;")
    expiration = policyfile.load(work / "pinset.toml").rules[0].expiration
    assert expiration is not None
    assert expire.details["clock"].startswith(expiration.isoformat())


def test_the_narration_is_plain_text_off_a_terminal(played: tuple[DemoResult, str, Path]) -> None:
    _, text, _ = played
    assert "\x1b[" not in text
    assert "Summary" in text
    assert "Every step behaved as expected" in text
    assert '[[domain]]\nname = "api.pinset.test"' in "\n".join(
        line.strip("│ ").rstrip() for line in text.splitlines()
    )


TITLES = [
    "API server up",
    "Pins extracted",
    "Policy written",
    "Pinned request",
    "MITM vs unpinned client",
    "MITM vs pinned client",
    "Failure report",
    "Rotation to backup key",
    "Rotation by signed bundle",
    "Expired pin set",
]
BOX = set("─│┏┃┡╇└┘╭╮╰╯━")


def test_off_a_terminal_each_outcome_is_a_plain_line(played: tuple[DemoResult, str, Path]) -> None:
    result, text, _ = played
    lines = text.splitlines()
    assert not BOX & set(text)
    assert "✔" not in text
    assert [s.title for s in result.steps] == TITLES
    summary = lines[lines.index("Summary") + 1 : lines.index("Summary") + 1 + len(TITLES)]
    assert [line.split(":")[0] for line in summary] == [f"[ok] {title}" for title in TITLES]
    assert summary[5] == (
        "[ok] MITM vs pinned client: PinMismatchError, REFUSED, 0 bytes leaked "
        "(expected: PinMismatchError, 0 bytes leaked)"
    )
    assert "1. A PKI and an API server" in lines
    assert "9. The pin set expires" in lines
    assert "  [ok] refused before sending: 0 bytes reached the proxy, 0 reached the API" in lines
    assert any(line.startswith("  [attack] fooled: the proxy read ") for line in lines)


def test_on_a_terminal_the_story_is_drawn() -> None:
    out = io.StringIO()
    say = Narrator(Console(file=out, force_terminal=True, width=100))
    say.step("A step")
    say.good("it worked")
    say.summary([("A step", "works", "worked", True)], 0.5)
    text = out.getvalue()
    assert "✔" in text
    assert "━" in text  # the summary is a table
    assert "[ok]" not in text


def test_a_stream_that_cannot_encode_the_marks_gets_words_not_a_crash() -> None:
    raw = io.BytesIO()
    stream = io.TextIOWrapper(raw, encoding="ascii", write_through=True)
    say = Narrator(Console(file=stream, force_terminal=True, width=100))
    say.good("leaf sha256/abc…")
    say.summary([("Pins extracted", "a pin", "sha256/abc…", True)], 0.5)
    text = raw.getvalue().decode("ascii")
    assert "[ok] leaf sha256/abc?" in text
    assert "sha256/abc?" in text.split("Summary")[1]


def test_the_cli_demo_completes_on_an_ascii_stream() -> None:
    env = dict(os.environ, PYTHONIOENCODING="ascii")
    done = subprocess.run(
        [sys.executable, "-m", "pinset", "demo"],
        capture_output=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    text = done.stdout.decode("ascii")
    assert "  [ok] the collector stored 1 report(s) for api.pinset.test" in text.splitlines()
    assert "Every step behaved as expected" in text
    assert done.stderr == b""  # no warning, no log line: what the app logs is in the story
    assert (
        "  app log: warning: pin update version 3 switches pinning off (kill switch) for " in text
    )


def test_cli_json_summary(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--json"]) == 0
    data: dict[str, Any] = json.loads(capsys.readouterr().out)
    assert data["ok"] is True
    assert data["host"] == HOST
    assert [s["name"] for s in data["steps"]] == STEPS
    assert all(s["ok"] for s in data["steps"])
    assert data["steps"][STEPS.index("mitm-pinned")]["details"]["leaked_bytes"] == 0


def test_cli_narrates_and_exits_0(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["demo", "--work-dir", str(tmp_path / "w")]) == 0
    out = capsys.readouterr().out
    assert "Every step behaved as expected" in out
    assert "\x1b[" not in out
    assert (tmp_path / "w" / "pinset.toml").is_file()


def test_a_client_that_does_not_pin_fails_the_demo(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Swap pinset's context for a plain verifying one: the demo must notice.
    def unpinned(policy: Policy, *, cadata: str, **_: Any) -> ssl.SSLContext:
        return ssl.create_default_context(cadata=cadata)

    monkeypatch.setattr(scenario, "ssl_context", unpinned)
    result, text = play()
    assert not result.ok
    attacked = result.step("mitm-pinned")
    assert not attacked.ok
    assert attacked.details["proxy_verdict"] == "INTERCEPTED"
    assert attacked.details["leaked_bytes"] > 0
    assert not result.step("pinned-request").ok
    assert "Some steps did not behave as expected" in text
    assert main(["demo", "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["ok"] is False


def test_a_step_that_crashes_is_reported_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(**_: Any) -> Any:
        raise OSError("no port for the proxy")

    monkeypatch.setattr(scenario, "MitmProxy", broken)
    result, text = play()
    assert not result.ok
    last = result.steps[-1]
    assert last.name == "attack-unpinned"
    assert last.observed == "OSError: no port for the proxy"
    assert [s.name for s in result.steps[:-1]] == STEPS[:4]
    assert "Summary" in text


def test_without_the_collector_extra_a_stdlib_receiver_takes_the_report(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # import uvicorn -> ImportError
    result, _ = play()
    assert result.collector is not None
    assert result.collector.startswith("stdlib receiver")
    assert result.step("report").details["stored"] == 1
    assert result.ok


def test_a_proxy_in_the_environment_does_not_divert_the_demo(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Port 9 (discard) on loopback: nothing listens, so anything sent there is lost.
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    result, _ = play()
    assert result.step("report").details["stored"] == 1
    assert result.ok
