"""The example CI job and the pre-commit hook definition run the commands and files they claim."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from pinset.cli._app import COMMANDS

ROOT = Path(__file__).parent.parent


def test_pre_commit_hook_runs_pinset_audit_on_pin_configs() -> None:
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))
    hook = next(h for h in hooks if h["id"] == "pinset-audit")
    command, sub = hook["entry"].split()
    assert command == "pinset"
    assert sub in COMMANDS
    files = re.compile(hook["files"])
    for path in (
        "pinset.toml",
        "app/src/main/res/xml/network_security_config.xml",
        "ios/App/Info.plist",
    ):
        assert files.search(path), path
    for path in ("README.md", "src/pinset/policy.py", "res/xml/strings.xml"):
        assert not files.search(path), path


def test_github_job_uploads_sarif_from_pinset_audit() -> None:
    job = yaml.safe_load(
        (ROOT / "docs" / "examples" / "pinset-audit.yml").read_text(encoding="utf-8")
    )
    steps = job["jobs"]["audit"]["steps"]
    runs = " ".join(step.get("run", "") for step in steps)
    assert "pinset audit" in runs
    assert "--format sarif -o pinset-audit.sarif" in runs
    upload = next(s for s in steps if "upload-sarif" in s.get("uses", ""))
    assert upload["with"]["sarif_file"] == "pinset-audit.sarif"
