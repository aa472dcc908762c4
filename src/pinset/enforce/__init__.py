"""Enforcement: an :class:`ssl.SSLContext` whose connections check the pin verdict.

Normal certificate validation (trust store, host name, validity) runs first and
is never relaxed. Right after the handshake the *verified* chain, the path
OpenSSL built to a trust anchor, is judged by :func:`pinset.verdict.evaluate`
for ``server_hostname``. A refused connection is closed and
:class:`PinMismatchError` (an :class:`ssl.SSLCertVerificationError`) is raised
before any application byte is written; implicit handshakes (a first
``send``/``recv`` on a socket made with ``do_handshake_on_connect=False``) are
checked the same way. Observers of :func:`ssl_context` receive each verdict with
the :class:`Connection` it was reached on. A :class:`PolicyFeed` (``updates=``) swaps
the policy of a live context when a signed pin update arrives.
"""

from __future__ import annotations

from pinset.enforce._context import (
    Clock,
    PinnedSSLContext,
    PolicyFeed,
    PolicyListener,
    ssl_context,
)
from pinset.enforce._sockets import PinnedSSLObject, PinnedSSLSocket
from pinset.verdict import Connection, VerdictObserver

__all__ = [
    "Clock",
    "Connection",
    "PinnedSSLContext",
    "PinnedSSLObject",
    "PinnedSSLSocket",
    "PolicyFeed",
    "PolicyListener",
    "VerdictObserver",
    "ssl_context",
]
