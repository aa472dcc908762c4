"""The command line as a demanding user meets it: bad input, JSON, narrow terminals, help.

Every command is driven through :func:`pinset.cli.main` against loopback servers
built from the session's test PKI. Bad input must give a message and the right
exit status (0 ok, 1 check failed, 2 usage/config, 3 network), never a traceback.
"""

from __future__ import annotations

import io
import json
import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from pinset.cli import main
from pinset.pins import spki_pin
from pinset.testing import TestPKI, TLSServer, generate_key


@dataclass(frozen=True)
class Workspace:
    dir: Path
    root: Path  # the test root CA (PEM)
    policy: Path  # pins the good server's leaf plus an offline backup
    backup: Path  # the backup's public key (PEM)
    good: TLSServer  # a chain to the test root
    rogue: TLSServer  # a chain to an unrelated root
    closed: int  # a port nothing listens on
    pins: tuple[str, ...]  # the good server's chain pins, leaf first

    def fill(self, text: str) -> str:
        return text.format(
            dir=self.dir,
            root=self.root,
            policy=self.policy,
            backup=self.backup,
            good=f"127.0.0.1:{self.good.port}",
            rogue=f"127.0.0.1:{self.rogue.port}",
            closed=f"127.0.0.1:{self.closed}",
        )


@pytest.fixture(scope="module")
def ws(
    pki: TestPKI, tmp_path_factory: pytest.TempPathFactory, closed_port: int
) -> Iterator[Workspace]:
    base = tmp_path_factory.mktemp("ux")
    leaf = pki.leaf()
    rogue_leaf = pki.rogue.issue_cert("localhost", "127.0.0.1")
    root = base / "root.pem"
    pki.root.cert_pem.write_to_path(root)
    backup_key = generate_key("ec-p256")
    backup = base / "backup.pub"
    backup.write_bytes(
        backup_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    chain = [leaf.cert, *pki.intermediate.chain[:-1], pki.root.root]
    policy = base / "pinset.toml"
    policy.write_text(
        "[[domain]]\n"
        'name = "127.0.0.1"\n'
        "expiration = 2099-01-01\n"
        f'pins = ["{spki_pin(leaf.cert)}", "{spki_pin(backup_key)}"]\n',
        encoding="utf-8",
    )
    (base / "adir").mkdir()
    (base / "empty.txt").write_bytes(b"")
    (base / "blank.toml").write_bytes(b"  \n")
    (base / "binary.dat").write_bytes(b"\xff\xfe\x00\x81 not text")
    (base / "latin1.toml").write_bytes(b'[[domain]]\nname = "caf\xe9.example"\n')
    (base / "broken.toml").write_text('[[domain]\nname = "x"\n', encoding="utf-8")
    with TLSServer(leaf, mode="silent") as good, TLSServer(rogue_leaf, mode="silent") as rogue:
        yield Workspace(
            dir=base,
            root=root,
            policy=policy,
            backup=backup,
            good=good,
            rogue=rogue,
            closed=closed_port,
            pins=tuple(str(spki_pin(c)) for c in chain),
        )


def run(ws: Workspace, capsys: pytest.CaptureFixture[str], command: str) -> tuple[int, str, str]:
    argv = [ws.fill(arg) for arg in command.split()]
    code = main(argv)
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err, captured.err
    return code, captured.out, captured.err


# (command, exit status, words the message on stderr must contain)
BAD_INPUT = [
    # pin
    ("pin {dir}/missing.pem", 2, "no such file"),
    ("pin {dir}/adir", 2, "directory"),
    ("pin {dir}/empty.txt", 2, "empty"),
    ("pin {dir}/binary.dat", 2, "unrecognised"),
    ("pin {closed}", 3, "connection refused"),
    ("pin 127.0.0.1:99999", 2, "bad port"),
    ("pin --cafile {dir}/missing.pem {good}", 2, "CA certificates"),
    ("pin --cafile {dir}/empty.txt {good}", 2, "CA certificates"),
    ("pin --cafile {dir}/adir {good}", 2, "directory"),
    ("pin --timeout 0 {good}", 2, "--timeout"),
    ("pin --bogus {good}", 2, "No such option"),
    # keygen
    ("keygen --out {dir}/adir/no/such/k.key --password-file {policy}", 2, "create the directory"),
    ("keygen --out {policy} --password-file {policy}", 2, "refusing to overwrite"),
    ("keygen --out {dir}/k1.key --password-file {dir}/empty.txt", 2, "password"),
    ("keygen --out {dir}/k2.key --password-file {dir}/missing", 2, "cannot read"),
    ("keygen --out {dir}/k3.key --type rsa-2084", 2, "Did you mean 'rsa-2048'"),
    ("keygen --out {dir}/k4.key --csr-subject nonsense --csr-out {dir}/k4.csr", 2, "RFC 4514"),
    ("keygen --out {dir}/k5.key", 2, "standard input ended"),  # no terminal to prompt on
    # init
    ("init {good} --expires-in 10 -o {dir}/i1.toml", 2, "without a backup pin"),
    ("init {good} --expires-in 10 --backup-pin sha1/abc -o {dir}/i2.toml", 2, "pin"),
    ("init {good} --expires-in 10 --backup-key {dir}/binary.dat -o {dir}/i3.toml", 2, "binary"),
    ("init {closed} --expires-in 10 --backup-key {backup} -o {dir}/i4.toml", 3, "refused"),
    ("init {good} --expires-in 10 --backup-key {backup} -o {policy}", 2, "--force"),
    ("init {good} --expires-in 0 --backup-key {backup}", 2, "--expires-in"),
    ("init {good} --level middle --expires-in 9 --backup-key {backup}", 2, "intermediate"),
    # check
    ("check {good} --policy {dir}/missing.toml", 2, "missing.toml"),
    ("check {good} --policy {dir}/adir", 2, "directory"),
    ("check {good} --policy {dir}/binary.dat", 2, "UTF-8"),
    ("check {good} --policy {dir}/latin1.toml", 2, "UTF-8"),
    ("check {good} --policy {dir}/broken.toml", 2, "broken.toml:1"),
    ("check {good} --policy {root}", 2, "root.pem"),
    ("check {good} --policy {policy} --cafile {dir}/missing.pem", 2, "CA certificates"),
    ("check {good} --policy {policy} --cafile {dir}/empty.txt", 2, "CA certificates"),
    ("check {closed} --policy {policy}", 3, "connection refused"),
    ("check {rogue} --policy {policy} --cafile {root}", 1, ""),
    # export
    ("export {policy}", 2, "--format"),
    ("export {policy} -f andriod", 2, "did you mean 'android'"),
    ("export {policy} -f ios", 2, "did you mean 'ios-ats'"),
    ("export {dir}/missing.toml -f android", 2, "no such file"),
    ("export {dir}/adir -f android", 2, "directory"),
    ("export {dir}/empty.txt -f android", 2, "empty"),
    ("export {dir}/blank.toml -f android", 2, "empty"),
    ("export {dir}/binary.dat -f android", 2, "format"),
    ("export {dir}/broken.toml -f android", 2, "broken.toml:1"),
    ("export {policy} -f android -O foo=bar", 2, "no option 'foo'"),
    ("export {policy} -f hpkp -O max_ag=5", 2, "did you mean -O max-age"),
    ("export {policy} -f android -O novalue", 2, "KEY=VALUE"),
    ("export {policy} -f android -o {dir}/adir", 2, "directory"),
    ("export {policy} -f android -o {dir}/no/such/dir/x.xml", 2, "cannot write"),
    # import
    ("import {dir}/missing.xml", 2, "cannot read"),
    ("import {dir}/adir", 2, "directory"),
    ("import {dir}/empty.txt", 2, "empty"),
    ("import {dir}/binary.dat", 2, "format"),
    ("import {dir}/broken.toml", 2, "broken.toml:1"),
    ("import {policy} -f andriod", 2, "did you mean 'android'"),
    ("import {policy} -f android", 2, "XML"),
    # audit
    ("audit {dir}/missing.toml", 2, "cannot read"),
    ("audit {dir}/adir", 2, "cannot read"),
    ("audit {dir}/binary.dat", 2, "cannot read"),
    ("audit {policy} --format jsn", 2, "Did you mean 'json'"),
    ("audit {policy} --now yesterday", 2, "--now"),
    ("audit {policy} --chain 127.0.0.1", 2, "HOST=FILE"),
    ("audit {policy} --chain 127.0.0.1={dir}/missing.pem", 2, "missing.pem"),
    ("audit {policy} --concurrency 0", 2, "--concurrency"),
    ("audit {policy} -o {dir}/no/such/dir/report.json --json", 2, "cannot write"),
    # rotate
    ("rotate check {policy}", 2, "exactly one of --new-cert, --new-key and --new-pin"),
    ("rotate check {dir}/missing.toml --new-key {backup}", 2, "missing.toml"),
    ("rotate check {dir}/adir --new-key {backup}", 2, "adir"),
    ("rotate check {policy} --new-key {dir}/missing.pem", 2, "missing.pem"),
    ("rotate check {policy} --new-key {root}", 2, "no key or CSR"),
    ("rotate check {policy} --new-cert {dir}/binary.dat", 2, "unrecognised"),
    ("rotate chek {policy}", 2, "Did you mean 'check'"),
    # mitm: --timeout is positive here too (cli/_options.py)
    ("mitm --timeout 0 -- true", 2, "--timeout"),
    # the group
    ("pinn {good}", 2, "Did you mean 'pin'"),
]


@pytest.mark.parametrize(("command", "status", "words"), BAD_INPUT)
def test_bad_input_is_a_message_and_an_exit_status(
    ws: Workspace,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    command: str,
    status: int,
    words: str,
) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"")))
    code, _out, err = run(ws, capsys, command)
    assert code == status, err
    assert words in err
    if status == 2:
        assert "error" in err.lower()


def test_unexpected_failure_is_reported_without_a_traceback(
    ws: Workspace, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr("pinset.cli._rotate.check_rotation", broken)
    monkeypatch.delenv("PINSET_DEBUG", raising=False)
    code, _out, err = run(ws, capsys, "rotate check {policy} --new-key {backup}")
    assert code == 70  # not 2: an internal error is not the user's (ExitStatus.INTERNAL_ERROR)
    assert "internal error: RuntimeError: boom" in err
    assert "-v" in err


# --json: valid JSON on stdout with the documented keys (docs/cli.md)
JSON_COMMANDS = [
    ("pin {good} --cafile {root} --json", 0, list, {"target", "certificates"}),
    ("pin {backup} {root} --json", 0, list, {"target", "certificates"}),
    ("pin {closed} {root} --json", 3, list, {"target", "certificates"}),
    (
        "check {good} --policy {policy} --cafile {root} --json",
        0,
        dict,
        {
            "target",
            "host",
            "port",
            "server_name",
            "allowed",
            "verdict",
            "rule",
            "matched_pin",
            "expected_pins",
            "chain",
            "error",
        },
    ),
    ("check {rogue} --policy {policy} --cafile {root} --json", 1, dict, {"verdict", "error"}),
    (
        "export {policy} -f android --json",
        0,
        dict,
        {"format", "input_format", "output", "warnings", "content"},
    ),
    ("import {policy} --json", 0, dict, {"format", "policy", "findings"}),
    ("audit {policy} --json --now 2026-11-28", 0, dict, {"summary", "findings"}),
    ("rotate check {policy} --new-key {backup} --json", 0, dict, {"safe", "verdicts"}),
    ("rotate check {policy} --new-cert {root} --json", 1, dict, {"safe", "verdicts"}),
]  # fmt: skip


@pytest.mark.parametrize(("command", "status", "shape", "keys"), JSON_COMMANDS)
def test_json_output_is_valid_and_has_the_documented_keys(
    ws: Workspace,
    capsys: pytest.CaptureFixture[str],
    command: str,
    status: int,
    shape: type,
    keys: set[str],
) -> None:
    code, out, err = run(ws, capsys, command)
    assert code == status, err
    data: Any = json.loads(out)
    assert type(data) is shape
    entries: list[Any] = data if isinstance(data, list) else [data]
    assert entries
    for entry in entries:
        assert keys <= set(entry), sorted(set(entry))


def test_keygen_and_init_json(ws: Workspace, capsys: pytest.CaptureFixture[str]) -> None:
    key = ws.dir / "json.key"
    code, out, _err = run(ws, capsys, f"keygen --out {key} --password-file {{policy}} --json")
    assert code == 0
    made = json.loads(out)
    assert set(made) == {
        "key",
        "type",
        "key_type",
        "pin",
        "csr",
        "public_key",
        "public_out",
        "encrypted",
    }
    assert made["key"] == str(key)

    out_path = ws.dir / "json-init.toml"
    command = (
        f"init {{good}} --backup-pin {made['pin']} --expires-in 5 --cafile {{root}}"
        f" -o {out_path} --json"
    )
    code, out, _err = run(ws, capsys, command)
    assert code == 0
    written = json.loads(out)
    assert set(written) == {"output", "expiration", "domains"}
    pins = [p["pin"] for p in written["domains"][0]["pins"]]
    assert pins == [ws.pins[0], made["pin"]]


def test_check_json_on_a_network_error_leaves_stdout_empty(
    ws: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(ws, capsys, "check {closed} --policy {policy} --json")
    assert code == 3
    assert out == ""
    assert "connection refused" in err


# Narrow terminals: pins are printed whole, never cut, folded or wrapped.
@pytest.mark.parametrize("columns", ["80", "60"])
@pytest.mark.parametrize(
    "command",
    [
        "pin {good} --cafile {root}",
        "pin {root} {backup}",
        "check {good} --policy {policy} --cafile {root}",
        "check {rogue} --policy {policy} --cafile {root}",
    ],
)
def test_pins_are_whole_at_narrow_widths(
    ws: Workspace,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    columns: str,
    command: str,
) -> None:
    monkeypatch.setenv("COLUMNS", columns)
    _code, out, _err = run(ws, capsys, command)
    printed = re.findall(r"sha256/[A-Za-z0-9+/]*=*", out)
    assert printed
    for pin in printed:
        assert len(pin) == 51, out
    if "{good}" in command:
        for pin in ws.pins[:2]:  # leaf and intermediate (the root is not served)
            assert pin in out


def test_init_table_keeps_pins_whole_at_80_columns(
    ws: Workspace, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    out_path = ws.dir / "narrow.toml"
    command = (
        f"init {{good}} --backup-key {{backup}} --expires-in 5 --cafile {{root}} -o {out_path}"
    )
    code, out, _err = run(ws, capsys, command)
    assert code == 0
    assert ws.pins[0] in out
    # The table did not fit: a list (the domain, then each pin on a line of its own)
    # instead of a squeezed table; the 51-character pins stay whole.
    lines = out.splitlines()
    assert not any(line.split()[:3] == ["domain", "pin", "from"] for line in lines if line)
    assert "127.0.0.1" in lines
    assert any(line.startswith(f"  {ws.pins[0]}  (") for line in lines)


def test_wide_terminal_gets_a_table(
    ws: Workspace, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    _code, out, _err = run(ws, capsys, "pin {good} --cafile {root}")
    header = next(line for line in out.splitlines() if line.startswith("#"))
    assert header.split() == ["#", "role", "subject", "issuer", "not_after", "key", "pin"]
    # One line a certificate, its pin the last field: what `awk '{print $NF}'` reads.
    rows = out.splitlines()[out.splitlines().index(header) + 1 :]
    assert [row.split()[-1] for row in rows[:2]] == list(ws.pins[:2]), out


def test_piped_output_has_no_colour_codes(
    ws: Workspace, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    for command in ("check {good} --policy {policy} --cafile {root}", "pin {dir}/missing.pem"):
        _code, out, err = run(ws, capsys, command)
        assert "\x1b[" not in out + err


def test_progress_bars_stay_off_in_ci(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from pinset.cli import _output

    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    monkeypatch.setenv("CI", "true")
    assert not _output.show_progress()
    _code, _out, err = run(ws, capsys, "pin {good} {good} --cafile {root}")  # two: a bar's worth
    assert "fetching" not in err
    monkeypatch.delenv("CI")
    assert _output.show_progress()


# Standard input as '-'
def test_stdin_dash(
    ws: Workspace, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(ws.root.read_bytes())))
    code, out, _err = run(ws, capsys, "pin - --json")
    assert code == 0
    assert json.loads(out)[0]["certificates"][0]["pin"] == ws.pins[-1]

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(ws.policy.read_bytes())))
    code, out, _err = run(ws, capsys, "export - -f pinset-json")
    assert code == 0
    assert json.loads(out)["domain"][0]["pins"][0] == ws.pins[0]

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(ws.policy.read_bytes())))
    code, out, _err = run(ws, capsys, "import - --json")
    assert code == 0
    assert json.loads(out)["format"] == "pinset"


# --help
COMMANDS = [
    "pin", "keygen", "init", "check", "export", "import", "audit", "rotate check", "rotate plan",
]  # fmt: skip


@pytest.mark.parametrize("command", COMMANDS)
def test_help_has_a_summary_sections_and_examples(
    capsys: pytest.CaptureFixture[str], command: str
) -> None:
    assert main([*command.split(), "--help"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].startswith(f"Usage: pinset {command} ")
    assert lines[1] == ""
    assert lines[2].strip()  # the one-line summary
    assert "Examples:" in out
    assert "Exit status:" in out
    assert "Output:" in out  # options are grouped; --json lives under Output
    assert "--json" in out
    examples = [line.split() for line in lines if line.strip().startswith("pinset ")]
    assert any(words[1] == command.split()[0] for words in examples)


def test_every_data_command_has_json(capsys: pytest.CaptureFixture[str]) -> None:
    for command in COMMANDS:
        assert main([*command.split(), "--help"]) == 0
        assert "--json" in capsys.readouterr().out, command


def test_top_level_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in ("pin", "keygen", "init", "check", "export", "import", "audit", "rotate"):
        assert f"  {name} " in out


def test_untrusted_chain_is_shown_and_refused(
    ws: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _err = run(ws, capsys, "pin {rogue} --cafile {root}")
    assert code == 0
    assert "not verified" in out
    code, out, _err = run(ws, capsys, "check {rogue} --policy {policy} --cafile {root} --json")
    assert code == 1
    data = json.loads(out)
    assert data["verdict"] == "verification-failed"
    assert data["allowed"] is False
    assert data["chain"][0]["pin"] not in ws.pins


def test_empty_policy_warns_that_nothing_is_pinned(
    ws: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _out, err = run(ws, capsys, "check {good} --policy {dir}/empty.txt --cafile {root}")
    assert code == 0
    assert "nothing is pinned" in err


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_fifo_with_a_writer_is_read_like_a_file(
    ws: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    import threading

    fifo = ws.dir / "policy.fifo"
    os.mkfifo(fifo)
    writer = threading.Thread(target=fifo.write_bytes, args=(ws.policy.read_bytes(),))
    writer.start()
    code, out, _err = run(ws, capsys, f"import {fifo} --json")
    writer.join(timeout=10)
    assert code == 0
    assert json.loads(out)["policy"]["domain"][0]["name"] == "127.0.0.1"


def test_version_is_the_one_in_the_package(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # pinset.__version__ is the one place the version is written (pyproject reads it); the
    # CLI prints it, not the installed metadata (which lags until a reinstall).
    import importlib.metadata

    import pinset

    def stale(name: str) -> str:
        raise AssertionError(f"--version read the installed metadata of {name}")

    monkeypatch.setattr(importlib.metadata, "version", stale)
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"pinset, version {pinset.__version__}"
