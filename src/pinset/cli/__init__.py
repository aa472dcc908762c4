"""The ``pinset`` command: a thin shell over the library.

Each command lives in its own module (``pinset.cli.<name>``) and is imported
only when it runs, so ``pinset pin`` never loads the collector's web stack.
Errors that are the user's (a bad config, an unreadable file, an unreachable
host) print their diagnostics without a traceback; ``-v`` shows it.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from pinset.status import ExitStatus

__all__ = ["main"]

# click is a core dependency: this shows only in a broken environment (pip install --no-deps).
_MISSING_EXTRA = "pinset's command line needs click: pip install 'pinset[cli]'"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI with ``argv`` (default: ``sys.argv[1:]``) and return the exit status."""
    try:
        from pinset.cli._app import run
    except ImportError as exc:  # click missing
        print(f"{_MISSING_EXTRA}\n({exc})", file=sys.stderr)
        return int(ExitStatus.USAGE)
    return run(list(sys.argv[1:] if argv is None else argv))
