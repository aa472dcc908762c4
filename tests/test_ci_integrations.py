"""The CI definitions pinset ships run what they claim, on sample files, with this tree's pinset.

``action.yml`` (composite GitHub Action), ``.pre-commit-hooks.yaml`` and ``ci/gitlab-ci.yml``
are parsed as YAML and their shell lines are run as the CI system would run them (bash with
``-eo pipefail`` for the Action, pre-commit's ``entry + filenames``, GitLab's ``script`` lines
in one shell), with the ``pinset`` of the test environment first on ``PATH``. The steps that
install pinset or upload are checked, not run (no network): the install names extras that
exist, the upload is github/codeql-action/upload-sarif fed the SARIF the audit wrote.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import defusedxml.ElementTree as ET
import jsonschema
import pytest
import yaml

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).parent.parent
FIXTURES = Path(__file__).parent / "fixtures"
CLEAN = FIXTURES / "ci" / "pinset.toml"
# Android's own test config with a pin-set that expired on 2015-01-01 and one pin only.
EXPIRED = (
    FIXTURES
    / "corpus"
    / "android-nsc"
    / "aosp-mirror__platform_frameworks_base__NetworkSecurityConfigTest_expired_pin.xml"
)
BIN = Path(sys.executable).parent  # where this environment's `pinset` script is
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


def shell_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PINSET_", "GITHUB_"))}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["NO_COLOR"] = "1"
    env.update(extra)
    return env


def pyproject_extras() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return set(project["optional-dependencies"])


# -- the composite GitHub Action ---------------------------------------------------------------


def action() -> dict[str, Any]:
    loaded = yaml.safe_load((ROOT / "action.yml").read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def evaluate(value: str, inputs: dict[str, str], outputs: dict[str, dict[str, str]]) -> str:
    """Resolve the only expressions the Action's env uses: inputs.X and steps.ID.outputs.X."""

    def one(match: re.Match[str]) -> str:
        expression = match.group(1)
        if m := re.fullmatch(r"inputs\.([\w-]+)", expression):
            return inputs[m.group(1)]
        if m := re.fullmatch(r"steps\.([\w-]+)\.outputs\.([\w-]+)", expression):
            return outputs.get(m.group(1), {}).get(m.group(2), "")
        raise AssertionError(f"an expression this test cannot evaluate: {expression}")

    return EXPRESSION.sub(one, value)


def run_action(tmp_path: Path, **given: str) -> dict[str, Any]:
    """Run the Action's shell steps in order, as a runner would; stop at the first failure."""
    definition = action()
    inputs = {name: str(spec.get("default", "")) for name, spec in definition["inputs"].items()}
    inputs.update(given)
    outputs: dict[str, dict[str, str]] = {}
    ran: dict[str, int] = {}
    for step in definition["runs"]["steps"]:
        if "run" not in step or step["id"] == "install":
            continue  # `uses:` steps and the pip install are checked by the tests below
        output_file = tmp_path / f"github-output-{step['id']}"
        output_file.write_text("", encoding="utf-8")
        env = shell_env(
            tmp_path,
            GITHUB_OUTPUT=str(output_file),
            GITHUB_SERVER_URL="https://github.invalid",
            GITHUB_REPOSITORY="owner/app",
        )
        env.update({k: evaluate(str(v), inputs, outputs) for k, v in step["env"].items()})
        done = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        ran[step["id"]] = done.returncode
        lines = output_file.read_text(encoding="utf-8").splitlines()
        outputs[step["id"]] = dict(line.split("=", 1) for line in lines)
        if done.returncode != 0:
            return {"ran": ran, "outputs": outputs, "stderr": done.stderr}
    return {"ran": ran, "outputs": outputs, "stderr": ""}


@pytest.fixture(scope="module")
def sarif_validator() -> jsonschema.Draft7Validator:
    schema = json.loads((FIXTURES / "sarif-2.1.0-schema.json").read_text(encoding="utf-8"))
    return jsonschema.Draft7Validator(schema, format_checker=jsonschema.FormatChecker())


def test_action_is_composite_and_passes_inputs_through_the_environment_only() -> None:
    definition = action()
    assert definition["runs"]["using"] == "composite"
    assert definition["inputs"]["targets"]["required"] is True
    for step in definition["runs"]["steps"]:
        if "run" in step:
            assert step["shell"] == "bash"
            # ${{ }} spliced into a script is script injection (a target named `$(curl ..)`).
            assert "${{" not in step["run"], step["id"]


def test_action_installs_the_extras_the_audit_needs() -> None:
    definition = action()
    install = next(s for s in definition["runs"]["steps"] if s.get("id") == "install")
    assert install["run"].split()[:4] == ["python", "-m", "pip", "install"]
    assert install["env"]["PINSET_REQUIREMENT"] == "${{ inputs.pinset }}"
    requirement = definition["inputs"]["pinset"]["default"]
    name, extras = re.fullmatch(r"(\w+)\[([\w,]+)\]", requirement).groups()  # type: ignore[union-attr]
    assert name == "pinset"
    assert set(extras.split(",")) <= pyproject_extras()


def test_action_uploads_the_sarif_the_audit_wrote() -> None:
    steps = action()["runs"]["steps"]
    upload = next(s for s in steps if "uses" in s and "upload-sarif" in s["uses"])
    assert upload["uses"].startswith("github/codeql-action/upload-sarif@v")
    assert upload["with"]["sarif_file"] == "${{ inputs.sarif-file }}"
    assert "always()" in upload["if"]  # findings (exit 1) are uploaded too
    audit = next(s for s in steps if s.get("id") == "audit")
    assert audit["env"]["PINSET_SARIF"] == "${{ inputs.sarif-file }}"
    assert '--format sarif -o "$PINSET_SARIF"' in audit["run"]
    assert steps.index(audit) < steps.index(upload) < len(steps) - 1  # the verdict comes last


def test_action_on_a_clean_policy_passes_with_valid_sarif(
    tmp_path: Path, sarif_validator: jsonschema.Draft7Validator
) -> None:
    result = run_action(tmp_path, targets=str(CLEAN))
    assert result["ran"] == {"audit": 0, "verdict": 0}, result["stderr"]
    assert result["outputs"]["audit"] == {"exit-code": "0"}
    sarif = json.loads((tmp_path / "pinset-audit.sarif").read_text(encoding="utf-8"))
    sarif_validator.validate(sarif)
    levels = {r["level"] for r in sarif["runs"][0]["results"]}
    assert "error" not in levels


def test_action_on_an_expired_pin_set_uploads_then_fails(
    tmp_path: Path, sarif_validator: jsonschema.Draft7Validator
) -> None:
    result = run_action(
        tmp_path, targets=f"{CLEAN} {EXPIRED}", **{"sarif-file": "out/report.sarif"}
    )
    # The audit step succeeds (so the upload runs), the verdict step fails with the exit code.
    assert result["ran"] == {"audit": 0, "verdict": 1}
    assert result["outputs"]["audit"] == {"exit-code": "1"}
    assert "found error-level findings (exit 1)" in result["stderr"]
    sarif = json.loads((tmp_path / "out" / "report.sarif").read_text(encoding="utf-8"))
    sarif_validator.validate(sarif)
    rules = {r["ruleId"] for r in sarif["runs"][0]["results"] if r["level"] == "error"}
    assert rules == {"pin-set-expired", "missing-backup-pin"}


def test_action_can_report_without_failing(tmp_path: Path) -> None:
    result = run_action(tmp_path, targets=str(EXPIRED), **{"fail-on-findings": "false"})
    assert result["ran"] == {"audit": 0, "verdict": 0}
    assert result["outputs"]["audit"] == {"exit-code": "1"}


def test_action_fails_at_the_audit_when_a_target_cannot_be_read(tmp_path: Path) -> None:
    result = run_action(tmp_path, targets="missing.toml")
    assert result["ran"] == {"audit": 2}
    assert result["outputs"]["audit"] == {"exit-code": "2"}
    assert "missing.toml" in result["stderr"]


def test_action_splits_targets_but_never_globs_them(tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text(CLEAN.read_text(encoding="utf-8"), encoding="utf-8")
    result = run_action(tmp_path, targets="*.toml")
    assert result["ran"] == {"audit": 2}  # the file named "*.toml", which does not exist
    assert "*.toml" in result["stderr"]


# -- the pre-commit hook -----------------------------------------------------------------------


def test_pre_commit_hook_runs_on_the_configs_it_matches(tmp_path: Path) -> None:
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))
    hook = next(h for h in hooks if h["id"] == "pinset-audit")
    assert hook["language"] == "python"
    assert hook["pass_filenames"] is True
    # A repository as pre-commit sees it: the hook gets the staged files its pattern matches.
    repo = tmp_path / "repo"
    (repo / "app/src/main/res/xml").mkdir(parents=True)
    (repo / "pinset.toml").write_text(CLEAN.read_text(encoding="utf-8"), encoding="utf-8")
    nsc = repo / "app/src/main/res/xml/network_security_config.xml"
    nsc.write_text(EXPIRED.read_text(encoding="utf-8"), encoding="utf-8")
    (repo / "README.md").write_text("not a pin config\n", encoding="utf-8")
    files = re.compile(hook["files"])

    def run_hook(staged: list[str]) -> subprocess.CompletedProcess[str]:
        matched = [path for path in staged if files.search(path)]
        return subprocess.run(
            [*hook["entry"].split(), *matched],
            cwd=repo,
            env=shell_env(tmp_path),
            capture_output=True,
            text=True,
            check=False,
        )

    clean = run_hook(["pinset.toml", "README.md"])
    assert clean.returncode == 0, clean.stderr
    assert "passed: 0 error(s)" in clean.stdout
    failing = run_hook(["pinset.toml", "README.md", str(nsc.relative_to(repo))])
    assert failing.returncode == 1
    assert "pin-set-expired" in failing.stdout
    assert "README.md" not in failing.stdout


def test_pre_commit_hook_dependencies_are_the_cli_extras() -> None:
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))
    hook = next(h for h in hooks if h["id"] == "pinset-audit")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    cli = set(project["optional-dependencies"]["cli"])
    assert set(hook["additional_dependencies"]) <= cli


# -- the GitLab CI job -------------------------------------------------------------------------


def gitlab_job() -> dict[str, Any]:
    jobs = yaml.safe_load((ROOT / "ci" / "gitlab-ci.yml").read_text(encoding="utf-8"))
    job = jobs["pinset-audit"]
    assert isinstance(job, dict)
    return job


def run_gitlab(tmp_path: Path, targets: str) -> subprocess.CompletedProcess[str]:
    job = gitlab_job()
    install, *script = job["script"]
    assert install.split()[:4] == ["python", "-m", "pip", "install"]
    variables = {k: str(v) for k, v in job["variables"].items()}
    variables["PINSET_TARGETS"] = targets
    return subprocess.run(
        ["bash", "-e", "-c", "\n".join(script)],  # GitLab runs the lines in one shell, -e
        cwd=tmp_path,
        env=shell_env(tmp_path, **variables),
        capture_output=True,
        text=True,
        check=False,
    )


def test_gitlab_job_writes_the_junit_report_it_declares(tmp_path: Path) -> None:
    job = gitlab_job()
    report = job["artifacts"]["reports"]["junit"]
    assert job["artifacts"]["when"] == "always"
    done = run_gitlab(tmp_path, f"{CLEAN} {EXPIRED}")
    assert done.returncode == 1
    suites = ET.parse(tmp_path / report).getroot()
    failures = [f.get("message", "") for f in suites.iter("failure")]
    assert any("pin-set-expired" in message for message in failures), failures
    clean = run_gitlab(tmp_path, str(CLEAN))
    assert clean.returncode == 0, clean.stderr
    assert not list(ET.parse(tmp_path / report).getroot().iter("failure"))
