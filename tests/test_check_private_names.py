"""scripts/check_private_names.py (run by make lint) on tiny trees: what it reports and passes."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "check_private_names.py"


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *map(str, args)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


# A package whose private module `_impl` has private and public names, and a test directory.
PACKAGE = {
    "pkg/__init__.py": "from pkg._impl import helper\n",
    "pkg/_impl.py": """
        import os

        _SECRET = 1
        helper = 2


        def _private() -> int:
            return _SECRET + os.getpid() * 0
    """,
    "pkg/sub/__init__.py": "",
    "pkg/sub/_inner.py": "VALUE = 3\n",
}


def test_a_clean_tree_passes(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            **PACKAGE,
            # Private modules are fine to import; their public names too; the standard
            # library's private names are not ours to judge; dunders are public.
            "pkg/user.py": """
                import os
                from os import _exit
                from pkg import _impl
                from pkg._impl import helper
                from pkg.sub import _inner
                from . import _impl as impl

                value = _impl.helper + impl.helper + _inner.VALUE + helper
                name = _impl.__name__
                exit_ = os._exit, _exit
            """,
            "tests/conftest.py": "",
            "tests/_helpers.py": "def shared() -> int:\n    return 1\n",
            "tests/test_x.py": """
                from _helpers import shared
                from pkg import _impl


                def test_it() -> None:
                    assert shared() + _impl.helper
            """,
        },
    )
    result = run(tmp_path / "pkg", tmp_path / "tests")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 violation(s)" in result.stdout


def test_each_kind_of_violation_is_reported_with_file_line_name_and_module(
    tmp_path: Path,
) -> None:
    write(
        tmp_path,
        {
            **PACKAGE,
            "pkg/bad.py": """
                import pkg._impl
                import pkg._impl as impl
                from pkg import _impl
                from pkg._impl import _SECRET
                from ._impl import _private

                a = _impl._private()
                b = impl._SECRET
                c = pkg._impl._SECRET
                d = getattr(_impl, "_SECRET")
            """,
            "tests/_helpers.py": "def _shared() -> int:\n    return 1\n",
            "tests/test_bad.py": """
                from _helpers import _shared
                from pkg import _impl


                def test_it(monkeypatch) -> None:
                    monkeypatch.setattr(_impl, "_SECRET", 2)
                    monkeypatch.setattr("pkg._impl._private", lambda: 0)
                    assert _shared()
            """,
        },
    )
    result = run(tmp_path / "pkg", tmp_path / "tests")
    assert result.returncode == 1
    bad, test_bad = tmp_path / "pkg" / "bad.py", tmp_path / "tests" / "test_bad.py"
    assert result.stdout.splitlines()[:9] == [
        f"{bad}:5: imports _SECRET, a private name of pkg._impl",
        f"{bad}:6: imports _private, a private name of pkg._impl",
        f"{bad}:8: reaches _private, a private name of pkg._impl",
        f"{bad}:9: reaches _SECRET, a private name of pkg._impl",
        f"{bad}:10: reaches _SECRET, a private name of pkg._impl",
        f"{bad}:11: getattr() reaches _SECRET, a private name of pkg._impl",
        f"{test_bad}:2: imports _shared, a private name of _helpers",
        f"{test_bad}:7: setattr() reaches _SECRET, a private name of pkg._impl",
        f"{test_bad}:8: setattr() reaches _private, a private name of pkg._impl",
    ]
    assert "9 violation(s), 0 allowed" in result.stdout


def test_an_allowance_tolerates_a_use_and_fails_once_stale(tmp_path: Path) -> None:
    write(tmp_path, {**PACKAGE, "pkg/bad.py": "from pkg._impl import _SECRET\n"})
    allowed = run("--allow", "pkg._impl._SECRET", tmp_path / "pkg")
    assert allowed.returncode == 0, allowed.stdout
    assert "0 violation(s), 1 allowed" in allowed.stdout

    (tmp_path / "pkg" / "bad.py").write_text("from pkg._impl import helper\n")
    stale = run("--allow", "pkg._impl._SECRET", tmp_path / "pkg")
    assert stale.returncode == 1
    assert "--allow pkg._impl._SECRET: no longer used; remove the allowance" in stale.stdout


def test_a_missing_directory_is_a_usage_error(tmp_path: Path) -> None:
    result = run(tmp_path / "nowhere")
    assert result.returncode == 2
    assert "not a directory" in result.stderr
