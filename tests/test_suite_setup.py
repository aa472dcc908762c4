"""The test suite's own set-up: deterministic hypothesis, skip lines, packaging metadata.

A run of `make test` that passed must pass again (no fresh randomness, no example
database), and a skipped group must say what is missing and the command that adds it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

import conftest

if sys.version_info >= (3, 11):
    import tomllib
else:  # the project's own dependency on 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"

# Draws 50 examples under whatever profile conftest loads, and prints them.
DRAW = """
import conftest
from hypothesis import given, settings, strategies as st
seen = []
@settings(max_examples=50)
@given(st.integers(), st.text(max_size=5))
def draw(number, text):
    seen.append((number, text))
draw()
print(seen)
"""


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PINSET_", "PYTEST_"))}
    env["PYTHONPATH"] = str(TESTS)
    return {**env, **extra}


def _draw(**env: str) -> str:
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", DRAW],
        capture_output=True,
        text=True,
        env=_env(**env),
        cwd=ROOT,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_hypothesis_draws_the_same_examples_on_every_run() -> None:
    first, second = _draw(), _draw()
    assert first == second
    assert first.count("(") >= 10  # it did draw


def test_the_fuzz_profile_draws_fresh_examples() -> None:
    # Two fresh 50-example runs agreeing would take a chance below 2**-100.
    assert _draw(PINSET_HYPOTHESIS_PROFILE="fuzz") != _draw(PINSET_HYPOTHESIS_PROFILE="fuzz")


def test_the_deterministic_profile_replays_nothing_from_earlier_runs() -> None:
    from hypothesis import settings

    profile = settings.get_profile("deterministic")
    assert (profile.derandomize, profile.database, profile.deadline) == (True, None, None)
    fuzz = settings.get_profile("fuzz")
    assert not fuzz.derandomize
    assert fuzz.database is not None


def _make_plan(*args: str) -> str:
    """What ``make ARGS`` would run: -n prints the recipe; -o keeps make from (re)installing
    the virtualenvs to print it."""
    return subprocess.run(
        ["make", "-n", "-o", ".venv/.installed-dev", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=True,
    ).stdout


def test_make_test_and_ci_select_the_deterministic_profile() -> None:
    plan = _make_plan("-o", ".venv-mitmproxy/bin/mitmdump", "test")
    assert "pytest --hypothesis-profile=deterministic" in plan
    assert "PINSET_PG_INSTALL=no .ci/setup-postgres.sh" in plan
    assert re.search(r"^make test\b", (ROOT / ".ci" / "run").read_text(), re.MULTILINE)


def test_make_fuzz_uses_fresh_randomness_for_a_bounded_time() -> None:
    plan = _make_plan("fuzz", "FUZZ_SECONDS=7")
    assert "--hypothesis-profile=fuzz -m hypothesis" in plan
    assert "+ 7" in plan  # the deadline is FUZZ_SECONDS from now
    assert "timeout --signal=INT" in plan


def _skipped(nodeid: str, reason: str, *markers: str) -> pytest.TestReport:
    return pytest.TestReport(
        nodeid,
        (nodeid, 1, "test"),
        dict.fromkeys(markers, 1),
        "skipped",
        (nodeid, 1, f"Skipped: {reason}"),
        "setup",
    )


def test_one_line_per_skipped_group_names_what_is_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(conftest.PG_ENV, raising=False)
    reports = [
        *[
            _skipped(f"t.py::pg{i}", "PINSET_TEST_POSTGRES_URL is not set", "postgres")
            for i in range(3)
        ],
        _skipped("t.py::web", "chromium not found at /usr/bin/chromium", "browser"),
        _skipped("t.py::curl1", "curl is not installed"),
        _skipped("t.py::curl2", "curl is not installed"),
    ]
    lines = conftest.skip_summary(reports)
    assert lines[0].startswith("skipped 3 postgres tests: ")
    assert lines[0] == f"skipped 3 postgres tests: {conftest.postgres_skip_reason()}"
    assert lines[1:] == [
        "skipped 1 browser tests: chromium not found at /usr/bin/chromium",
        "skipped 2 tests: curl is not installed",
    ]


def test_postgres_skip_reason_gives_the_command() -> None:
    assert conftest.postgres_skip_reason({}, installed=False) == (
        "no PostgreSQL server — apt-get install postgresql"
    )
    installed = conftest.postgres_skip_reason({}, installed=True)
    assert installed is not None
    assert "make test starts it" in installed
    assert 'eval "$(.ci/setup-postgres.sh)"' in installed
    assert conftest.postgres_skip_reason({conftest.PG_ENV: "postgresql://x"}) is None


def test_a_run_ends_with_the_skip_line() -> None:
    # A real pytest run without PostgreSQL: the summary line is printed and counts right.
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/test_collector_migrations.py", "-m", "postgres"],
        capture_output=True,
        text=True,
        env=_env(),
        cwd=ROOT,
        timeout=300,
    )
    skipped = re.search(r"(\d+) skipped", result.stdout)
    assert skipped, result.stdout[-2000:]
    expected = f"pinset: skipped {skipped.group(1)} postgres tests: "
    # The last line of the run, below pytest's own list of skips.
    assert result.stdout.splitlines()[-1] == expected + str(conftest.postgres_skip_reason({}))


def test_license_is_an_spdx_expression_with_a_setuptools_that_reads_it() -> None:
    # A `license = {text = ...}` table makes setuptools >= 77 warn at every install, and an
    # SPDX string needs setuptools >= 77 (PEP 639) to be read at all.
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert pyproject["project"]["license"] == "Apache-2.0"
    assert not [c for c in pyproject["project"]["classifiers"] if c.startswith("License ::")]
    [setuptools] = [
        Requirement(r) for r in pyproject["build-system"]["requires"] if r.startswith("setuptools")
    ]
    assert all(Version("77") <= Version(spec.version) for spec in setuptools.specifier)
    assert setuptools.specifier.contains("77")


def test_a_warning_fails_the_test_that_raised_it() -> None:
    # pyproject's filterwarnings starts with "error": a warning is an exception here.
    with pytest.raises(DeprecationWarning, match="old API"):
        warnings.warn("old API", DeprecationWarning, stacklevel=1)
    with pytest.raises(UserWarning, match="careful"):
        warnings.warn("careful", stacklevel=1)


def test_a_resource_warning_is_shown_not_raised() -> None:
    # Raised from __del__ at garbage-collection time it would fail a random test instead.
    with pytest.warns(ResourceWarning, match="unclosed"):
        warnings.warn("unclosed socket", ResourceWarning, stacklevel=1)
