"""Turn an audit target (a file's bytes and name) into the configs the rules look at.

A target is a pinset policy, any format :mod:`pinset.formats` reads, an Android
``.apk`` or an iOS ``.ipa``. A config that does not load becomes a
``config-error`` finding (the importer's message, file and line); a target that
cannot be read at all (not a zip, unknown format) is :class:`Unreadable`.
"""

from __future__ import annotations

from pinset import formats
from pinset.audit._apk import ArchiveLimits, read_apk
from pinset.audit._ipa import read_ipa
from pinset.audit._model import ApkFacts, Finding, Subject, Unreadable
from pinset.errors import PinsetError

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
    return Subject(target=target, source=source, imported=imported, apk=apk)


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
