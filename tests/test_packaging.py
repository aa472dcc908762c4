"""The wheel and sdist ``python -m build`` makes install and run with no source tree in sight.

Built once per module (about 15 s), by the build command docs/installing.md shows, run in a
copy of the source tree (links to its files) in a fresh venv with ``build`` and ``twine``:
the sdist first, then the wheel from the unpacked sdist, so a file the sdist forgets breaks the
wheel too. Installs go into fresh virtual environments with ``pip --no-index --find-links``
from a wheelhouse: the dependencies are downloaded once into it, at the versions this
environment runs (``pip freeze`` as constraints), so the installs are offline and resolve the
same way on every run. Commands then run from an empty temporary directory with no
``PYTHONPATH``: only the installed copy can answer.

The console blocks of the docs marked ``<!-- docs-test: venv REQUIREMENTS -->`` (a core
install, pipx, the build) are run here, through tests/test_docs_run.py's ``run_page``, each in
a fresh venv with only REQUIREMENTS (``pinset``: the wheel built here), offline
(``PIP_NO_INDEX``, ``PIP_FIND_LINKS``; pipx's home and bin directory in a temporary
directory), and must print what the page shows.
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
import test_docs_run as docs
from pinset.cli import main
from pinset.testing import TestPKI

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).parent.parent
PACKAGE = ROOT / "src" / "pinset"
VERSION = pinset.__version__
INSTALLING = ROOT / "docs" / "installing.md"
# What a copy of the source tree leaves out: local state and build output.
NOT_SOURCE = {".git", "dist", "build", "site", "artifacts", ".hypothesis", ".fuzz"}


def run(argv: list[str], *, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["NO_COLOR"] = "1"
    return subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=timeout
    )


def _same_pipx(block: docs.Block) -> bool:
    """Whether this Python runs the pipx the page shows: pipx 1.18, which needs Python 3.11 (on
    3.10 the dev extra has pipx 1.17.12, which prints more progress lines)."""
    return "pipx" not in (block.marked("venv") or "").split() or sys.version_info >= (3, 11)


def _builds(block: docs.Block) -> bool:
    return any("python -m build" in command.line for command in docs.commands(block))


@pytest.fixture(scope="module")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every wheel the installs of this module need: pinset's dependencies (core and ``cli``),
    the build backend's, pipx and build and twine, at this environment's versions."""
    house = tmp_path_factory.mktemp("wheelhouse")
    frozen = run([sys.executable, "-m", "pip", "freeze", "--exclude-editable"], cwd=house)
    constraints = house / "constraints.txt"
    lines = [line for line in frozen.stdout.splitlines() if not line.startswith("pinset")]
    constraints.write_text("\n".join(lines) + "\n", encoding="utf-8")
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    project = pyproject["project"]
    requirements = [
        *project["dependencies"],
        *project["optional-dependencies"]["cli"],
        *pyproject["build-system"]["requires"],
        *("pip", "pipx", "build", "twine"),
    ]
    done = run(
        [
            *(sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:"),
            *("--dest", str(house), "--constraint", str(constraints)),
            *requirements,
        ],
        cwd=house,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return house


@pytest.fixture(scope="module")
def source_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the source tree, as links to the repository's files: a clone to build in."""
    tree = tmp_path_factory.mktemp("source")
    for entry in ROOT.iterdir():
        name = entry.name
        if name not in NOT_SOURCE and not name.startswith(".venv") and not name.endswith("_cache"):
            (tree / name).symlink_to(entry)
    return tree


class Venvs:
    """Fresh virtual environments by requirements (``pinset``: the wheel built here), offline."""

    def __init__(self, root: Path, wheelhouse: Path, dist: Path) -> None:
        self.root, self.wheelhouse, self.dist = root, wheelhouse, dist
        self.made: dict[str, Path] = {}

    def __call__(self, requirements: str) -> Path:
        if requirements not in self.made:
            wanted = [
                str(wheel_of(self.dist)) + r.removeprefix("pinset")
                if r == "pinset" or r.startswith("pinset[")
                else r
                for r in requirements.split()
            ]
            where = self.root / f"venv-{len(self.made)}"
            self.made[requirements] = fresh_venv(where, self.wheelhouse, *wanted)
        return self.made[requirements]


@pytest.fixture(scope="module")
def venvs(tmp_path_factory: pytest.TempPathFactory, wheelhouse: Path, source_tree: Path) -> Venvs:
    return Venvs(tmp_path_factory.mktemp("docs-venvs"), wheelhouse, source_tree / "dist")


@pytest.fixture(scope="module")
def page_env(tmp_path_factory: pytest.TempPathFactory, wheelhouse: Path) -> dict[str, str]:
    """The docs' shell: pip offline, from the wheelhouse; pipx's home and bin directory here;
    on the ``PATH`` (after the block's venv) pipx's bin directory, not this environment's."""
    pipx = tmp_path_factory.mktemp("pipx")
    ours = str(Path(sys.executable).parent)
    path = [p for p in os.environ.get("PATH", "").split(os.pathsep) if p and p != ours]
    return {
        "PIP_NO_INDEX": "1",
        "PIP_FIND_LINKS": str(wheelhouse),
        "PIPX_HOME": str(pipx / "home"),
        "PIPX_BIN_DIR": str(pipx / "bin"),
        "PATH": os.pathsep.join([str(pipx / "bin"), *path]),
    }


@pytest.fixture(scope="module")
def built(
    source_tree: Path, venvs: Venvs, page_env: dict[str, str]
) -> list[tuple[docs.Block, list[docs.Ran]]]:
    """docs/installing.md's build block, run in the source tree: it makes ``dist``."""
    return list(
        docs.run_page(
            INSTALLING, docs.Bindings(), venv=venvs, env=page_env, workdir=source_tree, only=_builds
        )
    )


@pytest.fixture(scope="module")
def dist(built: list[tuple[docs.Block, list[docs.Ran]]], source_tree: Path) -> Path:
    assert built, "docs/installing.md has no build block marked for a fresh venv"
    out = source_tree / "dist"
    assert len(list(out.iterdir())) == 2, [one.printed for _, ran in built for one in ran]
    return out


def wheel_of(dist: Path) -> Path:
    (wheel,) = dist.glob(f"pinset-{VERSION}-py3-none-any.whl")
    return wheel


def sdist_of(dist: Path) -> Path:
    (sdist,) = dist.glob(f"pinset-{VERSION}.tar.gz")
    return sdist


def fresh_venv(where: Path, wheelhouse: Path, *requirements: str) -> Path:
    """A new virtual environment with only ``requirements`` installed, offline."""
    done = run([sys.executable, "-m", "venv", "--without-pip", str(where)], cwd=where.parent)
    assert done.returncode == 0, done.stderr
    python = where / "bin" / "python"
    done = run(
        [
            *(sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet"),
            *("--no-index", "--find-links", str(wheelhouse), *requirements),
        ],
        cwd=where.parent,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return where / "bin"


def test_the_docs_blocks_for_fresh_venvs_print_what_they_show(
    built: list[tuple[docs.Block, list[docs.Ran]]],
    dist: Path,
    venvs: Venvs,
    page_env: dict[str, str],
    source_tree: Path,
) -> None:
    drifted = docs.drift(iter(built))
    pages = [p for p in docs.DOCS if any(b.marked("venv") is not None for b in docs.blocks(p))]
    assert INSTALLING in pages
    for page in pages:
        drifted += docs.drift(
            docs.run_page(
                page,
                docs.Bindings(),
                venv=venvs,
                env=page_env,
                workdir=source_tree if page == INSTALLING else None,
                only=lambda block: not _builds(block) and _same_pipx(block),
            )
        )
    assert drifted == [], "\n\n".join(drifted)


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
