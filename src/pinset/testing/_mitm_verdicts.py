"""What a forging proxy saw, and the verdict on a host: REFUSED, INTERCEPTED or NOT SEEN.

:class:`MitmRecord` is one client connection as :class:`~pinset.testing.MitmProxy`
saw it; :func:`host_verdict` judges the records of one host; :func:`assert_refused`
and :func:`assert_intercepted` are the test assertions built on it. The proxy keeps a
connection's record up to date by replacing it (:class:`pinset.testing._service.Tracked`).
The public names are re-exported by :mod:`pinset.testing._mitm`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from pinset.testing._mitm import MitmProxy

__all__ = [
    "HostVerdict",
    "MitmRecord",
    "Mode",
    "Outcome",
    "assert_intercepted",
    "assert_refused",
    "host_verdict",
]

Outcome = Literal["REFUSED", "INTERCEPTED", "NOT SEEN"]
Mode = Literal["connect", "reverse", "http"]


@dataclass(frozen=True, slots=True)
class MitmRecord:
    """What one client connection did, as seen by the proxy.

    ``host`` is the canonical name the client asked for (its SNI, else the CONNECT
    target). ``tls_started`` is true once the client began a TLS handshake;
    ``handshake_completed`` is the *server-side* view: in TLS 1.3 it is true before the
    client has checked anything, so only ``client_bytes`` (application bytes decrypted
    from the client, or plain-HTTP bytes) says whether something leaked.
    """

    id: int
    mode: Mode
    target: str
    host: str
    sni: str | None = None
    tls_started: bool = False
    handshake_completed: bool = False
    tls_version: str | None = None
    client_bytes: int = 0
    upstream_connected: bool = False
    bytes_to_upstream: int = 0
    bytes_to_client: int = 0
    error: str | None = None
    closed: bool = False

    @property
    def leaked(self) -> bool:
        """True when the client sent application data to the forged endpoint."""
        return self.client_bytes > 0

    @property
    def attempted(self) -> bool:
        """True when the client put data on this connection: a TLS ClientHello or HTTP."""
        return self.tls_started or self.mode == "http"

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready view: every field but ``closed`` (a reported record is closed)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "closed"}


@dataclass(frozen=True, slots=True)
class HostVerdict:
    """The outcome for one host: REFUSED (good), INTERCEPTED (bytes leaked) or NOT SEEN."""

    host: str
    outcome: Outcome
    connections: int = 0
    leaked_bytes: int = 0
    records: tuple[MitmRecord, ...] = field(default=(), repr=False)

    @property
    def ok(self) -> bool:
        """True only for REFUSED: seen, and not one application byte leaked."""
        return self.outcome == "REFUSED"

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready view."""
        return {
            "host": self.host,
            "verdict": self.outcome,
            "connections": self.connections,
            "leaked_bytes": self.leaked_bytes,
        }


def host_verdict(host: str, records: Iterable[MitmRecord]) -> HostVerdict:
    """Judge the *records* that belong to *host* (the caller picks them)."""
    seen = tuple(r for r in records if r.attempted)
    leaked = sum(r.client_bytes for r in seen)
    if not seen:
        outcome: Outcome = "NOT SEEN"
    elif leaked:
        outcome = "INTERCEPTED"
    else:
        outcome = "REFUSED"
    return HostVerdict(host, outcome, len(seen), leaked, seen)


def assert_refused(proxy: MitmProxy, host: str, *, wait: float = 5.0) -> HostVerdict:
    """Assert that the client refused *proxy*'s forged certificate for *host* and sent nothing.

    Fails when the client leaked application bytes (INTERCEPTED) and when it never
    connected through the proxy (NOT SEEN: such a test would prove nothing).
    """
    __tracebackhide__ = True  # pytest shows the caller's line, not this helper's
    verdict = proxy.verdicts([host], wait=wait)[0]
    if verdict.outcome == "NOT SEEN":
        seen = sorted({r.host for r in proxy.records}) or ["nothing"]
        raise AssertionError(
            f"{verdict.host}: NOT SEEN - the client never made a TLS connection to it "
            f"through {proxy.url} (the proxy saw: {', '.join(seen)}); is the client "
            "configured to use the proxy?"
        )
    if verdict.outcome == "INTERCEPTED":
        raise AssertionError(
            f"{verdict.host}: INTERCEPTED - the client accepted the forged certificate and "
            f"sent {verdict.leaked_bytes} application bytes over {verdict.connections} "
            "connection(s); it is not pinned (or pins the interception CA)"
        )
    return verdict


def assert_intercepted(proxy: MitmProxy, host: str, *, wait: float = 5.0) -> HostVerdict:
    """Assert that the client accepted the forged certificate for *host* (a control test)."""
    __tracebackhide__ = True
    verdict = proxy.verdicts([host], wait=wait)[0]
    if verdict.outcome != "INTERCEPTED":
        raise AssertionError(
            f"{verdict.host}: expected INTERCEPTED, got {verdict.outcome} "
            f"({verdict.connections} connection(s), {verdict.leaked_bytes} bytes)"
        )
    return verdict
