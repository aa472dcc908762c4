"""Debug overrides: a team proxy CA trusted (and bypassing pins) only with ``debug=True``.

Loopback only: a pinned server, and a forging proxy whose CA plays the team's
interception CA (Charles, mitmproxy, a corporate inspection box).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import socket
import ssl
import warnings
from collections.abc import Iterator
from pathlib import Path

import defusedxml.ElementTree as SafeET
import pytest
from hypothesis import given, settings

import pinset
from collector_fixtures import ReportSink, sink  # noqa: F401 - a fixture
from pinset import formats, policyfile
from pinset.errors import ConfigError, PinMismatchError
from pinset.formats import ExportError, ExportWarning
from pinset.formats._android import raw_resource_name
from pinset.policy import DebugOverrides, Policy
from pinset.reporting import BackgroundReporter
from pinset.testing import CertificateAuthority, LeafCert, MitmProxy, TestPKI, TLSServer
from pinset.verdict import REASONS, Connection, Verdict
from strategies import policies

# Two pins of keys nobody serves here (real digests, not placeholders).
BACKUP = "sha256/" + base64.b64encode(hashlib.sha256(b"offline backup key").digest()).decode()
OTHER = "sha256/" + base64.b64encode(hashlib.sha256(b"another key").digest()).decode()


@pytest.fixture(scope="module")
def team_ca() -> CertificateAuthority:
    return CertificateAuthority.create("team proxy CA")


@pytest.fixture
def via_proxy(team_ca: CertificateAuthority, server: TLSServer) -> Iterator[MitmProxy]:
    with MitmProxy(ca=team_ca, upstream=f"127.0.0.1:{server.port}") as proxy:
        yield proxy


@pytest.fixture
def override_policy(tmp_path: Path, leaf: LeafCert, team_ca: CertificateAuthority) -> Path:
    """The policy with the team CA as a debug anchor that overrides the pins."""
    return write_policy(tmp_path, leaf, team_ca, OVERRIDE)


def write_policy(tmp_path: Path, leaf: LeafCert, team_ca: CertificateAuthority, debug: str) -> Path:
    team_ca.cert_pem.write_to_path(tmp_path / "team-proxy-ca.pem")
    path = tmp_path / "pinset.toml"
    path.write_text(
        "[[domain]]\n"
        'name = "localhost"\n'
        f'pins = ["{pinset.spki_pin(leaf.cert)}", "{BACKUP}"]\n'
        "\n"
        "[debug-overrides]\n" + debug,
        encoding="utf-8",
    )
    return path


def handshake(ctx: ssl.SSLContext, port: int) -> ssl.SSLSocket:
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    return ctx.wrap_socket(raw, server_hostname="localhost")


def refused_verdict(error: PinMismatchError) -> Verdict:
    assert error.verdict is not None
    return error.verdict


OVERRIDE = 'trust-anchors = ["team-proxy-ca.pem"]\noverride-pins = true\n'


def context(
    path: Path, cafile: str, heard: list[Verdict], *, debug: bool = False
) -> ssl.SSLContext:
    def observe(verdict: Verdict, _connection: Connection) -> None:
        heard.append(verdict)

    return pinset.ssl_context(path, cafile=cafile, observers=[observe], debug=debug)


def test_direct_connection_is_pinned_in_both_modes(
    override_policy: Path,
    cafile: str,
    server: TLSServer,
) -> None:
    for debug in (False, True):
        heard: list[Verdict] = []
        with handshake(context(override_policy, cafile, heard, debug=debug), server.port) as tls:
            assert tls.pinset_verdict.reason == "pinned"  # type: ignore[attr-defined]


def test_without_debug_the_proxy_is_refused(
    override_policy: Path,
    team_ca: CertificateAuthority,
    cafile: str,
    via_proxy: MitmProxy,
) -> None:
    # The team CA is not even trusted: certificate validation fails before pinning.
    with pytest.raises(ssl.SSLCertVerificationError) as info:
        handshake(context(override_policy, cafile, []), via_proxy.port)
    assert not isinstance(info.value, PinMismatchError)
    # Trusted some other way (installed on the machine), the pins still refuse it.
    ctx = context(override_policy, cafile, [])
    ctx.load_verify_locations(cadata=team_ca.cert_pem.bytes().decode("ascii"))
    with pytest.raises(PinMismatchError) as refused:
        handshake(ctx, via_proxy.port)
    assert refused_verdict(refused.value).reason == "pin-mismatch"


def test_debug_with_override_pins_allows_the_proxy_and_says_so(
    override_policy: Path,
    team_ca: CertificateAuthority,
    cafile: str,
    via_proxy: MitmProxy,
    caplog: pytest.LogCaptureFixture,
) -> None:
    heard: list[Verdict] = []
    ctx = context(override_policy, cafile, heard, debug=True)
    with caplog.at_level(logging.WARNING, logger="pinset"), handshake(ctx, via_proxy.port) as tls:
        verdict = tls.pinset_verdict  # type: ignore[attr-defined]
    assert verdict is not None
    assert (verdict.allowed, verdict.reason, verdict.matched_pin) == (True, "debug-override", None)
    assert verdict.served_pins[0] == via_proxy.leaf_pin
    assert verdict.served_pins[-1] == pinset.spki_pin(team_ca.cert)
    assert [v.reason for v in heard] == ["debug-override"]
    assert "allowed by a debug override" in caplog.text
    assert "debug-override" in REASONS


def test_debug_without_override_pins_trusts_the_ca_but_keeps_the_pins(
    tmp_path: Path,
    leaf: LeafCert,
    team_ca: CertificateAuthority,
    cafile: str,
    via_proxy: MitmProxy,
) -> None:
    path = write_policy(tmp_path, leaf, team_ca, 'trust-anchors = ["team-proxy-ca.pem"]\n')
    with pytest.raises(PinMismatchError) as refused:
        handshake(context(path, cafile, [], debug=True), via_proxy.port)
    # Validation passed (the anchor is trusted); the pins refused the forged leaf.
    assert refused_verdict(refused.value).reason == "pin-mismatch"
    assert refused_verdict(refused.value).served_pins[-1] == pinset.spki_pin(team_ca.cert)


def test_override_pins_only_bypasses_chains_ending_at_a_debug_anchor(
    override_policy: Path,
    tmp_path: Path,
    pki: TestPKI,
    cafile: str,
    server: TLSServer,
) -> None:
    # A rogue CA trusted through cafile (not a debug anchor) gets no bypass.
    rogue_file = tmp_path / "rogue.pem"
    pki.rogue.cert_pem.write_to_path(rogue_file)
    with MitmProxy(ca=pki.rogue, upstream=f"127.0.0.1:{server.port}") as proxy:
        ctx = context(override_policy, cafile, [], debug=True)
        ctx.load_verify_locations(cafile=str(rogue_file))
        with pytest.raises(PinMismatchError) as refused:
            handshake(ctx, proxy.port)
    assert refused_verdict(refused.value).reason == "pin-mismatch"


@pytest.mark.parametrize(
    "name",
    ["PINSET_DEBUG", "PINSET_DEBUG_OVERRIDES", "DEBUG", "PINSET_ALLOW_DEBUG_OVERRIDES"],
)
def test_no_environment_variable_switches_debug_on(
    override_policy: Path,
    name: str,
    cafile: str,
    via_proxy: MitmProxy,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for value in ("1", "true"):
        monkeypatch.setenv(name, value)
        with pytest.raises(ssl.SSLCertVerificationError):
            handshake(context(override_policy, cafile, []), via_proxy.port)


def test_the_enforce_package_reads_no_environment() -> None:
    # The stronger form of the test above: no module of the context reads os.environ.
    import pinset.enforce as enforce

    for module in Path(enforce.__file__).parent.glob("*.py"):
        text = module.read_text(encoding="utf-8")
        assert "os.environ" not in text, module.name
        assert "getenv" not in text, module.name


def test_debug_false_does_not_read_the_anchor_files(
    tmp_path: Path, leaf: LeafCert, team_ca: CertificateAuthority, cafile: str, server: TLSServer
) -> None:
    path = write_policy(tmp_path, leaf, team_ca, 'trust-anchors = ["missing.pem"]\n')
    with handshake(context(path, cafile, []), server.port) as tls:
        assert tls.pinset_verdict.reason == "pinned"  # type: ignore[attr-defined]


def test_debug_must_be_a_bool(
    override_policy: Path,
) -> None:
    with pytest.raises(ConfigError, match="debug must be True or False"):
        pinset.ssl_context(override_policy, debug="yes")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read debug trust anchor 'team-proxy-ca.pem'"),
        (b"not a certificate\n", "holds no PEM certificate"),
        (b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "no PEM certificate"),
    ],
)
def test_anchor_file_errors_name_the_policy_file_and_line(
    tmp_path: Path,
    leaf: LeafCert,
    team_ca: CertificateAuthority,
    content: bytes | None,
    message: str,
) -> None:
    path = write_policy(tmp_path, leaf, team_ca, '\ntrust-anchors = [\n  "team-proxy-ca.pem",\n]\n')
    anchor = tmp_path / "team-proxy-ca.pem"
    if content is None:
        anchor.unlink()
    else:
        anchor.write_bytes(content)
    with pytest.raises(ConfigError, match=message) as info:
        pinset.ssl_context(path, debug=True)
    assert (info.value.source, info.value.line, info.value.key) == (
        str(path),
        8,
        "trust-anchors",
    )


def test_a_leaf_certificate_is_not_an_anchor(
    override_policy: Path,
    tmp_path: Path,
    leaf: LeafCert,
) -> None:
    leaf.cert_chain_pems[0].write_to_path(tmp_path / "team-proxy-ca.pem")
    with pytest.raises(ConfigError, match="not a CA") as info:
        pinset.ssl_context(override_policy, debug=True)
    assert info.value.line == 6


def test_anchor_paths_are_relative_to_the_policy_file(
    override_policy: Path,
    tmp_path: Path,
    cafile: str,
    via_proxy: MitmProxy,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    with handshake(context(override_policy, cafile, [], debug=True), via_proxy.port) as tls:
        assert tls.pinset_verdict.reason == "debug-override"  # type: ignore[attr-defined]
    assert os.getcwd() == str(elsewhere)


# -- the policy file ------------------------------------------------------------------

POLICY = f"""[[domain]]
name = "api.example.com"
pins = ["{BACKUP}", "{OTHER}"]

[debug-overrides]
trust-anchors = ["team-proxy-ca.pem", "certs/charles.pem"]
override-pins = true
"""


def test_policy_file_round_trips_the_section() -> None:
    policy = policyfile.loads(POLICY)
    assert policy.debug_overrides == DebugOverrides(
        ("team-proxy-ca.pem", "certs/charles.pem"), override_pins=True
    )
    assert policyfile.loads(policyfile.dumps(policy)) == policy
    assert policyfile.loads(policyfile.dumps(policy, format="json"), format="json") == policy
    assert "[debug-overrides]" in policyfile.dumps(policy)
    plain = policyfile.loads(POLICY.split("[debug-overrides]")[0])
    assert plain.debug_overrides is None
    assert plain != policy
    assert "debug-overrides" not in policyfile.dumps(plain)


def test_override_pins_defaults_to_false() -> None:
    text = POLICY.replace("override-pins = true\n", "")
    overrides = policyfile.loads(text).debug_overrides
    assert overrides is not None
    assert overrides.override_pins is False


@pytest.mark.parametrize(
    ("section", "line", "key", "message"),
    [
        ('trust-anchors = "ca.pem"\n', 6, "trust-anchors", "must be a list of PEM file paths"),
        ('trust-anchors = [\n  "ca.pem",\n  3,\n]\n', 8, "trust-anchors", "is not a file path"),
        ('trust-anchors = ["ca.pem"]\noverride-pins = "yes"\n', 7, "override-pins", "true or"),
        ("override-pins = true\n", 6, "override-pins", "without trust anchors"),
        ('trust-anchor = ["ca.pem"]\n', 6, "trust-anchor", "did you mean"),
    ],
)
def test_policy_file_errors_have_file_line_and_key(
    section: str, line: int, key: str, message: str
) -> None:
    text = POLICY.split("[debug-overrides]")[0] + "[debug-overrides]\n" + section
    with pytest.raises(ConfigError) as info:
        policyfile.loads(text, source="pinset.toml")
    error = info.value
    assert (error.source, error.line, error.key) == ("pinset.toml", line, key)
    assert message in error.diagnostics()


def test_section_must_be_a_table() -> None:
    with pytest.raises(ConfigError, match=r"\[debug-overrides\] must be a table"):
        policyfile.loads('debug-overrides = "yes"\n', source="pinset.toml")


def test_debug_overrides_value_is_validated() -> None:
    with pytest.raises(ConfigError):
        DebugOverrides("ca.pem")  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        Policy(debug_overrides="ca.pem")  # type: ignore[arg-type]
    assert hash(DebugOverrides(("a.pem",))) == hash(DebugOverrides(["a.pem"], lines=(3,)))  # type: ignore[arg-type]


# -- Android <debug-overrides> ------------------------------------------------------


def android_export(policy: Policy) -> tuple[str, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        text = formats.dumps(policy, "android")
    assert isinstance(text, str)
    return text, [str(w.message) for w in caught if issubclass(w.category, ExportWarning)]


def test_android_export_writes_debug_overrides_with_raw_resources() -> None:
    text, warned = android_export(policyfile.loads(POLICY))
    root = SafeET.fromstring(text)
    (debug,) = root.findall("debug-overrides")
    (anchors,) = debug.findall("trust-anchors")
    assert [c.attrib for c in anchors.findall("certificates")] == [
        {"src": "@raw/team_proxy_ca", "overridePins": "true"},
        {"src": "@raw/charles", "overridePins": "true"},
    ]
    # Android's own default inside debug-overrides is overridePins="true": always write it.
    plain = policyfile.loads(POLICY.replace("override-pins = true\n", ""))
    assert 'overridePins="false"' in android_export(plain)[0]
    assert any("res/raw/team_proxy_ca.pem" in w and "debuggable" in w for w in warned)
    assert "debug-overrides" not in android_export(policyfile.loads(POLICY.split("[debug")[0]))[0]


def test_android_import_maps_debug_overrides_back() -> None:
    text, _ = android_export(policyfile.loads(POLICY))
    imported = formats.loads(text, format="android")
    assert imported.policy.debug_overrides == DebugOverrides(
        ("team_proxy_ca.pem", "charles.pem"), override_pins=True
    )


@pytest.mark.parametrize(
    ("certificates", "expected"),
    [
        # Absent overridePins inside <debug-overrides>: Android's default there is true.
        ('<certificates src="@raw/debug_ca" />', DebugOverrides(("debug_ca.pem",), True)),
        (
            '<certificates src="@raw/debug_ca" overridePins="false" />',
            DebugOverrides(("debug_ca.pem",), False),
        ),
        # user and system name no file: they stay platform facts, not policy anchors.
        ('<certificates src="user" />', None),
        (
            '<certificates src="system" /><certificates src="@raw/proxy" />',
            DebugOverrides(("proxy.pem",), True),
        ),
    ],
)
def test_android_import_of_debug_overrides(
    certificates: str, expected: DebugOverrides | None
) -> None:
    xml = (
        "<network-security-config><debug-overrides><trust-anchors>"
        f"{certificates}</trust-anchors></debug-overrides></network-security-config>"
    )
    assert formats.loads(xml, format="android").policy.debug_overrides == expected


def test_android_import_of_mixed_override_pins_is_false_with_a_warning() -> None:
    xml = (
        "<network-security-config>\n<debug-overrides>\n<trust-anchors>\n"
        '<certificates src="@raw/a" overridePins="true" />\n'
        '<certificates src="@raw/b" overridePins="false" />\n'
        "</trust-anchors>\n</debug-overrides>\n</network-security-config>\n"
    )
    imported = formats.loads(xml, format="android", source="nsc.xml")
    assert imported.policy.debug_overrides == DebugOverrides(("a.pem", "b.pem"), False)
    (finding,) = [f for f in imported.findings if f.id == "debug-override-pins-mixed"]
    assert (finding.severity, finding.source, finding.line) == ("warning", "nsc.xml", 2)


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("team-proxy-ca.pem", "team_proxy_ca"),
        ("certs/Charles Proxy.crt", "charles_proxy"),
        ("2024-ca.pem", "ca_2024_ca"),
        ("a_.pem", "a_"),
        ("C:\\certs\\corp.pem", "corp"),
    ],
)
def test_raw_resource_names(path: str, name: str) -> None:
    assert raw_resource_name(path) == name


def test_android_export_refuses_two_anchors_with_one_resource_name() -> None:
    policy = Policy(debug_overrides=DebugOverrides(("a/ca.pem", "b/ca.pem")))
    with pytest.raises(ExportError, match="@raw/ca"):
        android_export(policy)


@settings(max_examples=50, deadline=None)
@given(policies(defaults=True, one_label=True, debug_overrides=True))
def test_policy_file_round_trip_with_debug_overrides(policy: Policy) -> None:
    assert policyfile.loads(policyfile.dumps(policy)) == policy
    assert policyfile.loads(policyfile.dumps(policy, format="json"), format="json") == policy


@settings(max_examples=50, deadline=None)
@given(policies(report_only=False, report_uris=False, debug_overrides=True))
def test_android_round_trip_with_debug_overrides(policy: Policy) -> None:
    text, _ = android_export(policy)
    back = formats.loads(text, format="android")
    assert back.policy == policy
    assert android_export(back.policy)[0] == text


def test_a_debug_override_is_reported_like_a_failure(
    override_policy: Path,
    cafile: str,
    via_proxy: MitmProxy,
    sink: ReportSink,  # noqa: F811 - the imported fixture
) -> None:
    # The bypass is allowed, and the operator sees it in use: the reporter sends it with
    # TrustKit's "user-defined trust anchor" result (4), as for a chain ending at a CA the
    # user added.
    text = override_policy.read_text(encoding="utf-8").replace(
        'name = "localhost"\n', f'name = "localhost"\nreport-uris = ["{sink.url}"]\n'
    )
    override_policy.write_text(text, encoding="utf-8")
    reporter = BackgroundReporter()
    ctx = pinset.ssl_context(override_policy, cafile=cafile, observers=[reporter], debug=True)
    with handshake(ctx, via_proxy.port) as tls:
        assert tls.pinset_verdict.reason == "debug-override"  # type: ignore[attr-defined]
    assert reporter.flush(10)
    reporter.close()
    [body] = sink.bodies
    assert (body["pinset-reason"], body["validation-result"]) == ("debug-override", 4)
