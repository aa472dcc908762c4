"""The click group, lazy command loading and the one place errors become exit codes."""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from typing import Any

import click

from pinset import __version__
from pinset.errors import NetworkError, PinsetError
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

#: Set to anything but ``0`` to print the traceback of every error, as ``-v`` does.
DEBUG_ENV = "PINSET_DEBUG"


# name -> (module, attribute, one-line help). Modules load only when their command runs.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "pin": ("pinset.cli._pin", "command", "Print the SPKI pins of hosts and files."),
    "keygen": ("pinset.cli._keygen", "command", "Make a backup or signing key, or a recovery kit."),
    "init": ("pinset.cli._init", "command", "Write a policy from live chains plus backup pins."),
    "check": ("pinset.cli._check", "command", "Connect with enforcement and print the verdict."),
    "export": ("pinset.cli._export", "command", "Write a policy in a platform's format."),
    "import": ("pinset.cli._import", "command", "Read a platform config into a pinset policy."),
    "audit": ("pinset.cli._audit", "command", "Audit policies, live servers and mobile apps."),
    "rotate": ("pinset.cli._rotate", "group", "Plan and check a key rotation."),
    "bundle": ("pinset.cli._bundle", "group", "Sign and verify pin-set bundles."),
    "ct": ("pinset.cli._ct", "group", "Check embedded SCTs against CT log lists."),
    "mitm": ("pinset.cli._mitm", "command", "Attack a client with a forging proxy."),
    "collector": (
        "pinset.cli._collector",
        "group",
        "Run the pin-failure report collector (the 'collector' extra).",
    ),
    "demo": ("pinset.cli._demo", "command", "Play a full pinning scenario on loopback."),
    "completion": (
        "pinset.cli._completion",
        "command",
        "Print the shell completion script (bash, zsh, fish).",
    ),
}


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


# The optional dependencies a command may import, and the extra that installs each. The core
# install (cryptography, click) runs `pinset --version`, `pinset pin FILE` and completion.
EXTRA_OF_MODULE: dict[str, str] = {
    "rich": "cli",
    "defusedxml": "cli",
    "pyaxmlparser": "mobile",
    "fastapi": "collector",
    "uvicorn": "collector",
    "sqlalchemy": "collector",
    "alembic": "collector",
    "psycopg": "collector",
}


def missing_extra(exc: ModuleNotFoundError) -> str | None:
    """The extra that installs the module ``exc`` did not find, or None if no extra does."""
    top = (exc.name or "").partition(".")[0]
    return EXTRA_OF_MODULE.get(top)


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
    in CI, where changing the command line is a commit away).
    """
    verbose = "-v" in argv or "--verbose" in argv or _debug_env()
    try:
        result: Any = cli.main(args=argv, prog_name="pinset", standalone_mode=False)
    except click.exceptions.Abort as exc:
        # click turns Ctrl-C (and end of input at a prompt) into Abort.
        if isinstance(exc.__cause__ or exc.__context__, KeyboardInterrupt):
            return _interrupted()
        click.echo("Aborted.", err=True)
        return int(ExitStatus.USAGE)
    except click.ClickException as exc:
        exc.show()
        return int(ExitStatus.USAGE)
    except PinsetError as exc:
        _explain(exc, verbose)
        return int(_status_of(exc))
    except ModuleNotFoundError as exc:
        extra = missing_extra(exc)
        if extra is None:
            raise
        if verbose:
            _print_traceback(exc)
        top = (exc.name or "").partition(".")[0]
        click.echo(
            f"error: this command needs {top}, from the '{extra}' extra\n"
            f"  fix: pip install 'pinset[{extra}]' (with pipx: pipx install --force "
            f"'pinset[{extra}]')",
            err=True,
        )
        return int(ExitStatus.USAGE)
    except KeyboardInterrupt:
        return _interrupted()
    except BrokenPipeError:
        # `pinset pin ... | head`: the reader left; nothing more to say to it.
        _silence_stdout()
        return int(ExitStatus.OK)
    except OSError as exc:
        # A file the command opened itself (a FIFO, a full disk, ...): no traceback.
        if verbose:
            _print_traceback(exc)
        where = f"\n  --> {exc.filename}" if getattr(exc, "filename", None) else ""
        click.echo(f"error: {exc.strerror or exc}{where}", err=True)
        return int(ExitStatus.USAGE)
    except Exception as exc:  # the last line of defence against tracebacks
        if verbose:
            _print_traceback(exc)
        click.echo(
            f"error: internal error: {type(exc).__name__}: {exc} (a bug in pinset: please "
            f"report it with the traceback that -v or {DEBUG_ENV}=1 shows)",
            err=True,
        )
        return int(ExitStatus.INTERNAL_ERROR)
    if isinstance(result, int):
        return result
    return int(ExitStatus.OK)


def _debug_env() -> bool:
    return os.environ.get(DEBUG_ENV, "") not in ("", "0")


def _interrupted() -> int:
    click.echo("Interrupted.", err=True)
    return int(ExitStatus.INTERRUPTED)


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def _status_of(exc: PinsetError) -> ExitStatus:
    # PinMismatchError is imported here, not at the top: it loads ssl, and by now a
    # mismatch has loaded it anyway.
    from pinset.errors import PinMismatchError

    if isinstance(exc, PinMismatchError):
        return ExitStatus.CHECK_FAILED
    if isinstance(exc, NetworkError):
        return ExitStatus.NETWORK
    return ExitStatus.USAGE


def _print_traceback(exc: BaseException) -> None:
    import traceback

    traceback.print_exception(exc)


def _explain(exc: PinsetError, verbose: bool) -> None:
    if verbose:
        _print_traceback(exc)
    click.echo(exc.diagnostics(), err=True)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(run(sys.argv[1:]))
