"""``pinset completion SHELL`` prints click's completion script, and the protocol it calls answers.

The shell calls ``pinset`` back with ``_PINSET_COMPLETE=bash_complete``, ``COMP_WORDS`` (the
words typed) and ``COMP_CWORD`` (the index of the word being completed), and reads one
``type,value`` line per candidate (click's bash protocol, ``click.shell_completion``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pinset.cli import main

PINSET = Path(sys.executable).parent / "pinset"


@pytest.mark.parametrize(
    ("shell", "marker"),
    [("bash", "complete -o nosort -F"), ("zsh", "compdef"), ("fish", "complete --no-files")],
)
def test_script_for_each_shell(shell: str, marker: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["completion", shell]) == 0
    script = capsys.readouterr().out
    assert marker in script
    assert "_PINSET_COMPLETE" in script


def test_unknown_shell_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["completion", "tcsh"]) == 2
    assert "'tcsh' is not one of bash, zsh, fish" in capsys.readouterr().err


def complete(words: str, cword: int) -> list[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMP_")}
    env.update(_PINSET_COMPLETE="bash_complete", COMP_WORDS=words, COMP_CWORD=str(cword))
    done = subprocess.run(
        [str(PINSET)], env=env, capture_output=True, text=True, check=True, timeout=60
    )
    return done.stdout.splitlines()


def test_bash_completes_a_command_name() -> None:
    assert complete("pinset au", 1) == ["plain,audit"]
    assert complete("pinset c", 1) == [
        "plain,check",
        "plain,ct",
        "plain,collector",
        "plain,completion",
    ]


def test_bash_completes_options_and_choices() -> None:
    assert "plain,--json" in complete("pinset pin --j", 2)
    assert complete("pinset completion z", 2) == ["plain,zsh"]
