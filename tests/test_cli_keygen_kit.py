"""``pinset keygen --kit DIR``: the disaster-recovery kit, its files, modes, pins and README.

Pins are recomputed here as RFC 7469 section 2.4 defines them (base64 of the SHA-256 of
the DER SubjectPublicKeyInfo), not taken from pinset. The last test deploys a backup key
of a kit on a loopback server and checks that the policy the kit's snippet makes accepts
it, while a key the kit did not make is refused.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import ipaddress
import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

import pinset
from pinset import policyfile
from pinset.chain import csr_names, recovery_kit
from pinset.cli import main
from pinset.cli._app import cli
from pinset.errors import ConfigError
from pinset.testing import TestPKI, TLSServer

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

PASSWORD = b"correct horse battery staple"
NAMES = ("api.example.com", "www.example.com")
FILES = [
    "README.md",
    "backup-1.csr",
    "backup-1.key",
    "backup-1.pub",
    "backup-2.csr",
    "backup-2.key",
    "backup-2.pub",
    "pins.txt",
    "pinset-snippet.toml",
    "signing.key",
    "signing.pub",
]
SRC = Path(pinset.__file__).resolve().parent.parent


@pytest.fixture
def passfile(tmp_path: Path) -> Path:
    path = tmp_path / "pass.txt"
    path.write_bytes(PASSWORD + b"\n")
    return path


def rfc7469_pin(key: Any) -> str:
    public = key.public_key() if hasattr(key, "public_key") else key
    spki = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return "sha256/" + base64.b64encode(hashlib.sha256(spki).digest()).decode()


def make_kit(directory: Path, passfile: Path, *extra: str, names: tuple[str, ...] = NAMES) -> int:
    cns = [arg for name in names for arg in ("--cn", name)]
    return main(["keygen", "--kit", str(directory), *cns, "--password-file", str(passfile), *extra])


def private(path: Path, password: bytes | None = PASSWORD) -> Any:
    return serialization.load_pem_private_key(path.read_bytes(), password=password)


@pytest.fixture
def kit(tmp_path: Path, passfile: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    directory = tmp_path / "kit"
    assert make_kit(directory, passfile) == 0
    capsys.readouterr()
    return directory


def test_the_kit_holds_its_files_with_private_modes(kit: Path) -> None:
    assert sorted(p.name for p in kit.iterdir()) == FILES
    assert stat.S_IMODE(kit.stat().st_mode) == 0o700
    for path in kit.iterdir():
        expected = 0o600 if path.suffix == ".key" else 0o644
        assert stat.S_IMODE(path.stat().st_mode) == expected, path.name


def test_every_private_key_is_encrypted_and_pairs_with_its_public_key(kit: Path) -> None:
    for name in ("backup-1", "backup-2", "signing"):
        pem = (kit / f"{name}.key").read_bytes()
        assert pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----\n"), name
        with pytest.raises(TypeError):
            serialization.load_pem_private_key(pem, password=None)
        # Refused either way: a wrong password is "Incorrect password" when the CBC padding
        # check catches it, and an ASN.1 error in the 1-in-256 case where the padding
        # happens to look right (the salt is random, so which one varies from run to run).
        with pytest.raises(ValueError, match=r"Incorrect password|Could not deserialize key data"):
            serialization.load_pem_private_key(pem, password=b"not the kit's password")
        key = private(kit / f"{name}.key")
        public = serialization.load_pem_public_key((kit / f"{name}.pub").read_bytes())
        assert rfc7469_pin(public) == rfc7469_pin(key), name
    assert isinstance(private(kit / "backup-1.key"), ec.EllipticCurvePrivateKey)
    assert isinstance(private(kit / "signing.key"), ed25519.Ed25519PrivateKey)
    # Two backups are two keys, and neither is the signing key.
    pins = {rfc7469_pin(private(kit / f"{n}.key")) for n in ("backup-1", "backup-2", "signing")}
    assert len(pins) == 3


def test_each_csr_is_signed_by_its_backup_key_and_names_the_servers(kit: Path) -> None:
    for name in ("backup-1", "backup-2"):
        csr = x509.load_pem_x509_csr((kit / f"{name}.csr").read_bytes())
        assert csr.is_signature_valid
        assert csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == NAMES[0]
        san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert san.get_values_for_type(x509.DNSName) == list(NAMES)
        assert rfc7469_pin(csr.public_key()) == rfc7469_pin(private(kit / f"{name}.key"))


def test_pins_txt_and_the_readme_name_each_key_with_its_pin(kit: Path) -> None:
    actual = {
        f"{name}.key": rfc7469_pin(private(kit / f"{name}.key"))
        for name in ("backup-1", "backup-2", "signing")
    }
    listed = {}
    for line in (kit / "pins.txt").read_text().splitlines():
        if not line.startswith("#"):
            pin, file, *_kind = line.split()
            listed[file] = pin
    assert listed == actual
    readme = (kit / "README.md").read_text()
    for file, pin in actual.items():
        assert re.search(rf"^\| `{re.escape(file)}` \|.*\| `{re.escape(pin)}` \|$", readme, re.M)


def test_the_readme_says_where_each_file_is_kept(kit: Path) -> None:
    readme = (kit / "README.md").read_text()
    table = readme.split("## Where each file is kept")[1].split("\n## ")[0]
    rows = dict(re.findall(r"^\| `([\w.-]+)` \| ([^|]+) \|", table, re.M))
    assert sorted(rows) == FILES
    for name, keep in rows.items():
        assert keep.strip() == ("**offline**" if name.endswith(".key") else "shareable"), name


def test_the_readme_has_the_emergency_commands(kit: Path) -> None:
    readme = (kit / "README.md").read_text()
    for command in [
        # deploy a backup key: check what is shipped accepts it, get it certified, verify
        "pinset rotate check pinset.toml --new-key backup-1.csr",
        "openssl pkey -in backup-1.key -out server.key",
        "pinset audit pinset.toml --live",
        # sign a bundle, verify it as the apps will (issue 11's command lines)
        "pinset bundle sign pinset.toml --key signing.key --version N --expires-in 30"
        " -o bundle.json",
        "pinset bundle verify bundle.json --trusted-key signing.pub --policy pinset.toml",
        "--disable api.example.com -o bundle.json",
        # put the backups into a new policy
        "pinset init api.example.com www.example.com --backup-key backup-1.pub"
        " --backup-key backup-2.pub --expires-in 90",
    ]:
        assert command in readme


def test_every_pinset_command_line_of_the_readme_exists(kit: Path) -> None:
    # Each command and option exists (bundle is issue 11's, built alongside): the README
    # is read by people in an emergency, not proofread.
    lines = [
        line.strip()
        for line in (kit / "README.md").read_text().splitlines()
        if line.strip().startswith("pinset ") and not line.strip().startswith("pinset bundle")
    ]
    assert len(lines) >= 6
    for line in lines:
        words = line.split()
        command: click.Command | None = cli
        for word in words[1:]:
            if not isinstance(command, click.Group) or word.startswith("-"):
                break
            command = command.get_command(click.Context(command), word)
            assert command is not None, line
        assert command is not None
        options = {opt for param in command.params for opt in param.opts}
        for word in words:
            if word.startswith("--"):
                assert word in options, (line, word)


def test_the_snippet_loads_and_pins_the_backups(kit: Path) -> None:
    text = (kit / "pinset-snippet.toml").read_text()
    backups = [rfc7469_pin(private(kit / f"backup-{n}.key")) for n in (1, 2)]
    data = tomllib.loads(text)
    assert [d["name"] for d in data["domain"]] == list(NAMES)
    for domain in data["domain"]:
        assert domain["pins"] == backups
    policy = policyfile.loads(text)
    for rule in policy.rules:
        assert [str(pin) for pin in rule.pins] == backups
    # The live key's pin is to be added by hand: the snippet says so where it goes.
    assert '# "sha256/...",  # the key api.example.com uses now' in text


def test_json_lists_the_files_and_pins(
    tmp_path: Path, passfile: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = tmp_path / "kit"
    assert make_kit(directory, passfile, "--json") == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data) == {"kit", "names", "made", "keys", "files"}
    assert data["kit"] == str(directory)
    assert data["names"] == list(NAMES)
    dt.date.fromisoformat(data["made"])
    assert sorted(Path(f["path"]).name for f in data["files"]) == FILES
    for entry in data["files"]:
        path = Path(entry["path"])
        assert set(entry) == {"path", "kind", "mode", "secret"}
        assert entry["mode"] == f"{stat.S_IMODE(path.stat().st_mode):04o}"
        assert entry["secret"] is (path.suffix == ".key")
    assert [k["role"] for k in data["keys"]] == ["backup", "backup", "signing"]
    for key in data["keys"]:
        assert set(key) == {"role", "key_type", "pin", "key", "public_key", "csr"}
        assert key["pin"] == rfc7469_pin(private(Path(key["key"])))
        assert (key["csr"] is None) is (key["role"] == "signing")


def test_backups_count_types_and_signing_type(
    tmp_path: Path, passfile: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = tmp_path / "kit"
    argv = ["--backups", "3", "--type", "rsa-2048", "--signing-type", "ecdsa-p256", "--json"]
    assert make_kit(directory, passfile, *argv) == 0
    data = json.loads(capsys.readouterr().out)
    assert [k["key_type"] for k in data["keys"]] == ["RSA 2048"] * 3 + ["EC P-256"]
    assert isinstance(private(directory / "backup-3.key"), rsa.RSAPrivateKey)
    signer = private(directory / "signing.key")
    assert isinstance(signer, ec.EllipticCurvePrivateKey)
    assert isinstance(signer.curve, ec.SECP256R1)


def test_a_non_empty_directory_is_refused(
    tmp_path: Path, passfile: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = tmp_path / "old-kit"
    directory.mkdir()
    (directory / "backup-1.key").write_text("the only copy of last year's backup key")
    assert make_kit(directory, passfile) == 2
    assert [p.name for p in directory.iterdir()] == ["backup-1.key"]
    assert (directory / "backup-1.key").read_text() == "the only copy of last year's backup key"
    err = capsys.readouterr().err
    assert "non-empty directory" in err
    assert str(directory) in err


def test_an_empty_directory_is_used(tmp_path: Path, passfile: Path) -> None:
    directory = tmp_path / "usb-stick"
    directory.mkdir()
    assert make_kit(directory, passfile) == 0
    assert sorted(p.name for p in directory.iterdir()) == FILES


@pytest.mark.parametrize("case", ["a file", "no parent"])
def test_a_kit_path_that_cannot_be_a_new_directory_is_refused(
    tmp_path: Path, passfile: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    if case == "a file":
        directory = tmp_path / "kit"
        directory.write_text("not a directory")
    else:
        directory = tmp_path / "missing" / "kit"
    assert make_kit(directory, passfile) == 2
    err = capsys.readouterr().err
    assert str(directory) in err
    assert "Traceback" not in err
    assert not (tmp_path / "missing").exists()


def test_refusals_come_before_the_password_is_asked_for(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_prompt(*args: object, **kwargs: object) -> str:
        raise AssertionError("asked for a password before refusing")

    monkeypatch.setattr("click.prompt", no_prompt)
    full = tmp_path / "full"
    full.mkdir()
    (full / "x").write_text("x")
    assert main(["keygen", "--kit", str(full), "--cn", "api.example.com"]) == 2
    bad_name = tmp_path / "kit"
    assert main(["keygen", "--kit", str(bad_name), "--cn", "api..example.com"]) == 2
    assert "--cn" in capsys.readouterr().err
    # 65 characters with valid labels: a host name, but too long for the CSR's CN.
    long_name = "a" * 53 + ".example.com"
    assert main(["keygen", "--kit", str(bad_name), "--cn", long_name]) == 2
    assert "longer than a common name" in capsys.readouterr().err
    assert not bad_name.exists()


def test_an_empty_password_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("\n")
    directory = tmp_path / "kit"
    assert make_kit(directory, empty) == 2
    assert not directory.exists()
    assert "password" in capsys.readouterr().err


def test_a_write_failure_leaves_no_partial_kit(tmp_path: Path, passfile: Path) -> None:
    # The process may not write files over 4 KiB: every key, CSR and pin file fits, the
    # README (written last) does not, so the failure comes after ten files are on disk.
    directory = tmp_path / "kit"
    code = (
        "import resource, signal, sys\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))\n"
        "from pinset.cli import main\n"
        f"sys.exit(main(['keygen', '--kit', {str(directory)!r}, '--cn', 'api.example.com',"
        f" '--password-file', {str(passfile)!r}]))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 2, done.stderr
    assert "cannot write the kit" in done.stderr
    assert "nothing of it was kept" in done.stderr
    assert "README.md" in done.stderr
    assert not directory.exists()


def test_the_library_checks_before_making_keys() -> None:
    today = dt.date(2026, 12, 6)
    with pytest.raises(ConfigError, match="backup keys"):
        recovery_kit(["a.example"], password=PASSWORD, today=today, backups=0)
    with pytest.raises(ConfigError, match="cannot sign bundles"):
        recovery_kit(["a.example"], password=PASSWORD, today=today, signing_type="rsa-2048")
    with pytest.raises(ConfigError, match="password"):
        recovery_kit(["a.example"], password=b"", today=today)
    with pytest.raises(ConfigError, match="at least one name"):
        recovery_kit([], password=PASSWORD, today=today)
    # RFC 5280 ub-common-name: 64 characters are a common name, 65 are not.
    assert csr_names(["a" * 52 + ".example.com"]) == ("a" * 52 + ".example.com",)
    with pytest.raises(ConfigError, match="longer than a common name"):
        csr_names(["a" * 53 + ".example.com"])
    made = recovery_kit(["A.Example.", "*.b.example"], password=PASSWORD, today=today, backups=1)
    assert made.names == ("a.example", "*.b.example")
    readme = made.files[-1]
    assert readme.name == "README.md"
    assert "Made on 2026-12-06" in readme.data.decode()
    assert "No spare is left" in readme.data.decode()


def test_a_backup_key_of_the_kit_takes_over_a_pinned_server(
    tmp_path: Path,
    passfile: Path,
    pki: TestPKI,
    cafile: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The emergency the kit is for: the live key is gone, backup-1 is certified from its
    # CSR and deployed; clients whose policy came from the kit's snippet keep working.
    directory = tmp_path / "kit"
    assert make_kit(directory, passfile, names=("127.0.0.1",)) == 0
    csr = x509.load_pem_x509_csr((directory / "backup-1.csr").read_bytes())
    san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]

    live = pki.leaf("127.0.0.1")
    snippet = (directory / "pinset-snippet.toml").read_text()
    live_pin = rfc7469_pin(live.cert.public_key())
    policy = tmp_path / "pinset.toml"
    policy.write_text(snippet.replace('  # "sha256/...",', f'  "{live_pin}",', 1))

    backup = private(directory / "backup-1.key")
    deployed = pki.intermediate.issue_cert("127.0.0.1", private_key=backup)
    stranger = pki.leaf("127.0.0.1")  # a new key no policy knows
    results = {}
    for name, leaf in [("live", live), ("backup", deployed), ("stranger", stranger)]:
        with TLSServer(leaf, mode="silent") as server:
            target = f"127.0.0.1:{server.port}"
            results[name] = main(["check", target, "--policy", str(policy), "--cafile", cafile])
    capsys.readouterr()
    assert results == {"live": 0, "backup": 0, "stranger": 1}
