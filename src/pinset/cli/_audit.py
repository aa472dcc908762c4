"""``pinset audit``: audit policies, platform configs, APKs and IPAs, and the live servers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from pinset.audit import ArchiveLimits, audit, chain_from_file
from pinset.audit._apk import MAX_DEX_FILES, MAX_TOTAL_INFLATED
from pinset.audit._live import DEFAULT_CONCURRENCY, parse_endpoint
from pinset.audit._model import AuditReport, LiveChain
from pinset.audit._output.json import to_json
from pinset.audit._output.junit import to_junit
from pinset.audit._output.sarif import to_sarif
from pinset.audit._output.text import render_text
from pinset.cli._app import Choice, SectionedCommand
from pinset.cli._options import (
    cafile_option,
    json_option,
    now_option,
    output_option,
    parse_now,
    port_option,
    timeout_option,
)
from pinset.cli._output import console, error_console, show_progress
from pinset.errors import ConfigError

__all__ = ["command"]

FORMATS = ("text", "json", "sarif", "junit")


def _pairs(values: tuple[str, ...], option: str, shape: str) -> list[tuple[str, str]]:
    out = []
    for value in values:
        key, sep, rest = value.partition("=")
        if not sep or not key.strip() or not rest.strip():
            raise ConfigError(
                f"{option} {value!r} is not {shape}", key=option, hint=f"write {option} {shape}"
            )
        out.append((key.strip(), rest.strip()))
    return out


@contextmanager
def _progress() -> Iterator[Callable[[int], Callable[[LiveChain], None] | None]]:
    """A factory for a rich progress callback on a terminal; a no-op in CI and pipes."""
    if not show_progress():
        yield lambda _total: None
        return
    from rich.progress import Progress

    with Progress(console=error_console(), transient=True) as progress:

        def start(total: int) -> Callable[[LiveChain], None]:
            task = progress.add_task("fetching chains", total=total)
            return lambda _chain: progress.advance(task)

        yield start


def _render(report: AuditReport, fmt: str) -> str | None:
    if fmt == "json":
        return to_json(report)
    if fmt == "sarif":
        return to_sarif(report)
    if fmt == "junit":
        return to_junit(report)
    return None


_EPILOG = """\b
Examples:
  pinset audit pinset.toml
  pinset audit app/src/main/res/xml/network_security_config.xml Info.plist
  pinset audit app-release.apk App.ipa --format sarif -o pinset.sarif
  pinset audit pinset.toml --live                      # fetch every pinned host
  pinset audit pinset.toml --live --connect api.example.com=127.0.0.1:8443 \\
      --cafile root.pem
  pinset audit pinset.toml --chain api.example.com=served.pem --now 2027-01-01
  pinset audit pinset.toml --live --log-list log_list.json   # require-ct domains

\b
Exit status: 0 no error-level finding, 1 an error-level finding, 2 a target
cannot be read or an option is wrong."""


@click.command(
    "audit",
    cls=SectionedCommand,
    epilog=_EPILOG,
    sections={
        "Live servers": [
            "live", "hosts", "connects", "port", "cafile", "timeout", "concurrency",
        ],
        "Offline": ["chains", "now_text", "min_days"],
        "Certificate Transparency": ["log_list"],
        "APK and IPA limits": ["max_inflated_mb", "max_dex_files"],
        "Output": ["fmt", "as_json", "output"],
    },
)  # fmt: skip
@click.argument("targets", nargs=-1, required=True, metavar="TARGET...")
@click.option("--live", is_flag=True, help="Fetch the served chain of every pinned domain.")
@click.option(
    "--host",
    "hosts",
    multiple=True,
    metavar="HOST[:PORT]",
    help="Also fetch this name (with --live); a port here overrides --port for it.",
)
@click.option(
    "--connect",
    "connects",
    multiple=True,
    metavar="HOST=ADDR[:PORT]",
    help="Audit HOST by connecting to ADDR:PORT (SNI and name checks stay HOST).",
)
@port_option(443, help="Port of the live fetches.", any_free=False)
@click.option(
    "--chain",
    "chains",
    multiple=True,
    metavar="HOST=FILE",
    help="Use the chain in FILE for HOST instead of fetching it (offline).",
)
@cafile_option(
    help="PEM file of CA certificates to verify the live fetches against (default: the system "
    "store)."
)
@timeout_option()
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    default=DEFAULT_CONCURRENCY,
    show_default=True,
    help="Live fetches in flight at once.",
)
@now_option(help="Audit as of this date (UTC).")
@click.option(
    "--min-days",
    type=click.IntRange(min=0),
    default=30,
    show_default=True,
    help="Warn about pins and leaf certificates expiring within this many days.",
)
@click.option(
    "--log-list",
    metavar="FILE",
    help="Check require-ct domains' chains against this v3 JSON CT log list, or a shipped "
    "list's name (default: google; see pinset ct logs).",
)
@click.option(
    "--format",
    "fmt",
    type=Choice(FORMATS),
    default="text",
    show_default=True,
    help="Report format: text for people, json, SARIF for code scanning, JUnit XML for CI.",
)
@click.option(
    "--max-inflated-mb",
    type=click.IntRange(min=1),
    default=MAX_TOTAL_INFLATED // (1024 * 1024),
    show_default=True,
    help="Decompress at most this many MB from one APK or IPA (a zip bomb stops there).",
)
@click.option(
    "--max-dex-files",
    type=click.IntRange(min=1),
    default=MAX_DEX_FILES,
    show_default=True,
    help="Refuse an APK with more classes*.dex files than this.",
)
@json_option(help="Same as --format json.")
@output_option(help="Write the report to this file instead of standard output.")
def command(
    targets: tuple[str, ...],
    live: bool,
    hosts: tuple[str, ...],
    connects: tuple[str, ...],
    port: int,
    chains: tuple[str, ...],
    cafile: str | None,
    timeout: float,
    concurrency: int,
    now_text: str | None,
    min_days: int,
    log_list: str | None,
    max_inflated_mb: int,
    max_dex_files: int,
    fmt: str,
    as_json: bool,
    output: str | None,
) -> int:
    """Audit pin policies, platform configs, APKs and IPAs, and with --live the servers.

    A TARGET is a pinset policy, a platform config (network security config,
    Info.plist, OkHttp code, HPKP header) or an .apk / .ipa.
    """
    if as_json:
        fmt = "json"
    now = parse_now(now_text)
    extra = [parse_endpoint(h, default_port=port) for h in hosts]
    connect = {
        name: parse_endpoint(addr, default_port=port)
        for name, addr in _pairs(connects, "--connect", "HOST=ADDR[:PORT]")
    }
    supplied = {
        host: chain_from_file(host, path) for host, path in _pairs(chains, "--chain", "HOST=FILE")
    }
    with _progress() as on_live:
        report = audit(
            list(targets),
            now=now,
            min_days=min_days,
            chains=supplied,
            live=live,
            hosts=extra,
            connect=connect,
            port=port,
            timeout=timeout,
            concurrency=concurrency,
            cafile=cafile,
            on_live=on_live,
            archive_limits=ArchiveLimits(
                max_total=max_inflated_mb * 1024 * 1024, max_dex_files=max_dex_files
            ),
            ct_log_list=log_list,
        )
    text = _render(report, fmt)
    if output is not None:
        if text is None:
            from io import StringIO

            from rich.console import Console

            buffer = StringIO()
            render_text(report, Console(file=buffer, width=200, color_system=None))
            text = buffer.getvalue()
        try:
            Path(output).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot write: {exc.strerror or exc}", source=output) from None
        error_console().print(f"wrote {output} (exit {report.exit_code})", highlight=False)
    elif text is None:
        render_text(report, console())
    else:
        click.echo(text, nl=False)
    # Also on stderr, so that a report redirected to a file does not hide the failure.
    for item in report.unreadable:
        message = item.message.removeprefix("cannot read: ")
        click.echo(f"error: cannot read {item.target}: {message}", err=True)
    return report.exit_code
