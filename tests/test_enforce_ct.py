"""require-ct on a pinned context: CT judged after the pins, on real loopback TLS."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import socket
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from _policies import BACKUP, WRONG
from pinset import PinMismatchError, Policy, Verdict, ct, spki_pin, ssl_context
from pinset.enforce import Connection
from pinset.policy import DomainRule
from pinset.reporting import FailureReport
from pinset.testing import (
    CertificateAuthority,
    CTLog,
    LeafCert,
    TLSServer,
    issue_with_scts,
    log_list,
)

UTC = dt.timezone.utc
NOW = dt.datetime.now(UTC)


@pytest.fixture(scope="module")
def ca() -> CertificateAuthority:
    return CertificateAuthority.create("pinset CT enforcement CA")


@pytest.fixture(scope="module")
def logs() -> list[CTLog]:
    return [CTLog("Alpha", "Alpha"), CTLog("Beta", "Beta"), CTLog("Alpha Two", "Alpha")]


@pytest.fixture(scope="module")
def loglist(logs: list[CTLog]) -> ct.LogList:
    return ct.parse_log_list(log_list(logs, NOW), source="test-list.json")


def _serve(leaf: LeafCert) -> Iterator[TLSServer]:
    with TLSServer(leaf, mode="echo") as server:
        yield server


@pytest.fixture
def compliant(ca: CertificateAuthority, logs: list[CTLog]) -> Iterator[TLSServer]:
    yield from _serve(issue_with_scts(ca, "localhost", logs[:2], issued=NOW - dt.timedelta(days=1)))


@pytest.fixture
def one_operator(ca: CertificateAuthority, logs: list[CTLog]) -> Iterator[TLSServer]:
    leaf = issue_with_scts(ca, "localhost", [logs[0], logs[2]], issued=NOW - dt.timedelta(days=1))
    yield from _serve(leaf)


@pytest.fixture
def no_scts(ca: CertificateAuthority) -> Iterator[TLSServer]:
    yield from _serve(ca.issue_cert("localhost"))


def _policy(ca: CertificateAuthority, *, enforce: bool = True, require_ct: bool = True) -> Policy:
    rule = DomainRule(
        "localhost", pins=(spki_pin(ca.cert), BACKUP), enforce=enforce, require_ct=require_ct
    )
    return Policy(rules=(rule,))


def _talk(ctx, server: TLSServer) -> Verdict:
    with (
        socket.create_connection(server.address, timeout=5) as sock,
        ctx.wrap_socket(sock, server_hostname="localhost") as tls,
    ):
        tls.sendall(b"ping")
        assert tls.recv(16) == b"ping"
        assert tls.pinset_verdict is not None
        return tls.pinset_verdict


def _cadata(ca: CertificateAuthority) -> str:
    return ca.cert_pem.bytes().decode("ascii")


def test_pins_and_ct_both_hold(ca, loglist, compliant) -> None:
    ctx = ssl_context(_policy(ca), cadata=_cadata(ca), observers=(), ct_log_list=loglist)
    assert _talk(ctx, compliant).reason == "pinned"


@pytest.mark.parametrize(
    ("server", "reason"), [("no_scts", "ct-missing"), ("one_operator", "ct-insufficient")]
)
def test_ct_failures_are_refused_before_any_byte(ca, loglist, request, server, reason) -> None:
    srv: TLSServer = request.getfixturevalue(server)
    heard: list[tuple[Verdict, Connection]] = []
    ctx = ssl_context(
        _policy(ca),
        cadata=_cadata(ca),
        observers=[lambda verdict, connection: heard.append((verdict, connection))],
        ct_log_list=loglist,
    )
    with pytest.raises(PinMismatchError) as info:
        _talk(ctx, srv)
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


def test_report_only_allows_and_reports(ca, loglist, one_operator) -> None:
    heard: list[Verdict] = []
    ctx = ssl_context(
        _policy(ca, enforce=False),
        cadata=_cadata(ca),
        observers=[lambda verdict, connection: heard.append(verdict)],
        ct_log_list=loglist,
    )
    verdict = _talk(ctx, one_operator)
    assert (verdict.allowed, verdict.reason) == (True, "ct-insufficient")
    assert "report-only, connection allowed" in verdict.describe()
    assert [v.reason for v in heard] == ["ct-insufficient"]


def test_a_pin_failure_is_reported_as_such(ca, loglist, no_scts) -> None:
    rule = DomainRule("localhost", pins=(WRONG, BACKUP), require_ct=True)
    ctx = ssl_context(Policy(rules=(rule,)), cadata=_cadata(ca), observers=(), ct_log_list=loglist)
    with pytest.raises(PinMismatchError) as info:
        _talk(ctx, no_scts)
    assert info.value.verdict is not None
    assert info.value.verdict.reason == "pin-mismatch"


def test_without_require_ct_no_log_list_is_read(ca, no_scts, tmp_path: Path) -> None:
    ctx = ssl_context(
        _policy(ca, require_ct=False),
        cadata=_cadata(ca),
        observers=(),
        ct_log_list=tmp_path / "missing.json",
    )
    assert _talk(ctx, no_scts).reason == "pinned"


def test_a_log_list_file_is_read(ca, logs, compliant, tmp_path: Path) -> None:
    path = tmp_path / "log_list.json"
    path.write_text(json.dumps(log_list(logs, NOW)), encoding="utf-8")
    ctx = ssl_context(_policy(ca), cadata=_cadata(ca), observers=(), ct_log_list=path)
    assert _talk(ctx, compliant).reason == "pinned"


def test_a_stale_log_list_warns_and_still_enforces(ca, logs, one_operator) -> None:
    old = ct.parse_log_list(log_list(logs, NOW - dt.timedelta(days=71)), source="old.json")
    with pytest.warns(ct.StaleLogListWarning, match=r"old\.json is 71 days old"):
        ctx = ssl_context(_policy(ca), cadata=_cadata(ca), observers=(), ct_log_list=old)
    with pytest.raises(PinMismatchError):
        _talk(ctx, one_operator)


def test_a_fresh_list_does_not_warn(ca, loglist) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ssl_context(_policy(ca), cadata=_cadata(ca), observers=(), ct_log_list=loglist)


def test_the_default_list_is_the_shipped_one(ca, compliant) -> None:
    # The clock sits a week after the shipped list's date: no warning, and the test
    # logs are not in it.
    shipped = ct.shipped_log_list(ct.DEFAULT_LOG_LIST)
    assert shipped.timestamp is not None
    at = shipped.timestamp + dt.timedelta(days=7)
    ctx = ssl_context(_policy(ca), cadata=_cadata(ca), observers=(), clock=lambda: at)
    with pytest.raises(PinMismatchError) as info:
        _talk(ctx, compliant)
    verdict = info.value.verdict
    assert verdict is not None
    assert verdict.reason == "ct-insufficient"


def test_an_expired_pin_set_switches_ct_off_with_the_pins(ca, loglist) -> None:
    from pinset import evaluate
    from pinset.enforce._ct import ct_verdict

    leaf = ca.issue_cert("localhost")  # no SCT at all
    rule = DomainRule(
        "localhost",
        pins=(spki_pin(ca.cert), BACKUP),
        require_ct=True,
        expiration=(NOW - dt.timedelta(days=2)).date(),
    )
    chain = [leaf.cert, ca.cert]
    expired = evaluate(Policy(rules=(rule,)), "localhost", chain, now=NOW)
    assert ct_verdict(expired, loglist, NOW).reason == "policy-expired"
    live = dataclasses.replace(rule, expiration=None)
    pinned = evaluate(Policy(rules=(live,)), "localhost", chain, now=NOW)
    refused = ct_verdict(pinned, loglist, NOW)
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


def test_a_policy_update_keeps_ct_enforced(ca, loglist, no_scts) -> None:
    ctx = ssl_context(
        _policy(ca), cadata=_cadata(ca), observers=(), ct_log_list=loglist, updates=_OneUpdate()
    )
    assert WRONG in ctx.pinset_policy.rules[0].pins  # the update is in effect
    with pytest.raises(PinMismatchError) as info:
        _talk(ctx, no_scts)
    assert info.value.verdict is not None
    assert info.value.verdict.reason == "ct-missing"
