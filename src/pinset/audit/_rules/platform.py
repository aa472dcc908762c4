"""Audit rules about the artefact: configs that do not load, APK flags, pins in code."""

from __future__ import annotations

from collections.abc import Iterator

from pinset.audit._model import Context, Finding, Subject
from pinset.audit._rules.catalog import finding
from pinset.errors import PinFormatError
from pinset.pins import Pin

__all__ = [
    "cleartext_permitted",
    "config_error",
    "debug_overrides",
    "debuggable_release",
    "invalid_pin",
    "pins_in_code_differ",
]


def config_error(subject: Subject, context: Context) -> Iterator[Finding]:
    """The config did not load: the importer's message, file and line."""
    if subject.error is not None:
        yield subject.error


def _code_pins(subject: Subject) -> tuple[dict[Pin, str], list[tuple[str, str]]]:
    valid: dict[Pin, str] = {}
    invalid: list[tuple[str, str]] = []
    if subject.apk is None:
        return valid, invalid
    for text, where in subject.apk.code_pins:
        try:
            valid.setdefault(Pin.parse(text), where)
        except PinFormatError:
            invalid.append((text, where))
    return valid, invalid


def invalid_pin(subject: Subject, context: Context) -> Iterator[Finding]:
    """``sha256/…`` strings in the APK's code that are not valid SHA-256 SPKI pins."""
    for text, where in _code_pins(subject)[1]:
        yield finding(
            "invalid-pin",
            f"{text!r} in {where} is not a valid SHA-256 SPKI pin: a client using it "
            "cannot match any key",
            source=f"{subject.target}!/{where}",
        )


def debuggable_release(subject: Subject, context: Context) -> Iterator[Finding]:
    """An APK with ``android:debuggable="true"``: its debug-overrides are in force."""
    if subject.apk is None or not subject.apk.debuggable:
        return
    # What its <debug-overrides> then do is debug-overrides-live's finding.
    yield finding(
        "debuggable-release",
        f"{subject.target} is debuggable",
        source=f"{subject.target}!/AndroidManifest.xml",
    )


def _debug_anchors(subject: Subject) -> tuple[list[str], bool, int | None] | None:
    """The debug anchors as written, whether any overrides the pins, and the line (or None)."""
    imported = subject.imported
    if imported is None:
        return None
    for domain in imported.domains:
        # Android's own view: system and user sources too, which a policy cannot name.
        if domain.scope == "debug" and domain.trust_anchors:
            anchors = [f'src="{a.src}"' for a in domain.trust_anchors]
            override = any(a.override_pins for a in domain.trust_anchors)
            return anchors, override, domain.line
    debug = imported.policy.debug_overrides
    if debug is None or not debug.trust_anchors:
        return None
    line = debug.lines[0] if debug.lines else None
    return list(debug.trust_anchors), debug.override_pins, line


def debug_overrides(subject: Subject, context: Context) -> Iterator[Finding]:
    """Debug overrides: an error in a debuggable APK (live for every user), else a reminder.

    Android applies ``<debug-overrides>`` only when ``android:debuggable`` is true;
    pinset applies ``[debug-overrides]`` only in ``ssl_context(policy, debug=True)``.
    """
    found = _debug_anchors(subject)
    if found is None:
        return
    anchors, override, line = found
    what = ", ".join(anchors) + (" with overridePins (pins bypassed)" if override else "")
    apk = subject.apk
    if apk is not None and apk.debuggable:
        yield finding(
            "debug-overrides-live",
            f"{subject.target} is debuggable, so its <debug-overrides> apply on every install: "
            f"it trusts {what}",
            source=subject.source,
            line=line,
        )
        return
    if apk is not None:
        message = (
            f"<debug-overrides> ({what}) are inactive in {subject.target}: Android applies them "
            'only when android:debuggable="true", and this build is not debuggable'
        )
    elif subject.format in ("pinset", "pinset-json"):
        message = (
            f"[debug-overrides] ({what}) are honoured only by ssl_context(policy, debug=True); "
            "the default context ignores them"
        )
    else:
        message = (
            f"<debug-overrides> ({what}) apply only when the app is debuggable: audit the "
            "release APK (pinset audit app.apk) to confirm it is not"
        )
    yield finding("debug-overrides", message, source=subject.source, line=line)


def cleartext_permitted(subject: Subject, context: Context) -> Iterator[Finding]:
    """``usesCleartextTraffic="true"`` in the manifest, for pinned domains the config leaves unset.

    The network security config's own ``cleartextTrafficPermitted`` is reported
    by the importer; the manifest attribute is the default it falls back to.
    """
    apk = subject.apk
    if apk is None or apk.uses_cleartext is not True or subject.imported is None:
        return
    pinned = {r.name for r in subject.imported.policy.rules if not r.exclude}
    for domain in subject.imported.domains:
        if (
            domain.scope == "domain"
            and domain.name in pinned
            and domain.cleartext_permitted is None
        ):
            yield finding(
                "cleartext-permitted",
                f'{domain.name} is pinned, but the manifest\'s usesCleartextTraffic="true" '
                "permits cleartext HTTP to it",
                domain=domain.name,
                fix='set android:usesCleartextTraffic="false" or cleartextTrafficPermitted="false"',
                source=f"{subject.target}!/AndroidManifest.xml",
            )


def pins_in_code_differ(subject: Subject, context: Context) -> Iterator[Finding]:
    """Pins compiled into the code that no config domain carries, and config pins the code lacks.

    The reverse direction is only checked when the code carries pins at all: an
    app that pins only through its network security config is the normal case.
    """
    code, _invalid = _code_pins(subject)
    if not code:
        return
    config: dict[Pin, str] = {}
    if subject.imported is not None:
        for rule in subject.imported.policy.rules:
            for pin in rule.pins:
                config.setdefault(pin, rule.pattern)
    for pin, where in code.items():
        if pin not in config:
            yield finding(
                "pins-in-code-differ",
                f"{pin} in {where} is pinned in code but no network security config domain "
                "carries it",
                source=f"{subject.target}!/{where}",
            )
    for pin, pattern in config.items():
        if pin not in code and not pin.is_placeholder:
            yield finding(
                "pins-in-code-differ",
                f"{pattern}: {pin} is in the network security config but not in the code's pins",
                domain=pattern,
                source=subject.source,
                line=subject.lines.get(pattern),
            )
