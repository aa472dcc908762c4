"""Defused XML parsing that remembers where every element and attribute is.

:func:`parse` reads XML through :mod:`defusedxml` (no DTDs, no entity
declarations, no external references) into a small tree of :class:`Element`
values that carry their 1-based line and column, so format importers can point
an error at the exact spot. Every failure is a :class:`~pinset.errors.ConfigError`
with the file and position and a hint.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field
from typing import Any

import defusedxml
import defusedxml.ElementTree as DET

from pinset.errors import ConfigError

__all__ = ["Element", "parse"]


@dataclass(slots=True, eq=False)
class Element:
    """One XML element: ``tag`` (``{uri}local`` when namespaced), attributes, children, text.

    ``text`` is all character data directly inside the element (comments
    removed, children excluded). ``line``/``column`` are 1-based positions of
    the start tag; :meth:`attr_position` finds an attribute's own position.
    """

    tag: str
    attrs: dict[str, str]
    line: int
    column: int
    offset: int
    children: list[Element] = field(default_factory=list)
    text: str = ""
    _doc: _Document | None = field(default=None, repr=False)

    def attr_position(self, name: str) -> tuple[int, int]:
        """The 1-based (line, column) of attribute ``name`` (the start tag's if not found)."""
        doc = self._doc
        if doc is None:
            return self.line, self.column
        local = name.rsplit("}", 1)[-1].encode("utf-8")
        pattern = re.compile(rb"(?<![\w:.-])(?:[\w.-]+:)?" + re.escape(local) + rb"\s*=")
        end = doc.data.find(b">", self.offset)
        match = pattern.search(doc.data, self.offset, end if end >= 0 else len(doc.data))
        if match is None:
            return self.line, self.column
        return doc.position(match.start())

    @property
    def local(self) -> str:
        """The tag without its namespace."""
        return self.tag.rsplit("}", 1)[-1]


@dataclass(slots=True)
class _Document:
    data: bytes
    line_starts: list[int]

    def position(self, offset: int) -> tuple[int, int]:
        index = bisect.bisect_right(self.line_starts, offset) - 1  # the line holding offset
        start = self.line_starts[index]
        return index + 1, len(self.data[start:offset].decode("utf-8", errors="replace")) + 1


class _Builder:
    """A TreeBuilder target that records expat's position of every start tag."""

    def __init__(self, doc: _Document) -> None:
        self.doc = doc
        self.expat: Any = None
        self.stack: list[Element] = []
        self.root: Element | None = None

    def start(self, tag: str, attrs: dict[str, str]) -> None:
        line = int(self.expat.CurrentLineNumber)
        column = int(self.expat.CurrentColumnNumber) + 1
        element = Element(
            tag=tag,
            attrs=dict(attrs),
            line=line,
            column=column,
            offset=int(self.expat.CurrentByteIndex),
            _doc=self.doc,
        )
        if self.stack:
            self.stack[-1].children.append(element)
        else:
            self.root = element
        self.stack.append(element)

    def end(self, tag: str) -> None:
        self.stack.pop()

    def data(self, text: str) -> None:
        if self.stack:
            self.stack[-1].text += text

    def close(self) -> Element | None:
        return self.root


def parse(data: str | bytes, *, source: str | None = None) -> Element:
    """Parse ``data`` into an :class:`Element` tree; DTDs, entities, external references fail."""
    raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    if isinstance(data, str):
        # A str has been decoded already; drop a conflicting encoding declaration.
        raw = re.sub(rb"^(\s*<\?xml[^>]*?)\sencoding=[\"'][^\"']*[\"']", rb"\1", raw, count=1)
    starts = [0] + [m.end() for m in re.finditer(rb"\n", raw)]
    doc = _Document(raw, starts)
    builder = _Builder(doc)
    parser = DET.DefusedXMLParser(
        target=builder, forbid_dtd=True, forbid_entities=True, forbid_external=True
    )
    builder.expat = parser.parser
    try:
        parser.feed(raw)
        root: Element | None = parser.close()
    except DET.ParseError as exc:
        line, column = getattr(exc, "position", (None, None))
        message = str(exc).split(": line", 1)[0]
        hint = "fix the XML syntax at this position"
        if "junk after document element" in message:
            hint = "an XML file has exactly one root element; remove or merge the extra ones"
        elif "undefined entity" in message:
            hint = "entities are not allowed; write the character itself or a numeric reference"
        raise ConfigError(
            f"not well-formed XML: {message}",
            source=source,
            line=line,
            column=None if column is None else column + 1,
            hint=hint,
        ) from None
    except defusedxml.DTDForbidden:
        raise _refused("a DOCTYPE declaration", source, builder) from None
    except defusedxml.EntitiesForbidden:
        raise _refused("an entity declaration", source, builder) from None
    except defusedxml.ExternalReferenceForbidden:
        raise _refused("an external reference", source, builder) from None
    except (LookupError, ValueError) as exc:  # after defusedxml's, which are ValueErrors
        # expat raises these for an encoding declaration it cannot use
        # (encoding="ttf-8", or a multi-byte codec it does not support).
        raise ConfigError(
            f"the XML declaration names an encoding pinset cannot read: {exc}",
            source=source,
            line=1,
            hint='save the file as UTF-8 and declare encoding="utf-8" (or no encoding)',
        ) from None
    if root is None:  # pragma: no cover - expat reports "no element found" first
        raise ConfigError("the XML document has no root element", source=source)
    return root


def _refused(what: str, source: str | None, builder: _Builder) -> ConfigError:
    expat = builder.expat
    return ConfigError(
        f"the XML contains {what}, which pinset refuses to process",
        source=source,
        line=int(expat.CurrentLineNumber) if expat is not None else None,
        column=int(expat.CurrentColumnNumber) + 1 if expat is not None else None,
        hint="remove the <!DOCTYPE …> / <!ENTITY …> part: platform configs never need them",
    )
