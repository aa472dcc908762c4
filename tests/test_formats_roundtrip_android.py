"""Round trips of the Android formats over generated policies (hypothesis).

For everything a format can express: ``loads(dumps(p)).policy == p``, and
export → import → export is byte-identical.
"""

from __future__ import annotations

import warnings

import pytest
from hypothesis import HealthCheck, given, settings

from pinset.formats import _android as android
from pinset.formats import _native as native
from pinset.formats._android import trustkit_android
from pinset.formats._model import ExportWarning
from pinset.policy import Policy
from strategies import policies

# Every export of a dated pin-set says that Android reads the date at the device's local
# midnight; test_formats_android asserts that warning, the other tests leave it aside.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Android stops enforcing:pinset.formats._model.ExportWarning"
)


_SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_SETTINGS
@given(policies(report_only=False, report_uris=False))
def test_android_round_trip(policy: Policy) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", ExportWarning)  # nothing to warn about: all expressible
        # ... except what the device does with an expiration date, said on every export.
        warnings.filterwarnings("ignore", "Android stops enforcing", ExportWarning)
        text = android.dumps(policy)
    back = android.loads(text)
    assert back.policy == policy
    assert android.dumps(back.policy) == text


@_SETTINGS
@given(policies(min_pins=2))
def test_trustkit_android_round_trip(policy: Policy) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExportWarning)  # report-only rules warn, by design
        text = trustkit_android.dumps(policy)
        back = trustkit_android.loads(text)
        assert back.policy == policy
        assert trustkit_android.dumps(back.policy) == text


@_SETTINGS
@given(policies(one_label=True, defaults=True))
def test_native_toml_and_json_round_trip(policy: Policy) -> None:
    toml = native.dumps(policy)
    assert native.loads(toml).policy == policy
    assert native.dumps(native.loads(toml).policy) == toml
    text = native.dumps(policy, json=True)
    assert native.loads(text).policy == policy
    assert native.dumps(native.loads(text).policy, json=True) == text


@_SETTINGS
@given(policies(report_only=False, report_uris=False))
def test_android_export_keeps_what_the_policy_decides(policy: Policy) -> None:
    # Same verdict owner for every host the policy names and a child of each.
    back = android.loads(android.dumps(policy)).policy
    for rule in policy.rules:
        for host in (rule.name, "deep." + rule.name):
            assert back.match(host) == policy.match(host)


def test_pin_whose_base64_starts_with_slash_survives_native_round_trip() -> None:
    from pinset.pins import Pin
    from pinset.policy import DomainRule

    pin = Pin(bytes([0xFC]) + bytes(range(1, 32)))
    assert pin.b64.startswith("/")
    policy = Policy(rules=(DomainRule("a.example.com", pins=(pin,), allow_single_pin=True),))
    assert native.loads(native.dumps(policy)).policy == policy
