"""PinMismatchError: the pinning failure, an :class:`ssl.SSLCertVerificationError` too.

Public as :class:`pinset.errors.PinMismatchError` (and ``pinset.PinMismatchError``);
it lives here so that :mod:`pinset.errors` loads without :mod:`ssl`.
"""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from typing import TYPE_CHECKING

from pinset.errors import PinsetError

if TYPE_CHECKING:
    from pinset.pins import Pin
    from pinset.verdict import Verdict

__all__ = ["PinMismatchError"]


class PinMismatchError(PinsetError, ssl.SSLCertVerificationError):
    """The verified chain of a pinned host matches none of its pins.

    It is an :class:`ssl.SSLCertVerificationError`, so every client library reports
    it as its own certificate error. ``expected`` are the configured pins,
    ``served`` the pins of the verified chain (leaf first) and ``verdict`` the full
    :class:`pinset.Verdict`.
    """

    def __init__(
        self,
        message: str,
        *,
        hostname: str,
        expected: Sequence[Pin] = (),
        served: Sequence[Pin] = (),
        verdict: Verdict | None = None,
        hint: str | None = None,
    ) -> None:
        self.hostname = hostname
        self.expected = tuple(expected)
        self.served = tuple(served)
        self.verdict = verdict
        # What ssl.SSLCertVerificationError carries for OpenSSL's own failures.
        self.verify_code = 0
        self.verify_message = "certificate public key does not match the pinned keys"
        super().__init__(message, source=hostname, hint=hint)

    def _render(self) -> str:
        return self.message

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[object, ...]:
        return (rebuild_mismatch, (self.message, self.hostname, self.expected, self.served))


# Tracebacks, reprs and pickles name the public place.
PinMismatchError.__module__ = "pinset.errors"


def rebuild_mismatch(
    message: str, hostname: str, expected: Sequence[Pin], served: Sequence[Pin]
) -> PinMismatchError:
    return PinMismatchError(message, hostname=hostname, expected=expected, served=served)
