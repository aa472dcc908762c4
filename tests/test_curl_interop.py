"""Debian's curl through pinset's forging proxy: its own pin check agrees with pinset's."""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest

import pinset
from pinset.cli import main
from pinset.policy import DomainRule, Policy
from pinset.testing import LeafCert, TestPKI, TLSServer
from pinset.testing._mitm import MitmProxy

CURL = shutil.which("curl")
pytestmark = pytest.mark.skipif(CURL is None, reason="curl is not installed")
CURL_PIN_MISMATCH = 90  # CURLE_SSL_PINNEDPUBKEYNOTMATCH


@pytest.fixture
def bundle(pki: TestPKI, proxy: MitmProxy, tmp_path: Path) -> Path:
    """The victim's trust store: the real root plus the attacker's CA."""
    path = tmp_path / "bundle.pem"
    path.write_text(pki.root.cert_pem.bytes().decode() + proxy.ca_pem)
    return path


def curl(server: TLSServer, proxy: MitmProxy, bundle: Path, pin: pinset.Pin | None) -> int:
    assert CURL is not None
    argv = [CURL, "-sS", "--max-time", "10", "--noproxy", "", "--proxy", proxy.url]
    argv += ["--cacert", str(bundle), f"https://localhost:{server.port}/"]
    if pin is not None:
        argv += ["--pinnedpubkey", f"sha256//{pin.b64}"]
    return subprocess.run(argv, capture_output=True, check=False, timeout=30).returncode


def pinset_allows(
    server: TLSServer, proxy: MitmProxy, bundle: Path, pin: pinset.Pin | None
) -> bool:
    """The same client in Python: a pinset context (or a plain one) through the proxy."""
    if pin is None:
        ctx = ssl.create_default_context(cafile=str(bundle))
    else:
        policy = Policy((DomainRule("localhost", (pin,), allow_single_pin=True),))
        ctx = pinset.ssl_context(policy, cafile=str(bundle))
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({"https": proxy.url}), urllib.request.HTTPSHandler(context=ctx)
    )
    try:
        with opener.open(f"https://localhost:{server.port}/", timeout=10) as response:
            response.read()
    except urllib.error.URLError as exc:
        reason: object = exc.reason
    else:
        return True
    assert isinstance(reason, ssl.SSLCertVerificationError), reason
    return False


def outcome(proxy: MitmProxy) -> str:
    (verdict,) = proxy.verdicts(["localhost"])
    proxy.reset()
    return verdict.outcome


def test_without_pin_curl_is_intercepted_like_an_unpinned_client(
    server: TLSServer, proxy: MitmProxy, bundle: Path
) -> None:
    assert curl(server, proxy, bundle, None) == 0
    assert outcome(proxy) == "INTERCEPTED"
    assert pinset_allows(server, proxy, bundle, None)
    assert outcome(proxy) == "INTERCEPTED"


def test_with_the_real_pin_curl_and_pinset_both_refuse(
    server: TLSServer, proxy: MitmProxy, bundle: Path, leaf: LeafCert
) -> None:
    pin = pinset.spki_pin(leaf.cert)
    assert curl(server, proxy, bundle, pin) == CURL_PIN_MISMATCH
    (verdict,) = proxy.verdicts(["localhost"])
    assert verdict.outcome == "REFUSED"
    assert verdict.leaked_bytes == 0
    proxy.reset()
    assert not pinset_allows(server, proxy, bundle, pin)
    assert outcome(proxy) == "REFUSED"


def test_control_pinning_the_forged_leaf_key_passes_both(
    server: TLSServer, proxy: MitmProxy, bundle: Path
) -> None:
    """curl pins the leaf key only; pinned to the forged leaf it is fooled, as pinset is."""
    assert curl(server, proxy, bundle, proxy.leaf_pin) == 0
    assert outcome(proxy) == "INTERCEPTED"
    assert pinset_allows(server, proxy, bundle, proxy.leaf_pin)
    assert outcome(proxy) == "INTERCEPTED"
    # pinset also matches the rest of the verified chain: the interception CA's key.
    assert pinset_allows(server, proxy, bundle, pinset.spki_pin(proxy.ca.cert))
    assert outcome(proxy) == "INTERCEPTED"


def test_curl_pinned_to_the_interception_ca_key_refuses(
    server: TLSServer, proxy: MitmProxy, bundle: Path
) -> None:
    """The difference between the two: curl's pin names the leaf key, never an issuer's."""
    assert curl(server, proxy, bundle, pinset.spki_pin(proxy.ca.cert)) == CURL_PIN_MISMATCH
    assert outcome(proxy) == "REFUSED"


def test_through_pinset_mitm_command(
    capsys: pytest.CaptureFixture[str], server: TLSServer, leaf: LeafCert
) -> None:
    """curl finds the proxy and the CA bundle through the environment pinset mitm sets."""
    assert CURL is not None
    target = f"https://localhost:{server.port}/"
    pin = f"sha256//{pinset.spki_pin(leaf.cert).b64}"
    base = ["mitm", "--json", "--pin-host", "localhost", "--"]

    assert main([*base, CURL, "-sS", target]) == 1
    assert json.loads(capsys.readouterr().out)["pinned"][0]["verdict"] == "INTERCEPTED"
    assert main([*base, CURL, "-sS", "--pinnedpubkey", pin, target]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["exit_code"] == CURL_PIN_MISMATCH
    assert data["pinned"][0] == {
        "host": "localhost",
        "verdict": "REFUSED",
        "connections": 1,
        "leaked_bytes": 0,
    }
