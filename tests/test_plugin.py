"""The pytest plugin, exercised the way a user's suite would use it (through pytester).

The plugin is opt-in: a suite enables it in its top-level conftest.py (``pytest_plugins``)
or with ``-p pinset.testing.plugin``; installing pinset loads nothing into other runs.
"""

from __future__ import annotations

import sys

import pytest

pytest_plugins = ["pytester"]

OPT_IN = 'pytest_plugins = ["pinset.testing.plugin"]\n'
FIXTURES = ("pinset_pki", "pinset_tls_server", "pinset_mitm_proxy", "pinset_pinned_context")

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
def test_client_refuses_mitm(
    pinset_pki, pinset_tls_server, pinset_mitm_proxy, pinset_pinned_context
):
    leaf = pinset_pki.leaf("localhost")
    server = pinset_tls_server(leaf)
    ctx = CLIENT_CONTEXT
    with pytest.raises(urllib.error.URLError) as info:
        get(f"https://localhost:{server.port}/", proxy=pinset_mitm_proxy.url, context=ctx)
    assert isinstance(info.value.reason, ssl.SSLCertVerificationError)
    assert_refused(pinset_mitm_proxy, "localhost")
    assert server.received_bytes == 0


def test_control_attack_works(pinset_pki, pinset_tls_server, pinset_mitm_proxy):
    server = pinset_tls_server()
    ctx = pinset_pki.client_context()
    pinset_mitm_proxy.ca.configure_trust(ctx)
    assert get(f"https://localhost:{server.port}/", proxy=pinset_mitm_proxy.url, context=ctx)
    assert_intercepted(pinset_mitm_proxy, "localhost")
"""

PINNED = (
    'pinset_pinned_context({"localhost": [leaf]}, trust=[pinset_pki.root, pinset_mitm_proxy.ca])'
)
UNPINNED = (
    "ssl.create_default_context("
    "cadata=pinset_pki.root.cert_pem.bytes().decode() + pinset_mitm_proxy.ca_pem)"
)


@pytest.fixture
def user_suite(pytester: pytest.Pytester) -> pytest.Pytester:
    """A user's suite that opted in to the plugin in its top-level conftest.py."""
    pytester.makeconftest(OPT_IN)
    return pytester


def test_pinned_client_passes_the_mitm_test(user_suite: pytest.Pytester) -> None:
    user_suite.makepyfile(USER_TESTS.replace("CLIENT_CONTEXT", PINNED))
    result = user_suite.runpytest("-p", "no:cacheprovider", "--strict-markers")
    result.assert_outcomes(passed=2)


def test_unpinned_client_fails_the_mitm_test(user_suite: pytest.Pytester) -> None:
    """The check can fail: a client that trusts the interception CA is caught."""
    user_suite.makepyfile(USER_TESTS.replace("CLIENT_CONTEXT", UNPINNED))
    result = user_suite.runpytest("-p", "no:cacheprovider", "--strict-markers")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*DID NOT RAISE*"])


def test_one_run_can_opt_in_with_dash_p(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(USER_TESTS.replace("CLIENT_CONTEXT", PINNED))
    args = ("-p", "no:cacheprovider", "--strict-markers")
    result = pytester.runpytest(*args, "-p", "pinset.testing.plugin")
    result.assert_outcomes(passed=2)


def test_leaky_client_is_reported_with_its_byte_count(user_suite: pytest.Pytester) -> None:
    user_suite.makepyfile(
        """
        from pinset.testing.plugin import assert_refused

        def test_leaky(pinset_pki, pinset_tls_server, pinset_mitm_proxy):
            server = pinset_tls_server()
            ctx = pinset_pki.client_context()
            pinset_mitm_proxy.ca.configure_trust(ctx)
            import socket
            raw = socket.create_connection(("127.0.0.1", pinset_mitm_proxy.port))
            raw.sendall(f"CONNECT localhost:{server.port} HTTP/1.1\\r\\n\\r\\n".encode())
            raw.recv(100)
            with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
                tls.sendall(b"x" * 17)
            assert_refused(pinset_mitm_proxy, "localhost")
        """
    )
    result = user_suite.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*INTERCEPTED*sent 17 application bytes*"])


def test_fixtures_and_marker_are_documented(user_suite: pytest.Pytester) -> None:
    result = user_suite.runpytest("--fixtures")
    for name in FIXTURES:
        result.stdout.fnmatch_lines([f"{name} -- *pinset*plugin.py*"])
    result = user_suite.runpytest("--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.pinset_mitm*"])


def test_the_plugin_leaves_a_suites_own_generic_fixtures_alone(
    user_suite: pytest.Pytester,
) -> None:
    """A suite's own ``pki`` and ``tls_server`` are its own; pinset's are pinset_*."""
    user_suite.makepyfile(
        """
        import pytest

        @pytest.fixture
        def pki():
            return "the suite's pki"

        def tls_server():
            return "not a fixture"

        def test_names(pki, pinset_pki, pinset_tls_server):
            assert pki == "the suite's pki"
            assert pinset_tls_server().port > 0
            assert type(pinset_pki).__name__ == "TestPKI"
        """
    )
    user_suite.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_installing_pinset_loads_no_plugin_into_an_unrelated_run(
    pytester: pytest.Pytester,
) -> None:
    """A fresh process, pinset installed, a suite that never asked for the plugin."""
    pytester.makepyfile(
        """
        import sys

        def test_nothing_of_pinset_was_loaded(request):
            assert "pinset.testing.plugin" not in sys.modules
            assert "pinset" not in sys.modules
            names = request.config.pluginmanager.list_name_plugin()
            assert not [name for name, _ in names if "pinset" in (name or "")]
        """
    )
    listed = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--fixtures").stdout.lines
    (plugins,) = [line for line in listed if line.startswith("plugins: ")]
    assert "pinset" not in plugins
    assert not [line for line in listed if line.startswith(FIXTURES)]
    markers = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--markers").stdout.lines
    assert not [line for line in markers if "pinset_mitm" in line]
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    # The same interpreter has pinset installed, so its absence above is the plugin's doing.
    check = pytester.run(sys.executable, "-c", "import pinset.testing.plugin")
    assert check.ret == 0


def test_pinned_context_accepts_a_policy_and_pin_texts(user_suite: pytest.Pytester) -> None:
    user_suite.makepyfile(
        """
        import pinset, pytest, socket
        from pinset.testing.plugin import make_policy

        def test_it(pinset_pki, pinset_tls_server, pinset_pinned_context):
            leaf = pinset_pki.leaf("localhost")
            server = pinset_tls_server(leaf)
            pins = {"localhost": [str(pinset.spki_pin(leaf.cert))]}
            good = pinset_pinned_context(make_policy(pins))
            with socket.create_connection(("127.0.0.1", server.port)) as raw:
                good.wrap_socket(raw, server_hostname="localhost").close()
            bad = pinset_pinned_context({"localhost": [pinset_pki.rogue]})
            with socket.create_connection(("127.0.0.1", server.port)) as raw:
                with pytest.raises(pinset.PinMismatchError):
                    bad.wrap_socket(raw, server_hostname="localhost")
        """
    )
    user_suite.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_pinned_context_trusts_a_certificate_or_pem(user_suite: pytest.Pytester) -> None:
    user_suite.makepyfile(
        """
        import pinset, pytest, socket, ssl

        @pytest.mark.parametrize("form", ["certificate", "text", "bytes"])
        def test_it(pinset_pki, pinset_tls_server, pinset_pinned_context, form):
            leaf = pinset_pki.leaf("localhost")
            server = pinset_tls_server(leaf)
            pem = pinset_pki.root.cert_pem.bytes()
            root = pinset_pki.root.cert
            anchor = {"certificate": root, "text": pem.decode(), "bytes": pem}[form]
            ctx = pinset_pinned_context({"localhost": [leaf]}, trust=[anchor])
            with socket.create_connection(("127.0.0.1", server.port)) as raw:
                ctx.wrap_socket(raw, server_hostname="localhost").close()
            rogue = [pinset_pki.rogue.cert]
            untrusting = pinset_pinned_context({"localhost": [leaf]}, trust=rogue)
            with socket.create_connection(("127.0.0.1", server.port)) as raw:
                with pytest.raises(ssl.SSLCertVerificationError):
                    untrusting.wrap_socket(raw, server_hostname="localhost")
        """
    )
    user_suite.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=3)
