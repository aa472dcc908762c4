"""The verdict memo (:class:`VerdictMemo`), which :mod:`pinset.enforce._sockets` asks first."""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
from typing import Any

from pinset.policy import Policy
from pinset.verdict import Verdict, evaluate

__all__ = ["VerdictMemo"]


class VerdictMemo:
    """Verdicts already reached under one policy, keyed by host and verified chain (DER).

    Judging a chain means slicing and hashing every SubjectPublicKeyInfo; a client
    sees the same few chains over and over, so the verdict is kept. ``evaluate`` is
    pure and depends on the time only through the rule's expiration date, so a kept
    verdict is reused only while that rule's expired-or-not state at ``now`` is
    the one the verdict was reached with; otherwise it is judged afresh.
    """

    __slots__ = ("_entries", "_lock", "policy")

    MAX_ENTRIES = 256
    _KEEP = frozenset({"pinned", "not-pinned", "pin-mismatch", "report-only-mismatch"})

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self._entries: dict[tuple[str, tuple[bytes, ...]], Verdict] = {}
        self._lock = threading.Lock()

    def verdict(self, hostname: str, chain: tuple[bytes, ...], now: dt.datetime) -> Verdict:
        key = (hostname, chain)
        kept = self._entries.get(key)
        if kept is not None and kept.now is not None and now.tzinfo is not None:
            rule = kept.rule
            expired = rule is not None and not rule.exclude and rule.is_expired(now)
            if not expired:
                return dataclasses.replace(kept, now=now)
        verdict = evaluate(self.policy, hostname, chain, now=now)
        # Expired and failed-closed verdicts are cheap or exceptional: not kept.
        if verdict.reason in self._KEEP and chain:
            with self._lock:
                if len(self._entries) >= self.MAX_ENTRIES:
                    self._entries.clear()
                self._entries[key] = verdict
        return verdict

