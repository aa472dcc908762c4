"""Expiration is 00:00:00 UTC of the date, whatever the local time zone says.

Pacific/Kiritimati is UTC+14 and America/Adak UTC-10 (−9 in summer): at the
expiry instant their local calendar dates differ from the UTC one, so a
local-time bug flips a verdict there.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pinset import DomainRule, Pin, Policy, evaluate

ZONES = ["Pacific/Kiritimati", "America/Adak", "UTC", "Asia/Kolkata"]
EXPIRES = dt.date(2030, 3, 1)
MIDNIGHT = dt.datetime(2030, 3, 1, tzinfo=dt.timezone.utc)
HAVE_ZONES = all(Path("/usr/share/zoneinfo", z).exists() for z in ZONES)


def _policy() -> Policy:
    pins = tuple(Pin(hashlib.sha256(s).digest()) for s in (b"a", b"b"))
    return Policy(rules=(DomainRule("api.example.com", pins=pins, expiration=EXPIRES),))


CHAIN: list[bytes] = []

SCRIPT = """
import datetime as dt, hashlib, json, sys, time
from zoneinfo import ZoneInfo
from pinset import DomainRule, Pin, Policy, policyfile
from pinset.verdict import evaluate
pins = tuple(Pin(hashlib.sha256(s).digest()) for s in (b"a", b"b"))
policy = policyfile.loads('''
[[domain]]
name = "api.example.com"
expiration = 2030-03-01
pins = ["%s", "%s"]
''' % tuple(str(p) for p in pins))
midnight = dt.datetime(2030, 3, 1, tzinfo=dt.timezone.utc)
local = ZoneInfo(sys.argv[1])
out = {}
for delta in (-1, 0, 1):
    instant = midnight + dt.timedelta(seconds=delta)
    forms = {
        "utc": instant,
        "zone": instant.astimezone(local),
        "localtime": dt.datetime.fromtimestamp(instant.timestamp()).astimezone(),
    }
    out[delta] = {
        name: [
            policy.rule_for("api.example.com").is_expired(now),
            evaluate(policy, "api.example.com", [], now=now).reason,
        ]
        for name, now in forms.items()
    }
out["offset"] = time.localtime(midnight.timestamp()).tm_gmtoff
print(json.dumps(out))
"""


@pytest.mark.skipif(not HAVE_ZONES, reason="the system has no zoneinfo database")
@pytest.mark.parametrize("zone", ZONES)
def test_verdict_depends_only_on_the_utc_instant(zone: str) -> None:
    env = {**os.environ, "TZ": zone}
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, zone], env=env, capture_output=True, text=True, check=True
    )
    out = json.loads(result.stdout)
    offsets = {"Pacific/Kiritimati": 14 * 3600, "America/Adak": -10 * 3600, "UTC": 0}
    if zone in offsets:
        assert out["offset"] == offsets[zone]  # the subprocess really ran in that zone
    for delta in (-1, 0, 1):
        assert set(out[str(delta)]) == {"utc", "zone", "localtime"}
        for form, (expired, verdict) in out[str(delta)].items():
            assert expired is (delta >= 0), (zone, delta, form)
            # Before expiry the enforced rule refuses the empty chain.
            expected = "policy-expired" if delta >= 0 else "no-verified-chain"
            assert verdict == expected, (zone, delta, form)


@pytest.fixture
def local_zone() -> Iterator[None]:
    if not hasattr(time, "tzset"):
        pytest.skip("time.tzset is not available")
    old = os.environ.get("TZ")
    yield
    if old is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = old
    time.tzset()


@pytest.mark.skipif(not HAVE_ZONES, reason="the system has no zoneinfo database")
@pytest.mark.usefixtures("local_zone")
@pytest.mark.parametrize("zone", ZONES)
def test_in_process_tz_change(zone: str) -> None:
    os.environ["TZ"] = zone
    time.tzset()
    policy = _policy()
    rule = policy.rule_for("api.example.com")
    assert rule is not None
    assert rule.expires_at() == MIDNIGHT
    for delta in (-1, 0, 1):
        instant = MIDNIGHT + dt.timedelta(seconds=delta)
        local = dt.datetime.fromtimestamp(instant.timestamp()).astimezone()
        for now in (instant, local):
            assert rule.is_expired(now) is (delta >= 0)
            verdict = evaluate(policy, "api.example.com", [], now=now)
            assert verdict.reason == ("policy-expired" if delta >= 0 else "no-verified-chain")
            assert verdict.allowed is (delta >= 0)


def test_fixed_offsets_either_side_of_midnight() -> None:
    policy = _policy()
    for hours in (-12, -10, -1, 0, 5, 14):
        tz = dt.timezone(dt.timedelta(hours=hours))
        before = (MIDNIGHT - dt.timedelta(seconds=1)).astimezone(tz)
        at = MIDNIGHT.astimezone(tz)
        assert evaluate(policy, "api.example.com", [], now=before).reason == "no-verified-chain"
        assert evaluate(policy, "api.example.com", [], now=at).reason == "policy-expired"
    # The local calendar date alone would say otherwise in UTC+14: already March 1st...
    early = (MIDNIGHT - dt.timedelta(hours=2)).astimezone(dt.timezone(dt.timedelta(hours=14)))
    assert early.date() == EXPIRES
    assert evaluate(policy, "api.example.com", [], now=early).reason == "no-verified-chain"


def test_naive_datetimes_are_rejected() -> None:
    policy = _policy()
    rule = policy.rule_for("api.example.com")
    assert rule is not None
    with pytest.raises(ValueError, match="timezone-aware"):
        evaluate(policy, "api.example.com", CHAIN, now=dt.datetime(2030, 3, 1))
    with pytest.raises(ValueError, match="timezone-aware"):
        evaluate(policy, "api.example.com", CHAIN, now=dt.datetime(2030, 2, 28, 23, 59, 59))
    with pytest.raises(TypeError):
        rule.is_expired(dt.datetime(2030, 3, 1))
