"""``pinset rotate plan``: the staged rotation plan, its dates, its refusals, the collector."""

from __future__ import annotations

import datetime as dt
import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from pinset.audit import Adoption, Checks, Plan, adoption_from_json, plan_rotation
from pinset.cli import main
from pinset.errors import ConfigError
from pinset.pins import Pin, spki_pin
from pinset.policy import DomainRule
from pinset.testing import LeafCert, PrivateKey, TestPKI, TLSServer, generate_key

NOW = dt.datetime(2026, 12, 6, 9, 30, tzinfo=dt.timezone.utc)
FIXTURES = Path(__file__).parent / "fixtures"
CHECKS = Checks(
    rotate_check="rc", adoption="ad", audit_live="al", audit="au", next_backup="nb"
)  # fmt: skip
BEARER = "s3cret"  # the fake collector's read token
STAGE_KEYS = {"stage", "title", "date", "check", "done"}


@pytest.fixture(scope="module")
def plan_pki() -> TestPKI:
    return TestPKI()


@pytest.fixture(scope="module")
def served(plan_pki: TestPKI) -> LeafCert:
    return plan_pki.leaf("localhost", "api.example.com")


@pytest.fixture(scope="module")
def server(served: LeafCert) -> Iterator[TLSServer]:
    with TLSServer(served, mode="silent") as srv:
        yield srv


@pytest.fixture(scope="module")
def cafile(tmp_path_factory: pytest.TempPathFactory, plan_pki: TestPKI) -> str:
    path = tmp_path_factory.mktemp("ca") / "root.pem"
    plan_pki.root.cert_pem.write_to_path(path)
    return str(path)


def key_file(path: Path, key: PrivateKey) -> str:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(path)


def policy_file(path: Path, *pins: Pin | str, expiration: str = "2028-06-30") -> str:
    listed = ", ".join(f'"{p}"' for p in pins)
    path.write_text(
        f'[[domain]]\nname = "localhost"\nexpiration = {expiration}\npins = [{listed}]\n',
        encoding="utf-8",
    )
    return str(path)


def localhost_policy(tmp_path: Path, served: LeafCert, expiration: str = "2028-06-30") -> str:
    """A policy pinning the served key and one backup, in ``tmp_path/p.toml``."""
    return policy_file(
        tmp_path / "p.toml", spki_pin(served.cert), spki_pin(generate_key()), expiration=expiration
    )


def rule(*pins: Pin, expiration: dt.date | None = dt.date(2028, 6, 30)) -> DomainRule:
    return DomainRule("localhost", pins=pins, expiration=expiration)


def plan_localhost(
    served: LeafCert,
    *spares: Pin,
    new: Pin | None = None,
    expiration: dt.date | None = dt.date(2028, 6, 30),
    now: dt.datetime = NOW,
    start: dt.date | None = dt.date(2026, 12, 10),
    update_days: int = 30,
    adoption: Adoption | None = None,
) -> Plan:
    """Plan for one localhost rule pinning the served key and ``spares`` (a fresh one if none)."""
    pins = spares or (spki_pin(generate_key()),)
    return plan_rotation(
        [rule(spki_pin(served.cert), *pins, expiration=expiration)],
        {"localhost": served.chain},
        new if new is not None else spki_pin(generate_key()),
        CHECKS,
        now=now,
        start=start,
        update_days=update_days,
        adoption=adoption,
    )


def run(
    capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str, str]:  # fmt: skip
    code = main(["rotate", "plan", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# -- the pure planner: dates -------------------------------------------------------------------


def test_stage_dates_when_the_new_key_must_be_shipped_first(served: LeafCert) -> None:
    new, spare = spki_pin(generate_key()), spki_pin(generate_key())
    plan = plan_localhost(served, spare, new=new)
    dates = [s.date for s in plan.stages]
    assert dates == [
        dt.date(2026, 12, 10),  # 1: ship the update with the new pin
        dt.date(2027, 1, 9),  # 2: 30 days later
        dt.date(2027, 1, 9),  # 3: switch once the share is reached
        dt.date(2027, 1, 16),  # 4: a week of rollback window
        dt.date(2027, 1, 16),  # 5: in the same update
        dt.date(2027, 1, 16),  # 6: in the same update
    ]
    assert [s.done for s in plan.stages] == [False, None, False, False, True, True]
    assert [s.check for s in plan.stages] == ["rc", "ad", "al", "al", "au", "al"]
    assert "renew the expiration to 2028-01-16 or later" in plan.stages[4].title
    assert plan.old_pins == (spki_pin(served.cert),)
    assert str(new) in plan.stages[0].title


def test_start_defaults_to_the_day_of_now(served: LeafCert) -> None:
    plan = plan_localhost(served, start=None, update_days=0)
    assert {s.date for s in plan.stages[:3]} == {dt.date(2026, 12, 6)}
    assert plan.stages[3].date == dt.date(2026, 12, 13)


def test_a_new_key_already_pinned_as_backup_needs_no_update_but_the_wait_counts_from_start(
    served: LeafCert,
) -> None:
    new = spki_pin(generate_key())
    plan = plan_localhost(served, new, new=new)
    first, wait, switch = plan.stages[:3]
    assert first.done is True
    assert "already pinned as a backup" in first.title
    # pinset cannot tell how long the pin has been shipped: --start is that release's day
    assert wait.date == switch.date == dt.date(2027, 1, 9)
    assert wait.done is None
    # the old key's pin and the new one are all that is pinned: no spare backup left
    assert plan.stages[5].done is False
    assert plan.stages[5].check == "nb"


def test_pins_that_expire_before_the_plan_ends_are_a_warning(served: LeafCert) -> None:
    plan = plan_localhost(served, expiration=dt.date(2027, 1, 16))
    assert plan.warnings == (
        "the pins of localhost expire on 2027-01-16, before the plan ends on 2027-01-16: "
        "renew the expiration in the update of stage 1",
    )
    assert plan.stages[4].done is False
    later = plan_localhost(served, expiration=dt.date(2027, 1, 17))
    assert later.warnings == ()


def test_the_pinned_ca_key_is_not_an_old_pin_nor_a_spare_backup(
    plan_pki: TestPKI, served: LeafCert
) -> None:
    inter = spki_pin(plan_pki.intermediate.cert)
    plan = plan_rotation(
        [rule(inter, spki_pin(generate_key()))],
        {"localhost": served.chain},
        spki_pin(generate_key()),
        CHECKS,
        now=NOW,
    )
    assert plan.old_pins == ()
    assert plan.stages[3].done is True
    assert plan.stages[5].done is True  # the other (offline) pin remains


def test_the_planner_refuses_the_current_key_and_expired_pins(served: LeafCert) -> None:
    current = spki_pin(served.cert)
    with pytest.raises(ConfigError, match="already serves"):
        plan_rotation(
            [rule(current, spki_pin(generate_key()))],
            {"localhost": served.chain},
            current,
            CHECKS,
            now=NOW,
        )
    expired = rule(current, spki_pin(generate_key()), expiration=dt.date(2026, 12, 6))
    with pytest.raises(ConfigError, match="expired on 2026-12-06"):
        plan_rotation(
            [expired], {"localhost": served.chain}, spki_pin(generate_key()), CHECKS, now=NOW
        )
    with pytest.raises(ConfigError, match="no pinned rule"):
        plan_rotation([], {"localhost": served.chain}, spki_pin(generate_key()), CHECKS, now=NOW)


@pytest.mark.parametrize(
    ("today", "share", "expected"),
    [
        (dt.date(2026, 12, 20), 0.95, dt.date(2026, 12, 20)),  # reached early: switch today
        (dt.date(2027, 2, 1), 0.95, dt.date(2027, 1, 9)),  # reached late: from the estimate
        (dt.date(2026, 12, 1), 0.95, dt.date(2026, 12, 10)),  # before the release: its day
        (dt.date(2026, 12, 20), 0.5, dt.date(2027, 1, 9)),  # not reached: the estimate
        (dt.date(2027, 2, 1), 0.5, dt.date(2027, 2, 1)),  # not reached, estimate past: today
    ],
)
def test_the_collector_moves_the_switch_date(
    served: LeafCert, today: dt.date, share: float, expected: dt.date
) -> None:
    plan = plan_localhost(
        served,
        now=dt.datetime.combine(today, dt.time(12), tzinfo=dt.timezone.utc),
        adoption=Adoption("7", share, 95, 100, "2026-12-01T00:00:00Z"),
    )
    assert plan.stages[1].date == plan.stages[2].date == expected
    assert plan.stages[1].done is (share >= 0.9)


# -- the adoption answer ---------------------------------------------------------------------


def adoption_doc(*rows: tuple[str, float, int]) -> dict[str, object]:
    return {
        "app_id": "com.example.app",
        "since": "2026-11-29T00:00:00Z",
        "pin_set_versions": [{"version": v, "share": s, "count": n} for v, s, n in rows],
        "app_versions": [{"version": "4.2.0", "share": 1.0, "count": 1000}],
    }


def test_adoption_counts_pin_set_versions_at_or_after_the_wanted_one() -> None:
    # "10" is after "9" although it sorts before it as a string
    doc = adoption_doc(("8", 0.25, 250), ("9", 0.5, 500), ("10", 0.25, 250))
    got = adoption_from_json(doc, "9")
    assert (got.share, got.count, got.total) == (0.75, 750, 1000)
    assert adoption_from_json(adoption_doc(("2.10", 0.6, 6), ("2.9", 0.4, 4)), "2.10").share == 0.6
    assert adoption_from_json(adoption_doc(("beta", 0.3, 3), ("7", 0.7, 7)), "beta").share == 0.3


@pytest.mark.parametrize(
    "doc",
    [
        [],
        {"since": "2026-11-29T00:00:00Z"},
        {"pin_set_versions": [], "since": 5},
        adoption_doc(("7", 1.5, 3)),
        adoption_doc(("7", True, 3)),
        {"since": "x", "pin_set_versions": [{"version": 7, "share": 0.5, "count": 1}]},
        {"since": "x", "pin_set_versions": [{"version": "7", "share": 0.5, "count": -1}]},
        {"since": "x", "pin_set_versions": ["7"]},
    ],
)
def test_a_malformed_adoption_answer_is_refused(doc: object) -> None:
    with pytest.raises(ValueError, match=r"answer|entry"):
        adoption_from_json(doc, "7")


# -- the command, against a loopback server ---------------------------------------------------


def test_plan_against_the_live_server_as_text(
    tmp_path: Path,
    server: TLSServer,
    served: LeafCert,
    cafile: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    spare = spki_pin(generate_key())
    policy = policy_file(tmp_path / "pinset.toml", spki_pin(served.cert), spare)
    new = key_file(tmp_path / "new.key", generate_key())
    target = f"localhost:{server.port}"
    code, out, _ = run(
        capsys, target, "--policy", policy, "--new-key", new, "--cafile", cafile,
        "--now", "2026-12-06", "--update-days", "21",
    )  # fmt: skip
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("Rotation of localhost to sha256/")
    assert "1. 2026-12-06  todo  add sha256/" in out
    assert "2. 2026-12-27  ?     wait until 90% of installs carry the new pins" in out
    assert "3. 2026-12-27  todo  switch the server" in out
    assert "4. 2027-01-03  todo  retire the old pin " + str(spki_pin(served.cert)) in out
    assert f"6. 2027-01-03  done  the next offline backup key is already pinned ({spare})" in out
    assert f"check: pinset rotate check {policy} --new-key {new} --domain localhost" in out
    assert f"check: pinset audit {policy} --live --host {target} --cafile {cafile}" in out


def test_plan_as_json(
    tmp_path: Path,
    server: TLSServer,
    served: LeafCert,
    cafile: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    new = spki_pin(generate_key())
    policy = policy_file(tmp_path / "pinset.toml", spki_pin(served.cert), new)
    code, out, _ = run(
        capsys, f"localhost:{server.port}", "--policy", policy, "--new-pin", str(new),
        "--cafile", cafile, "--now", "2026-12-06", "--start", "2027-01-04", "--json",
    )  # fmt: skip
    assert code == 0
    data = json.loads(out)
    assert data["new_pin"] == str(new)
    assert data["old_pins"] == [str(spki_pin(served.cert))]
    assert data["domains"] == ["localhost"]
    assert data["warnings"] == []
    stages = data["stages"]
    assert [s["stage"] for s in stages] == [1, 2, 3, 4, 5, 6]
    assert all(set(s) >= STAGE_KEYS for s in stages)
    assert all(isinstance(s["title"], str) and isinstance(s["check"], str) for s in stages)
    assert [s["date"] for s in stages] == ["2027-01-04"] + ["2027-02-03"] * 2 + ["2027-02-10"] * 3
    assert [s["done"] for s in stages] == [True, None, False, False, True, False]
    assert stages[0]["check"].startswith(f"pinset rotate check {policy} --new-pin ")
    assert main([*stages[0]["check"].split()[1:], "--now", "2026-12-06"]) == 0  # a backup already
    # the check of stage 2 re-runs this plan with the collector
    assert stages[1]["check"].startswith(f"pinset rotate plan localhost:{server.port} --policy ")
    assert stages[1]["check"].endswith('--token "$COLLECTOR_TOKEN"')


def test_the_first_check_is_a_real_command_that_passes_once_the_pin_is_shipped(
    tmp_path: Path,
    server: TLSServer,
    served: LeafCert,
    cafile: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    new = generate_key()
    new_path = key_file(tmp_path / "new.key", new)
    before = policy_file(tmp_path / "pinset.toml", spki_pin(served.cert), spki_pin(generate_key()))
    _code, out, _ = run(
        capsys, f"localhost:{server.port}", "--policy", before, "--new-key", new_path,
        "--cafile", cafile, "--now", "2026-12-06", "--json",
    )  # fmt: skip
    check = json.loads(out)["stages"][0]["check"].split()
    assert check[:3] == ["pinset", "rotate", "check"]
    assert main([*check[1:], "--now", "2026-12-06"]) == 1  # not shipped yet
    policy_file(tmp_path / "pinset.toml", spki_pin(served.cert), spki_pin(new))
    capsys.readouterr()
    assert main([*check[1:], "--now", "2026-12-06"]) == 0


def test_plan_from_a_shipped_apk_with_connect(
    tmp_path: Path, plan_pki: TestPKI, cafile: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # release.apk pins api.example.com (two keys no test server has): the plan must ship first
    leaf = plan_pki.leaf("api.example.com")
    with TLSServer(leaf, mode="silent") as srv:
        dial = f"api.example.com=127.0.0.1:{srv.port}"
        code, out, _ = run(
            capsys, "api.example.com", "--app", str(FIXTURES / "apk" / "release.apk"),
            "--new-key", key_file(tmp_path / "n.key", generate_key()), "--connect", dial,
            "--cafile", cafile, "--now", "2026-12-06", "--json",
        )  # fmt: skip
    assert code == 0
    data = json.loads(out)
    assert data["domains"] == ["api.example.com"]
    assert data["old_pins"] == []
    assert data["stages"][0]["done"] is False
    assert f"--connect {dial}" in data["stages"][2]["check"]


# -- refusals -------------------------------------------------------------------------------


def test_the_current_key_as_new_key_is_refused(
    tmp_path: Path,
    server: TLSServer,
    served: LeafCert,
    cafile: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    policy = localhost_policy(tmp_path, served)
    key = key_file(tmp_path / "current.key", served.private_key)
    code, out, err = run(
        capsys, f"localhost:{server.port}", "--policy", policy, "--new-key", key,
        "--cafile", cafile, "--now", "2026-12-06",
    )  # fmt: skip
    assert code == 2
    assert out == ""
    assert "the new key is the key localhost already serves" in err


@pytest.mark.parametrize(
    ("expiration", "code", "stream", "message"),
    [
        # expiring inside the plan is a warning; already expired is a refusal
        (
            "2027-01-01",
            0,
            "out",
            "warning: the pins of localhost expire on 2027-01-01, before the plan ends",
        ),
        ("2026-12-01", 2, "err", "expired on 2026-12-01"),
    ],
    ids=["expires-before-the-end", "expired"],
)
def test_a_policy_that_expires_early(
    tmp_path: Path,
    server: TLSServer,
    served: LeafCert,
    cafile: str,
    capsys: pytest.CaptureFixture[str],
    expiration: str,
    code: int,
    stream: str,
    message: str,
) -> None:
    policy = localhost_policy(tmp_path, served, expiration=expiration)
    result, out, err = run(
        capsys, f"localhost:{server.port}", "--policy", policy,
        "--new-pin", str(spki_pin(generate_key())), "--cafile", cafile, "--now", "2026-12-06",
    )  # fmt: skip
    assert result == code
    assert message in {"out": out, "err": err}[stream]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--new-key", "{root}"], "no key or CSR"),
        (["--new-cert", "{key}"], "no certificate in the file"),
        (["--new-pin", "sha256/short="], "sha256"),
        ([], "exactly one of --new-key, --new-cert and --new-pin"),
        (["--new-pin", "{pin}", "--new-key", "{root}"], "exactly one of"),
        (["--new-pin", "{pin}", "--app", "{policy}"], "exactly one of --policy and --app"),
        (["--new-pin", "{pin}", "--collector", "http://127.0.0.1:9"], "needs --token"),
        (
            [
                "--new-pin",
                "{pin}",
                "--collector",
                "file:///etc/passwd",
                "--token",
                "t",
                "--pin-set-version",
                "2",
            ],
            "not an http(s) URL",
        ),
        (["--new-pin", "{pin}", "--connect", "localhost"], "HOST=ADDR[:PORT]"),
        (["--new-pin", "{pin}", "--share", "0"], "--share"),
        (["--new-pin", "{pin}", "--now", "soon"], "--now"),
        (["--new-pin", "{pin}", "--start", "2026-12-7"], "--start '2026-12-7' is not a date"),
    ],
)
def test_inputs_that_cannot_make_a_plan_are_usage_errors(
    tmp_path: Path,
    served: LeafCert,
    cafile: str,
    args: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    policy = localhost_policy(tmp_path, served)
    values = {
        "root": cafile,
        "key": key_file(tmp_path / "a.key", generate_key()),
        "pin": str(spki_pin(generate_key())),
        "policy": policy,
    }
    filled = [a.format(**values) for a in args]
    # the port is never dialled: every one of these is refused before the fetch
    code, out, err = run(capsys, "localhost:9", "--policy", policy, *filled)
    assert code == 2, err
    assert out == ""
    assert message in err


def test_a_target_no_rule_pins_is_refused(
    tmp_path: Path, served: LeafCert, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = localhost_policy(tmp_path, served)
    code, _, err = run(
        capsys, "127.0.0.1:9", "--policy", policy, "--new-pin", str(spki_pin(generate_key()))
    )
    assert code == 2
    assert "no pinned rule covers 127.0.0.1" in err


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_an_unreachable_target_is_a_network_error(
    tmp_path: Path, served: LeafCert, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = localhost_policy(tmp_path, served)
    code, out, err = run(
        capsys, f"localhost:{closed_port()}", "--policy", policy,
        "--new-pin", str(spki_pin(generate_key())), "--timeout", "5",
    )  # fmt: skip
    assert code == 3
    assert out == ""
    assert "cannot fetch the chain of localhost" in err


# -- the collector ----------------------------------------------------------------------------


class FakeCollector:
    """Serves ``GET /v1/adoption`` on loopback exactly as the collector's API describes it."""

    def __init__(self, body: object, status: int = 200, token: str = BEARER) -> None:
        self.requests: list[tuple[str, str | None]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                fake.requests.append((self.path, self.headers.get("Authorization")))
                code = status
                if self.headers.get("Authorization") != f"Bearer {token}":
                    code = 401
                data = json.dumps(body if code == 200 else {"detail": "no"}).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> FakeCollector:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


def plan_with_collector(
    tmp_path: Path,
    server: TLSServer,
    served: LeafCert,
    cafile: str,
    capsys: pytest.CaptureFixture[str],
    url: str,
    token: str = BEARER,
) -> tuple[int, str, str]:
    new = spki_pin(generate_key())
    policy = policy_file(tmp_path / "p.toml", spki_pin(served.cert), new, spki_pin(generate_key()))
    return run(
        capsys, f"localhost:{server.port}", "--policy", policy, "--new-pin", str(new),
        "--cafile", cafile, "--now", "2026-12-06", "--collector", url, "--token", token,
        "--app-id", "com.example.app", "--pin-set-version", "9", "--json",
    )  # fmt: skip


def test_collector_says_the_share_is_reached(
    tmp_path: Path,
    server: TLSServer,
    served: LeafCert,
    cafile: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    body = adoption_doc(("8", 0.05, 50), ("9", 0.55, 550), ("10", 0.4, 400))
    with FakeCollector(body) as fake:
        code, out, _ = plan_with_collector(tmp_path, server, served, cafile, capsys, fake.url)
    assert code == 0
    assert fake.requests == [("/v1/adoption?app_id=com.example.app", "Bearer s3cret")]
    wait = json.loads(out)["stages"][1]
    assert wait["done"] is True
    assert wait["date"] == "2026-12-06"  # reached: switch today, not after the 30-day estimate
    assert "95.0% of traffic (950 of 1000)" in wait["detail"]
    assert "reached" in wait["detail"]
    assert f"--collector {fake.url}" in wait["check"]
    assert "s3cret" not in out  # the token is never printed


def test_collector_says_the_share_is_not_reached(
    tmp_path: Path,
    server: TLSServer,
    served: LeafCert,
    cafile: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    body = adoption_doc(("8", 0.2, 200), ("9", 0.8, 800))
    with FakeCollector(body) as fake:
        code, out, _ = plan_with_collector(tmp_path, server, served, cafile, capsys, fake.url)
    assert code == 0
    wait = json.loads(out)["stages"][1]
    assert wait["done"] is False
    assert wait["date"] == "2027-01-05"  # the estimate still stands
    assert "80.0% of traffic (800 of 1000)" in wait["detail"]
    assert "not reached (want 90%)" in wait["detail"]


def test_an_unreachable_collector_is_a_network_error(
    tmp_path: Path,
    server: TLSServer,
    served: LeafCert,
    cafile: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    code, out, err = plan_with_collector(tmp_path, server, served, cafile, capsys, url)
    assert code == 3
    assert out == ""
    assert "cannot reach the collector" in err


@pytest.mark.parametrize(
    ("body", "token", "message"),
    [
        (adoption_doc(("9", 1.0, 1)), "wrong", "the collector answered 401"),
        ({"since": "2026-11-29T00:00:00Z"}, "s3cret", "adoption answer is not usable"),
    ],
)
def test_a_refusing_or_malformed_collector_is_a_network_error(
    tmp_path: Path,
    server: TLSServer,
    served: LeafCert,
    cafile: str,
    body: object,
    token: str,
    message: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with FakeCollector(body) as fake:
        code, _, err = plan_with_collector(
            tmp_path, server, served, cafile, capsys, fake.url, token=token
        )
    assert code == 3
    assert message in err


def test_rotate_check_takes_a_bare_pin(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    new = spki_pin(generate_key())
    policy = policy_file(tmp_path / "p.toml", spki_pin(generate_key()), spki_pin(generate_key()))
    assert main(["rotate", "check", policy, "--new-pin", str(new), "--now", "2026-12-06"]) == 1
    assert f"matches the new key ({new})" in capsys.readouterr().out
    assert main(["rotate", "check", policy, "--new-pin", "sha256/short="]) == 2
    assert main(["rotate", "check", policy, "--new-pin", str(new), "--new-key", policy]) == 2
    assert "exactly one of" in capsys.readouterr().err


def test_an_encrypted_new_key_keeps_its_password_file_in_the_checks(
    tmp_path: Path,
    server: TLSServer,
    served: LeafCert,
    cafile: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    key = generate_key()
    path = tmp_path / "new.key"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"correct horse"),
        )
    )
    (tmp_path / "pass.txt").write_text("correct horse\n", encoding="utf-8")
    policy = localhost_policy(tmp_path, served)
    code, out, _ = run(
        capsys, f"localhost:{server.port}", "--policy", policy, "--new-key", str(path),
        "--password-file", str(tmp_path / "pass.txt"), "--cafile", cafile, "--json",
    )  # fmt: skip
    assert code == 0
    data = json.loads(out)
    assert data["new_pin"] == str(spki_pin(key))
    check = data["stages"][0]["check"].split()
    assert check[-4:-2] == ["--password-file", str(tmp_path / "pass.txt")]
    assert main([*check[1:]]) == 1  # runs without a prompt; the key is not pinned yet
