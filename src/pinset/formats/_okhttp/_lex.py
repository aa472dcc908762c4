"""A lexer for Kotlin and Java source, enough to read OkHttp pinner calls.

String literals (plain, escaped, Kotlin raw strings, Java text blocks; a Kotlin
template is a ``bad_str``), identifiers and punctuation, each with its line;
comments and whitespace are dropped.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

__all__ = ["Token", "arguments", "is_", "shown", "skip_group", "tokenize"]

_TOKEN = re.compile(
    r'(?P<raw>""".*?""")'  # Kotlin raw string / Java text block
    r'|(?P<str>"(?:[^"\\\n]|\\.)*")'
    r"|(?P<char>'(?:[^'\\\n]|\\.)+')"
    r"|(?P<line_comment>//[^\n]*)"
    r"|(?P<block_comment>/\*.*?\*/)"
    r"|(?P<ident>[A-Za-z_$][A-Za-z0-9_$]*)"
    r"|(?P<space>\s+)"
    r"|(?P<punct>.)",
    re.S,
)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "0": "\0"}  # others stand for themselves
# `$name`, `${name}`, or `${` opening something longer (group 1 and 2 both empty).
_TEMPLATE = re.compile(r"\$(?:([A-Za-z_][A-Za-z0-9_]*)|\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}|\{)")
_WRITTEN_MAX = 80


@dataclass(frozen=True, slots=True)
class Token:
    """One token: a decoded string literal, an identifier, or one punctuation character.

    A Kotlin string template is a ``bad_str`` whose ``text`` is the literal as written
    and whose ``parts`` are its pieces: ``(False, text)`` and ``(True, name)`` for each
    ``$name`` / ``${name}`` (``()`` when a ``${…}`` holds more than a name).
    """

    kind: Literal["str", "ident", "punct", "bad_str"]
    text: str
    line: int
    parts: tuple[tuple[bool, str], ...] = ()


def tokenize(text: str) -> Iterator[Token]:
    """The tokens of ``text``, in order."""
    line = 1
    for match in _TOKEN.finditer(text):
        kind, value = match.lastgroup, match.group()
        if kind in ("raw", "str"):
            raw = kind == "raw"
            parts = _parts(value[3:-3] if raw else value[1:-1], escapes=not raw)
            if parts is not None and all(not is_name for is_name, _ in parts):
                decoded = "".join(piece for _, piece in parts)
                yield Token("str", decoded.strip() if raw and "\n" in decoded else decoded, line)
            else:
                yield Token("bad_str", value, line, tuple(parts or ()))
        elif kind in ("ident", "punct", "char"):
            yield Token("punct" if kind == "char" else kind, value, line)  # type: ignore[arg-type]
        line += value.count("\n")


def _parts(body: str, *, escapes: bool) -> list[tuple[bool, str]] | None:
    """The literal pieces and ``$name`` references of a string body; ``None`` for ``${expr}``.

    ``escapes``: decode backslash escapes (not in Kotlin raw strings / Java text blocks,
    where Java's escapes are rare enough to leave as written).
    """
    out: list[tuple[bool, str]] = []
    text: list[str] = []
    i = 0
    while i < len(body):
        char = body[i]
        name = _TEMPLATE.match(body, i) if char == "$" else None
        if name is not None:
            if name.group(1) is None and name.group(2) is None:
                return None  # ${ an expression }
            out.append((False, "".join(text)))
            text = []
            out.append((True, name.group(1) or name.group(2)))
            i = name.end()
            continue
        if escapes and char == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            if nxt == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", body[i + 2 : i + 6]):
                text.append(chr(int(body[i + 2 : i + 6], 16)))
                i += 6
                continue
            text.append(_ESCAPES.get(nxt, nxt))
            i += 2
            continue
        text.append(char)
        i += 1
    out.append((False, "".join(text)))
    return [part for part in out if part[0] or part[1]]


def is_(tokens: list[Token], i: int, *texts: str) -> bool:
    """Whether ``tokens[i:]`` starts with identifiers or punctuation ``texts``."""
    return (
        i >= 0
        and i + len(texts) <= len(tokens)
        and all(
            tokens[i + k].kind in ("ident", "punct") and tokens[i + k].text == t
            for k, t in enumerate(texts)
        )
    )


def _written(token: Token) -> str:
    if token.kind == "str":
        return '"' + token.text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return token.text


def shown(tokens: list[Token]) -> str:
    """``tokens`` as they are written, near enough: ``a.b(c)``, ``"x" + y``."""
    text = ""
    for before, token in zip([None, *tokens], tokens, strict=False):
        tight = (
            before is None
            or token.text in ".,)]"
            or before.text in ".(["
            or (token.text == "(" and before.kind == "ident")
        )
        text += ("" if tight else " ") + _written(token)
    return text if len(text) <= _WRITTEN_MAX else text[: _WRITTEN_MAX - 3] + "..."


def skip_group(tokens: list[Token], open_index: int) -> int:
    """The index just past the bracket that closes the one at ``open_index``."""
    depth = 0
    for j in range(open_index, len(tokens)):
        if tokens[j].kind == "punct" and tokens[j].text in "([{":
            depth += 1
        elif tokens[j].kind == "punct" and tokens[j].text in ")]}":
            depth -= 1
            if depth == 0:
                return j + 1
    return len(tokens)


def arguments(tokens: list[Token], open_index: int) -> tuple[list[list[Token]], bool]:
    """The comma-separated argument tokens of the call whose ``(`` is at ``open_index``, and
    whether the call is closed."""
    args: list[list[Token]] = [[]]
    depth = 0
    # Index, not a slice: a slice copies the rest of the file for every call (quadratic).
    for j in range(open_index + 1, len(tokens)):
        token = tokens[j]
        if token.kind == "punct" and token.text in "([{":
            depth += 1
        elif token.kind == "punct" and token.text in ")]}":
            if depth == 0:
                if not args[-1]:
                    args.pop()  # a trailing comma
                return args, True
            depth -= 1
        elif token.kind == "punct" and token.text == "," and depth == 0:
            args.append([])
            continue
        args[-1].append(token)
    return args, False
