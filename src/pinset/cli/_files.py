"""The files commands read and write: input from a path or ``-``, new files, atomic replaces.

Shared by ``export`` and ``import`` (reading a policy or platform config, writing the
result) and by ``keygen`` and ``init`` (never overwriting a key or policy), so that no
command imports another command's module.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pinset.errors import ConfigError

if TYPE_CHECKING:
    from pinset import formats

__all__ = ["load_input", "read_input", "write_atomically", "write_new_file"]

# Suffixes that say "this is a pinset policy" when the content is too broken to sniff.
_NATIVE_SUFFIXES = (".toml", ".json")


def read_input(path: str) -> bytes:
    """The bytes of ``path`` (``-`` is standard input), or a :class:`ConfigError`."""
    if path == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(path).read_bytes()
    except IsADirectoryError:
        raise ConfigError("cannot read: is a directory", source=path, hint="give a file") from None
    except FileNotFoundError:
        raise ConfigError("cannot read: no such file", source=path, hint="check the path") from None
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror or exc}", source=path) from None


def load_input(path: str, fmt: str | None = None, **options: Any) -> formats.Imported:
    """Read and import ``path`` (``-``: standard input) in ``fmt`` or the detected format.

    An empty file says so; a ``.toml`` / ``.json`` file whose content no format
    recognises is parsed as a pinset policy, so that its syntax error (with the
    line) is reported instead of "cannot tell which format".
    """
    from pinset import formats

    source = "<stdin>" if path == "-" else path
    data = read_input(path)
    if not data.strip():
        raise ConfigError(
            "the file is empty", source=source, hint="give a pinset policy or a platform config"
        )
    if fmt is None and path.lower().endswith(_NATIVE_SUFFIXES):
        try:
            formats.detect(data, source)
        except ConfigError:
            fmt = "pinset"
    return formats.loads(data, format=fmt, source=source, **options)


def write_atomically(path: str | os.PathLike[str], data: bytes) -> None:
    """Replace ``path`` with ``data`` in one step: readers see the old file or the new one.

    The data is on disk (fsync) before the rename. A replaced file keeps its mode; a
    new one gets 0644 less the umask. Failures are :class:`ConfigError`; the temporary
    file never stays behind.
    """
    target = Path(path)
    source = str(path)
    try:
        fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    except OSError as exc:
        raise ConfigError(f"cannot write: {exc.strerror or exc}", source=source) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, _replacement_mode(target))
        os.replace(temp, target)
    except BaseException as exc:
        Path(temp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise ConfigError(f"cannot write: {exc.strerror or exc}", source=source) from None
        raise


def _replacement_mode(target: Path) -> int:
    """The mode of the file ``target`` names, else 0644 less the umask."""
    try:
        return target.stat().st_mode & 0o777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o644 & ~umask


def write_new_file(path: Path, data: bytes, mode: int) -> None:
    """Create ``path`` with ``mode`` and write ``data``; refuse if it exists (no race window)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        raise ConfigError(
            "refusing to overwrite an existing file",
            source=str(path),
            hint="choose another --out / --csr-out path, or move the old file away first",
        ) from None
    except OSError as exc:
        hint = None
        if isinstance(exc, FileNotFoundError):
            hint = f"create the directory {str(path.parent)!r} first, or choose another path"
        elif isinstance(exc, IsADirectoryError):
            hint = "give a file name, not a directory"
        raise ConfigError(
            f"cannot create: {exc.strerror or exc}", source=str(path), hint=hint
        ) from None
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
