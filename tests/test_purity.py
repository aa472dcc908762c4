"""The core is pure: no sockets, files or clocks, and ``import pinset`` stays light."""

from __future__ import annotations

import builtins
import datetime as dt
import io
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import pinset
from pinset import Pin, evaluate, policyfile, spki_pin
from pinset.testing import TestPKI


class _Forbidden(AssertionError):
    pass


def _forbid(name: str) -> object:
    def refuse(*args: object, **kwargs: object) -> object:
        raise _Forbidden(f"the pure core called {name}")

    return refuse


class _FrozenOut(dt.datetime):
    @classmethod
    def now(cls, tz: dt.tzinfo | None = None) -> _FrozenOut:  # type: ignore[override]
        raise _Forbidden("the pure core called datetime.now")

    @classmethod
    def utcnow(cls) -> _FrozenOut:  # type: ignore[override]
        raise _Forbidden("the pure core called datetime.utcnow")


# An instance of the patched class, so isinstance(now, datetime.datetime) holds while patched.
NOW = _FrozenOut(2026, 5, 1, tzinfo=dt.timezone.utc)


def test_core_works_without_sockets_files_or_clock(
    pki: TestPKI, monkeypatch: pytest.MonkeyPatch
) -> None:
    leaf = pki.leaf("pure.example")
    chain = list(leaf.full_chain)
    pem = leaf.cert_chain_pem.bytes()
    pins = (spki_pin(leaf.cert), spki_pin(pki.root.cert))
    text = (
        '[[domain]]\nname = "pure.example"\nexpiration = 2030-01-01\n'
        f'pins = ["{pins[0]}", "{pins[1]}"]\n'
    )
    json_text = json.dumps(policyfile.to_dict(policyfile.loads(text)), default=str)

    monkeypatch.setattr(socket, "socket", _forbid("socket.socket"))
    monkeypatch.setattr(socket, "create_connection", _forbid("socket.create_connection"))
    monkeypatch.setattr(builtins, "open", _forbid("open"))
    monkeypatch.setattr(io, "open", _forbid("io.open"))
    monkeypatch.setattr(os, "open", _forbid("os.open"))
    monkeypatch.setattr(time, "time", _forbid("time.time"))
    monkeypatch.setattr(time, "time_ns", _forbid("time.time_ns"))
    monkeypatch.setattr(dt, "datetime", _FrozenOut)
    with pytest.raises(_Forbidden):  # the patches are live
        time.time()
    with pytest.raises(_Forbidden):
        dt.datetime.now(dt.timezone.utc)

    policy = policyfile.loads(text, source="pinset.toml")
    assert policyfile.loads(json_text, format="json") == policy
    assert policyfile.loads(policyfile.dumps(policy)) == policy
    assert Pin.parse(str(pins[0])) == pins[0]
    assert spki_pin(pem) == pins[0]
    assert spki_pin(leaf.private_key) == pins[0]
    verdict = evaluate(policy, "pure.example", chain, now=NOW)
    assert verdict.allowed
    assert verdict.reason == "pinned"
    assert evaluate(policy, "pure.example", chain, now=NOW) == verdict
    assert "pure.example" in verdict.describe()


SRC = (Path(__file__).parent.parent / "src").resolve()  # the tree under test
FORBIDDEN_MODULES = [
    "pinset.cli",
    "pinset.collector",
    "pinset.testing",
    "click",
    "rich",
    "fastapi",
    "sqlalchemy",
    "defusedxml",
    "requests",
    "httpx",
    "aiohttp",
]


def test_import_pinset_stays_light() -> None:
    # The suite itself must run this tree too: an editable install of another checkout
    # would test that checkout's code.
    where = Path(pinset.__file__).resolve()
    assert where.is_relative_to(SRC), f"pinset comes from {where}: pip install -e {SRC.parent}"
    code = (
        "import json, sys\n"
        f"sys.path.insert(0, {str(SRC)!r})\n"
        "import pinset\n"
        "bare = sorted(m for m in sys.modules if m.startswith('pinset.'))\n"
        "names = [getattr(pinset, name) for name in pinset.__all__]\n"
        "found = {'file': pinset.__file__, 'bare': bare, 'modules': sorted(sys.modules)}\n"
        "print(json.dumps(found))\n"
    )
    # -I: no user site, no PYTHON* variables, no cwd on the path; then this tree's src goes
    # first on the path, ahead of whatever pinset is installed.
    result = subprocess.run(
        [sys.executable, "-I", "-c", code], capture_output=True, text=True, check=True
    )
    found = json.loads(result.stdout)
    assert Path(found["file"]).resolve().is_relative_to(SRC), found["file"]
    loaded = set(found["modules"])
    # The public names load on first use: `import pinset` alone loads none of the package
    # but the loader itself.
    assert found["bare"] == ["pinset._lazy"]
    # Every public name used once loads the core and the pinned context, nothing heavier.
    assert {"pinset.policy", "pinset.verdict", "pinset.enforce"} <= loaded
    for name in FORBIDDEN_MODULES:
        hits = sorted(m for m in loaded if m == name or m.startswith(name + "."))
        assert not hits, f"import pinset loaded {hits}"


def test_lazy_names_resolve_and_match_their_modules() -> None:
    # The names pinset and pinset.chain load on first use are exactly their __all__ (less
    # what they define themselves), and pinset.chain's lists are its private modules'
    # __all__: a name added to a module cannot be forgotten by the package that re-exports it.
    import importlib

    import pinset.chain

    for package in (pinset, pinset.chain):
        for name in package.__all__:
            assert getattr(package, name) is not None, (package.__name__, name)
    for module_name in (
        "pinset.chain._fetch",
        "pinset.chain._policy",
        "pinset.chain._keys",
        "pinset.chain._kit",
    ):
        module = importlib.import_module(module_name)
        for name in module.__all__:
            assert getattr(pinset.chain, name) is getattr(module, name)
            assert name in pinset.chain.__all__
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = pinset.nope  # type: ignore[attr-defined]
