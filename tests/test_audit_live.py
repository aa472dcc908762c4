"""``--live``, ``--connect`` and ``--chain`` against real TLS servers on loopback."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from pinset.audit import Endpoint, audit, live_endpoints, read_subjects
from pinset.audit._live import fetch_chains, parse_endpoint
from pinset.cli import main
from pinset.errors import ConfigError
from pinset.pins import spki_pin
from pinset.testing import LeafCert, TestPKI, TLSServer, generate_key

NOW = dt.datetime.now(dt.timezone.utc)


@pytest.fixture(scope="module")
def live_pki() -> TestPKI:
    return TestPKI()


@pytest.fixture(scope="module")
def live_leaf(live_pki: TestPKI) -> LeafCert:
    return live_pki.leaf("localhost", "api.example.com", "127.0.0.1")


@pytest.fixture
def live_server(live_leaf: LeafCert) -> Iterator[TLSServer]:
    with TLSServer(live_leaf, mode="silent") as srv:
        yield srv


@pytest.fixture
def live_cafile(tmp_path: Path, live_pki: TestPKI) -> str:
    path = tmp_path / "ca.pem"
    live_pki.root.cert_pem.write_to_path(path)
    return str(path)


UNMATCHED_PIN = "sha256/kYYgDApU0eMPFGwHsLBIN0rf5c1kMzSVfli/vKiX+I4="


def policy(tmp_path: Path, *pins: str, name: str = "api.example.com") -> Path:
    path = tmp_path / "pinset.toml"
    pin_list = ", ".join(f'"{p}"' for p in pins)
    path.write_text(
        f'[[domain]]\nname = "{name}"\nexpiration = 2099-01-01\npins = [{pin_list}]\n',
        encoding="utf-8",
    )
    return path


def unmatched_policy(tmp_path: Path, name: str = "api.example.com") -> Path:
    """A policy for ``name`` whose two pins match no key of the test chains."""
    return policy(tmp_path, UNMATCHED_PIN, str(spki_pin(generate_key())), name=name)


def test_parse_endpoint() -> None:
    assert parse_endpoint("example.com") == ("example.com", 443)
    assert parse_endpoint("example.com:8443") == ("example.com", 8443)
    assert parse_endpoint("[::1]:8443") == ("::1", 8443)
    with pytest.raises(ConfigError):
        parse_endpoint("example.com:99999")


def test_endpoints_use_the_apex_of_include_subdomains_rules(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text(
        '[[domain]]\nname = "example.com"\ninclude-subdomains = true\nallow-single-pin = true\n'
        f'pins = ["{UNMATCHED_PIN}"]\n'
        '[[domain]]\nname = "static.example.com"\nexclude = true\n',
        encoding="utf-8",
    )
    subjects, _, _ = read_subjects([path])
    found = live_endpoints(
        subjects, hosts=[("www.example.com", 8443)], connect={"example.com": ("127.0.0.1", 9)}
    )
    assert found == [
        Endpoint("example.com", "127.0.0.1", 9),
        Endpoint("www.example.com", "www.example.com", 8443),
    ]


def test_live_chain_matches_the_pinned_intermediate(
    tmp_path: Path, live_server: TLSServer, live_pki: TestPKI, live_cafile: str
) -> None:
    pins = (str(spki_pin(live_pki.intermediate.cert)), str(spki_pin(generate_key())))
    report = audit(
        [policy(tmp_path, *pins)],
        now=NOW,
        live=True,
        connect={"api.example.com": ("127.0.0.1", live_server.port)},
        cafile=live_cafile,
        timeout=5,
    )
    assert report.findings == ()
    assert report.exit_code == 0
    assert live_server.connections  # it really connected


def test_live_chain_without_a_pinned_key_is_an_error(
    tmp_path: Path, live_server: TLSServer, live_cafile: str
) -> None:
    report = audit(
        [unmatched_policy(tmp_path)],
        now=NOW,
        live=True,
        connect={"api.example.com": ("127.0.0.1", live_server.port)},
        cafile=live_cafile,
        timeout=5,
    )
    assert [f.id for f in report.findings] == ["no-live-match"]
    assert f"127.0.0.1:{live_server.port}" in report.findings[0].message
    assert report.exit_code == 1


def test_verified_chain_lets_root_pins_match(
    tmp_path: Path, live_server: TLSServer, live_pki: TestPKI, live_cafile: str
) -> None:
    # The server sends leaf + intermediate; only validation adds the root.
    pins = (str(spki_pin(live_pki.root.cert)), str(spki_pin(generate_key())))
    target = policy(tmp_path, *pins)
    connect = {"api.example.com": ("127.0.0.1", live_server.port)}
    verified = audit([target], now=NOW, live=True, connect=connect, cafile=live_cafile, timeout=5)
    assert [f.id for f in verified.findings] == ["root-only-pins"]
    unverified = audit([target], now=NOW, live=True, connect=connect, timeout=5)
    assert [f.id for f in unverified.findings] == ["no-live-match"]


def test_unreachable_host_is_a_warning_not_a_crash(tmp_path: Path, closed_port: int) -> None:
    port = closed_port
    chains = fetch_chains([Endpoint("api.example.com", "127.0.0.1", port)], timeout=2)
    assert chains["api.example.com"].error
    report = audit(
        [unmatched_policy(tmp_path)],
        now=NOW,
        live=True,
        connect={"api.example.com": ("127.0.0.1", port)},
        timeout=2,
    )
    assert [(f.id, f.severity) for f in report.findings] == [("live-fetch-failed", "warning")]


def test_cli_live_with_connect_and_json(
    tmp_path: Path,
    live_server: TLSServer,
    live_leaf: LeafCert,
    live_cafile: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    target = policy(
        tmp_path, str(spki_pin(live_leaf.cert)), str(spki_pin(generate_key())), name="localhost"
    )
    code = main(
        [
            "audit", str(target), "--live", "--json", "--cafile", live_cafile,
            "--connect", f"localhost=127.0.0.1:{live_server.port}", "--timeout", "5",
        ]
    )  # fmt: skip
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert out["findings"] == []
    assert out["summary"]["domains"] == 1


def test_cli_host_option_overrides_the_port(
    tmp_path: Path, live_server: TLSServer, live_leaf: LeafCert, capsys: pytest.CaptureFixture[str]
) -> None:
    target = unmatched_policy(tmp_path, name="127.0.0.1")
    code = main(
        ["audit", str(target), "--live", "--host", f"127.0.0.1:{live_server.port}", "--json"]
    )
    out = json.loads(capsys.readouterr().out)
    assert code == 1
    assert [f["id"] for f in out["findings"]] == ["no-live-match"]


def test_cli_chain_file_offline(
    tmp_path: Path, live_leaf: LeafCert, capsys: pytest.CaptureFixture[str]
) -> None:
    chain = tmp_path / "chain.pem"
    live_leaf.cert_chain_pem.write_to_path(chain)
    target = policy(tmp_path, str(spki_pin(live_leaf.cert)), str(spki_pin(generate_key())))
    assert main(["audit", str(target), "--chain", f"api.example.com={chain}", "--json"]) == 0
    capsys.readouterr()
    other = unmatched_policy(tmp_path)
    assert main(["audit", str(other), "--chain", f"api.example.com={chain}", "--json"]) == 1
    findings = json.loads(capsys.readouterr().out)["findings"]
    assert [f["id"] for f in findings] == ["no-live-match"]
    assert str(chain) in findings[0]["message"]


def test_cli_bad_chain_option_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = unmatched_policy(tmp_path)
    assert main(["audit", str(target), "--chain", "no-equals-sign"]) == 2
    assert "HOST=FILE" in capsys.readouterr().err
