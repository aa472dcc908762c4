"""Build the small APK and IPA fixtures of tests/fixtures/apk/ and tests/fixtures/ipa/.

Run from the repository root with the project's interpreter::

    .venv/bin/python scripts/make_fixture_apks.py

Needs Debian's ``aapt`` and ``android-framework-res`` (for ``-I framework-res.apk``):
``aapt package`` compiles AndroidManifest.xml and res/xml/*.xml into binary XML
plus a ``resources.arsc``, exactly as an Android build does. ``classes.dex`` is a
minimal dex written here (header, string ids, string data): the auditor only
scans its strings. The output is deterministic (fixed zip timestamps, sorted
entries), so re-running the script reproduces the committed files byte for byte.
"""

from __future__ import annotations

import hashlib
import plistlib
import shutil
import struct
import subprocess
import sys
import tempfile
import zipfile
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APK_DIR = ROOT / "tests" / "fixtures" / "apk"
IPA_DIR = ROOT / "tests" / "fixtures" / "ipa"
FRAMEWORK = Path("/usr/share/android-framework-res/framework-res.apk")
STAMP = (1980, 1, 1, 0, 0, 0)

# SHA-256 digests of fixed strings: real-looking pins that match no real key.
CURRENT = "kYYgDApU0eMPFGwHsLBIN0rf5c1kMzSVfli/vKiX+I4="
BACKUP = "l8JdxVDkl1UMPlCRhIK2OychjartZsndSA2okFQOFko="
CODE_ONLY = "2JMNa6V/u3j/mnGudyBEDf8+cOZNZf+k2My5F8hETBA="

MANIFEST = """<?xml version="1.0" encoding="utf-8"?>
<manifest xmlns:android="http://schemas.android.com/apk/res/android"
    package="net.example.{package}" android:versionCode="1" android:versionName="1.0">
    <uses-sdk android:minSdkVersion="24" android:targetSdkVersion="34" />
    <application android:label="Pinned"{attrs} />
</manifest>
"""

GOOD_NSC = f"""<?xml version="1.0" encoding="utf-8"?>
<network-security-config>
    <base-config cleartextTrafficPermitted="false" />
    <domain-config>
        <domain includeSubdomains="true">api.example.com</domain>
        <pin-set expiration="2027-06-30">
            <pin digest="SHA-256">{CURRENT}</pin>
            <pin digest="SHA-256">{BACKUP}</pin>
        </pin-set>
    </domain-config>
</network-security-config>
"""

DEBUG_NSC = f"""<?xml version="1.0" encoding="utf-8"?>
<network-security-config>
    <domain-config>
        <domain includeSubdomains="true">api.example.com</domain>
        <pin-set expiration="2027-06-30">
            <pin digest="SHA-256">{CURRENT}</pin>
            <pin digest="SHA-256">{BACKUP}</pin>
        </pin-set>
    </domain-config>
    <debug-overrides>
        <trust-anchors>
            <certificates src="user" overridePins="true" />
            <certificates src="system" />
        </trust-anchors>
    </debug-overrides>
</network-security-config>
"""


def dex(strings: list[str]) -> bytes:
    """A minimal dex file: a 0x70-byte header, the string ids and the string data."""
    strings = sorted(set(strings))
    header_size = 0x70
    ids_off = header_size
    data_off = ids_off + 4 * len(strings)
    data = bytearray()
    offsets = []
    for text in strings:
        offsets.append(data_off + len(data))
        raw = text.encode("utf-8")
        length = len(text)
        while True:  # uleb128 of the UTF-16 length
            byte = length & 0x7F
            length >>= 7
            data.append(byte | (0x80 if length else 0))
            if not length:
                break
        data += raw + b"\0"
    body = bytearray(struct.pack(f"<{len(strings)}I", *offsets)) + data
    size = header_size + len(body)
    header = bytearray(header_size)
    header[0:8] = b"dex\n035\0"
    struct.pack_into("<II", header, 32, size, header_size)
    struct.pack_into("<I", header, 40, 0x12345678)  # endian tag
    struct.pack_into("<II", header, 56, len(strings), ids_off)
    struct.pack_into("<II", header, 104, len(body), ids_off)  # data section
    blob = header + body
    blob[12:32] = hashlib.sha1(blob[32:]).digest()  # noqa: S324 - dex's own format
    blob[8:12] = struct.pack("<I", zlib.adler32(bytes(blob[12:])))
    return bytes(blob)


def shorten(arsc: bytes, old: str, new: str) -> bytes:
    """Rewrite one UTF-8 entry of the resource table's string pool in place, shorter.

    A string pool entry is [char count][byte count][bytes][NUL]; writing a shorter
    string with its own lengths keeps every other offset valid (the tail of the old
    slot becomes unused padding). This is what resource-path shortening leaves behind.
    """
    raw_old, raw_new = old.encode(), new.encode()
    assert len(raw_old) < 0x80
    assert len(raw_new) <= len(raw_old)
    needle = bytes([len(old), len(raw_old)]) + raw_old + b"\0"
    at = arsc.find(needle)
    assert at >= 0, f"{old!r} not in the string pool"
    slot = bytes([len(new), len(raw_new)]) + raw_new + b"\0"
    slot += b"\0" * (len(needle) - len(slot))
    return arsc[:at] + slot + arsc[at + len(needle) :]


def aapt(workdir: Path, manifest: str, xml: dict[str, str]) -> dict[str, bytes]:
    (workdir / "AndroidManifest.xml").write_text(manifest, encoding="utf-8")
    if xml:
        (workdir / "res" / "xml").mkdir(parents=True)
        for name, text in xml.items():
            (workdir / "res" / "xml" / name).write_text(text, encoding="utf-8")
    out = workdir / "out.apk"
    command = ["aapt", "package", "-f", "-M", str(workdir / "AndroidManifest.xml")]
    if xml:
        command += ["-S", str(workdir / "res")]
    command += ["-I", str(FRAMEWORK), "-F", str(out)]
    subprocess.run(command, check=True, capture_output=True)
    with zipfile.ZipFile(out) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def write_zip(path: Path, entries: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, STAMP)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, entries[name])


def apk(
    name: str,
    *,
    nsc: str | None,
    attrs: str = "",
    code_pins: tuple[str, ...] = (),
    rename: str | None = None,
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        if nsc is not None:
            attrs = ' android:networkSecurityConfig="@xml/network_security_config"' + attrs
        manifest = MANIFEST.format(package=name.replace("-", "_"), attrs=attrs)
        xml = {"network_security_config.xml": nsc} if nsc is not None else {}
        entries = aapt(Path(tmp), manifest, xml)
    strings = ["Lokhttp3/CertificatePinner;", "api.example.com", *code_pins]
    entries["classes.dex"] = dex(strings)
    if rename is not None:
        old = "res/xml/network_security_config.xml"
        entries["resources.arsc"] = shorten(entries["resources.arsc"], old, rename)
        entries[rename] = entries.pop(old)
    path = APK_DIR / f"{name}.apk"
    write_zip(path, entries)
    print(f"{path.relative_to(ROOT)}: {path.stat().st_size} bytes")


def ipa() -> None:
    info = {
        "CFBundleIdentifier": "net.example.pinned",
        "CFBundleName": "Pinned",
        "NSAppTransportSecurity": {
            "NSPinnedDomains": {
                "api.example.com": {
                    "NSIncludesSubdomains": True,
                    "NSPinnedLeafIdentities": [{"SPKI-SHA256-BASE64": CURRENT}],
                }
            }
        },
        "TSKConfiguration": {
            "TSKSwizzleNetworkDelegates": False,
            "TSKPinnedDomains": {
                "pay.example.com": {
                    "TSKEnforcePinning": True,
                    "TSKExpirationDate": "2027-06-30",
                    "TSKPublicKeyHashes": [CURRENT, BACKUP],
                    "TSKDisableDefaultReportUri": True,
                    "TSKReportUris": ["http://reports.example.net/pins"],
                }
            },
        },
    }
    entries = {"Payload/Pinned.app/Info.plist": plistlib.dumps(info, fmt=plistlib.FMT_BINARY)}
    path = IPA_DIR / "pinned.ipa"
    write_zip(path, entries)
    print(f"{path.relative_to(ROOT)}: {path.stat().st_size} bytes")


def main() -> int:
    if shutil.which("aapt") is None or not FRAMEWORK.exists():
        print("needs Debian's aapt and android-framework-res", file=sys.stderr)
        return 2
    APK_DIR.mkdir(parents=True, exist_ok=True)
    IPA_DIR.mkdir(parents=True, exist_ok=True)
    both = (f"sha256/{CURRENT}", f"sha256/{BACKUP}")
    apk("release", nsc=GOOD_NSC, attrs=' android:usesCleartextTraffic="false"', code_pins=both)
    apk("cleartext", nsc=DEBUG_NSC, attrs=' android:usesCleartextTraffic="true"')
    apk("debuggable", nsc=DEBUG_NSC, attrs=' android:debuggable="true"')
    apk("shortened", nsc=GOOD_NSC, rename="res/a1.xml")
    apk(
        "code-differs",
        nsc=GOOD_NSC,
        code_pins=(
            f"sha256/{CURRENT}",
            f"sha256/{CODE_ONLY}",
            "sha256/notAValidPinButLooksLikeOne",
        ),
    )
    apk(
        "no-config",
        nsc=None,
        attrs=' android:usesCleartextTraffic="true"',
        code_pins=(f"sha256/{CODE_ONLY}",),
    )
    ipa()
    return 0


if __name__ == "__main__":
    sys.exit(main())
