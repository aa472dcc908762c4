"""A verified bundle rendered for a platform: the embedded policy with the bundle applied.

Only some platforms can take pins at run time (``pinset.formats.RUNTIME_UPDATES``); for the others
the rendering is what the next release must ship. The bundle is verified first, exactly
as an app would (:func:`pinset.updates.verify_bundle`); a refused one is never rendered.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable

from pinset.policy import Policy
from pinset.updates import BundleError, TrustedKey, apply_bundle, verify_bundle

__all__ = ["bundle_policy"]

# Formats that can say "report, do not block" for a kill-switched domain. The others
# (Android, OkHttp, App Transport Security) always enforce what they are given, so a
# domain the kill switch turns off is left out of them: not pinned, which is what the
# kill switch means there.
_REPORT_ONLY = frozenset(
    {"pinset", "pinset-json", "trustkit", "trustkit-swift", "trustkit-android"}
)


def bundle_policy(
    data: bytes,
    format: str,
    *,
    trusted_keys: Iterable[TrustedKey],
    embedded: Policy,
    now: dt.datetime,
    app_id: str | None = None,
    stored_version: int | None = None,
) -> Policy:
    """``embedded`` with the bundle ``data`` applied, as ``format`` is to render it.

    A refused bundle is a :class:`~pinset.updates.BundleError` with the reason.
    """
    result = verify_bundle(
        data,
        trusted_keys=trusted_keys,
        now=now,
        embedded=embedded,
        stored_version=stored_version,
        app_id=app_id,
    )
    if not result.valid:
        raise BundleError(
            result.reason or "malformed",
            f"refused ({result.reason}): {result.detail}",
            hint="pinset renders only a bundle an app would apply (pinset bundle verify)",
        )
    policy = apply_bundle(embedded, result)
    if format not in _REPORT_ONLY and result.disabled:
        off = set(result.disabled)
        policy = dataclasses.replace(
            policy, rules=tuple(rule for rule in policy.rules if rule.pattern not in off)
        )
    return policy
