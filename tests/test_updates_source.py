"""UpdateSource from a local file, with a controlled clock: what is applied, refused, kept.

Loopback HTTPS (the pinned fetch, the background refresh, the full rotation cycle) is
tests/test_updates_cycle.py. The kill-switch verdict and its report are here too.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests._bundles import (
    BACKUP,
    CURRENT,
    ED_KEY,
    EMBEDDED,
    NEW,
    NOW,
    OTHER_ED_KEY,
    bundle,
    public_pem,
    updated,
)

from pinset import ssl_context
from pinset.errors import ConfigError
from pinset.policy import DomainRule, Policy
from pinset.policyfile import loads
from pinset.reporting import FailureReport
from pinset.updates import (
    FETCH_REASONS,
    MAX_BUNDLE_BYTES,
    BundleResult,
    FetchFailure,
    UpdateSource,
)
from pinset.updates._store import STATE_FILE
from pinset.verdict import Connection, evaluate


class Clock:
    """A clock the test moves."""

    def __init__(self, now: dt.datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def feed(tmp_path: Path) -> Path:
    """The file the source reads (what an update server would serve)."""
    return tmp_path / "bundle.json"


def source(feed: Path, tmp_path: Path, clock: Clock, **options: object) -> UpdateSource:
    options.setdefault("trusted_keys", [public_pem(ED_KEY)])
    options.setdefault("policy", EMBEDDED)
    options.setdefault("refresh", None)
    return UpdateSource(feed, store=tmp_path / "state", clock=clock, **options)  # type: ignore[arg-type]


def api_pins(policy: Policy) -> tuple[object, ...]:
    rule = policy.rule_for("api.example.com")
    assert rule is not None
    return rule.pins


ANNOUNCE = updated(pins=(CURRENT, BACKUP, NEW))


def test_the_stored_else_fetched_bundle_is_applied(
    feed: Path, tmp_path: Path, clock: Clock
) -> None:
    feed.write_bytes(bundle(ANNOUNCE, version=2))
    with source(feed, tmp_path, clock) as src:
        assert api_pins(src.policy) == (CURRENT, BACKUP, NEW)
        assert src.status.version == 2
        assert isinstance(src.status.last, BundleResult)
        assert src.status.last.valid
    # A new source on the same store starts from the stored bundle, not from the feed.
    feed.unlink()
    with source(feed, tmp_path, clock) as again:
        assert again.status.version == 2
        assert again.status.last is None  # nothing was fetched
        assert api_pins(again.policy) == (CURRENT, BACKUP, NEW)


def test_the_same_bundle_fetched_again_is_not_a_rollback(
    feed: Path, tmp_path: Path, clock: Clock
) -> None:
    feed.write_bytes(bundle(ANNOUNCE, version=2))
    with source(feed, tmp_path, clock) as src:
        result = src.refresh()
        assert isinstance(result, BundleResult)
        assert result.valid, result
        assert src.status.refused is None


APP = "com.example.app"


def refusals() -> Iterator[tuple[str, bytes]]:
    good = bundle(ANNOUNCE, version=3, app_id=APP)
    document = json.loads(good)
    payload = bytearray(document["payload"].encode())
    payload[10] ^= 0x01  # one byte of the signed payload
    document["payload"] = payload.decode()
    yield "bad-signature", json.dumps(document).encode()
    yield "unknown-key", bundle(ANNOUNCE, version=3, key=OTHER_ED_KEY, app_id=APP)
    yield "rollback", bundle(ANNOUNCE, version=1, app_id=APP)
    yield (
        "expired",
        bundle(ANNOUNCE, version=3, issued=NOW - dt.timedelta(days=9), expires=NOW, app_id=APP),
    )
    yield "wrong-app", bundle(ANNOUNCE, version=3, app_id="com.example.other")
    yield "too-large", good + b" " * MAX_BUNDLE_BYTES
    yield "malformed", b"<html>502 Bad Gateway</html>"
    yield "not-allowed", bundle(updated(pins=(CURRENT, NEW)), version=3, app_id=APP)


@pytest.mark.parametrize(("reason", "data"), list(refusals()), ids=[r for r, _ in refusals()])
def test_a_refused_bundle_changes_nothing_and_is_logged(
    feed: Path,
    tmp_path: Path,
    clock: Clock,
    caplog: pytest.LogCaptureFixture,
    reason: str,
    data: bytes,
) -> None:
    feed.write_bytes(bundle(updated(expiration=dt.date(2027, 9, 1)), version=2, app_id=APP))
    with source(feed, tmp_path, clock, app_id=APP) as src:
        before = src.policy
        assert before != EMBEDDED
        state = (tmp_path / "state" / STATE_FILE).read_bytes()
        assert src.status.version == 2
        feed.write_bytes(data)
        with caplog.at_level(logging.WARNING, logger="pinset.updates"):
            result = src.refresh()
        assert isinstance(result, BundleResult)
        assert (result.valid, result.reason) == (False, reason)
        assert src.policy == before
        assert src.status.version == 2
        assert src.status.refused == result
        assert (tmp_path / "state" / STATE_FILE).read_bytes() == state
        assert f"pin update refused ({reason}), nothing changed" in caplog.text


def test_a_failed_read_keeps_the_last_good_state(
    feed: Path, tmp_path: Path, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    feed.write_bytes(bundle(ANNOUNCE, version=2))
    with source(feed, tmp_path, clock) as src:
        feed.unlink()
        with caplog.at_level(logging.WARNING, logger="pinset.updates"):
            failure = src.refresh()
        assert isinstance(failure, FetchFailure)
        assert (failure.valid, failure.reason) == (False, "unreadable")
        assert str(feed) in failure.detail
        assert src.status.failure == failure
        assert src.status.version == 2
        assert api_pins(src.policy) == (CURRENT, BACKUP, NEW)
        assert "pin update check failed (unreadable)" in caplog.text
    assert set(FETCH_REASONS) == {
        "unreachable",
        "timeout",
        "http-status",
        "pin-mismatch",
        "tls-error",
        "unreadable",
    }


def test_a_stored_bundle_that_expires_gives_way_to_the_embedded_policy(
    feed: Path, tmp_path: Path, clock: Clock
) -> None:
    feed.write_bytes(bundle(ANNOUNCE, version=2, expires=NOW + dt.timedelta(days=1)))
    with source(feed, tmp_path, clock) as src:
        assert src.status.version == 2
        clock.now = NOW + dt.timedelta(days=1)
        assert src.refresh().valid is False  # the feed still serves it: expired
        assert src.status.version is None
        assert src.policy == EMBEDDED


def test_a_crash_mid_write_leaves_the_last_good_state(
    feed: Path, tmp_path: Path, clock: Clock
) -> None:
    feed.write_bytes(bundle(ANNOUNCE, version=2))
    with source(feed, tmp_path, clock):
        pass
    # What a crash between the write and the rename leaves (tests/test_updates_store.py
    # makes one for real): a complete temporary file beside the state file.
    state = tmp_path / "state"
    (state / f".{STATE_FILE}.crash").write_text(
        json.dumps({"version": 3, "bundle": bundle(ANNOUNCE, version=3).decode()})
    )
    feed.unlink()
    with source(feed, tmp_path, clock) as src:
        assert src.status.version == 2
        assert api_pins(src.policy) == (CURRENT, BACKUP, NEW)


def test_a_damaged_store_falls_back_to_the_embedded_policy(
    feed: Path, tmp_path: Path, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / STATE_FILE).write_text("{")
    with (
        caplog.at_level(logging.ERROR, logger="pinset.updates"),
        source(feed, tmp_path, clock) as src,
    ):
        assert src.policy == EMBEDDED
    assert "store unreadable" in caplog.text


def test_the_kill_switch_gives_its_own_verdict(feed: Path, tmp_path: Path, clock: Clock) -> None:
    feed.write_bytes(bundle(EMBEDDED, version=2, disable=["cdn.example.com"]))
    with source(feed, tmp_path, clock) as src:
        assert src.status.disabled == ("cdn.example.com",)
        policy = src.policy
    rule = policy.rule_for("cdn.example.com")
    assert rule is not None
    assert rule.kill_switch
    assert not rule.enforce
    assert rule.pins == (CURRENT, BACKUP)  # kept: the report lists them
    # Pinning is off: even the empty chain that fails closed elsewhere is let through.
    verdict = evaluate(policy, "cdn.example.com", [], now=NOW)
    assert (verdict.allowed, verdict.reason, verdict.matched_pin) == (True, "kill-switch", None)
    assert "kill switch" in verdict.describe()
    assert "no pin would have matched" in verdict.describe()
    api = evaluate(policy, "api.example.com", [], now=NOW)
    assert (api.allowed, api.reason) == (False, "no-verified-chain")


def test_kill_switch_reports_read_as_report_only_failures_or_successes(
    pki_leaf_chain: tuple[list[bytes], object],
) -> None:
    ders, leaf_pin = pki_leaf_chain
    pinned = DomainRule("localhost", pins=(leaf_pin, BACKUP), enforce=False, kill_switch=True)  # type: ignore[arg-type]
    other = DomainRule("localhost", pins=(CURRENT, BACKUP), enforce=False, kill_switch=True)
    connection = Connection("localhost", 443, tuple(ders))
    results = {}
    for name, rule in (("matches", pinned), ("differs", other)):
        verdict = evaluate(Policy(rules=(rule,)), "localhost", ders, now=NOW)
        assert verdict.reason == "kill-switch"
        assert verdict.allowed
        report = FailureReport.from_verdict(verdict, connection).to_dict()
        assert report["pinset-reason"] == "kill-switch"
        assert report["enforce-pinning"] is False
        results[name] = report["validation-result"]
    # TrustKit: 0 success, 1 no matching pin (read with enforce-pinning false: report-only).
    assert results == {"matches": 0, "differs": 1}


def test_the_collector_files_kill_switch_reports_under_their_own_name() -> None:
    pytest.importorskip("sqlalchemy")
    from pinset.collector._normalize import validation_result_name

    assert validation_result_name(1, "kill-switch", False) == "kill-switch"
    assert validation_result_name(0, "kill-switch", False) == "kill-switch"
    # A TrustKit-only reader of the same report files it with report-only failures.
    assert validation_result_name(1, None, False) == "report-only-mismatch"


@pytest.fixture
def pki_leaf_chain(pki: object) -> tuple[list[bytes], object]:
    from cryptography.hazmat.primitives import serialization

    from pinset import spki_pin
    from pinset.testing import TestPKI

    assert isinstance(pki, TestPKI)
    leaf = pki.leaf("localhost")
    ders = [c.public_bytes(serialization.Encoding.DER) for c in leaf.chain]
    return ders, spki_pin(leaf.chain[0])


def test_a_policy_cannot_write_the_kill_switch() -> None:
    with pytest.raises(ConfigError):
        loads(
            '[[domain]]\nname = "a.example"\npins = ["sha256/'
            + CURRENT.b64
            + '", "sha256/'
            + BACKUP.b64
            + '"]\nkill-switch = true\n'
        )
    with pytest.raises(ConfigError, match="kill-switched rule"):
        DomainRule("a.example", pins=(CURRENT, BACKUP), kill_switch=True)  # still enforced
    with pytest.raises(ConfigError, match="kill-switched rule"):
        DomainRule("a.example", exclude=True, enforce=False, kill_switch=True)


def test_bad_arguments(feed: Path, tmp_path: Path, clock: Clock) -> None:
    keys = [public_pem(ED_KEY)]
    with pytest.raises(ConfigError, match="not https"):
        UpdateSource("http://127.0.0.1/v1/pins/app", trusted_keys=keys, store=tmp_path)
    with pytest.raises(ConfigError, match="refresh"):
        UpdateSource(feed, trusted_keys=keys, store=tmp_path, refresh=0)
    with pytest.raises(ConfigError, match="no trusted key"):
        UpdateSource(feed, trusted_keys=[], store=tmp_path)
    unbound = UpdateSource(feed, trusted_keys=keys, store=tmp_path, refresh=None)
    with pytest.raises(ConfigError, match="no embedded policy"):
        unbound.refresh()
    bound = source(feed, tmp_path, clock)
    with pytest.raises(ConfigError, match="another embedded policy"):
        bound.follow(Policy(), lambda policy: True)
    with pytest.raises(ConfigError, match="updates must be"):
        ssl_context(EMBEDDED, updates=object())  # type: ignore[arg-type]


def test_a_context_follows_the_source_and_the_memo_follows_the_swap(
    feed: Path, tmp_path: Path, clock: Clock
) -> None:
    feed.write_bytes(bundle(ANNOUNCE, version=2))
    with source(feed, tmp_path, clock) as src:
        ctx = ssl_context(EMBEDDED, updates=src, observers=(), clock=clock)
        assert api_pins(ctx.pinset_policy) == (CURRENT, BACKUP, NEW)
        feed.write_bytes(bundle(ANNOUNCE, version=3, disable=["cdn.example.com"]))
        assert src.refresh().valid
        rule = ctx.pinset_policy.rule_for("cdn.example.com")
        assert rule is not None
        assert rule.kill_switch


def test_a_bundle_signed_only_by_a_rotated_in_key_is_applied_and_kept(
    feed: Path, tmp_path: Path, clock: Clock
) -> None:
    # Version 2 adds OTHER_ED_KEY to the signing keys (signed by both: adding needs no switch).
    both = [public_pem(ED_KEY), public_pem(OTHER_ED_KEY)]
    feed.write_bytes(bundle(EMBEDDED, [ED_KEY, OTHER_ED_KEY], version=2, next_signing_keys=both))
    with source(feed, tmp_path, clock) as src:
        assert src.status.version == 2
        # Version 3 is signed by the new key alone: the app ships only ED_KEY's public half.
        feed.write_bytes(bundle(ANNOUNCE, OTHER_ED_KEY, version=3))
        result = src.refresh()
        assert isinstance(result, BundleResult)
        assert result.valid, result
        assert src.status.version == 3
        assert api_pins(src.policy) == (CURRENT, BACKUP, NEW)
    with source(feed, tmp_path, clock) as again:  # the next start re-checks the stored one
        assert again.status.version == 3
        assert api_pins(again.policy) == (CURRENT, BACKUP, NEW)
