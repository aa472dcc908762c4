"""``pinset mitm -- java ...``: an unmodified JVM client is attacked like curl or Python.

The clients below know nothing of proxies or trust stores: they use the JVM's default
``ProxySelector`` and trust manager, which ``pinset mitm`` configures through
``JAVA_TOOL_OPTIONS``. The OkHttp one pins the server's key with OkHttp's own
``CertificatePinner`` (square/okhttp, okhttp/src/main/java/okhttp3/CertificatePinner.java,
the 3.x API Debian ships as /usr/share/java/okhttp.jar).
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

import pinset
from pinset.cli import main
from pinset.cli._mitm._cacerts import cacerts_certificates, jvm_cacerts
from pinset.cli._mitm._client import write_trust
from pinset.cli._mitm._jvm import TRUSTSTORE_PASSWORD, java_tool_options, jvm_options
from pinset.errors import ConfigError
from pinset.testing import CertificateAuthority, LeafCert, TestPKI, TLSServer
from pinset.testing._mitm import MitmProxy

JARS = (Path("/usr/share/java/okhttp.jar"), Path("/usr/share/java/okio.jar"))


def _missing() -> str | None:
    absent = [tool for tool in ("javac", "java", "keytool") if shutil.which(tool) is None]
    absent += [str(jar) for jar in JARS if not jar.is_file()]
    if not absent:
        return None
    return (
        f"needs {', '.join(absent)}: install the Debian packages default-jdk-headless "
        "libokhttp-java libokio-java"
    )


# Each client prints "STATUS BODY" on success; the pinned one exits 3 on OkHttp's
# pin refusal (SSLPeerUnverifiedException), as an app would show an error.
SOURCES = {
    "PinnedOkHttp": r"""
import javax.net.ssl.SSLPeerUnverifiedException;
import okhttp3.CertificatePinner;
import okhttp3.HttpUrl;
import okhttp3.OkHttpClient;
import okhttp3.Request;
import okhttp3.Response;

public class PinnedOkHttp {
  public static void main(String[] args) throws Exception {
    HttpUrl url = HttpUrl.get(args[0]);
    CertificatePinner pinner = new CertificatePinner.Builder().add(url.host(), args[1]).build();
    OkHttpClient client = new OkHttpClient.Builder().certificatePinner(pinner).build();
    try (Response response = client.newCall(new Request.Builder().url(url).build()).execute()) {
      System.out.println(response.code() + " " + response.body().string());
    } catch (SSLPeerUnverifiedException e) {
      System.err.println("refused: " + e.getMessage());
      System.exit(3);
    }
  }
}
""",
    "PlainOkHttp": r"""
import okhttp3.OkHttpClient;
import okhttp3.Request;
import okhttp3.Response;

public class PlainOkHttp {
  public static void main(String[] args) throws Exception {
    OkHttpClient client = new OkHttpClient();
    try (Response response = client.newCall(new Request.Builder().url(args[0]).build()).execute()) {
      System.out.println(response.code() + " " + response.body().string());
    }
  }
}
""",
    "PlainUrlConnection": r"""
import java.io.InputStream;
import java.net.URL;
import java.nio.charset.StandardCharsets;
import javax.net.ssl.HttpsURLConnection;

public class PlainUrlConnection {
  public static void main(String[] args) throws Exception {
    HttpsURLConnection connection = (HttpsURLConnection) new URL(args[0]).openConnection();
    try (InputStream body = connection.getInputStream()) {
      String text = new String(body.readAllBytes(), StandardCharsets.UTF_8);
      System.out.println(connection.getResponseCode() + " " + text);
    }
  }
}
""",
    "ProxyFor": r"""
import java.net.ProxySelector;
import java.net.URI;

public class ProxyFor {
  public static void main(String[] args) throws Exception {
    System.out.println(ProxySelector.getDefault().select(new URI(args[0])));
  }
}
""",
}


@pytest.fixture(scope="session")
def classpath(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The clients compiled once per session; the class path to run them."""
    reason = _missing()
    if reason is not None:
        pytest.skip(reason)
    work = tmp_path_factory.mktemp("jvm-mitm")
    sources = []
    for name, text in SOURCES.items():
        path = work / f"{name}.java"
        path.write_text(text, encoding="utf-8")
        sources.append(str(path))
    jars = os.pathsep.join(str(jar) for jar in JARS)
    argv = ["javac", "-Xlint:all", "-Werror", "-cp", jars, "-d", str(work / "classes")]
    done = subprocess.run([*argv, *sources], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return os.pathsep.join([str(work / "classes"), jars])


@pytest.fixture(autouse=True)
def _no_inherited_jvm_options(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JAVA_TOOL_OPTIONS", raising=False)
    monkeypatch.delenv("_JAVA_OPTIONS", raising=False)


def mitm_json(
    capsys: pytest.CaptureFixture[str], argv: list[str]
) -> tuple[int, dict[str, Any], str]:
    status = main(["mitm", "--json", *argv])
    out, err = capsys.readouterr()
    return status, json.loads(out), err


# -- the options themselves (no JVM needed) --------------------------------------------


def test_jvm_options_set_both_proxies_clear_non_proxy_hosts_and_name_the_store(
    tmp_path: Path,
) -> None:
    store = tmp_path / "store.p12"
    assert jvm_options("127.0.0.1", 8080, store) == [
        "-Dhttps.proxyHost=127.0.0.1",
        "-Dhttps.proxyPort=8080",
        "-Dhttp.proxyHost=127.0.0.1",
        "-Dhttp.proxyPort=8080",
        "-Dhttp.nonProxyHosts=",
        f"-Djavax.net.ssl.trustStore={store}",
        "-Djavax.net.ssl.trustStoreType=PKCS12",
        f"-Djavax.net.ssl.trustStorePassword={TRUSTSTORE_PASSWORD}",
    ]


def test_java_tool_options_keep_the_users_and_quote_white_space() -> None:
    ours = ["-Da=1", "-Dstore=/tmp/my dir/s.p12", "-Dq=it's"]
    assert java_tool_options(None, ours) == '-Da=1 "-Dstore=/tmp/my dir/s.p12" "-Dq=it\'s"'
    assert java_tool_options("  -Xmx64m -javaagent:a.jar ", ["-Da=1"]) == (
        "-Xmx64m -javaagent:a.jar -Da=1"
    )
    assert java_tool_options("", ['-Da="x"']) == "'-Da=\"x\"'"
    with pytest.raises(ConfigError, match="both kinds of quote"):
        java_tool_options(None, ['-Dx="it\'s"'])


def test_the_child_gets_java_tool_options_after_its_own(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JAVA_TOOL_OPTIONS", "-Xmx64m")
    probe = "import os, sys; print(os.environ['JAVA_TOOL_OPTIONS'], file=sys.stderr)"
    _, data, err = mitm_json(capsys, ["--", sys.executable, "-c", probe])
    port = str(data["proxy"]).rsplit(":", 1)[1]
    options = err.strip()
    assert options.startswith(f"-Xmx64m -Dhttps.proxyHost=127.0.0.1 -Dhttps.proxyPort={port} ")
    assert " -Dhttp.nonProxyHosts= " in options
    assert "-Djavax.net.ssl.trustStoreType=PKCS12" in options


# -- the JVM reads them -----------------------------------------------------------------


@pytest.mark.jvm
@pytest.mark.skipif(shutil.which("keytool") is None, reason="needs keytool (a JDK)")
def test_keytool_reads_the_store_as_trusted_entries(
    pki: TestPKI, cafile: str, tmp_path: Path
) -> None:
    with MitmProxy() as proxy:
        trust = write_trust(tmp_path, proxy, cafile)
    argv = ["keytool", "-list", "-keystore", str(trust.truststore), "-storetype", "PKCS12"]
    done = subprocess.run(
        [*argv, "-storepass", TRUSTSTORE_PASSWORD], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Your keystore contains 2 entries" in done.stdout
    entries = [line for line in done.stdout.splitlines() if "trustedCertEntry" in line]
    assert len(entries) == 2
    assert entries[0].startswith("pinset-interception-ca,") or entries[1].startswith(
        "pinset-interception-ca,"
    )


@pytest.mark.parametrize(
    ("value", "route"),
    [
        (None, "[DIRECT]"),  # the JVM's default list skips loopback
        ("localhost", "[DIRECT]"),
        ("none", "[DIRECT]"),  # a non-empty value gets the default list appended
        ("", "[HTTP @ 127.0.0.1/<unresolved>:9]"),  # only the empty value clears it
    ],
)
@pytest.mark.jvm
def test_only_an_empty_non_proxy_hosts_sends_loopback_through_the_proxy(
    classpath: str, value: str | None, route: str
) -> None:
    argv = ["java", "-Dhttps.proxyHost=127.0.0.1", "-Dhttps.proxyPort=9"]
    if value is not None:
        argv.append(f"-Dhttp.nonProxyHosts={value}")
    env = {k: v for k, v in os.environ.items() if k not in ("JAVA_TOOL_OPTIONS", "_JAVA_OPTIONS")}
    done = subprocess.run(
        [*argv, "-cp", classpath, "ProxyFor", "https://localhost:1/"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert done.stdout.strip() == route, done.stderr


@pytest.mark.jvm
def test_a_pinned_okhttp_client_refuses_and_sends_nothing(
    capsys: pytest.CaptureFixture[str],
    classpath: str,
    server: TLSServer,
    leaf: LeafCert,
    cafile: str,
) -> None:
    server.reset()
    url = f"https://localhost:{server.port}/"
    pin = str(pinset.spki_pin(leaf.cert))
    argv = ["--pin-host", "localhost", "--cafile", cafile, "--"]
    status, data, err = mitm_json(
        capsys, [*argv, "java", "-cp", classpath, "PinnedOkHttp", url, pin]
    )
    assert status == 0, err
    assert data["exit_code"] == 3
    assert "Picked up JAVA_TOOL_OPTIONS: " in err
    assert "refused: Certificate pinning failure!" in err
    assert data["pinned"] == [
        {"host": "localhost", "verdict": "REFUSED", "connections": 1, "leaked_bytes": 0}
    ]
    assert data["other_hosts"] == []
    connections = [(c["client_bytes"], c["bytes_to_upstream"]) for c in data["connections"]]
    assert connections == [(0, 0)]
    assert server.received_bytes == 0


@pytest.mark.parametrize("client", ["PlainOkHttp", "PlainUrlConnection"])
@pytest.mark.jvm
def test_an_unpinned_jvm_client_is_intercepted(
    capsys: pytest.CaptureFixture[str],
    classpath: str,
    server: TLSServer,
    cafile: str,
    client: str,
) -> None:
    url = f"https://localhost:{server.port}/"
    argv = ["--cafile", cafile, "--", "java", "-cp", classpath, client, url]
    status, data, err = mitm_json(capsys, argv)
    assert status == 1
    assert data["exit_code"] == 0
    assert f"200 {server.http_body.decode()}" in err  # fooled: it got the real answer
    (verdict,) = data["other_hosts"]
    assert (verdict["host"], verdict["verdict"]) == ("localhost", "INTERCEPTED")
    (connection,) = data["connections"]
    assert connection["client_bytes"] > 0
    assert connection["bytes_to_upstream"] == connection["client_bytes"]


@pytest.mark.jvm
def test_the_users_java_tool_options_stay_and_ours_win_a_conflict(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    classpath: str,
    server: TLSServer,
    cafile: str,
) -> None:
    # The user's own list would send localhost DIRECT; ours comes later and clears it.
    monkeypatch.setenv("JAVA_TOOL_OPTIONS", "-Dhttp.nonProxyHosts=localhost -Xmx128m")
    url = f"https://localhost:{server.port}/"
    argv = ["--cafile", cafile, "--", "java", "-cp", classpath, "PlainUrlConnection", url]
    status, data, err = mitm_json(capsys, argv)
    assert "Picked up JAVA_TOOL_OPTIONS: -Dhttp.nonProxyHosts=localhost -Xmx128m -D" in err
    assert status == 1
    assert [v["verdict"] for v in data["other_hosts"]] == ["INTERCEPTED"]


# -- --jvm-cacerts: the JVM's own trust store ------------------------------------------


def _utf(text: str) -> bytes:
    return struct.pack(">H", len(text)) + text.encode()


def jks(trusted: list[bytes], key_chain: tuple[bytes, ...] = ()) -> bytes:
    """A version-2 JKS store, field by field as OpenJDK's JavaKeyStore.engineStore writes it.

    Tag 2 entries: alias, date, certificate type, DER. A tag 1 entry (a private key and
    its chain) when *key_chain* is given; its key bytes are opaque to a reader. The
    trailing 20-byte keyed SHA-1 is not checked by pinset, so zeros stand in for it.
    """
    entries = [(2, der) for der in trusted]
    out = struct.pack(">III", 0xFEEDFEED, 2, len(entries) + bool(key_chain))
    if key_chain:
        out += struct.pack(">I", 1) + _utf("key") + struct.pack(">q", 0)
        out += struct.pack(">I", 5) + b"\x00" * 5 + struct.pack(">I", len(key_chain))
        for der in key_chain:
            out += _utf("X.509") + struct.pack(">I", len(der)) + der
    for number, (tag, der) in enumerate(entries):
        out += struct.pack(">I", tag) + _utf(f"ca{number}") + struct.pack(">q", 1_700_000_000_000)
        out += _utf("X.509") + struct.pack(">I", len(der)) + der
    return out + b"\x00" * 20


def _der(ca: CertificateAuthority) -> bytes:
    return ca.cert.public_bytes(serialization.Encoding.DER)


def test_a_jks_cacerts_gives_its_trusted_entries_only(pki: TestPKI) -> None:
    data = jks([_der(pki.root), _der(pki.rogue)], key_chain=(_der(pki.intermediate),))
    assert cacerts_certificates(data, "cacerts") == [pki.root.cert, pki.rogue.cert]


@pytest.mark.parametrize("data", [b"\xfe\xed\xfe\xed\x00\x00\x00\x02\x00\x00\x00\x01", b"junk"])
def test_an_unreadable_cacerts_is_a_config_error(data: bytes) -> None:
    with pytest.raises(ConfigError) as caught:
        cacerts_certificates(data, "/jdk/lib/security/cacerts")
    assert caught.value.source == "/jdk/lib/security/cacerts"
    assert "cannot read the JVM's cacerts" in str(caught.value)


def test_jvm_cacerts_go_into_the_jvm_store_only(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    pki: TestPKI,
    cafile: str,
    tmp_path: Path,
) -> None:
    home = tmp_path / "jdk"
    (home / "lib/security").mkdir(parents=True)
    (home / "lib/security/cacerts").write_bytes(jks([_der(pki.rogue)]))
    monkeypatch.setenv("JAVA_HOME", str(home))
    probe = (
        "import os, re, sys\n"
        "from cryptography.hazmat.primitives.serialization import pkcs12\n"
        "path = re.search(r'trustStore=(\\S+)', os.environ['JAVA_TOOL_OPTIONS']).group(1)\n"
        "store = pkcs12.load_pkcs12(open(path, 'rb').read(), b'pinset-mitm')\n"
        "names = sorted(c.certificate.subject.rfc4514_string() for c in store.additional_certs)\n"
        "print('|'.join(names), file=sys.stderr)\n"
        "print(open(os.environ['SSL_CERT_FILE']).read().count('BEGIN CERT'), file=sys.stderr)\n"
    )
    argv = ["--jvm-cacerts", "--cafile", cafile, "--", sys.executable, "-c", probe]
    _, _, err = mitm_json(capsys, argv)
    names, pem_count = err.strip().splitlines()
    subjects = {pki.root.cert.subject.rfc4514_string(), pki.rogue.cert.subject.rfc4514_string()}
    assert subjects <= set(names.split("|"))
    assert len(names.split("|")) == 3  # + the interception CA
    assert pem_count == "2"  # the PEM bundle: the interception CA and --cafile


def test_no_jvm_to_read_cacerts_from_exits_2(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("JAVA_HOME", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path))
    assert main(["mitm", "--jvm-cacerts", "--", sys.executable, "-c", "pass"]) == 2
    err = capsys.readouterr().err
    assert "cannot find the JVM's cacerts" in err
    assert "set JAVA_HOME" in err


@pytest.mark.jvm
@pytest.mark.skipif(shutil.which("keytool") is None, reason="needs keytool (a JDK)")
def test_the_installed_jvm_cacerts_reads_like_keytool_lists_it() -> None:
    listed = subprocess.run(
        ["keytool", "-list", "-cacerts", "-storepass", "changeit"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    count = int(listed.split("Your keystore contains ")[1].split()[0])
    assert count > 0
    assert len(jvm_cacerts(os.environ)) == count


@pytest.mark.parametrize(
    "launcher",
    [
        pytest.param(
            ["kotlin"],
            marks=pytest.mark.skipif(shutil.which("kotlin") is None, reason="needs kotlin"),
            id="kotlin",
        ),
        pytest.param(["sh", "-c", 'exec java "$@"', "sh"], id="shell-script"),
    ],
)
@pytest.mark.jvm
def test_a_jvm_started_by_another_launcher_is_attacked_too(
    capsys: pytest.CaptureFixture[str],
    classpath: str,
    server: TLSServer,
    cafile: str,
    launcher: list[str],
) -> None:
    url = f"https://localhost:{server.port}/"
    argv = ["--cafile", cafile, "--", *launcher, "-cp", classpath, "PlainOkHttp", url]
    status, data, err = mitm_json(capsys, argv)
    assert "Picked up JAVA_TOOL_OPTIONS: " in err
    assert status == 1
    assert [(v["host"], v["verdict"]) for v in data["other_hosts"]] == [
        ("localhost", "INTERCEPTED")
    ]
