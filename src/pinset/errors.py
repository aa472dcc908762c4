"""The one exception tree of pinset.

Every error pinset raises on purpose is a :class:`PinsetError`. Each knows how to
explain itself: :meth:`PinsetError.diagnostics` says what was wrong, where (file,
line, column, key) and how to fix it, so the CLI can print it without a traceback.

:class:`PinMismatchError` is also an :class:`ssl.SSLCertVerificationError`; it is
defined in :mod:`pinset._mismatch` and loaded on first use (PEP 562), so importing
this module does not load :mod:`ssl` (``pinset pin FILE`` starts faster).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pinset._lazy import lazy_attributes

if TYPE_CHECKING:
    from pinset._mismatch import PinMismatchError

__all__ = [
    "ChainError",
    "ConfigError",
    "NetworkError",
    "PinFormatError",
    "PinMismatchError",
    "PinsetError",
]


class PinsetError(Exception):
    """Base class of every error pinset raises on purpose.

    ``source`` is the file (or other origin) the problem is in, ``line`` and
    ``column`` are 1-based positions in it, ``key`` names the setting or element,
    and ``hint`` is one sentence saying how to fix it.
    """

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        line: int | None = None,
        column: int | None = None,
        key: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.message = message
        self.source = source
        self.line = line
        self.column = column
        self.key = key
        self.hint = hint
        super().__init__(self._render())

    def location(self) -> str:
        """``file:line:column`` (the parts that are known), or an empty string."""
        parts: list[str] = []
        if self.source:
            parts.append(self.source)
        if self.line is not None:
            parts.append(str(self.line))
            if self.column is not None:
                parts.append(str(self.column))
        return ":".join(parts)

    def _render(self) -> str:
        where = self.location()
        text = f"{where}: {self.message}" if where else self.message
        if self.key and self.key not in self.message:
            text += f" (key {self.key!r})"
        return text

    def diagnostics(self) -> str:
        """A multi-line explanation for people: what, where, and how to fix it."""
        lines = [f"error: {self.message}"]
        where = self.location()
        if where:
            lines.append(f"  --> {where}")
        if self.key:
            lines.append(f"  key: {self.key}")
        if self.hint:
            lines.append(f"  fix: {self.hint}")
        return "\n".join(lines)

    def with_location(
        self, *, source: str | None = None, line: int | None = None, column: int | None = None
    ) -> PinsetError:
        """Fill in location fields that are still unknown; return ``self``."""
        if source is not None and self.source is None:
            self.source = source
        if line is not None and self.line is None:
            self.line = line
        if column is not None and self.column is None:
            self.column = column
        self.args = (self._render(),)
        return self


class ConfigError(PinsetError, ValueError):
    """A policy, pin or platform configuration that cannot be used as written."""


class PinFormatError(ConfigError):
    """A pin text that is not a SHA-256 SPKI pin in standard base64."""


class ChainError(PinsetError, ValueError):
    """Certificate, key or chain material that cannot be read."""


class NetworkError(PinsetError, OSError):
    """A host could not be reached or did not complete a TLS handshake."""


if not TYPE_CHECKING:  # type checkers read the import above: no Any for a typo
    __getattr__, __dir__ = lazy_attributes(globals(), {"pinset._mismatch": ("PinMismatchError",)})
