"""What the ``pinset`` command needs before and without click.

The command table (:data:`COMMANDS`, loaded lazily by the click group) and the one place a
failure becomes a message and an :class:`~pinset.status.ExitStatus`
(:func:`failure_status`). Both the click group (``_app.py``) and the core install's
fallback (``_core.py``, no click) use them, so the two print the same errors with the
same exit codes. Standard library only: messages go to ``sys.stderr``.
"""

from __future__ import annotations

import os
import sys

from pinset.errors import NetworkError, PinsetError
from pinset.status import ExitStatus

__all__ = [
    "COMMANDS",
    "DEBUG_ENV",
    "EXTRA_OF_MODULE",
    "failure_status",
    "install_hint",
    "interrupted",
    "missing_extra",
    "verbose_requested",
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

# The optional dependencies a command may import, and the extra that installs each. The core
# install (cryptography only) runs `pinset --version`, `--help` and `pin` without click.
EXTRA_OF_MODULE: dict[str, str] = {
    "click": "cli",
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


def install_hint(extra: str) -> str:
    """``pip install 'pinset[EXTRA]' (with pipx: pipx install --force 'pinset[EXTRA]')``."""
    return f"pip install 'pinset[{extra}]' (with pipx: pipx install --force 'pinset[{extra}]')"


def verbose_requested(argv: list[str]) -> bool:
    """``-v``/``--verbose`` on the command line, or :data:`DEBUG_ENV` set: show tracebacks."""
    return "-v" in argv or "--verbose" in argv or os.environ.get(DEBUG_ENV, "") not in ("", "0")


def interrupted() -> int:
    """Ctrl-C: one word on standard error, exit 130."""
    print("Interrupted.", file=sys.stderr)
    return int(ExitStatus.INTERRUPTED)


def failure_status(exc: Exception, verbose: bool) -> int:
    """Print what ``exc`` means for the user (a traceback only if ``verbose``); its exit code.

    A :class:`PinsetError` prints its diagnostics (1 for a pin mismatch, 3 for the network,
    else 2); a missing optional module names its extra (2); a closed pipe is silence (0);
    another ``OSError`` is one line (2); anything else is a bug in pinset (70). A missing
    module no extra installs is re-raised.
    """
    if isinstance(exc, PinsetError):
        if verbose:
            _print_traceback(exc)
        print(exc.diagnostics(), file=sys.stderr)
        return int(_status_of(exc))
    if isinstance(exc, ModuleNotFoundError):
        extra = missing_extra(exc)
        if extra is None:
            raise exc
        if verbose:
            _print_traceback(exc)
        top = (exc.name or "").partition(".")[0]
        print(
            f"error: this command needs {top}, from the '{extra}' extra\n"
            f"  fix: {install_hint(extra)}",
            file=sys.stderr,
        )
        return int(ExitStatus.USAGE)
    if isinstance(exc, BrokenPipeError):
        # `pinset pin ... | head`: the reader left; nothing more to say to it.
        _silence_stdout()
        return int(ExitStatus.OK)
    if isinstance(exc, OSError):
        # A file the command opened itself (a FIFO, a full disk, ...): no traceback.
        if verbose:
            _print_traceback(exc)
        where = f"\n  --> {exc.filename}" if getattr(exc, "filename", None) else ""
        print(f"error: {exc.strerror or exc}{where}", file=sys.stderr)
        return int(ExitStatus.USAGE)
    if verbose:  # the last line of defence against tracebacks
        _print_traceback(exc)
    print(
        f"error: internal error: {type(exc).__name__}: {exc} (a bug in pinset: please "
        f"report it with the traceback that -v or {DEBUG_ENV}=1 shows)",
        file=sys.stderr,
    )
    return int(ExitStatus.INTERNAL_ERROR)


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
