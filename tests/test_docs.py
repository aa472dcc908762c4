"""The documentation says what the code does: its examples parse, its names resolve.

Read from README.md and every docs/**/*.md, without running anything:

* every ```python block parses (``ast.parse``);
* every ``pinset.X.Y`` a code block or an inline code span names, and every ``import pinset.X`` /
  ``from pinset.X import Y`` of a python block, resolves: the longest importable module prefix
  is imported, the rest is looked up with ``getattr``;
* every ``pinset COMMAND --option`` of a ```console / ```sh block names a command that exists and
  an option that command declares (the click command's params, plus ``-h``/``--help``);
* every repository path (``tests/...``, ``pinset/...``, ``benchmarks/...``) and test file an
  inline code span names exists;
* docs/architecture.md agrees with the tree: its layers diagram is the import-linter contract of
  pyproject.toml, its "Public surface" lists exactly the modules with no underscore on their
  path, its package tree names every module and nothing else, and every path of its "Where is
  X" table exists, with the names given in brackets after it found in that file.

What cannot hold is in the allow-lists below, each with its reason.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import re
import shlex
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import pytest

from pinset.cli import _app
from pinset.cli._mitm import serve as mitm_serve

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "pinset"
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
ARCHITECTURE = ROOT / "docs" / "architecture.md"

# `pinset.<word>` spans that are file names, not modules: the policy file and what commands write.
FILE_NAMES = frozenset({"pinset.toml", "pinset.json", "pinset.sarif", "pinset.xml"})

# Dotted names a doc shows on purpose although they do not resolve, one per line with the
# reason in a comment (a removed name a migration note quotes, say). Empty today.
UNRESOLVED_ALLOWED: frozenset[str] = frozenset()

# `pinset ...` command lines a doc shows on purpose although they are wrong, keyed by
# "FILE: the line after `$ `", with the reason in a comment. Empty today: the usage errors
# docs/cli.md shows are wrong values (`--format jsn`), not wrong options.
BAD_COMMANDS_ALLOWED: frozenset[str] = frozenset()

_FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?P<lang>[\w+-]*)[ \t]*$")
_DOTTED = re.compile(r"(?<![\w./-])pinset(?:\.[A-Za-z_]\w*)+(?::[A-Za-z_]\w*)?")
# `Class.attribute` in an inline code span, for the classes the public modules export.
_MEMBER = re.compile(r"(?<![\w.])([A-Z]\w*)\.([A-Za-z_]\w*)")
CLASS_MODULES = (
    "pinset",
    "pinset.pins",
    "pinset.policy",
    "pinset.verdict",
    "pinset.status",
    "pinset.policyfile",
    "pinset.formats",
    "pinset.audit",
    "pinset.chain",
    "pinset.enforce",
    "pinset.reporting",
    "pinset.testing",
)
_INLINE = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")


@dataclass(frozen=True)
class Block:
    """A fenced code block: where it starts, its language and its dedented text."""

    path: Path
    line: int
    lang: str
    text: str

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def _blocks(path: Path) -> Iterator[Block]:
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        match = _FENCE.match(lines[i])
        if match is None:
            i += 1
            continue
        start, body = i + 1, []
        i += 1
        while i < len(lines) and lines[i].strip() != "```":
            body.append(lines[i])
            i += 1
        yield Block(path, start, match["lang"], textwrap.dedent("\n".join(body)))
        i += 1


def _prose(path: Path) -> Iterator[tuple[int, str]]:
    """The lines outside code blocks, numbered from 1."""
    inside = False
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if _FENCE.match(line) or (inside and line.strip() == "```"):
            inside = not inside
            continue
        if not inside:
            yield number, line


# Subcommands that are not those of a click.Group: `pinset mitm -- CMD` runs CMD, and
# `pinset mitm serve` is dispatched by the mitm command itself.
OTHER_SUBCOMMANDS: dict[tuple[str, str], click.Command] = {("mitm", "serve"): mitm_serve}

BLOCKS = [block for path in DOCS for block in _blocks(path)]
PYTHON = [block for block in BLOCKS if block.lang == "python"]
SHELL = [block for block in BLOCKS if block.lang in ("console", "sh")]


def test_the_docs_are_found() -> None:
    assert len(DOCS) > 10
    assert len(PYTHON) > 10
    assert len(SHELL) > 50


@pytest.mark.parametrize("block", PYTHON, ids=lambda b: b.where)
def test_python_blocks_parse(block: Block) -> None:
    try:
        ast.parse(block.text, filename=block.where)
    except SyntaxError as exc:
        pytest.fail(f"{block.where} (+{exc.lineno}): {exc.msg}")


# -- names -----------------------------------------------------------------------------------


def _resolves(dotted: str) -> bool:
    parts = dotted.replace(":", ".").split(".")
    for end in range(len(parts), 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:end]))
        except ModuleNotFoundError:
            continue
        for name in parts[end:]:
            # A dataclass field without a default is no class attribute, yet a name to document.
            fields = {f.name for f in dataclasses.fields(obj)} if _is_dataclass(obj) else set()
            if name not in fields and not hasattr(obj, name):
                return False
            obj = getattr(obj, name, None)
        return True
    return False


def _is_dataclass(obj: object) -> bool:
    return isinstance(obj, type) and dataclasses.is_dataclass(obj)


def _exported_classes() -> dict[str, str]:
    """Class name -> the first public module (of CLASS_MODULES) that exports it."""
    found: dict[str, str] = {}
    for module in CLASS_MODULES:
        for name in importlib.import_module(module).__all__:
            if name[:1].isupper() and not name.isupper():
                found.setdefault(name, module)
    return found


def _imported_names(block: Block) -> Iterator[str]:
    for node in ast.walk(ast.parse(block.text)):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names if alias.name.startswith("pinset"))
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "pinset":
            yield from (f"{node.module}.{alias.name}" for alias in node.names if alias.name != "*")


def _named() -> Iterator[tuple[str, str]]:
    """(where, dotted name) for every pinset name the docs mention as code."""
    for block in BLOCKS:
        for match in _DOTTED.finditer(block.text):
            yield block.where, match.group()
        if block.lang == "python":
            for name in _imported_names(block):
                yield block.where, name
    classes = _exported_classes()
    for path in DOCS:
        for number, line in _prose(path):
            for span in _INLINE.findall(line):
                where = f"{path.relative_to(ROOT)}:{number}"
                for match in _DOTTED.finditer(span):
                    yield where, match.group()
                for match in _MEMBER.finditer(span):
                    if match[1] in classes:
                        yield where, f"{classes[match[1]]}.{match[1]}.{match[2]}"


def test_every_pinset_name_in_the_docs_resolves() -> None:
    seen: dict[str, list[str]] = {}
    for where, name in _named():
        if name in FILE_NAMES or name.rsplit(".", 1)[-1] in ("toml", "json", "py"):
            continue
        seen.setdefault(name, []).append(where)
    unresolved = [
        f"{wheres[0]}: {name}"
        for name, wheres in sorted(seen.items())
        if name not in UNRESOLVED_ALLOWED and not _resolves(name)
    ]
    assert len(seen) > 30
    assert unresolved == []


# -- command lines ---------------------------------------------------------------------------


def _command_lines(block: Block) -> Iterator[str]:
    """The command lines of a block, continuation lines joined: `$ ...` in console, all in sh."""
    pending = ""
    for raw in block.text.splitlines():
        if pending:
            line = pending + " " + raw.strip()
        elif block.lang == "sh":
            line = raw.strip()
        elif raw.startswith("$ "):
            line = raw[2:].strip()
        else:
            continue
        if line.endswith("\\"):
            pending = line[:-1].rstrip()
            continue
        pending = ""
        if line and not line.startswith("#"):
            yield line


def _pinset_invocations(line: str) -> Iterator[list[str]]:
    """The argument lists given to `pinset` on a shell line (after `pinset`, up to `--`)."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|()<>")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    try:
        tokens = list(lexer)
    except ValueError:  # an unbalanced quote in a shown command: nothing to check
        return
    args: list[str] | None = None
    for token in [*tokens, ";"]:
        if args is None:
            if Path(token).name == "pinset":
                args = []
            continue
        if token in (";", "&&", "||", "|", "&", "(", ")", ">", "<", ">>", "2>", "--"):
            yield args
            args = None
            continue
        args.append(token)


def _options(command: click.Command) -> set[str]:
    ctx = click.Context(command, info_name="pinset")
    names = {"-h", "--help"}
    for param in command.get_params(ctx):
        names.update(param.opts)
        names.update(param.secondary_opts)
    return names


def _problems(args: list[str]) -> Iterator[str]:
    command: click.Command = _app.cli
    path = "pinset"
    options = _options(command)
    for arg in args:
        if arg.startswith("-") and arg != "-":
            option = arg.split("=", 1)[0]
            # -abc is -a -b -c when each is a one-letter option.
            flags = {f"-{letter}" for letter in option[1:]} if option[1] != "-" else {option}
            if option not in options and not flags <= options:
                yield f"{option} is not an option of `{path}`"
            continue
        sub = OTHER_SUBCOMMANDS.get((path.rsplit(" ", 1)[-1], arg))
        if sub is None and isinstance(command, click.Group):
            sub = command.get_command(click.Context(command, info_name=path), arg)
            if sub is None:
                yield f"{arg} is not a command of `{path}`"
                return
        if sub is not None:
            command, path = sub, f"{path} {arg}"
            options = _options(command)


def test_every_pinset_command_line_in_the_docs_is_valid() -> None:
    wrong: list[str] = []
    count = 0
    for block in SHELL:
        for line in _command_lines(block):
            for args in _pinset_invocations(line):
                count += 1
                key = f"{block.path.relative_to(ROOT)}: {line}"
                problems = list(_problems(args))
                if problems and key not in BAD_COMMANDS_ALLOWED:
                    wrong.append(f"{block.where}: {line}\n    " + "; ".join(problems))
    assert count > 100
    assert wrong == [], "\n".join(wrong)


# -- docs/architecture.md --------------------------------------------------------------------


def _section(title: str) -> list[str]:
    """The lines of architecture.md's `## title` section."""
    text = ARCHITECTURE.read_text(encoding="utf-8")
    body = text.split(f"\n## {title}\n", 1)[1]
    return body.split("\n## ", 1)[0].splitlines()


def _first_block(lines: list[str]) -> list[str]:
    start = next(i for i, line in enumerate(lines) if line.startswith("```"))
    end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("```"))
    return lines[start + 1 : end]


def _columns(line: str) -> tuple[str, str]:
    """The first column of a diagram or tree line (up to two spaces) and the rest."""
    first, _, rest = line.strip().partition("  ")
    return first.strip(), rest.strip()


def test_the_layers_diagram_is_the_import_linter_contract() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    (contract,) = [c for c in config["tool"]["importlinter"]["contracts"] if c["type"] == "layers"]
    drawn = [_columns(line.replace("└", " "))[0] for line in _first_block(_section("Layers"))]
    assert drawn == contract["layers"]


def _public_modules() -> set[str]:
    """Every module of the tree with no underscore name on its dotted path."""
    found = set()
    for path in SRC.rglob("*.py"):
        parts = ("pinset", *path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if "migrations" not in parts and not any(part.startswith("_") for part in parts):
            found.add(".".join(parts))
    return found


def test_the_public_surface_section_lists_every_public_module() -> None:
    listed = set()
    for line in _section("Public surface"):
        if line.startswith("| `pinset"):
            listed.update(re.findall(r"`(pinset[\w.]*)`", line.split("|")[1]))
    assert sorted(listed) == sorted(_public_modules())


def _tree() -> Iterator[tuple[str, str]]:
    """(package directory, description) for every line of the Packages tree."""
    parents: list[tuple[int, str]] = []
    current = ""
    for line in _first_block(_section("Packages")):
        indent = len(line) - len(line.lstrip())
        first, rest = _columns(line)
        if indent < 20:  # an entry, not a continuation line
            while parents and parents[-1][0] >= indent:
                parents.pop()
            prefix = parents[-1][1] if parents else ""
            if first.endswith("/"):
                current = prefix + first
                parents.append((indent, current))
                yield current, rest
            else:
                current = prefix
                yield current, f"{first} {rest}"
        else:
            yield current, line.strip()


def test_every_file_in_the_packages_tree_exists_and_every_module_is_named() -> None:
    named: set[Path] = set()
    packages: set[Path] = set()
    for directory, text in _tree():
        packages.add(SRC / directory)
        for name in re.findall(r"[\w/]+\.(?:py|txt)\b|\b\w+/(?=[,\s]|$)", text):
            path = SRC / directory / name
            assert path.exists(), f"docs/architecture.md, Packages: {directory}{name}"
            named.add(path)
    named.update(package / "__init__.py" for package in packages)  # a package names its own
    # Alembic's migration scripts are data the collector runs, not modules anyone imports.
    modules = {
        path for path in SRC.rglob("*.py") if "migrations" not in path.relative_to(SRC).parts
    }
    assert sorted(str(p.relative_to(SRC)) for p in modules - named) == []
    with_init = {p.parent for p in modules if p.name == "__init__.py" and p.parent != SRC}
    assert sorted(str(p.relative_to(SRC)) for p in with_init - packages) == []


def _where_is_cells() -> Iterator[str]:
    for line in _section("Where is X"):
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) == 2 and cells[1] not in ("file", "---"):
            yield cells[1]


def _repo_path(name: str) -> Path:
    top = name.split("/", 1)[0]
    in_repo = top in ("scripts", "tests", "benchmarks", "docs") or name == "pyproject.toml"
    return ROOT / name if in_repo else SRC / name


def test_every_path_and_name_of_the_where_is_x_table_exists() -> None:
    cells = list(_where_is_cells())
    assert len(cells) > 40
    checked = 0
    for cell in cells:
        # `path` or `path` (`name`, `Class.name`): each name must occur in that file.
        for path_text, names in re.findall(r"`([\w./]+(?:\.\w+|/))`(?: \(([^)]*)\))?", cell):
            path = _repo_path(path_text)
            assert path.exists(), f"Where is X: {path_text} does not exist"
            checked += 1
            if not names or path.is_dir():
                continue
            source = path.read_text(encoding="utf-8")
            for name in re.findall(r"`([^`]+)`", names):
                word = re.split(r"[.\[ ]", name.strip("[]"))[-1]
                assert re.search(rf"\b{re.escape(word)}\b", source), f"{name} not in {path_text}"
    assert checked > 50


# -- files the docs point at -----------------------------------------------------------------

# A path in an inline code span: under one of the repository's own trees, or a test file.
_REPO_PATH = re.compile(r"^(?:tests|benchmarks|scripts|docs|\.ci|pinset|src/pinset)/[\w./*-]+$")
_TEST_FILE = re.compile(r"^test_[\w*]+\.py$")


def test_every_repository_path_in_the_docs_exists() -> None:
    missing: list[str] = []
    checked = 0
    for path in DOCS:
        for number, line in _prose(path):
            for span in _INLINE.findall(line):
                span = span.strip()
                if _REPO_PATH.match(span):
                    name = "src/" + span if span.startswith("pinset/") else span
                    base = ROOT
                elif _TEST_FILE.match(span):
                    name, base = span, ROOT / "tests"
                else:
                    continue
                checked += 1
                if not list(base.glob(name.rstrip("/"))):
                    missing.append(f"{path.relative_to(ROOT)}:{number}: {span}")
    assert checked > 40
    assert missing == []
