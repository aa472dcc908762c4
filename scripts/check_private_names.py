"""Fail when a module takes another module's underscore name (run by ``make lint``).

A private *module* is fine to import: ``from pinset.testing import _http`` (httpx style, the
module is private and the names inside it are its interface to the rest of the package). A
private *name* belongs to the module that defines it, so these are reported, with the file,
the line, the name and the module it belongs to::

    from pinset.testing._connect import _bracket      # import of a private name
    from ._connect import _bracket                     # the same, relative
    _connect._bracket(host)                            # reach through an imported module
    pinset.testing._connect._bracket(host)             # the same, dotted
    getattr(_connect, "_bracket")                      # getattr/setattr/delattr by name
    monkeypatch.setattr(_connect, "_bracket", fake)    # monkeypatch/mock by object and name
    monkeypatch.setattr("pinset.testing._connect._bracket", fake)   # or by dotted string

Only modules found under the given trees count (first-party code): the standard library's and
other projects' private names are theirs to rename. Dunder names (``__version__``) are public.

Usage: ``check_private_names.py [--allow MODULE.NAME ...] PATH ...``. A PATH that is a package
(has ``__init__.py``) is named from its parent directory (``src/pinset`` -> ``pinset``); any
other directory holds top-level modules (``tests/`` -> ``conftest``, ``_certs``, ...). Every
``--allow`` must still match a use, so an allowance cannot outlive its reason. Exit status 0
when clean, 1 on a violation or a stale allowance, 2 on a usage error.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

# Calls that reach a module attribute by name: getattr(mod, "_x"), monkeypatch.setattr(mod,
# "_x", v), mock.patch.object(mod, "_x") by object; monkeypatch.setattr("a.b._x", v) and
# mock.patch("a.b._x") by dotted string.
_BY_NAME_CALLS = frozenset({"getattr", "setattr", "delattr", "hasattr", "object"})
_BY_STRING_CALLS = frozenset({"setattr", "delattr", "patch"})


@dataclass(frozen=True)
class Violation:
    """One use of another module's underscore name."""

    path: Path
    line: int
    name: str
    module: str
    how: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.how} {self.name}, a private name of {self.module}"


@dataclass(frozen=True)
class SourceFile:
    """A file to check and the dotted name it is imported as."""

    path: Path
    module: str

    @property
    def package(self) -> str:
        """The package a relative import in this file starts from."""
        if self.path.name == "__init__.py":
            return self.module
        return self.module.rpartition(".")[0]


class Modules:
    """The first-party modules: those found under the import roots."""

    def __init__(self, roots: Sequence[Path]) -> None:
        self._roots = tuple(roots)
        self._known: dict[str, bool] = {}

    def exists(self, dotted: str) -> bool:
        """True when ``dotted`` names a module or package under one of the roots."""
        if dotted not in self._known:
            self._known[dotted] = bool(dotted) and any(
                (base := root.joinpath(*dotted.split("."))).with_suffix(".py").is_file()
                or (base / "__init__.py").is_file()
                for root in self._roots
            )
        return self._known[dotted]


def is_private(name: str) -> bool:
    """One leading underscore: ``_x`` is private, ``__x__`` and ``__x`` are not ours to judge."""
    return name.startswith("_") and not name.startswith("__")


def sources(paths: Sequence[Path]) -> tuple[list[SourceFile], list[Path]]:
    """The files to check under ``paths``, and the import roots they are named from."""
    files: list[SourceFile] = []
    roots: list[Path] = []
    for path in paths:
        root = path.parent if (path / "__init__.py").is_file() else path
        if root not in roots:
            roots.append(root)
        for file in sorted(path.rglob("*.py")):
            parts = list(file.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            files.append(SourceFile(file, ".".join(parts)))
    return files, roots


def _absolute(source: SourceFile, node: ast.ImportFrom) -> str:
    """The module an ``ImportFrom`` names, relative imports resolved against ``source``."""
    if not node.level:
        return node.module or ""
    base = source.package.split(".") if source.package else []
    if node.level > 1:
        base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def _dotted(node: ast.expr) -> list[str] | None:
    """``a.b.c`` as ``["a", "b", "c"]``; None for anything but names and attributes."""
    attrs: list[str] = []
    while isinstance(node, ast.Attribute):
        attrs.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return [node.id, *reversed(attrs)]


class _Checker:
    def __init__(self, source: SourceFile, tree: ast.Module, modules: Modules) -> None:
        self.source = source
        self.tree = tree
        self.modules = modules
        # Local names bound to a first-party module: `import a.b as m`, `from a import b`.
        self.aliases: dict[str, str] = {}

    def run(self) -> Iterator[Violation]:
        for node in ast.walk(self.tree):
            if isinstance(node, ast.ImportFrom):
                yield from self._import_from(node)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname:
                        self.aliases[alias.asname] = alias.name
                    else:
                        top = alias.name.partition(".")[0]
                        self.aliases[top] = top
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Attribute):
                yield from self._attribute(node)
            elif isinstance(node, ast.Call):
                yield from self._call(node)

    def _violation(self, node: ast.AST, name: str, module: str, how: str) -> Violation:
        return Violation(self.source.path, getattr(node, "lineno", 0), name, module, how)

    def _import_from(self, node: ast.ImportFrom) -> Iterator[Violation]:
        module = _absolute(self.source, node)
        for alias in node.names:
            full = f"{module}.{alias.name}"
            if self.modules.exists(full):
                self.aliases[alias.asname or alias.name] = full
            elif (
                is_private(alias.name)
                and module != self.source.module
                and self.modules.exists(module)
            ):
                yield self._violation(node, alias.name, module, "imports")

    def _resolve(self, parts: Sequence[str]) -> tuple[str, int] | None:
        """The longest module prefix of ``parts`` and how many parts it spans."""
        if parts[0] not in self.aliases:
            return None
        module = self.aliases[parts[0]]
        used = 1
        while used < len(parts) and self.modules.exists(f"{module}.{parts[used]}"):
            module = f"{module}.{parts[used]}"
            used += 1
        return (module, used) if self.modules.exists(module) else None

    def _attribute(self, node: ast.Attribute) -> Iterator[Violation]:
        parts = _dotted(node)
        if parts is None:
            return
        resolved = self._resolve(parts)
        # Report only the attribute right after the module, once: `m._x.y` is seen as the
        # node `m._x` (len == used + 1) and skipped as `m._x.y`.
        if resolved is None or len(parts) != resolved[1] + 1:
            return
        module, _ = resolved
        if is_private(node.attr) and module != self.source.module:
            yield self._violation(node, node.attr, module, "reaches")

    def _call(self, node: ast.Call) -> Iterator[Violation]:
        func = node.func
        called = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
        if called in _BY_NAME_CALLS and len(node.args) >= 2:
            yield from self._by_name(node, called, node.args[0], node.args[1])
        if called in _BY_STRING_CALLS and node.args:
            yield from self._by_string(node, called, node.args[0])

    def _by_name(
        self, node: ast.Call, called: str, target: ast.expr, name: ast.expr
    ) -> Iterator[Violation]:
        """``getattr(module, "_x")`` and the like."""
        if not (isinstance(name, ast.Constant) and isinstance(name.value, str)):
            return
        parts = _dotted(target)
        resolved = self._resolve(parts) if parts else None
        if resolved is None or parts is None or resolved[1] != len(parts):
            return
        module = resolved[0]
        if is_private(name.value) and module != self.source.module:
            yield self._violation(node, name.value, module, f"{called}() reaches")

    def _by_string(self, node: ast.Call, called: str, first: ast.expr) -> Iterator[Violation]:
        """``monkeypatch.setattr("a.b._x", ...)``, ``mock.patch("a.b._x")``."""
        if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
            return
        module, _, name = first.value.rpartition(".")
        if (
            is_private(name)
            and self.modules.exists(module)
            and not self.modules.exists(first.value)
            and module != self.source.module
        ):
            yield self._violation(node, name, module, f"{called}() reaches")


def check(paths: Sequence[Path]) -> list[Violation]:
    """Every use under ``paths`` of an underscore name another first-party module defines."""
    files, roots = sources(paths)
    modules = Modules(roots)
    found: list[Violation] = []
    for source in files:
        tree = ast.parse(source.path.read_text(encoding="utf-8"), filename=str(source.path))
        found.extend(_Checker(source, tree, modules).run())
    return sorted(set(found), key=lambda v: (str(v.path), v.line, v.name))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("paths", nargs="+", type=Path, help="package or directory to check")
    parser.add_argument(
        "--allow",
        action="append",
        default=[],
        metavar="MODULE.NAME",
        help="a known use to tolerate (each must still occur, or the run fails)",
    )
    options = parser.parse_args(argv)
    missing = [str(path) for path in options.paths if not path.is_dir()]
    if missing:
        parser.error(f"not a directory: {', '.join(missing)}")
    allowed = set(options.allow)
    seen: set[str] = set()
    status = 0
    violations = check(options.paths)
    for violation in violations:
        key = f"{violation.module}.{violation.name}"
        if key in allowed:
            seen.add(key)
            continue
        print(violation)
        status = 1
    for key in sorted(allowed - seen):
        print(f"--allow {key}: no longer used; remove the allowance")
        status = 1
    reported = sum(f"{v.module}.{v.name}" not in allowed for v in violations)
    tolerated = len(violations) - reported
    print(f"check_private_names: {reported} violation(s), {tolerated} allowed")
    if reported:
        print(
            "Rename the name where it is defined without the underscore (a private module's "
            "names are its interface), or keep the use inside that module."
        )
    return status


if __name__ == "__main__":
    sys.exit(main())
