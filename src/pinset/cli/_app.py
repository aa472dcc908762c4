"""The click group, lazy command loading, and click's errors as exit codes.

The command table and the translation of every other error live in ``_shell.py``, which
the core install's fallback (``_core.py``, no click) shares.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from typing import Any

import click

from pinset import __version__
from pinset.cli._shell import (
    COMMANDS,
    DEBUG_ENV,
    EXTRA_OF_MODULE,
    failure_status,
    interrupted,
    missing_extra,
    verbose_requested,
)
from pinset.status import ExitStatus

__all__ = [
    "COMMANDS",
    "DEBUG_ENV",
    "EXTRA_OF_MODULE",
    "Choice",
    "SectionedCommand",
    "cli",
    "missing_extra",
    "run",
]


class Choice(click.Choice):  # type: ignore[type-arg]
    """``click.Choice`` whose error suggests the closest value (``--format jsn``)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            return super().convert(value, param, ctx)
        except click.BadParameter:
            import difflib

            choices = [str(c) for c in self.choices]
            close = difflib.get_close_matches(str(value), choices, n=1, cutoff=0.5)
            if not close:
                raise
            self.fail(
                f"{value!r} is not one of {', '.join(choices)}. Did you mean {close[0]!r}?",
                param,
                ctx,
            )


class SectionedCommand(click.Command):
    """A command whose ``--help`` lists its options under headings.

    ``sections`` maps a heading to parameter names (as click names them, e.g.
    ``"as_json"``); options named nowhere go under "Other options", last.
    """

    def __init__(self, *args: Any, sections: dict[str, list[str]] | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.sections = sections or {}

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        records: dict[str, tuple[str, str]] = {}
        help_option = self.get_help_option(ctx)
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if isinstance(param, click.Option) and record is not None and param.name:
                records[param.name] = record
        groups = [
            (heading, [name for name in names if name in records])
            for heading, names in self.sections.items()
        ]
        groups = [(heading, names) for heading, names in groups if names]
        placed = {name for _heading, names in groups for name in names}
        help_name = help_option.name if help_option is not None else None
        rest = [name for name in records if name not in placed]
        if groups and rest == [help_name]:
            groups[-1][1].extend(rest)  # -h/--help needs no heading of its own
        elif rest:
            groups.append(("Other options" if groups else "Options", rest))
        # One width for the option column of every section, so the help texts line up.
        short = [len(records[n][0]) for _h, names in groups for n in names]
        width = min(max(short, default=0), 30)
        for heading, names in groups:
            rows = [(records[n][0].ljust(width), records[n][1]) for n in names]
            with formatter.section(heading):
                formatter.write_dl(rows)


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use (``pinset --help`` imports none)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [name for name in COMMANDS if _available(name)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        spec = COMMANDS.get(cmd_name)
        if spec is None or not _available(cmd_name):
            return None
        module = importlib.import_module(spec[0])
        command = getattr(module, spec[1])
        assert isinstance(command, click.Command)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """List the commands with their one-line help from :data:`COMMANDS`, importing none."""
        rows = [(name, COMMANDS[name][2]) for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def shell_complete(
        self, ctx: click.Context, incomplete: str
    ) -> list[click.shell_completion.CompletionItem]:
        """Complete command names from :data:`COMMANDS` (importing none), then options."""
        from click.shell_completion import CompletionItem

        names = [name for name in self.list_commands(ctx) if name.startswith(incomplete)]
        items = [CompletionItem(name, help=COMMANDS[name][2]) for name in names]
        return items + click.Command.shell_complete(self, ctx, incomplete)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name = args[0] if args else ""
        if args and not name.startswith("-") and self.get_command(ctx, name) is None:
            import difflib

            close = difflib.get_close_matches(name, self.list_commands(ctx), n=1, cutoff=0.6)
            if close:
                ctx.fail(f"No such command {name!r}. Did you mean {close[0]!r}?")
        return super().resolve_command(ctx, args)


def _available(name: str) -> bool:
    return importlib.util.find_spec(COMMANDS[name][0]) is not None


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Show tracebacks and debug logging.")
@click.version_option(__version__, package_name="pinset")
@click.pass_context
def cli(ctx: click.Context, verbose: bool) -> None:
    """pinset: certificate and public-key pinning, end to end."""
    ctx.ensure_object(dict)
    ctx.obj["verbose"] = verbose
    if verbose:
        import logging

        logging.basicConfig(level=logging.DEBUG, format="%(levelname)s %(name)s: %(message)s")


def run(argv: list[str]) -> int:
    """Invoke the group; translate errors into messages and :class:`ExitStatus` codes.

    Tracebacks are shown with ``-v`` or with :data:`DEBUG_ENV` set (for a failure
    in CI, where changing the command line is a commit away). Errors that are not
    click's are translated by :func:`pinset.cli._shell.failure_status`, as on a core
    install without click.
    """
    try:
        result: Any = cli.main(args=argv, prog_name="pinset", standalone_mode=False)
    except click.exceptions.Abort as exc:
        # click turns Ctrl-C (and end of input at a prompt) into Abort.
        if isinstance(exc.__cause__ or exc.__context__, KeyboardInterrupt):
            return interrupted()
        click.echo("Aborted.", err=True)
        return int(ExitStatus.USAGE)
    except click.ClickException as exc:
        exc.show()
        return int(ExitStatus.USAGE)
    except KeyboardInterrupt:
        return interrupted()
    except Exception as exc:
        return failure_status(exc, verbose_requested(argv))
    if isinstance(result, int):
        return result
    return int(ExitStatus.OK)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(run(sys.argv[1:]))
