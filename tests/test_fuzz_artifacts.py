"""Property tests: damaged APKs and IPAs are refused with a ConfigError, never a traceback.

Random bytes named ``.apk`` / ``.ipa``; the committed fixtures with entries
removed, truncated, bit-flipped or replaced; zip bombs (refused by the size
limit before anything is decompressed); path traversal names, nested
``Payload`` directories, two apps in one IPA, an Info.plist that is not a
plist. The readers raise only :class:`~pinset.errors.ConfigError` naming the
artefact; :func:`~pinset.audit._targets.read_target` never raises; and
``pinset audit`` exits 2 with a message, not a traceback.
"""

from __future__ import annotations

import io
import plistlib
import re
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from _zips import repeat_in_central_directory
from pinset.audit._apk import (
    MAX_DEX_FILES,
    MAX_ENTRY_SIZE,
    MAX_TOTAL_INFLATED,
    ArchiveLimits,
    apk_contents,
    open_zip,
    read_apk,
)
from pinset.audit._ipa import read_ipa
from pinset.audit._model import Unreadable
from pinset.audit._targets import read_target
from pinset.cli import main
from pinset.errors import ConfigError, PinsetError

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
FIXTURES = Path(__file__).parent / "fixtures"
APKS = {p.name: p.read_bytes() for p in sorted((FIXTURES / "apk").glob("*.apk"))}
IPA = (FIXTURES / "ipa" / "pinned.ipa").read_bytes()


def _entries(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def _zip(entries: dict[str, bytes] | list[tuple[str, bytes]]) -> bytes:
    out = io.BytesIO()
    items = entries.items() if isinstance(entries, dict) else entries
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, body in items:
            archive.writestr(name, body)
    return out.getvalue()


def _read(kind: str, data: bytes, name: str) -> None:
    """Read ``data``; a refusal must be a ConfigError naming the artefact."""
    reader = read_apk if kind == "apk" else read_ipa
    error: PinsetError | None = None
    try:
        reader(data, name=name)
    except PinsetError as exc:
        error = exc
    if error is not None:
        assert isinstance(error, ConfigError), repr(error)
        assert error.source is not None
        assert error.source.startswith(name), error.source
        assert error.message
    subjects = read_target(data, name)  # never raises
    if not isinstance(subjects, Unreadable):
        for subject in subjects:
            assert subject.target == name


# -- random and mutated archives -----------------------------------------------------


@pytest.mark.parametrize("kind", ["apk", "ipa"])
@FUZZ
@given(data=st.binary(max_size=400))
def test_random_bytes_named_like_an_artefact(kind: str, data: bytes) -> None:
    _read(kind, data, f"random.{kind}")


@pytest.mark.parametrize("kind", ["apk", "ipa"])
@settings(FUZZ, max_examples=150)
@given(draw=st.data())
def test_bit_flipped_and_truncated_archives(kind: str, draw: st.DataObject) -> None:
    data = bytearray(draw.draw(st.sampled_from(list(APKS.values()))) if kind == "apk" else IPA)
    if draw.draw(st.booleans()):
        for _ in range(draw.draw(st.integers(1, 6))):
            data[draw.draw(st.integers(0, len(data) - 1))] ^= 1 << draw.draw(st.integers(0, 7))
    else:
        data = data[: draw.draw(st.integers(0, len(data) - 1))]
    _read(kind, bytes(data), f"mutated.{kind}")


def _damage(body: bytes, draw: st.DataObject) -> bytes:
    how = draw.draw(st.sampled_from(["truncate", "flip", "empty", "junk", "text"]))
    if how == "truncate" and body:
        return body[: draw.draw(st.integers(0, len(body) - 1))]
    if how == "flip" and body:
        out = bytearray(body)
        for _ in range(draw.draw(st.integers(1, 8))):
            out[draw.draw(st.integers(0, len(out) - 1))] ^= 1 << draw.draw(st.integers(0, 7))
        return bytes(out)
    if how == "junk":
        return draw.draw(st.binary(max_size=64))
    if how == "text":
        return b"<manifest>not binary</manifest>"
    return b""


@settings(FUZZ, max_examples=200)
@given(st.sampled_from(sorted(APKS)), st.data())
def test_apk_with_damaged_or_missing_entries(name: str, draw: st.DataObject) -> None:
    entries = _entries(APKS[name])
    for entry in draw.draw(st.lists(st.sampled_from(sorted(entries)), min_size=1, max_size=3)):
        if draw.draw(st.integers(0, 3)) == 0:
            entries.pop(entry, None)
        elif entry in entries:
            entries[entry] = _damage(entries[entry], draw)
    _read("apk", _zip(entries), "damaged.apk")


# XML plists cannot hold control characters (plistlib refuses to write them).
_PLIST_CHARS = st.characters(blacklist_categories=("Cc", "Cs"))
_PLIST_VALUES = st.recursive(
    st.none().map(lambda _: "x") | st.integers(-(2**63), 2**63 - 1) | st.binary(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(_PLIST_CHARS, max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


@settings(FUZZ, max_examples=150)
@given(st.data())
def test_ipa_with_damaged_or_wrong_typed_info_plist(draw: st.DataObject) -> None:
    path, body = next(iter(_entries(IPA).items()))
    root = plistlib.loads(body)
    if draw.draw(st.booleans()):
        key = draw.draw(st.sampled_from(sorted(root)))
        root[key] = draw.draw(_PLIST_VALUES)
        fmt = draw.draw(st.sampled_from([plistlib.FMT_XML, plistlib.FMT_BINARY]))
        body = plistlib.dumps(root, fmt=fmt)
    else:
        body = _damage(body, draw)
    _read("ipa", _zip({path: body}), "damaged.ipa")


# -- shapes that need a deliberate construction ------------------------------------


def _bomb(name: str, size: int) -> tuple[str, bytes]:
    """A deflated entry of ``size`` zero bytes (compresses about 1000:1)."""
    return name, b"\0" * size


_BIG = MAX_ENTRY_SIZE + 1


@pytest.fixture(scope="module")
def zip_bombs() -> dict[str, bytes]:
    apk = _entries(APKS["release.apk"])
    ipa_path = next(iter(_entries(IPA)))
    return {
        "manifest.apk": _zip({**apk, "AndroidManifest.xml": b"\0" * _BIG}),
        "arsc.apk": _zip({**apk, "resources.arsc": b"\0" * _BIG}),
        "config.apk": _zip({**apk, "res/xml/network_security_config.xml": b"\0" * _BIG}),
        "dex.apk": _zip({**apk, "classes.dex": b"\0" * _BIG}),
        "plist.ipa": _zip([(ipa_path, b"\0" * _BIG)]),
    }


@pytest.mark.parametrize("name", ["manifest.apk", "arsc.apk", "config.apk", "dex.apk", "plist.ipa"])
def test_zip_bomb_entry_is_refused_by_the_size_limit(
    name: str, zip_bombs: dict[str, bytes]
) -> None:
    data = zip_bombs[name]
    assert len(data) < 200_000  # tiny on disk, over the limit when expanded
    reader = read_apk if name.endswith(".apk") else read_ipa
    with pytest.raises(ConfigError, match="larger than") as caught:
        reader(data, name=name)
    assert caught.value.source is not None
    assert caught.value.source.startswith(name)


def _lying_size(data: bytes, entry: str, claimed: int) -> bytes:
    """``data`` with the central directory claiming ``claimed`` bytes for ``entry``."""
    raw = bytearray(data)
    index = raw.find(b"PK\x01\x02")  # central directory records, located by name
    while index >= 0:
        name_len = int.from_bytes(raw[index + 28 : index + 30], "little")
        if raw[index + 46 : index + 46 + name_len] == entry.encode():
            raw[index + 24 : index + 28] = claimed.to_bytes(4, "little")
            break
        index = raw.find(b"PK\x01\x02", index + 4)
    assert index >= 0, entry
    return bytes(raw)


def test_entry_that_claims_a_huge_size_is_refused_unread() -> None:
    data = _lying_size(APKS["release.apk"], "resources.arsc", 3_000_000_000)
    with pytest.raises(ConfigError, match="larger than"):
        read_apk(data, name="claims.apk")


def test_entry_that_expands_beyond_its_claimed_size_is_refused() -> None:
    entries = _entries(APKS["release.apk"])
    entries["classes.dex"] = b"dex\n035\0" + b"\0" * 1_000_000
    data = _lying_size(_zip(entries), "classes.dex", 300)
    with pytest.raises(ConfigError) as caught:
        read_apk(data, name="expands.apk")
    assert "classes.dex" in (caught.value.source or "") + caught.value.message


@pytest.fixture(scope="module")
def repeated_dex() -> bytes:
    """The issue's APK: one 50 MB zero-filled classes.dex listed 40 times, about 60 KB."""
    entries = _entries(APKS["release.apk"])
    entries["classes.dex"] = b"dex\n035\0" + b"\0" * (MAX_ENTRY_SIZE - 8)
    return repeat_in_central_directory(_zip(entries), "classes.dex", 40)


def test_an_entry_repeated_in_the_central_directory_is_refused_unread(
    repeated_dex: bytes,
) -> None:
    assert len(repeated_dex) < 70_000
    with zipfile.ZipFile(io.BytesIO(repeated_dex)) as archive:
        assert archive.namelist().count("classes.dex") == 40  # what the old reader read 40 times
    # Refused by open_zip, before any entry is opened: nothing is inflated.
    with pytest.raises(ConfigError, match=r"lists the entry 'classes\.dex' 40 times") as caught:
        read_apk(repeated_dex, name="repeated.apk")
    assert caught.value.source == "repeated.apk"
    assert caught.value.hint
    unreadable = read_target(repeated_dex, "repeated.apk")
    assert isinstance(unreadable, Unreadable)
    assert "40 times" in unreadable.message


def test_an_info_plist_repeated_in_the_central_directory_is_refused() -> None:
    ipa_path = next(iter(_entries(IPA)))
    data = repeat_in_central_directory(IPA, ipa_path, 3)
    with pytest.raises(ConfigError, match=re.escape(f"lists the entry '{ipa_path}' 3 times")):
        read_ipa(data, name="repeated.ipa")


def _many_dex(count: int, size: int) -> bytes:
    """The release APK with ``count`` zero-filled dex files of ``size`` bytes (bzip2: tiny)."""
    entries = _entries(APKS["release.apk"])
    body = b"dex\n035\0" + b"\0" * (size - 8)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            if name != "classes.dex":
                archive.writestr(name, data)
        for n in range(1, count + 1):
            dex = "classes.dex" if n == 1 else f"classes{n}.dex"
            archive.writestr(dex, body, compress_type=zipfile.ZIP_BZIP2)
    return out.getvalue()


def test_total_inflation_stops_at_the_limit() -> None:
    mb = 1024 * 1024
    data = _many_dex(12, 4 * mb)  # 48 MB of dex in a few kilobytes
    assert len(data) < 20_000
    archive = open_zip(
        data, name="many.apk", kind="an APK", limits=ArchiveLimits(max_total=16 * mb)
    )
    with pytest.raises(ConfigError, match="more than the 16 MB pinset reads") as caught:
        apk_contents(archive, data)
    assert 12 * mb < archive.inflated <= 16 * mb  # three dex files read, the fourth refused
    assert caught.value.source == "many.apk"
    assert "--max-inflated-mb" in (caught.value.hint or "")
    # Within a larger limit the same APK reads, and every byte read was counted.
    roomy = open_zip(data, name="many.apk", kind="an APK", limits=ArchiveLimits(max_total=64 * mb))
    contents = apk_contents(roomy, data)
    assert [pin for pin, _dex in contents.facts.code_pins] == []
    assert 48 * mb < roomy.inflated <= 64 * mb


def test_too_many_dex_files_are_refused_before_any_is_read() -> None:
    data = _many_dex(MAX_DEX_FILES + 1, 64)
    archive = open_zip(data, name="dex.apk", kind="an APK")
    with pytest.raises(
        ConfigError, match=f"{MAX_DEX_FILES + 1} dex files, more than the"
    ) as caught:
        apk_contents(archive, data)
    assert archive.inflated == 0
    assert "--max-dex-files" in (caught.value.hint or "")
    assert read_apk(data, name="dex.apk", limits=ArchiveLimits(max_dex_files=MAX_DEX_FILES + 1))


@settings(FUZZ, max_examples=40)
@given(
    sizes=st.lists(st.integers(8, 200_000), min_size=1, max_size=8),
    method=st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2]),
    max_total=st.integers(1, 1_200_000),
    max_dex=st.integers(1, 8),
)
def test_reading_never_inflates_past_the_limit(
    sizes: list[int], method: int, max_total: int, max_dex: int
) -> None:
    entries = _entries(APKS["release.apk"])
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, body in entries.items():
            if name != "classes.dex":
                archive.writestr(name, body)
        for n, size in enumerate(sizes, 1):
            dex = "classes.dex" if n == 1 else f"classes{n}.dex"
            archive.writestr(dex, b"dex\n035\0" + b"\0" * (size - 8), compress_type=method)
    data = out.getvalue()
    limits = ArchiveLimits(max_total=max_total, max_dex_files=max_dex)
    reader = open_zip(data, name="bounded.apk", kind="an APK", limits=limits)
    error: ConfigError | None = None
    try:
        apk_contents(reader, data)
    except ConfigError as exc:
        error = exc
    assert reader.inflated <= max_total
    if error is not None:  # refused: by a limit, named with the archive
        assert (error.source or "").startswith("bounded.apk")
        assert "more than the" in error.message


def test_archive_limits_are_positive_integers() -> None:
    assert ArchiveLimits() == ArchiveLimits(MAX_ENTRY_SIZE, MAX_TOTAL_INFLATED, MAX_DEX_FILES)
    for bad in (0, -1, True, 1.5):
        with pytest.raises(ConfigError, match="positive integer"):
            ArchiveLimits(max_total=bad)  # type: ignore[arg-type]


def test_manifest_referencing_a_missing_resource_id() -> None:
    entries = _entries(APKS["release.apk"])
    manifest = entries["AndroidManifest.xml"]
    rid = (0x7F020000).to_bytes(4, "little")
    assert rid in manifest
    entries["AndroidManifest.xml"] = manifest.replace(rid, (0x7F0B0042).to_bytes(4, "little"))
    with pytest.raises(ConfigError, match="does not resolve") as caught:
        read_apk(_zip(entries), name="missing-id.apk")
    assert caught.value.key == "android:networkSecurityConfig"


def test_truncated_resources_arsc() -> None:
    entries = _entries(APKS["release.apk"])
    for cut in range(0, len(entries["resources.arsc"]), 7):
        broken = {**entries, "resources.arsc": entries["resources.arsc"][:cut]}
        _read("apk", _zip(broken), "arsc.apk")


def test_path_traversal_names_are_only_names() -> None:
    entries = _entries(APKS["release.apk"])
    evil = [*entries.items(), ("../../../../tmp/pinset-evil", b"x"), ("/etc/evil", b"y")]
    contents = read_apk(_zip(evil), name="evil.apk")
    assert contents.config_xml is not None
    assert not Path("/tmp/pinset-evil").exists()
    plist = next(iter(_entries(IPA).values()))
    traversal = _zip([("Payload/../Payload/X.app/Info.plist", plist)])
    with pytest.raises(ConfigError, match="not an IPA"):
        read_ipa(traversal, name="evil.ipa")


def test_nested_payload_directory_is_not_an_ipa() -> None:
    ipa_path, plist = next(iter(_entries(IPA).items()))
    with pytest.raises(ConfigError, match="not an IPA"):
        read_ipa(_zip({"Payload/" + ipa_path: plist}), name="nested.ipa")


def test_ipa_with_two_apps_is_refused_not_half_read() -> None:
    ipa_path, plist = next(iter(_entries(IPA).items()))
    data = _zip({ipa_path: plist, "Payload/Other.app/Info.plist": plist})
    with pytest.raises(ConfigError, match="2 apps") as caught:
        read_ipa(data, name="two.ipa")
    assert "Other.app" in caught.value.message


@pytest.mark.parametrize(
    "body", [b"", b"not a plist", b"bplist00garbage", b"<plist><dict><key>a</key></plist>"]
)
def test_info_plist_that_is_not_a_plist(body: bytes) -> None:
    ipa_path = next(iter(_entries(IPA)))
    with pytest.raises(ConfigError, match="not a property list") as caught:
        read_ipa(_zip({ipa_path: body}), name="bad.ipa")
    assert caught.value.source == f"bad.ipa!/{ipa_path}"


def test_encrypted_zip_entry_is_a_config_error() -> None:
    data = bytearray(_zip(_entries(APKS["release.apk"])))
    # Set the "encrypted" flag bit on every local and central header.
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        index = data.find(signature)
        while index >= 0:
            data[index + offset] |= 1
            index = data.find(signature, index + 4)
    with pytest.raises(ConfigError):
        read_apk(bytes(data), name="encrypted.apk")


# -- the CLI --------------------------------------------------------------------------


def _broken_artefacts(tmp_path: Path) -> list[Path]:
    apk = _entries(APKS["release.apk"])
    ipa_path, plist = next(iter(_entries(IPA).items()))
    cases = {
        "random.apk": b"\x00\x01garbage",
        "random.ipa": b"PK\x03\x04garbage",
        "no-manifest.apk": _zip({k: v for k, v in apk.items() if k != "AndroidManifest.xml"}),
        "bad-manifest.apk": _zip({**apk, "AndroidManifest.xml": b"\x03\x00\x08\x00junk"}),
        "bad-arsc.apk": _zip({**apk, "resources.arsc": b"\x02\x00"}),
        "bomb.apk": _zip({**apk, "classes.dex": b"\0" * _BIG}),
        "two.ipa": _zip({ipa_path: plist, "Payload/B.app/Info.plist": plist}),
        "repeated.apk": repeat_in_central_directory(_zip(apk), "classes.dex", 3),
        "not-plist.ipa": _zip({ipa_path: b"hello"}),
    }
    paths = []
    for name, data in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        paths.append(path)
    return paths


def test_cli_audit_limits_are_options(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "two-mb.apk"
    path.write_bytes(_many_dex(2, 1024 * 1024))
    assert main(["audit", str(path), "--now", "2026-11-28", "--max-inflated-mb", "1"]) == 2
    out, err = capsys.readouterr()
    assert f"cannot read {path}: reading classes" in err
    assert "raise the limit: pinset audit --max-inflated-mb N" in out
    assert main(["audit", str(path), "--now", "2026-11-28", "--max-inflated-mb", "4"]) != 2
    capsys.readouterr()
    assert main(["audit", str(path), "--now", "2026-11-28", "--max-dex-files", "1"]) == 2
    assert "2 dex files, more than the 1" in capsys.readouterr().err


def test_cli_audit_on_broken_artefacts_exits_2_without_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for path in _broken_artefacts(tmp_path):
        code = main(["audit", str(path), "--now", "2026-11-28"])
        out, err = capsys.readouterr()
        assert code == 2, (path.name, out, err)
        assert "Traceback" not in out + err
        assert f"cannot read {path}" in err, (path.name, err)
