"""The pytest plugin, exercised the way a user's suite would use it (through pytester)."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

USER_TESTS = """
import ssl
import urllib.error
import urllib.request

import pytest

from pinset.testing.plugin import assert_intercepted, assert_refused


def get(url, *, proxy, context):
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({"https": proxy}),
        urllib.request.HTTPSHandler(context=context),
    )
    with opener.open(url, timeout=10) as response:
        return response.read()


@pytest.mark.pinset_mitm
def test_client_refuses_mitm(pki, tls_server, mitm_proxy, pinned_context):
    leaf = pki.leaf("localhost")
    server = tls_server(leaf)
    ctx = CLIENT_CONTEXT
    with pytest.raises(urllib.error.URLError) as info:
        get(f"https://localhost:{server.port}/", proxy=mitm_proxy.url, context=ctx)
    assert isinstance(info.value.reason, ssl.SSLCertVerificationError)
    assert_refused(mitm_proxy, "localhost")
    assert server.received_bytes == 0


def test_control_attack_works(pki, tls_server, mitm_proxy):
    server = tls_server()
    ctx = pki.client_context()
    mitm_proxy.ca.configure_trust(ctx)
    assert get(f"https://localhost:{server.port}/", proxy=mitm_proxy.url, context=ctx)
    assert_intercepted(mitm_proxy, "localhost")
"""

PINNED = 'pinned_context({"localhost": [leaf]}, trust=[pki.root, mitm_proxy.ca])'
UNPINNED = (
    "ssl.create_default_context(cadata=pki.root.cert_pem.bytes().decode() + mitm_proxy.ca_pem)"
)


def test_pinned_client_passes_the_mitm_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(USER_TESTS.replace("CLIENT_CONTEXT", PINNED))
    result = pytester.runpytest("-p", "no:cacheprovider", "--strict-markers")
    result.assert_outcomes(passed=2)


def test_unpinned_client_fails_the_mitm_test(pytester: pytest.Pytester) -> None:
    """The check can fail: a client that trusts the interception CA is caught."""
    pytester.makepyfile(USER_TESTS.replace("CLIENT_CONTEXT", UNPINNED))
    result = pytester.runpytest("-p", "no:cacheprovider", "--strict-markers")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*DID NOT RAISE*"])


def test_leaky_client_is_reported_with_its_byte_count(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        from pinset.testing.plugin import assert_refused

        def test_leaky(pki, tls_server, mitm_proxy):
            server = tls_server()
            ctx = pki.client_context()
            mitm_proxy.ca.configure_trust(ctx)
            import socket
            raw = socket.create_connection(("127.0.0.1", mitm_proxy.port))
            raw.sendall(f"CONNECT localhost:{server.port} HTTP/1.1\\r\\n\\r\\n".encode())
            raw.recv(100)
            with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
                tls.sendall(b"x" * 17)
            assert_refused(mitm_proxy, "localhost")
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*INTERCEPTED*sent 17 application bytes*"])


def test_fixtures_and_marker_are_documented(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--fixtures")
    for name in ("pki", "tls_server", "mitm_proxy", "pinned_context"):
        result.stdout.fnmatch_lines([f"{name} -- *pinset*plugin.py*"])
    result = pytester.runpytest("--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.pinset_mitm*"])


def test_pinned_context_accepts_a_policy_and_pin_texts(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pinset, pytest, socket
        from pinset.testing.plugin import make_policy

        def test_it(pki, tls_server, pinned_context):
            leaf = pki.leaf("localhost")
            server = tls_server(leaf)
            good = pinned_context(make_policy({"localhost": [str(pinset.spki_pin(leaf.cert))]}))
            with socket.create_connection(("127.0.0.1", server.port)) as raw:
                good.wrap_socket(raw, server_hostname="localhost").close()
            bad = pinned_context({"localhost": [pki.rogue]})
            with socket.create_connection(("127.0.0.1", server.port)) as raw:
                with pytest.raises(pinset.PinMismatchError):
                    bad.wrap_socket(raw, server_hostname="localhost")
        """
    )
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_pinned_context_trusts_a_certificate_or_pem(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pinset, pytest, socket, ssl

        @pytest.mark.parametrize("form", ["certificate", "text", "bytes"])
        def test_it(pki, tls_server, pinned_context, form):
            leaf = pki.leaf("localhost")
            server = tls_server(leaf)
            pem = pki.root.cert_pem.bytes()
            anchor = {"certificate": pki.root.cert, "text": pem.decode(), "bytes": pem}[form]
            ctx = pinned_context({"localhost": [leaf]}, trust=[anchor])
            with socket.create_connection(("127.0.0.1", server.port)) as raw:
                ctx.wrap_socket(raw, server_hostname="localhost").close()
            untrusting = pinned_context({"localhost": [leaf]}, trust=[pki.rogue.cert])
            with socket.create_connection(("127.0.0.1", server.port)) as raw:
                with pytest.raises(ssl.SSLCertVerificationError):
                    untrusting.wrap_socket(raw, server_hostname="localhost")
        """
    )
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=3)
