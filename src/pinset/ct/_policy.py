"""The CT policy: enough valid SCTs, from enough logs and operators, for the certificate.

:func:`required_scts` is Chrome's table (embedded SCTs by certificate lifetime);
:func:`judge` is the pure decision over already-checked SCTs; :func:`check_chain`
verifies a chain's embedded SCTs against a log list and judges them. Time is
always a parameter. The reasons are stable strings: ``ct-missing`` (no embedded
SCT), ``ct-invalid`` (not enough, and at least one SCT's signature failed) and
``ct-insufficient`` (not enough, for any other cause).
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

from cryptography import x509

from pinset.ct._loglist import LogList
from pinset.ct._sct import SCTCheck, embedded_scts, verify_embedded

__all__ = ["REASONS", "CTReason", "CTResult", "check_chain", "judge", "required_scts"]

CTReason = Literal["ct-missing", "ct-insufficient", "ct-invalid"]
REASONS: tuple[CTReason, ...] = get_args(CTReason)

# Chrome CT policy, "CT Compliant Certificates", embedded SCTs (certificates
# issued on or after 2022-04-15): lifetime <= 180 days needs 2 SCTs from distinct
# logs, longer needs 3. Apple's CT policy has the same two rows. docs/ct.md.
_SHORT_LIFETIME = dt.timedelta(days=180)
MIN_OPERATORS = 2
_CURRENT = ("qualified", "usable", "readonly")


def required_scts(not_before: dt.datetime, not_after: dt.datetime) -> int:
    """How many SCTs from distinct logs a certificate valid over this span must embed."""
    return 2 if not_after - not_before <= _SHORT_LIFETIME else 3


@dataclass(frozen=True, slots=True)
class CTResult:
    """The CT judgement on one chain: compliant or not, why, and every SCT's check."""

    compliant: bool
    reason: CTReason | None
    scts: tuple[SCTCheck, ...]
    required: int
    detail: str

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of ``pinset ct check --json``."""
        return {
            "compliant": self.compliant,
            "reason": self.reason,
            "scts": [_sct_dict(check) for check in self.scts],
        }


def _sct_dict(check: SCTCheck) -> dict[str, Any]:
    log = check.log
    return {
        "log_id": base64.b64encode(check.log_id).decode("ascii"),
        "log": log.description if log else None,
        "operator": log.operator if log else None,
        "timestamp": check.timestamp.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "signature": check.signature,
        "log_state": log.state if log else None,
    }


def judge(checks: Sequence[SCTCheck], not_before: dt.datetime, not_after: dt.datetime) -> CTResult:
    """The policy decision over the checked SCTs of a certificate valid over this span.

    Compliant when the SCTs that count come from at least :func:`required_scts`
    distinct logs and at least two distinct operators, and at least one of those
    logs is still qualified, usable or read-only (a retired log's SCT counts only
    if issued before the retirement, and never alone).
    """
    scts = tuple(checks)
    need = required_scts(not_before, not_after)
    if not scts:
        return CTResult(False, "ct-missing", scts, need, "the certificate embeds no SCT")
    counted = [c for c in scts if c.counts and c.log is not None]
    logs = {c.log_id for c in counted}
    operators = {c.log.operator for c in counted if c.log is not None}
    current = [c for c in counted if c.log is not None and c.log.state in _CURRENT]
    found = (
        f"{len(logs)} counted SCT{'s' if len(logs) != 1 else ''} from "
        f"{len(operators)} operator{'s' if len(operators) != 1 else ''} "
        f"(need {need} from {MIN_OPERATORS}; {len(scts)} embedded)"
    )
    if len(logs) >= need and len(operators) >= MIN_OPERATORS and current:
        return CTResult(True, None, scts, need, found)
    if not current and logs:
        found += "; none from a log that is still qualified, usable or read-only"
    invalid = sum(1 for c in scts if c.signature == "invalid")
    if invalid:
        return CTResult(False, "ct-invalid", scts, need, f"{found}; {invalid} with a bad signature")
    return CTResult(False, "ct-insufficient", scts, need, found)


def _certificate(member: Any) -> x509.Certificate:
    if isinstance(member, x509.Certificate):
        return member
    if isinstance(member, bytes | bytearray | memoryview):
        return x509.load_der_x509_certificate(bytes(member))
    # ssl's own certificate objects; 2 is ENCODING_DER.
    return x509.load_der_x509_certificate(bytes(member.public_bytes(2)))


def _has_sct_list(leaf: x509.Certificate) -> bool:
    try:
        return bool(embedded_scts(leaf))
    except ValueError:
        return True


def check_chain(chain: Sequence[Any], logs: LogList, *, now: dt.datetime) -> CTResult:
    """Verify the SCTs embedded in ``chain[0]`` against ``logs`` and judge them at ``now``.

    ``chain`` is the *verified* chain, leaf first (``x509.Certificate``, DER bytes or
    ``ssl``'s certificate objects): ``chain[1]`` must be the leaf's issuer, whose key
    hash the SCTs sign. A chain of the leaf alone cannot be checked:
    ``ct-insufficient``. ``now`` must be timezone-aware.
    """
    if now.utcoffset() is None:
        raise ValueError("now must be a timezone-aware datetime")
    if not chain:
        raise ValueError("check_chain needs at least the leaf certificate")
    leaf = _certificate(chain[0])
    start, end = leaf.not_valid_before_utc, leaf.not_valid_after_utc
    if len(chain) < 2:
        if not _has_sct_list(leaf):
            return judge((), start, end)
        need = required_scts(start, end)
        return CTResult(
            False, "ct-insufficient", (), need, "no issuer in the chain to check the SCTs with"
        )
    issuer = _certificate(chain[1])
    try:
        checks = verify_embedded((leaf, issuer), logs, now)
    except ValueError as exc:
        # cryptography parses the SCT list lazily: a malformed one fails here.
        need = required_scts(start, end)
        return CTResult(
            False, "ct-invalid", (), need, f"the embedded SCT list is malformed ({exc})"
        )
    return judge(checks, start, end)
