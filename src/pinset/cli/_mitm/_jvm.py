"""What ``pinset mitm`` tells a JVM: its proxy and its trust store, in ``JAVA_TOOL_OPTIONS``.

A JVM reads neither ``HTTPS_PROXY`` nor ``SSL_CERT_FILE``: its default ``ProxySelector``
follows the ``https.proxyHost`` / ``http.proxyHost`` system properties and its default
trust manager the ``javax.net.ssl.trustStore`` ones. Every JVM (``java``, ``gradle``,
``mvn``, ``kotlin``, a JVM started by a script) reads ``JAVA_TOOL_OPTIONS`` from its
environment, so that is where the properties go; the JVM says so on standard error
("Picked up JAVA_TOOL_OPTIONS: ...").
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from pinset.errors import ConfigError

__all__ = ["TRUSTSTORE_PASSWORD", "java_tool_options", "jvm_options", "write_truststore"]

# Not a secret: the store holds public CA certificates only. Java wants some password
# to check the store's integrity MAC.
TRUSTSTORE_PASSWORD = "pinset-mitm"  # noqa: S105 - see above
_INTERCEPTION_ALIAS = "pinset-interception-ca"


def write_truststore(
    path: Path, interception_ca: x509.Certificate, trusted: Iterable[x509.Certificate]
) -> Path:
    """Write a PKCS#12 trust store: *interception_ca* plus *trusted*, as Java trusted entries.

    Plain PKCS#12 certificate bags are ignored by Java's keystore (``keytool -list``
    shows 0 entries); ``serialize_java_truststore`` marks each one trusted for any use
    (Oracle's trusted-key-usage attribute), which is what ``keytool -importcert`` writes.
    """
    entries = [pkcs12.PKCS12Certificate(interception_ca, _INTERCEPTION_ALIAS.encode())]
    seen = {_fingerprint(interception_ca)}
    for cert in trusted:
        digest = _fingerprint(cert)
        if digest in seen:
            continue
        seen.add(digest)
        # Aliases must be unique in a key store; a digest prefix is, and says which CA.
        entries.append(pkcs12.PKCS12Certificate(cert, f"trusted-{digest[:16]}".encode()))
    encryption = serialization.BestAvailableEncryption(TRUSTSTORE_PASSWORD.encode())
    path.write_bytes(pkcs12.serialize_java_truststore(entries, encryption))
    return path


def _fingerprint(cert: x509.Certificate) -> str:
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def jvm_options(proxy_host: str, proxy_port: int, truststore: Path) -> list[str]:
    """The ``-D`` options that send a JVM's HTTP(S) through the proxy and trust *truststore*.

    ``http.nonProxyHosts`` is set empty on purpose: the JVM's default
    (``localhost|127.*|[::1]``, from ``conf/net.properties``) sends loopback targets
    DIRECT, and on OpenJDK 17 any non-empty value gets that default appended again;
    only the empty value clears it. HTTPS uses the ``http.`` list.
    """
    return [
        f"-Dhttps.proxyHost={proxy_host}",
        f"-Dhttps.proxyPort={proxy_port}",
        f"-Dhttp.proxyHost={proxy_host}",
        f"-Dhttp.proxyPort={proxy_port}",
        "-Dhttp.nonProxyHosts=",
        f"-Djavax.net.ssl.trustStore={truststore}",
        "-Djavax.net.ssl.trustStoreType=PKCS12",
        f"-Djavax.net.ssl.trustStorePassword={TRUSTSTORE_PASSWORD}",
    ]


def java_tool_options(existing: str | None, options: Sequence[str]) -> str:
    """*existing* ``JAVA_TOOL_OPTIONS`` followed by *options*, each quoted for the JVM.

    The user's options are kept (an agent, a heap size); ours come last because the
    JVM takes the last of two ``-D`` for one property. The JVM splits the variable on
    white space and honours single or double quotes around an option.
    """
    quoted = [_quote(option) for option in options]
    return " ".join([existing.strip(), *quoted] if existing and existing.strip() else quoted)


def _quote(option: str) -> str:
    if not any(c.isspace() or c in "'\"" for c in option):
        return option
    if '"' not in option:
        return f'"{option}"'
    if "'" not in option:
        return f"'{option}'"
    raise ConfigError(
        f"cannot pass {option!r} in JAVA_TOOL_OPTIONS: it holds both kinds of quote",
        hint="set TMPDIR to a directory whose path has no quote characters",
    )
