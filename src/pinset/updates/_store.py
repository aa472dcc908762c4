"""``BundleStore``: the newest applied bundle on disk, replaced atomically.

The store is one file, ``bundle-state.json``: ``{"version": N, "bundle": "<document>"}``.
It is replaced by writing a temporary file in the same directory, fsync, then
``os.replace``: a reader sees the old state or the new one, never half of either,
and a crash before the rename leaves the last good state (the orphaned temporary
file is ignored and removed by the next write). This module is the only I/O of
:mod:`pinset.updates`.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pinset.errors import ConfigError
from pinset.policy import Policy
from pinset.updates._signing import TrustedKey
from pinset.updates._verify import BundleResult, verify_bundle

__all__ = ["STATE_FILE", "BundleStore", "StoredBundle"]

STATE_FILE = "bundle-state.json"
_TEMP_PREFIX = f".{STATE_FILE}."


@dataclass(frozen=True, slots=True)
class StoredBundle:
    """The applied bundle: its version and its document bytes, exactly as received."""

    version: int
    data: bytes


class BundleStore:
    """The newest applied bundle in ``directory`` (created when missing).

    :meth:`offer` verifies a bundle against the stored version and keeps it only when
    it is valid: a refused bundle changes nothing. Writers in one process take turns;
    readers never wait.
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self.path = self.directory / STATE_FILE
        self._lock = threading.Lock()

    def current(self) -> StoredBundle | None:
        """The stored bundle, or ``None`` when nothing was stored yet."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise ConfigError(
                f"cannot read: {exc.strerror or exc}", source=str(self.path)
            ) from None
        try:
            state = json.loads(raw)
            version, bundle = state["version"], state["bundle"]
            if type(version) is not int or not isinstance(bundle, str):
                raise TypeError
        except (ValueError, TypeError, KeyError):
            raise ConfigError(
                "the bundle store is damaged",
                source=str(self.path),
                hint="remove the file: the app falls back to its embedded policy",
            ) from None
        return StoredBundle(version, bundle.encode("utf-8"))

    def version(self) -> int | None:
        """The stored version, or ``None``."""
        stored = self.current()
        return None if stored is None else stored.version

    def offer(
        self,
        data: bytes,
        *,
        trusted_keys: Iterable[TrustedKey],
        now: dt.datetime,
        embedded: Policy | None = None,
        app_id: str | None = None,
    ) -> BundleResult:
        """Verify ``data`` against the stored version; store it when valid. Returns the result."""
        with self._lock:
            stored = self.current()
            result = verify_bundle(
                data,
                trusted_keys=trusted_keys,
                now=now,
                embedded=embedded,
                stored_version=None if stored is None else stored.version,
                app_id=app_id,
            )
            if result.valid:
                assert result.version is not None
                self._write(result.version, data)
            return result

    def _write(self, version: int, data: bytes) -> None:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:  # pragma: no cover - a valid bundle is UTF-8 JSON
            raise ConfigError("a bundle is UTF-8 JSON") from None
        state = json.dumps({"version": version, "bundle": text}).encode("utf-8")
        self.directory.mkdir(parents=True, exist_ok=True)
        for stale in self.directory.glob(_TEMP_PREFIX + "*"):
            stale.unlink(missing_ok=True)  # left by a crash before the rename
        fd, temp = tempfile.mkstemp(prefix=_TEMP_PREFIX, dir=self.directory)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(state)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, self.path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
        _sync_directory(self.directory)


def _sync_directory(directory: Path) -> None:
    """Make the rename itself durable (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - file systems that refuse it
        pass
    finally:
        os.close(fd)
