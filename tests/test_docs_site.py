"""The documentation site's generated pages and the docs runner, checked without mkdocs.

scripts/mkdocs_hooks.py renders the CLI reference from click and lists the API reference's
modules from docs/architecture.md; tests/test_docs_run.py runs the docs' console blocks. Here:
the reference covers every command and prints what the installed command prints, the API page
covers the public surface, links that leave docs/ land on copies in the site, and the runner
reports a block whose output drifted.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import click
import pytest

import test_docs_run as runner
from pinset.cli import _app
from pinset.cli._app import COMMANDS

ROOT = Path(__file__).resolve().parents[1]


def _hooks() -> ModuleType:
    spec = importlib.util.spec_from_file_location("mkdocs_hooks", ROOT / "scripts/mkdocs_hooks.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


hooks = _hooks()


def test_the_cli_reference_has_every_command_and_subcommand() -> None:
    paths = hooks._command_paths()
    assert {path[0] for path in paths if path} == set(COMMANDS)
    for expected in [
        (),
        ("rotate", "plan"),
        ("bundle", "sign"),
        ("ct", "check"),
        ("mitm", "serve"),
    ]:
        assert expected in paths
    page = hooks.cli_reference()
    assert page.count("\n## pinset") == len(paths)


@pytest.mark.parametrize("path", [("pin",), ("rotate", "check"), ("bundle", "sign")])
def test_the_cli_reference_shows_every_option_the_command_declares(path: tuple[str, ...]) -> None:
    command: click.Command = _app.cli
    for name in path:
        assert isinstance(command, click.Group)
        sub = command.get_command(click.Context(command), name)
        assert sub is not None
        command = sub
    shown = hooks.cli_help(path)
    assert shown.startswith(f"Usage: pinset {' '.join(path)} ")
    for param in command.params:
        if isinstance(param, click.Option) and not param.hidden:
            assert any(opt in shown for opt in param.opts), (path, param.opts)


def test_the_api_reference_documents_the_public_surface() -> None:
    modules = hooks.public_modules()
    assert modules[0] == "pinset"
    assert {"pinset.policyfile", "pinset.ct", "pinset.updates", "pinset.testing.plugin"} <= set(
        modules
    )
    page = hooks.api_reference()
    assert all(f"\n::: {module}\n" in page for module in modules)


def test_links_that_leave_docs_point_at_copies_in_the_site() -> None:
    assert hooks.site_uri("audit.md", "../.pre-commit-hooks.yaml") == "repo/.pre-commit-hooks.yaml"
    assert (
        hooks.site_uri("clients/httpx.md", "../../tests/test_docs.py") == "repo/tests/test_docs.py"
    )
    # A copied file's links are from the repository root; those into docs/ go to the page.
    assert hooks.site_uri("repo/SECURITY.md", "docs/security.md") == "security.md"
    # Inside docs/, outside the repository, or missing: left alone (a strict build fails on it).
    assert hooks.site_uri("audit.md", "formats.md") is None
    assert hooks.site_uri("audit.md", "../../etc/passwd") is None
    assert hooks.site_uri("audit.md", "../no-such-file.md") is None
    assert hooks.site_uri("audit.md", "https://example.com/x.md") is None


def _page(tmp_path: Path, text: str) -> Path:
    page = tmp_path / "page.md"
    page.write_text(text, encoding="utf-8")
    return page


def test_the_runner_reports_drift_and_passes_what_matches(tmp_path: Path) -> None:
    page = _page(
        tmp_path,
        "<!-- docs-test: file p.toml -->\n```toml\n[[domain]]\nname = 'a.example'\n```\n\n"
        "```console\n$ pinset import p.toml -o p.json\n$ echo $?\n2\n$ echo drifted\nshown\n```\n",
    )
    blocks = list(runner.blocks(page))
    assert blocks[0].marker == ("file", "p.toml")
    work = tmp_path / "work"
    work.mkdir()
    (work / "p.toml").write_text(blocks[0].text, encoding="utf-8")
    results = runner.run_block(blocks[1], work)
    assert [command.line for command, _ in results] == [
        "pinset import p.toml -o p.json",
        "echo $?",
        "echo drifted",
    ]
    (_, first), (_, status), (drift_command, drift) = results
    assert status == "2"  # `$?` is the status of the command before, as in a shell
    assert "p.toml" in first
    assert drift == "drifted" != runner.normalise(drift_command.expected, work)


def test_the_runner_normalises_only_its_own_directory(tmp_path: Path) -> None:
    text = f"wrote {tmp_path}/out.xml\nin {tmp_path}  \n\n"
    assert runner.normalise(text, tmp_path) == "wrote out.xml\nin ."


def test_a_skip_marker_needs_a_reason(tmp_path: Path) -> None:
    page = _page(tmp_path, "<!-- docs-test: skip -->\n```console\n$ pinset demo\n```\n")
    (block,) = runner.blocks(page)
    assert block.marker == ("skip", "")
    assert block.skip_reason == ""  # test_every_console_block_is_run_or_skipped... refuses it
