"""Fixtures every component shares, defined once: the PKI, its leaf, loopback servers, keys.

Key generation is the slow part of most tests, so each key type is generated at
most once per session; RSA-8192 (seconds to generate) is a fixed key from _certs.
Every connection and name lookup beyond loopback is refused (see _loopback_only).
pinset's own pytest plugin is enabled here, as a user's suite enables it.

Hypothesis runs under the "deterministic" profile unless told otherwise
(``--hypothesis-profile=fuzz`` or ``PINSET_HYPOTHESIS_PROFILE=fuzz``, as ``make fuzz``
does): the same examples on every run, so that a test run that passed passes again.
The run ends with one line per group of skipped tests saying what is missing and how
to get it.
"""

from __future__ import annotations

import datetime as dt
import gc
import glob
import os
import socket
import sys
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.database import DirectoryBasedExampleDatabase

import _loopback_only
from _certs import rsa_8192
from pinset import ct
from pinset.testing import (
    CertificateAuthority,
    CTLog,
    KeyType,
    LeafCert,
    MitmProxy,
    PrivateKey,
    TestPKI,
    TLSServer,
    generate_key,
    issue_with_scts,
    log_list,
)

_loopback_only.install()

# pinset's pytest plugin is opt-in (no pytest11 entry point): this suite enables it the way
# a user's top-level conftest.py does. Its fixtures are all named pinset_*.
pytest_plugins = ["pinset.testing.plugin"]


# CPython 3.10's asyncio.sslproto drops the application transport of a TLS handshake that
# failed without closing it (connection_lost sets _app_transport = None), so the garbage
# collector later warns "unclosed transport <asyncio.sslproto._SSLProtocolTransport ...>" for
# every refused handshake, pinned or not, from whichever test runs then. 3.11 rewrote sslproto.
# The warning is the runtime's, not a leak of pinset's: on 3.10 only, that one message is let
# through, and what a test left is collected as it ends, so that no later test sees it.
_SSLPROTO_310 = "unclosed transport <asyncio.sslproto._SSLProtocolTransport"


def pytest_configure(config: pytest.Config) -> None:
    if sys.version_info < (3, 11):
        config.addinivalue_line("filterwarnings", f"ignore:{_SSLPROTO_310}:ResourceWarning")


@pytest.fixture(autouse=True)
def _collect_sslproto_transports_on_310() -> Iterator[None]:
    yield
    if sys.version_info < (3, 11):
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", _SSLPROTO_310, ResourceWarning)
            gc.collect()


# -- hypothesis profiles -------------------------------------------------------------------
# deterministic: each test's examples come from a seed derived from the test itself, and no
# example database replays what an earlier run on this machine happened to find; deadlines
# and the too_slow health check are off because they depend on the machine's load.
settings.register_profile(
    "deterministic",
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
# fuzz: fresh randomness every run, failures kept in .hypothesis/fuzz and replayed first next
# time. A find is turned into an @example(...) on the test so that make test keeps it.
settings.register_profile(
    "fuzz",
    derandomize=False,
    database=DirectoryBasedExampleDatabase(Path(__file__).parent.parent / ".hypothesis" / "fuzz"),
    deadline=None,
    max_examples=2_000,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.load_profile(os.environ.get("PINSET_HYPOTHESIS_PROFILE", "deterministic"))

# -- what a skipped group needs ------------------------------------------------------------
# Tests carrying one of these markers are counted together; any other skip is grouped by
# its reason. Each test's skip reason already names what is missing and how to install it,
# except PostgreSQL's, which depends on whether the server is installed but not started.
SKIP_GROUPS = ("postgres", "browser", "mitmproxy", "okhttp", "jvm")
PG_ENV = "PINSET_TEST_POSTGRES_URL"


def postgres_skip_reason(
    env: Mapping[str, str] = os.environ, *, installed: bool | None = None
) -> str | None:
    """What keeps the PostgreSQL tests from running here, and the command that fixes it.

    ``installed``: whether PostgreSQL's server binaries are here (default: look).
    ``None`` when PINSET_TEST_POSTGRES_URL is set: then the tests' own reasons say more.
    """
    if env.get(PG_ENV):
        return None
    if installed is None:
        installed = bool(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if installed:
        return (
            f"PostgreSQL is installed but {PG_ENV} is not set — make test starts it; "
            'by hand: eval "$(.ci/setup-postgres.sh)"'
        )
    return "no PostgreSQL server — apt-get install postgresql"


def skip_summary(reports: Iterable[pytest.TestReport | pytest.CollectReport]) -> list[str]:
    """One line per group of skipped tests: how many, what is missing, how to get it."""
    groups: dict[str, list[str]] = {}
    for report in reports:
        keywords = getattr(report, "keywords", {})
        group = next((name for name in SKIP_GROUPS if name in keywords), "")
        reason = _skip_reason(report)
        groups.setdefault(group or reason, []).append(reason)
    lines = []
    for group, reasons in groups.items():
        if group in SKIP_GROUPS:
            why = (group == "postgres" and postgres_skip_reason()) or "; ".join(
                dict.fromkeys(reasons)
            )
            lines.append(f"skipped {len(reasons)} {group} tests: {why}")
        else:
            lines.append(f"skipped {len(reasons)} tests: {group}")
    return lines


def _skip_reason(report: pytest.TestReport | pytest.CollectReport) -> str:
    longrepr = report.longrepr
    text = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    return text.removeprefix("Skipped: ")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Name every destination beyond loopback that a test tried, so none goes unnoticed."""
    if _loopback_only.BLOCKED:
        names = sorted(set(_loopback_only.BLOCKED))
        terminalreporter.write_line(
            f"pinset: refused {len(_loopback_only.BLOCKED)} attempts to leave loopback: "
            + ", ".join(names[:20])
        )


def pytest_unconfigure(config: pytest.Config) -> None:
    """End the run with what each skipped group is missing: after pytest's last line, not
    above its list of skips, where nobody would read it."""
    terminal = config.pluginmanager.get_plugin("terminalreporter")
    if terminal is None:
        return
    for line in skip_summary(terminal.stats.get("skipped", [])):
        terminal.write_line(f"pinset: {line}")


@pytest.fixture(scope="session")
def pki() -> TestPKI:
    """Root → intermediate → leaves, plus a rogue root (EC P-256)."""
    return TestPKI()


@pytest.fixture(scope="module")
def leaf(pki: TestPKI) -> LeafCert:
    """A leaf for ``localhost`` and ``127.0.0.1`` issued by the intermediate."""
    return pki.leaf("localhost", "127.0.0.1")


@pytest.fixture(scope="module")
def root_pem(pki: TestPKI) -> str:
    """The test root in PEM, for ``ssl_context(cadata=...)``."""
    return pki.root.cert_pem.bytes().decode("ascii")


@pytest.fixture
def cafile(pki: TestPKI, tmp_path: Path) -> str:
    """The test root in a PEM file (``root.pem`` in the test's tmp_path), for ``--cafile``."""
    path = tmp_path / "root.pem"
    pki.root.cert_pem.write_to_path(path)
    return str(path)


@pytest.fixture(scope="session")
def closed_port() -> Iterator[int]:
    """A loopback TCP port that refuses connections: bound for the whole run, never listening.

    Holding it bound keeps any other process from taking it, unlike a port that was free
    a moment ago.
    """
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


# -- loopback TLS servers for ``leaf``, one per test; the mode is the application protocol --


@pytest.fixture
def server(leaf: LeafCert) -> Iterator[TLSServer]:
    """Answers each HTTP/1.1 request with ``200 OK`` (TLSServer's default mode)."""
    with TLSServer(leaf) as srv:
        yield srv


@pytest.fixture
def echo_server(leaf: LeafCert) -> Iterator[TLSServer]:
    """Echoes what the client sends."""
    with TLSServer(leaf, mode="echo") as srv:
        yield srv


@pytest.fixture
def silent_server(leaf: LeafCert) -> Iterator[TLSServer]:
    """Answers nothing, only counts: enough for whoever only fetches the chain."""
    with TLSServer(leaf, mode="silent") as srv:
        yield srv


@pytest.fixture
def proxy(pinset_mitm_proxy: MitmProxy) -> MitmProxy:
    """A started forging proxy with a fresh interception CA: the plugin's ``pinset_mitm_proxy``."""
    return pinset_mitm_proxy


@pytest.fixture(scope="session")
def key_of() -> Callable[[KeyType], PrivateKey]:
    """``key_of("rsa-2048")``: one private key per type, generated on first use."""
    cache: dict[KeyType, PrivateKey] = {}

    def get(key_type: KeyType) -> PrivateKey:
        if key_type not in cache:
            cache[key_type] = rsa_8192() if key_type == "rsa-8192" else generate_key(key_type)
        return cache[key_type]

    return get


# -- Certificate Transparency on loopback (test_enforce_ct.py, test_ct_only.py) ---------------
# Three test logs of two operators, the list that names them, and echo servers for
# "localhost" whose leaf embeds SCTs from two operators, from one operator, or none.


@pytest.fixture(scope="module")
def ct_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


@pytest.fixture(scope="module")
def ct_ca() -> CertificateAuthority:
    return CertificateAuthority.create("pinset CT loopback CA")


@pytest.fixture(scope="module")
def ct_logs() -> list[CTLog]:
    return [CTLog("Alpha", "Alpha"), CTLog("Beta", "Beta"), CTLog("Alpha Two", "Alpha")]


@pytest.fixture(scope="module")
def ct_loglist(ct_logs: list[CTLog], ct_now: dt.datetime) -> ct.LogList:
    return ct.parse_log_list(log_list(ct_logs, ct_now), source="test-list.json")


def _ct_server(leaf: LeafCert) -> Iterator[TLSServer]:
    with TLSServer(leaf, mode="echo") as srv:
        yield srv


@pytest.fixture
def ct_compliant(
    ct_ca: CertificateAuthority, ct_logs: list[CTLog], ct_now: dt.datetime
) -> Iterator[TLSServer]:
    issued = ct_now - dt.timedelta(days=1)
    yield from _ct_server(issue_with_scts(ct_ca, "localhost", ct_logs[:2], issued=issued))


@pytest.fixture
def ct_one_operator(
    ct_ca: CertificateAuthority, ct_logs: list[CTLog], ct_now: dt.datetime
) -> Iterator[TLSServer]:
    issued = ct_now - dt.timedelta(days=1)
    logs = [ct_logs[0], ct_logs[2]]
    yield from _ct_server(issue_with_scts(ct_ca, "localhost", logs, issued=issued))


@pytest.fixture
def ct_no_scts(ct_ca: CertificateAuthority) -> Iterator[TLSServer]:
    yield from _ct_server(ct_ca.issue_cert("localhost"))
