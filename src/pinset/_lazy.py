"""Public names that load their module on first use (PEP 562), for a light ``import``.

``pinset``, ``pinset.chain`` and ``pinset.errors`` re-export names whose modules are
costly to import (the pinned context and ``PinMismatchError`` load ssl; fetching loads
asyncio): the module lists each name with the module that defines it, and
:func:`lazy_attributes` makes its ``__getattr__`` and ``__dir__``. The first access
imports the module and keeps the value, so every later access is a plain attribute.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from typing import Any

__all__ = ["lazy_attributes"]


def lazy_attributes(
    namespace: MutableMapping[str, Any], modules: Mapping[str, Iterable[str]]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for the package whose ``globals()`` is ``namespace``.

    ``modules`` maps each defining module to the names it gives the package.
    """
    where = {name: module for module, names in modules.items() for name in names}
    package = namespace["__name__"]

    def getattr_(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    def dir_() -> list[str]:
        return sorted({*namespace, *where})

    return getattr_, dir_
