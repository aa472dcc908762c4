"""Fuzzing the collector API in-process: no generated request may earn a 5xx or lose a report.

Two fuzzers, both through the ASGI app (no network server):

* schemathesis, from the app's own OpenAPI schema, for every operation, with the
  read token supplied: the only check is ``not_a_server_error``;
* hypothesis, RFC 7469 / TrustKit iOS / TrustKit Android / pinset report bodies with
  random mutations (missing fields, wrong types, huge strings, broken PEM and pins,
  broken JSON): only 202, 400, 413 or 429 may come back, and every report answered
  202 must be readable from ``GET /v1/reports`` right away.
"""
# ruff: noqa: F811 - the fixtures imported from collector_fixtures are redefined as parameters

from __future__ import annotations

import base64
import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from _bundles import bundle
from collector_fixtures import db_url, pems_of  # noqa: F401 - fixtures
from pinset.collector import Settings, create_app
from pinset.collector._normalize import KNOWN_FIELDS
from pinset.hosts import canonical_host
from pinset.testing import TestPKI

TOKEN = "fuzz-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ACCEPTABLE = {202, 400, 413, 429}
MAX_BODY = 64 * 1024

# ---------------------------------------------------------------- schemathesis


@pytest.fixture(scope="module")
def schema_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    db = tmp_path_factory.mktemp("schemathesis") / "collector.db"
    bundles = tmp_path_factory.mktemp("bundles")
    (bundles / "app.json").write_bytes(bundle(app_id="com.example.app"))
    (bundles / "broken.json").write_bytes(b"{")
    settings_ = Settings(
        db_url=f"sqlite:///{db}", token=TOKEN, rate_per_second=0, bundles_dir=str(bundles)
    )
    app = create_app(settings_)
    with TestClient(app):  # runs the lifespan: the writer thread starts and stops with it
        yield app


@pytest.fixture(scope="module")
def api_schema(schema_app: FastAPI) -> Any:
    return schemathesis.openapi.from_asgi("/openapi.json", schema_app)


# Every operation of the API; test_every_operation_is_fuzzed keeps this list complete.
OPERATIONS = (
    ("POST", "/v1/report"),
    ("POST", "/v1/tallies"),
    ("GET", "/v1/summary"),
    ("GET", "/v1/adoption"),
    ("POST", "/v1/update-events"),
    ("GET", "/v1/update-events"),
    ("GET", "/v1/reports"),
    ("GET", "/v1/chains"),
    ("GET", "/v1/alerts"),
    ("GET", "/metrics"),
    ("GET", "/healthz"),
    ("GET", "/v1/pins/{app_id}"),
)


# The @given is on the inner function, so hypothesis' plugin does not see this as one of its
# tests: the marker puts it in `make fuzz` (-m hypothesis) with the others.
@pytest.mark.hypothesis
@pytest.mark.parametrize("mode", list(GenerationMode), ids=lambda m: m.value)
@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_no_operation_answers_5xx(
    api_schema: Any, method: str, path: str, mode: GenerationMode
) -> None:
    # schemathesis' pytest plumbing (from_fixture) does not run on this pytest, so drive
    # each operation's strategy directly: positive cases follow the schema, negative
    # ones break it on purpose.
    operation = api_schema[path][method]

    @given(case=operation.as_strategy(mode))
    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
    def fuzz(case: Any) -> None:
        response = case.call_and_validate(headers=AUTH, checks=[not_a_server_error])
        event(f"HTTP {response.status_code}")

    try:
        fuzz()
    except Unsatisfiable:
        if mode is GenerationMode.POSITIVE:
            raise
        pytest.skip(f"{method} {path} has no parameter, body or security to break")


def test_every_operation_is_fuzzed(api_schema: Any) -> None:
    listed = {
        (result.ok().method.upper(), result.ok().path) for result in api_schema.get_all_operations()
    }
    assert listed == set(OPERATIONS)


# ---------------------------------------------------------------- report bodies

PIN_OK = 'pin-sha256="E9CZ9INDbd+2eRQozYqqbQ2yXLVKB9+xcprMF+44U1g="'
_serial = itertools.count()

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
# Every field the collector reads, and one it only keeps as an extra.
KEYS = (*sorted(KNOWN_FIELDS), "trustkit-version")

TEXT_KEYS = ("hostname", "noted-hostname", "app-bundle-id", "app-version", "app-platform")


def _base(shape: str, host: str, chain: list[str]) -> dict[str, Any]:
    report: dict[str, Any] = {
        "date-time": "2026-11-28T08:00:00Z",
        "hostname": host,
        "port": 443,
        "noted-hostname": host.split(".", 1)[-1],
        "include-subdomains": True,
        "served-certificate-chain": chain,
        "validated-certificate-chain": chain,
        "known-pins": [PIN_OK, 'pin-sha256="d6qzRu9zOECb90Uez27xWltNsj0e1Md7GkYYkVoZWmM="'],
    }
    if shape == "rfc7469":
        report["effective-expiration-date"] = "2027-06-30T00:00:00Z"
    elif shape == "trustkit-ios":
        report.update(
            {
                "app-bundle-id": "com.example.app",
                "app-version": "2.4.1",
                "app-platform": "IOS",
                "app-platform-version": "17.5.0",
                "trustkit-version": "3.0.3",
                "enforce-pinning": True,
                "validation-result": 1,
                "known-pins-expiration-date": "2027-06-30",
            }
        )
    elif shape == "trustkit-android":
        report.update(
            {
                "app-bundle-id": "com.example.app",
                "app-version": "311",
                "app-vendor-id": "c9d7b8e2-0000-4000-8000-000000000000",
                "app-platform": "ANDROID",
                "app-platform-version": "34",
                "trustkit-version": "1.1.5",
                "enforce-pinning": False,
                "validation-result": 2,
                "known-pins-expiration-date": "2027-06-30",
            }
        )
    else:  # pinset's own client
        report.update(
            {
                "app-platform": "PYTHON",
                "enforce-pinning": True,
                "validation-result": 1,
                "pinset-reason": "pin-mismatch",
            }
        )
    return report


def _corrupt_pem(pem: str, how: str, data: st.DataObject) -> str:
    lines = pem.strip().splitlines()
    body = "".join(lines[1:-1]) or "MA=="  # an earlier mutation may have emptied it
    if how == "truncate":
        return pem[: data.draw(st.integers(0, max(len(pem) - 1, 0)), label="cut")]
    if how == "bad-base64":
        at = data.draw(st.integers(0, len(body) - 1), label="at")
        body = body[:at] + data.draw(st.sampled_from("!*~\x00é"), label="char") + body[at + 1 :]
    elif how == "not-a-certificate":
        body = base64.b64encode(data.draw(st.binary(max_size=200), label="der")).decode()
    else:  # flip one base64 letter: DER that may or may not still parse
        at = data.draw(st.integers(0, len(body) - 1), label="at")
        body = body[:at] + ("A" if body[at] != "A" else "B") + body[at + 1 :]
    return f"-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n"


def _mutate(report: dict[str, Any], data: st.DataObject) -> None:
    for _ in range(data.draw(st.integers(0, 3), label="mutations")):
        kind = data.draw(
            st.sampled_from(
                [
                    "drop",
                    "retype",
                    "huge",
                    "pem",
                    "pin",
                    "extra",
                    "port",
                    "date",
                    "chain-size",
                    "nul",
                ]
            ),
            label="kind",
        )
        key = data.draw(st.sampled_from(KEYS), label="key")
        if kind == "drop":
            report.pop(key, None)
        elif kind == "retype":
            report[key] = data.draw(json_values, label="value")
        elif kind == "huge":
            size = data.draw(st.sampled_from([256, 5_000, MAX_BODY + 10]), label="size")
            report[key] = data.draw(st.sampled_from("xé\u2028."), label="fill") * size
        elif kind == "pem":
            chain_key = data.draw(
                st.sampled_from(["served-certificate-chain", "validated-certificate-chain"])
            )
            chain = report.get(chain_key)
            if isinstance(chain, list) and chain and isinstance(chain[0], str):
                how = data.draw(
                    st.sampled_from(["truncate", "bad-base64", "not-a-certificate", "flip"])
                )
                chain = list(chain)
                chain[0] = _corrupt_pem(chain[0], how, data)
                report[chain_key] = chain
        elif kind == "pin":
            report["known-pins"] = [
                data.draw(
                    st.sampled_from(
                        [
                            'pin-sha256="!!!notbase64"',
                            'pin-sha256="AAAA"',
                            "sha1/" + "A" * 27 + "=",
                            "sha256/E9CZ9INDbd-2eRQozYqqbQ2yXLVKB9_xcprMF-44U1g",
                            "sha256/E9CZ9INDbd+2eRQozYqqbQ2yXLVKB9+xcprMF+44U1g",
                            "",
                        ]
                    )
                    | st.text(max_size=60),
                    label="pin",
                )
            ]
        elif kind == "extra":
            report[data.draw(st.text(max_size=30), label="extra-key")] = data.draw(json_values)
        elif kind == "port":
            report["port"] = data.draw(
                st.sampled_from([0, -1, 65536, 2**70, True, "443", 443.0]), label="port"
            )
        elif kind == "date":
            report["date-time"] = data.draw(
                st.sampled_from(["", "yesterday", "2026-13-40T99:00:00Z", "2026-11-28", "1e309"])
                | st.text(max_size=30),
                label="date",
            )
        elif kind == "nul":
            # PostgreSQL text cannot hold NUL: it must be refused, not fail the batch's commit.
            text_key = data.draw(st.sampled_from(TEXT_KEYS), label="text-key")
            report[text_key] = data.draw(st.sampled_from(["a\x00b", "\x00", "v1\x00"]))
        else:
            chain = report.get("served-certificate-chain")
            if isinstance(chain, list) and chain:
                report["served-certificate-chain"] = chain * 17


def _encode(report: dict[str, Any], data: st.DataObject) -> bytes:
    framing = data.draw(
        st.sampled_from(["json"] * 6 + ["not-an-object", "truncated", "latin1", "deep", "empty"]),
        label="framing",
    )
    if framing == "not-an-object":
        return json.dumps([report]).encode()
    text = json.dumps(report, ensure_ascii=data.draw(st.booleans(), label="ascii"))
    if framing == "truncated":
        return text[: len(text) // 2].encode()
    if framing == "latin1":
        return text.replace('"', '"\xe9', 1).encode("latin-1", errors="replace")
    if framing == "deep":
        return b'{"hostname": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    if framing == "empty":
        return b""
    return text.encode()


@pytest.fixture(scope="module")
def chain(pki: TestPKI) -> list[str]:
    """What an interception CA's server would present: a rogue leaf and its issuer's name."""
    return pems_of(pki.rogue.issue_cert("api.example.com"))


@pytest.fixture
def report_api(db_url: str) -> Iterator[TestClient]:
    # One app per database for all hypothesis examples: reports accumulate, as in production.
    settings_ = Settings(db_url=db_url, token=TOKEN, rate_per_second=0)
    with TestClient(create_app(settings_)) as client:
        yield client


@given(data=st.data())
@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_mutated_reports_are_refused_or_kept(
    report_api: TestClient, chain: list[str], data: st.DataObject
) -> None:
    shape = data.draw(
        st.sampled_from(["rfc7469", "trustkit-ios", "trustkit-android", "pinset"]), label="shape"
    )
    host = f"h{next(_serial)}.fuzz.example.com"
    report = _base(shape, host, chain)
    _mutate(report, data)
    body = _encode(report, data)
    response = report_api.post(
        "/v1/report", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code in ACCEPTABLE, (response.status_code, response.text)
    event(f"HTTP {response.status_code}")
    if response.status_code != 202:
        assert response.json()["error"], response.text  # a refusal names its reason
        return
    # Accepted means stored: the report is on the first page of its host's reports.
    decoded = json.loads(body)
    hostname = canonical_host(decoded["hostname"])  # accepted: a host name, stored canonical
    page = report_api.get("/v1/reports", params={"hostname": hostname, "limit": 500}, headers=AUTH)
    assert page.status_code == 200, page.text
    stored = [
        item
        for item in page.json()["items"]
        if item["hostname"] == hostname
        and item["port"] == (decoded.get("port") or None)  # 0 is stored as unknown
        and item["app_version"] == decoded.get("app-version")
    ]
    assert stored, (decoded, page.json())


def test_fuzz_corpus_includes_real_acceptances(tmp_path: Path, chain: list[str]) -> None:
    # The property above would pass vacuously if every base report were refused.
    settings_ = Settings(db_url=f"sqlite:///{tmp_path / 'c.db'}", token=TOKEN, rate_per_second=0)
    with TestClient(create_app(settings_)) as client:
        for shape in ("rfc7469", "trustkit-ios", "trustkit-android", "pinset"):
            response = client.post("/v1/report", json=_base(shape, f"{shape}.example.com", chain))
            assert response.status_code == 202, (shape, response.text)
