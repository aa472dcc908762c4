"""The wheel and sdist ``python -m build`` makes install and run with no source tree in sight.

Built once per module (about 15 s): the sdist first, then the wheel from the unpacked sdist,
so a file the sdist forgets breaks the wheel too. Installs go into fresh virtual environments
with ``pip --no-index --find-links`` from a wheelhouse: the dependencies are downloaded once
into it, at the versions this environment runs (``pip freeze`` as constraints), so the
installs are offline and resolve the same way on every run. Commands then run from an empty
temporary directory with no ``PYTHONPATH``: only the installed copy can answer.
"""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

import pinset
from pinset.cli import main
from pinset.testing import TestPKI

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

ROOT = Path(__file__).parent.parent
PACKAGE = ROOT / "src" / "pinset"
VERSION = pinset.__version__


def run(argv: list[str], *, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["NO_COLOR"] = "1"
    return subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=timeout
    )


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    done = run([sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)], cwd=out)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return out


def wheel_of(dist: Path) -> Path:
    (wheel,) = dist.glob(f"pinset-{VERSION}-py3-none-any.whl")
    return wheel


def sdist_of(dist: Path) -> Path:
    (sdist,) = dist.glob(f"pinset-{VERSION}.tar.gz")
    return sdist


@pytest.fixture(scope="module")
def wheelhouse(dist: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    house = tmp_path_factory.mktemp("wheelhouse")
    frozen = run([sys.executable, "-m", "pip", "freeze", "--exclude-editable"], cwd=house)
    constraints = house / "constraints.txt"
    lines = [line for line in frozen.stdout.splitlines() if not line.startswith("pinset")]
    constraints.write_text("\n".join(lines) + "\n", encoding="utf-8")
    done = run(
        [
            *(sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:"),
            *("--dest", str(house), "--constraint", str(constraints)),
            f"{wheel_of(dist)}[cli]",
        ],
        cwd=house,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return house


def fresh_venv(where: Path, wheelhouse: Path, requirement: str) -> Path:
    """A new virtual environment with only ``requirement`` installed, offline."""
    done = run([sys.executable, "-m", "venv", "--without-pip", str(where)], cwd=where.parent)
    assert done.returncode == 0, done.stderr
    python = where / "bin" / "python"
    done = run(
        [
            *(sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet"),
            *("--no-index", "--find-links", str(wheelhouse), requirement),
        ],
        cwd=where.parent,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return where / "bin"


def package_files() -> set[str]:
    """Every file of the package in the tree (what the wheel must carry), as wheel paths."""
    return {
        path.relative_to(PACKAGE.parent).as_posix()
        for path in PACKAGE.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }


def test_twine_check_passes(dist: Path) -> None:
    done = run(
        [sys.executable, "-m", "twine", "check", "--strict", *map(str, dist.iterdir())], cwd=dist
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("PASSED") == 2


def test_wheel_carries_every_package_file(dist: Path) -> None:
    with zipfile.ZipFile(wheel_of(dist)) as wheel:
        names = set(wheel.namelist())
        metadata = wheel.read(f"pinset-{VERSION}.dist-info/METADATA").decode()
    assert package_files() <= names, sorted(package_files() - names)
    for data in (
        "pinset/py.typed",
        "pinset/ct/data/google_all_logs_list.json",
        "pinset/collector/static/index.html",
        "pinset/collector/migrations/script.py.mako",
        "pinset/audit/public_suffixes.txt",
    ):
        assert data in names
    assert not [n for n in names if n.startswith(("tests/", "docs/")) or "__pycache__" in n]
    assert f"Version: {VERSION}\n" in metadata
    assert "Requires-Dist: cryptography>=42\n" in metadata
    # The only core dependencies: cryptography, and tomllib's backport on 3.10; click is the
    # cli extra's (the project's rule), and the core pinset runs without it.
    core = [
        line
        for line in metadata.splitlines()
        if line.startswith("Requires-Dist:") and "extra ==" not in line
    ]
    assert core == [
        "Requires-Dist: cryptography>=42",
        'Requires-Dist: tomli>=2.0; python_version < "3.11"',
    ]
    assert 'Requires-Dist: click>=8.1; extra == "cli"\n' in metadata
    assert 'Requires-Dist: rich>=13.7; extra == "cli"\n' in metadata


def test_sdist_carries_tests_docs_and_ci_definitions_but_no_local_state(dist: Path) -> None:
    prefix = f"pinset-{VERSION}/"
    with tarfile.open(sdist_of(dist)) as sdist:
        names = {name.removeprefix(prefix) for name in sdist.getnames()}
    for path in (
        "pyproject.toml",
        "README.md",
        "CHANGELOG.md",
        "Makefile",
        "action.yml",
        ".pre-commit-hooks.yaml",
        "ci/gitlab-ci.yml",
        "docs/installing.md",
        "tests/conftest.py",
        "tests/_policies.py",
        "tests/fixtures/README",
        "tests/fixtures/ci/pinset.toml",
        "tests/fixtures/sarif-2.1.0-schema.json",
        "src/pinset/py.typed",
        "src/pinset/ct/data/google_all_logs_list.json",
    ):
        assert path in names, path
    fixtures = ROOT / "tests" / "fixtures"
    in_tree = {
        p.relative_to(ROOT).as_posix()
        for p in fixtures.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    assert in_tree <= names, sorted(in_tree - names)
    local = [n for n in names if n.startswith((".venv", "build/", "dist/", ".git/"))]
    assert not local
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]


@pytest.fixture(scope="module")
def cli_bin(dist: Path, wheelhouse: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ``bin`` of a fresh venv with ``pinset[cli]``: the full, click, command line."""
    return fresh_venv(
        tmp_path_factory.mktemp("venvs") / "cli", wheelhouse, f"{wheel_of(dist)}[cli]"
    )


def test_core_install_runs_version_pin_and_import(
    dist: Path, wheelhouse: Path, cli_bin: Path, tmp_path: Path
) -> None:
    bin_dir = fresh_venv(tmp_path / "core", wheelhouse, str(wheel_of(dist)))
    work = tmp_path / "work"
    work.mkdir()
    listed = run(
        [sys.executable, "-m", "pip", "--python", str(bin_dir / "python"), "list"], cwd=work
    )
    names = {line.split()[0].lower() for line in listed.stdout.splitlines()[2:]}
    assert {"pinset", "cryptography"} <= names, listed.stdout
    # The project's rule: cryptography is the only core dependency (cffi and pycparser are its,
    # and typing_extensions too on Python 3.10; tomli is pinset's TOML reader there).
    allowed = {"pinset", "cryptography", "cffi", "pycparser", "tomli", "typing_extensions"}
    assert names <= allowed, listed.stdout
    assert "click" not in names

    def both(*argv: str) -> tuple[subprocess.CompletedProcess[str], ...]:
        """``pinset ARGV`` on the core install and on the ``cli`` install, same directory."""
        return tuple(run([str(where / "pinset"), *argv], cwd=work) for where in (bin_dir, cli_bin))

    core, full = both("--version")
    assert core.returncode == 0, core.stderr
    assert core.stdout == full.stdout == f"pinset, version {VERSION}\n"

    imported = run(
        [
            str(bin_dir / "python"),
            "-c",
            "import pinset; print(pinset.__file__, pinset.__version__)",
        ],
        cwd=work,
    )
    where, version_seen = imported.stdout.split()
    assert Path(where).is_relative_to(tmp_path / "core"), where  # not the source tree
    assert version_seen == VERSION

    pki = TestPKI()
    leaf = pki.leaf("api.example.com")
    (work / "leaf.pem").write_bytes(leaf.cert.public_bytes(serialization.Encoding.PEM))
    (work / "chain.pem").write_bytes(leaf.cert_chain_pem.bytes())
    spki = leaf.cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    # RFC 7469 section 2.4: base64 of SHA-256 over the DER SubjectPublicKeyInfo.
    expected = "sha256/" + base64.b64encode(hashlib.sha256(spki).digest()).decode()
    for argv in (["leaf.pem"], ["chain.pem"], ["chain.pem", "--json"]):
        core, full = both("pin", *argv)
        assert core.returncode == 0, core.stderr
        assert expected in core.stdout
        # The same text and JSON as the full command line prints for the same file.
        assert (core.returncode, core.stdout, core.stderr) == (0, full.stdout, full.stderr)

    core, full = both("pin", "nothing.pem")
    assert core.returncode == full.returncode == 2
    assert core.stderr == full.stderr
    assert core.stderr.startswith("nothing.pem:\nerror: no such file"), core.stderr
    assert "Traceback" not in core.stderr
    # One good file and one missing: the pins, then the error under its target, without rich.
    mixed = run([str(bin_dir / "pinset"), "pin", "leaf.pem", "nothing.pem"], cwd=work)
    assert mixed.returncode == 2
    assert expected in mixed.stdout
    assert mixed.stderr.startswith("nothing.pem:\nerror: no such file"), mixed.stderr

    helped = run([str(bin_dir / "pinset"), "--help"], cwd=work)
    assert helped.returncode == 0
    assert "pinset pin TARGET..." in helped.stdout
    assert "pip install 'pinset[cli]'" in helped.stdout

    # Every other command names the extra that brings it, in one line, with no traceback.
    demo = run([str(bin_dir / "pinset"), "demo"], cwd=work)
    assert demo.returncode == 2
    assert demo.stderr == (
        "error: 'pinset demo' needs the 'cli' extra: pip install 'pinset[cli]' "
        "(with pipx: pipx install --force 'pinset[cli]')\n"
    )


def test_cli_extra_runs_the_demo(cli_bin: Path, tmp_path: Path) -> None:
    demo = run([str(cli_bin / "pinset"), "demo", "--json"], cwd=tmp_path)
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    assert '"ok": true' in demo.stdout


def test_missing_extra_names_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # In this environment every extra is installed: hide rich the way a core install lacks it.
    for name in [n for n in sys.modules if n == "rich" or n.startswith("rich.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "rich", None)
    monkeypatch.delitem(sys.modules, "pinset.cli._demo", raising=False)
    assert main(["demo"]) == 2
    err = capsys.readouterr().err
    assert "needs rich, from the 'cli' extra" in err
    assert "pip install 'pinset[cli]'" in err
