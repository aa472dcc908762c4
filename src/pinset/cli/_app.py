"""The click group, lazy command loading and the one place errors become exit codes."""

from __future__ import annotations

import enum
import importlib
import importlib.util
import sys
import traceback
from typing import Any

import click

from pinset.errors import NetworkError, PinMismatchError, PinsetError

__all__ = ["COMMANDS", "ExitStatus", "cli", "run"]


class ExitStatus(enum.IntEnum):
    """The exit codes every pinset command uses."""

    OK = 0
    CHECK_FAILED = 1  # pin mismatch, audit errors, unsafe rotation, intercepted host
    USAGE = 2  # usage or config error, unreadable input
    NETWORK = 3  # a host could not be reached


# name -> (module, attribute, one-line help). Modules load only when their command runs.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "pin": ("pinset.cli.pin", "command", "Print the SPKI pins of hosts and files."),
    "keygen": ("pinset.cli.keygen", "command", "Make an offline backup key and print its pin."),
    "init": ("pinset.cli.init", "command", "Write a policy from live chains plus backup pins."),
    "check": ("pinset.cli.check", "command", "Connect with enforcement and print the verdict."),
    "export": ("pinset.cli.export", "command", "Write a policy in a platform's format."),
    "import": ("pinset.cli.import_", "command", "Read a platform config into a pinset policy."),
    "audit": ("pinset.cli.audit", "command", "Audit policies, live servers and mobile apps."),
    "rotate": ("pinset.cli.rotate", "group", "Plan and check a key rotation."),
    "mitm": ("pinset.cli.mitm", "command", "Attack a client with a forging proxy."),
    "collector": ("pinset.cli.collector", "group", "Run the pin-failure report collector."),
    "demo": ("pinset.cli.demo", "command", "Play a full pinning scenario on loopback."),
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use."""

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


def _available(name: str) -> bool:
    return importlib.util.find_spec(COMMANDS[name][0]) is not None


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Show tracebacks and debug logging.")
@click.version_option(package_name="pinset")
@click.pass_context
def cli(ctx: click.Context, verbose: bool) -> None:
    """pinset: certificate and public-key pinning, end to end."""
    ctx.ensure_object(dict)
    ctx.obj["verbose"] = verbose
    if verbose:
        import logging

        logging.basicConfig(level=logging.DEBUG, format="%(levelname)s %(name)s: %(message)s")


def run(argv: list[str]) -> int:
    """Invoke the group; translate errors into messages and :class:`ExitStatus` codes."""
    verbose = "-v" in argv or "--verbose" in argv
    try:
        result: Any = cli.main(args=argv, prog_name="pinset", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        return int(ExitStatus.USAGE)
    except click.ClickException as exc:
        exc.show()
        return int(ExitStatus.USAGE)
    except PinMismatchError as exc:
        _explain(exc, verbose)
        return int(ExitStatus.CHECK_FAILED)
    except NetworkError as exc:
        _explain(exc, verbose)
        return int(ExitStatus.NETWORK)
    except PinsetError as exc:
        _explain(exc, verbose)
        return int(ExitStatus.USAGE)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        return 130
    if isinstance(result, int):
        return result
    return int(ExitStatus.OK)


def _explain(exc: PinsetError, verbose: bool) -> None:
    if verbose:
        traceback.print_exception(exc)
    click.echo(exc.diagnostics(), err=True)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(run(sys.argv[1:]))
