"""``pinset mitm``: attack a client with a forging proxy and judge every host it contacts.

``pinset mitm [options] -- COMMAND...`` runs COMMAND behind the proxy, with the
interception CA in its trust store (:mod:`pinset.cli._mitm._client`; for JVMs
:mod:`pinset.cli._mitm._jvm`), then prints REFUSED / INTERCEPTED per host it contacted
and NOT SEEN per expected host it did not. ``pinset mitm serve`` keeps a proxy
running for a device and prints verdicts as connections come
(:mod:`pinset.cli._mitm._serve`); what both share is in :mod:`pinset.cli._mitm._shared`.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import click

from pinset import policyfile
from pinset.cli._mitm._cacerts import jvm_cacerts as read_jvm_cacerts
from pinset.cli._mitm._client import client_env, run_client, write_trust
from pinset.cli._mitm._serve import serve
from pinset.cli._mitm._shared import (
    ca_options,
    failures,
    judge,
    load_ca,
    print_verdicts,
    settle,
    start_proxy,
    verdicts_json,
)
from pinset.cli._options import (
    cafile_option,
    json_option,
    pin_host_option,
    policy_option,
    port_option,
    timeout_option,
)
from pinset.cli._output import console, print_json
from pinset.status import ExitStatus
from pinset.testing._mitm import MitmProxy

__all__ = ["command", "judge", "serve"]

_SERVE = "pinset.mitm.serve"


class _MitmCommand(click.Command):
    """``pinset mitm -- COMMAND...``, with ``pinset mitm serve ...`` as a subcommand."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] == "serve":
            ctx.meta[_SERVE] = args[1:]
            return super().parse_args(ctx, [])
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        if _SERVE in ctx.meta:
            with serve.make_context("mitm serve", ctx.meta.pop(_SERVE), parent=ctx.parent) as sub:
                return serve.invoke(sub)
        return super().invoke(ctx)

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        super().format_epilog(ctx, formatter)
        with formatter.section("Commands"):
            formatter.write_dl(
                [("serve", "Run the proxy for a device; print verdicts as they come.")]
            )


@click.command(
    cls=_MitmCommand,
    context_settings={"allow_interspersed_args": False, "ignore_unknown_options": True},
)
@port_option(0, "Proxy port on 127.0.0.1 (0: any free port).", any_free=True)
@ca_options
@pin_host_option(help="A host the client pins and must contact; NOT SEEN fails (repeat).")
@policy_option(
    required=False,
    help="A pinset policy; its hosts count as pinned hosts the client must contact.",
)
@cafile_option(
    help="CAs the client trusts, to add the interception CA to (default: the system bundle)."
)
@click.option(
    "--jvm-cacerts",
    is_flag=True,
    help="Also trust the JVM's own cacerts in the JVM trust store ($JAVA_HOME or java on PATH).",
)
@timeout_option(default=60.0, help="Seconds the client command may run.")
@json_option(help="Print the verdicts as JSON.")
@click.argument("client_command", nargs=-1, type=click.UNPROCESSED, metavar="-- COMMAND...")
def command(
    port: int,
    ca_cert: str | None,
    ca_key: str | None,
    pin_hosts: tuple[str, ...],
    policy_path: str | None,
    cafile: str | None,
    jvm_cacerts: bool,
    timeout: float,
    as_json: bool,
    client_command: tuple[str, ...],
) -> int:
    """Run COMMAND behind a forging proxy and check that it refuses every host it contacts.

    The client gets HTTPS_PROXY/HTTP_PROXY pointing at the proxy and the interception CA
    in SSL_CERT_FILE, REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE and NODE_EXTRA_CA_CERTS; a JVM
    gets the same proxy and trust as system properties in JAVA_TOOL_OPTIONS. Every host
    the client contacted is judged: exit 0 only if each one refused the forged
    certificate with zero bytes leaked. --pin-host and --policy name hosts the client
    must contact: one it never contacted is NOT SEEN and fails the check (it proves
    nothing).
    """
    if not client_command:
        raise click.UsageError("give the client command after --, e.g. pinset mitm -- curl URL")
    policy = policyfile.load(policy_path) if policy_path is not None else None
    ca = load_ca(ca_cert, ca_key)
    jvm_extra = read_jvm_cacerts(os.environ) if jvm_cacerts else []
    with tempfile.TemporaryDirectory(prefix="pinset-mitm-") as tmp:
        proxy = start_proxy(MitmProxy(ca=ca, port=port), port)
        url = proxy.url
        try:
            trust = write_trust(Path(tmp), proxy, cafile, jvm_extra)
            env = client_env(dict(os.environ), proxy, trust)
            run = run_client(client_command, env, timeout)
            records = settle(proxy)
        finally:
            proxy.stop()
    pinned, others = judge(records, pin_hosts, policy)
    found = failures(pinned, others)
    if run.timed_out:
        found.append(f"the client command did not finish within {timeout:g}s")
    ok = not found
    if as_json:
        # Keep standard output pure JSON: the client's output goes to standard error.
        click.echo(run.stdout, nl=False, err=True)
        click.echo(run.stderr, nl=False, err=True)
        print_json(
            {
                "ok": ok,
                "proxy": url,
                "command": list(client_command),
                "exit_code": run.returncode,
                "timed_out": run.timed_out,
                **verdicts_json(pinned, others),
                "connections": [r.to_dict() for r in records],
                "failures": found,
            }
        )
    else:
        click.echo(run.stdout, nl=False)
        click.echo(run.stderr, nl=False, err=True)
        screen = console()
        state = "timed out" if run.timed_out else f"exited with status {run.returncode}"
        screen.print(f"client {state}; proxy was {url}")
        print_verdicts(screen, pinned, others, found)
        if ok:
            screen.print(
                "[green]PASS[/] every host the client contacted refused the forged "
                "certificate; 0 bytes leaked"
            )
    return int(ExitStatus.OK if ok else ExitStatus.CHECK_FAILED)
