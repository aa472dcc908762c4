"""The ``pinset`` command on a core install (``pip install pinset``: no click).

:func:`pinset.cli.main` runs this only when click cannot be imported. It answers
``pinset --version``, ``pinset --help`` and ``pinset pin`` (with every option of the click
command, parsed here with :mod:`argparse`), doing the work through the same
``_pin_core.pin_targets`` as the click command, so text, JSON and exit statuses are the
same. Any other command prints one line naming the extra that brings it and exits 2.
Standard library only.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from pinset import __version__
from pinset.cli._shell import (
    COMMANDS,
    failure_status,
    install_hint,
    interrupted,
    verbose_requested,
)
from pinset.status import ExitStatus

__all__ = ["CORE_COMMANDS", "extra_of_command", "help_text", "run"]

#: What a core install runs; the rest of :data:`COMMANDS` needs the ``cli`` extra.
CORE_COMMANDS = ("pin",)


def extra_of_command(name: str) -> str:
    """The extras a command needs beyond the core: ``cli``, or ``cli,collector`` for one."""
    return "cli,collector" if name == "collector" else "cli"


def help_text() -> str:
    """``pinset --help`` on a core install: what runs, and what installs the rest."""
    import textwrap

    others = ", ".join(name for name in COMMANDS if name not in CORE_COMMANDS)
    listed = textwrap.fill(f"The other commands ({others})", 86, subsequent_indent="  ")
    return (
        f"Usage: pinset [--version] [-h] COMMAND [ARGS]...\n"
        f"\n"
        f"  pinset {__version__}: certificate and public-key pinning, end to end.\n"
        f"  This is the core install (no 'cli' extra): it runs\n"
        f"\n"
        f"  pinset pin TARGET... [--json]   {COMMANDS['pin'][2]}\n"
        f"  pinset pin --help               the options of pin\n"
        f"  pinset --version                the version\n"
        f"\n"
        f"  {listed} need the 'cli' extra:\n"
        f"    {install_hint('cli')}\n"
    )


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{value} is not in the range x>0")
    return value


def _pin_parser() -> argparse.ArgumentParser:
    from pinset.cli._pin_core import DEFAULT_TIMEOUT

    parser = argparse.ArgumentParser(
        prog="pinset pin",
        description=(
            "Print the SPKI pins of hosts and files. A TARGET is a file (certificate, chain, "
            "key, CSR, PKCS#7, PKCS#12; - for standard input) or a host: host, host:port, "
            "[v6addr]:port or https://host:port/."
        ),
        epilog=f"The full command line: {install_hint('cli')}",
        allow_abbrev=False,
    )
    parser.add_argument("targets", nargs="+", metavar="TARGET")
    parser.add_argument("--server-name", metavar="NAME", help="Name to send as SNI and to verify.")
    parser.add_argument(
        "--timeout",
        metavar="SECONDS",
        type=_positive,
        default=DEFAULT_TIMEOUT,
        help="Seconds per host.",
    )
    parser.add_argument("--cafile", metavar="FILE", help="PEM file of CA certificates.")
    parser.add_argument(
        "--password-file",
        metavar="FILE",
        help="File whose first line is the password of PKCS#12 files and encrypted keys.",
    )
    parser.add_argument("--log-list", metavar="FILE", help="CT log list for the leaf's SCTs.")
    parser.add_argument("--json", dest="as_json", action="store_true", help="Print JSON.")
    return parser


def _usage_error(message: str) -> int:
    print(f"error: {message} (pinset --help)", file=sys.stderr)
    return int(ExitStatus.USAGE)


def run(argv: Sequence[str]) -> int:
    """Run ``pinset ARGV`` without click; the exit status."""
    argv = list(argv)
    verbose = verbose_requested(argv)
    args = argv
    while args and args[0] in ("-v", "--verbose"):  # the group's option: before the command
        args = args[1:]
    if not args or args[0] in ("-h", "--help"):
        print(help_text(), end="")
        return int(ExitStatus.OK if args else ExitStatus.USAGE)
    if args[0] == "--version":
        print(f"pinset, version {__version__}")
        return int(ExitStatus.OK)
    name = args[0]
    if name.startswith("-"):
        return _usage_error(f"no such option {name!r}")
    if name not in COMMANDS:
        return _usage_error(f"no such command {name!r}")
    if name not in CORE_COMMANDS:
        extra = extra_of_command(name)
        extras = " and ".join(f"'{e}'" for e in extra.split(","))
        plural = "s" if "," in extra else ""
        print(
            f"error: 'pinset {name}' needs the {extras} extra{plural}: {install_hint(extra)}",
            file=sys.stderr,
        )
        return int(ExitStatus.USAGE)
    try:
        return _pin(args[1:])
    except KeyboardInterrupt:
        return interrupted()
    except Exception as exc:
        return failure_status(exc, verbose)


def _pin(args: list[str]) -> int:
    from pinset.cli._pin_core import pin_targets

    try:
        options = _pin_parser().parse_args(args)
    except SystemExit as exc:  # --help (0) or a usage error (2), printed by argparse
        return int(ExitStatus.OK if exc.code in (0, None) else ExitStatus.USAGE)
    return pin_targets(
        options.targets,
        server_name=options.server_name,
        timeout=options.timeout,
        cafile=options.cafile,
        password_file=options.password_file,
        log_list=options.log_list,
        as_json=options.as_json,
    )
