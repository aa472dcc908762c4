"""MkDocs hooks: pages generated at build time from the code, so that they cannot drift.

* ``reference/cli.md``: every command's ``--help``, rendered by click from the commands
  themselves (the same text ``pinset COMMAND --help`` prints in an 80-column terminal);
* ``reference/api.md``: a mkdocstrings ``::: module`` directive for each public module that
  docs/architecture.md's "Public surface" table lists (tests/test_docs.py checks that table
  against the tree);
* files outside docs/ that a page links to (``../SECURITY.md``, ``../.pre-commit-hooks.yaml``):
  copied into the site under ``repo/`` and the link pointed there; a link to a file that does
  not exist is left alone, so that the strict build fails on it;
* the Sphinx roles of the docstrings (``:func:`ssl_context```, ``:class:`~pinset.errors.X```),
  which mkdocstrings leaves as text: shown as the code name alone, as Sphinx shows them.

Wired in by mkdocs.yml (``hooks:``); ``make docs`` runs ``mkdocs build --strict``.
"""

from __future__ import annotations

import os
import posixpath
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

CLI_PAGE = "reference/cli.md"
API_PAGE = "reference/api.md"
REPO_DIR = "repo"

# A Markdown link: [text](target#anchor), no spaces in the target.
_LINK = re.compile(r"\[(?P<text>[^\]\n]*)\]\((?P<target>[^)\s#]+)(?P<anchor>#[^)\s]*)?\)")
# A Sphinx role as mkdocstrings renders it: the role as text, its target as code.
_ROLE = re.compile(
    r":(?:py:)?(?:func|class|meth|mod|attr|data|exc|obj|const):<code>(?P<tilde>~?)(?P<name>[^<]+)</code>"
)


# -- the CLI reference -----------------------------------------------------------------------


def _command_paths() -> list[tuple[str, ...]]:
    """Every command path, depth first: (), ("pin",), ..., ("rotate", "check"), ..."""
    import click

    from pinset.cli._app import cli

    found: list[tuple[str, ...]] = []

    def walk(command: click.Command, path: tuple[str, ...]) -> None:
        found.append(path)
        if isinstance(command, click.Group):
            ctx = click.Context(command, info_name="pinset")
            for name in command.list_commands(ctx):
                sub = command.get_command(ctx, name)
                if sub is not None:
                    walk(sub, (*path, name))
        if path == ("mitm",):  # `pinset mitm serve` is dispatched by the mitm command itself
            found.append(("mitm", "serve"))

    walk(cli, ())
    return found


def cli_help(path: tuple[str, ...]) -> str:
    """What ``pinset PATH --help`` prints in an 80-column terminal (run, not imitated)."""
    env = {**os.environ, "COLUMNS": "80", "NO_COLOR": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "pinset", *path, "--help"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"pinset {' '.join(path)} --help exited {result.returncode}")
    return result.stdout.rstrip() + "\n"


def cli_reference() -> str:
    lines = [
        "# Command-line reference",
        "",
        "Generated at build time from the commands themselves: each section is exactly what",
        "`pinset COMMAND --help` prints in an 80-column terminal. The conventions every command",
        "shares (exit codes, `--json`, errors) are in [The command line](../cli.md).",
        "",
    ]
    for path in _command_paths():
        title = " ".join(("pinset", *path))
        lines += [f"## {title}", "", "```text", f"$ {title} --help", cli_help(path), "```", ""]
    return "\n".join(lines)


# -- the API reference -----------------------------------------------------------------------


def public_modules() -> list[str]:
    """The modules of docs/architecture.md's "Public surface" table, in its order."""
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    section = text.split("\n## Public surface\n", 1)[1].split("\n## ", 1)[0]
    modules: list[str] = []
    for line in section.splitlines():
        if line.startswith("| `pinset"):
            for name in re.findall(r"`(pinset[\w.]*)`", line.split("|")[1]):
                if name not in modules:
                    modules.append(name)
    return modules


def api_reference() -> str:
    lines = [
        "# Python API reference",
        "",
        "Generated at build time from the docstrings of the public modules, the ones",
        '[the architecture](../architecture.md#public-surface) lists under "Public surface".',
        "Everything else is private and may change without notice.",
        "",
    ]
    for module in public_modules():
        lines += [f"## `{module}`", "", f"::: {module}", ""]
    return "\n".join(lines)


# -- files outside docs/ ---------------------------------------------------------------------


def _repo_path(page_uri: str, target: str) -> str | None:
    """The repository path (from its root) a relative link of a page points at."""
    if "://" in target or target.startswith(("/", "mailto:")):
        return None
    if page_uri.startswith(f"{REPO_DIR}/"):  # a copied file: its links are from the root
        base = posixpath.dirname(page_uri.removeprefix(f"{REPO_DIR}/"))
        return posixpath.normpath(posixpath.join(base, target))
    joined = posixpath.normpath(posixpath.join("docs", posixpath.dirname(page_uri), target))
    return None if joined.startswith("docs/") or joined.startswith("../") else joined


def site_uri(page_uri: str, target: str) -> str | None:
    """Where a link that leaves docs/ (or a copied file's link) points in the site, if moved."""
    path = _repo_path(page_uri, target)
    if path is None or path.startswith("../"):
        return None
    if path.startswith("docs/"):
        return path.removeprefix("docs/")
    return f"{REPO_DIR}/{path}" if (ROOT / path).is_file() else None


# -- mkdocs events ---------------------------------------------------------------------------


def on_files(files: Any, config: Any) -> Any:
    from mkdocs.structure.files import File, InclusionLevel

    files.append(File.generated(config, CLI_PAGE, content=cli_reference()))
    files.append(File.generated(config, API_PAGE, content=api_reference()))
    docs_dir = Path(config["docs_dir"])
    pending = [f for f in files if f.src_uri.endswith(".md") and not f.generated_by]
    while pending:
        file = pending.pop()
        text = Path(file.abs_src_path or docs_dir / file.src_uri).read_text(encoding="utf-8")
        for match in _LINK.finditer(text):
            uri = site_uri(file.src_uri, match["target"])
            if uri is None or not uri.startswith(f"{REPO_DIR}/"):
                continue
            if files.get_file_from_path(uri) is None:
                name = uri.removeprefix(f"{REPO_DIR}/")
                copied = File.generated(config, uri, abs_src_path=str(ROOT / name))
                # Included although a dotfile (.pre-commit-hooks.yaml); a page, yet not in the nav.
                markdown = name.endswith(".md")
                included = InclusionLevel.NOT_IN_NAV if markdown else InclusionLevel.INCLUDED
                copied.inclusion = included
                files.append(copied)
                if markdown:
                    pending.append(copied)
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    page_uri = page.file.src_uri

    def relink(match: re.Match[str]) -> str:
        uri = site_uri(page_uri, match["target"])
        if uri is not None:
            target = posixpath.relpath(uri, posixpath.dirname(page_uri) or ".")
            return f"[{match['text']}]({target}{match['anchor'] or ''})"
        return match[0]

    return _LINK.sub(relink, markdown)


def sphinx_roles_as_code(html: str) -> str:
    """``:func:<code>~a.b</code>`` as ``<code>b</code>`` (``~`` keeps the last name only)."""

    def name(match: re.Match[str]) -> str:
        shown = match["name"].rsplit(".", 1)[-1] if match["tilde"] else match["name"]
        return f"<code>{shown}</code>"

    return _ROLE.sub(name, html)


def on_page_content(html: str, page: Any, config: Any, files: Any) -> str:
    return sphinx_roles_as_code(html)
