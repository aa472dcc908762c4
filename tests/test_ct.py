"""pinset.ct: embedded SCTs against test logs and the shipped lists, and the CT policy."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from importlib import resources
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from pinset import ct
from pinset.errors import ConfigError
from pinset.testing import CertificateAuthority, CTLog, issue_with_scts, log_list

UTC = dt.timezone.utc
ISSUED = dt.datetime(2026, 3, 1, tzinfo=UTC)
NOW = dt.datetime(2026, 3, 10, tzinfo=UTC)
FIXTURES = Path(__file__).parent / "fixtures" / "ct"


@pytest.fixture(scope="module")
def ca() -> CertificateAuthority:
    return CertificateAuthority.create("pinset CT test CA")


@pytest.fixture(scope="module")
def logs() -> dict[str, CTLog]:
    return {
        "a1": CTLog("Alpha 2026", "Alpha"),
        "a2": CTLog("Alpha Two 2026", "Alpha"),
        "b1": CTLog("Beta 2026", "Beta", rsa_key=True),
        "c1": CTLog("Gamma 2026", "Gamma"),
        "retired": CTLog(
            "Retired 2026",
            "Gamma",
            state="retired",
            state_since=dt.datetime(2026, 2, 1, tzinfo=UTC),
        ),
        "rejected": CTLog("Rejected 2026", "Beta", state="rejected"),
        "pending": CTLog("Pending 2026", "Beta", state="pending"),
        "stateless": CTLog("Stateless 2026", "Gamma", state=None),
        "shard": CTLog(
            "Shard 2027h1",
            "Gamma",
            interval=(dt.datetime(2027, 1, 1, tzinfo=UTC), dt.datetime(2027, 7, 1, tzinfo=UTC)),
        ),
        "unlisted": CTLog("Unlisted", "Nobody"),
    }


@pytest.fixture(scope="module")
def loglist(logs: dict[str, CTLog]) -> ct.LogList:
    listed = [log for name, log in logs.items() if name != "unlisted"]
    return ct.parse_log_list(log_list(listed, NOW - dt.timedelta(days=1)), source="test.json")


def check(
    leaf, ca: CertificateAuthority, loglist: ct.LogList, now: dt.datetime = NOW
) -> ct.CTResult:
    return ct.check_chain([leaf.cert, ca.cert], loglist, now=now)


# -- valid SCTs ----------------------------------------------------------------------


def test_valid_scts_from_two_operators_pass(ca, logs, loglist) -> None:
    leaf = issue_with_scts(ca, "ct.example", [logs["a1"], logs["b1"]], issued=ISSUED)
    result = check(leaf, ca, loglist)
    assert (result.compliant, result.reason) == (True, None)
    assert [c.signature for c in result.scts] == ["valid", "valid"]
    assert [c.log.operator for c in result.scts if c.log] == ["Alpha", "Beta"]


def test_rsa_and_ecdsa_log_keys_both_verify(ca, logs, loglist) -> None:
    leaf = issue_with_scts(ca, "ct.example", [logs["b1"], logs["c1"]], issued=ISSUED)
    assert isinstance(loglist.find(logs["b1"].log_id).public_key(), rsa.RSAPublicKey)
    assert [c.signature for c in check(leaf, ca, loglist).scts] == ["valid", "valid"]


def test_the_json_shape(ca, logs, loglist) -> None:
    leaf = issue_with_scts(ca, "ct.example", [logs["a1"], logs["b1"]], issued=ISSUED)
    data = json.loads(json.dumps(check(leaf, ca, loglist).to_dict()))
    assert data["compliant"] is True
    assert data["reason"] is None
    assert data["scts"][0] == {
        "log_id": base64.b64encode(logs["a1"].log_id).decode(),
        "log": "Alpha 2026",
        "operator": "Alpha",
        "timestamp": "2026-03-01T00:00:00.000Z",
        "signature": "valid",
        "log_state": "usable",
    }


# -- one byte changed --------------------------------------------------------------


def _flip_last(data: bytes) -> bytes:
    return data[:-1] + bytes([data[-1] ^ 1])


def test_one_byte_changed_in_the_tbs_fails(ca, logs, loglist) -> None:
    leaf = issue_with_scts(
        ca,
        "ct.example",
        [logs["a1"], logs["b1"]],
        issued=ISSUED,
        tamper=lambda tbs, spki: (_flip_last(tbs), spki),
    )
    result = check(leaf, ca, loglist)
    assert (result.compliant, result.reason) == (False, "ct-invalid")
    assert [c.signature for c in result.scts] == ["invalid", "invalid"]


def test_one_byte_changed_in_an_sct_fails(ca, logs, loglist) -> None:
    # The SCT's timestamp (bytes 33..40) moves by one millisecond after signing.
    def change(index: int, sct: bytes) -> bytes:
        return sct[:40] + bytes([sct[40] ^ 1]) + sct[41:] if index == 0 else sct

    leaf = issue_with_scts(
        ca, "ct.example", [logs["a1"], logs["b1"]], issued=ISSUED, change_sct=change
    )
    result = check(leaf, ca, loglist)
    assert (result.compliant, result.reason) == (False, "ct-invalid")
    assert [c.signature for c in result.scts] == ["invalid", "valid"]


def test_one_byte_changed_in_the_issuer_key_fails(ca, logs, loglist) -> None:
    leaf = issue_with_scts(
        ca,
        "ct.example",
        [logs["a1"], logs["b1"]],
        issued=ISSUED,
        tamper=lambda tbs, spki: (tbs, _flip_last(spki)),
    )
    assert check(leaf, ca, loglist).reason == "ct-invalid"


def test_the_issuer_is_the_one_of_the_chain(ca, logs, loglist) -> None:
    leaf = issue_with_scts(ca, "ct.example", [logs["a1"], logs["b1"]], issued=ISSUED)
    other = CertificateAuthority.create("another CA")
    result = ct.check_chain([leaf.cert, other.cert], loglist, now=NOW)
    assert result.reason == "ct-invalid"


# -- logs and their states -----------------------------------------------------------


def test_an_unknown_log_does_not_count(ca, logs, loglist) -> None:
    leaf = issue_with_scts(ca, "ct.example", [logs["a1"], logs["unlisted"]], issued=ISSUED)
    result = check(leaf, ca, loglist)
    assert (result.compliant, result.reason) == (False, "ct-insufficient")
    assert [c.signature for c in result.scts] == ["valid", "unknown-log"]
    assert result.to_dict()["scts"][1]["log"] is None


def test_a_retired_log_counts_only_before_its_retirement(ca, logs, loglist) -> None:
    before = issue_with_scts(
        ca, "ct.example", [logs["a1"], logs["retired"]], issued=dt.datetime(2026, 1, 15, tzinfo=UTC)
    )
    result = check(before, ca, loglist)
    assert (result.compliant, result.reason) == (True, None)
    after = issue_with_scts(ca, "ct.example", [logs["a1"], logs["retired"]], issued=ISSUED)
    result = check(after, ca, loglist)
    assert (result.compliant, result.reason) == (False, "ct-insufficient")
    assert result.scts[1].signature == "valid"
    assert not result.scts[1].counts
    assert "retired" in (result.scts[1].note or "")


def test_retired_logs_alone_are_not_enough(ca, logs) -> None:
    retired = [
        CTLog(
            f"Old {n}", f"Op{n}", state="retired", state_since=dt.datetime(2026, 2, 1, tzinfo=UTC)
        )
        for n in (1, 2)
    ]
    listed = ct.parse_log_list(log_list(retired, NOW))
    leaf = issue_with_scts(ca, "ct.example", retired, issued=dt.datetime(2026, 1, 15, tzinfo=UTC))
    result = check(leaf, ca, listed)
    assert result.reason == "ct-insufficient"
    assert all(c.counts for c in result.scts)


@pytest.mark.parametrize("name", ["rejected", "pending", "stateless"])
def test_rejected_pending_and_stateless_logs_never_count(ca, logs, loglist, name) -> None:
    leaf = issue_with_scts(ca, "ct.example", [logs["a1"], logs[name]], issued=ISSUED)
    result = check(leaf, ca, loglist)
    assert (result.compliant, result.reason) == (False, "ct-insufficient")
    assert result.scts[1].signature == "valid"
    assert not result.scts[1].counts


def test_too_few_operators(ca, logs, loglist) -> None:
    leaf = issue_with_scts(ca, "ct.example", [logs["a1"], logs["a2"]], issued=ISSUED)
    result = check(leaf, ca, loglist)
    assert (result.compliant, result.reason) == (False, "ct-insufficient")
    assert "from 1 operator" in result.detail


def test_a_long_lived_certificate_needs_three_logs(ca, logs, loglist) -> None:
    two = issue_with_scts(
        ca, "ct.example", [logs["a1"], logs["b1"]], issued=ISSUED, lifetime=dt.timedelta(days=181)
    )
    assert check(two, ca, loglist).reason == "ct-insufficient"
    three = issue_with_scts(
        ca,
        "ct.example",
        [logs["a1"], logs["b1"], logs["c1"]],
        issued=ISSUED,
        lifetime=dt.timedelta(days=181),
    )
    assert check(three, ca, loglist).compliant


@pytest.mark.parametrize(("days", "needed"), [(90, 2), (180, 2), (181, 3), (398, 3)])
def test_required_scts_follows_chromes_table(days: int, needed: int) -> None:
    assert ct.required_scts(ISSUED, ISSUED + dt.timedelta(days=days)) == needed


def test_the_temporal_interval(ca, logs, loglist) -> None:
    outside = issue_with_scts(ca, "ct.example", [logs["a1"], logs["shard"]], issued=ISSUED)
    result = check(outside, ca, loglist)
    assert result.reason == "ct-insufficient"
    assert "temporal interval" in (result.scts[1].note or "")
    inside = issue_with_scts(
        ca,
        "ct.example",
        [logs["a1"], logs["shard"]],
        issued=ISSUED,
        lifetime=dt.timedelta(days=330),
    )
    inside_three = issue_with_scts(
        ca,
        "ct.example",
        [logs["a1"], logs["shard"], logs["b1"]],
        issued=ISSUED,
        lifetime=dt.timedelta(days=330),
    )
    assert check(inside, ca, loglist).scts[1].counts
    assert check(inside_three, ca, loglist).compliant


def test_an_sct_from_the_future_does_not_count(ca, logs, loglist) -> None:
    leaf = issue_with_scts(ca, "ct.example", [logs["a1"], logs["b1"]], issued=ISSUED)
    result = check(leaf, ca, loglist, now=ISSUED - dt.timedelta(seconds=1))
    assert result.reason == "ct-insufficient"
    assert {c.note for c in result.scts} == {"timestamp is in the future"}


def test_no_embedded_sct_is_ct_missing(ca, loglist) -> None:
    leaf = ca.issue_cert("plain.example")
    result = check(leaf, ca, loglist)
    assert (result.compliant, result.reason, result.scts) == (False, "ct-missing", ())


def test_a_lone_leaf_with_scts_cannot_be_checked(ca, logs, loglist) -> None:
    leaf = issue_with_scts(ca, "ct.example", [logs["a1"], logs["b1"]], issued=ISSUED)
    assert ct.check_chain([leaf.cert], loglist, now=NOW).reason == "ct-insufficient"


def test_signed_data_matches_rfc_6962_layout(ca, logs) -> None:
    leaf = issue_with_scts(ca, "ct.example", [logs["a1"]], issued=ISSUED)
    (sct,) = ct.embedded_scts(leaf.cert)
    data = ct.signed_data(sct, b"TBS", b"\x11" * 32)
    millis = int(ISSUED.timestamp()) * 1000
    assert data == b"\x00\x00" + millis.to_bytes(8, "big") + b"\x00\x01" + b"\x11" * 32 + (
        b"\x00\x00\x03TBS\x00\x00"
    )


# -- log lists ----------------------------------------------------------------------------


def test_every_shipped_log_id_is_the_sha256_of_its_key() -> None:
    files = sorted(
        f.name
        for f in resources.files("pinset.ct").joinpath("data").iterdir()
        if f.name.endswith(".json")
    )
    assert files == sorted(s.file for s in ct.SHIPPED)
    total = 0
    for name in files:
        data = json.loads(resources.files("pinset.ct").joinpath("data", name).read_bytes())
        for operator in data["operators"]:
            for log in operator.get("logs", []) + operator.get("tiled_logs", []):
                key = base64.b64decode(log["key"])
                assert base64.b64decode(log["log_id"]) == hashlib.sha256(key).digest(), log
                total += 1
    assert total == 117 + 165 + 166  # the counts in ../shared/data/README.md


def test_the_shipped_lists_load_with_their_dates() -> None:
    google = ct.shipped_log_list("google-2024-11")
    assert (len(google.logs), google.version) == (165, "50.4")
    assert google.timestamp == dt.datetime(2024, 11, 14, 12, 55, 19, tzinfo=UTC)
    assert len(ct.shipped_log_list("google").logs) == 117
    assert len(ct.shipped_log_list("apple").logs) == 166
    assert ct.load_log_list(None) is ct.shipped_log_list(ct.DEFAULT_LOG_LIST)


def test_a_log_id_that_is_not_the_key_hash_is_refused(logs) -> None:
    data = log_list([logs["a1"]], NOW)
    data["operators"][0]["logs"][0]["log_id"] = base64.b64encode(logs["b1"].log_id).decode()
    with pytest.raises(ConfigError, match="not the SHA-256 of its key"):
        ct.parse_log_list(data)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.pop("operators"), "no 'operators'"),
        (lambda d: d["operators"][0]["logs"][0].update(state={"happy": {}}), "unknown state"),
        (lambda d: d["operators"][0]["logs"][0].update(key="!!"), "not valid base64"),
        (
            lambda d: d["operators"][0]["logs"][0].update(state={"retired": {}}),
            "needs its timestamp",
        ),
        (lambda d: d.update(log_list_timestamp="yesterday"), "not an RFC 3339"),
        (lambda d: d["operators"].append(d["operators"][0]), "appears twice"),
    ],
)
def test_bad_log_lists_are_refused(logs, change, message) -> None:
    data = log_list([logs["a1"]], NOW)
    change(data)
    with pytest.raises(ConfigError, match=message):
        ct.parse_log_list(data)


def test_a_log_list_file_that_is_not_json(tmp_path: Path) -> None:
    path = tmp_path / "list.json"
    path.write_text("{", encoding="utf-8")
    with pytest.raises(ConfigError, match="not JSON"):
        ct.load_log_list(path)
    with pytest.raises(ConfigError, match="cannot read"):
        ct.load_log_list(tmp_path / "missing.json")


def test_an_old_or_undated_list_warns() -> None:
    google = ct.shipped_log_list("google-2024-11")
    fresh = google.timestamp + dt.timedelta(days=70)
    assert google.age_warning(fresh, ct.MAX_LIST_AGE) is None
    warning = google.age_warning(fresh + dt.timedelta(days=1), ct.MAX_LIST_AGE)
    assert warning is not None
    assert "71 days old" in warning
    assert "--log-list" in warning
    undated = ct.parse_log_list({"operators": []}, source="x.json")
    assert "no date" in (undated.age_warning(fresh, ct.MAX_LIST_AGE) or "")


# -- real certificates, real logs -------------------------------------------------------


def _chain(name: str) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates((FIXTURES / name).read_bytes())


def test_a_real_certificate_meets_the_policy_with_the_2024_google_list() -> None:
    result = ct.check_chain(
        _chain("akamai-com-chain.pem"),
        ct.shipped_log_list("google-2024-11"),
        now=dt.datetime(2024, 1, 1, tzinfo=UTC),
    )
    assert (result.compliant, result.required) == (True, 3)
    assert [(c.log.description if c.log else None, c.signature) for c in result.scts] == [
        ("Google 'Argon2024' log", "valid"),
        ("DigiCert Yeti2024 Log", "valid"),
        ("Cloudflare 'Nimbus2024' Log", "valid"),
    ]


def test_a_real_sct_from_a_log_retired_later_counts() -> None:
    result = ct.check_chain(
        _chain("aws-amazon-com-chain.pem"),
        ct.shipped_log_list("google-2024-11"),
        now=dt.datetime(2024, 1, 1, tzinfo=UTC),
    )
    nessie = [c for c in result.scts if c.log and c.log.state == "retired"]
    assert len(nessie) == 1
    assert nessie[0].counts
    assert nessie[0].signature == "valid"
    assert result.compliant


def test_real_scts_of_rejected_logs_verify_but_do_not_count() -> None:
    result = ct.check_chain(
        _chain("cryptography-io-2018-chain.pem"),
        ct.shipped_log_list("apple"),
        now=dt.datetime(2018, 10, 1, tzinfo=UTC),
    )
    assert [(c.signature, c.log.state if c.log else None) for c in result.scts] == [
        ("valid", "rejected"),
        ("valid", "rejected"),
    ]
    assert result.reason == "ct-insufficient"


def test_real_scts_with_a_wrong_issuer_fail() -> None:
    leaf = _chain("akamai-com-chain.pem")[0]
    other_issuer = _chain("aws-amazon-com-chain.pem")[1]
    result = ct.check_chain([leaf, other_issuer], ct.shipped_log_list("google-2024-11"), now=NOW)
    assert result.reason == "ct-invalid"
    assert {c.signature for c in result.scts} == {"invalid"}


def test_a_malformed_sct_list_is_ct_invalid(ca, logs, loglist) -> None:
    leaf = issue_with_scts(
        ca, "ct.example", [logs["a1"], logs["b1"]], issued=ISSUED, change_sct=lambda i, s: s[:-3]
    )
    result = check(leaf, ca, loglist)
    assert (result.compliant, result.reason) == (False, "ct-invalid")
    assert "malformed" in result.detail


# -- require-ct in the policy file ----------------------------------------------------------

PINS = 'pins = ["sha256/' + "A" * 42 + 'Q=", "sha256/' + "B" * 42 + 'g="]'


def test_require_ct_per_domain_and_in_defaults() -> None:
    from pinset import policyfile

    text = f"""
[defaults]
require-ct = true

[[domain]]
name = "a.example"
{PINS}

[[domain]]
name = "b.example"
require-ct = false
{PINS}

[[domain]]
name = "static.a.example"
exclude = true
"""
    policy = policyfile.loads(text)
    assert policy.require_ct is True
    assert [(r.name, r.require_ct) for r in policy.rules if not r.exclude] == [
        ("a.example", True),
        ("b.example", False),
    ]
    written = policyfile.dumps(policy)
    assert "require-ct = true" in written
    assert written.count("require-ct") == 2
    assert policyfile.loads(written) == policy
    plain = policyfile.loads(f'[[domain]]\nname = "a.example"\n{PINS}\n')
    assert "require-ct" not in policyfile.dumps(plain)


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ('[defaults]\nrequire-ct = "yes"\n', 2),
        (f'[[domain]]\nname = "a.example"\nrequire-ct = 1\n{PINS}\n', 3),
    ],
)
def test_require_ct_must_be_a_bool(text: str, line: int) -> None:
    from pinset import policyfile

    with pytest.raises(ConfigError) as info:
        policyfile.loads(text, source="pinset.toml")
    assert info.value.key == "require-ct"
    assert info.value.line == line


def test_the_ct_reasons_are_verdict_reasons() -> None:
    from pinset.verdict import REASONS

    assert set(ct.REASONS) <= set(REASONS)


def test_the_pure_parts_need_no_files_sockets_or_clock(ca, logs, monkeypatch) -> None:
    import builtins
    import socket
    import time

    leaf = issue_with_scts(ca, "ct.example", [logs["a1"], logs["b1"]], issued=ISSUED)
    data = log_list([logs["a1"], logs["b1"]], NOW)

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("pinset.ct touched a file, a socket or the clock")

    class NoNow(dt.datetime):
        @classmethod
        def now(cls, tz: dt.tzinfo | None = None) -> NoNow:  # type: ignore[override]
            raise AssertionError("pinset.ct read the clock")

    for target, name in [(builtins, "open"), (socket, "socket"), (time, "time")]:
        monkeypatch.setattr(target, name, forbidden)
    monkeypatch.setattr(dt, "datetime", NoNow)
    listed = ct.parse_log_list(data, source="memory")
    result = ct.check_chain([leaf.cert, ca.cert], listed, now=NOW)
    assert result.compliant
    assert listed.age_warning(NOW, ct.MAX_LIST_AGE) is None


def test_an_unknown_shipped_name_is_refused() -> None:
    with pytest.raises(ConfigError, match="no shipped CT log list is called 'nope'"):
        ct.shipped_log_list("nope")
