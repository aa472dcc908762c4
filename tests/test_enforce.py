"""pinset.ssl_context on real loopback TLS: the verdict, when it runs, and what it refuses."""

from __future__ import annotations

import datetime as dt
import pickle
import socket
import ssl
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

import pinset
import pinset.reporting
from _policies import BACKUP, OTHER, WRONG, pinning
from collector_fixtures import ReportSink, sink  # noqa: F401 - a fixture
from pinset import (
    ChainError,
    ConfigError,
    Pin,
    PinMismatchError,
    PinnedSSLContext,
    Policy,
    Verdict,
    policyfile,
    spki_pin,
    ssl_context,
)
from pinset.enforce import Connection, PinnedSSLObject, PinnedSSLSocket
from pinset.policy import DomainRule
from pinset.reporting import BackgroundReporter
from pinset.testing import (
    CertificateAuthority,
    LeafCert,
    PrivateKey,
    TestPKI,
    TLSServer,
    configure_cert_chain,
    generate_key,
)


def policy(
    host: str = "localhost",
    *pins: Pin,
    enforce: bool = True,
    expiration: dt.date | None = None,
    extra: tuple[DomainRule, ...] = (),
) -> Policy:
    rule = DomainRule(host, pins=(*pins, BACKUP), enforce=enforce, expiration=expiration)
    return Policy(rules=(rule, *extra))


def connect(
    ctx: ssl.SSLContext, echo_server: TLSServer, hostname: str = "localhost", **kwargs: Any
) -> PinnedSSLSocket:
    sock = socket.create_connection(echo_server.address, timeout=5)
    try:
        tls = ctx.wrap_socket(sock, server_hostname=hostname, **kwargs)
    except BaseException:
        sock.close()
        raise
    assert isinstance(tls, PinnedSSLSocket)
    return tls


def echo(ctx: ssl.SSLContext, echo_server: TLSServer, hostname: str = "localhost") -> Verdict:
    with connect(ctx, echo_server, hostname) as tls:
        tls.sendall(b"ping")
        assert tls.recv(16) == b"ping"
        assert tls.pinset_verdict is not None
        return tls.pinset_verdict


def refused(
    ctx: ssl.SSLContext, echo_server: TLSServer, hostname: str = "localhost"
) -> PinMismatchError:
    """Connect, expect the pin refusal, and check the server saw a handshake and no byte."""
    with pytest.raises(PinMismatchError) as info:
        echo(ctx, echo_server, hostname)
    (record,) = echo_server.wait_for_connections(1)
    assert record.handshake_completed
    assert record.received == 0
    assert echo_server.received_bytes == 0
    return info.value


# -- the verdict on the verified chain ------------------------------------------------


@pytest.mark.parametrize("member", ["leaf", "intermediate", "root"])
def test_a_pin_anywhere_in_the_verified_chain_passes(
    pki: TestPKI, leaf: LeafCert, root_pem: str, echo_server: TLSServer, member: str
) -> None:
    cert = {"leaf": leaf.cert, "intermediate": pki.intermediate.cert, "root": pki.root.cert}
    ctx = ssl_context(policy("localhost", spki_pin(cert[member])), cadata=root_pem)
    verdict = echo(ctx, echo_server)
    assert verdict.reason == "pinned"
    assert verdict.matched_pin == spki_pin(cert[member])
    assert echo_server.wait_for_connections(1)[0].received == 4


def test_root_pin_passes_although_the_server_does_not_send_the_root(
    pki: TestPKI, leaf: LeafCert, root_pem: str, echo_server: TLSServer
) -> None:
    root_pin = spki_pin(pki.root.cert)
    ctx = ssl_context(policy("localhost", root_pin), cadata=root_pem)
    with connect(ctx, echo_server) as tls:
        served = [spki_pin(der) for der in tls.get_unverified_chain()]
        verified = [spki_pin(der) for der in tls.get_verified_chain()]
        assert tls.pinset_verdict is not None
        assert tls.pinset_verdict.matched_pin == root_pin
    assert root_pin not in served
    assert verified[-1] == root_pin
    assert served == [spki_pin(c) for c in leaf.chain]


def test_wrong_pins_are_refused_before_any_application_byte(
    pki: TestPKI, leaf: LeafCert, root_pem: str, echo_server: TLSServer
) -> None:
    ctx = ssl_context(policy("localhost", OTHER), cadata=root_pem)
    error = refused(ctx, echo_server)
    assert isinstance(error, ssl.SSLCertVerificationError)
    assert error.hostname == "localhost"
    assert error.expected == (OTHER, BACKUP)
    assert error.served == tuple(spki_pin(c) for c in leaf.full_chain)
    text = str(error)
    assert "Certificate pinning failure for localhost" in text
    for cert in leaf.full_chain:
        assert f"{spki_pin(cert)}: {cert.subject.rfc4514_string()}" in text
    assert str(OTHER) in text
    assert str(BACKUP) in text


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_tls_12_and_13(
    pki: TestPKI, root_pem: str, echo_server: TLSServer, version: ssl.TLSVersion
) -> None:
    echo_server.ssl_context.maximum_version = version
    good = ssl_context(policy("localhost", spki_pin(pki.intermediate.cert)), cadata=root_pem)
    good.maximum_version = version
    assert echo(good, echo_server).reason == "pinned"
    (record,) = echo_server.wait_for_connections(1)
    assert record.tls_version == version.name.replace("v1_", "v1.")
    echo_server.reset()
    bad = ssl_context(policy("localhost", OTHER), cadata=root_pem)
    bad.maximum_version = version
    refused(bad, echo_server)


def test_name_rule_and_ip_rule_apply_to_their_own_host(
    pki: TestPKI, root_pem: str, echo_server: TLSServer
) -> None:
    by_ip = ssl_context(policy("127.0.0.1", OTHER), cadata=root_pem)
    assert echo(by_ip, echo_server, "localhost").reason == "not-pinned"
    echo_server.wait_for_connections(1)
    echo_server.reset()
    assert refused(by_ip, echo_server, "127.0.0.1").hostname == "127.0.0.1"
    echo_server.reset()
    ip_ok = ssl_context(policy("127.0.0.1", spki_pin(pki.root.cert)), cadata=root_pem)
    assert echo(ip_ok, echo_server, "127.0.0.1").reason == "pinned"
    by_name = ssl_context(policy("localhost", OTHER), cadata=root_pem)
    assert echo(by_name, echo_server, "127.0.0.1").reason == "not-pinned"


def test_unpinned_hosts_connect_normally(root_pem: str, echo_server: TLSServer) -> None:
    excluded = DomainRule("localhost", exclude=True)
    parent = DomainRule("example.com", pins=(OTHER, BACKUP), include_subdomains=True)
    ctx = ssl_context(Policy(rules=(parent,)), cadata=root_pem)
    assert echo(ctx, echo_server).reason == "not-pinned"
    carve = Policy(rules=(DomainRule("localhost", exclude=True), parent))
    assert excluded in carve.rules
    assert echo(ssl_context(carve, cadata=root_pem), echo_server).reason == "not-pinned"
    assert echo_server.wait_for_connections(2)[1].received == 4


def test_policy_file_path_is_loaded(tmp_path: Path, root_pem: str, echo_server: TLSServer) -> None:
    path = tmp_path / "pinset.toml"
    path.write_text(policyfile.dumps(policy("localhost", OTHER)), encoding="utf-8")
    refused(ssl_context(path, cadata=root_pem), echo_server)


# -- the served-chain injection attack -------------------------------------------------


@pytest.fixture(scope="module")
def rogue_chain(pki: TestPKI) -> tuple[LeafCert, CertificateAuthority]:
    rogue_intermediate = pki.rogue.create_child_ca("rogue intermediate")
    return rogue_intermediate.issue_cert("localhost", "127.0.0.1"), rogue_intermediate


@pytest.mark.parametrize("appended", ["intermediate", "intermediate+root"])
def test_genuine_pinned_certificate_appended_to_a_rogue_chain_is_refused(
    pki: TestPKI,
    root_pem: str,
    rogue_chain: tuple[LeafCert, CertificateAuthority],
    appended: str,
) -> None:
    rogue_leaf, rogue_intermediate = rogue_chain
    genuine = [pki.intermediate.cert] + ([pki.root.cert] if appended.endswith("root") else [])
    served = [rogue_leaf.cert, rogue_intermediate.cert, *genuine]
    pins = (spki_pin(pki.intermediate.cert), spki_pin(pki.root.cert))
    seen: list[Connection] = []
    # The device trusts the interception CA as well as the genuine root.
    trust = root_pem + pki.rogue.cert_pem.bytes().decode("ascii")
    ctx = ssl_context(
        Policy(rules=(DomainRule("localhost", pins=pins),)),
        cadata=trust,
        observers=[lambda verdict, conn: seen.append(conn)],
    )
    with TLSServer(served, rogue_leaf.private_key, mode="echo") as echo_server:
        error = refused(ctx, echo_server)
    # A check on the served list would have passed: the pinned key was sent.
    (conn,) = seen
    assert spki_pin(pki.intermediate.cert) in [spki_pin(d) for d in conn.served_chain]
    assert error.served == tuple(spki_pin(c) for c in rogue_leaf.full_chain)
    assert not set(error.served) & set(pins)


# -- normal validation first; report-only never blocks and never unblocks -----------


def test_report_only_mismatch_is_allowed_and_observed(
    root_pem: str, echo_server: TLSServer
) -> None:
    seen: list[Verdict] = []
    ctx = ssl_context(
        policy("localhost", OTHER, enforce=False),
        cadata=root_pem,
        observers=[lambda verdict, conn: seen.append(verdict)],
    )
    assert echo(ctx, echo_server).reason == "report-only-mismatch"
    assert [v.reason for v in seen] == ["report-only-mismatch"]
    assert not seen[0].matched_pin
    assert echo_server.wait_for_connections(1)[0].received == 4


@pytest.mark.parametrize("enforce", [True, False])
def test_matching_pins_never_make_an_untrusted_chain_valid(
    pki: TestPKI, root_pem: str, rogue_chain: tuple[LeafCert, CertificateAuthority], enforce: bool
) -> None:
    rogue_leaf, _ = rogue_chain
    pins = tuple(spki_pin(c) for c in rogue_leaf.full_chain)
    ctx = ssl_context(
        Policy(rules=(DomainRule("localhost", pins=pins, enforce=enforce),)), cadata=root_pem
    )
    with TLSServer(rogue_leaf, mode="echo") as echo_server:
        with pytest.raises(ssl.SSLCertVerificationError) as info:
            echo(ctx, echo_server)
        assert not isinstance(info.value, PinMismatchError)
        assert info.value.verify_code == 20  # unable to get local issuer certificate
        (record,) = echo_server.wait_for_connections(1)
    assert record.received == 0


def test_expired_leaf_fails_even_with_matching_pins(pki: TestPKI, root_pem: str) -> None:
    now = dt.datetime.now(dt.timezone.utc)
    expired = pki.leaf(not_before=now - dt.timedelta(days=30), not_after=now - dt.timedelta(days=1))
    ctx = ssl_context(policy("localhost", spki_pin(expired.cert)), cadata=root_pem)
    with TLSServer(expired, mode="echo") as echo_server:
        with pytest.raises(ssl.SSLCertVerificationError) as info:
            echo(ctx, echo_server)
        echo_server.wait_for_connections(1)
    assert not isinstance(info.value, PinMismatchError)
    assert info.value.verify_code == 10  # certificate has expired
    assert echo_server.received_bytes == 0


def test_expired_policy_fails_open_with_reason(root_pem: str, echo_server: TLSServer) -> None:
    expiration = dt.date.today() + dt.timedelta(days=30)
    midnight = dt.datetime.combine(expiration, dt.time(0), tzinfo=dt.timezone.utc)
    seen: list[Verdict] = []

    def at(moment: dt.datetime) -> ssl.SSLContext:
        return ssl_context(
            policy("localhost", OTHER, expiration=expiration),
            cadata=root_pem,
            clock=lambda: moment,
            observers=[lambda verdict, conn: seen.append(verdict)],
        )

    assert echo(at(midnight), echo_server).reason == "policy-expired"
    echo_server.wait_for_connections(1)
    echo_server.reset()
    refused(at(midnight - dt.timedelta(seconds=1)), echo_server)
    assert [v.reason for v in seen] == ["policy-expired", "pin-mismatch"]


# -- fail closed -----------------------------------------------------------------------


def test_empty_verified_chain_never_passes_a_pinned_host(
    pki: TestPKI, root_pem: str, echo_server: TLSServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(PinnedSSLSocket, "_verified_certificates", lambda self: [])
    good = ssl_context(policy("localhost", spki_pin(pki.root.cert)), cadata=root_pem)
    error = refused(good, echo_server)
    assert error.verdict is not None
    assert error.verdict.reason == "no-verified-chain"
    echo_server.reset()
    report_only = ssl_context(policy("localhost", OTHER, enforce=False), cadata=root_pem)
    assert refused(report_only, echo_server).verdict.reason == "no-verified-chain"  # type: ignore[union-attr]
    echo_server.reset()
    unpinned = ssl_context(policy("example.com", OTHER), cadata=root_pem)
    assert echo(unpinned, echo_server).reason == "not-pinned"


def test_unreadable_chain_and_broken_clock_fail_closed(
    pki: TestPKI, root_pem: str, echo_server: TLSServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    naive = ssl_context(
        policy("localhost", spki_pin(pki.root.cert)),
        cadata=root_pem,
        clock=lambda: dt.datetime(2030, 1, 1),  # naive on purpose
    )
    assert refused(naive, echo_server).verdict.reason == "internal-error"  # type: ignore[union-attr]
    echo_server.reset()

    def broken(self: PinnedSSLSocket) -> list[bytes]:
        raise RuntimeError("no chain today")

    monkeypatch.setattr(PinnedSSLSocket, "_verified_certificates", broken)
    error = refused(ssl_context(policy("localhost", OTHER), cadata=root_pem), echo_server)
    assert error.verdict is not None
    assert error.verdict.reason == "internal-error"
    assert "no chain today" in str(error)


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_resumed_session_has_no_verified_chain_and_is_refused(
    pki: TestPKI, root_pem: str, echo_server: TLSServer, version: ssl.TLSVersion
) -> None:
    echo_server.ssl_context.maximum_version = version
    ctx = ssl_context(policy("localhost", spki_pin(pki.root.cert)), cadata=root_pem)
    with connect(ctx, echo_server) as tls:
        tls.sendall(b"ping")
        assert tls.recv(16) == b"ping"  # reading processes the TLS 1.3 session ticket
        session = tls.session
    assert session is not None
    echo_server.wait_for_connections(1)
    echo_server.reset()
    with pytest.raises(PinMismatchError) as info:
        connect(ctx, echo_server, session=session)
    assert info.value.verdict is not None
    assert info.value.verdict.reason == "no-verified-chain"
    assert echo_server.wait_for_connections(1)[0].received == 0


# -- the implicit handshake ------------------------------------------------------------

Operation = Callable[[ssl.SSLSocket], object]
IMPLICIT: dict[str, Operation] = {
    "send": lambda s: s.send(b"GET / HTTP/1.0\r\n\r\n"),
    "sendall": lambda s: s.sendall(b"GET / HTTP/1.0\r\n\r\n"),
    "write": lambda s: s.write(b"GET / HTTP/1.0\r\n\r\n"),
    "recv": lambda s: s.recv(1),
    "recv_into": lambda s: s.recv_into(bytearray(1)),
    "read": lambda s: s.read(1),
    "makefile-write": lambda s: _write_through_file(s),
    "makefile-read": lambda s: s.makefile("rb").read(1),
    "sendfile": lambda s: s.sendfile(_payload()),
}


def _write_through_file(sock: ssl.SSLSocket) -> None:
    with sock.makefile("wb") as f:
        f.write(b"GET / HTTP/1.0\r\n\r\n")
        f.flush()


def _payload() -> Any:
    import io

    return io.BytesIO(b"GET / HTTP/1.0\r\n\r\n")


@pytest.mark.parametrize("operation", sorted(IMPLICIT))
def test_implicit_handshake_is_checked(
    root_pem: str, echo_server: TLSServer, operation: str
) -> None:
    ctx = ssl_context(policy("localhost", OTHER), cadata=root_pem)
    tls = connect(ctx, echo_server, do_handshake_on_connect=False)
    with tls, pytest.raises(PinMismatchError):
        IMPLICIT[operation](tls)
    (record,) = echo_server.wait_for_connections(1)
    assert record.handshake_completed
    assert record.received == 0


def test_implicit_handshake_with_right_pins_records_the_verdict(
    pki: TestPKI, root_pem: str, echo_server: TLSServer
) -> None:
    ctx = ssl_context(policy("localhost", spki_pin(pki.intermediate.cert)), cadata=root_pem)
    with connect(ctx, echo_server, do_handshake_on_connect=False) as tls:
        assert tls.pinset_verdict is None
        tls.sendall(b"ping")
        assert tls.pinset_verdict is not None
        assert tls.pinset_verdict.reason == "pinned"
        assert tls.recv(4) == b"ping"


def _pump(
    obj: ssl.SSLObject, incoming: ssl.MemoryBIO, outgoing: ssl.MemoryBIO, sock: socket.socket
) -> None:
    """Write a request through ``obj``, which makes it handshake implicitly first."""
    while True:
        try:
            obj.write(b"GET / HTTP/1.0\r\n\r\n")
            return
        except ssl.SSLWantReadError:
            sock.sendall(outgoing.read())
            incoming.write(sock.recv(65536))


def test_ssl_object_implicit_handshake_is_checked(root_pem: str, echo_server: TLSServer) -> None:
    ctx = ssl_context(policy("localhost", OTHER), cadata=root_pem)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
    assert isinstance(obj, PinnedSSLObject)
    with socket.create_connection(echo_server.address, timeout=5) as sock:
        with pytest.raises(PinMismatchError):
            _pump(obj, incoming, outgoing, sock)
        # Flush whatever the handshake left (its Finished message), then try again.
        sock.sendall(outgoing.read())
        with pytest.raises(PinMismatchError):
            obj.write(b"more")
        sock.sendall(outgoing.read())
    (record,) = echo_server.wait_for_connections(1)
    assert record.handshake_completed
    assert record.received == 0


# -- observers -------------------------------------------------------------------------


@pytest.mark.parametrize("pinned_right", [True, False])
def test_observer_exceptions_never_change_the_verdict(
    pki: TestPKI, root_pem: str, echo_server: TLSServer, pinned_right: bool
) -> None:
    calls: list[tuple[Verdict, Connection]] = []

    def observer(verdict: Verdict, conn: Connection) -> None:
        calls.append((verdict, conn))
        raise RuntimeError("observer bug")

    pin = spki_pin(pki.root.cert) if pinned_right else OTHER
    ctx = ssl_context(policy("localhost", pin), cadata=root_pem, observers=[observer])
    if pinned_right:
        assert echo(ctx, echo_server).reason == "pinned"
    else:
        refused(ctx, echo_server)
    ((verdict, conn),) = calls
    assert verdict.allowed is pinned_right
    assert conn.hostname == "localhost"
    assert conn.port == echo_server.port
    assert len(conn.served_chain) == 2


# -- guarded configuration -------------------------------------------------------------


@pytest.mark.parametrize(
    ("attribute", "value"),
    [
        ("verify_mode", ssl.CERT_NONE),
        ("verify_mode", ssl.CERT_OPTIONAL),
        ("check_hostname", False),
        ("sslsocket_class", ssl.SSLSocket),
        ("sslobject_class", ssl.SSLObject),
    ],
)
def test_weakening_a_pinned_context_is_refused(root_pem: str, attribute: str, value: Any) -> None:
    ctx = ssl_context(policy("localhost", OTHER), cadata=root_pem)
    with pytest.raises(ConfigError) as info:
        setattr(ctx, attribute, value)
    assert attribute in info.value.diagnostics()
    assert info.value.hint
    assert ctx.verify_mode == ssl.CERT_REQUIRED
    assert ctx.check_hostname
    assert ctx.sslsocket_class is PinnedSSLSocket
    ctx.verify_mode = ssl.CERT_REQUIRED  # tightening (or keeping) is fine
    ctx.check_hostname = True


def test_context_defaults(root_pem: str) -> None:
    ctx = ssl_context(policy("localhost", OTHER), cadata=root_pem)
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2
    assert ctx.options & getattr(ssl, "OP_NO_RENEGOTIATION", 0) == getattr(
        ssl, "OP_NO_RENEGOTIATION", 0
    )
    assert ctx.cert_store_stats()["x509_ca"] == 1


def test_the_context_is_new_typed_and_configured_like_any_other(
    pki: TestPKI, leaf: LeafCert, root_pem: str, echo_server: TLSServer
) -> None:
    ctx = ssl_context(policy("localhost", spki_pin(leaf.cert)))
    assert isinstance(ctx, PinnedSSLContext)
    assert ctx is not ssl_context(policy("localhost", spki_pin(leaf.cert)))
    # Trust added afterwards, as on any SSLContext (the system store alone does not know
    # the test root), and the pins still apply.
    ctx.load_verify_locations(cadata=root_pem)
    ctx.set_ciphers("ECDHE+AESGCM")
    assert echo(ctx, echo_server).reason == "pinned"
    with pytest.raises(TypeError):
        ssl_context(policy("localhost", OTHER), base=ssl.create_default_context())  # type: ignore[call-arg]


def test_client_certificate_loaded_on_the_pinned_context_is_used(
    pki: TestPKI, root_pem: str, echo_server: TLSServer
) -> None:
    client_ca = CertificateAuthority.create("client CA")
    echo_server.ssl_context.verify_mode = ssl.CERT_REQUIRED
    echo_server.ssl_context.load_verify_locations(cadata=client_ca.cert_pem.bytes().decode("ascii"))
    ctx = ssl_context(policy("localhost", spki_pin(pki.root.cert)), cadata=root_pem)
    configure_cert_chain(ctx, [_client_cert(client_ca, key := generate_key())], key)
    assert echo(ctx, echo_server).reason == "pinned"
    record = echo_server.wait_for_connections(1)[0]
    assert record.error is None
    assert record.received == 4


def _client_cert(ca: CertificateAuthority, key: PrivateKey) -> x509.Certificate:
    # pinset.testing issues server certificates; a client one needs the clientAuth usage.
    now = dt.datetime.now(dt.timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pinset test client")])
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca.private_key, hashes.SHA256())
    )


# -- the error value -------------------------------------------------------------------


def test_pin_mismatch_error_is_a_pickleable_certificate_error(
    root_pem: str, echo_server: TLSServer
) -> None:
    error = refused(ssl_context(policy("localhost", OTHER), cadata=root_pem), echo_server)
    assert isinstance(error, ssl.SSLCertVerificationError)
    assert isinstance(error, ssl.CertificateError)
    copy = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own bytes
    assert isinstance(copy, PinMismatchError)
    assert isinstance(copy, ssl.SSLCertVerificationError)
    assert (copy.hostname, copy.expected, copy.served) == (
        error.hostname,
        error.expected,
        error.served,
    )
    assert str(copy) == str(error)
    assert "fix:" in error.diagnostics()


# -- a context judges many connections --------------------------------------------------


def test_one_context_follows_the_clock_across_the_expiration(
    leaf: LeafCert, root_pem: str, echo_server: TLSServer
) -> None:
    expiration = dt.date.today() + dt.timedelta(days=30)
    midnight = dt.datetime.combine(expiration, dt.time(0), tzinfo=dt.timezone.utc)
    moments = [
        midnight - dt.timedelta(seconds=1),
        midnight,
        midnight - dt.timedelta(seconds=1),
    ]
    clock = iter(moments)
    rule = policy("localhost", spki_pin(leaf.cert), expiration=expiration)
    ctx = ssl_context(rule, cadata=root_pem, clock=lambda: next(clock))
    reasons = [echo(ctx, echo_server).reason for _ in moments]
    assert reasons == ["pinned", "policy-expired", "pinned"]


def test_the_system_clock_follows_the_expiration_too(
    leaf: LeafCert, root_pem: str, echo_server: TLSServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without clock= the context reads time.time(), the clock datetime.now() reads.
    expiration = dt.date.today() + dt.timedelta(days=30)
    midnight = dt.datetime.combine(expiration, dt.time(0), tzinfo=dt.timezone.utc)
    moments = [midnight.timestamp() - 1, midnight.timestamp(), midnight.timestamp() - 1]
    ctx = ssl_context(
        policy("localhost", spki_pin(leaf.cert), expiration=expiration), cadata=root_pem
    )
    verdicts = []
    for moment in moments:
        with monkeypatch.context() as patch:
            patch.setattr(time, "time", lambda moment=moment: moment)
            verdicts.append(echo(ctx, echo_server))
    assert [v.reason for v in verdicts] == ["pinned", "policy-expired", "pinned"]
    assert [v.now for v in verdicts] == [
        midnight - dt.timedelta(seconds=1),
        midnight,
        midnight - dt.timedelta(seconds=1),
    ]


def test_one_context_judges_each_chain_afresh(
    pki: TestPKI, leaf: LeafCert, rogue_chain: tuple[LeafCert, CertificateAuthority]
) -> None:
    rogue_leaf, _ = rogue_chain
    trust = pki.root.cert_pem.bytes().decode("ascii") + pki.rogue.cert_pem.bytes().decode("ascii")
    ctx = ssl_context(policy("localhost", spki_pin(pki.intermediate.cert)), cadata=trust)
    with TLSServer(leaf, mode="echo") as echo_server:
        assert echo(ctx, echo_server).reason == "pinned"
        assert echo(ctx, echo_server).reason == "pinned"
        echo_server.set_chain(rogue_leaf)
        echo_server.wait_for_connections(2)
        echo_server.reset()
        refused(ctx, echo_server)
        echo_server.reset()
        echo_server.set_chain(leaf)
        assert echo(ctx, echo_server).reason == "pinned"


def test_pinned_socket_class_on_an_unpinned_context_fails_closed(
    root_pem: str, echo_server: TLSServer
) -> None:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cadata=root_pem)
    ctx.sslsocket_class = PinnedSSLSocket
    error = refused(ctx, echo_server)
    assert error.verdict is not None
    assert error.verdict.reason == "internal-error"


@pytest.mark.parametrize("bad", ["missing", "empty"])
def test_unreadable_cafile_is_a_chain_error_naming_the_file(tmp_path: Path, bad: str) -> None:
    cafile = tmp_path / "ca.pem"
    if bad == "empty":
        cafile.write_text("")
    with pytest.raises(ChainError) as info:
        pinset.ssl_context(pinset.Policy(), cafile=cafile)
    assert str(cafile) in str(info.value)
    assert info.value.hint


# -- failure reports ---------------------------------------------------------------


def test_default_reporter_sends_a_report_for_a_refusal(
    root_pem: str,
    echo_server: TLSServer,
    sink: ReportSink,  # noqa: F811 - the imported fixture
) -> None:
    rule = DomainRule("localhost", pins=(WRONG, BACKUP), report_uris=(sink.url,))
    ctx = ssl_context(Policy(rules=(rule,)), cadata=root_pem)
    refused(ctx, echo_server)
    assert sink.received.wait(10)
    [body] = sink.bodies
    assert body["hostname"] == "localhost"
    assert sorted(body["known-pins"]) == sorted(f'pin-sha256="{p.b64}"' for p in (WRONG, BACKUP))


@pytest.fixture
def default_reporters(monkeypatch: pytest.MonkeyPatch) -> list[BackgroundReporter]:
    """Every reporter ``pinset.reporting.default_reporter`` makes from now on, to flush it."""
    made: list[BackgroundReporter] = []
    make = pinset.reporting.default_reporter

    def recording(policy: Policy, **kwargs: Any) -> BackgroundReporter | None:
        reporter = make(policy, **kwargs)
        if reporter is not None:
            made.append(reporter)
        return reporter

    monkeypatch.setattr(pinset.reporting, "default_reporter", recording)
    return made


def test_empty_observers_send_nothing_and_given_observers_replace_the_default(
    root_pem: str,
    echo_server: TLSServer,
    sink: ReportSink,  # noqa: F811 - the imported fixture
    default_reporters: list[BackgroundReporter],
) -> None:
    rule = DomainRule("localhost", pins=(WRONG, BACKUP), report_uris=(sink.url,))
    quiet = ssl_context(Policy(rules=(rule,)), cadata=root_pem, observers=())
    assert quiet.pinset_observers == ()
    refused(quiet, echo_server)
    echo_server.reset()
    seen: list[str] = []
    ctx = ssl_context(
        Policy(rules=(rule,)),
        cadata=root_pem,
        observers=[lambda verdict, conn: seen.append(verdict.reason)],
    )
    refused(ctx, echo_server)
    assert seen == ["pin-mismatch"]
    assert all(made.flush(10) for made in default_reporters)  # whatever was made has sent
    assert sink.bodies == []


@pytest.mark.parametrize("bad", ["yes", ["yes"], 3, print])
def test_observers_that_are_not_an_iterable_of_callables_are_refused(
    root_pem: str, bad: Any
) -> None:
    with pytest.raises(ConfigError) as info:
        ssl_context(Policy(), cadata=root_pem, observers=bad)
    assert "observers" in info.value.diagnostics()
    assert info.value.hint


def test_default_observers_are_the_default_reporter_only_when_there_are_report_uris(
    root_pem: str,
    echo_server: TLSServer,
    sink: ReportSink,  # noqa: F811 - the imported fixture
    default_reporters: list[BackgroundReporter],
) -> None:
    assert ssl_context(policy("localhost", OTHER), cadata=root_pem).pinset_observers == ()
    rule = DomainRule("localhost", pins=(WRONG, BACKUP), report_uris=(sink.url,))
    (made,) = ssl_context(Policy(rules=(rule,)), cadata=root_pem).pinset_observers
    assert isinstance(made, BackgroundReporter)
    made.close()
    reporter = BackgroundReporter()
    ctx = ssl_context(Policy(rules=(rule,)), cadata=root_pem, observers=[reporter])
    assert ctx.pinset_observers == (reporter,)  # not doubled by a default reporter
    refused(ctx, echo_server)
    assert reporter.flush(10)
    assert all(made.flush(10) for made in default_reporters)  # whatever was made has sent
    assert len(sink.bodies) == 1
    reporter.close()


# -- attacks on the pinned context, one per semantic of the brief ----------------------


def wrap(
    ctx: ssl.SSLContext, echo_server: TLSServer, hostname: str = "localhost", **kwargs: Any
) -> ssl.SSLSocket:
    sock = socket.create_connection(echo_server.address, timeout=5)
    try:
        return ctx.wrap_socket(sock, server_hostname=hostname, **kwargs)
    except BaseException:
        sock.close()
        raise


def nothing_received(echo_server: TLSServer) -> None:
    echo_server.wait_for_connections(1)
    assert echo_server.received_bytes == 0


UTC_PLUS_14 = dt.timezone(dt.timedelta(hours=14))


# -- 1. pins are matched against the verified chain ------------------------------------


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


# -- 2. pinning only narrows trust -----------------------------------------------------


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


# -- 3. fail closed --------------------------------------------------------------------


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


def test_ssl_object_read_before_the_handshake_is_checked(
    root_pem: str, echo_server: TLSServer
) -> None:
    ctx = ssl_context(pinning(("localhost", (WRONG,))), cadata=root_pem, observers=())
    obj, incoming, outgoing = _bio(ctx)
    with socket.create_connection(echo_server.address, timeout=5) as sock:
        with pytest.raises(PinMismatchError):
            _bio_handshake(obj, incoming, outgoing, sock, "read")
        with pytest.raises(PinMismatchError):
            obj.read(1)
        sock.sendall(outgoing.read())
    nothing_received(echo_server)


def test_ssl_object_resumed_session_is_refused(
    pki: TestPKI, root_pem: str, echo_server: TLSServer
) -> None:
    echo_server.ssl_context.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx = ssl_context(
        pinning(("localhost", (spki_pin(pki.root.cert),))), cadata=root_pem, observers=()
    )
    obj, incoming, outgoing = _bio(ctx)
    with socket.create_connection(echo_server.address, timeout=5) as sock:
        _bio_handshake(obj, incoming, outgoing, sock, "handshake")
        verdict = obj.pinset_verdict  # type: ignore[attr-defined]
        assert verdict is not None
        assert verdict.reason == "pinned"
        session = obj.session
        sock.sendall(outgoing.read())
    assert session is not None
    echo_server.wait_for_connections(1)
    echo_server.reset()
    again, incoming, outgoing = _bio(ctx, session=session)
    with socket.create_connection(echo_server.address, timeout=5) as sock:
        with pytest.raises(PinMismatchError) as info:
            _bio_handshake(again, incoming, outgoing, sock, "handshake")
        sock.sendall(outgoing.read())
    assert again.session_reused
    assert info.value.verdict is not None
    assert info.value.verdict.reason == "no-verified-chain"
    nothing_received(echo_server)


def test_unwrap_before_the_handshake_sends_no_application_data(
    root_pem: str, echo_server: TLSServer
) -> None:
    ctx = ssl_context(pinning(("localhost", (WRONG,))), cadata=root_pem, observers=())
    tls = wrap(ctx, echo_server, do_handshake_on_connect=False)
    with tls:
        # OpenSSL refuses a shutdown in the middle of a handshake that never ran.
        with pytest.raises(ssl.SSLError, match="SHUTDOWN_WHILE_IN_INIT"):
            tls.unwrap()
        with pytest.raises(PinMismatchError):
            tls.sendall(b"GET / HTTP/1.0\r\n\r\n")
    assert isinstance(tls, PinnedSSLSocket)
    assert tls.pinset_verdict is None
    echo_server.wait_for_connections(1)
    assert echo_server.received_bytes == 0


@pytest.mark.parametrize("right", [True, False])
def test_an_observer_raising_pin_mismatch_changes_nothing(
    pki: TestPKI, root_pem: str, echo_server: TLSServer, right: bool
) -> None:
    def hostile(verdict: Verdict, conn: Connection) -> None:
        raise PinMismatchError("observer says no", hostname=verdict.host)

    def lenient(verdict: Verdict, conn: Connection) -> None:
        raise ssl.SSLError("observer tries to swallow")

    pin = spki_pin(pki.intermediate.cert) if right else WRONG
    ctx = ssl_context(pinning(("localhost", (pin,))), cadata=root_pem, observers=[hostile, lenient])
    if right:
        with wrap(ctx, echo_server) as tls:
            tls.sendall(b"ping")
            assert tls.recv(4) == b"ping"
            assert isinstance(tls, PinnedSSLSocket)
            assert tls.pinset_verdict is not None
            assert tls.pinset_verdict.reason == "pinned"
    else:
        with pytest.raises(PinMismatchError) as info:
            wrap(ctx, echo_server)
        assert info.value.verdict is not None
        assert info.value.verdict.reason == "pin-mismatch"
        nothing_received(echo_server)


# -- 4. one canonical host for rules and connections -----------------------------------


@pytest.mark.parametrize("spelling", ["127.000.000.001", "0127.0.0.1", "127.0.0.01", "127.00.0.1"])
def test_leading_zero_ipv4_spelling_cannot_skip_the_pins(
    root_pem: str, echo_server: TLSServer, spelling: str
) -> None:
    # OpenSSL checks the certificate for a server_hostname of four decimal numbers as an
    # IPv4 address, leading zeros and all; the rule lookup used to see a different name.
    ctx = ssl_context(pinning(("127.0.0.1", (WRONG,))), cadata=root_pem, observers=())
    with pytest.raises(PinMismatchError) as info:
        wrap(ctx, echo_server, hostname=spelling)
    assert info.value.verdict is not None
    assert info.value.verdict.reason == "pin-mismatch"
    assert info.value.verdict.host == "127.0.0.1"
    nothing_received(echo_server)


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
    root_pem: str, echo_server: TLSServer, name: str
) -> None:
    ctx = ssl_context(
        pinning(("localhost", (WRONG,)), ("127.0.0.1", (WRONG,))), cadata=root_pem, observers=()
    )
    # Refused by normal validation (OpenSSL does not strip the dot) or by the pins:
    # either way never a connection judged "not-pinned".
    with pytest.raises(ssl.SSLCertVerificationError):
        wrap(ctx, echo_server, hostname=name)
    assert echo_server.received_bytes == 0


# -- 8. expiration: one context follows the UTC instant --------------------------------


def test_expiration_at_utc_midnight_seen_from_a_utc_plus_14_clock(
    pki: TestPKI, root_pem: str, echo_server: TLSServer
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
            wrap(ctx, echo_server)
        moments.pop(0)
    with wrap(ctx, echo_server) as tls:
        assert isinstance(tls, PinnedSSLSocket)
        assert tls.pinset_verdict is not None
        assert tls.pinset_verdict.reason == "policy-expired"
    assert rule.is_expired(midnight_local)
    assert not rule.is_expired(midnight_local - dt.timedelta(microseconds=1))
