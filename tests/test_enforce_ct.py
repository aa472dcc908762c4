"""require-ct on a pinned context: CT judged after the pins, on real loopback TLS."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import warnings
from pathlib import Path

import pytest

from _ct_loopback import talk
from _policies import BACKUP, WRONG
from pinset import PinMismatchError, Policy, Verdict, ct, spki_pin, ssl_context
from pinset.enforce import Connection
from pinset.policy import DomainRule
from pinset.reporting import FailureReport
from pinset.testing import (
    CertificateAuthority,
    TLSServer,
    log_list,
)

UTC = dt.timezone.utc
NOW = dt.datetime.now(UTC)


def _policy(ca: CertificateAuthority, *, enforce: bool = True, require_ct: bool = True) -> Policy:
    rule = DomainRule(
        "localhost", pins=(spki_pin(ca.cert), BACKUP), enforce=enforce, require_ct=require_ct
    )
    return Policy(rules=(rule,))


def _cadata(ca: CertificateAuthority) -> str:
    return ca.cert_pem.bytes().decode("ascii")


def test_pins_and_ct_both_hold(ct_ca, ct_loglist, ct_compliant) -> None:
    ctx = ssl_context(_policy(ct_ca), cadata=_cadata(ct_ca), observers=(), ct_log_list=ct_loglist)
    assert talk(ctx, ct_compliant).reason == "pinned"


@pytest.mark.parametrize(
    ("server", "reason"), [("no_scts", "ct-missing"), ("one_operator", "ct-insufficient")]
)
def test_ct_failures_are_refused_before_any_byte(
    ct_ca, ct_loglist, request, server, reason
) -> None:
    srv: TLSServer = request.getfixturevalue(f"ct_{server}")
    heard: list[tuple[Verdict, Connection]] = []
    ctx = ssl_context(
        _policy(ct_ca),
        cadata=_cadata(ct_ca),
        observers=[lambda verdict, connection: heard.append((verdict, connection))],
        ct_log_list=ct_loglist,
    )
    with pytest.raises(PinMismatchError) as info:
        talk(ctx, srv)
    assert info.value.verdict is not None
    assert info.value.verdict.reason == reason
    assert "Certificate Transparency failure for localhost" in str(info.value)
    assert "pinset ct check" in info.value.diagnostics()
    (record,) = srv.wait_for_connections(1)
    assert record.handshake_completed
    assert record.received == 0
    assert [v.reason for v, _ in heard] == [reason]
    report = FailureReport.from_verdict(*heard[0])
    assert report.to_dict()["pinset-reason"] == reason


def test_report_only_allows_and_reports(ct_ca, ct_loglist, ct_one_operator) -> None:
    heard: list[Verdict] = []
    ctx = ssl_context(
        _policy(ct_ca, enforce=False),
        cadata=_cadata(ct_ca),
        observers=[lambda verdict, connection: heard.append(verdict)],
        ct_log_list=ct_loglist,
    )
    verdict = talk(ctx, ct_one_operator)
    assert (verdict.allowed, verdict.reason) == (True, "ct-insufficient")
    assert "report-only, connection allowed" in verdict.describe()
    assert [v.reason for v in heard] == ["ct-insufficient"]


def test_a_pin_failure_is_reported_as_such(ct_ca, ct_loglist, ct_no_scts) -> None:
    rule = DomainRule("localhost", pins=(WRONG, BACKUP), require_ct=True)
    ctx = ssl_context(
        Policy(rules=(rule,)), cadata=_cadata(ct_ca), observers=(), ct_log_list=ct_loglist
    )
    with pytest.raises(PinMismatchError) as info:
        talk(ctx, ct_no_scts)
    assert info.value.verdict is not None
    assert info.value.verdict.reason == "pin-mismatch"


def test_without_require_ct_no_log_list_is_read(ct_ca, ct_no_scts, tmp_path: Path) -> None:
    ctx = ssl_context(
        _policy(ct_ca, require_ct=False),
        cadata=_cadata(ct_ca),
        observers=(),
        ct_log_list=tmp_path / "missing.json",
    )
    assert talk(ctx, ct_no_scts).reason == "pinned"


def test_a_log_list_file_is_read(ct_ca, ct_logs, ct_compliant, tmp_path: Path) -> None:
    path = tmp_path / "log_list.json"
    path.write_text(json.dumps(log_list(ct_logs, NOW)), encoding="utf-8")
    ctx = ssl_context(_policy(ct_ca), cadata=_cadata(ct_ca), observers=(), ct_log_list=path)
    assert talk(ctx, ct_compliant).reason == "pinned"


def test_a_stale_log_list_warns_and_still_enforces(ct_ca, ct_logs, ct_one_operator) -> None:
    old = ct.parse_log_list(log_list(ct_logs, NOW - dt.timedelta(days=71)), source="old.json")
    with pytest.warns(ct.StaleLogListWarning, match=r"old\.json is 71 days old"):
        ctx = ssl_context(_policy(ct_ca), cadata=_cadata(ct_ca), observers=(), ct_log_list=old)
    with pytest.raises(PinMismatchError):
        talk(ctx, ct_one_operator)


def test_a_fresh_list_does_not_warn(ct_ca, ct_loglist) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ssl_context(_policy(ct_ca), cadata=_cadata(ct_ca), observers=(), ct_log_list=ct_loglist)


def test_the_default_list_is_the_shipped_one(ct_ca, ct_compliant) -> None:
    # The clock sits a week after the shipped list's date: no warning, and the test
    # logs are not in it.
    shipped = ct.shipped_log_list(ct.DEFAULT_LOG_LIST)
    assert shipped.timestamp is not None
    at = shipped.timestamp + dt.timedelta(days=7)
    ctx = ssl_context(_policy(ct_ca), cadata=_cadata(ct_ca), observers=(), clock=lambda: at)
    with pytest.raises(PinMismatchError) as info:
        talk(ctx, ct_compliant)
    verdict = info.value.verdict
    assert verdict is not None
    assert verdict.reason == "ct-insufficient"


def test_an_expired_pin_set_switches_ct_off_with_the_pins(ct_ca, ct_loglist) -> None:
    from pinset import evaluate
    from pinset.enforce._ct import ct_verdict

    leaf = ct_ca.issue_cert("localhost")  # no SCT at all
    rule = DomainRule(
        "localhost",
        pins=(spki_pin(ct_ca.cert), BACKUP),
        require_ct=True,
        expiration=(NOW - dt.timedelta(days=2)).date(),
    )
    chain = [leaf.cert, ct_ca.cert]
    expired = evaluate(Policy(rules=(rule,)), "localhost", chain, now=NOW)
    assert ct_verdict(expired, ct_loglist, NOW).reason == "policy-expired"
    live = dataclasses.replace(rule, expiration=None)
    pinned = evaluate(Policy(rules=(live,)), "localhost", chain, now=NOW)
    refused = ct_verdict(pinned, ct_loglist, NOW)
    assert (refused.allowed, refused.reason) == (False, "ct-missing")
    assert refused.error == "the certificate embeds no SCT"


class _OneUpdate:
    """A policy feed that applies one update at once: the rule gains a pin (as a bundle would)."""

    def follow(self, embedded: Policy, listener) -> None:
        (rule,) = embedded.rules
        listener(
            dataclasses.replace(
                embedded, rules=(dataclasses.replace(rule, pins=(*rule.pins, WRONG)),)
            )
        )


def test_a_policy_update_keeps_ct_enforced(ct_ca, ct_loglist, ct_no_scts) -> None:
    ctx = ssl_context(
        _policy(ct_ca),
        cadata=_cadata(ct_ca),
        observers=(),
        ct_log_list=ct_loglist,
        updates=_OneUpdate(),
    )
    assert WRONG in ctx.pinset_policy.rules[0].pins  # the update is in effect
    with pytest.raises(PinMismatchError) as info:
        talk(ctx, ct_no_scts)
    assert info.value.verdict is not None
    assert info.value.verdict.reason == "ct-missing"
