"""Every ```console block of the docs is run, and its output must still be what the page shows.

A console block is a list of ``$ command`` lines, each followed by the output it printed. A
page is run as a reader runs it: in order, in one ``bash`` (the reader's terminal) that lives as
long as the page, in a fresh directory of the page's own in which ``tests``, ``docs``,
``benchmarks`` and ``scripts`` link to the repository's (so ``pinset audit tests/fixtures/...``
works and what a command writes stays in that directory; so do ``action.yml``,
``.pre-commit-hooks.yaml`` and ``ci``, and ``.venv`` links to the virtual environment running
the test, for ``.venv/bin/python benchmarks/...``). Each block starts in that directory (a
``cd`` holds until the block ends); variables, exported names and background jobs carry over
from block to block. This venv's ``pinset`` is first on the PATH; standard output and error are
read together, with no terminal and no standard input: what a reader sees when piping.
``echo $?`` prints the status of the command before, as in a shell.

A command that ends in ``&`` is a server the page starts and keeps (``python serve.py &``,
``pinset collector serve ... &``): it runs in the background with its own output, the runner
waits until it has printed as many lines as the page shows under it and until the loopback
ports it names (``--port N``, openssl's ``-accept N``, ``127.0.0.1:N`` in its output) accept
connections, and that is its output. A new server on a port an earlier one of the page holds
replaces it, as a reader stops one before starting the next. Everything the page started is
killed when it ends.

The output is compared line by line after two normalisations: trailing spaces and blank lines
at the end are dropped, and the path of the page's directory reads as ``.``. A command that
prints or judges by today's date must be given ``--now`` / ``--at`` in the page, unless its
block varies:

Markers, HTML comments on the lines before a block (invisible on the site; several may stand
one a line):

* ``<!-- docs-test: skip REASON -->``: the block is not run; REASON says why. A block is either
  run or skipped with a reason: there is no third kind.
* ``<!-- docs-test: vary REASON -->``: the block prints what differs from run to run (keys made
  at random, the ports and certificate dates of a loopback server). Its output is compared with
  those values (`VOLATILE`) taken out: the text around them must be the same, and each random
  key, pin, identifier or port must be shown the same way everywhere on the page (a pin printed
  by ``keygen`` must be the pin ``cat pinset.toml`` shows two steps later, and two different
  keys must not be shown as one; a PEM block counts as one value, ``port=N`` names a port).
  Dates, times (an HTTP ``date:`` header's too), durations, the version of the Python that
  runs the test (``Python 3.11.7``), the reason phrase of an HTTP status line (which that
  Python words) and the names of temporary files (``/tmp/NAME``) may be
  any. What a varying block bound is substituted back: a later command,
  or an example file, that uses a shown value gets the value of this run (``pinset check
  127.0.0.1:33527`` goes to the port the server took; the base64 of a bound pin, as in curl's
  ``sha256//BASE64``, is its run's).
  A block that does not vary is compared strictly, after the values bound earlier on the page
  are read as shown.
* ``<!-- docs-test: figures REASON -->``: like ``vary``, and every number may be any as well
  (``20,000``, ``3.11.7`` and ``21.9x`` are one number each), and so may the width of the
  spaces that align them: measurements (a benchmark's timings and ratios), whose shape alone
  the page can promise.
* ``<!-- docs-test: today REASON -->``: the dates of the block (the text of a ``file`` block,
  the commands of a console block) move by the days from `DOCS_DAY` to the day the test runs:
  for a rehearsal whose policy, written on the page, must expire some months after the
  certificates the page makes that day. What such a block prints is dated by the run, so it
  varies (``vary``), and so do the outputs of the commands that read its file.
* ``<!-- docs-test: cwd DIR -->``: the block runs in DIR (of the page's directory), for
  commands shown run next to their files (``tests/fixtures/ct``).
* ``<!-- docs-test: env NAME=VALUE... -->``: the block's commands run with these variables
  exported, and the page's shell has its own values back after the block: settings a reader
  does not need to see (``PINSET_BENCH_QUICK=1``: the benchmarks' quick mode, whose figures
  the page does not promise anyway). A bare ``NAME`` passes the test environment's value,
  which the runner otherwise drops with every other ``PINSET_*`` variable
  (``PINSET_TEST_POSTGRES_URL``): if the test environment lacks it the page fails, naming it,
  rather than pass without running the block.
* ``<!-- docs-test: venv REQUIREMENTS -->``: the block runs in a fresh virtual environment
  with only REQUIREMENTS installed (pip requirements, ``pinset`` being the wheel built from
  this tree; ``pinset[cli]``, ``pinset click``, ``pipx``), offline: ``tests/test_packaging.py``
  builds the wheel and a wheelhouse and runs the page's ``venv`` blocks, in order, in one
  shell (``run_page(..., venv=...)``); the docs test counts them as run there. Such a block
  makes what it reads, or reads what earlier ``venv`` blocks of its page made.
* ``<!-- docs-test: file NAME -->`` before any other fenced block (```toml, ```python, ...): its
  text is written to NAME in the page's directory when the page reaches it, so that a page's
  example files are the ones its commands read.

``python tests/test_docs_run.py`` prints the counts: blocks and commands run, blocks skipped by
reason. ``python tests/test_docs_run.py --update docs/PAGE.md...`` runs those pages and writes
what each command printed under it, in place, with the values bound earlier on the page written
as shown: for a change that meant to change an output (read the diff before committing it).
"""

from __future__ import annotations

import collections
import contextlib
import datetime
import difflib
import functools
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
LINKED = ("tests", "docs", "benchmarks", "scripts", "action.yml", ".pre-commit-hooks.yaml", "ci")
# The day the pages' outputs were made. A block marked `today` is run with its dates moved by
# the days since: a rehearsal whose policy, written on the page, expires on 2027-03-01 and whose
# certificates are made on the day the test runs keeps the months between the two on any later
# day.
DOCS_DAY = datetime.date(2026, 12, 6)
COMMAND_TIMEOUT = 180.0  # seconds a foreground command may take
SERVER_TIMEOUT = 60.0  # seconds a background server may take to print its lines and listen

_FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?P<lang>[\w+-]*)[ \t]*$")
_MARKER = re.compile(
    r"^<!-- docs-test: (?P<verb>skip|file|cwd|vary|figures|today|env|venv) ?(?P<arg>.*?) ?-->$"
)
_DONE = "\x1edocs-test-done"

# Values that differ from run to run. The first group is bound (one shown value stands for one
# value of the run, everywhere on the page); the second may be any value of its kind.
_BOUND = {
    # A whole PEM block (a key, a certificate) is one value.
    "pem": r"-----BEGIN [A-Z ]+-----\n[A-Za-z0-9+/=\n]+?\n-----END [A-Z ]+-----",
    # A pin, or the start of one shortened with an ellipsis (a summary line).
    "pin": r"sha(?:256|1)/(?:[A-Za-z0-9+/]{27,43}=|[A-Za-z0-9+/]{4,42}…)",
    # a key or digest in base64: a bare SHA-256, a line of a PEM body (SubjectPublicKeyInfo)
    "base64": r"(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{40,}={0,2}(?![A-Za-z0-9+/=])",
    "uuid": r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b",
    "hex": r"\b(?:0x)?[0-9a-fA-F]{12,}\b",
    "port": r"(?:(?<=127\.0\.0\.1:)|(?<=localhost:)|(?<=\]:)|(?<=port )|(?<=\"port\": )"
    r"|(?<=[Pp]ort=))[1-9]\d{3,4}\b"  # and any URL's port, before its path:
    r"|(?<=\w:)[1-9]\d{3,4}(?=/)",
}
_FREE = {
    "datetime": r"\b\d{4}-\d\d-\d\d[T ]\d\d:\d\d(?::\d\d(?:\.\d+)?)?(?:Z|[+-]\d\d:?\d\d)?",
    "date": r"\b\d{4}-\d\d-\d\d\b",
    "clock": r"\b(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ \d]\d [ \d]?\d\d:\d\d\b",
    "duration": r"(?<![\w.])\d+(?:\.\d+)? ?(?:ms|µs|us|ns|s)\b",
    # The reason phrase of an HTTP status line, which Python's http module words for the server
    # (3.13 follows RFC 9110: "422 Unprocessable Content", 3.11 "422 Unprocessable Entity").
    "reason": r"(?<=HTTP/1\.1 \d{3} )[A-Z][A-Za-z -]*[a-z]",
    # The Python that runs the test (pipx: "installed using Python 3.11.7").
    "python": r"(?<=Python )3\.\d+\.\d+\b",
    "httpdate": r"\b(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|"
    r"Oct|Nov|Dec) \d{4} \d\d:\d\d:\d\d GMT\b",  # an HTTP Date header (RFC 9110)
    "tempname": r"(?<=/tmp/)[\w.-]+",
}
# 1.004, 20,000, 3.11.7 and the ratio 21.9x are one number each.
_NUMBER = {"number": r"(?<![\w.])[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)*(?:e[-+]?\d+)?x?(?![\w])"}
VOLATILE = {**_BOUND, **_FREE}


def _scanner(kinds: dict[str, str]) -> re.Pattern[str]:
    return re.compile("|".join(f"(?P<{name}>{pattern})" for name, pattern in kinds.items()))


VARY = _scanner(VOLATILE)
FIGURES = _scanner({**_BOUND, **_FREE, **_NUMBER})
_BOUND_ONLY = _scanner(_BOUND)
_PIN = re.compile(_BOUND["pin"])


@dataclass(frozen=True)
class Block:
    path: Path
    line: int
    lang: str
    text: str
    markers: tuple[tuple[str, str], ...]  # (verb, argument) of the comments before the block

    @property
    def where(self) -> str:
        shown = self.path.relative_to(ROOT) if self.path.is_relative_to(ROOT) else self.path
        return f"{shown}:{self.line}"

    def marked(self, verb: str) -> str | None:
        return next((arg for found, arg in self.markers if found == verb), None)

    @property
    def marker(self) -> tuple[str, str] | None:
        return self.markers[0] if self.markers else None

    @property
    def skip_reason(self) -> str | None:
        return self.marked("skip")

    @property
    def scanner(self) -> re.Pattern[str] | None:
        """How the block's output is matched: None (strictly), or the values that may differ."""
        if self.marked("figures") is not None:
            return FIGURES
        return VARY if self.marked("vary") is not None else None


@dataclass(frozen=True)
class Command:
    line: str  # as shown after `$ `, continuation lines joined
    expected: str

    @property
    def background(self) -> bool:
        line = self.line.rstrip()
        return line.endswith("&") and not line.endswith("&&")


def blocks(path: Path) -> Iterator[Block]:
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        match = _FENCE.match(lines[i])
        if match is None:
            i += 1
            continue
        markers: list[tuple[str, str]] = []
        j = i - 1
        while j >= 0 and not lines[j].strip():
            j -= 1
        while j >= 0 and (found := _MARKER.match(lines[j].strip())) is not None:
            markers.insert(0, (found["verb"], found["arg"]))
            j -= 1
        start, body = i + 1, []
        i += 1
        while i < len(lines) and lines[i].strip() != "```":
            body.append(lines[i])
            i += 1
        yield Block(path, start, match["lang"], textwrap.dedent("\n".join(body)), tuple(markers))
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


# Not the reader's terminal: pinset's own settings, the test's terminal width, and the marks of a
# CI run (pytest, run by a page, writes its summary lines whole when it sees `CI`).
_DROPPED = {"COLUMNS", "CI", "BUILD_NUMBER"}


def environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PINSET_") and k not in _DROPPED}
    env.update(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        PYTHONUNBUFFERED="1",
        NO_COLOR="1",
        TERM="dumb",
        LC_ALL="C.UTF-8",
        TZ="UTC",
    )
    return env


@dataclass
class Bindings:
    """Which value of this run each value a page shows stands for (and back)."""

    shown_of: dict[str, str] = field(default_factory=dict)  # run's value -> shown value
    run_of: dict[str, str] = field(default_factory=dict)  # shown value -> run's value

    def to_run(self, text: str, shift_days: int = 0) -> str:
        """``text`` (a command, an example file) with the shown values of this run's values,
        and its dates ``shift_days`` later."""
        if shift_days:
            text = _DATE.sub(lambda m: str(_shifted(m[0], shift_days)), text)
        run_of = {s: r for s, r in self.run_of.items() if s != r}
        if not run_of:
            return text
        pattern = re.compile("|".join(re.escape(shown) for shown in sorted(run_of, key=len)[::-1]))
        return pattern.sub(lambda m: run_of[m[0]], text)

    def as_shown(self, text: str) -> str:
        """``text`` printed by this run with the values bound so far written as shown."""
        return _BOUND_ONLY.sub(lambda m: self.shown_of.get(m[0], m[0]), text)

    def match(self, shown: str, printed: str, scanner: re.Pattern[str] | None) -> str | None:
        """None if ``printed`` is what the page shows, else why not; binds what it can."""
        printed = self.as_shown(printed) if scanner is None else printed
        if scanner is None:
            return None if printed == shown else "the output differs"
        shown_parts, printed_parts = _split(shown, scanner), _split(printed, scanner)
        if [p[0] for p in shown_parts] != [p[0] for p in printed_parts]:
            return "the output differs"
        new: dict[str, str] = {}
        for (kind, want), (_, got) in zip(shown_parts, printed_parts, strict=True):
            if scanner is FIGURES and kind == "":  # the spaces that align numbers in columns
                want, got = re.sub(r"[ \t]+", " ", want), re.sub(r"[ \t]+", " ", got)
            if kind == "" and want != got:
                return "the output differs"
            if kind not in _BOUND:
                continue
            was = self.shown_of.get(got, new.get(got))
            taken = self.run_of.get(want) or next((r for r, s in new.items() if s == want), None)
            if was is not None and was != want:
                return f"{got} was shown as {was} before, here as {want}"
            if taken is not None and taken != got:
                return f"{want} stood for {taken} before, here for {got}"
            new[got] = want
        for got, want in new.items():
            self.shown_of[got], self.run_of[want] = want, got
            if got.endswith("=") and _PIN.fullmatch(got) and _PIN.fullmatch(want):  # its base64 too
                got_key, want_key = got.split("/", 1)[1], want.split("/", 1)[1]
                self.shown_of.setdefault(got_key, want_key)
                self.run_of.setdefault(want_key, got_key)
        return None


_DATE = re.compile(r"(?<!\d)\d{4}-\d\d-\d\d(?!\d)")


def _shifted(day: str, days: int) -> datetime.date:
    return datetime.date.fromisoformat(day) + datetime.timedelta(days=days)


def shift_days() -> int:
    """The days from `DOCS_DAY` to today (UTC): what the dates of a ``today`` block move by."""
    return (datetime.datetime.now(datetime.timezone.utc).date() - DOCS_DAY).days


def _split(text: str, scanner: re.Pattern[str]) -> list[tuple[str, str]]:
    """``text`` as (kind, text) parts: kind "" for the fixed text, else the value's kind."""
    parts: list[tuple[str, str]] = []
    at = 0
    for found in scanner.finditer(text):
        parts.append(("", text[at : found.start()]))
        parts.append((found.lastgroup or "", found[0]))
        at = found.end()
    parts.append(("", text[at:]))
    return parts


class Shell:
    """The reader's terminal for one page: one ``bash``, its own session, killed at the end."""

    def __init__(self, workdir: Path, logs: Path, env: dict[str, str] | None = None) -> None:
        self.workdir, self.logs = workdir, logs
        self.log = logs / "shell.log"
        self._log_file = self.log.open("wb")
        self.servers: dict[int, int] = {}  # port -> process of the server holding it
        self._count = 0
        self._start = self._offset = 0  # where the output of the command running starts
        self.process = subprocess.Popen(
            ["bash", "--noprofile", "--norc"],
            cwd=workdir,
            env={**environment(), **(env or {})},
            stdin=subprocess.PIPE,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._send("__rc=0")

    def export(self, values: dict[str, str]) -> None:
        """Export ``values`` (bash words: ``"$PATH"`` expands) until ``restore``."""
        for name, value in values.items():
            self._send(f"__saved_{name}=$(declare -p {name} 2>/dev/null); export {name}={value}")

    def restore(self, names: Iterator[str] | list[str]) -> None:
        """The values the names had before ``export``, or none."""
        for name in names:
            self._send(f'unset {name}; eval "$__saved_{name}"; unset __saved_{name}')

    def _send(self, script: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(script.encode() + b"\n")
        self.process.stdin.flush()

    def _wait_done(self, timeout: float) -> tuple[str, str] | None:
        """(output before the mark, what follows the mark on its line) of the next command."""
        marker = f"\n{_DONE}{self._count}".encode()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            data = self.log.read_bytes()
            at = data.find(marker, self._offset)
            end = data.find(b"\n", at + len(marker)) if at >= 0 else -1
            if end >= 0:
                self._offset = end + 1
                rest = data[at + len(marker) : end].decode().strip()
                return data[self._start : at].decode(errors="replace"), rest
            if self.process.poll() is not None:
                return None
            time.sleep(0.02)
        return None

    def run(self, command: Command, line: str, cwd: Path | None) -> str:
        """What ``line`` (the command with this run's values) printed, normalised; run in
        ``cwd`` (a block's first command), or where the command before left the shell."""
        self._count += 1
        self._start = self._offset = self.log.stat().st_size
        if command.background:
            return self._start_server(command, line, cwd)
        self._send(
            f"{_cd(cwd)}(exit $__rc)\n{{\n{line}\n}} </dev/null\n"
            f"__rc=$?; printf '\\n{_DONE}{self._count}\\n'"
        )
        done = self._wait_done(COMMAND_TIMEOUT)
        if done is None:
            self.close()
            raise AssertionError(f"$ {line}\ndid not finish in {COMMAND_TIMEOUT:.0f} s")
        return normalise(done[0], self.workdir)

    def _start_server(self, command: Command, line: str, cwd: Path | None) -> str:
        output = self.logs / f"server-{self._count}.log"
        ports = {int(p) for p in re.findall(r"(?:--port|-accept)[ =](\d+)", line)}
        for port in ports & set(self.servers):
            _kill_tree(self.servers.pop(port), signal.SIGTERM)
            _wait_for(functools.partial(_closed, port), SERVER_TIMEOUT)
        self._send(
            f"{_cd(cwd)}(exit $__rc)\n"
            f"{{\n{line.rstrip()[:-1]}\n}} >{shlex.quote(str(output))} 2>&1 </dev/null &\n"
            f"__rc=$?; printf '\\n{_DONE}{self._count} %s\\n' $!"
        )
        done = self._wait_done(COMMAND_TIMEOUT)
        assert done is not None, f"$ {line}\ndid not start"
        server = int(done[1])
        lines = len([x for x in command.expected.splitlines() if x.strip()])

        def printed() -> str:
            return output.read_text(errors="replace") if output.exists() else ""

        def alive() -> bool:
            return Path(f"/proc/{server}").exists() and _state(server) != "Z"

        _wait_for(
            lambda: len([x for x in printed().splitlines() if x.strip()]) >= lines,
            SERVER_TIMEOUT,
            alive,
        )
        ports |= {
            int(p) for p in re.findall(r"(?:127\.0\.0\.1:|localhost:|port )(\d{4,5})", printed())
        }
        for port in ports:
            _wait_for(functools.partial(listening, port), SERVER_TIMEOUT, alive)
            self.servers[port] = server
        return normalise(printed(), self.workdir)

    def close(self) -> None:
        with contextlib.suppress(ProcessLookupError, BrokenPipeError, OSError):
            if self.process.stdin is not None:
                self.process.stdin.close()
        _kill_session(self.process.pid)
        self.process.wait()
        self._log_file.close()


def _cd(where: Path | None) -> str:
    return "" if where is None else f"cd {shlex.quote(str(where))}; "


def listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _closed(port: int) -> bool:
    return not listening(port)


def _wait_for(
    ready: Callable[[], bool], timeout: float, alive: Callable[[], bool] = lambda: True
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and alive() and not ready():
        time.sleep(0.05)


def _state(pid: int) -> str:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    return "X"


def _kill_tree(pid: int, sig: signal.Signals) -> None:
    """Send ``sig`` to ``pid`` and every process it started."""
    children: dict[int, list[int]] = collections.defaultdict(list)
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError, IndexError, ValueError):
            if entry.name.isdigit():
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                children[ppid].append(int(entry.name))
    todo = [pid]
    while todo:
        one = todo.pop()
        todo += children.get(one, [])
        with contextlib.suppress(ProcessLookupError):
            os.kill(one, sig)


def _kill_session(session: int) -> None:
    """SIGKILL every process of ``session`` (the page's bash and whatever it started) and wait
    until none runs (a zombie has closed its sockets already)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        running = [pid for pid in _session(session) if _state(pid) not in ("Z", "X")]
        if not running:
            return
        for pid in running:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.02)


def _session(session: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            if entry.name.isdigit() and os.getsid(int(entry.name)) == session:
                found.append(int(entry.name))
    return found


def page_blocks(path: Path) -> list[Block]:
    return list(blocks(path))


def console_blocks() -> list[Block]:
    return [b for path in DOCS for b in blocks(path) if b.lang == "console"]


PAGES = [path for path in DOCS if any(b.lang == "console" for b in blocks(path))]


@dataclass(frozen=True)
class Ran:
    command: Command
    printed: str  # normalised, with this run's values
    problem: str | None  # None if it matched what the page shows


def run_page(
    page: Path,
    bindings: Bindings,
    *,
    venv: Callable[[str], Path] | None = None,
    env: dict[str, str] | None = None,
    workdir: Path | None = None,
    only: Callable[[Block], bool] = lambda block: True,
) -> Iterator[tuple[Block, list[Ran]]]:
    """Each run console block of ``page`` with what each of its commands printed.

    Without ``venv``, the blocks a ``venv`` marker sends to a fresh virtual environment are
    left out; with it (``tests/test_packaging.py``), only those run, each with the ``bin`` of
    ``venv(REQUIREMENTS)`` first on the ``PATH``. ``env`` is added to the shell's environment;
    ``workdir`` is the page's directory instead of a fresh one (with the links made); ``only``
    runs the console blocks it accepts, no other.
    """
    with tempfile.TemporaryDirectory(prefix="pinset-docs-") as name:
        logs = Path(name) / "logs"
        logs.mkdir()
        if workdir is None:
            workdir = Path(name) / "page"
            workdir.mkdir()
        links = {linked: ROOT / linked for linked in LINKED}
        if sys.prefix != sys.base_prefix:  # `.venv/bin/python` is the test's interpreter
            links[".venv"] = Path(sys.prefix)
        for linked, target in links.items():
            if not (workdir / linked).exists():
                (workdir / linked).symlink_to(target)
        shell = Shell(workdir, logs, env)
        days = shift_days()
        try:
            for block in page_blocks(page):
                if block.marked("file") is not None:
                    moved = days if block.marked("today") is not None else 0
                    text = bindings.to_run(block.text + "\n", moved)
                    (workdir / block.marked("file")).write_text(text, encoding="utf-8")  # type: ignore[operator]
                    continue
                if block.lang != "console" or block.skip_reason is not None:
                    continue
                requirements = block.marked("venv")
                if (requirements is None) != (venv is None) or not only(block):
                    continue
                exported = block_env(block)
                if requirements is not None:
                    assert venv is not None
                    exported["PATH"] = shlex.quote(f"{venv(requirements)}{os.pathsep}") + '"$PATH"'
                shell.export(exported)
                cwd = workdir / (block.marked("cwd") or ".")
                ran = []
                for number, command in enumerate(commands(block)):
                    moved = days if block.marked("today") is not None else 0
                    line = bindings.to_run(command.line, moved)
                    printed = shell.run(command, line, cwd if number == 0 else None)
                    expected = normalise(command.expected, Path("/nonexistent"))
                    ran.append(
                        Ran(command, printed, bindings.match(expected, printed, block.scanner))
                    )
                shell.restore(list(exported))
                yield block, ran
        finally:
            shell.close()


def block_env(block: Block) -> dict[str, str]:
    """The variables an ``env`` marker gives the block's commands, as bash words."""
    exported: dict[str, str] = {}
    for word in (block.marked("env") or "").split():
        name, equals, value = word.partition("=")
        if not equals:
            if name not in os.environ:
                raise AssertionError(
                    f"{block.where} needs {name} from the test's environment, which lacks it"
                )
            value = os.environ[name]
        exported[name] = shlex.quote(value)
    return exported


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_console_blocks_of_a_page_print_what_it_shows(page: Path) -> None:
    drifted = drift(run_page(page, Bindings()))
    assert drifted == [], "\n\n".join(drifted)


def drift(page_runs: Iterable[tuple[Block, list[Ran]]]) -> list[str]:
    """For each command that did not print what its page shows: where, why and the diff."""
    drifted = []
    for block, ran in page_runs:
        for one in ran:
            if one.problem is None:
                continue
            expected = normalise(one.command.expected, Path("/nonexistent"))
            diff = difflib.unified_diff(
                expected.splitlines(), one.printed.splitlines(), "shown", "printed", lineterm=""
            )
            drifted.append(
                f"{block.where}: $ {one.command.line}\n{one.problem}\n" + "\n".join(diff)
            )
    return drifted


def update(page: Path) -> int:
    """Write what each run command of ``page`` printed under it; the number of blocks changed."""
    lines = page.read_text(encoding="utf-8").splitlines()
    changed = []
    bindings = Bindings()
    for block, ran in run_page(page, bindings):
        body = []
        for one in ran:
            body.append(f"$ {one.command.line}")
            shown = bindings.as_shown(one.printed) if one.problem else one.command.expected
            body.extend(shown.splitlines())
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
        for verb in ("skip", "vary", "figures", "venv", "env")
        if b.marked(verb) is not None and not b.marked(verb).strip()  # type: ignore[union-attr]
    ]
    misplaced = [
        b.where
        for path in DOCS
        for b in blocks(path)
        if b.marked("file") is not None and b.lang == "console"
    ]
    assert unexplained == []
    assert misplaced == []
    run = [b for b in console_blocks() if b.skip_reason is None]
    # Every block that is not skipped has at least one command to run.
    assert [b.where for b in run if not commands(b)] == []
    assert len(run) >= 25


def counts() -> str:
    all_blocks = console_blocks()
    run = [b for b in all_blocks if b.skip_reason is None and b.marked("venv") is None]
    elsewhere = [b for b in all_blocks if b.skip_reason is None and b.marked("venv") is not None]
    reasons = collections.Counter(b.skip_reason for b in all_blocks if b.skip_reason is not None)
    varying = sum(1 for b in run if b.scanner is not None)
    lines = [
        f"console blocks: {len(all_blocks)}; run: {len(run)} "
        f"({sum(len(commands(b)) for b in run)} commands; {varying} blocks vary); "
        f"run by tests/test_packaging.py in fresh virtual environments: {len(elsewhere)}; "
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
