"""The bundle parser under arbitrary input: a refusal with a known reason, never a crash."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from tests._bundles import ED_KEY, EMBEDDED, NOW, bundle, payload_of, signed

from pinset.updates import REASONS, verify_bundle

TRUSTED = [ED_KEY.public_key()]
GOOD = json.loads(bundle())

json_values: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)


def check(data: bytes) -> str | None:
    result = verify_bundle(data, trusted_keys=TRUSTED, now=NOW, embedded=EMBEDDED)
    assert result.reason in REASONS or (result.valid and result.reason is None)
    return result.reason


@given(st.binary(max_size=2048))
def test_arbitrary_bytes_are_refused(data: bytes) -> None:
    assert check(data) is not None


@given(json_values)
def test_arbitrary_json_documents_are_malformed(value: Any) -> None:
    assert check(json.dumps(value).encode()) == "malformed"


@given(
    st.sampled_from(["format", "payload", "signatures"]),
    json_values,
)
def test_one_replaced_document_field_is_refused(field: str, value: Any) -> None:
    assert check(json.dumps({**GOOD, field: value}).encode()) is not None


@given(
    st.sampled_from(["key", "alg", "sig"]),
    json_values,
)
def test_one_replaced_signature_field_is_refused(field: str, value: Any) -> None:
    entry = {**GOOD["signatures"][0], field: value}
    assert check(json.dumps({**GOOD, "signatures": [entry]}).encode()) is not None


@given(
    st.sampled_from(["version", "issued", "expires", "app_id", "domains", "disable"]),
    json_values,
)
def test_signed_payload_with_one_odd_field_never_crashes(field: str, value: Any) -> None:
    # Signed by the trusted key, so every check past the signature is reached.
    check(signed(json.dumps(payload_of(**{field: value})).encode()))


@given(
    st.lists(
        st.dictionaries(
            st.sampled_from(["name", "pins", "include_subdomains", "expiration", "enforce", "x"]),
            json_values,
            max_size=5,
        ),
        max_size=3,
    )
)
def test_signed_payload_with_odd_domains_never_crashes(domains: list[dict[str, Any]]) -> None:
    check(signed(json.dumps(payload_of(domains=domains)).encode()))
