"""``pinset mitm -- COMMAND`` and ``pinset mitm serve`` with real client processes."""

from __future__ import annotations

import io
import json
import re
import ssl
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from rich.console import Console

import pinset
from pinset.cli import main
from pinset.cli._mitm._shared import fail_line
from pinset.policy import DomainRule, Policy
from pinset.testing import LeafCert, TestPKI, TLSServer

PINNED_CLIENT = """\
import sys, urllib.request
import pinset
from pinset.policy import DomainRule, Policy

url, pin = sys.argv[1], sys.argv[2]
policy = Policy((DomainRule("localhost", (pinset.Pin.parse(pin),), allow_single_pin=True),))
ctx = pinset.ssl_context(policy)  # trust: SSL_CERT_FILE, like any client on the machine
opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=ctx))
try:
    print(opener.open(url, timeout=10).read().decode())
except Exception as exc:
    print(f"refused: {exc!r}", file=sys.stderr)
    sys.exit(3)
"""

UNPINNED = "import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1]).read().decode())"


@pytest.fixture
def client(tmp_path: Path) -> str:
    path = tmp_path / "client.py"
    path.write_text(PINNED_CLIENT)
    return str(path)


def url(server: TLSServer) -> str:
    return f"https://localhost:{server.port}/"


def test_pinned_client_is_refused_exit_0(
    capsys: pytest.CaptureFixture[str],
    server: TLSServer,
    leaf: LeafCert,
    cafile: str,
    client: str,
) -> None:
    pin = str(pinset.spki_pin(leaf.cert))
    argv = ["--pin-host", "localhost", "--cafile", cafile, "--", sys.executable, client]
    status = main(["mitm", *argv, url(server), pin])
    out, err = capsys.readouterr()
    assert status == 0, out + err
    assert "refused: " in err
    assert "Certificate pinning failure" in err
    assert "REFUSED" in out
    assert "INTERCEPTED" not in out
    assert "client exited with status 3" in out
    assert "PASS" in out


def test_unpinned_client_is_intercepted_exit_1(
    capsys: pytest.CaptureFixture[str], server: TLSServer, cafile: str
) -> None:
    argv = ["--pin-host", "localhost", "--cafile", cafile, "--", sys.executable, "-c", UNPINNED]
    status = main(["mitm", *argv, url(server)])
    out, _ = capsys.readouterr()
    assert status == 1
    assert "pinned hello" in out  # the client was fooled and got its answer
    assert "INTERCEPTED" in out
    assert "FAIL localhost" in out


def test_json_shape(capsys: pytest.CaptureFixture[str], server: TLSServer, cafile: str) -> None:
    argv = ["--json", "--pin-host", "localhost", "--pin-host", "api.example.com"]
    status = main(
        ["mitm", *argv, "--cafile", cafile, "--", sys.executable, "-c", UNPINNED, url(server)]
    )
    out, err = capsys.readouterr()
    data = json.loads(out)
    assert status == 1
    assert "pinned hello" in err  # the client's own output stays off stdout
    assert set(data) == {
        "ok",
        "proxy",
        "command",
        "exit_code",
        "timed_out",
        "pinned",
        "other_hosts",
        "connections",
        "failures",
    }
    assert data["ok"] is False
    assert data["exit_code"] == 0
    assert data["pinned"] == [
        {
            "host": "localhost",
            "verdict": "INTERCEPTED",
            "connections": 1,
            "leaked_bytes": data["connections"][0]["client_bytes"],
        },
        {"host": "api.example.com", "verdict": "NOT SEEN", "connections": 0, "leaked_bytes": 0},
    ]
    assert data["connections"][0]["client_bytes"] > 0
    assert len(data["failures"]) == 2


def test_policy_hosts_are_pinned(
    capsys: pytest.CaptureFixture[str],
    server: TLSServer,
    leaf: LeafCert,
    cafile: str,
    client: str,
    tmp_path: Path,
) -> None:
    backup = pinset.spki_pin(TestPKI().root.private_key.public_key())
    policy = tmp_path / "pinset.toml"
    policy.write_text(
        f'[[domain]]\nname = "localhost"\npins = ["{pinset.spki_pin(leaf.cert)}", "{backup}"]\n'
    )
    pin = str(pinset.spki_pin(leaf.cert))
    argv = ["--json", "--policy", str(policy), "--cafile", cafile]
    status = main(["mitm", *argv, "--", sys.executable, client, url(server), pin])
    data = json.loads(capsys.readouterr().out)
    assert status == 0
    assert [(v["host"], v["verdict"]) for v in data["pinned"]] == [("localhost", "REFUSED")]


def test_pinned_host_not_seen_fails(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["mitm", "--pin-host", "api.example.com", "--", sys.executable, "-c", "pass"])
    out, _ = capsys.readouterr()
    assert status == 1
    assert "NOT SEEN" in out
    assert "proves nothing" in out


TWO_HOSTS_CLIENT = """\
import sys, urllib.request
import pinset
from pinset.policy import DomainRule, Policy

port, pin = sys.argv[1], sys.argv[2]
policy = Policy((DomainRule("localhost", (pinset.Pin.parse(pin),), allow_single_pin=True),))
handler = urllib.request.HTTPSHandler(context=pinset.ssl_context(policy))
opener = urllib.request.build_opener(handler)
for host in ("localhost", "127.0.0.1"):  # the policy pins the first name only
    try:
        print(host, opener.open(f"https://{host}:{port}/", timeout=10).read().decode())
    except Exception as exc:
        print(f"{host} refused: {exc!r}", file=sys.stderr)
"""


def test_without_pin_host_every_contacted_host_is_judged(
    capsys: pytest.CaptureFixture[str], server: TLSServer, cafile: str
) -> None:
    argv = ["--json", "--cafile", cafile, "--", sys.executable, "-c", UNPINNED, url(server)]
    status = main(["mitm", *argv])
    data = json.loads(capsys.readouterr().out)
    assert status == 1
    assert data["pinned"] == []
    (verdict,) = data["other_hosts"]
    assert (verdict["host"], verdict["verdict"]) == ("localhost", "INTERCEPTED")
    assert verdict["leaked_bytes"] > 0
    assert data["failures"] == [
        f"localhost: INTERCEPTED - the client accepted the forged certificate and sent "
        f"{verdict['leaked_bytes']} bytes"
    ]


def test_without_pin_host_a_client_that_refuses_passes(
    capsys: pytest.CaptureFixture[str],
    server: TLSServer,
    leaf: LeafCert,
    cafile: str,
    client: str,
) -> None:
    pin = str(pinset.spki_pin(leaf.cert))
    status = main(["mitm", "--cafile", cafile, "--", sys.executable, client, url(server), pin])
    out, _ = capsys.readouterr()
    assert status == 0, out
    assert "REFUSED" in out
    assert "PASS every host the client contacted refused" in out


def test_an_intercepted_host_fails_even_when_it_is_not_a_pinned_one(
    capsys: pytest.CaptureFixture[str], pki: TestPKI, cafile: str, tmp_path: Path
) -> None:
    two_names = pki.leaf("localhost", "127.0.0.1")
    script = tmp_path / "two_hosts.py"
    script.write_text(TWO_HOSTS_CLIENT)
    pin = str(pinset.spki_pin(two_names.cert))
    with TLSServer(two_names) as srv:
        argv = ["--json", "--pin-host", "localhost", "--cafile", cafile, "--"]
        status = main(["mitm", *argv, sys.executable, str(script), str(srv.port), pin])
    data = json.loads(capsys.readouterr().out)
    assert status == 1
    assert [(v["host"], v["verdict"]) for v in data["pinned"]] == [("localhost", "REFUSED")]
    assert [(v["host"], v["verdict"]) for v in data["other_hosts"]] == [
        ("127.0.0.1", "INTERCEPTED")
    ]
    assert [line.split(":")[0] for line in data["failures"]] == ["127.0.0.1"]


def test_a_client_that_contacts_no_host_proves_nothing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status = main(["mitm", "--", sys.executable, "-c", "pass"])
    out, _ = capsys.readouterr()
    assert status == 1
    assert "FAIL the client contacted no host through the proxy, which proves nothing" in out
    assert "PASS" not in out


def test_child_env_points_at_proxy_and_bundle(
    capsys: pytest.CaptureFixture[str], pki: TestPKI, tmp_path: Path
) -> None:
    cert, key = tmp_path / "ca.pem", tmp_path / "ca.key"
    pki.rogue.cert_pem.write_to_path(cert)
    pki.rogue.private_key_pem.write_to_path(key)
    probe = (
        "import os, json; e = os.environ; print(json.dumps({k: e.get(k) for k in "
        "['HTTPS_PROXY','HTTP_PROXY','https_proxy','http_proxy','NO_PROXY','no_proxy',"
        "'SSL_CERT_FILE','REQUESTS_CA_BUNDLE','CURL_CA_BUNDLE','NODE_EXTRA_CA_CERTS']} | "
        "{'bundle': open(e['SSL_CERT_FILE']).read()}))"
    )
    argv = ["--json", "--pin-host", "x.test", "--ca-cert", str(cert), "--ca-key", str(key)]
    main(["mitm", *argv, "--", sys.executable, "-c", probe])
    out, err = capsys.readouterr()
    env = json.loads(err)
    proxy = json.loads(out)["proxy"]
    assert [env[k] for k in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy")] == [
        proxy
    ] * 4
    assert env["NO_PROXY"] is None
    assert env["no_proxy"] is None
    assert len({env[k] for k in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")}) == 1
    assert env["bundle"].startswith(pki.rogue.cert_pem.bytes().decode())


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--pin-host", "localhost"], "give the client command"),
        (["--pin-host", "h.test", "--", "/nonexistent/client"], "command not found"),
        (["--pin-host", "h.test", "--ca-cert", "x.pem", "--", "true"], "go together"),
    ],
)
def test_usage_errors_exit_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert main(["mitm", *argv]) == 2
    assert message in capsys.readouterr().err


def _wait_for_output(
    capsys: pytest.CaptureFixture[str], pattern: str, timeout: float = 10
) -> tuple[str, re.Match[str]]:
    """Everything printed until ``pattern`` appears (a command running in a thread)."""
    out = ""
    deadline = time.monotonic() + timeout
    while not (found := re.search(pattern, out)):
        assert time.monotonic() < deadline, f"no {pattern!r} in {out!r}"
        time.sleep(0.05)
        out += capsys.readouterr().out
    return out, found


@pytest.mark.parametrize("pin_host", [["--pin-host", "localhost"], []])
def test_serve_prints_ca_and_verdicts(
    capsys: pytest.CaptureFixture[str],
    pki: TestPKI,
    server: TLSServer,
    tmp_path: Path,
    pin_host: list[str],
) -> None:
    ca_out = tmp_path / "ca.pem"
    result: list[int] = []
    upstream = f"127.0.0.1:{server.port}"
    argv = ["mitm", "serve", "--port", "0", "--upstream", upstream]
    argv += ["--ca-out", str(ca_out), "--max-connections", "1", *pin_host]
    thread = threading.Thread(target=lambda: result.append(main(argv)), daemon=True)
    thread.start()
    # It prints where it listens once it does: on the port the system gave it.
    out, listening = _wait_for_output(capsys, r"listening on https://127\.0\.0\.1:(\d+)/")
    port = int(listening.group(1))
    ctx = pki.client_context()
    ctx.load_verify_locations(cafile=str(ca_out))
    body = urllib.request.urlopen(f"https://localhost:{port}/", context=ctx, timeout=10).read()
    thread.join(15)
    out += capsys.readouterr().out
    assert body == server.http_body
    assert f"listening on https://127.0.0.1:{port}/" in out
    assert ca_out.read_text() in out
    assert isinstance(ssl.PEM_cert_to_DER_cert(ca_out.read_text()), bytes)
    assert result == [1]  # localhost was intercepted, pinned or not
    assert "FAIL localhost: INTERCEPTED - the client accepted the forged certificate" in out


def test_serve_json_lines_in_connect_mode(
    capsys: pytest.CaptureFixture[str],
    pki: TestPKI,
    leaf: LeafCert,
    server: TLSServer,
    tmp_path: Path,
) -> None:
    ca_out = tmp_path / "ca.pem"
    result: list[int] = []
    argv = ["mitm", "serve", "--json", "--port", "0", "--ca-out", str(ca_out)]
    argv += ["--max-connections", "1", "--pin-host", "localhost"]
    thread = threading.Thread(target=lambda: result.append(main(argv)), daemon=True)
    thread.start()
    # The "ready" line comes once it listens, naming the port the system gave it.
    out, ready = _wait_for_output(capsys, r'"proxy": "(http://127\.0\.0\.1:\d+)"')
    policy = Policy(
        (DomainRule("localhost", (pinset.spki_pin(leaf.cert),), allow_single_pin=True),)
    )
    ctx = pinset.ssl_context(policy, cadata=pki.root.cert_pem.bytes().decode() + ca_out.read_text())
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({"https": ready.group(1)}),
        urllib.request.HTTPSHandler(context=ctx),
    )
    with pytest.raises(urllib.error.URLError) as refused:
        opener.open(f"https://localhost:{server.port}/", timeout=10)
    assert isinstance(refused.value.reason, pinset.PinMismatchError)
    thread.join(15)
    out += capsys.readouterr().out
    events = [json.loads(line) for line in out.splitlines()]
    assert [e["event"] for e in events] == ["ready", "connection", "summary"]
    assert events[0]["ca_pem"] == ca_out.read_text()
    assert events[1]["verdict"] == "REFUSED"
    assert events[1]["client_bytes"] == 0
    assert events[2]["pinned"] == [
        {"host": "localhost", "verdict": "REFUSED", "connections": 1, "leaked_bytes": 0}
    ]
    assert result == [0]


def test_serve_refuses_a_non_loopback_upstream(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["mitm", "serve", "--port", "0", "--upstream", "example.com:443"]) == 2
    assert "not loopback" in capsys.readouterr().err


def test_client_timeout_fails_the_check(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["mitm", "--json", "--timeout", "0.5", "--pin-host", "localhost", "--"]
    status = main([*argv, sys.executable, "-c", "import time; time.sleep(30)"])
    data = json.loads(capsys.readouterr().out)
    assert status == 1
    assert data["timed_out"] is True
    assert data["exit_code"] is None
    assert "did not finish within 0.5s" in data["failures"][-1]


def test_bad_ca_files_exit_2(
    capsys: pytest.CaptureFixture[str], pki: TestPKI, leaf: LeafCert, tmp_path: Path
) -> None:
    leaf_pem, leaf_key = tmp_path / "leaf.pem", tmp_path / "leaf.key"
    leaf_pem.write_bytes(leaf.cert_chain_pems[0].bytes())
    leaf.private_key_pem.write_to_path(leaf_key)
    ca_pem = tmp_path / "ca.pem"
    pki.rogue.cert_pem.write_to_path(ca_pem)
    base = ["mitm", "--pin-host", "localhost"]
    run = [sys.executable, "-c", "pass"]
    assert main([*base, "--ca-cert", str(leaf_pem), "--ca-key", str(leaf_key), "--", *run]) == 2
    assert "not a CA" in capsys.readouterr().err
    assert main([*base, "--ca-cert", str(ca_pem), "--ca-key", str(leaf_key), "--", *run]) == 2
    assert "does not belong" in capsys.readouterr().err
    assert main([*base, "--ca-cert", str(leaf_key), "--ca-key", str(leaf_key), "--", *run]) == 2
    assert "cannot read the CA certificate" in capsys.readouterr().err


def test_a_failure_naming_a_strange_host_is_printed_as_text() -> None:
    # Host names come from the client (SNI, CONNECT); "[/]" would be rich markup.
    out = io.StringIO()
    Console(file=out, width=200).print(fail_line("x[/]y: INTERCEPTED - sent 5 bytes"))
    assert out.getvalue() == "FAIL x[/]y: INTERCEPTED - sent 5 bytes\n"
