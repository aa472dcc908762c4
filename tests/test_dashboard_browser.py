"""The dashboard: its HTTP surface, and the real page in headless Chromium (Playwright).

The browser tests run the collector under real uvicorn on 127.0.0.1 with a
temporary SQLite database, seed it by POSTing report JSON over HTTP, and drive
Debian's chromium (``PINSET_CHROMIUM`` overrides the path; Playwright never
downloads a browser). A screenshot goes to ``$PINSET_ARTIFACTS`` (default
``artifacts/`` in the repository).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi.testclient import TestClient

from pinset import spki_pin
from pinset.collector import Settings, create_app
from pinset.collector._dashboard import SECURITY_HEADERS
from pinset.testing import LeafCert, TestPKI

TOKEN = "dashboard-test-token"
THRESHOLD = 5
BACKUP_PIN = 'pin-sha256="E9CZ9INDbd+2eRQozYqqbQ2yXLVKB9+xcprMF+44U1g="'
REPO = Path(__file__).resolve().parent.parent
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]


# ---------------------------------------------------------------- HTTP surface


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(db_url=f"sqlite:///{tmp_path / 'c.db'}", token=TOKEN, rate_per_second=0)
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def test_page_is_public_and_locked_down(client: TestClient) -> None:
    assert client.head("/").status_code == 200
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert '<script src="/static/dashboard.js" defer></script>' in response.text
    for name, value in SECURITY_HEADERS.items():
        assert response.headers[name] == value
    assert "script-src 'self'" in response.headers["content-security-policy"]


@pytest.mark.parametrize(
    ("name", "media"),
    [("dashboard.js", "text/javascript"), ("dashboard.css", "text/css")],
)
def test_static_files_come_from_package_data(client: TestClient, name: str, media: str) -> None:
    response = client.get(f"/static/{name}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(media)
    assert len(response.content) > 1000


@pytest.mark.parametrize(
    "path", ["/static/missing.js", "/static/..%2fdashboard.py", "/static/%2e%2e/app.py"]
)
def test_only_the_dashboard_files_are_served(client: TestClient, path: str) -> None:
    assert client.get(path).status_code == 404


def test_the_dashboard_router_alone_serves_static_files(client: TestClient) -> None:
    # No StaticFiles mount beside the router: it would serve whatever lies in the
    # directory, without the security headers, for any path the router does not match.
    from starlette.routing import Mount

    import pinset.collector

    app: Any = client.app
    assert not [r for r in app.routes if isinstance(r, Mount)]
    assert not hasattr(pinset.collector, "STATIC_DIR")
    for name in ("index.html", "dashboard.js", "dashboard.css"):
        response = client.get(f"/static/{name}")
        assert response.status_code == 200
        assert (
            response.headers["content-security-policy"]
            == (SECURITY_HEADERS["Content-Security-Policy"])
        )


def test_dashboard_routes_stay_out_of_the_api_schema(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert "/" not in paths
    assert not [p for p in paths if p.startswith("/static")]


# ---------------------------------------------------------------- browser


def _chromium() -> str:
    path = os.environ.get("PINSET_CHROMIUM", "/usr/bin/chromium")
    found = shutil.which(path)
    if not found:
        pytest.skip(
            f"chromium not found at {path} (install Debian's chromium or set PINSET_CHROMIUM)"
        )
    return found


class Collector:
    """A collector app under real uvicorn in a thread, on a loopback port the system picks.

    The test binds the socket and hands it to uvicorn: no other process can take the port
    between choosing it and listening on it.
    """

    def __init__(self, db: Path) -> None:
        settings = Settings(
            db_url=f"sqlite:///{db}", token=TOKEN, alert_threshold=THRESHOLD, rate_per_second=0
        )
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        port = self.socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        config = uvicorn.Config(
            create_app(settings), host="127.0.0.1", port=port, log_level="warning", lifespan="on"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True
        )
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert self.thread.is_alive(), "uvicorn stopped before it started"
            assert time.monotonic() < deadline, "uvicorn did not start in 30 s"
            time.sleep(0.05)

    def post(self, report: dict[str, Any], path: str = "/v1/report") -> int:
        request = urllib.request.Request(  # noqa: S310 - a loopback http URL
            self.url + path,
            data=json.dumps(report).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return int(response.status)

    def get_json(self, path: str) -> Any:
        """``GET path`` on the read side, with the token."""
        request = urllib.request.Request(  # noqa: S310 - a loopback http URL
            self.url + path, headers={"Authorization": f"Bearer {TOKEN}"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return json.loads(response.read())

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(15)
        self.socket.close()


def _pems(leaf: LeafCert) -> list[str]:
    return [blob.bytes().decode() for blob in leaf.cert_chain_pems]


def _pin(cert: Any) -> str:
    return str(spki_pin(cert))


@dataclass(frozen=True, slots=True)
class Seed:
    """What was posted: the expected failures per domain and the chains' pins."""

    counts: dict[str, int]
    rows: int
    rogue_pins: tuple[str, ...]
    genuine_pins: tuple[str, ...]
    genuine_known: tuple[str, ...]  # the union of the known pins sent with the genuine chain
    hot: str


def _report(host: str, chain: list[str], known: list[str], **fields: Any) -> dict[str, Any]:
    report: dict[str, Any] = {
        "date-time": "2026-11-28T08:00:00Z",
        "hostname": host,
        "port": 443,
        "effective-expiration-date": "2027-06-30T00:00:00Z",
        "include-subdomains": False,
        "noted-hostname": host,
        "served-certificate-chain": chain,
        "validated-certificate-chain": chain,
        "known-pins": known,
    }
    report.update(fields)
    return report


def _seed(collector: Collector, pki: TestPKI) -> Seed:
    genuine = pki.leaf("login.example.com", "cdn.example.org")
    rogue_api = pki.rogue.issue_cert("api.example.com")
    rogue_pay = pki.rogue.issue_cert("pay.example.com")
    known = [f'pin-sha256="{_pin(pki.intermediate.chain[0]).removeprefix("sha256/")}"', BACKUP_PIN]
    ios = {"app-bundle-id": "com.example.bank", "app-platform": "IOS", "enforce-pinning": True}
    android = {"app-bundle-id": "com.example.bank", "app-platform": "ANDROID"}
    mismatch = {**ios, "validation-result": 1}
    api, pay, good = _pems(rogue_api), _pems(rogue_pay), _pems(genuine)
    posts = [
        # An interception of api.example.com seen by two app versions (3 failures, 2 rows).
        (2, _report("api.example.com", api, known, **mismatch, **{"app-version": "2.4.1"})),
        (1, _report("api.example.com", api, known, **mismatch, **{"app-version": "2.4.0"})),
        # A genuine chain, report-only, from an RFC 7469 client without app fields.
        (1, _report("login.example.com", good, [BACKUP_PIN], **{"enforce-pinning": False})),
        # TrustKit Android: chain not trusted.
        (
            2,
            _report(
                "cdn.example.org",
                good,
                known,
                **android,
                **{"app-version": "3.0.0", "validation-result": 2},
            ),
        ),
        # The burst that trips the alert: identical reports are one row with a count.
        (
            THRESHOLD + 3,
            _report("pay.example.com", pay, known, **mismatch, **{"app-version": "2.4.1"}),
        ),
    ]
    counts: dict[str, int] = {}
    for times, body in posts:
        for _ in range(times):
            assert collector.post(body) == 202
        counts[body["hostname"]] = counts.get(body["hostname"], 0) + times
    return Seed(
        counts=counts,
        rows=len(posts),
        rogue_pins=(_pin(rogue_api.cert), _pin(rogue_pay.cert)),
        genuine_pins=(_pin(genuine.cert), _pin(pki.intermediate.chain[0])),
        genuine_known=tuple(sorted({*known, BACKUP_PIN})),
        hot="pay.example.com",
    )


@pytest.fixture(scope="module")
def seeded(
    pki: TestPKI, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Collector, Seed]]:
    collector = Collector(tmp_path_factory.mktemp("dashboard") / "collector.db")
    try:
        yield collector, _seed(collector, pki)
    finally:
        collector.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    # Always Debian's (or PINSET_CHROMIUM's) binary: Playwright never fetches one of its own.
    executable = _chromium()
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=executable, args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def console_errors() -> list[str]:
    """Script errors and console errors of the test's page (a test may expect some)."""
    return []


@pytest.fixture
def page(browser: Any, console_errors: list[str]) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    errors = console_errors
    page = context.new_page()
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.set_default_timeout(15_000)
    yield page
    context.close()
    # A CSP violation or a script error is a bug even when the assertions pass.
    assert errors == []


def _artifacts() -> Path:
    path = Path(os.environ.get("PINSET_ARTIFACTS", REPO / "artifacts"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def _expect(locator: Any) -> Any:
    # Locator assertions wait without evaluating strings in the page (which its CSP forbids).
    from playwright.sync_api import expect

    return expect(locator)


def _loaded(page: Any) -> None:
    page.wait_for_selector("body[data-loaded]", state="attached")


@pytest.mark.browser
def test_dashboard_shows_seeded_reports(seeded: tuple[Collector, Seed], page: Any) -> None:
    collector, seed = seeded
    page.goto(f"{collector.url}/?token={TOKEN}")
    _loaded(page)
    # The token left the address bar (and so the history) for sessionStorage.
    assert "token" not in page.url
    assert page.evaluate("sessionStorage.getItem('pinset-collector-token')") == TOKEN

    # The chart: a series with data points for every seeded domain, summing to what was sent.
    chart = page.locator("svg[data-chart='domains']")
    assert chart.count() == 1
    for host, count in seed.counts.items():
        points = chart.locator(f".point[data-domain='{host}']")
        assert points.count() >= 1, host
        drawn = sum(int(points.nth(i).get_attribute("data-count")) for i in range(points.count()))
        assert drawn == count, host
        assert page.locator(f"#chart-domains .legend li[data-domain='{host}']").count() == 1
    results = page.locator("svg[data-chart='results'] .bar")
    assert {results.nth(i).get_attribute("data-label") for i in range(results.count())} == {
        "pin-mismatch",
        "report-only-mismatch",  # login.example.com: enforce-pinning false, no result
        "chain-not-trusted",
    }

    # The chains: the rogue leaves' pins are listed and flagged as matching no known pin;
    # the genuine chain carries the pinned intermediate.
    chains = page.locator("#chains-table tbody")
    for pin in seed.rogue_pins + seed.genuine_pins:
        assert chains.locator(f"li[data-pin='{pin}']").count() >= 1, pin
    rogue_row = chains.locator("tr", has=page.locator(f"li[data-pin='{seed.rogue_pins[1]}']"))
    assert "none of these keys is pinned" in rogue_row.inner_text()
    assert "rogue interception CA" in rogue_row.inner_text()  # the issuer, from the API
    genuine_row = chains.locator("tr", has=page.locator(f"li[data-pin='{seed.genuine_pins[1]}']"))
    assert "a known key is in the chain" in genuine_row.inner_text()
    # Each row shows what /v1/chains says: every member's issuer and the union of the
    # known pins of the reports that were served that chain (login's and cdn's together).
    api_chains = collector.get_json("/v1/chains?since=0")["items"]
    assert len(api_chains) == chains.locator("tr[data-chain]").count() == 3
    by_key = {item["key"]: item for item in api_chains}
    genuine_key = genuine_row.get_attribute("data-chain")
    assert by_key[genuine_key]["known_pins"] == sorted(seed.genuine_known)
    for key, item in by_key.items():
        row = chains.locator(f"tr[data-chain='{key}']")
        shown = row.locator("[data-known-pin]")
        assert [shown.nth(i).get_attribute("data-known-pin") for i in range(shown.count())] == (
            item["known_pins"]
        )
        for member in item["members"]:
            assert member["issuer"], member
            text = row.locator(f"li[data-pin='{member['pin']}']").inner_text()
            assert f"issuer {member['issuer']}" in text

    # The reports table: every seeded row, then narrowed by hostname.
    rows = page.locator("#reports-table tbody tr[data-report]")
    assert rows.count() == seed.rows
    assert {rows.nth(i).get_attribute("data-hostname") for i in range(rows.count())} == set(
        seed.counts
    )
    page.fill("#f-hostname", "api.example.com")
    page.click("#filters button[type=submit]")
    _expect(rows).to_have_count(2)
    hosts = {rows.nth(i).get_attribute("data-hostname") for i in range(rows.count())}
    assert hosts == {"api.example.com"}

    # The alert banner names the domain over the threshold, and only it.
    banner = page.locator("#alerts")
    assert banner.is_visible()
    assert seed.hot in banner.inner_text()
    assert "api.example.com" not in banner.inner_text()

    page.fill("#f-hostname", "")
    page.click("#filters button[type=submit]")
    _expect(rows).to_have_count(seed.rows)
    shot = _artifacts() / "dashboard.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000


@pytest.mark.browser
def test_dashboard_asks_for_the_token(
    seeded: tuple[Collector, Seed], page: Any, console_errors: list[str]
) -> None:
    collector, seed = seeded
    page.goto(f"{collector.url}/")
    _expect(page.locator("#status")).to_contain_text("token")
    assert page.locator("#reports-table tbody tr[data-report]").count() == 0

    page.fill("#token-input", "wrong-token")
    page.click("#token-form button[type=submit]")
    _expect(page.locator("#status")).to_contain_text("401")
    assert page.locator("#reports-table tbody tr[data-report]").count() == 0
    # The browser logs each refused request; those, and only those, were expected.
    assert console_errors
    assert all("401" in message for message in console_errors)
    console_errors.clear()

    page.fill("#token-input", TOKEN)
    page.click("#token-form button[type=submit]")
    _loaded(page)
    assert page.locator("#reports-table tbody tr[data-report]").count() == seed.rows


@pytest.mark.browser
def test_report_text_is_shown_as_text(pki: TestPKI, tmp_path: Path, page: Any) -> None:
    collector = Collector(tmp_path / "xss.db")
    try:
        # A host name is refused unless it is one (canonical_host), so the hostile text
        # rides in a free-text field every reporter sends: the app's bundle id.
        hostile = '<img src=x id="injected">com.example.app'
        leaf = pki.rogue.issue_cert("xss.example.com")
        report = _report("xss.example.com", _pems(leaf), [BACKUP_PIN], **{"app-bundle-id": hostile})
        assert collector.post(report) == 202
        page.goto(f"{collector.url}/?token={TOKEN}")
        _loaded(page)
        assert page.locator("#injected").count() == 0
        assert hostile in page.locator("#reports-table tbody").inner_text()
        assert page.locator(".point").count() == 1
    finally:
        collector.close()


@pytest.mark.browser
def test_dashboard_refreshes_itself(pki: TestPKI, tmp_path: Path, page: Any) -> None:
    collector = Collector(tmp_path / "refresh.db")
    try:
        chain = _pems(pki.rogue.issue_cert("first.example.com"))
        assert collector.post(_report("first.example.com", chain, [BACKUP_PIN])) == 202
        page.clock.install()  # the page's timers run on a clock the test moves
        page.goto(f"{collector.url}/?token={TOKEN}")
        _loaded(page)
        rows = page.locator("#reports-table tbody tr[data-report]")
        _expect(rows).to_have_count(1)

        assert collector.post(_report("second.example.com", chain, [BACKUP_PIN])) == 202
        _expect(page.locator("#status")).to_contain_text("refreshing every 30 s")
        page.clock.fast_forward(31_000)
        _expect(rows).to_have_count(2)
        _expect(page.locator("svg[data-chart='domains'] .point")).to_have_count(2)
    finally:
        collector.close()


@pytest.mark.browser
def test_dashboard_fits_a_phone(seeded: tuple[Collector, Seed], page: Any) -> None:
    collector, seed = seeded
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{collector.url}/?token={TOKEN}")
    _loaded(page)
    overflow = page.evaluate(
        "document.scrollingElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0
    # The chart is drawn at the width it is shown at, so its text keeps a readable size.
    box = page.locator("svg[data-chart='domains']").bounding_box()
    view_box = page.locator("svg[data-chart='domains']").get_attribute("viewBox")
    assert abs(float(view_box.split()[2]) - box["width"]) < 2
    assert page.locator("#reports-table tbody tr[data-report]").count() == seed.rows


@pytest.mark.browser
def test_dashboard_shows_failure_rates_and_a_rate_alert(tmp_path: Path, page: Any) -> None:
    collector = Collector(tmp_path / "rates.db")  # alert_rate 5 % of at least 100 verdicts
    hour = int(time.time()) // 3600 * 3600
    try:
        for version, domains in (
            ("2.4.1", [{"domain": "api.example.com", "pinned": 180, "mismatch": 20}]),
            ("3.0", [{"domain": "cdn.example.com", "pinned": 99, "report_only_mismatch": 1}]),
        ):
            tally = {
                "app_id": "com.example.bank",
                "app_version": version,
                "pin_set_version": "7",
                "interval_start": hour,
                "interval_seconds": 3600,
                "domains": domains,
            }
            assert collector.post(tally, "/v1/tallies") == 202
        page.goto(f"{collector.url}/?token={TOKEN}")
        _loaded(page)
        rows = page.locator("#rates-table tbody tr[data-hostname]")
        _expect(rows).to_have_count(2)
        assert rows.nth(0).get_attribute("data-hostname") == "api.example.com"  # worst first
        assert "10.00 %" in rows.nth(0).inner_text()
        assert "2.4.1" in rows.nth(0).inner_text()
        assert "1.00 %" in rows.nth(1).inner_text()
        banner = page.locator("#alerts")
        assert banner.is_visible()
        assert "Failure rate alert" in banner.inner_text()
        assert banner.locator("li[data-rate-hostname]").count() == 1
        assert banner.locator("li[data-rate-hostname='api.example.com']").count() == 1
    finally:
        collector.close()


@pytest.mark.browser
def test_dashboard_shows_refused_bundles_and_failing_checks(tmp_path: Path, page: Any) -> None:
    collector = Collector(tmp_path / "events.db")
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    refused = {
        "pinset-update-event": "bundle-refused",
        "reason": "bad-signature",
        "detail": "the signature does not match the payload",
        "app-id": "com.example.bank",
        "source": "https://pins.example.net/v1/pins/com.example.bank",
        "date-time": now,
        "bundle-sha256": "ab" * 32,
    }
    failed = {
        "pinset-update-event": "fetch-failed",
        "reason": "timeout",
        "detail": "timed out",
        "app-id": "com.example.bank",
        "source": "https://pins.example.net/v1/pins/com.example.bank",
        "date-time": now,
    }
    try:
        for body in (refused, refused, refused, failed):
            assert collector.post(body, "/v1/update-events") == 202
        page.goto(f"{collector.url}/?token={TOKEN}")
        _loaded(page)
        rows = page.locator("#update-events-table tbody tr[data-event-kind]")
        _expect(rows).to_have_count(2)
        first = rows.nth(0)  # most first
        assert first.get_attribute("data-event-reason") == "bad-signature"
        cells = first.locator("td").all_inner_texts()
        assert cells[:4] == ["com.example.bank", "bundle refused", "bad-signature", "3"]
        assert rows.nth(1).locator("td").all_inner_texts()[1:4] == ["check failed", "timeout", "1"]
    finally:
        collector.close()
