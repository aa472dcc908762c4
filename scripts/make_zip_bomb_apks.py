"""Build the two zip-bomb APKs of tests/fixtures/zip-bombs/ that docs/audit.md audits.

They are kept out of tests/fixtures/apk/, whose files the tests take for small real APKs.

Run from the repository root with the project's interpreter::

    .venv/bin/python scripts/make_zip_bomb_apks.py

Both start from the committed ``release.apk`` (scripts/make_fixture_apks.py):

* ``repeated.apk``: its central directory lists one zero-filled 50 MB ``classes.dex``
  40 times (the record is repeated; the data is stored once), about 55 KB.
* ``many-dex.apk``: 100 zero-filled dex files of 50 MB each, bzip2-compressed, about 23 KB
  for 5.2 GB claimed.

The output is deterministic (fixed zip timestamps), so re-running the script reproduces
the committed files byte for byte. tests/test_fuzz_artifacts.py builds the same archives
in memory for its tests.
"""

from __future__ import annotations

import io
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the zip bending the tests use too

from _zips import repeat_in_central_directory  # noqa: E402

APK_DIR = ROOT / "tests" / "fixtures" / "apk"
OUT_DIR = ROOT / "tests" / "fixtures" / "zip-bombs"
STAMP = (1980, 1, 1, 0, 0, 0)
DEX_SIZE = 50 * 1024 * 1024  # pinset's largest entry (audit/_zip.py MAX_ENTRY_SIZE)


def release_entries() -> dict[str, bytes]:
    with zipfile.ZipFile(APK_DIR / "release.apk") as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def write(entries: list[tuple[str, bytes, int]]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, body, method in entries:
            info = zipfile.ZipInfo(name, STAMP)
            info.compress_type = method
            info.external_attr = 0o644 << 16
            archive.writestr(info, body)
    return out.getvalue()


def main() -> int:
    dex = b"dex\n035\0" + b"\0" * (DEX_SIZE - 8)
    entries = release_entries()
    others = [(name, body, zipfile.ZIP_DEFLATED) for name, body in sorted(entries.items())]
    single = [(n, dex if n == "classes.dex" else b, m) for n, b, m in others]
    repeated = repeat_in_central_directory(write(single), "classes.dex", 40)
    (OUT_DIR / "repeated.apk").write_bytes(repeated)
    many = [e for e in others if e[0] != "classes.dex"]
    names = ["classes.dex", *(f"classes{n}.dex" for n in range(2, 101))]
    many += [(name, dex, zipfile.ZIP_BZIP2) for name in names]
    (OUT_DIR / "many-dex.apk").write_bytes(write(many))
    for name in ("repeated.apk", "many-dex.apk"):
        print(f"{name}: {(OUT_DIR / name).stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
