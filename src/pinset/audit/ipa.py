"""Read the pin configuration an iOS ``.ipa`` ships: ``Payload/*.app/Info.plist``.

The plist may be XML or binary. App Transport Security pins
(``NSAppTransportSecurity/NSPinnedDomains``) and TrustKit's
``TSKConfiguration`` are separate configs in one file; each is imported by its
own format module, so an IPA can yield two configs.
"""

from __future__ import annotations

import io
import plistlib
import re
import zipfile
from dataclasses import dataclass

from pinset.errors import ConfigError

__all__ = ["IpaContents", "read_ipa"]

_INFO_PLIST = re.compile(r"Payload/[^/]+\.app/Info\.plist")
_MAX_PLIST = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class IpaContents:
    """The Info.plist bytes, its path inside the IPA, and which pin configs it carries."""

    plist_path: str
    plist: bytes
    has_ats_pins: bool
    has_trustkit: bool


def read_ipa(data: bytes, *, name: str) -> IpaContents:
    """Read the IPA bytes ``data`` (``name`` for errors); :class:`ConfigError` if not an IPA."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise ConfigError("not an IPA (not a zip archive)", source=name) from None
    paths = sorted(n for n in archive.namelist() if _INFO_PLIST.fullmatch(n))
    if not paths:
        raise ConfigError(
            "not an IPA: no Payload/*.app/Info.plist",
            source=name,
            hint="give the .ipa an App Store or ad-hoc export produces",
        )
    path = paths[0]
    if archive.getinfo(path).file_size > _MAX_PLIST:
        raise ConfigError("Info.plist is implausibly large", source=f"{name}!/{path}")
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
