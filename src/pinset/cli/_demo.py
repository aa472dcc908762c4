"""``pinset demo``: play the whole pinning story on loopback, narrated, in a few seconds.

Nothing leaves 127.0.0.1: the PKI, the API server, the forging proxy and the report
collector are all made on the spot. The exit status says whether every step behaved
as pinning promises (0) or not (1); ``--json`` prints the summary instead of the story.
"""

from __future__ import annotations

import io
from pathlib import Path

import click
from rich.console import Console

from pinset.cli._options import json_option
from pinset.cli._output import console, print_json
from pinset.status import ExitStatus

__all__ = ["command"]


@click.command("demo")
@json_option(help="Print the summary as JSON (no narration).")
@click.option(
    "--work-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Keep the policy, backup key and collector database here [default: a temporary "
    "directory, removed afterwards].",
)
def command(as_json: bool, work_dir: Path | None) -> int:
    """Pin a loopback API, attack it with a forging proxy, report, rotate, update, expire.

    Every step is checked; the summary table says what was expected and what happened.
    """
    from pinset.demo import run

    out = Console(file=io.StringIO(), width=100) if as_json else console()
    result = run(out, work_dir=work_dir)
    if as_json:
        print_json(result.to_dict())
    return int(ExitStatus.OK if result.ok else ExitStatus.CHECK_FAILED)
