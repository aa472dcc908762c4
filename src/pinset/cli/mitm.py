"""``pinset mitm``: attack a client with a forging proxy and judge every pinned host.

``pinset mitm [options] -- COMMAND...`` runs COMMAND behind the proxy, with the
interception CA in its trust store, then prints REFUSED / INTERCEPTED / NOT SEEN per
host. ``pinset mitm serve`` keeps a proxy running for a device and prints verdicts as
connections come (:mod:`pinset.cli._mitm_serve`); what both share is in
:mod:`pinset.cli._mitm_shared`.
"""

from __future__ import annotations

import os
import ssl
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from pinset.cli._app import ExitStatus
from pinset.cli._mitm_serve import serve
from pinset.cli._mitm_shared import _ca_options, _settle, _start, _table, judge, load_ca
from pinset.cli._output import console, print_json
from pinset.errors import ConfigError
from pinset.policy import Policy
from pinset.testing.mitm import HostVerdict, MitmProxy

__all__ = ["command", "judge", "serve"]

_PROXY_VARS = ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy")
_NO_PROXY_VARS = ("NO_PROXY", "no_proxy")
_CA_VARS = ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "NODE_EXTRA_CA_CERTS")
_SERVE = "pinset.mitm.serve"


def _system_bundle() -> bytes:
    paths = ssl.get_default_verify_paths()
    for candidate in (paths.cafile, paths.openssl_cafile):
        if candidate and os.path.isfile(candidate):
            return Path(candidate).read_bytes()
    return b""


def write_bundle(directory: Path, ca_pem: str, cafile: str | None) -> Path:
    """Write the interception CA plus *cafile* (default: the system bundle) to one PEM file."""
    try:
        rest = Path(cafile).read_bytes() if cafile is not None else _system_bundle()
    except OSError as exc:
        raise ConfigError(f"cannot read --cafile: {exc}", source=cafile) from None
    path = directory / "pinset-mitm-bundle.pem"
    path.write_bytes(ca_pem.encode("ascii") + b"\n" + rest)
    return path


def client_env(base: dict[str, str], proxy_url: str, bundle: Path) -> dict[str, str]:
    """*base* with every proxy variable pointing at the proxy and every CA variable at *bundle*."""
    env = dict(base)
    for name in _NO_PROXY_VARS:
        env.pop(name, None)
    env.update(dict.fromkeys(_PROXY_VARS, proxy_url))
    env.update(dict.fromkeys(_CA_VARS, str(bundle)))
    return env


def _failures(pinned: Sequence[HostVerdict]) -> list[str]:
    out: list[str] = []
    for v in pinned:
        if v.outcome == "INTERCEPTED":
            out.append(
                f"{v.host}: INTERCEPTED - the client accepted the forged certificate and sent "
                f"{v.leaked_bytes} bytes"
            )
        elif v.outcome == "NOT SEEN":
            out.append(
                f"{v.host}: NOT SEEN - the client never contacted it through the proxy, which "
                "proves nothing (does the client use HTTPS_PROXY? does it reach this host?)"
            )
    return out


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
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=0,
    show_default=True,
    help="Proxy port on 127.0.0.1 (0: any free port).",
)
@_ca_options
@click.option(
    "--pin-host",
    "pin_hosts",
    multiple=True,
    metavar="HOST",
    help="A host the client pins (repeat).",
)
@click.option(
    "--policy",
    "policy_path",
    type=click.Path(dir_okay=False),
    help="A pinset policy; its hosts count as pinned.",
)
@click.option(
    "--cafile",
    type=click.Path(dir_okay=False),
    help="CA bundle to add the interception CA to (default: the system bundle).",
)
@click.option(
    "--timeout",
    type=float,
    default=60.0,
    show_default=True,
    help="Seconds the client command may run.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the verdicts as JSON.")
@click.argument("client_command", nargs=-1, type=click.UNPROCESSED, metavar="-- COMMAND...")
def command(
    port: int,
    ca_cert: str | None,
    ca_key: str | None,
    pin_hosts: tuple[str, ...],
    policy_path: str | None,
    cafile: str | None,
    timeout: float,
    as_json: bool,
    client_command: tuple[str, ...],
) -> int:
    """Run COMMAND behind a forging proxy and check that it refuses every pinned host.

    The client gets HTTPS_PROXY/HTTP_PROXY pointing at the proxy and the interception CA
    in SSL_CERT_FILE, REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE and NODE_EXTRA_CA_CERTS. Exit 0
    only if every pinned host was contacted and refused with zero bytes leaked; a pinned
    host that was NOT SEEN fails the check (it proves nothing).
    """
    if not client_command:
        raise click.UsageError("give the client command after --, e.g. pinset mitm -- curl URL")
    policy = Policy.load(policy_path) if policy_path is not None else None
    if not pin_hosts and (policy is None or not any(not r.exclude for r in policy.rules)):
        raise ConfigError(
            "no pinned host to judge",
            key="--pin-host",
            hint="name the hosts the client pins with --pin-host HOST or --policy pinset.toml",
        )
    ca = load_ca(ca_cert, ca_key)
    with tempfile.TemporaryDirectory(prefix="pinset-mitm-") as tmp:
        proxy = _start(MitmProxy(ca=ca, port=port), port)
        url = proxy.url
        try:
            bundle = write_bundle(Path(tmp), proxy.ca_pem, cafile)
            env = client_env(dict(os.environ), url, bundle)
            returncode, timed_out, client_out, client_err = _run_client(
                client_command, env, timeout
            )
            records = _settle(proxy)
        finally:
            proxy.stop()
    pinned, others = judge(records, pin_hosts, policy)
    failures = _failures(pinned)
    if timed_out:
        failures.append(f"the client command did not finish within {timeout:g}s")
    ok = not failures
    if as_json:
        # Keep standard output pure JSON: the client's output goes to standard error.
        click.echo(client_out, nl=False, err=True)
        click.echo(client_err, nl=False, err=True)
        print_json(
            {
                "ok": ok,
                "proxy": url,
                "command": list(client_command),
                "exit_code": returncode,
                "timed_out": timed_out,
                "pinned": [v.to_dict() for v in pinned],
                "other_hosts": [v.to_dict() for v in others],
                "connections": [r.to_dict() for r in records],
                "failures": failures,
            }
        )
    else:
        click.echo(client_out, nl=False)
        click.echo(client_err, nl=False, err=True)
        screen = console()
        state = "timed out" if timed_out else f"exited with status {returncode}"
        screen.print(f"client {state}; proxy was {url}")
        screen.print(_table(pinned, others))
        for line in failures:
            screen.print(f"[red]FAIL[/] {line}")
        if ok:
            screen.print(
                "[green]PASS[/] every pinned host refused the forged certificate; 0 bytes leaked"
            )
    return int(ExitStatus.OK if ok else ExitStatus.CHECK_FAILED)


def _run_client(
    argv: Sequence[str], env: dict[str, str], timeout: float
) -> tuple[int | None, bool, str, str]:
    """(exit status or None, timed out, stdout, stderr) of the client command."""
    try:
        done = subprocess.run(
            list(argv),
            env=env,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError:
        raise ConfigError(
            f"command not found: {argv[0]}", hint="give the client command after --"
        ) from None
    except PermissionError as exc:
        raise ConfigError(f"cannot run {argv[0]}: {exc.strerror}") from None
    except subprocess.TimeoutExpired as exc:
        return None, True, _text(exc.stdout), _text(exc.stderr)
    return done.returncode, False, done.stdout, done.stderr


def _text(data: bytes | str | None) -> str:
    if isinstance(data, bytes):
        return data.decode("utf-8", "replace")
    return data or ""
