"""Every ```console block of the docs is run, and its output must still be what the page shows.

A console block is a list of ``$ command`` lines, each followed by the output it printed. Each
page's blocks run in order in one fresh directory of the page's own, in which ``tests``,
``docs``, ``benchmarks`` and ``scripts`` link to the repository's (so ``pinset audit
tests/fixtures/...`` works and what a command writes stays in that directory). Commands run in
one ``bash`` a block, with this venv's ``pinset`` first on the PATH, standard output and error
together, no terminal: what a reader sees when piping. ``echo $?`` after a command prints its
exit status as in a shell.

The output is compared line by line after two normalisations only: trailing spaces and blank
lines at the end are dropped, and the path of the page's directory reads as ``.``. A command
that prints today's date must be given ``--now`` / ``--at`` in the page.

Markers, an HTML comment on the line before a block (invisible on the site):

* ``<!-- docs-test: skip REASON -->``: the block is not run; REASON says why (a loopback
  server, keys made at random, a long benchmark, ...). A block is either run or skipped with a
  reason: there is no third kind.
* ``<!-- docs-test: cwd DIR -->``: the block runs in DIR (of the page's directory), for
  commands shown run next to their files (``tests/fixtures/ct``).
* ``<!-- docs-test: file NAME -->`` before any other fenced block (```toml, ```xml, ...): its
  text is written to NAME in the page's directory before the next console block runs, so that
  a page's example files are the ones its commands read.

``python tests/test_docs_run.py`` prints the counts: blocks and commands run, blocks skipped by
reason. ``python tests/test_docs_run.py --update docs/PAGE.md...`` runs those pages' blocks and
writes what each command printed under it, in place: for a change that meant to change an
output (read the diff before committing it).
"""

from __future__ import annotations

import collections
import contextlib
import difflib
import os
import re
import signal
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
LINKED = ("tests", "docs", "benchmarks", "scripts")

_FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?P<lang>[\w+-]*)[ \t]*$")
_MARKER = re.compile(r"^<!-- docs-test: (?P<verb>skip|file|cwd) ?(?P<arg>.*?) ?-->$")
# Between two commands of a block; the digits say which command's output follows.
_SEPARATOR = "\x1edocs-test-command-"


@dataclass(frozen=True)
class Block:
    path: Path
    line: int
    lang: str
    text: str
    marker: tuple[str, str] | None  # (verb, argument) of the comment before the block

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"

    @property
    def skip_reason(self) -> str | None:
        return self.marker[1] if self.marker and self.marker[0] == "skip" else None


@dataclass(frozen=True)
class Command:
    line: str  # as shown after `$ `, continuation lines joined
    expected: str


def blocks(path: Path) -> Iterator[Block]:
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        match = _FENCE.match(lines[i])
        if match is None:
            i += 1
            continue
        before = next((lines[j].strip() for j in range(i - 1, -1, -1) if lines[j].strip()), "")
        found = _MARKER.match(before)
        marker = (found["verb"], found["arg"]) if found else None
        start, body = i + 1, []
        i += 1
        while i < len(lines) and lines[i].strip() != "```":
            body.append(lines[i])
            i += 1
        yield Block(path, start, match["lang"], textwrap.dedent("\n".join(body)), marker)
        i += 1


def commands(block: Block) -> list[Command]:
    found: list[Command] = []
    line: str | None = None
    output: list[str] = []
    continued = False
    for raw in block.text.splitlines():
        if continued:
            assert line is not None
            line += "\n" + raw
            continued = raw.endswith("\\")
        elif raw.startswith("$ "):
            if line is not None:
                found.append(Command(line, "\n".join(output)))
            line, output = raw[2:], []
            continued = raw.endswith("\\")
        else:
            output.append(raw)
    if line is not None:
        found.append(Command(line, "\n".join(output)))
    return found


def normalise(text: str, workdir: Path) -> str:
    for form in {str(workdir.resolve()), str(workdir)}:
        text = text.replace(form + "/", "").replace(form, ".")
    lines = [line.rstrip() for line in text.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    while lines and not lines[0]:
        lines.pop(0)
    return "\n".join(lines)


def environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PINSET_", "COLUMNS"))}
    env.update(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        PYTHONUNBUFFERED="1",
        NO_COLOR="1",
        TERM="dumb",
        LC_ALL="C.UTF-8",
        TZ="UTC",
    )
    return env


def run_block(block: Block, workdir: Path) -> list[tuple[Command, str]]:
    """(command, normalised output) for each command of a block, run in one bash."""
    shown = commands(block)
    cwd = workdir / block.marker[1] if block.marker and block.marker[0] == "cwd" else workdir
    script = ["__rc=0"]
    for number, command in enumerate(shown):
        script += [
            f"printf '\\n{_SEPARATOR}{number}\\n'; (exit $__rc)",
            command.line,
            "__rc=$?",
        ]
    # A session of its own: whatever a block leaves running (a server started with `&`, a
    # command that never returns) is killed with it, never left behind.
    with subprocess.Popen(
        ["bash", "-c", "\n".join(script)],
        cwd=cwd,
        env=environment(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    ) as process:
        try:
            stdout, _ = process.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            stdout = f"{block.where}: timed out after 120 s"
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    parts = re.split(rf"\n{_SEPARATOR}\d+\n", "\n" + stdout)[1:]
    assert len(parts) == len(shown), f"{block.where}: bash stopped early:\n{stdout}"
    return [(c, normalise(out, workdir)) for c, out in zip(shown, parts, strict=True)]


def page_blocks(path: Path) -> list[Block]:
    return list(blocks(path))


def console_blocks() -> list[Block]:
    return [b for path in DOCS for b in blocks(path) if b.lang == "console"]


PAGES = [path for path in DOCS if any(b.lang == "console" for b in blocks(path))]


def run_page(page: Path) -> Iterator[tuple[Block, list[tuple[Command, str]]]]:
    """Each run console block of ``page`` with (command, normalised output) of its commands."""
    with tempfile.TemporaryDirectory(prefix="pinset-docs-") as name:
        workdir = Path(name)
        for linked in LINKED:
            (workdir / linked).symlink_to(ROOT / linked)
        for block in page_blocks(page):
            if block.marker and block.marker[0] == "file":
                (workdir / block.marker[1]).write_text(block.text + "\n", encoding="utf-8")
                continue
            if block.lang != "console" or block.skip_reason is not None:
                continue
            yield block, run_block(block, workdir)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_console_blocks_of_a_page_print_what_it_shows(page: Path) -> None:
    drifted: list[str] = []
    for block, ran in run_page(page):
        for command, actual in ran:
            expected = normalise(command.expected, Path("/nonexistent"))
            if actual != expected:
                diff = difflib.unified_diff(
                    expected.splitlines(), actual.splitlines(), "shown", "printed", lineterm=""
                )
                drifted.append(f"{block.where}: $ {command.line}\n" + "\n".join(diff))
    assert drifted == [], "\n\n".join(drifted)


def update(page: Path) -> int:
    """Write what each run command of ``page`` printed under it; the number of blocks changed."""
    lines = page.read_text(encoding="utf-8").splitlines()
    changed = []
    for block, ran in run_page(page):
        body = []
        for command, actual in ran:
            body.append(f"$ {command.line}")
            body.extend(actual.splitlines())
        old = lines[block.line : block.line + len(block.text.splitlines())]
        indent = _FENCE.match(lines[block.line - 1])["indent"]  # type: ignore[index]
        new = [f"{indent}{line}" if line else line for line in "\n".join(body).splitlines()]
        if [line.rstrip() for line in old] != new:
            changed.append((block.line, len(old), new))
    for start, length, new in reversed(changed):
        lines[start : start + length] = new
    if changed:
        page.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return len(changed)


def test_every_console_block_is_run_or_skipped_with_a_reason() -> None:
    unexplained = [
        b.where
        for b in console_blocks()
        if b.marker is not None and b.marker[0] == "skip" and not b.marker[1].strip()
    ]
    misplaced = [
        b.where
        for path in DOCS
        for b in blocks(path)
        if b.marker is not None and b.marker[0] == "file" and b.lang == "console"
    ]
    assert unexplained == []
    assert misplaced == []
    run = [b for b in console_blocks() if b.skip_reason is None]
    # Every block that is not skipped has at least one command to run.
    assert [b.where for b in run if not commands(b)] == []
    assert len(run) >= 25


def counts() -> str:
    all_blocks = console_blocks()
    run = [b for b in all_blocks if b.skip_reason is None]
    reasons = collections.Counter(b.skip_reason for b in all_blocks if b.skip_reason is not None)
    lines = [
        f"console blocks: {len(all_blocks)}; run: {len(run)} "
        f"({sum(len(commands(b)) for b in run)} commands); "
        f"skipped: {sum(reasons.values())}"
    ]
    lines += [f"  {n:3}  {reason}" for reason, n in reasons.most_common()]
    return "\n".join(lines)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--update"]:
        for name in sys.argv[2:]:
            print(f"{name}: {update(Path(name).resolve())} block(s) rewritten")
    else:
        print(counts())
