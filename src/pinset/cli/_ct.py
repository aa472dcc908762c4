"""``pinset ct logs | check``: the CT log lists, and a chain's embedded SCTs against them.

``logs`` shows each list with its date and age (and marks it STALE when it is older than
``pinset.ct.MAX_LIST_AGE``); ``check`` verifies the SCTs of a chain file (leaf
first, its issuer next) and says whether it meets the CT policy: exit 0 yes, 1 no,
2 bad input.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections import Counter
from typing import Any

import click
from cryptography import x509

from pinset.cli._app import SectionedCommand
from pinset.cli._files import read_input
from pinset.cli._options import json_option, now_option, parse_now
from pinset.cli._output import print_json
from pinset.ct import (
    MAX_LIST_AGE,
    SHIPPED,
    CTResult,
    LogList,
    check_chain,
    load_log_list,
    shipped_log_list,
)
from pinset.errors import ConfigError
from pinset.status import ExitStatus

__all__ = ["group"]

_LOG_LIST_HELP = "A v3 JSON log list, or a shipped list's name (default: google)."


@click.group("ct")
def group() -> None:
    """Certificate Transparency: log lists and embedded SCTs."""


def _warn(logs: LogList, now: dt.datetime) -> None:
    warning = logs.age_warning(now, MAX_LIST_AGE)
    if warning is not None:
        click.echo(f"warning: {warning}", err=True)


def _iso(when: dt.datetime | None) -> str | None:
    return None if when is None else when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _summary(name: str, logs: LogList, now: dt.datetime, full: bool) -> dict[str, Any]:
    age = logs.age(now)
    states = Counter(log.state or "none" for log in logs.logs)
    data: dict[str, Any] = {
        "name": name,
        "source": logs.source,
        "date": _iso(logs.timestamp),
        "version": logs.version,
        "age_days": None if age is None else age.days,
        "stale": age is None or age > MAX_LIST_AGE,
        "operators": len(logs.operators),
        "logs": len(logs.logs),
        "states": dict(sorted(states.items())),
    }
    if full:
        data["log_entries"] = [
            {
                "log_id": log.log_id_b64,
                "description": log.description,
                "operator": log.operator,
                "state": log.state,
                "state_since": _iso(log.state_since),
                "temporal_interval": None
                if log.interval is None
                else [_iso(log.interval[0]), _iso(log.interval[1])],
            }
            for log in logs.logs
        ]
    return data


_LOGS_EPILOG = """\b
Examples:
  pinset ct logs
  pinset ct logs --log-list log_list.json --json

\b
Exit status: 0 listed (a stale list is marked STALE), 2 a bad list."""


@group.command(
    "logs",
    cls=SectionedCommand,
    epilog=_LOGS_EPILOG,
    sections={"Lists": ["log_list", "now_text"], "Output": ["as_json"]},
)
@click.option(
    "--log-list", metavar="FILE", help="Show this v3 JSON log list instead of the shipped ones."
)
@now_option(help="Compute the lists' ages at this date instead of now (UTC).")
@json_option(help="Print the lists (and, with --log-list, every log) as JSON.")
def logs_command(log_list: str | None, now_text: str | None, as_json: bool) -> int:
    """Show the CT log lists: shipped (or FILE), their dates, ages and log states."""
    now = parse_now(now_text)
    if log_list is None:
        lists = [(s.name, shipped_log_list(s.name)) for s in SHIPPED]
    else:
        lists = [(log_list, load_log_list(log_list))]
    summaries = [_summary(name, logs, now, log_list is not None) for name, logs in lists]
    if as_json:
        print_json({"max_age_days": MAX_LIST_AGE.days, "lists": summaries})
    else:
        for data in summaries:
            age = "unknown" if data["age_days"] is None else f"{data['age_days']} days"
            if data["stale"]:
                age += f", STALE: over {MAX_LIST_AGE.days} days"
            version = f", version {data['version']}" if data["version"] else ""
            click.echo(
                f"{data['name']}: {data['date'] or 'no date'} (age {age}{version}), "
                f"{data['logs']} logs from {data['operators']} operators"
            )
            click.echo(
                "  states: " + ", ".join(f"{state} {n}" for state, n in data["states"].items())
            )
    # A list's age is this command's data (marked STALE, "stale" in JSON), not a warning.
    return int(ExitStatus.OK)


def _parse_at(value: str | None) -> dt.datetime:
    if value is None:
        return dt.datetime.now(dt.timezone.utc)
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        moment = None
    if moment is None or moment.utcoffset() is None:
        raise ConfigError(
            f"--at {value!r} is not an RFC 3339 time with a zone",
            key="--at",
            hint="write --at 2026-03-01T12:00:00Z",
        )
    return moment


def _read_chain(path: str) -> list[x509.Certificate]:
    data = read_input(path)
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError:
        raise ConfigError(
            "not a PEM certificate chain",
            source=path,
            hint="give the leaf and its issuer as PEM, leaf first (pinset pin --help shows how)",
        ) from None
    if len(certs) < 2:
        raise ConfigError(
            "the chain needs the leaf and its issuer",
            source=path,
            hint="append the issuing CA's certificate after the leaf: the SCTs sign its key",
        )
    try:
        certs[0].verify_directly_issued_by(certs[1])
    except Exception as exc:  # InvalidSignature, or a key type that cannot have signed it
        raise ConfigError(
            f"the second certificate did not issue the first ({type(exc).__name__})",
            source=path,
            hint="order the file leaf first, then the CA that signed it",
        ) from None
    return certs


def _print_result(path: str, result: CTResult) -> None:
    verdict = "meets the CT policy" if result.compliant else f"does not meet it ({result.reason})"
    click.echo(f"{path}: {verdict}: {result.detail}")
    for check in result.scts:
        log = check.log
        log_id = base64.b64encode(check.log_id).decode("ascii")
        name = f"{log.description} ({log.operator})" if log else f"unknown log {log_id}"
        state = log.state or "no state" if log else "-"
        counted = "counts" if check.counts else f"does not count: {check.note}"
        stamp = check.timestamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        click.echo(f"  {stamp}  {check.signature:<11}  {state:<9}  {name}; {counted}")


_CHECK_EPILOG = """\b
Examples:
  pinset ct check chain.pem
  pinset ct check chain.pem --at 2024-01-01T00:00:00Z --log-list google-2024-11 --json

\b
Exit status: 0 the chain meets the CT policy, 1 it does not, 2 bad input."""


@group.command(
    "check",
    cls=SectionedCommand,
    epilog=_CHECK_EPILOG,
    sections={"Check": ["at", "log_list"], "Output": ["as_json"]},
)
@click.argument("chain", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--at", metavar="RFC3339", help="Judge at this time instead of now.")
@click.option("--log-list", metavar="FILE", help=_LOG_LIST_HELP)
@json_option(help="Print the result as JSON.")
def check_command(chain: str, at: str | None, log_list: str | None, as_json: bool) -> int:
    """Verify the SCTs embedded in CHAIN's leaf (PEM: leaf, then its issuer)."""
    now = _parse_at(at)
    logs = load_log_list(log_list)
    certs = _read_chain(chain)
    result = check_chain(certs, logs, now=now)
    if as_json:
        print_json(result.to_dict())
    else:
        _print_result(chain, result)
    _warn(logs, now)
    return int(ExitStatus.OK if result.compliant else ExitStatus.CHECK_FAILED)
