"""The fuzz targets: one function per parser that takes untrusted bytes, and its seeds.

Each target feeds ``data`` to one parser and lets through only the two outcomes the
parser promises: a valid result (checked for the invariant that names it valid) or
the parser's refusal with a message (a :class:`~pinset.errors.PinsetError`; the
collector's :class:`ReportError` and :class:`Refused`, which become a 400/413 with that
message). Anything else escapes and is a find. The same functions run two ways:

* ``scripts/fuzz_atheris.py TARGET`` runs one under atheris (coverage-guided, libFuzzer
  bounding time and memory per input), ``make fuzz`` runs them all;
* ``tests/test_fuzz_targets.py`` replays each over its seeds and the committed finds in
  ``tests/fixtures/fuzz/TARGET/``, with no randomness, in ``make test``.

Seeds come from ``tests/fixtures`` (real apps' configs, real reporters' bodies, the
APK/IPA fixtures) and from exports of one sample policy in every format.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import json
import plistlib
import re
import warnings
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests._bundles import ED_KEY, EMBEDDED, NOW, bundle, signed

from pinset import formats, policyfile
from pinset.audit import _targets as audit_targets
from pinset.audit._apk import ArchiveLimits, read_apk
from pinset.audit._model import Unreadable
from pinset.collector._ingest import Refused, read_json
from pinset.collector._normalize import NormalizedReport, ReportError, normalize
from pinset.collector._tallies import TallyBatch, parse_tallies
from pinset.errors import PinsetError
from pinset.formats import _android as android
from pinset.formats import _hpkp as hpkp
from pinset.formats import _okhttp as okhttp
from pinset.formats._android import trustkit_android
from pinset.formats._apple import ios_ats, trustkit
from pinset.formats._model import ExportWarning, Imported
from pinset.pins import Pin
from pinset.policy import DomainRule, Policy
from pinset.updates import REASONS, apply_bundle, verify_bundle
from pinset.updates._changes import changes_of
from pinset.updates._document import parse_payload

__all__ = ["FINDS", "FIXTURES", "TARGETS", "Target", "finds", "refused"]

FIXTURES = Path(__file__).parent / "fixtures"
FINDS = FIXTURES / "fuzz"
SOURCE = "fuzzed"
# Small archive limits: a fuzzed zip may claim any size; a few MB is all a seed needs.
LIMITS = ArchiveLimits(max_entry=4 * 1024 * 1024, max_total=8 * 1024 * 1024, max_dex_files=8)
RECEIVED = 1_796_558_400  # 2026-12-06, the collector's "now" for fuzzed reports
MAX_BODY = 64 * 1024  # the collector's default max_body


@dataclass(frozen=True, slots=True)
class Target:
    """A parser under fuzzing: ``run(data)`` raises only on a find; ``seeds()`` start it."""

    name: str
    parser: str  # what it feeds, for docs/security.md
    run: Callable[[bytes], None]
    seeds: Callable[[], list[tuple[str, bytes]]]


def refused(exc: PinsetError) -> None:
    """A refusal is allowed when it says what is wrong (and its diagnostics render)."""
    if not exc.message.strip():
        raise AssertionError(f"{type(exc).__name__} without a message") from exc
    exc.diagnostics()


def _files(folder: str, pattern: str = "*") -> list[tuple[str, bytes]]:
    return [(p.name, p.read_bytes()) for p in sorted((FIXTURES / folder).glob(pattern))]


_A, _B, _C = (Pin(hashlib.sha256(f"fuzz-{n}".encode()).digest()) for n in "abc")
SAMPLE = Policy(
    rules=(
        DomainRule(
            "api.example.com",
            pins=(_A, _B),
            include_subdomains=True,
            expiration=dt.date(2031, 1, 2),
            report_uris=("https://r.example.net/pin",),
        ),
        DomainRule("cdn.example.org", pins=(_B, _C)),
    )
)
# Android and pinset write exclusions; Apple's formats cannot.
EXCLUDING = Policy(rules=(*SAMPLE.rules, DomainRule("static.api.example.com", exclude=True)))


def _export(fmt: str, policy: Policy = SAMPLE) -> bytes:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExportWarning)
        text = formats.dumps(policy, fmt)
    return text.encode() if isinstance(text, str) else text


def _imported(result: Imported) -> None:
    assert isinstance(result, Imported)
    assert isinstance(result.policy, Policy)


# -- pin text ---------------------------------------------------------------------

_PIN_TEXT = re.compile(rb"sha256/[A-Za-z0-9+/=_-]{0,60}")


def _pin_seeds() -> list[tuple[str, bytes]]:
    seeds = [
        ("canonical", str(_A).encode()),
        ("unpadded", str(_A).rstrip("=").encode()),
        ("spaced", b"  sha256/ " + _A.b64.encode() + b" \n"),
        ("bare", _A.b64.encode()),
        ("hpkp", b'pin-sha256="' + _A.b64.encode() + b'"'),
        ("sha1", b"sha1/" + b"A" * 27 + b"="),
        ("hex", _A.hex.encode()),
        ("url-safe", str(_A).replace("+", "-").replace("/", "_").encode()),
    ]
    for name, data in _files("okhttp"):
        seeds += [(f"{name}-{i}", m.group(0)) for i, m in enumerate(_PIN_TEXT.finditer(data))][:3]
    return seeds


def run_pin(data: bytes) -> None:
    text = data.decode("utf-8", "replace")
    try:
        pin = Pin.parse(text, source=SOURCE, line=1)
    except PinsetError as exc:
        refused(exc)
        return
    assert len(pin.digest) == 32
    assert Pin.parse(str(pin)) == pin  # what it prints reads back as the same pin


# -- pinset.toml / pinset.json ----------------------------------------------------


_TOML_BLOCK = re.compile(r"```toml\n(.*?)```", re.S)


def _policy_seeds() -> list[tuple[str, bytes]]:
    """The sample policy in both formats, and every TOML example of the docs."""
    toml = policyfile.dumps(EXCLUDING).encode()
    seeds = [
        ("sample.toml", b"T" + toml),
        ("sample.json", b"J" + policyfile.dumps(EXCLUDING, format="json").encode()),
        ("duplicate.toml", b"T" + toml + toml),
    ]
    for page in sorted((FIXTURES.parent.parent / "docs").glob("*.md")):
        for n, block in enumerate(_TOML_BLOCK.findall(page.read_text(encoding="utf-8"))):
            seeds.append((f"{page.stem}-{n}.toml", b"T" + block.encode()))
    return seeds


def run_policy(data: bytes) -> None:
    """First byte: ``J`` reads JSON, anything else TOML; the rest is the file."""
    fmt = "json" if data[:1] == b"J" else "toml"
    text = data[1:].decode("utf-8", "replace")
    try:
        read = policyfile.read_policy(text, format=fmt, source=SOURCE)
    except PinsetError as exc:
        refused(exc)
        return
    policy = read.policy
    assert isinstance(policy, Policy)
    # A policy that loaded is written out, in either format, and reads back as itself.
    for out in ("toml", "json"):
        again = policyfile.loads(policyfile.dumps(policy, format=out), format=out)
        assert again == policy, (out, policy, again)


# -- Android network security config (and TrustKit-Android's) ---------------------


def _android_seeds() -> list[tuple[str, bytes]]:
    return [
        *_files("corpus/android-nsc", "*.xml"),
        *_files("corpus/android-nsc-nopin", "*.xml"),
        ("export-android.xml", _export("android", EXCLUDING)),
        ("export-trustkit-android.xml", _export("trustkit-android", EXCLUDING)),
    ]


def run_android(data: bytes) -> None:
    for module in (android, trustkit_android):
        try:
            _imported(module.loads(data, source=SOURCE))
        except PinsetError as exc:
            refused(exc)


# -- plists: Info.plist (ATS) and TrustKit, XML and binary --------------------------


def _plist_seeds() -> list[tuple[str, bytes]]:
    seeds = _files("corpus/ios-plist", "*.plist")
    seeds += [("export-ios-ats.plist", _export("ios-ats")), ("trustkit", _export("trustkit"))]
    binary = []
    for name, data in seeds:
        try:
            value = plistlib.loads(data)
        except Exception:  # noqa: S112 - an export that is not a plist (TrustKit code) is skipped
            continue
        binary.append((f"{name}.bin", plistlib.dumps(value, fmt=plistlib.FMT_BINARY)))
    return seeds + binary


def run_plist(data: bytes) -> None:
    for module in (ios_ats, trustkit):
        try:
            _imported(module.loads(data, source=SOURCE))
        except PinsetError as exc:
            refused(exc)


# -- OkHttp CertificatePinner source ----------------------------------------------


def _okhttp_seeds() -> list[tuple[str, bytes]]:
    return [*_files("okhttp"), ("export.kt", _export("okhttp"))]


def run_okhttp(data: bytes) -> None:
    try:
        _imported(okhttp.loads(data, source=SOURCE))
    except PinsetError as exc:
        refused(exc)


# -- HPKP header --------------------------------------------------------------------


def _hpkp_seeds() -> list[tuple[str, bytes]]:
    # RFC 7469 section 2.1.5's examples (their pins), and one with a Host: line.
    pin1 = b'pin-sha256="d6qzRu9zOECb90Uez27xWltNsj0e1Md7GkYYkVoZWmM="'
    pin2 = b'pin-sha256="E9CZ9INDbd+2eRQozYqqbQ2yXLVKB9+xcprMF+44U1g="'
    pin3 = b'pin-sha256="LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ="'
    given = [
        b"Public-Key-Pins: max-age=3000; " + pin1 + b"; " + pin2,
        b"Public-Key-Pins: max-age=2592000; " + pin2 + b"; " + pin3 + b"; "
        b'report-uri="http://example.com/pkp-report"',
        b"Public-Key-Pins-Report-Only: max-age=2592000; " + pin2 + b"; " + pin3 + b"; "
        b'report-uri="https://other.example.net/pkp-report"',
        b"Public-Key-Pins: " + pin1 + b"; " + pin2 + b"; max-age=259200",
        _export("hpkp", Policy(rules=SAMPLE.rules[:1])),
    ]
    host_line = (
        b"Host: api.example.com\r\nPublic-Key-Pins: max-age=5184000; includeSubDomains; "
        + pin1
        + b"; "
        + pin2
    )
    return [(f"header-{n}", b"\x00" + h) for n, h in enumerate(given)] + [
        ("host-line", b"\x01" + host_line)
    ]


def run_hpkp(data: bytes) -> None:
    """First byte odd: the host comes from the text's ``Host:`` line; even: given."""
    host = None if data[:1] and data[0] & 1 else "example.com"
    try:
        _imported(hpkp.loads(data[1:], source=SOURCE, host=host))
    except PinsetError as exc:
        refused(exc)


# -- signed pin-set bundles ---------------------------------------------------------

TRUSTED = [ED_KEY.public_key()]


def _bundle_seeds() -> list[tuple[str, bytes]]:
    document = bundle()
    payload = json.loads(document)["payload"]
    raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    disabled = json.loads(bundle(disable=["cdn.example.com"]))["payload"]
    return [
        ("document", b"D" + document),
        ("payload", b"P" + raw),
        ("disable", b"D" + bundle(disable=["cdn.example.com"])),
        ("disable-payload", b"P" + base64.urlsafe_b64decode(disabled + "=" * (-len(disabled) % 4))),
    ]


def run_bundle(data: bytes) -> None:
    """``D…``: the bytes are the document as received; else they are a payload, signed here.

    Signing with the trusted key takes the payload past the signature, so the payload
    parser and the bounds on what a bundle may change see fuzzed input too.
    """
    document = data[1:] if data[:1] == b"D" else signed(data[1:])
    result = verify_bundle(document, trusted_keys=TRUSTED, now=NOW, embedded=EMBEDDED)
    if result.valid:
        assert result.reason is None
        apply_bundle(EMBEDDED, result)
    else:
        assert result.reason in REASONS, result.reason
        assert result.detail
    if data[:1] == b"P":  # the payload parser on its own, with no embedded policy
        try:
            changes_of(parse_payload(data[1:]), None)
        except PinsetError as exc:
            refused(exc)


# -- report and tally bodies (the collector) ----------------------------------------


def _report_seeds() -> list[tuple[str, bytes]]:
    tally = {
        "app_id": "com.example.app",
        "app_version": "1.2.3",
        "pin_set_version": "7",
        "interval_start": RECEIVED - 3600,
        "interval_seconds": 3600,
        "domains": [
            {"domain": "api.example.com", "pinned": 120, "mismatch": 2},
            {"domain": "cdn.example.org", "report_only_mismatch": 1, "expired": 0},
        ],
    }
    return [*_files("reports", "*.json"), ("tally.json", json.dumps(tally).encode())]


def _collector_refusal(detail: str, reason: str, status: int) -> None:
    """The collector's refusals are a 400 or 413 with a reason id and a detail."""
    if not (detail.strip() and reason and status in (400, 413)):
        raise AssertionError(f"a refusal that says nothing: {status} {reason!r} {detail!r}")


def _drive(coroutine: Any) -> Any:
    """The value of a coroutine that never waits (the body is in memory), without a loop."""
    try:
        coroutine.send(None)
    except StopIteration as stop:
        return stop.value
    coroutine.close()
    raise AssertionError("read_json waited on something")


async def _chunks(data: bytes) -> Any:
    for start in range(0, len(data), 4096):
        yield data[start : start + 4096]


def run_report(data: bytes) -> None:
    """The collector's reading of one POST body: JSON within the size limit, then both models."""
    try:
        decoded = _drive(read_json(MAX_BODY, str(len(data)), _chunks(data), "a report"))
    except Refused as exc:
        _collector_refusal(exc.detail, exc.error, exc.status)
        return
    try:
        report = normalize(decoded, received=RECEIVED)
        assert isinstance(report, NormalizedReport)
        json.dumps(report.extra)  # what is kept is stored as JSON
    except ReportError as exc:
        _collector_refusal(str(exc), exc.reason, 400)
    try:
        assert isinstance(parse_tallies(decoded, now=RECEIVED), TallyBatch)
    except ReportError as exc:
        _collector_refusal(str(exc), exc.reason, 400)


# -- APK and IPA archives -----------------------------------------------------------


def _archive_seeds() -> list[tuple[str, bytes]]:
    apks = [(name, b"A" + data) for name, data in _files("apk", "*.apk")]
    return apks + [(name, b"I" + data) for name, data in _files("ipa", "*.ipa")]


def run_archive(data: bytes) -> None:
    """First byte ``I``: the rest is read as ``app.ipa``, else as ``app.apk``, by the audit."""
    name = "app.ipa" if data[:1] == b"I" else "app.apk"
    result = audit_targets.read_target(data[1:], name, limits=LIMITS)
    if isinstance(result, Unreadable):
        assert result.message
    else:
        assert isinstance(result, list)


# The entries of release.apk a fuzzed binary XML can take the place of.
_APK_ENTRIES = ("AndroidManifest.xml", "resources.arsc", "res/xml/network_security_config.xml")


def _release_apk() -> dict[str, bytes]:
    with zipfile.ZipFile(FIXTURES / "apk" / "release.apk") as archive:
        return {name: archive.read(name) for name in archive.namelist()}


_RELEASE: dict[str, bytes] = {}


def _apk_with(entry: str, content: bytes) -> bytes:
    if not _RELEASE:
        _RELEASE.update(_release_apk())
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name, original in _RELEASE.items():
            archive.writestr(name, content if name == entry else original)
    return buffer.getvalue()


def _binary_xml_seeds() -> list[tuple[str, bytes]]:
    seeds = []
    for apk in sorted((FIXTURES / "apk").glob("*.apk")):
        with zipfile.ZipFile(apk) as archive:
            for name in archive.namelist():
                if name.startswith("res/"):
                    index = 2
                elif name in _APK_ENTRIES:
                    index = _APK_ENTRIES.index(name)
                else:
                    continue
                content = archive.read(name)
                seeds.append((f"{apk.stem}-{name.replace('/', '_')}", bytes([index]) + content))
    return seeds


def run_binary_xml(data: bytes) -> None:
    """The first byte picks the entry of ``release.apk`` to replace: manifest, resources, config."""
    if not data:
        return
    entry = _APK_ENTRIES[data[0] % len(_APK_ENTRIES)]
    try:
        contents = read_apk(_apk_with(entry, data[1:]), name="app.apk", limits=LIMITS)
    except PinsetError as exc:
        refused(exc)
        return
    if contents.config_xml is not None:
        try:
            _imported(android.loads(contents.config_xml, source=SOURCE))
        except PinsetError as exc:
            refused(exc)


TARGETS: dict[str, Target] = {
    t.name: t
    for t in (
        Target("pin", "`Pin.parse` (pin text)", run_pin, _pin_seeds),
        Target("policy", "`policyfile.read_policy` (TOML, JSON)", run_policy, _policy_seeds),
        Target("android", "Android NSC XML, TrustKit-Android XML", run_android, _android_seeds),
        Target("plist", "Info.plist ATS and TrustKit (XML, binary)", run_plist, _plist_seeds),
        Target("okhttp", "OkHttp `CertificatePinner` source", run_okhttp, _okhttp_seeds),
        Target("hpkp", "HPKP header", run_hpkp, _hpkp_seeds),
        Target("bundle", "`verify_bundle`, bundle payload", run_bundle, _bundle_seeds),
        Target("report", "collector report and tally bodies", run_report, _report_seeds),
        Target("archive", "APK / IPA zip (`audit` target reader)", run_archive, _archive_seeds),
        Target(
            "binary-xml", "APK binary XML (manifest, resources)", run_binary_xml, _binary_xml_seeds
        ),
    )
}


def finds(name: str) -> Iterator[tuple[str, bytes]]:
    """The committed inputs of target ``name``: what fuzzing found, kept as regression tests."""
    folder = FINDS / name
    if folder.is_dir():
        for path in sorted(folder.iterdir()):
            if path.is_file() and not path.name.startswith("."):
                yield path.name, path.read_bytes()
