"""Signed pin-set bundles: change pins after release without opening a bypass.

A bundle is a small JSON document signed offline (Ed25519 or ECDSA P-256) that
carries the new state of domains the app already pins: more pins, a later
expiration, report-only, or the kill switch (``disable``). The app checks it
against keys it ships with and against its embedded policy, which bounds what a
bundle may do: a bundle can never pin a new domain or drop an embedded pin::

    data = sign_bundle(policy, key, version=2, issued=now, expires=now + week)
    result = verify_bundle(data, trusted_keys=["signing.pub"], now=now, embedded=policy)
    if result.valid:
        policy = apply_bundle(policy, result)

An app takes updates through :class:`UpdateSource` (pinned HTTPS or a file, a
store, a background refresh) and ``pinset.ssl_context(policy, updates=source)``.

The format is in docs/updates.md. Everything here is pure (time is a parameter)
except :class:`BundleStore`, the on-disk record of the newest applied bundle, and
:class:`UpdateSource`, which fetches.
"""

from __future__ import annotations

from pinset.updates._changes import Change, ChangeKind
from pinset.updates._document import (
    FORMAT,
    MAX_BUNDLE_BYTES,
    BundleError,
    DomainState,
    Payload,
    unverified_payload,
)
from pinset.updates._fetch import FETCH_REASONS, FetchFailure, FetchReason
from pinset.updates._sign import sign_bundle
from pinset.updates._signing import TrustedKey, load_trusted_keys, verify_signature
from pinset.updates._source import UpdateObserver, UpdateSource, UpdateStatus
from pinset.updates._store import BundleStore, StoredBundle
from pinset.updates._verify import REASONS, BundleResult, apply_bundle, verify_bundle

__all__ = [
    "FETCH_REASONS",
    "FORMAT",
    "MAX_BUNDLE_BYTES",
    "REASONS",
    "BundleError",
    "BundleResult",
    "BundleStore",
    "Change",
    "ChangeKind",
    "DomainState",
    "FetchFailure",
    "FetchReason",
    "Payload",
    "StoredBundle",
    "TrustedKey",
    "UpdateObserver",
    "UpdateSource",
    "UpdateStatus",
    "apply_bundle",
    "load_trusted_keys",
    "sign_bundle",
    "unverified_payload",
    "verify_bundle",
    "verify_signature",
]
