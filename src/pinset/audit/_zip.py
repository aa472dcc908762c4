"""Reading APK and IPA archives safely: a damaged or oversized one is a ConfigError, not a crash.

Both are zip archives. :func:`open_zip` opens one and refuses an archive that lists
one entry name twice; the :class:`ZipReader` it returns inflates entries as bounded
streams and counts every byte, so one archive never costs more than its
:class:`ArchiveLimits`: :data:`MAX_ENTRY_SIZE` per entry, :data:`MAX_TOTAL_INFLATED`
for all entries together. A zip bomb is refused before it is decompressed.
:mod:`pinset.audit._apk` re-exports the public names.
"""

from __future__ import annotations

import io
import zipfile
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

from pinset.errors import ConfigError

__all__ = [
    "MAX_DEX_FILES",
    "MAX_ENTRY_SIZE",
    "MAX_TOTAL_INFLATED",
    "ArchiveLimits",
    "ZipReader",
    "open_zip",
]

_MB = 1024 * 1024
# The largest entry pinset decompresses. Real manifests, resource tables, configs
# and Info.plists are kilobytes and a classes.dex rarely exceeds 20 MB; an entry
# claiming more is a zip bomb or a damaged archive.
MAX_ENTRY_SIZE = 50 * _MB
# All entries of one archive together: the largest apps ship a few dozen dex files
# of a few MB each; a small archive that inflates to more is built to waste time.
MAX_TOTAL_INFLATED = 256 * _MB
# classes.dex … classesN.dex: large multidex apps have a few dozen.
MAX_DEX_FILES = 100
_CHUNK = 1 * _MB


@dataclass(frozen=True, slots=True)
class ArchiveLimits:
    """How much reading one APK or IPA may inflate: per entry, in total, and how many dex files."""

    max_entry: int = MAX_ENTRY_SIZE
    max_total: int = MAX_TOTAL_INFLATED
    max_dex_files: int = MAX_DEX_FILES

    def __post_init__(self) -> None:
        for field in ("max_entry", "max_total", "max_dex_files"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(
                    f"archive limit {field} must be a positive integer, not {value!r}"
                )


def _mb(size: int) -> str:
    return f"{size / _MB:g} MB" if size >= _MB else f"{size:,} bytes"


class ZipReader:
    """An open archive whose entries are inflated within :class:`ArchiveLimits`.

    ``inflated`` counts the bytes decompressed so far (also those :meth:`charge`
    records for a library that reads an entry again on its own); ``reserved`` the
    declared sizes of the entries opened, which the limit is checked against.
    """

    def __init__(self, archive: zipfile.ZipFile, *, name: str, limits: ArchiveLimits) -> None:
        self.archive = archive
        self.name = name
        self.limits = limits
        self.inflated = 0
        self.reserved = 0

    def names(self) -> list[str]:
        """The entry names, in archive order (each once: :func:`open_zip` refused repeats)."""
        return self.archive.namelist()

    def read(self, entry: str) -> bytes:
        """All the bytes of ``entry`` (at most ``max_entry``)."""
        return b"".join(self.chunks(entry))

    def chunks(self, entry: str) -> Iterator[bytes]:
        """The bytes of ``entry`` as a bounded stream of chunks of at most 1 MB.

        The entry's declared size is checked against both limits before anything is
        decompressed (``zipfile`` never returns more than the size the directory
        claims), and every way a damaged entry fails (bad CRC, bad deflate stream,
        encryption, an unknown compression method) becomes a ``ConfigError`` at
        ``name!/entry``.
        """
        source = f"{self.name}!/{entry}"
        info = self.archive.getinfo(entry)
        if info.file_size > self.limits.max_entry:
            raise ConfigError(
                f"the entry is {info.file_size:,} bytes uncompressed, larger than the "
                f"{_mb(self.limits.max_entry)} pinset reads (a zip bomb or a damaged archive)",
                source=source,
                hint="check the archive with unzip -l; rebuild it if the size is wrong",
            )
        self._reserve(info.file_size, entry)
        try:
            with self.archive.open(info) as stream:
                while chunk := stream.read(_CHUNK):
                    self.inflated += len(chunk)
                    yield chunk
        except (RuntimeError, NotImplementedError) as exc:
            # "File ... is encrypted, password required", or a compression method zipfile lacks.
            raise ConfigError(f"cannot read the entry: {exc}", source=source) from None
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as exc:
            raise ConfigError(
                f"the entry is damaged: {exc or type(exc).__name__}",
                source=source,
                hint="the archive is corrupt; rebuild or download it again",
            ) from None

    def charge(self, entry: str) -> None:
        """Count ``entry`` as inflated once more, by a library that reads it on its own.

        Call it before that library runs: the declared size is an upper bound of
        what it inflates (``zipfile`` stops there), so the limit is never passed.
        """
        size = self.archive.getinfo(entry).file_size
        self._reserve(size, entry)
        self.inflated += size

    def _reserve(self, size: int, entry: str) -> None:
        if self.reserved + size > self.limits.max_total:
            raise ConfigError(
                f"reading {entry} would inflate the archive's entries to "
                f"{self.reserved + size:,} bytes, more than the {_mb(self.limits.max_total)} "
                "pinset reads from one archive (a zip bomb, or an unusually large app)",
                source=self.name,
                hint="check the archive with unzip -l; if the app really is that large, "
                "raise the limit: pinset audit --max-inflated-mb N",
            )
        self.reserved += size


def open_zip(
    data: bytes, *, name: str, kind: str, limits: ArchiveLimits | None = None
) -> ZipReader:
    """``data`` as a zip archive; :class:`ConfigError` naming ``name`` if it is not one.

    An archive that lists an entry name twice is refused: Android refuses to install
    one (a repeated name was the 2013 "Master Key" signature bypass), so the entry
    the auditor would read is not the one a device runs, and repeating one large
    entry in the central directory multiplies the work of reading it.
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, NotImplementedError) as exc:
        # zipfile raises more than BadZipFile for a damaged central directory.
        detail = f": {exc}" if str(exc) and not isinstance(exc, zipfile.BadZipFile) else ""
        raise ConfigError(f"not {kind} (not a zip archive{detail})", source=name) from None
    repeated = [(entry, n) for entry, n in Counter(archive.namelist()).items() if n > 1]
    if repeated:
        entry, times = repeated[0]
        more = f" and {len(repeated) - 1} other name(s)" if len(repeated) > 1 else ""
        raise ConfigError(
            f"not {kind}: the archive lists the entry {entry!r} {times} times{more}; "
            "Android refuses an archive with a repeated entry name",
            source=name,
            hint="rebuild the archive with the build tools (each entry name once)",
        )
    return ZipReader(archive, name=name, limits=limits or ArchiveLimits())
