"""Test tooling: a throw-away PKI, a loopback TLS server and a CONNECT tunnel.

Nothing here imports pytest; the pytest plugin lives in :mod:`pinset.testing.plugin`.
"""

from pinset.testing.pki import (
    KEY_TYPES,
    Blob,
    CertificateAuthority,
    KeyType,
    LeafCert,
    PrivateKey,
    TestPKI,
    configure_cert_chain,
    generate_key,
)
from pinset.testing.server import ConnectionRecord, ServerMode, TLSServer
from pinset.testing.tunnel import TunnelProxy

__all__ = [
    "KEY_TYPES",
    "Blob",
    "CertificateAuthority",
    "ConnectionRecord",
    "KeyType",
    "LeafCert",
    "PrivateKey",
    "ServerMode",
    "TLSServer",
    "TestPKI",
    "TunnelProxy",
    "configure_cert_chain",
    "generate_key",
]
