"""The bundles a collector publishes: the newest signed bundle per app, from one directory.

``pinset collector serve --bundles DIR`` serves ``GET /v1/pins/{app_id}``. Which file
belongs to which app is read from each file's signed payload (``app_id``, ``version``),
never from its name. The collector does not verify signatures: the apps do, against
the keys they ship with, so a wrong file costs a refusal there, not a bypass. It only
refuses to serve what no app could take: a file that is not a bundle (off the shape,
too large, unreadable) or a bundle for no app in particular (``app_id`` null) is
skipped with a warning naming the file, once per version of that file.

The directory is re-read on each request (one ``scandir`` and a ``stat`` per file;
a file is parsed again only when its size or modification time changed), so a bundle
dropped in (ideally written elsewhere and renamed in) is served at once, without a restart.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path

from pinset.errors import ConfigError
from pinset.updates import MAX_BUNDLE_BYTES, BundleError, unverified_payload

__all__ = ["APP_ID_PATTERN", "MAX_APP_ID", "BundleShelf", "PublishedBundle", "valid_app_id"]

log = logging.getLogger("pinset.collector")

#: The app ids the route answers: Android package names and iOS bundle ids (letters,
#: digits, ``_``, ``-``, dot-separated labels). Nothing else can reach the index, so
#: no ``..``, slash, NUL or empty label.
APP_ID_PATTERN = r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$"
_APP_ID = re.compile(APP_ID_PATTERN)
MAX_APP_ID = 255


@dataclass(frozen=True, slots=True)
class PublishedBundle:
    """One bundle file: its exact bytes, what its payload says, and its strong ETag."""

    path: str
    data: bytes
    app_id: str
    version: int

    @property
    def etag(self) -> str:
        """A strong entity tag: the SHA-256 of the bytes (quoted, RFC 9110 section 8.8.3)."""
        return '"' + hashlib.sha256(self.data).hexdigest() + '"'


_Stamp = tuple[int, int, int]  # inode, size, modification time (ns)


class BundleShelf:
    """The newest bundle per app among the files of ``directory``.

    ``latest(app_id)`` answers from the directory as it is now. Threads may call it at
    once (the routes run in a thread pool); the parsed files are shared.
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        if not self.directory.is_dir():
            raise ConfigError(
                "the bundles directory does not exist or is not a directory",
                source=str(self.directory),
                hint="give the directory the signed bundles are written to "
                "(pinset bundle sign ... -o DIR/app.json)",
            )
        self._lock = threading.Lock()
        # path -> (stamp, bundle or None for a file skipped with a warning)
        self._files: dict[str, tuple[_Stamp, PublishedBundle | None]] = {}
        self._warned: set[tuple[str, str, str, str]] = set()

    def latest(self, app_id: str) -> PublishedBundle | None:
        """The newest bundle (highest version) whose payload names ``app_id``, or ``None``."""
        if not valid_app_id(app_id):
            return None
        return self.newest().get(app_id)

    def newest(self) -> dict[str, PublishedBundle]:
        """The newest bundle of each app in the directory now.

        Two files with one app's greatest version: the later file name wins, with a
        warning (once), so the answer does not depend on the order files are listed in.
        """
        best: dict[str, PublishedBundle] = {}
        for bundle in self.scan():
            held = best.get(bundle.app_id)
            if held is not None and held.version == bundle.version:
                self._warn_once(held, bundle)
            if held is None or (bundle.version, bundle.path) > (held.version, held.path):
                best[bundle.app_id] = bundle
        return best

    def _warn_once(self, one: PublishedBundle, other: PublishedBundle) -> None:
        pair = (one.path, other.path, one.etag, other.etag)
        with self._lock:
            if pair in self._warned:
                return
            self._warned.add(pair)
        log.warning(
            "bundle files %s and %s both carry version %d for app %s; serving %s "
            "(the later name): give each new bundle a greater version",
            one.path,
            other.path,
            one.version,
            one.app_id,
            max(one.path, other.path),
        )

    def scan(self) -> list[PublishedBundle]:
        """Every servable bundle of the directory now (files skipped with a warning aside)."""
        try:
            entries = [e for e in os.scandir(self.directory) if not e.name.startswith(".")]
        except OSError as exc:
            log.warning("cannot list the bundles directory %s: %s", self.directory, exc)
            return []
        found: list[PublishedBundle] = []
        seen: dict[str, tuple[_Stamp, PublishedBundle | None]] = {}
        for entry in sorted(entries, key=lambda e: e.name):
            try:
                if not entry.is_file():
                    continue
                info = entry.stat()
            except OSError:
                continue  # removed while listing
            stamp = (info.st_ino, info.st_size, info.st_mtime_ns)
            with self._lock:
                known = self._files.get(entry.path)
            if known is None or known[0] != stamp:
                known = (stamp, _read(entry.path, info.st_size))
            seen[entry.path] = known
            if known[1] is not None:
                found.append(known[1])
        with self._lock:
            self._files = seen
        return found


def valid_app_id(app_id: str) -> bool:
    """Whether ``app_id`` is an app id the route answers (see :data:`APP_ID_PATTERN`)."""
    return len(app_id) <= MAX_APP_ID and _APP_ID.fullmatch(app_id) is not None


def _read(path: str, size: int) -> PublishedBundle | None:
    if size > MAX_BUNDLE_BYTES:
        log.warning(
            "skipping bundle file %s: %d bytes, over the %d a bundle may have",
            path,
            size,
            MAX_BUNDLE_BYTES,
        )
        return None
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_BUNDLE_BYTES + 1)
    except OSError as exc:
        log.warning("skipping bundle file %s: %s", path, exc.strerror or exc)
        return None
    try:
        payload = unverified_payload(data)
    except BundleError as exc:
        log.warning("skipping bundle file %s: %s (%s)", path, exc.message, exc.reason)
        return None
    if payload.app_id is None or not valid_app_id(payload.app_id):
        log.warning(
            "skipping bundle file %s: its app_id %r is not an app id the collector serves",
            path,
            payload.app_id,
        )
        return None
    return PublishedBundle(path, data, payload.app_id, payload.version)
