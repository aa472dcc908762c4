"""Run pinset's fuzz targets (tests/_fuzz_targets.py) under atheris, each for a bounded time.

Usage::

    fuzz_atheris.py [--seconds N] [--rss-limit-mb MB] [--timeout S] [--work DIR] [TARGET ...]

With no TARGET every target runs, one after the other, each in a process of its own for
``--seconds`` (libFuzzer's ``-max_total_time``), with libFuzzer bounding every input to
``--timeout`` seconds and the process to ``--rss-limit-mb``. Each target's corpus lives in
``WORK/corpus/TARGET`` (default ``.fuzz/``, kept between runs, so it grows): the seeds and
the committed finds of ``tests/fixtures/fuzz/TARGET`` are copied in first. A find (an
exception other than the allowed refusals, a timeout, running out of memory) is written to
``WORK/artifacts/TARGET/`` and the run fails; the summary table lists, per target, the
seconds run, the executions, the corpus size and the outcome.

Needs atheris (``pip install -e '.[fuzz]'``); the deterministic replay of the same targets
(tests/test_fuzz_targets.py) does not.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# What atheris instruments for coverage: pinset, the harness, and the pure-Python parsers
# pinset hands untrusted bytes to (pyaxmlparser decodes binary XML, defusedxml wraps expat).
INSTRUMENTED = ["pinset", "tests", "pyaxmlparser", "defusedxml"]
_STAT = re.compile(r"^stat::(\w+):\s*(\d+)", re.M)
_DONE = re.compile(r"DONE\s+cov: (\d+) ft: (\d+) corp: (\d+)/(\S+)")


def _seed_corpus(name: str, corpus: Path) -> None:
    from tests._fuzz_targets import TARGETS, finds

    corpus.mkdir(parents=True, exist_ok=True)
    for _label, data in [*TARGETS[name].seeds(), *finds(name)]:
        # Named as libFuzzer names its own corpus files, so a seed is never copied twice.
        (corpus / hashlib.sha1(data, usedforsecurity=False).hexdigest()).write_bytes(data)


def run_one(name: str, args: argparse.Namespace) -> None:
    """Fuzz target ``name`` in this process; libFuzzer exits when the time is up."""
    try:
        import atheris
    except ImportError:
        sys.exit("fuzz_atheris: atheris is not installed: pip install -e '.[fuzz]'")
    # Nothing of pinset is imported yet: it loads here, under atheris' coverage hooks.
    with atheris.instrument_imports(include=INSTRUMENTED):
        from tests._fuzz_targets import TARGETS
    work = Path(args.work)
    corpus = work / "corpus" / name
    artifacts = work / "artifacts" / name
    artifacts.mkdir(parents=True, exist_ok=True)
    _seed_corpus(name, corpus)
    atheris.Setup(
        [
            sys.argv[0],
            str(corpus),
            f"-max_total_time={args.seconds}",
            f"-timeout={args.timeout}",
            f"-rss_limit_mb={args.rss_limit_mb}",
            f"-artifact_prefix={artifacts}/",
            "-print_final_stats=1",
            *args.libfuzzer,
        ],
        TARGETS[name].run,
    )
    atheris.Fuzz()


def run_all(names: list[str], args: argparse.Namespace) -> int:
    """Each target in a child process; a summary line per target; 1 if any found something."""
    rows = []
    failed = False
    work = Path(args.work)
    (work / "logs").mkdir(parents=True, exist_ok=True)
    for name in names:
        log = work / "logs" / f"{name}.log"
        print(f"fuzz-atheris: {name} for {args.seconds} s (log: {log})", flush=True)
        command = [
            sys.executable,
            __file__,
            "--one",
            "--seconds",
            str(args.seconds),
            "--timeout",
            str(args.timeout),
            "--rss-limit-mb",
            str(args.rss_limit_mb),
            "--work",
            str(work),
            name,
        ]
        for extra in args.libfuzzer:
            command += ["--libfuzzer", extra]
        start = time.monotonic()
        with open(log, "w", encoding="utf-8") as out:
            status = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, check=False)
        took = time.monotonic() - start
        text = log.read_text(encoding="utf-8", errors="replace")
        stats = {k: int(v) for k, v in _STAT.findall(text)}
        done = _DONE.findall(text)
        cov, corpus, size = (done[-1][0], done[-1][2], done[-1][3]) if done else ("-", "-", "-")
        outcome = "ok" if status.returncode == 0 else f"FIND (exit {status.returncode})"
        if status.returncode != 0:
            failed = True
            print(text[-4000:], file=sys.stderr)
        execs = stats.get("number_of_executed_units", 0)
        rows.append((name, round(took), execs, cov, f"{corpus} ({size})", outcome))
    print(f"{'target':<11} {'seconds':>7} {'executions':>10} {'cov':>5} {'corpus':>14}  outcome")
    for name, took, execs, cov, corpus, outcome in rows:
        print(f"{name:<11} {took:>7} {execs:>10} {cov:>5} {corpus:>14}  {outcome}")
    return 1 if failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("targets", nargs="*", metavar="TARGET")
    parser.add_argument("--seconds", type=int, default=60, help="per target (default 60)")
    parser.add_argument("--timeout", type=int, default=10, help="per input, seconds")
    parser.add_argument("--rss-limit-mb", type=int, default=1024, help="per process")
    parser.add_argument("--work", default=str(ROOT / ".fuzz"), help="corpus, artifacts, logs")
    parser.add_argument("--libfuzzer", action="append", default=[], help="one more flag")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    if args.one:
        run_one(args.targets[0], args)
        return 0  # not reached: libFuzzer exits
    from tests._fuzz_targets import TARGETS

    unknown = [t for t in args.targets if t not in TARGETS]
    if unknown:
        parser.error(f"unknown target(s) {', '.join(unknown)}; known: {', '.join(TARGETS)}")
    return run_all(args.targets or list(TARGETS), args)


if __name__ == "__main__":
    sys.exit(main())
