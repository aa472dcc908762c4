"""CT alone: a require-ct rule without pins, from the policy file to the handshake and the audit."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import warnings
from pathlib import Path

import pytest

from _ct_loopback import talk
from _policies import BACKUP
from pinset import PinMismatchError, Policy, ct, evaluate, spki_pin, ssl_context
from pinset.audit import audit
from pinset.cli import main
from pinset.errors import ConfigError
from pinset.formats import ExportWarning, dumps
from pinset.policy import DomainRule
from pinset.policyfile import dumps as policy_dumps
from pinset.policyfile import loads as policy_loads
from pinset.reporting import FailureReport
from pinset.testing import (
    CertificateAuthority,
    CTLog,
    TLSServer,
    log_list,
)

UTC = dt.timezone.utc
NOW = dt.datetime.now(UTC)
FIXTURES = Path(__file__).parent / "fixtures" / "ct"
AKAMAI = str(FIXTURES / "akamai-com-chain.pem")


# -- the rule ------------------------------------------------------------------------------


def test_a_rule_without_pins_is_allowed_only_with_require_ct() -> None:
    rule = DomainRule("api.example.com", require_ct=True)
    assert rule.ct_only
    assert rule.pins == ()
    with pytest.raises(ConfigError, match="has no pins") as info:
        DomainRule("api.example.com")
    assert "require-ct = true" in (info.value.hint or "")
    # placeholder-only says "refuse everything": it needs its placeholders, CT or not.
    with pytest.raises(ConfigError, match="has no pins"):
        DomainRule("api.example.com", require_ct=True, placeholder_only=True)
    # A pinned rule that requires CT is not CT-only, nor is an exclusion.
    assert not DomainRule(
        "a.example.com", pins=(BACKUP,), allow_single_pin=True, require_ct=True
    ).ct_only
    assert not DomainRule("b.example.com", exclude=True, require_ct=True).ct_only


@pytest.mark.parametrize(
    "text",
    [
        '[[domain]]\nname = "api.example.com"\nrequire-ct = true\n',
        '[[domain]]\nname = "api.example.com"\nrequire-ct = true\npins = []\n',
        '[defaults]\nrequire-ct = true\n\n[[domain]]\nname = "api.example.com"\n',
    ],
)
def test_the_policy_file_writes_ct_alone(text: str) -> None:
    policy = policy_loads(text)
    (rule,) = policy.rules
    assert rule.ct_only
    assert policy_loads(policy_dumps(policy)) == policy


def test_the_policy_file_still_refuses_a_rule_without_pins_or_ct() -> None:
    with pytest.raises(ConfigError, match="has no pins") as info:
        policy_loads('[[domain]]\nname = "api.example.com"\nrequire-ct = false\n', source="p.toml")
    assert info.value.line == 2


# -- the verdict (pure) --------------------------------------------------------------------


def _ct_only(**changes: object) -> Policy:
    return Policy(rules=(dataclasses.replace(DomainRule("localhost", require_ct=True), **changes),))


def test_evaluate_checks_no_pin_on_a_ct_only_rule(ct_ca: CertificateAuthority) -> None:
    chain = [ct_ca.issue_cert("localhost").cert, ct_ca.cert]
    verdict = evaluate(_ct_only(), "localhost", chain, now=NOW)
    assert (verdict.allowed, verdict.reason, verdict.matched_pin) == (True, "ct-compliant", None)
    assert "CT-only rule (no pins)" in verdict.describe()
    assert "Pinned keys" not in verdict.describe()
    # No chain: refused, as for pins.
    empty = evaluate(_ct_only(), "localhost", [], now=NOW)
    assert (empty.allowed, empty.reason) == (False, "no-verified-chain")
    # Expired: nothing is checked, CT included.
    old = _ct_only(expiration=(NOW - dt.timedelta(days=1)).date())
    assert evaluate(old, "localhost", chain, now=NOW).reason == "policy-expired"
    # A debug override anchor bypasses CT as it bypasses pins.
    anchors = frozenset({spki_pin(ct_ca.cert)})
    overridden = evaluate(_ct_only(), "localhost", chain, now=NOW, override_anchors=anchors)
    assert overridden.reason == "debug-override"


def test_the_kill_switch_turns_ct_only_off(ct_ca: CertificateAuthority) -> None:
    chain = [ct_ca.issue_cert("localhost").cert, ct_ca.cert]
    policy = _ct_only(enforce=False, kill_switch=True)
    verdict = evaluate(policy, "localhost", chain, now=NOW)
    assert (verdict.allowed, verdict.reason) == (True, "kill-switch")
    assert "the CT check of this CT-only rule is off" in verdict.describe()


# -- the handshake (loopback) --------------------------------------------------------------


def _context(ca: CertificateAuthority, policy: Policy, loglist: ct.LogList, heard=None):
    observers = () if heard is None else [lambda v, c: heard.append((v, c))]
    cadata = ca.cert_pem.bytes().decode("ascii")
    return ssl_context(policy, cadata=cadata, observers=observers, ct_log_list=loglist)


def test_ct_alone_passes_with_enough_scts_whatever_the_key(ct_ca, ct_loglist, ct_compliant) -> None:
    ctx = _context(ct_ca, _ct_only(), ct_loglist)
    first = talk(ctx, ct_compliant)
    assert (first.allowed, first.reason, first.matched_pin) == (True, "ct-compliant", None)
    # The kept verdict (second handshake, same chain) says the same.
    assert talk(ctx, ct_compliant).reason == "ct-compliant"


@pytest.mark.parametrize(
    ("server", "reason"), [("no_scts", "ct-missing"), ("one_operator", "ct-insufficient")]
)
def test_ct_alone_refuses_before_any_byte_and_reports(
    ct_ca, ct_loglist, request, server, reason
) -> None:
    srv: TLSServer = request.getfixturevalue(f"ct_{server}")
    heard: list = []
    ctx = _context(ct_ca, _ct_only(), ct_loglist, heard)
    with pytest.raises(PinMismatchError) as info:
        talk(ctx, srv)
    verdict = info.value.verdict
    assert verdict is not None
    assert (verdict.allowed, verdict.reason) == (False, reason)
    (record,) = srv.wait_for_connections(1)
    assert record.handshake_completed
    assert record.received == 0
    # The second attempt is judged again (a CT failure is not kept) and refused again.
    with pytest.raises(PinMismatchError):
        talk(ctx, srv)
    assert [v.reason for v, _ in heard] == [reason, reason]
    report = FailureReport.from_verdict(*heard[0]).to_dict()
    assert report["pinset-reason"] == reason
    assert report["known-pins"] == []


def test_ct_alone_report_only_allows_and_reports(ct_ca, ct_loglist, ct_no_scts) -> None:
    heard: list = []
    ctx = _context(ct_ca, _ct_only(enforce=False), ct_loglist, heard)
    verdict = talk(ctx, ct_no_scts)
    assert (verdict.allowed, verdict.reason) == (True, "ct-missing")
    assert [v.reason for v, _ in heard] == ["ct-missing"]


def test_ct_alone_expires_like_pins(ct_ca, ct_loglist, ct_no_scts) -> None:
    ctx = _context(ct_ca, _ct_only(expiration=(NOW - dt.timedelta(days=1)).date()), ct_loglist)
    assert talk(ctx, ct_no_scts).reason == "policy-expired"


def test_a_ct_only_policy_loads_a_log_list(ct_ca, ct_no_scts, tmp_path: Path) -> None:
    # The rule requires CT, so the context reads the list: a missing file is an error.
    with pytest.raises(ConfigError, match="cannot read the CT log list"):
        ssl_context(_ct_only(), observers=(), ct_log_list=tmp_path / "missing.json")


# -- audit -----------------------------------------------------------------------------------

CT_ONLY_POLICY = """
[[domain]]
name = "www.akamai.com"
require-ct = true
expiration = 2024-12-31
"""


def _ids(report) -> list[str]:
    return [f.id for f in report.findings]


def test_audit_notes_ct_only_without_pin_findings(tmp_path: Path) -> None:
    target = tmp_path / "pinset.toml"
    target.write_text('[[domain]]\nname = "api.example.com"\nrequire-ct = true\n', "utf-8")
    report = audit([str(target)], now=NOW)
    assert _ids(report) == ["ct-only", "no-expiration"]
    ct_only, no_expiration = report.findings
    assert ct_only.severity == "info"
    assert ct_only.line == 2
    assert "requires Certificate Transparency alone" in ct_only.message
    assert "its CT requirement is enforced until the app is updated" in no_expiration.message
    assert report.exit_code == 0


@pytest.mark.parametrize(
    ("log_list_name", "found"),
    [(None, ["ct-insufficient", "ct-only"]), ("google-2024-11", ["ct-only"])],
)
def test_audit_judges_a_ct_only_chain_against_the_given_log_list(
    tmp_path: Path, log_list_name: str | None, found: list[str]
) -> None:
    # A real chain (tests/fixtures/ct) with SCTs from three 2024 logs: the default list
    # (2026) no longer has them, Google's list of 2024-11 does. No pin finding either way.
    target = tmp_path / "pinset.toml"
    target.write_text(CT_ONLY_POLICY, "utf-8")
    from pinset.audit import chain_from_file

    chains = {"www.akamai.com": chain_from_file("www.akamai.com", AKAMAI)}
    at = dt.datetime(2024, 1, 1, tzinfo=UTC)
    report = audit([str(target)], now=at, chains=chains, ct_log_list=log_list_name)
    assert _ids(report) == found


def test_cli_audit_log_list(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "pinset.toml"
    target.write_text(CT_ONLY_POLICY, "utf-8")
    base = ["audit", str(target), "--chain", f"www.akamai.com={AKAMAI}", "--now", "2024-01-01"]
    assert main([*base, "--json"]) == 1
    assert "ct-insufficient" in capsys.readouterr().out
    assert main([*base, "--log-list", "google-2024-11", "--json"]) == 0
    findings = json.loads(capsys.readouterr().out)["findings"]
    assert [f["id"] for f in findings] == ["ct-only"]
    # A list file that does not exist is a usage error.
    assert main([*base, "--log-list", str(tmp_path / "missing.json")]) == 2
    assert "cannot read the CT log list" in capsys.readouterr().err


def test_audit_log_list_file_is_used(tmp_path: Path) -> None:
    # A list file with only test logs: the real chain's logs are unknown to it.
    path = tmp_path / "list.json"
    path.write_text(json.dumps(log_list([CTLog("Alpha", "Alpha")], NOW)), "utf-8")
    target = tmp_path / "pinset.toml"
    target.write_text(CT_ONLY_POLICY, "utf-8")
    from pinset.audit import chain_from_file

    chains = {"www.akamai.com": chain_from_file("www.akamai.com", AKAMAI)}
    at = dt.datetime(2024, 1, 1, tzinfo=UTC)
    report = audit([str(target)], now=at, chains=chains, ct_log_list=path)
    (insufficient,) = [f for f in report.findings if f.id == "ct-insufficient"]
    assert f"log list {path}" in insufficient.message


# -- export ----------------------------------------------------------------------------------

MIXED = policy_loads(
    """
[[domain]]
name = "ct.example.com"
require-ct = true

[[domain]]
name = "api.example.com"
pins = [
  "sha256/uLGnufTMlb00MRnx6gmvO0Dz+Ed5oIrvo24euL7e4jA=",
  "sha256/Ozb4ckn8HG6hU3fN7QGjP0RjKhYbd8NIPgYFxDC+cms=",
]
"""
)


@pytest.mark.parametrize(
    "fmt", ["trustkit-android", "trustkit", "trustkit-swift", "ios-ats", "okhttp"]
)
def test_platform_exports_leave_a_ct_only_domain_out_and_say_so(fmt: str) -> None:
    with pytest.warns(ExportWarning, match=r"ct\.example\.com requires Certificate Transparency"):
        out = dumps(MIXED, fmt)
    text = out if isinstance(out, str) else out.decode("utf-8", "replace")
    assert "ct.example.com" not in text
    assert "api.example.com" in text


def test_hpkp_exports_the_pinned_domain_alone() -> None:
    # The header pins one host: with the CT-only rule left out, only one is left.
    with pytest.warns(ExportWarning, match=r"an HPKP header has no CT directive"):
        header = dumps(MIXED, "hpkp")
    assert 'pin-sha256="uLGnufTMlb00MRnx6gmvO0Dz+Ed5oIrvo24euL7e4jA="' in str(header)


def test_the_pinset_format_keeps_ct_alone_without_warning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        text = dumps(MIXED, "pinset")
    assert policy_loads(str(text)) == MIXED


def test_a_bundle_switches_ct_only_off_or_adds_two_pins_never_one() -> None:
    from pinset.updates import BundleError
    from pinset.updates._changes import apply_changes, changes_of
    from pinset.updates._document import DomainState, Payload

    embedded = Policy(rules=(DomainRule("ct.example.com", require_ct=True),))
    other = spki_pin(CertificateAuthority.create("another CA").cert)

    def payload(domains=(), disable=()) -> Payload:
        return Payload(1, NOW, NOW + dt.timedelta(days=1), None, tuple(domains), tuple(disable))

    (off,) = apply_changes(
        embedded, changes_of(payload(disable=["ct.example.com"]), embedded)
    ).rules
    assert (off.kill_switch, off.enforce, off.require_ct, off.pins) == (True, False, True, ())
    two = payload([DomainState("ct.example.com", pins=(other, BACKUP))])
    (pinned,) = apply_changes(embedded, changes_of(two, embedded)).rules
    assert (pinned.pins, pinned.require_ct, pinned.ct_only) == ((other, BACKUP), True, False)
    with pytest.raises(BundleError, match="needs a backup pin"):
        changes_of(payload([DomainState("ct.example.com", pins=(other,))]), embedded)
