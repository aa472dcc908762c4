"""Each command imports only what it uses (issue 10: a lighter start).

The command runs in a fresh interpreter on the tree under test (its ``src`` first on the
path, whatever copy is installed), and what it loaded is compared with what it must not
need. The time this saves is measured by ``benchmarks/startup.py`` (docs/performance.md);
no test asserts a time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import pinset
from pinset.cli._app import COMMANDS
from pinset.testing import TestPKI

SRC = Path(pinset.__file__).resolve().parent.parent

# Loaded for hosts, archives, formats, or by other commands: never by reading one file.
NOT_FOR_A_FILE = [
    "asyncio",
    "rich.progress",
    "pinset.chain._fetch",
    "pinset.chain._policy",
    "pinset.audit",
    "pinset.formats",
    "pinset.reporting",
    "pinset.collector",
    "pinset.testing",
    # Key (de)serialization (SSH, ciphers): certificates are read without it.
    "cryptography.hazmat.primitives.serialization",
]
OTHER_COMMANDS = [module for module, _attr, _help in COMMANDS.values()]


def loaded_by(argv: list[str], cwd: Path, *, columns: str | None = None) -> set[str]:
    """The modules ``pinset ARGV`` loaded, run in a fresh interpreter on the tree under test."""
    code = (
        "import json, sys, contextlib, io\n"
        "from pinset.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    status = main({argv!r})\n"
        "print(json.dumps({'status': status, 'modules': sorted(sys.modules)}))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    env["PYTHONPATH"] = str(SRC)
    if columns is not None:
        env["COLUMNS"] = columns
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, check=True
    )
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["status"] == 0, done.stderr
    modules = set(result["modules"])
    return modules


def hits(modules: set[str], names: list[str]) -> list[str]:
    return sorted(m for m in modules if any(m == n or m.startswith(n + ".") for n in names))


@pytest.fixture(scope="module")
def cert(pki: TestPKI, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("startup") / "cert.pem"
    pki.leaf().cert_chain_pems[0].write_to_path(path)
    return path


def test_the_tree_under_test_is_the_one_run(cert: Path) -> None:
    code = "import pinset; print(pinset.__file__)"
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert Path(done.stdout.strip()).resolve() == SRC / "pinset" / "__init__.py"


def test_pin_file_loads_no_fetcher_progress_bar_or_other_command(cert: Path) -> None:
    modules = loaded_by(["pin", str(cert)], cert.parent)
    assert "pinset.cli._pin" in modules
    assert not hits(modules, NOT_FOR_A_FILE)
    assert hits(modules, OTHER_COMMANDS) == ["pinset.cli._pin"]


@pytest.mark.parametrize("columns", [None, "120"], ids=["pipe", "terminal"])
def test_pin_file_loads_neither_rich_nor_ssl(cert: Path, columns: str | None) -> None:
    # The chain is plain text at a terminal (COLUMNS) and into a pipe (standard output is a
    # StringIO here), and nothing on the way needs the pinned context's ssl.
    modules = loaded_by(["pin", str(cert)], cert.parent, columns=columns)
    assert not hits(modules, ["rich", "ssl", "pinset.enforce", "pinset.verdict", "logging"])


def test_pin_file_json_loads_no_rich(cert: Path) -> None:
    modules = loaded_by(["pin", str(cert), "--json"], cert.parent)
    assert not hits(modules, ["rich", *NOT_FOR_A_FILE])


@pytest.mark.parametrize(
    "argv",
    [["--help"], *([*name.split(), "--help"] for name in ("pin", "keygen", "check", "export"))],
    ids=" ".join,
)
def test_help_loads_only_its_own_command(argv: list[str], cert: Path) -> None:
    modules = loaded_by(argv, cert.parent)
    own = [] if argv == ["--help"] else [COMMANDS[argv[0]][0]]
    assert hits(modules, OTHER_COMMANDS) == own
    if argv in (["--help"], ["pin", "--help"], ["keygen", "--help"]):
        assert not hits(modules, ["asyncio", "rich", "pinset.chain._fetch"])


def test_rotate_check_help_does_not_load_the_audit_command(cert: Path) -> None:
    modules = loaded_by(["rotate", "check", "--help"], cert.parent)
    assert hits(modules, OTHER_COMMANDS) == ["pinset.cli._rotate"]


def test_no_command_module_imports_another() -> None:
    """Helpers two commands share live in shared modules (_options, _inputs, _files, _output)."""
    import ast

    commands = {module for module, _attr, _help in COMMANDS.values()}
    found = []
    for module in sorted(commands):
        base = SRC / Path(*module.split("."))
        path = base / "__init__.py" if base.is_dir() else base.with_suffix(".py")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module in commands - {module}:
                found.append(f"{module} imports {node.module}")
    assert found == []
