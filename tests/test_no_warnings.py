"""A warning in pinset reaches every user's program: importing it and its CLI print none.

Run in fresh interpreters with ``-W error`` so that a warning raised once and cached
by an earlier test in this process cannot hide.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

PINSET = Path(sys.executable).with_name("pinset")


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PYTHONWARNINGS"] = "error"
    return env


@pytest.mark.parametrize(
    "module",
    ["pinset", "pinset.pins", "pinset.chain", "pinset.reporting", "pinset.cli", "pinset.testing"],
)
def test_import_prints_no_warning(module: str) -> None:
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", f"import {module}"],
        capture_output=True,
        text=True,
        env=_clean_env(),
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_cli_help_prints_no_warning() -> None:
    assert PINSET.exists(), f"{PINSET} is not installed: pip install -e '.[cli]'"
    result = subprocess.run(
        [str(PINSET), "--help"], capture_output=True, text=True, env=_clean_env(), timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert "Usage: pinset" in result.stdout
