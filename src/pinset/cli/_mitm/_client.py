"""The client side of ``pinset mitm -- COMMAND``: what it trusts, its environment, its run.

:func:`write_trust` writes the interception CA plus the CAs the client already trusts
as a PEM bundle (curl, Python, Node, Go, Rust) and as a PKCS#12 trust store (JVMs);
:func:`client_env` points every proxy and CA setting those clients read at them;
:func:`run_client` runs the command.
"""

from __future__ import annotations

import os
import ssl
import subprocess
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.utils import CryptographyDeprecationWarning

from pinset.cli._mitm._jvm import java_tool_options, jvm_options, write_truststore
from pinset.errors import ConfigError
from pinset.pins import pem_blocks
from pinset.testing._mitm import MitmProxy

__all__ = ["ClientRun", "ClientTrust", "client_env", "run_client", "write_trust"]

_PROXY_VARS = ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy")
_NO_PROXY_VARS = ("NO_PROXY", "no_proxy")
_CA_VARS = ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "NODE_EXTRA_CA_CERTS")


@dataclass(frozen=True, slots=True)
class ClientTrust:
    """The files that make a client trust the interception CA (and what it trusted before)."""

    bundle: Path
    truststore: Path


@dataclass(frozen=True, slots=True)
class ClientRun:
    """How the client command ended: exit status (``None`` if it timed out) and its output."""

    returncode: int | None
    timed_out: bool
    stdout: str
    stderr: str


def _system_bundle() -> bytes:
    paths = ssl.get_default_verify_paths()
    for candidate in (paths.cafile, paths.openssl_cafile):
        if candidate and os.path.isfile(candidate):
            return Path(candidate).read_bytes()
    return b""


def _certificates(pem: bytes, cafile: str | None) -> list[x509.Certificate]:
    out: list[x509.Certificate] = []
    certificates = (block for block in pem_blocks(pem) if block.kind == "CERTIFICATE")
    for number, block in enumerate(certificates, start=1):
        try:
            with warnings.catch_warnings():
                # A system root with a negative serial number is still a root the
                # client trusts; cryptography's deprecation note is not the tester's news.
                warnings.simplefilter("ignore", CryptographyDeprecationWarning)
                out.append(x509.load_pem_x509_certificate(block.text))
        except ValueError as exc:
            if cafile is None:
                continue  # the system bundle is not the tester's to fix
            raise ConfigError(
                f"cannot read certificate {number} of --cafile: {exc}",
                source=cafile,
                hint="give a PEM file of CA certificates",
            ) from None
    return out


def write_trust(
    directory: Path,
    proxy: MitmProxy,
    cafile: str | None,
    jvm_extra: Sequence[x509.Certificate] = (),
) -> ClientTrust:
    """Write the interception CA plus *cafile* (default: the system bundle), twice.

    ``pinset-mitm-bundle.pem`` for clients that read PEM, ``pinset-mitm-truststore.p12``
    for JVMs: the same certificates, so a JVM is attacked with the same trust as curl.
    *jvm_extra* (the JVM's own ``cacerts``) goes into the JVM's store only.
    """
    try:
        rest = Path(cafile).read_bytes() if cafile is not None else _system_bundle()
    except OSError as exc:
        raise ConfigError(f"cannot read --cafile: {exc}", source=cafile) from None
    trusted = _certificates(rest, cafile)
    bundle = directory / "pinset-mitm-bundle.pem"
    bundle.write_bytes(proxy.ca_pem.encode("ascii") + b"\n" + rest)
    truststore = write_truststore(
        directory / "pinset-mitm-truststore.p12", proxy.ca.cert, [*trusted, *jvm_extra]
    )
    return ClientTrust(bundle, truststore)


def client_env(base: dict[str, str], proxy: MitmProxy, trust: ClientTrust) -> dict[str, str]:
    """*base* with every proxy setting pointing at *proxy* and every CA setting at *trust*.

    Environment variables for curl, Python, Node, Go and Rust clients; JVM system
    properties in ``JAVA_TOOL_OPTIONS`` (appended to the user's own).
    """
    env = dict(base)
    for name in _NO_PROXY_VARS:
        env.pop(name, None)
    env.update(dict.fromkeys(_PROXY_VARS, proxy.url))
    env.update(dict.fromkeys(_CA_VARS, str(trust.bundle)))
    options = jvm_options(proxy.host, proxy.port, trust.truststore)
    env["JAVA_TOOL_OPTIONS"] = java_tool_options(base.get("JAVA_TOOL_OPTIONS"), options)
    return env


def run_client(argv: Sequence[str], env: dict[str, str], timeout: float) -> ClientRun:
    """Run the client command to its end or *timeout*, capturing its output."""
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
        return ClientRun(None, True, _text(exc.stdout), _text(exc.stderr))
    return ClientRun(done.returncode, False, done.stdout, done.stderr)


def _text(data: bytes | str | None) -> str:
    if isinstance(data, bytes):
        return data.decode("utf-8", "replace")
    return data or ""
