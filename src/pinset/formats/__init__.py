"""Every pinning format pinset reads and writes, by name.

Each format is a module with ``loads(data, *, source=None) -> Imported``,
``dumps(policy, **options) -> str | bytes`` and ``sniff(data: bytes) -> bool``
(see :mod:`pinset.formats._model`). Modules are imported on first use, so a
missing optional dependency only affects its own format::

    imported = pinset.formats.load("network_security_config.xml")   # a path; format detected
    imported = pinset.formats.loads(data, format="android", source="nsc.xml")   # the content
    xml = pinset.formats.dumps(imported.policy, "android")
    plist = pinset.formats.render_bundle(data, "trustkit", trusted_keys=[...], embedded=policy,
                                         now=now)   # a verified pin-set bundle, applied

As everywhere in pinset, ``load`` takes a path, ``loads`` the content, and ``dumps``
returns the text (or bytes).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import importlib
import os
import warnings
from collections.abc import Iterable
from types import ModuleType
from typing import TYPE_CHECKING, Any

from pinset.errors import ConfigError, PinsetError
from pinset.formats._model import (
    ExportError,
    ExportWarning,
    Finding,
    Imported,
    PlatformDomain,
    TrustAnchor,
    TrustKitSettings,
    WrittenPins,
)
from pinset.policy import Policy

if TYPE_CHECKING:
    from pinset.updates import TrustedKey

__all__ = [
    "ALIASES",
    "CT_ON_PLATFORM",
    "FORMATS",
    "RUNTIME_UPDATES",
    "ExportError",
    "ExportWarning",
    "Finding",
    "Imported",
    "PlatformDomain",
    "TrustAnchor",
    "TrustKitSettings",
    "WrittenPins",
    "detect",
    "dumps",
    "get",
    "load",
    "loads",
    "render_bundle",
]

# name -> module. The order is the order detect() tries them in: the most
# specific sniffers first (a TrustKit XML is also a network security config).
FORMATS: dict[str, str] = {
    "pinset": "pinset.formats._native",
    "trustkit-android": "pinset.formats._android.trustkit_android",
    "android": "pinset.formats._android",
    "trustkit": "pinset.formats._apple.trustkit",
    "ios-ats": "pinset.formats._apple.ios_ats",
    "okhttp": "pinset.formats._okhttp",
    "hpkp": "pinset.formats._hpkp",
}

# Export-only names: a format plus fixed dumps() options.
ALIASES: dict[str, tuple[str, dict[str, Any]]] = {
    "pinset-json": ("pinset", {"json": True}),
    "trustkit-swift": ("trustkit", {"swift": True}),
}

#: Per export format: how an app takes a new policy at run time, or ``None`` when it
#: cannot (the file is compiled or signed into the app, and only a release changes it).
RUNTIME_UPDATES: dict[str, str | None] = {
    "pinset": "pinset.updates in Python: ssl_context(policy, updates=UpdateSource(...))",
    "pinset-json": "pinset.updates in Python; or an app that builds its pinner from this JSON",
    "trustkit": "TrustKit (iOS, macOS) takes the TSKConfiguration dictionary in code: pass it to "
    "+initSharedInstanceWithConfiguration: at the next launch (once per run), or to "
    "-initWithConfiguration: for a new TrustKit instance",
    "trustkit-swift": None,  # source code: compiled into the app
    "okhttp": None,  # source code; OkHttp's CertificatePinner.Builder itself takes pins at run time
    "android": None,  # res/xml/network_security_config.xml, compiled into the APK
    "trustkit-android": None,  # TrustKit-Android reads the same compiled XML resource
    "ios-ats": None,  # Info.plist NSPinnedDomains, part of the signed app bundle
    "hpkp": "a server header: the server sends the new value with its next response",
}


def _unknown(name: str) -> ConfigError:
    names = [*FORMATS, *ALIASES]
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.5)
    hint = f"did you mean {close[0]!r}?" if close else f"known formats: {', '.join(names)}"
    return ConfigError(f"unknown format {name!r}", key="format", hint=hint)


def get(name: str) -> ModuleType:
    """The module of format ``name``; :class:`ConfigError` if unknown or not installed."""
    if name not in FORMATS:
        raise _unknown(name)
    try:
        return importlib.import_module(FORMATS[name])
    except ImportError as exc:
        raise ConfigError(
            f"format {name!r} is not available: {exc}",
            key="format",
            hint="install pinset with the 'formats' extra: pip install 'pinset[formats]'",
        ) from None


def available() -> list[str]:
    """The names of the formats whose modules import."""
    names = []
    for name in FORMATS:
        try:
            get(name)
        except ConfigError:
            continue
        names.append(name)
    return names


def detect(data: str | bytes, filename: str | None = None) -> str:
    """The name of the format ``data`` is in, judged from its content.

    ``filename`` is only used in the error message. Raises :class:`ConfigError`
    when no format recognises the content.
    """
    if isinstance(data, str):
        data = data.encode("utf-8")
    for name in FORMATS:
        try:
            module = get(name)
        except ConfigError:
            continue
        sniff = getattr(module, "sniff", None)
        if sniff is not None and sniff(data):
            return name
    raise ConfigError(
        "cannot tell which pinning format this is",
        source=filename,
        key="format",
        hint=f"name it with --format (one of: {', '.join(FORMATS)})",
    )


def load(path: str | os.PathLike[str], *, format: str | None = None, **options: Any) -> Imported:
    """Import the file at ``path`` in ``format`` (detected from the content when ``None``).

    ``options`` go to the format's ``loads`` (``host=`` for ``hpkp``); errors name the file.
    """
    source = os.fspath(path)
    try:
        with open(source, "rb") as file:
            data = file.read()
    except OSError as exc:
        raise ConfigError(
            f"cannot read {source}: {exc.strerror or exc}",
            source=source,
            hint="check the path",
        ) from None
    return loads(data, format=format, source=source, **options)


def loads(
    data: str | bytes,
    *,
    format: str | None = None,
    source: str | None = None,
    **options: Any,
) -> Imported:
    """Import ``data`` in ``format`` (detected from the content when ``None``).

    ``options`` go to the format's ``loads`` (``host=`` for ``hpkp``).
    """
    if format is None:
        format = detect(data, source)
    module = get(format)
    try:
        result = module.loads(data, source=source, **options)
    except PinsetError as exc:
        raise exc.with_location(source=source) from None
    assert isinstance(result, Imported)
    return result


#: Per platform format that cannot say "check CT, pin nothing": what it has for
#: Certificate Transparency. A CT-only rule (``require-ct`` without pins) is left out of
#: them, with an :class:`ExportWarning` that says this. ``pinset`` writes it as it is;
#: ``android`` as a domain-config with ``<certificateTransparency enabled="true"/>`` and
#: no pin-set (Android 16 and later; older versions skip the element).
CT_ON_PLATFORM: dict[str, str] = {
    "ios-ats": "iOS enforces Apple's CT policy on every publicly trusted certificate by "
    "itself (iOS 12.1.1 and later); NSRequiresCertificateTransparency is obsolete",
    "trustkit": "TrustKit has no CT setting; iOS enforces Apple's CT policy on every publicly "
    "trusted certificate by itself (iOS 12.1.1 and later)",
    "trustkit-android": "TrustKit-Android has no CT setting; the android format writes "
    'Android\'s own <certificateTransparency enabled="true"/> (Android 16 and later)',
    "okhttp": "OkHttp's CertificatePinner has no CT check",
    "hpkp": "an HPKP header has no CT directive",
}


def dumps(policy: Policy, format: str, **options: Any) -> str | bytes:
    """Export ``policy`` in ``format`` (may raise :class:`ExportError` or warn).

    A CT-only rule (``require-ct`` and no pins) is written by the ``pinset`` and
    ``android`` formats; the others leave it out with an :class:`ExportWarning` (never
    an empty pin set, which a platform would read as "pin nothing" or "refuse everything").
    """
    if format in ALIASES:
        format, fixed = ALIASES[format]
        options = {**fixed, **options}
    module = get(format)
    if format in CT_ON_PLATFORM:
        policy = _without_ct_only(policy, format)
    result = module.dumps(policy, **options)
    assert isinstance(result, str | bytes)
    return result


def _without_ct_only(policy: Policy, format: str) -> Policy:
    """``policy`` less its CT-only rules, each left out with an :class:`ExportWarning`."""
    ct_only = [rule for rule in policy.rules if rule.ct_only]
    for rule in ct_only:
        warnings.warn(
            f"{rule.pattern} requires Certificate Transparency and pins no key: {format} "
            f"cannot express that, so it is not written ({CT_ON_PLATFORM[format]})",
            ExportWarning,
            stacklevel=3,
        )
    if not ct_only:
        return policy
    return dataclasses.replace(policy, rules=tuple(r for r in policy.rules if not r.ct_only))


def render_bundle(
    data: bytes,
    format: str,
    *,
    trusted_keys: Iterable[TrustedKey],
    embedded: Policy,
    now: dt.datetime,
    app_id: str | None = None,
    stored_version: int | None = None,
    **options: Any,
) -> str | bytes:
    """The policy ``embedded`` with the signed bundle ``data`` applied, written in ``format``.

    The bundle is checked first as :func:`pinset.updates.verify_bundle` checks it (keys,
    time, app, version, what the embedded policy allows); a refused bundle is a
    :class:`pinset.updates.BundleError` and nothing is written. A domain the kill switch
    turns off is report-only where the format can say so (TrustKit, pinset) and left out
    where it cannot (Android, OkHttp, App Transport Security). :data:`RUNTIME_UPDATES`
    says which formats an app can take without a release. ``options`` go to the writer.
    """
    from pinset.formats._bundle import bundle_policy  # loads pinset.updates on first use

    policy = bundle_policy(
        data,
        format,
        trusted_keys=trusted_keys,
        embedded=embedded,
        now=now,
        app_id=app_id,
        stored_version=stored_version,
    )
    return dumps(policy, format, **options)
