"""Reading APK and IPA archives safely: a damaged or oversized entry is a ConfigError, not a crash.

Both are zip archives; :func:`open_zip` opens one and :func:`read_entry` reads an entry
no larger than :data:`MAX_ENTRY_SIZE` (a zip bomb is refused before decompression).
:mod:`pinset.audit.apk` re-exports all three.
"""

from __future__ import annotations

import io
import zipfile
import zlib

from pinset.errors import ConfigError

__all__ = ["MAX_ENTRY_SIZE", "open_zip", "read_entry"]

# The largest entry pinset decompresses. Real manifests, resource tables, configs
# and Info.plists are kilobytes and a classes.dex rarely exceeds 20 MB; an entry
# claiming more is a zip bomb or a damaged archive.
MAX_ENTRY_SIZE = 50 * 1024 * 1024


def open_zip(data: bytes, *, name: str, kind: str) -> zipfile.ZipFile:
    """``data`` as a zip archive; :class:`ConfigError` naming ``name`` if it is not one."""
    try:
        return zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, NotImplementedError) as exc:
        # zipfile raises more than BadZipFile for a damaged central directory.
        detail = f": {exc}" if str(exc) and not isinstance(exc, zipfile.BadZipFile) else ""
        raise ConfigError(f"not {kind} (not a zip archive{detail})", source=name) from None


def read_entry(archive: zipfile.ZipFile, entry: str, *, name: str) -> bytes:
    """The bytes of ``entry``, refused with :class:`ConfigError` when over :data:`MAX_ENTRY_SIZE`.

    The size is checked before anything is decompressed (``zipfile`` never
    returns more than the size the directory claims), and every way a damaged
    entry fails (bad CRC, bad deflate stream, encryption, an unknown
    compression method) becomes a ``ConfigError`` at ``name!/entry``.
    """
    source = f"{name}!/{entry}"
    info = archive.getinfo(entry)
    if info.file_size > MAX_ENTRY_SIZE:
        raise ConfigError(
            f"the entry is {info.file_size:,} bytes uncompressed, larger than the "
            f"{MAX_ENTRY_SIZE // (1024 * 1024)} MB pinset reads (a zip bomb or a damaged archive)",
            source=source,
            hint="check the archive with unzip -l; rebuild it if the size is wrong",
        )
    try:
        return archive.read(info)
    except (RuntimeError, NotImplementedError) as exc:
        # "File ... is encrypted, password required", or a compression method zipfile lacks.
        raise ConfigError(f"cannot read the entry: {exc}", source=source) from None
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as exc:
        raise ConfigError(
            f"the entry is damaged: {exc or type(exc).__name__}",
            source=source,
            hint="the archive is corrupt; rebuild or download it again",
        ) from None
