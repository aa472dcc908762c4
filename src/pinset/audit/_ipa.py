"""Read the pin configuration an iOS ``.ipa`` ships: ``Payload/*.app/Info.plist``.

The plist may be XML or binary. App Transport Security pins
(``NSAppTransportSecurity/NSPinnedDomains``) and TrustKit's
``TSKConfiguration`` are separate configs in one file; each is imported by its
own format module, so an IPA can yield two configs.
"""

from __future__ import annotations

import plistlib
import re
from dataclasses import dataclass

from pinset.audit._zip import ArchiveLimits, open_zip
from pinset.errors import ConfigError

__all__ = ["IpaContents", "read_ipa"]

_INFO_PLIST = re.compile(r"Payload/[^/]+\.app/Info\.plist")


@dataclass(frozen=True, slots=True)
class IpaContents:
    """The Info.plist bytes, its path inside the IPA, and which pin configs it carries."""

    plist_path: str
    plist: bytes
    has_ats_pins: bool
    has_trustkit: bool


def read_ipa(data: bytes, *, name: str, limits: ArchiveLimits | None = None) -> IpaContents:
    """Read the IPA bytes ``data`` (``name`` for errors); :class:`ConfigError` if not an IPA."""
    archive = open_zip(data, name=name, kind="an IPA", limits=limits)
    paths = sorted(n for n in archive.names() if _INFO_PLIST.fullmatch(n))
    if not paths:
        raise ConfigError(
            "not an IPA: no Payload/*.app/Info.plist",
            source=name,
            hint="give the .ipa an App Store or ad-hoc export produces",
        )
    if len(paths) > 1:
        # Auditing only the first would pass an app whose other half was never read.
        apps = ", ".join(p.split("/")[1] for p in paths)
        raise ConfigError(
            f"the IPA holds {len(paths)} apps ({apps}); an IPA holds exactly one",
            source=name,
            hint="audit each app's IPA on its own",
        )
    path = paths[0]
    raw = archive.read(path)
    try:
        root = plistlib.loads(raw.lstrip() if not raw.startswith(b"bplist") else raw)
    except Exception as exc:  # plistlib raises several unrelated types
        raise ConfigError(
            f"Info.plist is not a property list: {exc}", source=f"{name}!/{path}"
        ) from None
    ats = root.get("NSAppTransportSecurity") if isinstance(root, dict) else None
    has_ats = isinstance(ats, dict) and "NSPinnedDomains" in ats
    has_tsk = isinstance(root, dict) and ("TSKConfiguration" in root or "TSKPublicKeyPins" in root)
    return IpaContents(plist_path=path, plist=raw, has_ats_pins=has_ats, has_trustkit=has_tsk)
