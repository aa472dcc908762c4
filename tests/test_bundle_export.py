"""Rendering a verified bundle for a platform (``pinset.formats.render_bundle``, ``bundle export``).

Expected keys come from the platforms' own sources: TrustKit's configuration keys
(``TSKConfiguration``, ``TSKPinnedDomains``, ``TSKPublicKeyHashes``, ``TSKEnforcePinning``
in TrustKit.h) and Android's network security config elements (``domain-config``,
``pin digest="SHA-256"``, developer.android.com/training/articles/security-config).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import plistlib
import warnings
from pathlib import Path

import defusedxml.ElementTree as SafeET
import pytest

from _bundles import ED_KEY, NOW, OTHER_ED_KEY, pin, public_pem
from pinset import formats
from pinset.cli import main
from pinset.formats import ExportError, ExportWarning, render_bundle
from pinset.policy import DomainRule, Policy
from pinset.policyfile import dumps
from pinset.updates import BundleError, sign_bundle

CURRENT, BACKUP, NEW = pin("current"), pin("backup"), pin("new")
SHIPPED = Policy(
    rules=(
        DomainRule(
            "api.example.com",
            pins=(CURRENT, BACKUP),
            include_subdomains=True,
            expiration=dt.date(2027, 6, 30),
        ),
        DomainRule("cdn.example.com", pins=(CURRENT, BACKUP), expiration=dt.date(2027, 6, 30)),
    )
)
UPDATE = Policy(
    rules=(
        DomainRule(
            "api.example.com",
            pins=(CURRENT, BACKUP, NEW),
            include_subdomains=True,
            expiration=dt.date(2027, 12, 31),
        ),
    )
)
KEYS = [public_pem(ED_KEY)]


def b64(p: object) -> str:
    return base64.b64encode(p.digest).decode()  # type: ignore[attr-defined]


def signed(policy: Policy = UPDATE, **options: object) -> bytes:
    return sign_bundle(
        policy,
        options.pop("key", ED_KEY),  # type: ignore[arg-type]
        version=2,
        issued=NOW,
        expires=NOW + dt.timedelta(days=30),
        **options,  # type: ignore[arg-type]
    )


def render(data: bytes, fmt: str) -> str | bytes:
    return render_bundle(data, fmt, trusted_keys=KEYS, embedded=SHIPPED, now=NOW)


def test_trustkit_dictionary_carries_the_new_pin_and_the_kill_switch() -> None:
    data = signed(disable=["cdn.example.com"])
    plist = plistlib.loads(render(data, "trustkit").encode())  # type: ignore[union-attr]
    domains = plist["TSKConfiguration"]["TSKPinnedDomains"]
    api = domains["api.example.com"]
    assert api["TSKPublicKeyHashes"] == [b64(CURRENT), b64(BACKUP), b64(NEW)]
    assert api["TSKIncludeSubdomains"] is True
    assert api["TSKEnforcePinning"] is True
    assert api["TSKExpirationDate"] == "2027-12-31"
    # The kill switch in TrustKit's words: report, do not block.
    assert domains["cdn.example.com"]["TSKEnforcePinning"] is False


def test_android_and_okhttp_leave_a_kill_switched_domain_out() -> None:
    data = signed(disable=["cdn.example.com"])
    with pytest.warns(ExportWarning, match="local midnight"):  # the exporter's own note
        root = SafeET.fromstring(render(data, "android"))
    configured = [d.text for d in root.iter("domain")]
    assert configured == ["api.example.com"]
    digests = [p.text for p in root.iter("pin") if p.get("digest") == "SHA-256"]
    assert b64(NEW) in digests
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExportWarning)  # the exporter's notes on expiration
        code = render(data, "okhttp")
    assert isinstance(code, str)
    assert "api.example.com" in code
    assert "cdn.example.com" not in code
    assert f"sha256/{b64(NEW)}" in code


def test_without_the_kill_switch_every_domain_is_rendered() -> None:
    with pytest.warns(ExportWarning, match="local midnight"):
        root = SafeET.fromstring(render(signed(), "android"))
    assert sorted(d.text or "" for d in root.iter("domain")) == [
        "api.example.com",
        "cdn.example.com",
    ]


@pytest.mark.parametrize("fmt", ["trustkit", "android", "okhttp", "pinset"])
def test_a_refused_bundle_is_never_rendered(fmt: str) -> None:
    with pytest.raises(BundleError) as info:
        render(signed(key=OTHER_ED_KEY), fmt)
    assert info.value.reason == "unknown-key"
    widen = Policy(rules=(DomainRule("login.example.com", pins=(CURRENT, NEW)),))
    with pytest.raises(BundleError) as info:
        render(signed(widen), fmt)
    assert info.value.reason == "not-allowed"


def test_report_only_is_refused_by_a_format_that_always_enforces() -> None:
    report_only = Policy(
        rules=(
            DomainRule(
                "api.example.com", pins=(CURRENT, BACKUP), enforce=False, include_subdomains=True
            ),
        )
    )
    with pytest.raises(ExportError, match="report-only"):
        render(signed(report_only), "android")


def test_every_export_format_says_whether_it_takes_runtime_updates() -> None:
    assert set(formats.RUNTIME_UPDATES) == {*formats.FORMATS, *formats.ALIASES}
    for compiled in ("android", "trustkit-android", "ios-ats", "okhttp", "trustkit-swift"):
        assert formats.RUNTIME_UPDATES[compiled] is None
    assert formats.RUNTIME_UPDATES["trustkit"] is not None


# ---------------------------------------------------------------- the command


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    paths = {
        "policy": tmp_path / "pinset.toml",
        "pub": tmp_path / "signing.pub",
        "bundle": tmp_path / "bundle.json",
        "rogue": tmp_path / "rogue.json",
    }
    paths["policy"].write_text(dumps(SHIPPED))
    paths["pub"].write_bytes(public_pem(ED_KEY))
    paths["bundle"].write_bytes(signed(disable=["cdn.example.com"]))
    paths["rogue"].write_bytes(signed(key=OTHER_ED_KEY))
    return paths


def export(files: dict[str, Path], bundle: str, *extra: str) -> int:
    return main(
        [
            "bundle",
            "export",
            str(files[bundle]),
            "--trusted-key",
            str(files["pub"]),
            "--policy",
            str(files["policy"]),
            "--now",
            "2026-12-07",
            *extra,
        ]
    )


def test_cli_writes_the_trustkit_plist_with_a_runtime_note(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "TrustKit.plist"
    assert export(files, "bundle", "--format", "trustkit", "-o", str(out)) == 0
    err = capsys.readouterr().err
    assert "initSharedInstanceWithConfiguration" in err
    plist = plistlib.loads(out.read_bytes())
    assert (
        plist["TSKConfiguration"]["TSKPinnedDomains"]["cdn.example.com"]["TSKEnforcePinning"]
        is False
    )


def test_cli_says_android_cannot_take_runtime_updates(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert export(files, "bundle", "--format", "android") == 0
    captured = capsys.readouterr()
    assert "cannot take pins at run time" in captured.err
    assert captured.out.startswith("<?xml")
    assert export(files, "bundle", "--format", "android", "--json") == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["valid"] is True
    assert summary["runtime_update"] is None


def test_cli_refuses_an_invalid_bundle_and_writes_nothing(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out.xml"
    assert export(files, "rogue", "--format", "android", "-o", str(out)) == 1
    assert "refused (unknown-key)" in capsys.readouterr().out
    assert not out.exists()
    assert export(files, "rogue", "--format", "android", "--json") == 1
    assert json.loads(capsys.readouterr().out)["reason"] == "unknown-key"


def test_cli_unknown_format_is_a_usage_error(files: dict[str, Path]) -> None:
    assert export(files, "bundle", "--format", "trustkit-ios") == 2
