"""TrustKit-Android: the network security config XML plus ``<trustkit-config>``.

The same file as :mod:`pinset.formats._android`, read the way TrustKit-Android
reads it. Per domain-config, ``<trustkit-config enforcePinning=… disableDefaultReportUri=…>``
with ``<report-uri>`` children sets report-only mode and report URIs; nested
domain-configs inherit each setting they do not set. TrustKit's defaults apply
when a setting is absent: pins are *not* enforced by TrustKit, and reports also
go to TrustKit's default collector (recorded as a finding and kept in the
rule's report URIs, so nothing is silently lost).

Android 7.0+ enforces the ``<pin-set>`` itself whatever TrustKit says, so
``enforcePinning="false"`` is report-only on Android 6 and older only: import
records a ``trustkit-report-only`` finding and export warns.

Export writes every pinned rule with ``<trustkit-config enforcePinning="…"
disableDefaultReportUri="true">`` and its report URIs listed explicitly.
TrustKit-Android refuses domains with fewer than two pins, so such rules are
an :class:`~pinset.formats._model.ExportError`.
"""

from __future__ import annotations

from pinset.formats._android import _nsc, write
from pinset.formats._android._nsc_map import TRUSTKIT_DEFAULT_REPORT_URI
from pinset.formats._model import Imported
from pinset.policy import Policy

__all__ = ["FORMAT", "TRUSTKIT_DEFAULT_REPORT_URI", "dumps", "loads", "sniff"]

FORMAT = "trustkit-android"


def loads(data: str | bytes, *, source: str | None = None) -> Imported:
    """Read a network security config as TrustKit-Android does (enforcement, report URIs)."""
    return _nsc.load(data, source=source, trustkit=True)


def sniff(data: bytes) -> bool:
    """True for a network security config that carries a ``<trustkit-config>``."""
    head = data[:200_000]
    return b"<network-security-config" in head and b"<trustkit-config" in head


def dumps(policy: Policy, **options: object) -> str:
    """Write ``policy`` as a network security config with TrustKit settings per domain."""
    if options:
        raise TypeError(f"unknown export options: {', '.join(sorted(options))}")
    return write(policy, trustkit=True)
