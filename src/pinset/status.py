"""The exit codes of the ``pinset`` command, in one place.

Every command returns one of these; scripts and CI jobs branch on them, so a
code keeps its meaning across releases. ``pinset.cli._app.run`` is the one place
where errors become codes; docs/cli.md has the table.
"""

from __future__ import annotations

import enum

__all__ = ["ExitStatus"]


class ExitStatus(enum.IntEnum):
    """The exit codes every pinset command uses."""

    OK = 0
    CHECK_FAILED = 1  # pin mismatch, audit errors, unsafe rotation, intercepted host
    USAGE = 2  # usage or config error, unreadable input
    NETWORK = 3  # a host could not be reached
    INTERNAL_ERROR = 70  # a bug in pinset: an unexpected exception (EX_SOFTWARE, sysexits.h)
    INTERRUPTED = 130  # Ctrl-C: 128 + SIGINT, as shells report it
