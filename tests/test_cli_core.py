"""The ``pinset`` command on a core install: no click (``pinset.cli._core``).

``pinset.cli.main`` falls back to the standard-library command line only when click is
missing. There ``pinset --version``, ``--help`` and ``pinset pin`` must print exactly what
the click command prints, with the same exit statuses (pinset.status.ExitStatus), because
both run ``pinset.cli._pin_core.pin_targets``; every other command names its extra. Click is
hidden in-process with ``sys.modules["click"] = None`` (an import of it then raises
ModuleNotFoundError, as on a core install), and in a subprocess with a meta-path blocker
(which also proves nothing on the way imports click). The installed-wheel version of these
checks is in tests/test_packaging.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

import pinset
from pinset.cli import _app, _core, _pin_core, main
from pinset.pins import spki_pin
from pinset.status import ExitStatus
from pinset.testing import LeafCert, TLSServer

SRC = Path(pinset.__file__).resolve().parent.parent
PEM = serialization.Encoding.PEM
DER = serialization.Encoding.DER
Capture = pytest.CaptureFixture[str]


@pytest.fixture
def no_click(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``import click`` fail as on a core install, and forget the click modules."""
    for name in [n for n in sys.modules if n == "click" or n.startswith("click.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "click", None)
    for name in ("pinset.cli._app", "pinset.cli._pin", "pinset.cli._options"):
        monkeypatch.delitem(sys.modules, name, raising=False)


@pytest.fixture
def files(tmp_path: Path, leaf: LeafCert) -> dict[str, Path]:
    """Every file shape the core ``pin`` reads: PEM chain, DER certificate, key, CSR."""
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "csr.example")]))
        .sign(leaf.private_key, hashes.SHA256())
    )
    contents = {
        "chain.pem": leaf.cert_chain_pem.bytes(),
        "leaf.der": leaf.cert.public_bytes(DER),
        "key.pem": leaf.private_key_pem.bytes(),
        "req.csr": csr.public_bytes(PEM),
    }
    paths = {}
    for name, content in contents.items():
        paths[name] = tmp_path / name
        paths[name].write_bytes(content)
    return paths


def both(capsys: Capture, argv: list[str]) -> tuple[tuple[int, str, str], tuple[int, str, str]]:
    """``pinset ARGV`` through click (``_app.run``) and without it (``_core.run``)."""
    runs = []
    runner: Callable[[list[str]], int]
    for runner in (_app.run, _core.run):
        code = runner(argv)
        captured = capsys.readouterr()
        runs.append((code, captured.out, captured.err))
    return runs[0], runs[1]


def test_version_without_click(no_click: None, capsys: Capture) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"pinset, version {pinset.__version__}\n"
    assert "pinset.cli._app" not in sys.modules


def test_version_is_the_same_as_clicks(capsys: Capture) -> None:
    click_run, core_run = both(capsys, ["--version"])
    assert click_run == core_run == (0, f"pinset, version {pinset.__version__}\n", "")


@pytest.mark.parametrize("names", [["chain.pem"], ["leaf.der", "key.pem", "req.csr"]])
@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_pin_prints_what_the_click_command_prints(
    files: dict[str, Path], capsys: Capture, names: list[str], as_json: bool, leaf: LeafCert
) -> None:
    argv = ["pin", *(str(files[n]) for n in names), *(["--json"] if as_json else [])]
    click_run, core_run = both(capsys, argv)
    assert core_run == click_run
    code, out, err = core_run
    assert (code, err) == (0, "")
    assert str(spki_pin(leaf.cert)) in out
    if as_json:
        assert [Path(entry["target"]).name for entry in json.loads(out)] == names


def test_pin_without_click_through_main(
    no_click: None, files: dict[str, Path], capsys: Capture, leaf: LeafCert
) -> None:
    assert main(["pin", str(files["chain.pem"]), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [row["pin"] for row in data[0]["certificates"]] == [
        str(spki_pin(cert)) for cert in leaf.chain
    ]
    assert "click" not in [n.partition(".")[0] for n, m in sys.modules.items() if m is not None]


def test_missing_file_and_garbage_fail_alike(
    files: dict[str, Path], tmp_path: Path, capsys: Capture
) -> None:
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    for extra in ([], ["--json"]):
        argv = ["pin", str(files["chain.pem"]), "nothing.pem", str(garbage), *extra]
        click_run, core_run = both(capsys, argv)
        assert core_run == click_run
        code, _out, err = core_run
        assert code == ExitStatus.USAGE
        assert err.startswith("nothing.pem:\nerror: no such file")
        assert "Traceback" not in err


def test_host_target_works_without_click(
    silent_server: TLSServer, cafile: str, leaf: LeafCert, capsys: Capture
) -> None:
    argv = ["pin", f"127.0.0.1:{silent_server.port}", "--cafile", cafile, "--json"]
    click_run, core_run = both(capsys, argv)
    assert core_run == click_run
    assert core_run[0] == 0
    (entry,) = json.loads(core_run[1])
    assert entry["certificates"][0]["pin"] == str(spki_pin(leaf.cert))


def test_network_failure_exits_3_alike(capsys: Capture, closed_port: int) -> None:
    click_run, core_run = both(capsys, ["pin", f"127.0.0.1:{closed_port}", "--timeout", "5"])
    assert core_run == click_run
    assert core_run[0] == ExitStatus.NETWORK
    assert f"127.0.0.1:{closed_port}" in core_run[2]


def test_unreadable_password_file_is_a_usage_error(
    files: dict[str, Path], tmp_path: Path, capsys: Capture
) -> None:
    argv = ["pin", str(files["key.pem"]), "--password-file", str(tmp_path / "absent")]
    click_run, core_run = both(capsys, argv)
    assert core_run == click_run
    assert core_run[0] == ExitStatus.USAGE
    assert "cannot read" in core_run[2]


@pytest.mark.parametrize(
    "argv",
    [["pin"], ["pin", "x.pem", "--timeout", "0"], ["pin", "x.pem", "--nope"], ["pin", "-v", "x"]],
    ids=["no-target", "timeout-0", "unknown-option", "verbose-after-the-command"],
)
def test_pin_usage_errors_exit_2(argv: list[str], capsys: Capture) -> None:
    # argparse's messages, not click's; the status is the same (2).
    assert _core.run(argv) == ExitStatus.USAGE
    assert "error" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["keygen", "check", "audit", "demo", "completion"])
def test_other_commands_name_the_cli_extra(name: str, capsys: Capture) -> None:
    assert _core.run([name, "--help"]) == ExitStatus.USAGE
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        f"error: 'pinset {name}' needs the 'cli' extra: pip install 'pinset[cli]' "
        "(with pipx: pipx install --force 'pinset[cli]')\n"
    )


def test_collector_names_both_extras(capsys: Capture) -> None:
    assert _core.run(["collector", "serve"]) == ExitStatus.USAGE
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "pip install 'pinset[cli,collector]'" in err


def test_every_command_is_known_to_the_fallback(capsys: Capture) -> None:
    # A command added to COMMANDS is either run by the core or named as needing an extra.
    for name in _app.COMMANDS:
        if name not in _core.CORE_COMMANDS:
            assert _core.run([name]) == ExitStatus.USAGE
            assert "extra" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("word", "kind"), [("frob", "command"), ("--frob", "option")], ids=["command", "option"]
)
def test_unknown_command_or_option(word: str, kind: str, capsys: Capture) -> None:
    assert _core.run([word]) == ExitStatus.USAGE
    assert capsys.readouterr().err == f"error: no such {kind} {word!r} (pinset --help)\n"


def test_help_lists_pin_and_the_extra(capsys: Capture) -> None:
    assert _core.run(["--help"]) == 0
    out = capsys.readouterr().out
    assert "pinset pin TARGET... [--json]" in out
    assert "pip install 'pinset[cli]'" in out
    assert "keygen" in out
    assert len(out.splitlines()) <= 15  # short: the full help is click's
    assert _core.run([]) == ExitStatus.USAGE
    assert capsys.readouterr().out == out


def test_pin_help(capsys: Capture) -> None:
    assert _core.run(["pin", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--json" in out
    assert "pip install 'pinset[cli]'" in out


def test_internal_error_exits_70_without_traceback(
    monkeypatch: pytest.MonkeyPatch, files: dict[str, Path], capsys: Capture
) -> None:
    def broken(*args: object, **kwargs: object) -> int:
        raise RuntimeError("boom")

    monkeypatch.setattr(_pin_core, "pin_targets", broken)
    assert _core.run(["pin", str(files["chain.pem"])]) == ExitStatus.INTERNAL_ERROR
    err = capsys.readouterr().err
    assert "internal error: RuntimeError: boom" in err
    assert "Traceback" not in err
    assert _core.run(["-v", "pin", str(files["chain.pem"])]) == ExitStatus.INTERNAL_ERROR
    assert "Traceback" in capsys.readouterr().err


def test_ctrl_c_exits_130(
    monkeypatch: pytest.MonkeyPatch, files: dict[str, Path], capsys: Capture
) -> None:
    def interrupted(*args: object, **kwargs: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(_pin_core, "pin_targets", interrupted)
    assert _core.run(["pin", str(files["chain.pem"])]) == ExitStatus.INTERRUPTED
    assert capsys.readouterr().err == "Interrupted.\n"


def test_only_a_missing_click_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    # Another module missing is a broken install, not a core one: it is not hidden.
    monkeypatch.setitem(sys.modules, "pinset.cli._app", None)
    with pytest.raises(ModuleNotFoundError) as caught:
        main(["--version"])
    assert caught.value.name == "pinset.cli._app"


BLOCKER = """
import importlib.abc, json, sys
class NoClick(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "click" or name.startswith("click."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, NoClick())
from pinset.cli import main
status = main(sys.argv[1:])
heavy = ("click", "rich", "asyncio", "pinset.chain._fetch")
loaded = [n for n in sys.modules if n.startswith(heavy)]
print(json.dumps({"status": status, "loaded": loaded}), file=sys.stderr)
"""


def test_subprocess_with_click_blocked(files: dict[str, Path], tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(SRC), "NO_COLOR": "1"}
    env.pop("COLUMNS", None)
    reference = subprocess.run(
        [sys.executable, "-m", "pinset", "pin", str(files["chain.pem"])],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    for argv, status, out in (
        (["pin", str(files["chain.pem"])], 0, reference.stdout),
        (["--version"], 0, f"pinset, version {pinset.__version__}\n"),
        (["audit", "x.toml"], 2, ""),
    ):
        done = subprocess.run(
            [sys.executable, "-c", BLOCKER, *argv],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        report = json.loads(done.stderr.splitlines()[-1])
        assert (done.returncode, report["status"], done.stdout) == (0, status, out), done.stderr
        assert report["loaded"] == []
        assert "Traceback" not in done.stderr
