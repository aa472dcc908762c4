"""The bundle store: atomic replacement, a crash before the rename, concurrent readers."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
from tests._bundles import (
    CURRENT,
    ED_KEY,
    EMBEDDED,
    NEW,
    NOW,
    OTHER_ED_KEY,
    bundle,
    public_pem,
    updated,
)

from pinset.errors import ConfigError
from pinset.updates import BundleStore
from pinset.updates._document import parse_document, parse_payload
from pinset.updates._store import STATE_FILE

TRUSTED = [ED_KEY.public_key()]


def offer(store: BundleStore, data: bytes) -> str | None:
    return store.offer(data, trusted_keys=TRUSTED, now=NOW, embedded=EMBEDDED).reason


def test_empty_store_has_no_bundle(tmp_path: Path) -> None:
    store = BundleStore(tmp_path / "state")
    assert store.current() is None
    assert store.version() is None


def test_valid_bundle_is_kept_and_older_ones_are_rollback(tmp_path: Path) -> None:
    store = BundleStore(tmp_path / "state")
    second, third = bundle(version=2), bundle(version=3)
    assert offer(store, second) is None
    stored = store.current()
    assert stored is not None
    assert (stored.version, stored.data) == (2, second)
    assert offer(store, third) is None
    assert offer(store, second) == "rollback"
    assert offer(store, third) == "rollback"  # the same version again
    assert store.current().data == third  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "refused",
    [
        bundle(version=9, key=OTHER_ED_KEY),  # unknown-key
        bundle(updated(pins=(CURRENT, NEW)), version=9),  # drops the backup pin
        b"{}",  # malformed
    ],
    ids=["unknown-key", "not-allowed", "malformed"],
)
def test_refused_bundle_changes_nothing(tmp_path: Path, refused: bytes) -> None:
    store = BundleStore(tmp_path)
    assert offer(store, bundle(version=2)) is None
    before = (tmp_path / STATE_FILE).read_bytes()
    assert offer(store, refused) is not None
    assert (tmp_path / STATE_FILE).read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [STATE_FILE]


def test_damaged_store_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / STATE_FILE).write_text('{"version": "2"}')
    with pytest.raises(ConfigError, match="damaged"):
        BundleStore(tmp_path).current()


def test_crash_between_write_and_rename_keeps_the_last_good_state(tmp_path: Path) -> None:
    store_dir = tmp_path / "state"
    store = BundleStore(store_dir)
    second = bundle(version=2)
    assert offer(store, second) is None
    (tmp_path / "third.json").write_bytes(bundle(version=3))
    (tmp_path / "signing.pub").write_bytes(public_pem(ED_KEY))
    # A child process dies (no clean-up, no exception handlers) right where the rename
    # would happen: after the temporary file is written and synced.
    script = textwrap.dedent(
        f"""
        import datetime as dt, os
        from pinset.updates import BundleStore
        def crash(*args, **kwargs):
            os._exit(9)
        os.replace = crash
        BundleStore({str(store_dir)!r}).offer(
            open({str(tmp_path / "third.json")!r}, "rb").read(),
            trusted_keys=[{str(tmp_path / "signing.pub")!r}],
            now=dt.datetime(2026, 12, 6, 12, tzinfo=dt.timezone.utc),
        )
        os._exit(0)
        """
    )
    child = subprocess.run([sys.executable, "-c", script], check=False, timeout=60)
    assert child.returncode == 9
    leftovers = [p.name for p in store_dir.iterdir() if p.name != STATE_FILE]
    assert len(leftovers) == 1  # the synced temporary file the crash left behind
    assert json.loads((store_dir / leftovers[0]).read_bytes())["version"] == 3
    stored = store.current()
    assert stored is not None
    assert (stored.version, stored.data) == (2, second)
    # The next write succeeds and clears what the crash left.
    assert offer(store, bundle(version=3)) is None
    assert [p.name for p in store_dir.iterdir()] == [STATE_FILE]
    assert store.version() == 3


def test_concurrent_readers_see_one_consistent_bundle(tmp_path: Path) -> None:
    store = BundleStore(tmp_path)
    assert offer(store, bundle(version=1)) is None
    bundles = [bundle(version=v) for v in range(2, 42)]
    done = threading.Event()
    errors: list[str] = []
    reads = [0]

    def read() -> None:
        last = 0
        while not done.is_set():
            try:
                stored = BundleStore(tmp_path).current()
                assert stored is not None
                signed_version = parse_payload(parse_document(stored.data).payload).version
            except Exception as exc:  # a torn read: half a file, or none
                errors.append(repr(exc))
                return
            if signed_version != stored.version or stored.version < last:
                errors.append(f"read {stored.version} with payload {signed_version} after {last}")
            last = stored.version
            reads[0] += 1

    readers = [threading.Thread(target=read) for _ in range(4)]
    for thread in readers:
        thread.start()
    try:
        for data in bundles:
            assert offer(store, data) is None
    finally:
        done.set()
        for thread in readers:
            thread.join()
    assert errors == []
    assert reads[0] > 0
    assert store.version() == 41


def test_concurrent_writers_never_go_back(tmp_path: Path) -> None:
    store = BundleStore(tmp_path)
    bundles = [bundle(version=v) for v in range(1, 21)]
    results: list[str | None] = []

    def write(data: bytes) -> None:
        results.append(offer(store, data))

    threads = [threading.Thread(target=write, args=(d,)) for d in reversed(bundles)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert store.version() == 20  # whatever the order, the newest wins and stays
    assert set(results) <= {None, "rollback"}
