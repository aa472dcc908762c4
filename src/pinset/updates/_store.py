"""``BundleStore``: the newest applied bundle on disk, replaced atomically.

The store is one file, ``bundle-state.json``: ``{"version": N, "bundle": "<document>"}``,
plus, once a bundle named the signing keys to trust, ``"signing_keys"`` (standard base64
DER SubjectPublicKeyInfo) and ``"shipped_keys"`` (the pins of the keys the app shipped
with then): later bundles are checked against that set for as long as the app ships
the same keys; an app release that ships other keys starts again from those.
It is replaced by writing a temporary file in the same directory, fsync, then
``os.replace``: a reader sees the old state or the new one, never half of either,
and a crash before the rename leaves the last good state (the orphaned temporary
file is ignored and removed by the next write). This module is the only I/O of
:mod:`pinset.updates`.
"""

from __future__ import annotations

import base64
import binascii
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
from pinset.updates._signing import (
    TrustedKey,
    load_trusted_keys,
    public_key_from_der,
)
from pinset.updates._verify import BundleResult, verify_bundle

__all__ = ["STATE_FILE", "BundleStore", "StoredBundle"]

STATE_FILE = "bundle-state.json"
_TEMP_PREFIX = f".{STATE_FILE}."


@dataclass(frozen=True, slots=True)
class StoredBundle:
    """The applied bundle: its version and its document bytes, exactly as received.

    ``signing_keys`` (DER SubjectPublicKeyInfo): the keys later bundles are checked
    against, as the last bundle that named them set them; ``None`` when none did.
    ``shipped_keys``: the pins of the keys the app shipped with when they were set.
    """

    version: int
    data: bytes
    signing_keys: tuple[bytes, ...] | None = None
    shipped_keys: tuple[str, ...] = ()


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
            keys = state.get("signing_keys")
            shipped = state.get("shipped_keys", [])
            if not isinstance(shipped, list) or not all(isinstance(p, str) for p in shipped):
                raise TypeError
            signing_keys = None
            if keys is not None:
                if not isinstance(keys, list) or not keys:
                    raise TypeError
                signing_keys = tuple(base64.b64decode(k, validate=True) for k in keys)
                for der in signing_keys:
                    public_key_from_der(der)
        except (ValueError, TypeError, KeyError, AttributeError, binascii.Error, ConfigError):
            raise ConfigError(
                "the bundle store is damaged",
                source=str(self.path),
                hint="remove the file: the app falls back to its embedded policy",
            ) from None
        return StoredBundle(version, bundle.encode("utf-8"), signing_keys, tuple(shipped))

    def trusted_keys(self, shipped: Iterable[TrustedKey]) -> list[TrustedKey]:
        """The keys a bundle is checked against: the set the stored bundles named, while
        the app ships the keys it shipped when they were named; else ``shipped``.

        Give what the app ships (the ``trusted_keys`` of :meth:`offer`); use the answer
        to re-verify the stored bundle, e.g. when the app starts.
        """
        shipped = list(shipped)
        effective = _effective(self.current(), _pins(shipped))
        if effective is None:
            return shipped
        return [public_key_from_der(der) for der in effective]

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
        """Verify ``data`` against the stored version; store it when valid. Returns the result.

        ``trusted_keys``: the keys the app ships with. Once a stored bundle named the
        signing keys to trust (``signing_keys``), ``data`` is checked against those instead
        (see :meth:`trusted_keys`), and a valid bundle that names others replaces them.
        """
        shipped = list(trusted_keys)
        shipped_pins = _pins(shipped)
        with self._lock:
            stored = self.current()
            effective = _effective(stored, shipped_pins)
            keys: list[TrustedKey] = (
                shipped if effective is None else [public_key_from_der(d) for d in effective]
            )
            result = verify_bundle(
                data,
                trusted_keys=keys,
                now=now,
                embedded=embedded,
                stored_version=None if stored is None else stored.version,
                app_id=app_id,
            )
            if result.valid:
                assert result.version is not None
                named = result.signing_keys if result.signing_keys is not None else effective
                self._write(result.version, data, named, shipped_pins)
            return result

    def _write(
        self,
        version: int,
        data: bytes,
        signing_keys: tuple[bytes, ...] | None,
        shipped_pins: tuple[str, ...],
    ) -> None:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:  # pragma: no cover - a valid bundle is UTF-8 JSON
            raise ConfigError("a bundle is UTF-8 JSON") from None
        content: dict[str, object] = {"version": version, "bundle": text}
        if signing_keys is not None:
            content["signing_keys"] = [base64.b64encode(k).decode() for k in signing_keys]
            content["shipped_keys"] = list(shipped_pins)
        state = json.dumps(content).encode("utf-8")
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


def _pins(keys: list[TrustedKey]) -> tuple[str, ...]:
    return tuple(sorted(str(pin) for pin in load_trusted_keys(keys)))


def _effective(stored: StoredBundle | None, shipped: tuple[str, ...]) -> tuple[bytes, ...] | None:
    """The stored signing keys, unless the app now ships other keys than when they were set."""
    if stored is None or stored.signing_keys is None or stored.shipped_keys != shipped:
        return None
    return stored.signing_keys


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
