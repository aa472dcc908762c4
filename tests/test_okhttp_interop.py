"""The exported OkHttp pinner on the real platform stack: Debian's JDK and OkHttp 3.13.

``pinset export -f okhttp`` (Kotlin, and ``-O language=java``) is compiled verbatim
into a small client (tests/jvm/) with ``javac`` and ``kotlinc`` once per session;
one JVM per language then makes every request of the suite. The JVM trusts the
test root, the rogue CA and both interception CAs (a PKCS#12 trust store passed with
``-Djavax.net.ssl.trustStore``), like a device where a user installed a proxy CA:
only the pin stands between the client and the attacker. The unpinned controls
prove that trust is in effect.

Each case runs twice on the same path: OkHttp's own ``CertificatePinner`` and
pinset's ``ssl_context`` must reach the same verdict. A refusal must be OkHttp's
``SSLPeerUnverifiedException: Certificate pinning failure!`` with zero application
bytes reaching the proxy and the server. ``pinset import`` of each generated file
gives back the exported policy, and ``pinset audit`` on it agrees with the verdicts.
"""

from __future__ import annotations

import json
import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

import pinset
from _jvm import Answer, Compilation, JvmClient, Language, missing
from _mitmdump import Mitmdump, find_mitmdump
from pinset.chain import peer_chain
from pinset.cli import main
from pinset.cli._mitm._jvm import TRUSTSTORE_PASSWORD, write_truststore
from pinset.testing import MitmProxy, TestPKI, TLSServer, generate_key

LANGUAGES: tuple[Language, ...] = ("java", "kotlin")
MITMDUMP = find_mitmdump()
Route = Literal["direct", "pinset-mitm", "mitmproxy"]
ServerName = Literal["primary", "backup", "rogue", "cve-2016-2402", "behind-mitmproxy"]

pytestmark = [
    pytest.mark.okhttp,
    pytest.mark.skipif(missing("java") is not None, reason=str(missing("java"))),
]

# The "subdomains" policy exported with -O okhttp=3: the name and one label below.
OKHTTP_3_SUBDOMAINS = "subdomains_okhttp3"

# The policies under test, in pinset's own format; {name} is filled with pins at run time.
POLICIES = {
    "leaf": '[[domain]]\nname = "localhost"\npins = ["{primary}", "{backup}"]\n',
    "intermediate": '[[domain]]\nname = "localhost"\npins = ["{intermediate}", "{backup}"]\n',
    "one_label": '[[domain]]\nname = "*.pinned.localhost"\npins = ["{primary}", "{backup}"]\n',
    "one_label_dotless": '[[domain]]\nname = "*.localhost"\npins = ["{primary}", "{backup}"]\n',
    "subdomains": (
        '[[domain]]\nname = "localhost"\ninclude-subdomains = true\n'
        'pins = ["{primary}", "{backup}"]\n'
    ),
}


@dataclass(frozen=True)
class Case:
    """One request: which pinner, to which server, along which route, and the expected verdict."""

    pinner: str  # a key of POLICIES, or "none" (the unpinned control)
    server: ServerName
    route: Route
    allowed: bool
    host: str = "localhost"

    @property
    def id(self) -> str:
        return f"{self.pinner}-{self.server}-{self.route}-{self.host}"


CASES = (
    Case("leaf", "primary", "direct", allowed=True),
    Case("leaf", "backup", "direct", allowed=True),  # the server switched to the backup key
    Case("leaf", "primary", "pinset-mitm", allowed=False),
    Case("leaf", "primary", "mitmproxy", allowed=False),
    Case("leaf", "rogue", "direct", allowed=False),
    Case("intermediate", "primary", "direct", allowed=True),
    Case("intermediate", "backup", "direct", allowed=True),
    Case("intermediate", "rogue", "direct", allowed=False),
    Case("intermediate", "cve-2016-2402", "direct", allowed=False),
    Case("intermediate", "primary", "pinset-mitm", allowed=False),
    Case("intermediate", "primary", "mitmproxy", allowed=False),
    # One label below: OkHttp's `*.` and pinset's one-label rule, and the label boundary.
    Case("one_label", "primary", "direct", allowed=True, host="api.pinned.localhost"),
    Case("one_label", "rogue", "direct", allowed=False, host="api.pinned.localhost"),
    Case("one_label", "rogue", "direct", allowed=True, host="pinned.localhost"),  # not covered
    # Controls: without a pin the interception works, so the trust store is in effect
    # and the refusals above are the pin's doing.
    Case("none", "primary", "pinset-mitm", allowed=True),
    Case("none", "primary", "mitmproxy", allowed=True),
)


@dataclass
class World:
    """Everything the cases share: servers, proxies, policies, trust and compiled clients."""

    servers: dict[ServerName, TLSServer]
    proxy: MitmProxy
    mitmdump: Mitmdump | None
    trust_pem: Path
    trust_p12: Path
    policy_files: dict[str, Path]
    exports: dict[Language, dict[str, Path]]
    compilation: Compilation  # waited for by the first test that needs a JVM client

    def server(self, case: Case) -> TLSServer:
        """The server *case* reaches: behind mitmproxy, the primary's twin with a short idle."""
        if case.route == "mitmproxy" and case.server == "primary":
            return self.servers["behind-mitmproxy"]
        return self.servers[case.server]

    def policy(self, name: str) -> pinset.Policy:
        return pinset.load_policy(self.policy_files[name])

    def proxy_address(self, route: Route) -> str | None:
        if route == "pinset-mitm":
            return f"127.0.0.1:{self.proxy.port}"
        if route == "mitmproxy":
            assert self.mitmdump is not None
            return f"127.0.0.1:{self.mitmdump.port}"
        return None


@pytest.fixture(scope="session")
def world(pki: TestPKI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """Export, compile (in the background), serve and proxy: all once per session."""
    work = tmp_path_factory.mktemp("okhttp")
    names = ("localhost", "api.localhost", "pinned.localhost", "api.pinned.localhost", "127.0.0.1")
    primary = pki.leaf(*names)
    backup_key = generate_key()  # the offline key the policy names before it is ever served
    backup = pki.leaf(*names, private_key=backup_key)
    rogue = pki.rogue.issue_cert(*names)
    pins = {
        "primary": pinset.spki_pin(primary.cert),
        "backup": pinset.spki_pin(backup_key.public_key()),
        "intermediate": pinset.spki_pin(pki.intermediate.cert),
    }
    policy_files: dict[str, Path] = {}
    for name, text in POLICIES.items():
        policy_files[name] = work / f"{name}.toml"
        policy_files[name].write_text(text.format(**{k: str(p) for k, p in pins.items()}))
    exports = {language: _export(work, language, policy_files) for language in LANGUAGES}
    buildable = [language for language in LANGUAGES if missing(language) is None]
    compilation = Compilation(
        work / "jvm",
        {
            language: {name: path.read_text() for name, path in exports[language].items()}
            for language in buildable
        },
    )
    # CVE-2016-2402: a forged chain carrying the genuine pinned intermediate, unconnected.
    cve_chain = [rogue.cert, pki.intermediate.cert]
    try:
        with (
            TLSServer(primary) as primary_server,
            # mitmproxy never logs the end of a connection that the JVM closed with a
            # close_notify, so a refusal through it is judged once the server has closed
            # mitmproxy's idle upstream connection: a short idle timeout keeps that at 1 s.
            TLSServer(primary, io_timeout=1.0) as behind_mitmproxy,
            TLSServer(backup) as backup_server,
            TLSServer(rogue) as rogue_server,
            TLSServer(cve_chain, rogue.private_key) as cve_server,
            MitmProxy() as proxy,
            _mitmdump(pki, work) as mitm,
        ):
            trusted = [pki.root.cert, pki.rogue.cert]
            if mitm is not None:
                trusted.append(x509.load_pem_x509_certificate(mitm.ca_cert_path.read_bytes()))
            trust_pem = work / "trust.pem"
            trust_pem.write_bytes(
                b"".join(c.public_bytes(Encoding.PEM) for c in [proxy.ca.cert, *trusted])
            )
            yield World(
                servers={
                    "primary": primary_server,
                    "backup": backup_server,
                    "rogue": rogue_server,
                    "cve-2016-2402": cve_server,
                    "behind-mitmproxy": behind_mitmproxy,
                },
                proxy=proxy,
                mitmdump=mitm,
                trust_pem=trust_pem,
                trust_p12=write_truststore(work / "trust.p12", proxy.ca.cert, trusted),
                policy_files=policy_files,
                exports=exports,
                compilation=compilation,
            )
    finally:
        compilation.kill()


@contextmanager
def _mitmdump(pki: TestPKI, work: Path) -> Iterator[Mitmdump | None]:
    if MITMDUMP is None:
        yield None
        return
    mitm_dir = work / "mitmdump"
    mitm_dir.mkdir()
    upstream_ca = mitm_dir / "upstream-root.pem"
    pki.root.cert_pem.write_to_path(upstream_ca)
    # mitmproxy verifies the real server against the test root, as it would a public CA.
    with Mitmdump(MITMDUMP, mitm_dir, "regular", upstream_ca=upstream_ca) as mitm:
        yield mitm


def _export(work: Path, language: Language, policy_files: dict[str, Path]) -> dict[str, Path]:
    """``pinset export POLICY -f okhttp [-O language=java] -o FILE``, run as the CLI runs it."""
    out: dict[str, Path] = {}
    suffix = ".java" if language == "java" else ".kt"
    for name, policy_file in policy_files.items():
        target = work / f"export-{language}" / f"{name}{suffix}"
        target.parent.mkdir(exist_ok=True)
        option = ["-O", "language=java"] if language == "java" else []
        assert main(["export", str(policy_file), "-f", "okhttp", *option, "-o", str(target)]) == 0
        out[name] = target
    # The include-subdomains policy once more for OkHttp 3, which cannot read `**.`.
    target = work / f"export-{language}" / f"{OKHTTP_3_SUBDOMAINS}{suffix}"
    argv = ["export", str(policy_files["subdomains"]), "-f", "okhttp", *option, "-O", "okhttp=3"]
    assert main([*argv, "-o", str(target)]) == 0
    out[OKHTTP_3_SUBDOMAINS] = target
    return out


@pytest.fixture(scope="session", params=LANGUAGES)
def client(request: pytest.FixtureRequest, world: World) -> Iterator[JvmClient]:
    language: Language = request.param
    classes = world.compilation.wait()
    if language not in classes:
        pytest.skip(str(missing(language)))
    with JvmClient(language, classes[language], world.trust_p12, TRUSTSTORE_PASSWORD) as jvm:
        yield jvm


# -- one request each way -------------------------------------------------------------


def _require_route(world: World, route: Route) -> None:
    if route == "mitmproxy" and world.mitmdump is None:
        pytest.skip("mitmdump not found: set PINSET_MITMDUMP or create .venv-mitmproxy")


def _reset(world: World, server: TLSServer) -> int:
    server.reset()
    world.proxy.reset()
    return world.mitmdump.mark() if world.mitmdump is not None else 0


def _assert_nothing_leaked(world: World, case: Case, server: TLSServer, mark: int) -> None:
    if case.route == "pinset-mitm":
        (verdict,) = world.proxy.verdicts([case.host])
        assert verdict.outcome == "REFUSED", verdict
        assert verdict.leaked_bytes == 0
    elif case.route == "mitmproxy":
        assert world.mitmdump is not None
        # mitmproxy never logs the end of a connection the JVM closed with a close_notify
        # ("TLS Error: Unexpected EOF" in its own log), so wait for the other end: it
        # relays a request as soon as it reads one, and its upstream connection sits idle
        # until the server ends it (io_timeout) with nothing received.
        server.wait_for_connections(1, timeout=10)
        conns = world.mitmdump.clients(mark)
        assert conns, "the client never reached mitmproxy"
        assert all(c.tls_established or c.tls_failed for c in conns), conns
        assert sum(c.requests for c in conns) == 0, conns
    server.wait_for_connections(0)
    assert server.received_bytes == 0


def _assert_went_through(world: World, case: Case, mark: int) -> None:
    if case.route == "pinset-mitm":
        (verdict,) = world.proxy.verdicts([case.host])
        assert verdict.outcome == "INTERCEPTED", verdict
    elif case.route == "mitmproxy":
        assert world.mitmdump is not None
        assert sum(c.requests for c in world.mitmdump.wait_idle(mark)) == 1


def okhttp_allows(client: JvmClient, world: World, case: Case) -> bool:
    """OkHttp's verdict; a refusal must be its own pin check, and nothing may leak."""
    server = world.server(case)
    mark = _reset(world, server)
    url = f"https://{case.host}:{server.port}/"
    answer = client.get(case.pinner, url, world.proxy_address(case.route))
    if answer.status is None:
        assert answer.pinning_failure, f"OkHttp failed other than on its pins: {answer}"
        _assert_pins_listed(answer, world, case)
        _assert_nothing_leaked(world, case, server, mark)
        return False
    assert answer.status == 200
    assert answer.detail == server.http_body.decode().strip()
    _assert_went_through(world, case, mark)
    return True


def _assert_pins_listed(answer: Answer, world: World, case: Case) -> None:
    # OkHttp names the pins it was given: the exported ones, read back by OkHttp itself.
    expected = world.policy(case.pinner).rules[0].pins
    assert f"Pinned certificates for {case.host}:" in answer.detail
    for pin in expected:
        assert str(pin) in answer.detail


def pinset_allows(world: World, case: Case) -> bool:
    """pinset's verdict on the same path: an ``ssl_context`` of the policy, same trust."""
    server = world.server(case)
    mark = _reset(world, server)
    if case.pinner == "none":
        ctx = ssl.create_default_context(cafile=str(world.trust_pem))
    else:
        ctx = pinset.ssl_context(world.policy(case.pinner), cafile=world.trust_pem, observers=())
    proxy = world.proxy_address(case.route)
    sock = _connect(proxy, case.host, server.port)
    try:
        try:
            tls = ctx.wrap_socket(sock, server_hostname=case.host)
        except pinset.PinMismatchError:
            sock.close()
            _assert_nothing_leaked(world, case, server, mark)
            return False
        with tls:
            tls.sendall(
                f"GET / HTTP/1.1\r\nHost: {case.host}\r\nConnection: close\r\n\r\n".encode()
            )
            status = tls.recv(64).split(b" ")[1]
            while tls.recv(4096):
                pass
    finally:
        sock.close()
    assert status == b"200"
    _assert_went_through(world, case, mark)
    return True


def _connect(proxy: str | None, host: str, port: int) -> socket.socket:
    if proxy is None:
        return socket.create_connection(("127.0.0.1", port), timeout=10)
    proxy_host, _, proxy_port = proxy.rpartition(":")
    sock = socket.create_connection((proxy_host, int(proxy_port)), timeout=10)
    sock.sendall(f"CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
    reply = b""
    while b"\r\n\r\n" not in reply:
        chunk = sock.recv(1)
        assert chunk, f"the proxy closed after {reply!r}"
        reply += chunk
    assert reply.split(b" ")[1] == b"200", reply
    return sock


# -- the tests ---------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_okhttp_and_pinset_agree(client: JvmClient, world: World, case: Case) -> None:
    _require_route(world, case.route)
    verdicts = (okhttp_allows(client, world, case), pinset_allows(world, case))
    assert verdicts == (case.allowed, case.allowed)


def test_okhttp_3_export_refuses_the_rogue_ca_where_double_star_pins_nothing(
    client: JvmClient, world: World, tmp_path: Path
) -> None:
    """``-O okhttp=3`` writes ``localhost`` and ``*.localhost``, which OkHttp 3 enforces.

    OkHttp learned ``**.`` in 4.3.0 (its changelog: "Match any number of subdomains with
    two asterisks"). 3.x (Debian's 3.13, and the 3.12 branch kept for Android 4) only
    knows ``*.``: it takes the default export's ``**.localhost`` for a literal host name
    that no connection matches and accepts the rogue CA everywhere (the export warns).
    The OkHttp 3 export pins the name and one label below, where OkHttp and pinset both
    refuse; two labels below, which OkHttp 3 cannot express (the export warns), OkHttp
    still accepts the rogue CA while pinset refuses.
    """
    exports = world.exports[client.language]
    assert '"**.localhost"' in exports["subdomains"].read_text()
    legacy = exports[OKHTTP_3_SUBDOMAINS].read_text()
    assert '"localhost"' in legacy
    assert '"*.localhost"' in legacy
    assert "**." not in legacy
    rogue = world.servers["rogue"]
    for host, okhttp_3_pins in [
        ("localhost", True),
        ("api.localhost", True),
        ("api.pinned.localhost", False),
    ]:
        case = Case("subdomains", "rogue", "direct", allowed=False, host=host)
        assert not pinset_allows(world, case)
        url = f"https://{host}:{rogue.port}/"
        default = client.get("subdomains", url)
        assert (default.status, default.exception) == (200, None), default
        mark = _reset(world, rogue)
        answer = client.get(OKHTTP_3_SUBDOMAINS, url)
        if not okhttp_3_pins:
            assert (answer.status, answer.exception) == (200, None), answer
            continue
        assert answer.pinning_failure, answer
        _assert_pins_listed(answer, world, case)
        _assert_nothing_leaked(world, case, rogue, mark)
    # Imported back, the file is what OkHttp 3 enforces: the name and one label below.
    back = tmp_path / "back.toml"
    assert main(["import", str(exports[OKHTTP_3_SUBDOMAINS]), "-o", str(back)]) == 0
    pins = world.policy("subdomains").rules[0].pins
    assert pinset.load_policy(back).rules == (
        pinset.DomainRule("localhost", pins=pins),
        pinset.DomainRule("localhost", pins=pins, one_label=True),
    )


def test_okhttp_3_star_pattern_also_pins_a_name_without_a_dot(
    client: JvmClient, world: World
) -> None:
    """OkHttp 3.13 applies ``*.localhost`` to ``localhost`` itself; pinset does not.

    Its one-label match finds the host's first dot; a name without one (``indexOf``
    gives -1) passes the length check and is compared whole with the pattern's base.
    With a dot in the name (the ``one_label`` cases above) both stop at the label
    boundary. OkHttp is the stricter here: it refuses where pinset's rule does not apply.
    """
    rogue = world.servers["rogue"]
    case = Case("one_label_dotless", "rogue", "direct", allowed=True, host="localhost")
    assert pinset_allows(world, case)
    answer = client.get(case.pinner, f"https://localhost:{rogue.port}/")
    assert answer.pinning_failure, answer


@pytest.mark.parametrize("name", sorted(POLICIES))
@pytest.mark.parametrize("language", LANGUAGES)
def test_import_of_the_generated_source_gives_the_exported_policy(
    world: World, language: Language, name: str, tmp_path: Path
) -> None:
    back = tmp_path / "back.toml"
    assert main(["import", str(world.exports[language][name]), "-o", str(back)]) == 0
    assert pinset.load_policy(back) == world.policy(name)


AUDITED = [case for case in CASES if case.pinner != "none"]


@pytest.mark.parametrize("case", AUDITED, ids=[case.id for case in AUDITED])
@pytest.mark.parametrize("language", LANGUAGES)
def test_audit_of_the_generated_source_agrees_with_the_live_verdicts(
    world: World, language: Language, case: Case, tmp_path: Path
) -> None:
    """``pinset audit`` of the exported file, on the chain the client saw on that route."""
    _require_route(world, case.route)
    server = world.server(case)
    argv = ["audit", str(world.exports[language][case.pinner]), "--json", "-o", str(tmp_path / "a")]
    if case.route == "direct":
        # --host: a wildcard rule names no host to fetch by itself.
        argv += ["--live", "--host", case.host, "--connect", f"{case.host}=127.0.0.1:{server.port}"]
        argv += ["--cafile", str(world.trust_pem)]
    else:
        argv += ["--chain", f"{case.host}={_chain_through(world, case, tmp_path / 'chain.pem')}"]
    exit_code = main(argv)
    report = json.loads((tmp_path / "a").read_text())
    mismatches = [f for f in report["findings"] if f["id"] == "no-live-match"]
    assert (exit_code, bool(mismatches)) == ((0, False) if case.allowed else (1, True)), report


def _chain_through(world: World, case: Case, path: Path) -> Path:
    """The chain a client that trusts the interception CA verifies on *case*'s route."""
    server = world.server(case)
    _reset(world, server)
    ctx = ssl.create_default_context(cafile=str(world.trust_pem))
    with ctx.wrap_socket(
        _connect(world.proxy_address(case.route), case.host, server.port),
        server_hostname=case.host,
    ) as tls:
        chain = peer_chain(tls, verified=True)
    path.write_bytes(b"".join(cert.public_bytes(Encoding.PEM) for cert in chain))
    return path
