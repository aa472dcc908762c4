"""``pinset pin``: every file shape, live hosts, JSON shape, a batch that survives bad input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12
from cryptography.x509.oid import NameOID

from pinset.cli import main
from pinset.cli._inputs import parse_host_port
from pinset.errors import ConfigError
from pinset.pins import spki_pin
from pinset.testing import LeafCert, TLSServer

PEM = serialization.Encoding.PEM
DER = serialization.Encoding.DER
ROW_KEYS = {
    "position",
    "role",
    "subject",
    "issuer",
    "not_before",
    "not_after",
    "key_type",
    "pin",
}


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, Any, str]:
    code = main(["pin", "--json", *args])
    captured = capsys.readouterr()
    return code, json.loads(captured.out), captured.err


def pins(entry: dict[str, Any]) -> list[str]:
    return [row["pin"] for row in entry["certificates"]]


def test_pem_chain_table(
    tmp_path: Path, leaf: LeafCert, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "chain.pem"
    leaf.cert_chain_pem.write_to_path(path)
    assert main(["pin", str(path)]) == 0
    out = capsys.readouterr().out
    for cert in leaf.chain:
        assert str(spki_pin(cert)) in out
    assert "leaf" in out
    assert "intermediate" in out
    assert "EC P-256" in out


def test_json_shape_for_a_chain(
    tmp_path: Path, leaf: LeafCert, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "full.pem"
    path.write_bytes(b"".join(c.public_bytes(PEM) for c in leaf.full_chain))
    code, data, _ = run_json(capsys, str(path))
    assert code == 0
    assert len(data) == 1
    assert set(data[0]) == {"target", "certificates"}
    assert data[0]["target"] == str(path)
    rows = data[0]["certificates"]
    assert all(set(row) == ROW_KEYS for row in rows)
    assert [r["role"] for r in rows] == ["leaf", "intermediate", "root"]
    assert [r["position"] for r in rows] == [0, 1, 2]
    assert pins(data[0]) == [str(spki_pin(c)) for c in leaf.full_chain]
    first = rows[0]
    assert first["subject"] == leaf.cert.subject.rfc4514_string()
    assert first["issuer"] == leaf.cert.issuer.rfc4514_string()
    assert first["not_after"] == leaf.cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert first["not_before"].endswith("Z")


def test_every_file_type_in_one_batch(
    tmp_path: Path, leaf: LeafCert, capsys: pytest.CaptureFixture[str]
) -> None:
    leaf_pin = str(spki_pin(leaf.cert))
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "csr.example")]))
        .sign(leaf.private_key, hashes.SHA256())
    )
    files = {
        "leaf.der": leaf.cert.public_bytes(DER),
        "chain.p7b": pkcs7.serialize_certificates(list(leaf.chain), PEM),
        "chain.p7c": pkcs7.serialize_certificates(list(leaf.chain), DER),
        "key.pem": leaf.private_key_pem.bytes(),
        "pub.pem": leaf.cert.public_key().public_bytes(
            PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        "req.csr": csr.public_bytes(PEM),
        "plain.p12": pkcs12.serialize_key_and_certificates(
            b"x", leaf.private_key, leaf.cert, None, serialization.NoEncryption()
        ),
    }
    paths = []
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
        paths.append(str(tmp_path / name))
    code, data, err = run_json(capsys, *paths)
    assert code == 0, err
    by_name = {Path(entry["target"]).name: entry for entry in data}
    assert [Path(e["target"]).name for e in data] == list(files)
    assert pins(by_name["leaf.der"]) == [leaf_pin]
    for name in ("chain.p7b", "chain.p7c"):
        assert set(pins(by_name[name])) == {str(spki_pin(c)) for c in leaf.chain}
    for name, role in (("key.pem", "key"), ("pub.pem", "key"), ("req.csr", "csr")):
        rows = by_name[name]["certificates"]
        assert [(r["role"], r["pin"]) for r in rows] == [(role, leaf_pin)]
        assert rows[0]["not_after"] is None
    assert by_name["req.csr"]["certificates"][0]["subject"] == "CN=csr.example"
    # PKCS#12: the certificate, then its key, both with the leaf's pin.
    assert pins(by_name["plain.p12"]) == [leaf_pin, leaf_pin]


def test_pkcs12_password_file(
    tmp_path: Path, leaf: LeafCert, capsys: pytest.CaptureFixture[str]
) -> None:
    p12 = tmp_path / "server.p12"
    p12.write_bytes(
        pkcs12.serialize_key_and_certificates(
            b"x",
            leaf.private_key,
            leaf.cert,
            list(leaf.chain[1:]),
            serialization.BestAvailableEncryption(b"right horse"),
        )
    )
    good = tmp_path / "good.txt"
    good.write_text("right horse\n")
    bad = tmp_path / "bad.txt"
    bad.write_text("wrong horse\n")
    code, data, _ = run_json(capsys, "--password-file", str(good), str(p12))
    assert code == 0
    assert pins(data[0])[0] == str(spki_pin(leaf.cert))
    code, data, err = run_json(capsys, "--password-file", str(bad), str(p12))
    assert code == 2
    assert "wrong password" in data[0]["error"]
    assert "wrong password" in err
    code, data, err = run_json(capsys, str(p12))
    assert code == 2
    assert "no password" in data[0]["error"]
    assert "--password-file" in err


def test_garbage_fails_only_its_target(
    tmp_path: Path, leaf: LeafCert, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "good.pem"
    leaf.cert_chain_pem.write_to_path(good)
    garbage = tmp_path / "garbage.crt"
    garbage.write_bytes(b"\x00\x01 definitely not a certificate")
    code, data, err = run_json(capsys, str(good), str(garbage), str(good))
    assert code == 2
    assert [("error" in entry) for entry in data] == [False, True, False]
    assert data[1]["certificates"] == []
    assert str(garbage) in err
    assert "Traceback" not in err
    assert pins(data[0]) == pins(data[2]) == [str(spki_pin(c)) for c in leaf.chain]


def test_live_host(
    silent_server: TLSServer, leaf: LeafCert, cafile: str, capsys: pytest.CaptureFixture[str]
) -> None:
    target = f"127.0.0.1:{silent_server.port}"
    code, data, _ = run_json(capsys, "--cafile", cafile, target)
    assert code == 0
    assert data[0]["target"] == target
    assert pins(data[0]) == [str(spki_pin(c)) for c in leaf.chain]
    assert main(["pin", "--cafile", cafile, target]) == 0
    out = capsys.readouterr().out
    assert "verified to" in out
    assert str(spki_pin(leaf.full_chain[-1])) in out  # the anchor from the trust store


def test_live_host_untrusted_still_prints_pins(
    silent_server: TLSServer, leaf: LeafCert, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["pin", "--server-name", "localhost", f"localhost:{silent_server.port}"]) == 0
    out = capsys.readouterr().out
    assert str(spki_pin(leaf.cert)) in out
    assert "not verified" in out


def test_network_failures_exit_3(capsys: pytest.CaptureFixture[str], closed_port: int) -> None:
    port = closed_port
    code, data, err = run_json(capsys, f"127.0.0.1:{port}")
    assert code == 3
    assert "refused" in data[0]["error"]
    assert f"127.0.0.1:{port}" in err


def test_network_and_file_failures_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], closed_port: int
) -> None:
    garbage = tmp_path / "x.pem"
    garbage.write_text("nope")
    code, data, _ = run_json(capsys, f"127.0.0.1:{closed_port}", str(garbage))
    assert code == 2
    assert all("error" in entry for entry in data)


def test_hosts_and_files_keep_argument_order(
    silent_server: TLSServer,
    tmp_path: Path,
    leaf: LeafCert,
    cafile: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "leaf.pem"
    path.write_bytes(leaf.cert.public_bytes(PEM))
    host = f"127.0.0.1:{silent_server.port}"
    code, data, _ = run_json(capsys, "--cafile", cafile, host, str(path), host)
    assert code == 0
    assert [e["target"] for e in data] == [host, str(path), host]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("example.com", ("example.com", 443)),
        ("example.com:8443", ("example.com", 8443)),
        ("[::1]:8443", ("::1", 8443)),
        ("[::1]", ("::1", 443)),
        ("https://example.com:444/path", ("example.com", 444)),
        ("::1", ("::1", 443)),
    ],
)
def test_parse_host_port(text: str, expected: tuple[str, int]) -> None:
    assert parse_host_port(text) == expected


@pytest.mark.parametrize("text", ["example.com:http", "example.com:0", "example.com:70000", ":443"])
def test_parse_host_port_rejects(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_host_port(text)
