"""Adversarial review of the brief's ten "semantics that must be right": one test per attack.

Each test states the safe behaviour and fails if it broke. The attacks come from two
people: someone who controls the network (and maybe one trusted CA), and a careless
user who spells a host, a pin or a config differently from the rule that should apply.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import http.server
import socket
import ssl
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from _client_helpers import _no_proxy_from_environment, find_mismatch  # noqa: F401 - a fixture
from pinset import (
    ConfigError,
    Pin,
    PinFormatError,
    PinMismatchError,
    Policy,
    Verdict,
    canonical_host,
    policyfile,
    spki_pin,
    ssl_context,
)
from pinset.enforce import Connection, PinnedSSLObject, PinnedSSLSocket
from pinset.formats import _android as android
from pinset.integrations.requests import PinnedAdapter, pinned_session
from pinset.policy import DomainRule
from pinset.reporting import BackgroundReporter
from pinset.reporting._sender import urllib_transport
from pinset.testing import CertificateAuthority, LeafCert, TestPKI, TLSServer, generate_key
from pinset.verdict import evaluate

BACKUP = Pin(hashlib.sha256(b"review: offline backup key").digest())
WRONG = Pin(hashlib.sha256(b"review: a key nobody serves").digest())
UTC_PLUS_14 = dt.timezone(dt.timedelta(hours=14))


@pytest.fixture
def server(leaf: LeafCert) -> Iterator[TLSServer]:
    with TLSServer(leaf, mode="echo") as srv:
        yield srv


def pinning(*rules: tuple[str, tuple[Pin, ...]], enforce: bool = True) -> Policy:
    return Policy(
        rules=tuple(DomainRule(name, pins=(*pins, BACKUP), enforce=enforce) for name, pins in rules)
    )


def wrap(
    ctx: ssl.SSLContext, server: TLSServer, hostname: str = "localhost", **kwargs: Any
) -> ssl.SSLSocket:
    sock = socket.create_connection(server.address, timeout=5)
    try:
        return ctx.wrap_socket(sock, server_hostname=hostname, **kwargs)
    except BaseException:
        sock.close()
        raise


def nothing_received(server: TLSServer) -> None:
    server.wait_for_connections(1)
    assert server.received_bytes == 0


# -- 1. pins are matched against the verified chain ----------------------------------------


def _lookalike_ca(genuine: x509.Certificate, signer: CertificateAuthority) -> CertificateAuthority:
    key = generate_key()
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(genuine.subject)
        .issuer_name(signer.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(
                signer.private_key.public_key()  # type: ignore[arg-type]
            ),
            critical=False,
        )
        .sign(signer.private_key, hashes.SHA256())  # type: ignore[arg-type]
    )
    return CertificateAuthority(cert, key, signer)


def test_rogue_intermediate_named_like_the_pinned_one_is_refused(
    pki: TestPKI, root_pem: str
) -> None:
    # The rogue CA signs an intermediate with the genuine intermediate's subject name and
    # serves the genuine (pinned) intermediate next to it: name-based chain building must
    # not let the pinned certificate into the verified path.
    genuine = pki.intermediate
    lookalike = _lookalike_ca(genuine.cert, pki.rogue)
    assert lookalike.cert.subject == genuine.cert.subject
    rogue_leaf = lookalike.issue_cert("localhost", "127.0.0.1")
    trust = root_pem + pki.rogue.cert_pem.bytes().decode("ascii")
    ctx = ssl_context(pinning(("localhost", (spki_pin(genuine.cert),))), cadata=trust, observers=())
    for served in (
        [rogue_leaf.cert, genuine.cert, lookalike.cert],
        [rogue_leaf.cert, lookalike.cert, genuine.cert, pki.root.cert],
    ):
        with TLSServer(served, rogue_leaf.private_key, mode="echo") as srv:
            with pytest.raises(ssl.SSLCertVerificationError):
                wrap(ctx, srv).sendall(b"x")
            nothing_received(srv)


def test_genuine_pinned_leaf_served_after_a_rogue_chain_is_refused(
    pki: TestPKI, leaf: LeafCert, root_pem: str
) -> None:
    rogue_leaf = pki.rogue.issue_cert("localhost", "127.0.0.1")
    trust = root_pem + pki.rogue.cert_pem.bytes().decode("ascii")
    ctx = ssl_context(pinning(("localhost", (spki_pin(leaf.cert),))), cadata=trust, observers=())
    served = [rogue_leaf.cert, pki.rogue.cert, leaf.cert, pki.intermediate.cert]
    with TLSServer(served, rogue_leaf.private_key, mode="echo") as srv:
        with pytest.raises(PinMismatchError) as info:
            wrap(ctx, srv)
        nothing_received(srv)
    assert spki_pin(leaf.cert) not in info.value.served


# -- 2. pinning only narrows trust ---------------------------------------------------------


@pytest.mark.parametrize("enforce", [True, False])
def test_matching_pins_do_not_excuse_a_host_name_mismatch(
    pki: TestPKI, root_pem: str, enforce: bool
) -> None:
    other = pki.leaf("other.example")
    pins = tuple(spki_pin(c) for c in other.full_chain)
    ctx = ssl_context(pinning(("localhost", pins), enforce=enforce), cadata=root_pem, observers=())
    with TLSServer(other, mode="echo") as srv:
        with pytest.raises(ssl.SSLCertVerificationError) as info:
            wrap(ctx, srv)
        nothing_received(srv)
    assert not isinstance(info.value, PinMismatchError)


# -- 3. fail closed ------------------------------------------------------------------------


def _bio_handshake(
    obj: ssl.SSLObject,
    incoming: ssl.MemoryBIO,
    outgoing: ssl.MemoryBIO,
    sock: socket.socket,
    step: str,
) -> None:
    while True:
        try:
            if step == "read":
                obj.read(1)
            else:
                obj.do_handshake()
            return
        except ssl.SSLWantReadError:
            sock.sendall(outgoing.read())
            data = sock.recv(65536)
            if not data:
                raise ConnectionError("server closed") from None
            incoming.write(data)


def _bio(ctx: ssl.SSLContext, **kwargs: Any) -> tuple[ssl.SSLObject, ssl.MemoryBIO, ssl.MemoryBIO]:
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost", **kwargs)
    assert isinstance(obj, PinnedSSLObject)
    return obj, incoming, outgoing


def test_ssl_object_read_before_the_handshake_is_checked(root_pem: str, server: TLSServer) -> None:
    ctx = ssl_context(pinning(("localhost", (WRONG,))), cadata=root_pem, observers=())
    obj, incoming, outgoing = _bio(ctx)
    with socket.create_connection(server.address, timeout=5) as sock:
        with pytest.raises(PinMismatchError):
            _bio_handshake(obj, incoming, outgoing, sock, "read")
        with pytest.raises(PinMismatchError):
            obj.read(1)
        sock.sendall(outgoing.read())
    nothing_received(server)


def test_ssl_object_resumed_session_is_refused(
    pki: TestPKI, root_pem: str, server: TLSServer
) -> None:
    server.ssl_context.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx = ssl_context(
        pinning(("localhost", (spki_pin(pki.root.cert),))), cadata=root_pem, observers=()
    )
    obj, incoming, outgoing = _bio(ctx)
    with socket.create_connection(server.address, timeout=5) as sock:
        _bio_handshake(obj, incoming, outgoing, sock, "handshake")
        verdict = obj.pinset_verdict  # type: ignore[attr-defined]
        assert verdict is not None
        assert verdict.reason == "pinned"
        session = obj.session
        sock.sendall(outgoing.read())
    assert session is not None
    server.wait_for_connections(1)
    server.reset()
    again, incoming, outgoing = _bio(ctx, session=session)
    with socket.create_connection(server.address, timeout=5) as sock:
        with pytest.raises(PinMismatchError) as info:
            _bio_handshake(again, incoming, outgoing, sock, "handshake")
        sock.sendall(outgoing.read())
    assert again.session_reused
    assert info.value.verdict is not None
    assert info.value.verdict.reason == "no-verified-chain"
    nothing_received(server)


def test_unwrap_before_the_handshake_sends_no_application_data(
    root_pem: str, server: TLSServer
) -> None:
    ctx = ssl_context(pinning(("localhost", (WRONG,))), cadata=root_pem, observers=())
    tls = wrap(ctx, server, do_handshake_on_connect=False)
    with tls:
        # OpenSSL refuses a shutdown in the middle of a handshake that never ran.
        with pytest.raises(ssl.SSLError, match="SHUTDOWN_WHILE_IN_INIT"):
            tls.unwrap()
        with pytest.raises(PinMismatchError):
            tls.sendall(b"GET / HTTP/1.0\r\n\r\n")
    assert isinstance(tls, PinnedSSLSocket)
    assert tls.pinset_verdict is None
    server.wait_for_connections(1)
    assert server.received_bytes == 0


@pytest.mark.parametrize("right", [True, False])
def test_an_observer_raising_pin_mismatch_changes_nothing(
    pki: TestPKI, root_pem: str, server: TLSServer, right: bool
) -> None:
    def hostile(verdict: Verdict, conn: Connection) -> None:
        raise PinMismatchError("observer says no", hostname=verdict.host)

    def lenient(verdict: Verdict, conn: Connection) -> None:
        raise ssl.SSLError("observer tries to swallow")

    pin = spki_pin(pki.intermediate.cert) if right else WRONG
    ctx = ssl_context(pinning(("localhost", (pin,))), cadata=root_pem, observers=[hostile, lenient])
    if right:
        with wrap(ctx, server) as tls:
            tls.sendall(b"ping")
            assert tls.recv(4) == b"ping"
            assert isinstance(tls, PinnedSSLSocket)
            assert tls.pinset_verdict is not None
            assert tls.pinset_verdict.reason == "pinned"
    else:
        with pytest.raises(PinMismatchError) as info:
            wrap(ctx, server)
        assert info.value.verdict is not None
        assert info.value.verdict.reason == "pin-mismatch"
        nothing_received(server)


# -- 4. one canonical host for rules and connections ---------------------------------------


@pytest.mark.parametrize("spelling", ["127.000.000.001", "0127.0.0.1", "127.0.0.01", "127.00.0.1"])
def test_leading_zero_ipv4_spelling_cannot_skip_the_pins(
    root_pem: str, server: TLSServer, spelling: str
) -> None:
    # OpenSSL checks the certificate for a server_hostname of four decimal numbers as an
    # IPv4 address, leading zeros and all; the rule lookup used to see a different name.
    ctx = ssl_context(pinning(("127.0.0.1", (WRONG,))), cadata=root_pem, observers=())
    with pytest.raises(PinMismatchError) as info:
        wrap(ctx, server, hostname=spelling)
    assert info.value.verdict is not None
    assert info.value.verdict.reason == "pin-mismatch"
    assert info.value.verdict.host == "127.0.0.1"
    nothing_received(server)


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [("127.000.000.001", "127.0.0.1"), ("010.0.0.1", "10.0.0.1"), ("127.0.0.1.", "127.0.0.1")],
)
def test_four_number_names_are_the_address_openssl_checks(raw: str, canonical: str) -> None:
    assert canonical_host(raw) == canonical
    rule = DomainRule(raw, pins=(WRONG, BACKUP))
    assert rule.name == canonical
    assert Policy(rules=(rule,)).rule_for(canonical) is rule


@pytest.mark.parametrize("raw", ["4294967423.0.0.1", "127.0.0.256", "1.2.3.99999999999999999999"])
def test_four_number_names_out_of_range_are_refused(raw: str) -> None:
    # OpenSSL's C parsing wraps 4294967423 around to 127: no single reading exists.
    with pytest.raises(ConfigError, match="four numbers"):
        canonical_host(raw)


def test_uppercase_idn_server_hostname_meets_the_unicode_rule(pki: TestPKI, root_pem: str) -> None:
    idn = pki.leaf("xn--bcher-kva.example")
    ctx = ssl_context(pinning(("bücher.example", (WRONG,))), cadata=root_pem, observers=())
    with TLSServer(idn, mode="echo") as srv:
        for name in ("BÜCHER.example", "XN--BCHER-KVA.EXAMPLE", "bücher.EXAMPLE"):
            with pytest.raises(PinMismatchError) as info:
                wrap(ctx, srv, hostname=name)
            assert info.value.verdict is not None
            assert info.value.verdict.host == "xn--bcher-kva.example"
        srv.wait_for_connections(3)
        assert srv.received_bytes == 0


@pytest.mark.parametrize("name", ["localhost.", "127.0.0.1.", "[127.0.0.1]", "LOCALHOST"])
def test_other_spellings_of_a_pinned_host_never_connect_unpinned(
    root_pem: str, server: TLSServer, name: str
) -> None:
    ctx = ssl_context(
        pinning(("localhost", (WRONG,)), ("127.0.0.1", (WRONG,))), cadata=root_pem, observers=()
    )
    # Refused by normal validation (OpenSSL does not strip the dot) or by the pins:
    # either way never a connection judged "not-pinned".
    with pytest.raises(ssl.SSLCertVerificationError):
        wrap(ctx, server, hostname=name)
    assert server.received_bytes == 0


def test_plain_http_to_a_pinned_ip_in_another_spelling_is_refused(root_pem: str) -> None:
    session = pinned_session(pinning(("127.0.0.1", (WRONG,))), cadata=root_pem, observers=())
    with session, pytest.raises(ConfigError, match="plain http"):
        session.get("http://127.000.000.001:9/", timeout=5)


# -- 5. the most specific rule wins --------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("example.com", "**.example.com"),  # a *. rule does not cover its own name
        ("a.example.com", "*.example.com"),  # *. one label beats the ** parent
        ("static.example.com", None),  # exact exclusion beats the *. rule
        ("x.static.example.com", "**.example.com"),  # exclusion covers only its own name
        ("x.cdn.example.com", None),  # an exclusion with subdomains carves a subtree
        ("cdn.example.com", None),
        ("a.b.example.com", "**.example.com"),  # *. covers one label only
        ("notexample.com", None),
        ("example.com.evil.net", None),
    ],
)
def test_precedence_of_wildcards_and_exclusions(host: str, expected: str | None) -> None:
    policy = policyfile.loads(
        f"""
[[domain]]
name = "**.example.com"
pins = ["{WRONG}", "{BACKUP}"]
[[domain]]
name = "*.example.com"
pins = ["{BACKUP}", "{WRONG}"]
enforce = false
[[domain]]
name = "static.example.com"
exclude = true
[[domain]]
name = "cdn.example.com"
exclude = true
include-subdomains = true
"""
    )
    rule = policy.rule_for(host)
    got = None if rule is None else ("*." if rule.one_label else "**.") + rule.name
    assert got == expected


# -- 6. pins are 32 bytes, never strings ---------------------------------------------------


def test_url_safe_pin_is_a_load_error_with_file_and_line() -> None:
    digest = next(
        hashlib.sha256(str(n).encode()).digest()
        for n in range(1000)
        if {"-", "_"}
        & set(base64.urlsafe_b64encode(hashlib.sha256(str(n).encode()).digest()).decode())
    )
    urlsafe = "sha256/" + base64.urlsafe_b64encode(digest).decode()
    text = f'[[domain]]\nname = "a.example"\npins = [\n  "{BACKUP}",\n  "{urlsafe}",\n]\n'
    with pytest.raises(PinFormatError, match="URL-safe") as info:
        policyfile.loads(text, source="pinset.toml")
    assert info.value.source == "pinset.toml"
    assert info.value.line == 5


# -- 7. backup pins ------------------------------------------------------------------------


def test_two_spellings_of_one_pin_are_not_a_backup() -> None:
    padded = str(WRONG)
    unpadded = " " + padded.rstrip("=")[:20] + " " + padded.rstrip("=")[20:]
    text = f'[[domain]]\nname = "a.example"\npins = ["{padded}", "{unpadded}"]\n'
    with pytest.raises(ConfigError, match="backup pin"):
        policyfile.loads(text)


# -- 8. expiration -------------------------------------------------------------------------


def test_expiration_at_utc_midnight_seen_from_a_utc_plus_14_clock(
    pki: TestPKI, root_pem: str, server: TLSServer
) -> None:
    expiration = dt.date(2031, 3, 1)
    # 00:00:00.000000 UTC on the day is 14:00 of that day on a UTC+14 clock, whose
    # calendar reached the date 14 hours earlier: the pins hold until the UTC instant.
    midnight_local = dt.datetime(2031, 3, 1, 14, 0, 0, 0, tzinfo=UTC_PLUS_14)
    moments = [
        dt.datetime(2031, 3, 1, 0, 0, 0, 0, tzinfo=UTC_PLUS_14),
        midnight_local - dt.timedelta(microseconds=1),
        midnight_local,
    ]
    rule = DomainRule("localhost", pins=(WRONG, BACKUP), expiration=expiration)
    ctx = ssl_context(
        Policy(rules=(rule,)), cadata=root_pem, clock=lambda: moments[0], observers=()
    )
    # One context, so the kept verdict must not outlive the expiration instant.
    for _ in range(2):
        with pytest.raises(PinMismatchError):
            wrap(ctx, server)
        moments.pop(0)
    with wrap(ctx, server) as tls:
        assert isinstance(tls, PinnedSSLSocket)
        assert tls.pinset_verdict is not None
        assert tls.pinset_verdict.reason == "policy-expired"
    assert rule.is_expired(midnight_local)
    assert not rule.is_expired(midnight_local - dt.timedelta(microseconds=1))


# -- 9. reporting never loops, never goes to the pinned host -------------------------------


class _Hits(http.server.BaseHTTPRequestHandler):
    hits: list[str]
    location: str

    def do_POST(self) -> None:
        type(self).hits.append(self.path)
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.location:
            self.send_response(307)
            self.send_header("Location", self.location)
        else:
            self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def http_server() -> Iterator[Any]:
    servers: list[http.server.ThreadingHTTPServer] = []

    def start(location: str = "") -> tuple[str, list[str]]:
        handler = type("Handler", (_Hits,), {"hits": [], "location": location})
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
        return f"http://127.0.0.1:{srv.server_address[1]}", handler.hits

    yield start
    for srv in servers:
        srv.shutdown()
        srv.server_close()


def test_a_redirecting_collector_is_not_followed(http_server: Any) -> None:
    pinned_url, pinned_hits = http_server()
    collector_url, collector_hits = http_server(location=pinned_url + "/stolen")
    send = urllib_transport(proxies={})
    assert send(collector_url + "/report", b"{}") == 307
    assert collector_hits == ["/report"]
    assert pinned_hits == []


def test_a_report_uri_naming_the_pinned_ip_in_another_spelling_is_skipped(pki: TestPKI) -> None:
    sent: list[str] = []
    rule = DomainRule(
        "127.0.0.1", pins=(WRONG, BACKUP), report_uris=("https://127.000.000.001/report",)
    )
    reporter = BackgroundReporter(
        Policy(rules=(rule,)), transport=lambda uri, body: sent.append(uri) or 204
    )
    verdict = evaluate(
        Policy(rules=(rule,)), "127.0.0.1", [pki.leaf().cert], now=dt.datetime.now(dt.timezone.utc)
    )
    assert verdict.reason == "pin-mismatch"
    reporter(verdict, Connection("127.0.0.1", 443, ()))
    assert reporter.flush(5)
    reporter.close()
    assert sent == []
    assert reporter.stats.skipped == 1


# -- 10. configs fail loudly ---------------------------------------------------------------


def test_android_config_with_a_bare_doctype_is_refused_with_its_line() -> None:
    xml = (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        "<!DOCTYPE network-security-config>\n"
        "<network-security-config/>\n"
    )
    with pytest.raises(ConfigError, match="DOCTYPE") as info:
        android.loads(xml, source="nsc.xml")
    assert info.value.source == "nsc.xml"
    assert info.value.line == 2


@pytest.mark.parametrize(
    ("first", "second"),
    [("api.example.com", "API.Example.COM."), ("127.0.0.1", "127.000.000.001")],
)
def test_one_domain_in_two_spellings_is_a_duplicate(first: str, second: str) -> None:
    text = "".join(
        f'[[domain]]\nname = "{name}"\npins = ["{WRONG}", "{BACKUP}"]\n' for name in (first, second)
    )
    with pytest.raises(ConfigError, match="appears twice") as info:
        policyfile.loads(text, source="pinset.toml")
    assert info.value.line == 5  # the second name


def test_json_policy_with_a_duplicate_key_is_refused() -> None:
    text = (
        '{"domain": [{"name": "a.example", "enforce": true, "enforce": false, '
        f'"pins": ["{WRONG}", "{BACKUP}"]}}]}}'
    )
    with pytest.raises(ConfigError, match="enforce"):
        policyfile.loads(text, format="json")


def test_placeholder_in_a_report_uri_is_refused() -> None:
    text = (
        '[[domain]]\nname = "a.example"\n'
        'report-uris = ["https://${REPORT_HOST}/r"]\n'
        f'pins = ["{WRONG}", "{BACKUP}"]\n'
    )
    with pytest.raises(ConfigError, match="report"):
        policyfile.loads(text)


# -- requests: a redirect through an unpinned host keeps the pins --------------------------


class _Redirect(http.server.BaseHTTPRequestHandler):
    location = ""

    def do_GET(self) -> None:
        self.send_response(302)
        self.send_header("Location", self.location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_requests_redirect_through_an_unpinned_host_back_to_the_pinned_one(
    pki: TestPKI, leaf: LeafCert, root_pem: str
) -> None:
    # Pinned host (right pins) -> unpinned host -> pinned host served by a trusted
    # interception CA: the last hop must be refused by the pins.
    rogue_leaf = pki.rogue.issue_cert("localhost", "127.0.0.1")
    trust = root_pem + pki.rogue.cert_pem.bytes().decode("ascii")
    policy = pinning(("localhost", (spki_pin(pki.intermediate.cert),)))
    with TLSServer(rogue_leaf, mode="http") as intercepted:
        hops = []
        location = f"https://localhost:{intercepted.port}/final"
        for _ in range(2):
            handler = type("Hop", (_Redirect,), {"location": location})
            srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            leaf.configure_cert(ctx)
            srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
            threading.Thread(target=srv.serve_forever, daemon=True).start()
            hops.append(srv)
            # the hop before goes to the unpinned name 127.0.0.1, the first to localhost
            location = f"https://127.0.0.1:{srv.server_address[1]}/middle"
        first = f"https://localhost:{hops[1].server_address[1]}/start"
        try:
            with pinned_session(policy, cadata=trust, observers=()) as session:
                assert session.get_adapter(first) is session.get_adapter(location)
                assert isinstance(session.get_adapter(location), PinnedAdapter)
                with pytest.raises(requests.exceptions.SSLError) as info:
                    session.get(first, timeout=5)
        finally:
            for srv in hops:
                srv.shutdown()
                srv.server_close()
        mismatch = find_mismatch(info.value)
        assert mismatch is not None
        assert mismatch.verdict is not None
        assert mismatch.verdict.host == "localhost"
        intercepted.wait_for_connections(1)
        assert intercepted.received_bytes == 0
