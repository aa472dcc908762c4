"""``pinset mitm``: attack a client with a forging proxy and judge every pinned host.

``pinset mitm [options] -- COMMAND...`` runs COMMAND behind the proxy, with the
interception CA in its trust store, then prints REFUSED / INTERCEPTED / NOT SEEN per
host. ``pinset mitm serve`` keeps a proxy running for a device and prints verdicts as
connections come.
"""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import tempfile
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import click
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from rich.table import Table

from pinset.cli._app import ExitStatus
from pinset.cli._output import console
from pinset.errors import ChainError, ConfigError
from pinset.hosts import canonical_host
from pinset.policy import Policy
from pinset.testing.mitm import HostVerdict, MitmProxy, MitmRecord, host_verdict
from pinset.testing.pki import CertificateAuthority

__all__ = ["command", "judge", "serve"]

_PROXY_VARS = ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy")
_NO_PROXY_VARS = ("NO_PROXY", "no_proxy")
_CA_VARS = ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "NODE_EXTRA_CA_CERTS")
_STYLE = {"REFUSED": "bold green", "INTERCEPTED": "bold red", "NOT SEEN": "yellow"}
_SERVE = "pinset.mitm.serve"
_CA_KEY_TYPES = (
    rsa.RSAPrivateKey,
    ec.EllipticCurvePrivateKey,
    ed25519.Ed25519PrivateKey,
    ed448.Ed448PrivateKey,
)


def load_ca(cert_path: str | None, key_path: str | None) -> CertificateAuthority:
    """The interception CA from PEM files, or a fresh one when neither is given."""
    if cert_path is None and key_path is None:
        return CertificateAuthority.create("pinset interception CA")
    if cert_path is None or key_path is None:
        raise ConfigError(
            "--ca-cert and --ca-key go together",
            hint="give both the CA certificate and its private key, or neither",
        )
    try:
        cert = x509.load_pem_x509_certificate(Path(cert_path).read_bytes())
    except (OSError, ValueError) as exc:
        raise ChainError(f"cannot read the CA certificate: {exc}", source=cert_path) from None
    try:
        key = serialization.load_pem_private_key(Path(key_path).read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise ChainError(
            f"cannot read the CA private key: {exc}",
            source=key_path,
            hint="give an unencrypted PEM private key",
        ) from None
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        is_ca = constraints.ca
    except x509.ExtensionNotFound:
        is_ca = False
    if not is_ca:
        raise ChainError(
            "the certificate is not a CA (no basicConstraints CA:TRUE)",
            source=cert_path,
            hint="give the interception CA's certificate, not a leaf",
        )
    try:
        cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    except x509.ExtensionNotFound:
        raise ChainError(
            "the CA certificate has no subjectKeyIdentifier",
            source=cert_path,
            hint="re-create the CA with a subjectKeyIdentifier (forged leaves refer to it)",
        ) from None
    if not isinstance(key, _CA_KEY_TYPES) or key.public_key() != cert.public_key():
        raise ChainError(
            "the private key does not belong to the CA certificate",
            source=key_path,
            hint="give the key the CA certificate was made with",
        )
    return CertificateAuthority(cert, key)


def judge(
    records: Sequence[MitmRecord], pin_hosts: Iterable[str], policy: Policy | None
) -> tuple[list[HostVerdict], list[HostVerdict]]:
    """(verdicts for pinned hosts, verdicts for the other hosts seen).

    A ``--pin-host`` is matched exactly; a policy rule stands for every seen host it
    pins (a rule that covers no seen host is reported under its own pattern, NOT SEEN).
    """
    seen = list(dict.fromkeys(r.host for r in records if r.attempted))
    pinned: list[str] = [canonical_host(h) for h in pin_hosts]
    if policy is not None:
        for rule in policy.rules:
            if rule.exclude:
                continue
            covered = [h for h in seen if _rule_for(policy, h) == rule]
            pinned.extend(covered or [rule.pattern])
    pinned = list(dict.fromkeys(pinned))
    others = [h for h in seen if h not in pinned]

    def verdict(host: str) -> HostVerdict:
        return host_verdict(host, (r for r in records if r.host == host))

    return [verdict(h) for h in pinned], [verdict(h) for h in others]


def _rule_for(policy: Policy, host: str) -> object:
    try:
        return policy.rule_for(host)
    except ConfigError:  # a seen name that is not a host name (an HTTP target)
        return None


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


def _start(proxy: MitmProxy, port: int) -> MitmProxy:
    try:
        return proxy.start()
    except OSError as exc:
        raise ConfigError(
            f"cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}",
            key="--port",
            hint="choose a free --port, or 0 for any",
        ) from None


def _table(pinned: Sequence[HostVerdict], others: Sequence[HostVerdict]) -> Table:
    table = Table(title="pinset mitm verdicts", title_justify="left")
    for name in ("host", "pinned", "verdict", "connections", "leaked bytes"):
        table.add_column(
            name, justify="right" if name in ("connections", "leaked bytes") else "left"
        )
    for verdict, is_pinned in [*((v, True) for v in pinned), *((v, False) for v in others)]:
        table.add_row(
            verdict.host,
            "yes" if is_pinned else "no",
            f"[{_STYLE[verdict.outcome]}]{verdict.outcome}[/]",
            str(verdict.connections),
            str(verdict.leaked_bytes),
        )
    return table


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


def _ca_options(f: Any) -> Any:
    f = click.option("--ca-key", type=click.Path(dir_okay=False), help="Its private key (PEM).")(f)
    f = click.option(
        "--ca-cert", type=click.Path(dir_okay=False), help="Interception CA certificate (PEM)."
    )(f)
    return f


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
            env = client_env(dict(os.environ), proxy.url, bundle)
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
        click.echo(
            json.dumps(
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
                },
                indent=2,
            )
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


def _settle(proxy: MitmProxy) -> list[MitmRecord]:
    # The client has exited; give the proxy threads a moment to count the last bytes.
    try:
        return proxy.wait_closed(5.0)
    except TimeoutError:
        return proxy.records


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
    return f"[{_STYLE[verdict.outcome]}]{verdict.outcome:<11}[/] {where}  {detail}"


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8080,
    show_default=True,
    help="Proxy port on 127.0.0.1 (forward it to the device: adb reverse, ssh -R).",
)
@click.option(
    "--upstream",
    metavar="HOST:PORT",
    help="Reverse-proxy mode: terminate TLS here and relay to this loopback server.",
)
@_ca_options
@click.option(
    "--ca-out",
    type=click.Path(dir_okay=False),
    help="Write the CA certificate here (default: a file in a temporary directory).",
)
@click.option(
    "--pin-host",
    "pin_hosts",
    multiple=True,
    metavar="HOST",
    help="A host the client pins; judged in the summary (repeat).",
)
@click.option(
    "--max-connections",
    type=click.IntRange(1),
    default=None,
    help="Stop after this many connections (default: run until Ctrl-C).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines instead of text.")
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
        _start(proxy, port)
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
            records = _settle(proxy)
        finally:
            proxy.stop()
    pinned, others = judge(records, pin_hosts, None)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "event": "summary",
                    "pinned": [v.to_dict() for v in pinned],
                    "other_hosts": [v.to_dict() for v in others],
                }
            )
        )
    else:
        console().print(_table(pinned, others))
    return int(ExitStatus.OK if all(v.ok for v in pinned) else ExitStatus.CHECK_FAILED)
