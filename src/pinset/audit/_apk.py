"""Read what an Android APK ships: its network security config, manifest flags and code pins.

The config file is found the way Android finds it: the manifest's
``android:networkSecurityConfig`` is a resource id, resolved through
``resources.arsc`` to a file path (release builds shorten those paths, so
``res/xml/network_security_config.xml`` is never assumed). Binary XML is
decoded with pyaxmlparser (the ``mobile`` extra) and handed to
:func:`pinset.formats._android.loads` as text. ``sha256/…`` strings in
``classes*.dex`` are collected with a byte regex: pins in code (OkHttp's
``CertificatePinner``) are stored as plain string constants.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pinset.audit._model import ApkFacts
from pinset.audit._zip import (
    MAX_DEX_FILES,
    MAX_ENTRY_SIZE,
    MAX_TOTAL_INFLATED,
    ArchiveLimits,
    ZipReader,
    open_zip,
)
from pinset.errors import ConfigError

__all__ = [
    "MAX_DEX_FILES",
    "MAX_ENTRY_SIZE",
    "MAX_TOTAL_INFLATED",
    "ApkContents",
    "ArchiveLimits",
    "ZipReader",
    "apk_contents",
    "open_zip",
    "read_apk",
    "scan_dex",
]

# A pin-shaped string: the prefix and at least 16 base64 characters. Validity is
# judged later (invalid-pin), so a truncated constant is reported, not missed.
_DEX_PIN = re.compile(rb"sha256/[A-Za-z0-9+/=]{16,64}")
_DEX_PIN_MAX = len(b"sha256/") + 64
_DEX_NAME = re.compile(r"classes\d*\.dex")


@dataclass(frozen=True, slots=True)
class ApkContents:
    """An APK's facts and, when it has one, its network security config as XML text."""

    facts: ApkFacts
    config_xml: str | None


def _mobile() -> Any:
    try:
        import pyaxmlparser
        from pyaxmlparser.axmlprinter import AXMLPrinter
    except ImportError:  # pragma: no cover - the mobile extra is part of dev installs
        raise ConfigError(
            "reading APKs needs pyaxmlparser",
            hint="install the mobile extra: pip install 'pinset[mobile]'",
        ) from None
    return pyaxmlparser.APK, AXMLPrinter


def _flag(value: str | None) -> bool | None:
    if value is None:
        return None
    return value.strip().lower() in ("true", "1", "0xffffffff", "-1")


def scan_dex(data: bytes | Iterable[bytes]) -> list[str]:
    """Every ``sha256/…`` pin-shaped string in ``data``, in order, duplicates removed.

    ``data`` is the dex file's bytes, or a stream of its chunks: a pin split
    across two chunks is found as if the file were read whole.
    """
    chunks = [data] if isinstance(data, bytes) else data
    found: list[str] = []
    buffer = b""
    for chunk in chunks:
        buffer += chunk
        # A match starting before `settled` is complete: it cannot grow past the buffer.
        settled = len(buffer) - _DEX_PIN_MAX
        keep = max(settled, 0)
        for match in _DEX_PIN.finditer(buffer):
            if match.start() >= settled:
                break
            found.append(match.group(0).decode("ascii"))
            keep = max(keep, match.end())
        buffer = buffer[keep:]
    found.extend(m.group(0).decode("ascii") for m in _DEX_PIN.finditer(buffer))
    return list(dict.fromkeys(found))


def read_apk(data: bytes, *, name: str, limits: ArchiveLimits | None = None) -> ApkContents:
    """Read the APK bytes ``data``; ``name`` is how findings refer to it (``app.apk``).

    Raises :class:`ConfigError` when ``data`` is not an APK (not a zip, an entry
    name listed twice, no readable manifest) or reading it would pass ``limits``.
    """
    return apk_contents(open_zip(data, name=name, kind="an APK", limits=limits), data)


def apk_contents(archive: ZipReader, data: bytes) -> ApkContents:
    """Read the APK ``data`` opened as ``archive`` (:func:`open_zip`), within its limits.

    :func:`read_apk` in two steps, for a caller that watches ``archive.inflated``.
    """
    apk_class, printer = _mobile()
    name = archive.name
    dex_files = _check_entries(archive)
    apk = _manifest(apk_class, archive, data)

    def attribute(attr: str) -> str | None:
        value = apk.get_attribute_value("application", attr)
        return str(value) if value is not None else None

    config_path, config_xml = _network_security_config(apk, archive, attribute, printer, name)
    code_pins: list[tuple[str, str]] = []
    for entry in dex_files:
        code_pins.extend((pin, entry) for pin in scan_dex(archive.chunks(entry)))
    facts = ApkFacts(
        path=name,
        package=apk.get_package() or None,
        debuggable=bool(_flag(attribute("debuggable"))),
        uses_cleartext=_flag(attribute("usesCleartextTraffic")),
        config_path=config_path,
        code_pins=tuple(code_pins),
    )
    return ApkContents(facts=facts, config_xml=config_xml)


def _check_entries(archive: ZipReader) -> list[str]:
    """What makes it an APK pinset reads: a manifest, and not too many dex files (returned)."""
    names = set(archive.names())
    if "AndroidManifest.xml" not in names:
        raise ConfigError("not an APK: no AndroidManifest.xml", source=archive.name)
    dex_files = sorted(n for n in names if _DEX_NAME.fullmatch(n))
    if len(dex_files) > archive.limits.max_dex_files:
        raise ConfigError(
            f"the APK holds {len(dex_files)} dex files, more than the "
            f"{archive.limits.max_dex_files} pinset reads (a crafted archive, or an unusually "
            "large app)",
            source=archive.name,
            hint="check the archive with unzip -l; if the app really has that many, raise "
            "the limit: pinset audit --max-dex-files N",
        )
    # pyaxmlparser reads these two itself: check them first (size, CRC, encryption),
    # and count its own inflation of them against the archive's limit.
    for entry in ("AndroidManifest.xml", "resources.arsc"):
        if entry in names:
            archive.read(entry)
            archive.charge(entry)
    return dex_files


def _manifest(apk_class: Any, archive: ZipReader, data: bytes) -> Any:
    """The APK as pyaxmlparser reads it; a manifest it cannot decode is an error."""
    # pyaxmlparser logs every oddity of real-world manifests at warning level.
    logging.getLogger("pyaxmlparser").setLevel(logging.ERROR)
    try:
        apk = apk_class(data, raw=True)
    except Exception as exc:  # pyaxmlparser raises bare exceptions for damaged files
        raise ConfigError(f"cannot decode the APK manifest: {exc}", source=archive.name) from None
    if not apk.is_valid_APK():
        # pyaxmlparser only logs a manifest it cannot decode; read on and the APK
        # would pass as one without a network security config.
        raise ConfigError(
            "cannot decode the APK manifest: not binary XML with a <manifest> root",
            source=f"{archive.name}!/AndroidManifest.xml",
            hint="give the APK as the build produced it (aapt2 writes binary XML)",
        )
    return apk


def _network_security_config(
    apk: Any, archive: ZipReader, attribute: Any, printer: Any, name: str
) -> tuple[str | None, str | None]:
    reference = attribute("networkSecurityConfig")
    if reference is None:
        return None, None
    path = _resolve(apk, reference)
    if path is None or path not in archive.names():
        raise ConfigError(
            f"the manifest's networkSecurityConfig {reference} does not resolve to a file",
            source=f"{name}!/AndroidManifest.xml",
            key="android:networkSecurityConfig",
            hint="rebuild the APK; the resource table and the manifest disagree",
        )
    raw = archive.read(path)
    try:
        decoded = printer(raw)
        valid = decoded.is_valid()
        text = decoded.get_xml(pretty=True) if valid else b""
    except Exception as exc:  # damaged binary XML
        raise ConfigError(f"cannot decode binary XML: {exc}", source=f"{name}!/{path}") from None
    if not valid:
        if raw.lstrip().startswith(b"<"):  # a plain-text XML file in an unusual build
            return path, raw.decode("utf-8", "replace")
        raise ConfigError("not binary XML", source=f"{name}!/{path}")
    return path, text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)


def _resolve(apk: Any, reference: str) -> str | None:
    """The file path of a ``@7F0B0001``-style resource reference (default configuration first)."""
    if reference.startswith("@") and not reference.startswith("@7") and "/" in reference:
        # Already symbolic (@xml/name): only a plain-text manifest says that.
        kind, _, entry = reference[1:].partition("/")
        return f"res/{kind.split(':')[-1]}/{entry}.xml"
    try:
        rid = int(reference.lstrip("@"), 16)
        configs = apk.get_android_resources().get_resolved_res_configs(rid)
    except Exception:  # an id the table does not hold
        return None
    paths = [str(value) for _config, value in configs if isinstance(value, str)]
    return paths[0] if paths else None
