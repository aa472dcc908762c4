"""``pinset check HOST[:PORT] --policy FILE``: connect with enforcement and print the verdict.

The connection goes through :func:`pinset.ssl_context`, exactly as an
application's would. Exit 0 when the connection is allowed (pinned, not pinned,
expired policy, report-only), 1 when it is refused (pin mismatch or an ordinary
certificate failure: untrusted chain, wrong host name, expired certificate),
2 for a bad policy, 3 when the host cannot be reached.
"""

from __future__ import annotations

import socket
import ssl
from typing import Any

import click
from cryptography import x509

from pinset import policyfile
from pinset.chain import fetch_chain, network_error, peer_chain, verifying_context
from pinset.cli._app import SectionedCommand
from pinset.cli._inputs import parse_host_port
from pinset.cli._options import (
    cafile_option,
    json_option,
    policy_option,
    server_name_option,
    timeout_option,
)
from pinset.cli._output import certificate_rows, console, error_console, print_chain, print_json
from pinset.enforce import PinnedSSLSocket, ssl_context
from pinset.errors import ConfigError, NetworkError, PinMismatchError
from pinset.policy import Policy
from pinset.status import ExitStatus
from pinset.verdict import Verdict

__all__ = ["command", "load_policy"]

_VERIFY_FAILED = "verification-failed"


def _connect(
    ctx: ssl.SSLContext, host: str, port: int, sni: str, timeout: float
) -> tuple[Verdict, list[x509.Certificate]]:
    try:
        raw = socket.create_connection((host, port), timeout=timeout)
    except NetworkError:
        raise
    except OSError as exc:
        raise network_error(host, port, exc, timeout) from None
    with raw, ctx.wrap_socket(raw, server_hostname=sni) as tls:
        assert isinstance(tls, PinnedSSLSocket)
        verdict = tls.pinset_verdict
        assert verdict is not None
        return verdict, list(peer_chain(tls))


def load_policy(path: str) -> Policy:
    """:func:`pinset.policyfile.load`, with a fix for the usual mistakes and a warning if empty."""
    try:
        policy = policyfile.load(path)
    except ConfigError as exc:
        if exc.hint is None and exc.line is None:
            raise ConfigError(
                exc.message,
                source=exc.source or path,
                hint="give a policy file: pinset.toml or its JSON form (pinset init writes one)",
            ) from None
        raise
    if not policy.rules:
        error_console().print(
            f"warning: {path} has no [[domain]] rule: nothing is pinned", markup=False
        )
    return policy


_EPILOG = """\b
Examples:
  pinset check api.example.com --policy pinset.toml
  pinset check 127.0.0.1:8443 --policy pinset.toml --cafile root.pem
  pinset check 10.0.0.5 --server-name api.example.com --policy pinset.toml --json

\b
Exit status: 0 allowed, 1 refused (pin mismatch or the certificate does not
verify), 2 the policy or --cafile does not load, 3 the host cannot be reached."""


@click.command(
    "check",
    cls=SectionedCommand,
    epilog=_EPILOG,
    sections={
        "Policy": ["policy_path"],
        "Connection": ["cafile", "server_name", "timeout"],
        "Output": ["as_json"],
    },
)
@click.argument("target", metavar="HOST[:PORT]")
@policy_option(required=True, help="Policy file (pinset.toml or JSON).")
@cafile_option()
@server_name_option()
@timeout_option()
@json_option(help="Print the verdict and chain as JSON.")
def command(
    target: str,
    policy_path: str,
    cafile: str | None,
    server_name: str | None,
    timeout: float,
    as_json: bool,
) -> int:
    """Connect with pinning enforced and print the verdict, the chain and the matched pin."""
    policy = load_policy(policy_path)
    host, port = parse_host_port(target)
    sni = server_name or host
    if cafile is not None:
        verifying_context(cafile)  # a clear error for a bad --cafile, before connecting
    # A diagnostic run must not file failure reports with the production collector.
    ctx = ssl_context(policy, cafile=cafile, observers=())
    verdict: Verdict | None = None
    chain: list[x509.Certificate] = []
    error: str | None = None
    try:
        verdict, served = _connect(ctx, host, port, sni, timeout)
        chain = [x509.load_der_x509_certificate(d) for d in verdict.chain] or served
        title = "verified chain" if verdict.chain else "served chain"
    except PinMismatchError as exc:
        verdict = exc.verdict
        error = exc.message.splitlines()[0]
        if exc.hint:
            error += f"\nfix: {exc.hint}"
        chain = [x509.load_der_x509_certificate(d) for d in (verdict.chain if verdict else ())]
        title = "verified chain"
    except ssl.SSLCertVerificationError as exc:
        error = f"certificate verification failed: {exc.verify_message or exc.reason}"
        # Show what the server sent, so the user can see why it did not verify.
        fetched = fetch_chain(host, port, server_name=server_name, timeout=timeout, verify=False)
        chain = list(fetched.served)
        title = "served chain (not verified)"
    except NetworkError:
        raise
    except OSError as exc:
        raise network_error(host, port, exc, timeout) from None
    allowed = verdict is not None and verdict.allowed and error is None
    reason = verdict.reason if verdict is not None else _VERIFY_FAILED
    rows = certificate_rows(chain)
    matched = verdict.matched_pin if verdict is not None else None
    rule = verdict.rule if verdict is not None else policy.match(sni)
    expected = [str(p) for p in rule.pins] if rule is not None else []
    if as_json:
        print_json(
            {
                "target": target,
                "host": host,
                "port": port,
                "server_name": sni,
                "allowed": allowed,
                "verdict": reason,
                "rule": rule.pattern if rule is not None else None,
                "matched_pin": str(matched) if matched is not None else None,
                "expected_pins": expected,
                "chain": rows,
                "error": error,
            }
        )
    else:
        _print(target, reason, allowed, verdict, error, rows, title, expected, matched)
    return int(ExitStatus.OK if allowed else ExitStatus.CHECK_FAILED)


def _print(
    target: str,
    reason: str,
    allowed: bool,
    verdict: Verdict | None,
    error: str | None,
    rows: list[dict[str, Any]],
    title: str,
    expected: list[str],
    matched: Any,
) -> None:
    out = console()
    status = "[bold green]ALLOWED[/]" if allowed else "[bold red]REFUSED[/]"
    out.print(f"{status} {target}: {reason}")
    if verdict is not None and allowed:
        out.print(verdict.describe().splitlines()[0], markup=False)
    if error is not None:
        out.print(error, markup=False)
    print_chain(rows, title=title, matched=matched)
    if expected:
        out.print("pins in the policy:", markup=False)
        for pin in expected:
            mark = "  ✓ " if matched is not None and pin == str(matched) else "    "
            out.print(mark + pin, markup=False)
