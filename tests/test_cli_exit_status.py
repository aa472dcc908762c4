"""Every exit status of the ``pinset`` command: one place (``ExitStatus``), one table in the docs.

The errors a command can end with are raised from inside a real command (``pinset import``,
its reader monkeypatched), so they travel the same path as in use: through click, then
``pinset.cli._app.run``.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import click
import pytest

from pinset.chain import PasswordError
from pinset.cli import main
from pinset.errors import ConfigError, NetworkError, PinMismatchError
from pinset.status import ExitStatus

DOCS = Path(__file__).resolve().parent.parent / "docs" / "cli.md"


def run_import(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    error: BaseException,
    *extra: str,
) -> tuple[int, str]:
    def failing(*args: object, **kwargs: object) -> None:
        raise error

    monkeypatch.setattr("pinset.cli._import.load_input", failing)
    code = main([*extra, "import", "anything.xml"])
    captured = capsys.readouterr()
    assert captured.out == ""
    return code, captured.err


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (PinMismatchError("pin mismatch", hostname="api.example.com"), ExitStatus.CHECK_FAILED),
        (ConfigError("bad config", source="anything.xml"), ExitStatus.USAGE),
        (FileNotFoundError(2, "No such file or directory", "anything.xml"), ExitStatus.USAGE),
        (NetworkError("connection refused", source="api.example.com:443"), ExitStatus.NETWORK),
        (RuntimeError("boom"), ExitStatus.INTERNAL_ERROR),
        (KeyboardInterrupt(), ExitStatus.INTERRUPTED),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, BaseException) else None,
)
def test_each_error_has_its_status_and_no_traceback(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    error: BaseException,
    status: ExitStatus,
) -> None:
    code, err = run_import(monkeypatch, capsys, error)
    assert code == status
    assert "Traceback" not in err
    assert err.strip()


def test_ctrl_c_is_one_line_and_130(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = run_import(monkeypatch, capsys, KeyboardInterrupt())
    assert code == 130
    # click ends the interrupted line with a newline of its own; then one line.
    assert err.strip().splitlines() == ["Interrupted."]


def test_ctrl_c_at_a_password_prompt_is_130_not_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def interrupted_prompt(*args: object, **kwargs: object) -> str:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            raise click.Abort() from None  # what click.prompt does

    monkeypatch.setattr("click.prompt", interrupted_prompt)
    code = main(["keygen", "--out", str(tmp_path / "k.key")])
    err = capsys.readouterr().err
    assert code == ExitStatus.INTERRUPTED
    assert "Interrupted." in err
    assert "standard input ended" not in err
    assert not (tmp_path / "k.key").exists()


def test_end_of_input_at_a_password_prompt_stays_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def closed_prompt(*args: object, **kwargs: object) -> str:
        try:
            raise EOFError
        except EOFError:
            raise click.Abort() from None

    monkeypatch.setattr("click.prompt", closed_prompt)
    assert main(["keygen", "--out", str(tmp_path / "k.key")]) == ExitStatus.USAGE
    assert "standard input ended" in capsys.readouterr().err


def test_internal_error_is_one_line_that_asks_for_a_report(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("PINSET_DEBUG", raising=False)
    code, err = run_import(monkeypatch, capsys, RuntimeError("boom"))
    assert code == 70
    (line,) = err.strip().splitlines()
    assert line.startswith("error: internal error: RuntimeError: boom")
    assert "report" in line
    assert "-v" in line
    assert "PINSET_DEBUG=1" in line


@pytest.mark.parametrize("how", ["-v", "PINSET_DEBUG"])
def test_verbose_or_the_debug_variable_shows_the_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], how: str
) -> None:
    extra: tuple[str, ...] = ()
    if how == "-v":
        monkeypatch.delenv("PINSET_DEBUG", raising=False)
        extra = ("-v",)
    else:
        monkeypatch.setenv("PINSET_DEBUG", "1")
    code, err = run_import(monkeypatch, capsys, RuntimeError("boom"), *extra)
    assert code == 70
    assert "Traceback" in err
    assert "RuntimeError: boom" in err


def test_debug_variable_zero_is_off(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PINSET_DEBUG", "0")
    _code, err = run_import(monkeypatch, capsys, RuntimeError("boom"))
    assert "Traceback" not in err


def test_a_library_error_deriving_from_a_pinset_error_keeps_its_status(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    error = PasswordError("wrong password", missing=False, source="k.p12", hint="give it")
    code, _err = run_import(monkeypatch, capsys, error)
    assert code == ExitStatus.USAGE


def test_a_real_process_exits_with_the_status(tmp_path: Path) -> None:
    """The status reaches the shell: ``python -m pinset`` passes it to ``sys.exit``."""
    missing = tmp_path / "missing.pem"
    done = subprocess.run(
        [sys.executable, "-m", "pinset", "pin", str(missing)], capture_output=True, text=True
    )
    assert done.returncode == ExitStatus.USAGE
    assert "no such file" in done.stderr


def test_the_docs_table_lists_every_status_and_nothing_else() -> None:
    text = DOCS.read_text(encoding="utf-8")
    section = text.split("**Exit statuses**", 1)[1].split("\n\n", 2)[1]
    documented = {int(m) for m in re.findall(r"^\| (\d+) \|", section, flags=re.MULTILINE)}
    assert documented == {int(s) for s in ExitStatus}
