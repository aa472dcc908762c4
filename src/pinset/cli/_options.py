"""The options several commands share, declared once so their names, types and help stay alike.

Every option that two or more commands take with the same meaning is made here; a command
passes only what legitimately differs (its help text, a default). Options that share a
name but not a meaning stay with their command: ``--host`` (audit: a name to fetch;
import: the host an HPKP header pins; collector: the listen address) and
``--max-connections`` (mitm serve: stop after N; collector: open connections at once).

This module imports click only: every command loads it, so it must stay light.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import click
from click.decorators import FC

from pinset.errors import ConfigError

__all__ = [
    "cafile_option",
    "format_option",
    "json_option",
    "now_option",
    "output_option",
    "parse_now",
    "password_file_option",
    "pin_host_option",
    "policy_option",
    "port_option",
    "server_name_option",
    "timeout_option",
]


def cafile_option(
    help: str = "PEM file of CA certificates to verify against (default: the system store).",
) -> Callable[[FC], FC]:
    """``--cafile FILE``, passed as ``cafile`` (``None`` when not given)."""
    return click.option("--cafile", type=click.Path(dir_okay=False), default=None, help=help)


def timeout_option(default: float = 10.0, help: str = "Seconds per host.") -> Callable[[FC], FC]:
    """``--timeout SECONDS``, passed as ``timeout``; zero or less is a usage error."""
    return click.option(
        "--timeout",
        type=click.FloatRange(min=0, min_open=True),
        default=default,
        show_default=True,
        help=help,
    )


def json_option(help: str) -> Callable[[FC], FC]:
    """``--json``, passed as ``as_json``; *help* says what the command prints instead."""
    return click.option("--json", "as_json", is_flag=True, help=help)


def password_file_option(help: str) -> Callable[[FC], FC]:
    """``--password-file FILE``, passed as ``password_file``: a secret on the file's first line.

    "password", not "passphrase": it is the ``password=`` of cryptography's key and
    PKCS#12 loaders and of :meth:`ssl.SSLContext.load_cert_chain`, and what OpenSSL's
    ``-passin``/``-passout`` read.
    """
    return click.option("--password-file", type=click.Path(dir_okay=False), help=help)


def server_name_option() -> Callable[[FC], FC]:
    """``--server-name NAME``, passed as ``server_name``, the keyword of ``fetch_chain``."""
    return click.option(
        "--server-name", help="Name to send as SNI and to verify (default: the host)."
    )


def policy_option(*, required: bool, help: str) -> Callable[[FC], FC]:
    """``--policy FILE``, passed as ``policy_path``: a pinset policy (TOML or JSON)."""
    return click.option(
        "--policy", "policy_path", type=click.Path(dir_okay=False), required=required, help=help
    )


def output_option(help: str, default: str | None = None) -> Callable[[FC], FC]:
    """``-o/--output FILE``, passed as ``output`` (a string; ``None`` when not given)."""
    if default is None:  # click 8.3 tells "not given" from an explicit default of None
        return click.option("-o", "--output", type=click.Path(dir_okay=False), help=help)
    return click.option(
        "-o",
        "--output",
        type=click.Path(dir_okay=False),
        default=default,
        show_default=True,
        help=help,
    )


def port_option(default: int, help: str, *, any_free: bool) -> Callable[[FC], FC]:
    """``--port N``, passed as ``port``; with *any_free*, 0 (the system picks) is allowed."""
    return click.option(
        "--port",
        type=click.IntRange(0 if any_free else 1, 65535),
        default=default,
        show_default=True,
        help=help,
    )


def pin_host_option(help: str) -> Callable[[FC], FC]:
    """``--pin-host HOST`` (repeatable), passed as ``pin_hosts``: a host the client pins."""
    return click.option("--pin-host", "pin_hosts", multiple=True, metavar="HOST", help=help)


def format_option(*, required: bool, help: str) -> Callable[[FC], FC]:
    """``-f/--format FORMAT``, passed as ``fmt``: a policy format of :mod:`pinset.formats`."""
    return click.option("-f", "--format", "fmt", required=required, metavar="FORMAT", help=help)


def now_option(help: str) -> Callable[[FC], FC]:
    """``--now DATE``, passed as ``now_text``; :func:`parse_now` reads it."""
    return click.option("--now", "now_text", metavar="DATE", help=help)


def parse_now(value: str | None) -> dt.datetime:
    """``--now``: a date (midnight UTC) or an ISO date-time; the current time when absent."""
    if value is None:
        return dt.datetime.now(dt.timezone.utc)
    try:
        if len(value) == 10:
            day = dt.date.fromisoformat(value)
            return dt.datetime.combine(day, dt.time(0), tzinfo=dt.timezone.utc)
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(
            f"--now {value!r} is not a date", key="--now", hint="write --now 2026-11-28"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)
