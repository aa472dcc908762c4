"""The verdict memo (:class:`VerdictMemo`), which :mod:`pinset.enforce._sockets` asks first."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Sequence
from typing import Any

from pinset.ct import LogList
from pinset.enforce._ct import ct_verdict
from pinset.pins import Pin
from pinset.policy import Policy
from pinset.verdict import Reason, Verdict, evaluate

__all__ = ["VerdictMemo", "verdict_at"]

# (chain, verdict, until): ``until`` is the instant the verdict stops holding (the
# rule's expiration) as a POSIX timestamp, None: never. A plain tuple, unpacked faster
# than a NamedTuple.
_Kept = tuple[Sequence[Any], Verdict, "float | None"]


class VerdictMemo:
    """Verdicts already reached under one policy, by host and verified chain.

    Judging a chain means reading the DER of every member and hashing its
    SubjectPublicKeyInfo; a client sees the same few chains over and over, so the
    verdict is kept. A chain is the list (or tuple) of its members as the TLS layer
    gives them (``ssl``'s certificate objects, which compare equal exactly when the
    certificates are, without converting them to DER) or DER bytes; a kept chain is
    found by comparing, not hashing, the members, among the few kept for the host.

    ``evaluate`` is pure and depends on the time only through the rule's expiration
    date, so a kept verdict is reused only before that rule's expiration instant (the
    expired verdicts are not kept); otherwise the chain is judged afresh. The lookup
    takes the time as a POSIX timestamp, which the system clock gives without making
    a ``datetime``.

    With ``ct_logs`` a ``pinned`` verdict on a ``require-ct`` rule also needs the
    leaf's SCTs to meet the CT policy (:mod:`pinset.enforce._ct`), as does a CT-only
    rule's ``ct-compliant``; a kept ``pinned`` or ``ct-compliant`` verdict passed that
    check, which does not depend on the time.
    """

    __slots__ = ("_entries", "_lock", "ct_logs", "override_anchors", "policy")

    MAX_HOSTS = 256  # hosts kept; on overflow the memo starts again
    MAX_CHAINS = 4  # chains kept per host, the newest last
    _KEEP: frozenset[Reason] = frozenset(
        {
            "pinned",
            "ct-compliant",
            "not-pinned",
            "pin-mismatch",
            "report-only-mismatch",
            "kill-switch",
        }
    )

    def __init__(
        self,
        policy: Policy,
        override_anchors: frozenset[Pin] = frozenset(),
        ct_logs: LogList | None = None,
    ) -> None:
        self.policy = policy
        self.override_anchors = override_anchors
        self.ct_logs = ct_logs
        self._entries: dict[str, tuple[_Kept, ...]] = {}
        self._lock = threading.Lock()

    def verdict(self, hostname: str, chain: Sequence[Any], now: dt.datetime) -> Verdict:
        """The verdict on ``chain`` for ``hostname`` at ``now``: kept, or judged and kept.

        ``chain`` is a list or tuple (a kept one is found again only as the same type).
        """
        kept = None
        if now.utcoffset() is not None:  # a naive time goes to evaluate(), which refuses it
            kept = self.kept(hostname, chain, now.timestamp())
        return self.judge(hostname, chain, now) if kept is None else verdict_at(kept, now)

    def kept(self, hostname: str, chain: Sequence[Any], when: float) -> Verdict | None:
        """The verdict kept for ``chain`` and ``hostname`` if it still holds at ``when``.

        ``when`` is a POSIX timestamp. The verdict is returned as it was reached, with
        its own ``now``: re-time it with :func:`verdict_at` before showing it to anyone.
        ``None``: judge afresh.
        """
        # Runs once per pinned handshake, right after it, when little is left in the
        # CPU's caches: every step counts (docs/performance.md).
        for kept_chain, verdict, until in self._entries.get(hostname, ()):
            if kept_chain == chain and (until is None or when < until):
                return verdict
        return None

    def judge(self, hostname: str, chain: Sequence[Any], now: dt.datetime) -> Verdict:
        """Judge ``chain`` afresh (:func:`~pinset.verdict.evaluate`) and keep the verdict."""
        verdict = evaluate(
            self.policy, hostname, chain, now=now, override_anchors=self.override_anchors
        )
        if self.ct_logs is not None:
            verdict = ct_verdict(verdict, self.ct_logs, now)
        # Expired and failed-closed verdicts are cheap or exceptional: not kept.
        if verdict.reason in self._KEEP and chain:
            rule = verdict.rule
            expires = rule.expires_at() if rule is not None and not rule.exclude else None
            kept: _Kept = (chain, verdict, None if expires is None else expires.timestamp())
            with self._lock:
                if len(self._entries) >= self.MAX_HOSTS and hostname not in self._entries:
                    self._entries.clear()
                others = [k for k in self._entries.get(hostname, ()) if k[0] != chain]
                # A new tuple, never changed in place: readers need no lock.
                self._entries[hostname] = (*others, kept)[-self.MAX_CHAINS :]
        return verdict


def verdict_at(verdict: Verdict, now: dt.datetime | float) -> Verdict:
    """``verdict`` as reached at ``now`` (a ``datetime`` or a POSIX timestamp, UTC)."""
    if not isinstance(now, dt.datetime):
        now = dt.datetime.fromtimestamp(now, dt.timezone.utc)
    v = verdict
    # The generated __init__, positionally: a third of the time of dataclasses.replace.
    return Verdict(
        v.host, v.allowed, v.reason, v.rule, v.matched_pin, v.served_pins, v.chain, now, v.error
    )
