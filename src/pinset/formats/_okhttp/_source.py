"""Reading the ``.add(...)`` calls of OkHttp's ``CertificatePinner.Builder()`` out of source text.

Kotlin and Java are lexed, not compiled: string literals (plain, escaped, Kotlin
raw strings, Java text blocks), comments, identifiers and punctuation. A call is
found chained on ``CertificatePinner.Builder()``, on a variable holding one, or
inside its Kotlin ``.apply { add(...) }`` block. Each argument is a string
literal or the name of a string constant of the same file: a Kotlin ``val`` /
``const val`` / ``var``, or a Java ``String`` field or local (``final``, or never
assigned again), whose initialiser is one string literal, another such name, or
a Kotlin template over such names (``"sha256/$PIN"``). Whatever else an argument
is (an expression, a ``${expression}`` template, a parameter, a name imported
from another file) is reported with the call's line and the reason, never
guessed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from pinset.formats._okhttp._lex import Token, arguments, is_, shown, skip_group, tokenize

__all__ = ["AddCall", "PinnerSource", "read_source"]

_JAVA_MODIFIERS = frozenset({"public", "private", "protected", "static", "final", "transient"})


@dataclass(frozen=True, slots=True)
class AddCall:
    """One ``add(pattern, pin, …)`` call on a pinner builder.

    ``values`` are the pattern and the pins when every argument could be read;
    otherwise ``unreadable`` says why not: the argument as written (``None``
    when the call itself is broken), the reason, and the argument's line.
    """

    line: int
    values: tuple[str, ...] = ()
    unreadable: tuple[str | None, str, int] | None = None


@dataclass(frozen=True, slots=True)
class PinnerSource:
    """The calls found, the lines of each ``CertificatePinner.Builder()``, and the lines of
    ``add(...)`` calls with pin literals that are on no builder pinset can follow."""

    calls: tuple[AddCall, ...]
    builder_lines: tuple[int, ...]
    stray_lines: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class _Declaration:
    line: int
    value: Token | None  # the one literal, template or name it is initialised with
    written: str  # the initialiser as written ("" when there is none)
    final: bool
    parameter: bool


def read_source(text: str) -> PinnerSource:
    """The pinner calls in Kotlin or Java ``text``, each resolved or explained."""
    tokens = list(tokenize(text))
    declarations, reassigned = _declarations(tokens)
    imports = _imports(tokens)
    found = list(_add_calls(tokens))
    calls: list[AddCall] = []
    for open_index, line in found:
        args, closed = arguments(tokens, open_index)
        calls.append(_call(args, closed, line, declarations, reassigned, imports))
    seen = {index for index, _line in found}
    builders = [
        tokens[i].line
        for i in range(len(tokens))
        if is_(tokens, i, "CertificatePinner", ".", "Builder", "(")
    ]
    stray = [
        tokens[i].line
        for i in range(len(tokens))
        if is_(tokens, i, "add", "(") and i + 1 not in seen and _has_pin(tokens, i + 1)
    ]
    return PinnerSource(tuple(calls), tuple(builders), tuple(stray))


# -- finding the calls -------------------------------------------------------------------


def _add_calls(tokens: list[Token]) -> Iterator[tuple[int, int]]:
    """Index of the ``(`` of each ``add(`` on a pinner builder, and its line."""
    builders: set[str] = set()
    i = 0
    while i < len(tokens):
        if is_(tokens, i, "CertificatePinner", ".", "Builder", "(", ")"):
            # A builder kept in a variable: `val b = CertificatePinner.Builder()`.
            eq = i - 2 if is_(tokens, i - 1, "new") else i - 1
            if eq >= 1 and is_(tokens, eq, "=") and tokens[eq - 1].kind == "ident":
                builders.add(tokens[eq - 1].text)
            i += 5
            yield from _chain(tokens, i)
            continue
        token = tokens[i]
        if token.kind == "ident" and token.text in builders:
            if is_(tokens, i + 1, ".", "add", "("):
                yield i + 3, tokens[i + 2].line
                yield from _chain(tokens, skip_group(tokens, i + 3))
            elif is_(tokens, i + 1, ".", "apply", "{"):
                yield from _chain(tokens, i + 1)
        i += 1


def _chain(tokens: list[Token], i: int) -> Iterator[tuple[int, int]]:
    while True:
        if is_(tokens, i, ".", "add", "("):
            yield i + 2, tokens[i + 1].line
            i = skip_group(tokens, i + 2)
        elif is_(tokens, i, ".", "apply", "{"):
            end = skip_group(tokens, i + 2)
            yield from _block_calls(tokens, i + 3, end - 1)
            i = end
        else:
            return


def _block_calls(tokens: list[Token], start: int, end: int) -> Iterator[tuple[int, int]]:
    """The ``add(`` calls on the receiver of an ``apply { … }`` block: bare or ``this.add(``."""
    for j in range(start, end):
        if not is_(tokens, j, "add", "("):
            continue
        if is_(tokens, j - 1, ".") and not is_(tokens, j - 2, "this"):
            continue  # list.add(x): a call on something else
        yield j + 1, tokens[j].line


def _has_pin(tokens: list[Token], open_index: int) -> bool:
    args, _closed = arguments(tokens, open_index)
    return any(
        t.kind == "str" and t.text.startswith(("sha256/", "sha1/")) for group in args for t in group
    )


# -- constants -------------------------------------------------------------------------------


def _declarations(
    tokens: list[Token],
) -> tuple[dict[str, list[_Declaration]], dict[str, int]]:
    """Every string declaration by name, and the first line each name is assigned again."""
    found: dict[str, list[_Declaration]] = {}
    declared_at: set[int] = set()
    for i, token in enumerate(tokens):
        if token.kind != "ident" or is_(tokens, i - 1, "."):
            continue
        if token.text in ("val", "var") and i + 1 < len(tokens) and tokens[i + 1].kind == "ident":
            name_index, final = i + 1, token.text == "val"
        elif (
            token.text == "String"
            and i + 2 < len(tokens)
            and tokens[i + 1].kind == "ident"
            and tokens[i + 2].kind == "punct"
            and tokens[i + 2].text in ("=", ";", ",", ")")
        ):
            name_index, final = i + 1, "final" in _modifiers(tokens, i)
        else:
            continue
        declared_at.add(name_index)
        name = tokens[name_index].text
        found.setdefault(name, []).append(_declaration(tokens, i, name_index, final))
    reassigned: dict[str, int] = {}
    for i, token in enumerate(tokens):
        if token.kind != "ident" or i in declared_at or token.text not in found:
            continue
        assigns = is_(tokens, i + 1, "=") and not is_(tokens, i + 2, "=")
        if assigns or is_(tokens, i + 1, "+", "="):
            reassigned.setdefault(token.text, tokens[i].line)
    return found, reassigned


def _modifiers(tokens: list[Token], i: int) -> set[str]:
    """The Java modifiers written just before index ``i`` (``private static final``)."""
    out: set[str] = set()
    j = i - 1
    while j >= 0 and tokens[j].kind == "ident" and tokens[j].text in _JAVA_MODIFIERS:
        out.add(tokens[j].text)
        j -= 1
    return out


def _declaration(tokens: list[Token], keyword: int, name_index: int, final: bool) -> _Declaration:
    line = tokens[name_index].line
    # Kotlin constructor and Java method parameters: their value is the caller's.
    before = tokens[keyword - 1] if keyword > 0 else None
    after = tokens[name_index + 1] if name_index + 1 < len(tokens) else None
    parameter = (before is not None and before.text in ("(", ",")) or (
        after is not None and after.text in (",", ")")
    )
    j = name_index + 1
    # A Kotlin type annotation (`: String`, `: String?`) sits between the name and `=`.
    while j < len(tokens) and tokens[j].line == line and tokens[j].text not in ("=", ";", "{"):
        if tokens[j].text in ("}", ")"):
            break
        j += 1
    if not (is_(tokens, j, "=") and not is_(tokens, j + 1, "=")):
        return _Declaration(line, None, "", final, parameter)
    init = _initialiser(tokens, j + 1)
    value = init[0] if len(init) == 1 and init[0].kind in ("str", "bad_str", "ident") else None
    return _Declaration(line, value, shown(init), final, parameter)


def _initialiser(tokens: list[Token], start: int) -> list[Token]:
    """The tokens of an initialiser: up to `;` / `,` / a closing bracket at depth 0, or (Kotlin)
    the end of its line unless the next line continues it with an operator."""
    out: list[Token] = []
    depth = 0
    for j in range(start, len(tokens)):
        token = tokens[j]
        new_line = depth == 0 and out and token.line > out[-1].line
        if new_line and (token.kind != "punct" or token.text in ("}", ")", "@")):
            break
        if token.kind == "punct" and token.text in "([{":
            depth += 1
        elif token.kind == "punct" and token.text in ")]}":
            if depth == 0:
                break
            depth -= 1
        elif depth == 0 and token.kind == "punct" and token.text in ";,":
            break
        out.append(token)
    return out


def _imports(tokens: list[Token]) -> dict[str, str]:
    """Names imported one by one (``import a.b.C.NAME``, ``import static …``) → where from."""
    out: dict[str, str] = {}
    for i, token in enumerate(tokens):
        if token.kind != "ident" or token.text != "import":
            continue
        j = i + 1 + is_(tokens, i + 1, "static")
        parts: list[str] = []
        while j < len(tokens) and tokens[j].kind == "ident":
            parts.append(tokens[j].text)
            if not is_(tokens, j + 1, "."):
                break
            j += 2
        if len(parts) < 2:
            continue
        name = parts[-1]
        if is_(tokens, j + 1, "as") and j + 2 < len(tokens):
            name = tokens[j + 2].text
        out[name] = ".".join(parts[:-1])
    return out


# -- resolving one call ----------------------------------------------------------------------


def _call(
    args: list[list[Token]],
    closed: bool,
    line: int,
    declarations: dict[str, list[_Declaration]],
    reassigned: dict[str, int],
    imports: dict[str, str],
) -> AddCall:
    if not closed:
        return AddCall(line, unreadable=(None, "the call is not closed", line))
    if not args:  # `.add()`: no add() of a pinner takes nothing
        return AddCall(line, unreadable=(None, "the call has no arguments", line))
    values: list[str] = []
    for group in args:
        if not group:  # a stray comma: `.add("host", , "sha256/…")`
            return AddCall(line, unreadable=(None, "the call has an empty argument", line))
        value, why = _resolve(group, declarations, reassigned, imports, ())
        if value is None:
            return AddCall(line, unreadable=(shown(group), why, group[0].line))
        values.append(value)
    return AddCall(line, values=tuple(values))


def _resolve(
    group: list[Token],
    declarations: dict[str, list[_Declaration]],
    reassigned: dict[str, int],
    imports: dict[str, str],
    seen: tuple[str, ...],
) -> tuple[str | None, str]:
    """The string an argument stands for, or ``None`` and why it cannot be known."""
    if len(group) == 1 and group[0].kind == "str":
        return group[0].text, ""
    if len(group) == 1 and group[0].kind == "bad_str":
        return _template(group[0], declarations, reassigned, imports, seen)
    if len(group) != 1 or group[0].kind != "ident":
        if group[0].text == "*":
            return None, "a spread array is only known when the app runs"
        return None, "it is an expression; pinset reads string literals and this file's constants"
    name = group[0].text
    if name in seen:
        return None, f"{name} is defined in a cycle ({' -> '.join((*seen, name))})"
    found = declarations.get(name, [])
    if not found:
        if name in imports:
            return None, (
                f"{name} is imported from {imports[name]}; pinset reads one file and does not "
                "follow imports"
            )
        return None, f"{name} is not a string constant declared in this file"
    if any(d.parameter for d in found):
        return None, f"{name} is a parameter (line {found[0].line}): its caller gives the value"
    if len(found) > 1:
        values = {(d.value.kind, d.value.text) if d.value else d.written for d in found}
        if len(values) > 1:
            lines = ", ".join(str(d.line) for d in found)
            return None, (
                f"{name} is declared {len(found)} times with different values (lines {lines})"
            )
    declaration = found[0]
    if not declaration.final and name in reassigned:
        return None, f"{name} is assigned again at line {reassigned[name]}"
    if declaration.value is not None:
        return _resolve([declaration.value], declarations, reassigned, imports, (*seen, name))
    if not declaration.written:
        return None, f"{name} (line {declaration.line}) has no initialiser to read"
    return None, (
        f"{name} is {declaration.written} (line {declaration.line}), not a string literal"
    )


def _template(
    token: Token,
    declarations: dict[str, list[_Declaration]],
    reassigned: dict[str, int],
    imports: dict[str, str],
    seen: tuple[str, ...],
) -> tuple[str | None, str]:
    """A Kotlin template whose every ``$name`` is a constant of this file, filled in."""
    if not token.parts:
        return None, "a string template with an expression is only known when the app runs"
    out: list[str] = []
    for is_name, piece in token.parts:
        if not is_name:
            out.append(piece)
            continue
        value, why = _resolve(
            [Token("ident", piece, token.line)], declarations, reassigned, imports, seen
        )
        if value is None:
            return None, f"the template uses ${piece}: {why}"
        out.append(value)
    return "".join(out), ""
