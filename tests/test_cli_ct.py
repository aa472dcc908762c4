"""`pinset ct logs` and `pinset ct check`: output, JSON shape, exit codes 0/1/2, the age warning."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from pinset.cli import main
from pinset.testing import CertificateAuthority, CTLog, issue_with_scts, log_list

UTC = dt.timezone.utc
FIXTURES = Path(__file__).parent / "fixtures" / "ct"
AKAMAI = str(FIXTURES / "akamai-com-chain.pem")
AT_2024 = "2024-01-01T00:00:00Z"  # seven weeks after the 2024-11 Google list: no warning


def test_logs_shows_each_shipped_list_with_its_date(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ct", "logs", "--now", "2026-09-01", "--json"]) == 0
    out = capsys.readouterr()
    data = json.loads(out.out)
    assert [(d["name"], d["date"], d["logs"]) for d in data["lists"]] == [
        ("google", "2026-08-21T00:00:00Z", 117),
        ("google-2024-11", "2024-11-14T12:55:19Z", 165),
        ("apple", "2026-04-01T00:00:00Z", 166),
    ]
    assert [d["stale"] for d in data["lists"]] == [False, True, True]
    assert out.err == ""  # the ages are the data here: marked, not warned about
    assert main(["ct", "logs", "--now", "2026-09-01"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("google: 2026-08-21T00:00:00Z (age 11 days), ")
    assert lines[2].startswith("google-2024-11: 2024-11-14T12:55:19Z (age 655 days, STALE: over 70")
    assert lines[4].startswith("apple: 2026-04-01T00:00:00Z (age 153 days, STALE: over 70 days, ")


def test_logs_of_a_given_file_lists_every_log(tmp_path: Path, capsys) -> None:
    path = tmp_path / "list.json"
    logs = [CTLog("Alpha", "Alpha"), CTLog("Beta", "Beta", state=None)]
    path.write_text(json.dumps(log_list(logs, dt.datetime(2026, 1, 1, tzinfo=UTC))), "utf-8")
    assert main(["ct", "logs", "--log-list", str(path), "--now", "2026-01-02", "--json"]) == 0
    out = capsys.readouterr()
    (data,) = json.loads(out.out)["lists"]
    assert data["states"] == {"none": 1, "usable": 1}
    assert [e["description"] for e in data["log_entries"]] == ["Alpha", "Beta"]
    assert out.err == ""
    assert main(["ct", "logs", "--log-list", str(path), "--now", "2026-01-02"]) == 0
    assert "1 days" in capsys.readouterr().out


def test_check_a_real_chain_that_meets_the_policy(capsys) -> None:
    args = ["ct", "check", AKAMAI, "--at", AT_2024, "--log-list", "google-2024-11"]
    assert main([*args, "--json"]) == 0
    out = capsys.readouterr()
    data = json.loads(out.out)
    assert data["compliant"] is True
    assert data["reason"] is None
    assert data["scts"][0] == {
        "log_id": "7s3QZNXbGs7FXLedtM0TojKHRny87N7DUUhZRnEftZs=",
        "log": "Google 'Argon2024' log",
        "operator": "Google",
        "timestamp": "2023-04-25T00:06:38.228Z",
        "signature": "valid",
        "log_state": "usable",
    }
    assert out.err == ""
    assert main(args) == 0
    assert "meets the CT policy" in capsys.readouterr().out


def test_check_exit_1_when_the_policy_is_not_met(capsys) -> None:
    args = ["ct", "check", AKAMAI, "--at", "2026-09-01T00:00:00Z", "--json"]
    assert main(args) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["reason"] == "ct-insufficient"
    assert {s["signature"] for s in data["scts"]} == {"unknown-log"}


def test_check_with_a_test_log_list(tmp_path: Path, capsys) -> None:
    ca = CertificateAuthority.create("cli CT CA")
    logs = [CTLog("Alpha", "Alpha"), CTLog("Beta", "Beta")]
    issued = dt.datetime(2026, 3, 1, tzinfo=UTC)
    leaf = issue_with_scts(ca, "ct.example", logs, issued=issued)
    chain = tmp_path / "chain.pem"
    chain.write_bytes(leaf.cert.public_bytes(Encoding.PEM) + ca.cert.public_bytes(Encoding.PEM))
    listed = tmp_path / "list.json"
    listed.write_text(json.dumps(log_list(logs[:1], issued)), "utf-8")
    assert (
        main(["ct", "check", str(chain), "--at", "2026-03-02T00:00:00Z", "--log-list", str(listed)])
        == 1
    )
    out = capsys.readouterr().out
    assert "does not meet it (ct-insufficient)" in out
    assert "unknown log" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--at", "yesterday"], "is not an RFC 3339"),
        (["--at", "2026-01-01T00:00:00"], "is not an RFC 3339"),
        (["--log-list", "no-such-list.json"], "cannot read the CT log list"),
    ],
)
def test_check_bad_options_exit_2(args: list[str], message: str, capsys) -> None:
    assert main(["ct", "check", AKAMAI, *args]) == 2
    assert message in capsys.readouterr().err


def test_check_bad_chains_exit_2(tmp_path: Path, capsys) -> None:
    lone = tmp_path / "lone.pem"
    lone.write_bytes(
        Path(AKAMAI).read_bytes().split(b"-----END CERTIFICATE-----")[0]
        + b"-----END CERTIFICATE-----\n"
    )
    assert main(["ct", "check", str(lone)]) == 2
    assert "needs the leaf and its issuer" in capsys.readouterr().err
    swapped = tmp_path / "swapped.pem"
    blocks = Path(AKAMAI).read_text("ascii").split("-----END CERTIFICATE-----\n")
    swapped.write_text(
        blocks[1] + "-----END CERTIFICATE-----\n" + blocks[0] + "-----END CERTIFICATE-----\n",
        "ascii",
    )
    assert main(["ct", "check", str(swapped)]) == 2
    assert "did not issue the first" in capsys.readouterr().err
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("hello", "ascii")
    assert main(["ct", "check", str(garbage)]) == 2
    assert main(["ct", "check", str(tmp_path / "missing.pem")]) == 2


def test_pin_shows_the_leafs_scts_when_the_issuer_is_known(capsys) -> None:
    assert main(["pin", AKAMAI, "--log-list", "google-2024-11", "--json"]) == 0
    (entry,) = json.loads(capsys.readouterr().out)
    assert entry["ct"]["compliant"] is True
    assert entry["ct"]["log_list_date"] == "2024-11-14"
    assert [s["log"] for s in entry["ct"]["scts"]] == [
        "Google 'Argon2024' log",
        "DigiCert Yeti2024 Log",
        "Cloudflare 'Nimbus2024' Log",
    ]
    assert main(["pin", AKAMAI, "--log-list", "google-2024-11"]) == 0
    out = capsys.readouterr().out
    assert "valid        usable     DigiCert Yeti2024 Log (DigiCert)" in out
    assert "CT: meets the CT policy" in out


def test_pin_shows_no_scts_without_the_issuer(tmp_path: Path, capsys) -> None:
    lone = tmp_path / "leaf.pem"
    lone.write_text(
        Path(AKAMAI).read_text("ascii").split("-----END CERTIFICATE-----\n")[0]
        + "-----END CERTIFICATE-----\n",
        "ascii",
    )
    assert main(["pin", str(lone), "--json"]) == 0
    (entry,) = json.loads(capsys.readouterr().out)
    assert "ct" not in entry


AKAMAI_POLICY = """
[[domain]]
name = "www.akamai.com"
{extra}expiration = 2024-12-31
pins = [
  "sha256/RQeZkB42znUfsDIIFWIRiYEcKl7nHwNFwWCrnMMJbVc=",  # DigiCert TLS RSA SHA256 2020 CA1
  "sha256/Ozb4ckn8HG6hU3fN7QGjP0RjKhYbd8NIPgYFxDC+cms=",
]
"""


@pytest.mark.parametrize(
    ("extra", "found"), [("require-ct = true\n", ["ct-insufficient"]), ("", [])]
)
def test_audit_adds_ct_insufficient_for_require_ct_domains(
    tmp_path: Path, capsys, extra, found
) -> None:
    # The default shipped list (2026) no longer lists the 2024 logs of this chain.
    target = tmp_path / "pinset.toml"
    target.write_text(AKAMAI_POLICY.format(extra=extra), "utf-8")
    code = main(
        [
            "audit",
            str(target),
            "--chain",
            f"www.akamai.com={AKAMAI}",
            "--now",
            "2024-01-01",
            "--json",
        ]
    )
    findings = json.loads(capsys.readouterr().out)["findings"]
    assert [f["id"] for f in findings] == found
    assert code == (1 if found else 0)
    if found:
        assert (
            "0 counted SCTs from 0 operators (need 3 from 2; 3 embedded)" in findings[0]["message"]
        )


def test_logs_with_a_bad_list_exit_2(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"operators": [{"name": "X", "logs": [{"description": "L"}]}]}', "utf-8")
    assert main(["ct", "logs", "--log-list", str(bad)]) == 2
    assert "key must be base64 text" in capsys.readouterr().err
