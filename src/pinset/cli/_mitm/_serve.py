"""``pinset mitm serve``: keep a forging proxy running for a device; print verdicts as they come.

The subcommand of ``pinset mitm`` (:mod:`pinset.cli._mitm` dispatches to :data:`serve`).
"""

from __future__ import annotations

import json
import tempfile
import threading
from pathlib import Path

import click

from pinset.cli._mitm._shared import (
    STYLE,
    ca_options,
    failures,
    judge,
    load_ca,
    print_verdicts,
    settle,
    start_proxy,
    verdicts_json,
)
from pinset.cli._options import json_option, pin_host_option, port_option
from pinset.cli._output import console
from pinset.errors import ConfigError
from pinset.status import ExitStatus
from pinset.testing._mitm import MitmProxy, MitmRecord, host_verdict

__all__ = ["serve"]


def _record_line(record: MitmRecord) -> str:
    verdict = host_verdict(record.host, [record])
    where = (
        f"{record.host} (via {record.target})"
        if record.host not in record.target
        else record.target
    )
    if verdict.outcome == "NOT SEEN":
        detail = record.error or "no TLS handshake"
    elif verdict.outcome == "INTERCEPTED":
        detail = f"{record.client_bytes} bytes leaked"
    else:
        detail = "0 bytes"
    return f"[{STYLE[verdict.outcome]}]{verdict.outcome:<11}[/] {where}  {detail}"


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@port_option(
    8080,
    "Proxy port on 127.0.0.1 (forward it to the device: adb reverse, ssh -R).",
    any_free=True,
)
@click.option(
    "--upstream",
    metavar="HOST:PORT",
    help="Reverse-proxy mode: terminate TLS here and relay to this loopback server.",
)
@ca_options
@click.option(
    "--ca-out",
    type=click.Path(dir_okay=False),
    help="Write the CA certificate here (default: a file in a temporary directory).",
)
@pin_host_option(help="A host the client pins; judged in the summary (repeat).")
@click.option(
    "--max-connections",
    type=click.IntRange(1),
    default=None,
    help="Stop after this many connections (default: run until Ctrl-C).",
)
@json_option(help="Print JSON lines instead of text.")
def serve(
    port: int,
    upstream: str | None,
    ca_cert: str | None,
    ca_key: str | None,
    ca_out: str | None,
    pin_hosts: tuple[str, ...],
    max_connections: int | None,
    as_json: bool,
) -> int:
    """Run the forging proxy for a device or emulator until Ctrl-C.

    Install the printed CA on the device (as a user CA, like an attacker would), point
    its proxy at this port, run the app, and read a verdict per connection.
    """
    ca = load_ca(ca_cert, ca_key)
    finished = threading.Event()
    count = 0
    lock = threading.Lock()

    def on_record(record: MitmRecord) -> None:
        nonlocal count
        with lock:
            if as_json:
                verdict = host_verdict(record.host, [record]).outcome
                click.echo(
                    json.dumps({"event": "connection", "verdict": verdict, **record.to_dict()})
                )
            else:
                console().print(_record_line(record))
            count += record.attempted  # a port probe without TLS does not count
            if max_connections is not None and count >= max_connections:
                finished.set()

    try:
        proxy = MitmProxy(ca=ca, upstream=upstream, port=port, on_record=on_record)
    except ValueError as exc:
        raise ConfigError(str(exc), key="--upstream", hint="give a loopback HOST:PORT") from None
    with tempfile.TemporaryDirectory(prefix="pinset-mitm-") as tmp:
        ca_path = Path(ca_out) if ca_out is not None else Path(tmp) / "pinset-interception-ca.pem"
        try:
            ca_path.write_text(proxy.ca_pem)
        except OSError as exc:
            raise ConfigError(f"cannot write the CA: {exc.strerror}", source=str(ca_path)) from None
        start_proxy(proxy, port)
        try:
            if as_json:
                click.echo(
                    json.dumps(
                        {
                            "event": "ready",
                            "proxy": proxy.url,
                            "ca_path": str(ca_path),
                            "ca_pem": proxy.ca_pem,
                        }
                    )
                )
            else:
                mode = f"reverse proxy to {upstream}" if upstream else "CONNECT proxy"
                click.echo(f"pinset mitm: {mode} listening on {proxy.url}")
                click.echo(f"interception CA written to {ca_path} (install it on the device):")
                click.echo(proxy.ca_pem, nl=False)
                click.echo("waiting for connections (Ctrl-C to stop)")
            try:
                while not finished.wait(0.5):
                    pass
            except KeyboardInterrupt:
                click.echo("stopping", err=True)
            records = settle(proxy)
        finally:
            proxy.stop()
    pinned, others = judge(records, pin_hosts, None)
    found = failures(pinned, others)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "event": "summary",
                    **verdicts_json(pinned, others),
                    "failures": found,
                }
            )
        )
    else:
        screen = console()
        print_verdicts(screen, pinned, others, found)
    return int(ExitStatus.CHECK_FAILED if found else ExitStatus.OK)
