"""Test tooling: a throw-away PKI, test CT logs, a loopback TLS server, a tunnel, a MITM proxy.

Nothing here imports pytest; the pytest plugin lives in :mod:`pinset.testing.plugin`.
"""

from pinset.testing._ct import CTLog, issue_with_scts, log_list
from pinset.testing._mitm import (
    HostVerdict,
    MitmProxy,
    MitmRecord,
    assert_intercepted,
    assert_refused,
)
from pinset.testing._pki import (
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
from pinset.testing._server import ConnectionRecord, ServerMode, TLSServer
from pinset.testing._tunnel import TunnelProxy

__all__ = [
    "KEY_TYPES",
    "Blob",
    "CTLog",
    "CertificateAuthority",
    "ConnectionRecord",
    "HostVerdict",
    "KeyType",
    "LeafCert",
    "MitmProxy",
    "MitmRecord",
    "PrivateKey",
    "ServerMode",
    "TLSServer",
    "TestPKI",
    "TunnelProxy",
    "assert_intercepted",
    "assert_refused",
    "configure_cert_chain",
    "generate_key",
    "issue_with_scts",
    "log_list",
]
