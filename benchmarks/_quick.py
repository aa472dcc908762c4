"""The quick mode every benchmark here honours: ``PINSET_BENCH_QUICK=1``.

A full run takes minutes; with ``PINSET_BENCH_QUICK=1`` in the environment each script runs
in a few seconds (a few rounds, small sizes, short phases: ``scaled`` caps each count and
duration, also one given on the command line) and prints every line a full run prints, in
the same words. Its figures measure nothing, so it judges no target: ``judged`` writes the
word of a met target. The docs test runs the benchmark blocks of the docs this way (numbers
free, the lines and words checked, tests/test_docs_run.py's ``figures`` marker); the figures
on the pages are full runs'.

    PINSET_BENCH_QUICK=1 .venv/bin/python benchmarks/handshake.py
"""

from __future__ import annotations

import os
from typing import TypeVar

QUICK = os.environ.get("PINSET_BENCH_QUICK", "") not in ("", "0")

_N = TypeVar("_N", int, float)


def scaled(full: _N, quick: _N) -> _N:
    """``full``, or at most ``quick`` in quick mode."""
    return min(full, quick) if QUICK else full


def judged(met: bool, yes: str, no: str) -> str:
    """The word for a target met or not; in quick mode, whose figures mean nothing, ``yes``."""
    return yes if met or QUICK else no
