"""What ``pinset mitm`` and ``pinset mitm serve`` share: the CA, the proxy's lifetime, the verdicts.

:func:`load_ca` reads the interception CA (or makes one); :func:`judge` sorts the
proxy's records into verdicts for pinned and for other hosts; :func:`print_verdicts` and
:func:`verdicts_json` show them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import click
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from rich.console import Console
from rich.table import Table
from rich.text import Text

from pinset.errors import ChainError, ConfigError
from pinset.hosts import canonical_host
from pinset.policy import Policy
from pinset.testing._mitm import HostVerdict, MitmProxy, MitmRecord, host_verdict
from pinset.testing._pki import CertificateAuthority, PrivateKey

__all__ = [
    "STYLE",
    "ca_options",
    "fail_line",
    "failures",
    "judge",
    "load_ca",
    "print_verdicts",
    "settle",
    "start_proxy",
    "verdicts_json",
]

STYLE = {"REFUSED": "bold green", "INTERCEPTED": "bold red", "NOT SEEN": "yellow"}


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
    if not isinstance(key, PrivateKey) or key.public_key() != cert.public_key():
        raise ChainError(
            "the private key does not belong to the CA certificate",
            source=key_path,
            hint="give the key the CA certificate was made with",
        )
    return CertificateAuthority(cert, key)


def judge(
    records: Sequence[MitmRecord], pin_hosts: Iterable[str], policy: Policy | None
) -> tuple[list[HostVerdict], list[HostVerdict]]:
    """(verdicts for the expected pinned hosts, verdicts for the other hosts contacted).

    A ``--pin-host`` is matched exactly; a policy rule stands for every seen host it
    pins (a rule that covers no seen host is reported under its own pattern, NOT SEEN).
    With neither, every contacted host is an "other" host: it is still judged.
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


def failures(pinned: Sequence[HostVerdict], others: Sequence[HostVerdict]) -> list[str]:
    """Why the check fails: one line per reason; empty when every contacted host refused.

    Every host the client contacted is judged, pinned or not: a client that sends
    application data through the forging proxy to any host has been intercepted. An
    expected host the client never contacted proves nothing, and neither does a
    client that contacted no host at all.
    """
    out: list[str] = []
    for v in [*pinned, *others]:
        if v.outcome == "INTERCEPTED":
            out.append(
                f"{v.host}: INTERCEPTED - the client accepted the forged certificate and sent "
                f"{v.leaked_bytes} bytes"
            )
        elif v.outcome == "NOT SEEN":
            out.append(
                f"{v.host}: NOT SEEN - the client never contacted it through the proxy, which "
                "proves nothing (does the client use the proxy? does it reach this host?)"
            )
    if not pinned and not others:
        out.append(
            "the client contacted no host through the proxy, which proves nothing (does it "
            "use HTTPS_PROXY, or for a JVM the default ProxySelector?)"
        )
    return out


def fail_line(reason: str) -> Text:
    """``FAIL reason``, with *reason* (it holds host names the client sent) never read as markup."""
    return Text.assemble(("FAIL", "red"), f" {reason}")


def _rule_for(policy: Policy, host: str) -> object:
    try:
        return policy.rule_for(host)
    except ConfigError:  # a seen name that is not a host name (an HTTP target)
        return None


def start_proxy(proxy: MitmProxy, port: int) -> MitmProxy:
    try:
        return proxy.start()
    except OSError as exc:
        raise ConfigError(
            f"cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}",
            key="--port",
            hint="choose a free --port, or 0 for any",
        ) from None


def verdict_table(pinned: Sequence[HostVerdict], others: Sequence[HostVerdict]) -> Table:
    table = Table(title="pinset mitm verdicts", title_justify="left")
    for name in ("host", "pinned", "verdict", "connections", "leaked bytes"):
        table.add_column(
            name, justify="right" if name in ("connections", "leaked bytes") else "left"
        )
    for verdict, is_pinned in [*((v, True) for v in pinned), *((v, False) for v in others)]:
        table.add_row(
            verdict.host,
            "yes" if is_pinned else "no",
            f"[{STYLE[verdict.outcome]}]{verdict.outcome}[/]",
            str(verdict.connections),
            str(verdict.leaked_bytes),
        )
    return table


def verdicts_json(pinned: Sequence[HostVerdict], others: Sequence[HostVerdict]) -> dict[str, Any]:
    """The verdicts in the JSON output: ``pinned`` and ``other_hosts``."""
    return {
        "pinned": [v.to_dict() for v in pinned],
        "other_hosts": [v.to_dict() for v in others],
    }


def print_verdicts(
    screen: Console,
    pinned: Sequence[HostVerdict],
    others: Sequence[HostVerdict],
    found: Sequence[str],
) -> None:
    """The verdict table (when the client contacted any host), then a FAIL line per failure."""
    if pinned or others:
        screen.print(verdict_table(pinned, others))
    for line in found:
        screen.print(fail_line(line))


def ca_options(f: Any) -> Any:
    f = click.option("--ca-key", type=click.Path(dir_okay=False), help="Its private key (PEM).")(f)
    f = click.option(
        "--ca-cert", type=click.Path(dir_okay=False), help="Interception CA certificate (PEM)."
    )(f)
    return f


def settle(proxy: MitmProxy) -> list[MitmRecord]:
    # The client has exited; give the proxy threads a moment to count the last bytes.
    try:
        return proxy.wait_closed(5.0)
    except TimeoutError:
        return proxy.records
