"""The options several commands share, declared once so their names, types and help stay alike."""

from __future__ import annotations

from collections.abc import Callable

import click
from click.decorators import FC

__all__ = ["cafile_option", "json_option", "timeout_option"]


def cafile_option(
    help: str = "PEM file of CA certificates to verify against (default: the system store).",
) -> Callable[[FC], FC]:
    """``--cafile FILE``, passed as ``cafile`` (``None`` when not given)."""
    return click.option("--cafile", type=click.Path(dir_okay=False), default=None, help=help)


def timeout_option(
    default: float = 10.0, help: str = "Seconds per host.", *, positive: bool = True
) -> Callable[[FC], FC]:
    """``--timeout SECONDS``, passed as ``timeout``; with *positive*, zero or less is a usage error.

    ``positive=False`` is for ``pinset mitm``, which has always taken any float; refusing zero
    there too would change its behaviour, which this refactoring must not.
    """
    return click.option(
        "--timeout",
        type=click.FloatRange(min=0, min_open=True) if positive else float,
        default=default,
        show_default=True,
        help=help,
    )


def json_option(help: str) -> Callable[[FC], FC]:
    """``--json``, passed as ``as_json``; *help* says what the command prints instead."""
    return click.option("--json", "as_json", is_flag=True, help=help)
