"""Turn an audit target (a file's bytes and name) into the configs the rules look at.

A target is a pinset policy, any format :mod:`pinset.formats` reads, an Android
``.apk`` or an iOS ``.ipa``. A config that does not load becomes a
``config-error`` finding (the importer's message, file and line); a target that
cannot be read at all (not a zip, unknown format) is :class:`Unreadable`.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping

from pinset import formats
from pinset.audit._apk import ArchiveLimits, read_apk
from pinset.audit._ipa import read_ipa
from pinset.audit._model import ApkFacts, Finding, Subject, Unreadable
from pinset.errors import PinsetError
from pinset.hosts import canonical_host
from pinset.policyfile._positions import Locator

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = ["config_error", "read_target"]

_ZIP = b"PK\x03\x04"


def config_error(exc: PinsetError, source: str) -> Finding:
    """The ``config-error`` finding for a config that does not load."""
    message = exc.message
    if exc.key and exc.key not in message:
        message += f" (key {exc.key!r})"
    return Finding(
        "config-error",
        "error",
        message,
        fix=exc.hint or "fix the config so that it loads (pinset import shows the same error)",
        source=exc.source or source,
        line=exc.line,
        column=exc.column,
    )


def read_target(
    data: bytes, name: str, *, limits: ArchiveLimits | None = None
) -> list[Subject] | Unreadable:
    """The configs in target ``name`` (its bytes ``data``), or why it cannot be read.

    ``limits`` bound what reading an APK or IPA may inflate.
    """
    lower = name.lower()
    is_zip = data.startswith(_ZIP)
    try:
        if lower.endswith(".apk") or (is_zip and b"AndroidManifest.xml" in data[:1_000_000]):
            return _apk_subjects(data, name, limits)
        if lower.endswith(".ipa") or (is_zip and b"Payload/" in data[:1_000_000]):
            return _ipa_subjects(data, name, limits)
    except PinsetError as exc:
        return Unreadable(name, exc.message, exc.hint)
    if is_zip:
        return Unreadable(name, "a zip archive that is neither an APK nor an IPA")
    try:
        fmt = formats.detect(data, name)
    except PinsetError as exc:
        return Unreadable(name, exc.message, exc.hint)
    return [_config_subject(data, name, fmt)]


def _config_subject(
    data: bytes | str,
    source: str,
    fmt: str,
    *,
    target: str | None = None,
    apk: ApkFacts | None = None,
) -> Subject:
    target = source if target is None else target
    try:
        imported = formats.loads(data, format=fmt, source=source)
    except PinsetError as exc:
        return Subject(target=target, source=source, error=config_error(exc, source), apk=apk)
    lines: Mapping[str, int] = imported.lines
    written: tuple[tuple[str, str, int | None], ...] = ()
    if fmt == "pinset":
        text = data.decode("utf-8-sig", "replace") if isinstance(data, bytes) else data
        lines, written = _native_positions(text)
    return Subject(
        target=target,
        source=source,
        imported=imported,
        apk=apk,
        lines=lines,
        written_pins=written,
    )


def _native_positions(text: str) -> tuple[dict[str, int], tuple[tuple[str, str, int | None], ...]]:
    """Line of each domain and each pin as written in a native policy (TOML or JSON)."""
    is_json = text.lstrip().startswith("{")
    try:
        data = json.loads(text) if is_json else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError):  # it loaded before; positions are a courtesy
        return {}, ()
    where = Locator(text, json=is_json)
    lines: dict[str, int] = {}
    written: list[tuple[str, str, int | None]] = []
    domains = data.get("domain", []) if isinstance(data, dict) else []
    for index, entry in enumerate(domains if isinstance(domains, list) else []):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            continue
        pattern = _rule_pattern(entry["name"])
        if pattern is None:
            continue
        line = where.key(index, "name")
        if line is not None:
            lines[pattern] = line
        pins = entry.get("pins", [])
        for position, pin in enumerate(pins if isinstance(pins, list) else []):
            if isinstance(pin, str):
                written.append((pattern, pin, where.item(index, "pins", position)))
    return lines, tuple(written)


def _rule_pattern(written: str) -> str | None:
    """The pattern of the rule a native ``name`` becomes: ``**.`` dropped, ``*.`` kept.

    The name is canonicalised by :func:`canonical_host`, as the policy reader does, so
    that ``Bücher.example`` is found under the rule's own name (``xn--bcher-kva.example``).
    """
    name = written.strip()
    one_label = name.startswith("*.")
    name = name[3:] if name.startswith("**.") else name[2:] if one_label else name
    try:
        host = canonical_host(name)
    except PinsetError:  # the policy loaded, so this cannot happen; positions are a courtesy
        return None
    return f"*.{host}" if one_label else host


def _apk_subjects(data: bytes, name: str, limits: ArchiveLimits | None) -> list[Subject]:
    contents = read_apk(data, name=name, limits=limits)
    facts = contents.facts
    if contents.config_xml is None:
        return [Subject(target=name, source=name, apk=facts)]
    source = f"{name}!/{facts.config_path}"
    return [_config_subject(contents.config_xml, source, "android", target=name, apk=facts)]


def _ipa_subjects(data: bytes, name: str, limits: ArchiveLimits | None) -> list[Subject]:
    contents = read_ipa(data, name=name, limits=limits)
    source = f"{name}!/{contents.plist_path}"
    subjects = []
    if contents.has_ats_pins:
        subjects.append(_config_subject(contents.plist, source, "ios-ats", target=name))
    if contents.has_trustkit:
        subjects.append(_config_subject(contents.plist, source, "trustkit", target=name))
    # An app without pins is readable; it simply has nothing to audit.
    return subjects or [Subject(target=name, source=source)]
