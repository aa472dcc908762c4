"""The ``pinset`` command: a thin shell over the library.

Each command lives in its own module (``pinset.cli.<name>``) and is imported
only when it runs, so ``pinset pin`` never loads the collector's web stack.
Errors that are the user's (a bad config, an unreadable file, an unreachable
host) print their diagnostics without a traceback; ``-v`` shows it.

The command line is click's (the ``cli`` extra). A core install (``pip install
pinset``: cryptography only) has no click; there ``pinset --version``, ``--help``
and ``pinset pin`` run on the standard library (``_core.py``) with the same output,
and the other commands name the extra that brings them.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI with ``argv`` (default: ``sys.argv[1:]``) and return the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        from pinset.cli._app import run
    except ModuleNotFoundError as exc:
        if (exc.name or "").partition(".")[0] != "click":
            raise
        from pinset.cli._core import run as run_core

        return run_core(args)
    return run(args)
