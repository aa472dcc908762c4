"""``GET /v1/pins/{app_id}``: the collector publishes the newest signed bundle per app.

The mapping from files to apps comes from each file's signed payload, never from its
name; a file that is not a servable bundle is skipped with a warning naming it.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from _bundles import ED_KEY, EMBEDDED, NOW, bundle, public_pem
from pinset.collector import Settings, create_app
from pinset.errors import ConfigError
from pinset.updates import MAX_BUNDLE_BYTES, verify_bundle

APP = "com.example.app"


@pytest.fixture
def bundles(tmp_path: Path) -> Path:
    directory = tmp_path / "bundles"
    directory.mkdir()
    return directory


@pytest.fixture
def client(tmp_path: Path, bundles: Path) -> Iterator[TestClient]:
    settings = Settings(
        db_url=f"sqlite:///{tmp_path / 'c.db'}", token="t", bundles_dir=str(bundles)
    )
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def test_serves_the_newest_version_per_app_by_payload_not_file_name(
    client: TestClient, bundles: Path
) -> None:
    v2 = bundle(version=2, app_id=APP)
    v3 = bundle(version=3, app_id=APP)
    other = bundle(version=9, app_id="com.example.other")
    # The names lie: "latest.json" holds version 2, "com.example.other.json" holds APP's v3.
    (bundles / "latest.json").write_bytes(v2)
    (bundles / "com.example.other.json").write_bytes(v3)
    (bundles / "z.json").write_bytes(other)

    response = client.get(f"/v1/pins/{APP}")
    assert response.status_code == 200
    assert response.content == v3  # the exact signed bytes
    assert response.headers["content-type"] == "application/json"
    assert response.headers["etag"] == '"' + hashlib.sha256(v3).hexdigest() + '"'
    assert response.headers["cache-control"] == "no-cache"
    # What was served is what an app verifies.
    result = verify_bundle(
        response.content, trusted_keys=[public_pem(ED_KEY)], now=NOW, embedded=EMBEDDED, app_id=APP
    )
    assert result.valid
    assert result.version == 3

    assert client.get("/v1/pins/com.example.other").content == other


def test_a_new_file_is_served_without_a_restart(client: TestClient, bundles: Path) -> None:
    (bundles / "a.json").write_bytes(bundle(version=2, app_id=APP))
    assert client.get(f"/v1/pins/{APP}").content == bundle(version=2, app_id=APP)
    kill = bundle(version=3, app_id=APP, disable=["cdn.example.com"])
    (bundles / "kill.json").write_bytes(kill)
    assert client.get(f"/v1/pins/{APP}").content == kill
    (bundles / "kill.json").unlink()
    assert client.get(f"/v1/pins/{APP}").content == bundle(version=2, app_id=APP)


def test_if_none_match_gives_304(client: TestClient, bundles: Path) -> None:
    (bundles / "a.json").write_bytes(bundle(app_id=APP))
    etag = client.get(f"/v1/pins/{APP}").headers["etag"]
    for header in (etag, f'"other", {etag}', f"W/{etag}", "*"):
        response = client.get(f"/v1/pins/{APP}", headers={"If-None-Match": header})
        assert response.status_code == 304, header
        assert response.content == b""
        assert response.headers["etag"] == etag
    assert client.get(f"/v1/pins/{APP}", headers={"If-None-Match": '"x"'}).status_code == 200


def test_unknown_app_is_404_and_reading_needs_no_token(client: TestClient, bundles: Path) -> None:
    (bundles / "a.json").write_bytes(bundle(app_id=APP))
    response = client.get("/v1/pins/com.example.unknown")
    assert response.status_code == 404
    assert response.json()["error"] == "no-bundle"
    assert client.get(f"/v1/pins/{APP}").status_code == 200  # no Authorization header


@pytest.mark.parametrize(
    "app_id",
    ["..", ".hidden", "a..b", "a.", "a%00b", "%2e%2e", "a b", "é", "x" * 256, "a%2Fb"],
)
def test_path_tricks_in_the_app_id_are_refused(
    client: TestClient, bundles: Path, app_id: str
) -> None:
    (bundles / "a.json").write_bytes(bundle(app_id=APP))
    response = client.get(f"/v1/pins/{app_id}")
    assert response.status_code in (404, 422), response.text
    assert response.content != bundle(app_id=APP)


def test_traversal_never_reaches_a_file_outside_the_directory(
    client: TestClient, bundles: Path
) -> None:
    # A bundle next to the directory, named like the app: only files in DIR are read.
    (bundles.parent / f"{APP}.json").write_bytes(bundle(app_id=APP))
    assert client.get(f"/v1/pins/{APP}").status_code == 404
    assert client.get(f"/v1/pins/..%2F{APP}.json").status_code == 404


def test_malformed_files_are_skipped_with_a_warning_naming_them(
    client: TestClient, bundles: Path, caplog: pytest.LogCaptureFixture
) -> None:
    good = bundle(version=2, app_id=APP)
    (bundles / "good.json").write_bytes(good)
    (bundles / "broken.json").write_bytes(good[:40])
    (bundles / "README").write_text("not a bundle\n")
    (bundles / "huge.json").write_bytes(b" " * (MAX_BUNDLE_BYTES + 1))
    (bundles / "any-app.json").write_bytes(bundle(version=7))  # app_id null
    (bundles / "odd-app.json").write_bytes(bundle(version=8, app_id="../etc"))
    (bundles / "subdir").mkdir()
    (bundles / ".partial.json").write_bytes(b"{")  # hidden: skipped silently
    with caplog.at_level(logging.WARNING, logger="pinset.collector"):
        assert client.get(f"/v1/pins/{APP}").content == good
        messages = [r.getMessage() for r in caplog.records]
        for name in ("broken.json", "README", "huge.json", "any-app.json", "odd-app.json"):
            assert any(str(bundles / name) in m for m in messages), (name, messages)
        assert not any(".partial.json" in m or "subdir" in m for m in messages)
        # Once per version of a file, not once per request.
        caplog.clear()
        assert client.get(f"/v1/pins/{APP}").status_code == 200
        assert caplog.records == []
    assert client.get("/v1/pins/..%2Fetc").status_code == 404


def test_two_files_with_one_version_serve_the_later_name_with_a_warning(
    client: TestClient, bundles: Path, caplog: pytest.LogCaptureFixture
) -> None:
    first = bundle(version=4, app_id=APP)
    second = bundle(version=4, app_id=APP, disable=["cdn.example.com"])
    (bundles / "b.json").write_bytes(second)
    (bundles / "a.json").write_bytes(first)
    with caplog.at_level(logging.WARNING, logger="pinset.collector"):
        assert client.get(f"/v1/pins/{APP}").content == second
    assert any("both carry version 4" in r.getMessage() for r in caplog.records)


def test_without_a_bundles_directory_every_app_is_404(tmp_path: Path) -> None:
    settings = Settings(db_url=f"sqlite:///{tmp_path / 'c.db'}", token="t")
    with TestClient(create_app(settings)) as client:
        assert client.get(f"/v1/pins/{APP}").status_code == 404


def test_a_missing_bundles_directory_is_a_config_error(tmp_path: Path) -> None:
    settings = Settings(db_url=f"sqlite:///{tmp_path / 'c.db'}", bundles_dir=str(tmp_path / "no"))
    with pytest.raises(ConfigError, match="bundles directory"):
        create_app(settings)
    assert not (tmp_path / "c.db").exists()  # refused before the database is touched


def test_the_bundles_directory_reaches_worker_processes(tmp_path: Path) -> None:
    settings = Settings(bundles_dir=str(tmp_path))
    assert settings.to_env()["PINSET_COLLECTOR_BUNDLES"] == str(tmp_path)
    assert "PINSET_COLLECTOR_BUNDLES" not in Settings().to_env()
