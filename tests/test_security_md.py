"""SECURITY.md names real tests: every node id it gives exists, every semantic rule has some.

A node id is ``tests/FILE.py::test_name`` (or ``::Class::test_name``); it exists when FILE
defines that function (parametrised ids are named without their brackets). Read with ``ast``,
without importing or collecting anything.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SECURITY = ROOT / "SECURITY.md"
_NODE = re.compile(r"`(tests/[\w/]+\.py)((?:::\w+)+)`")
_RULE = re.compile(r"^(\d+)\. \*\*")


def _defined(path: Path) -> set[str]:
    """``name`` and ``Class::name`` of every test function and method in ``path``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            names.add(node.name)
        elif isinstance(node, ast.ClassDef):
            names.update(
                f"{node.name}::{item.name}"
                for item in node.body
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef)
            )
    return names


def _node_ids(text: str) -> list[tuple[str, str]]:
    return [(path, name.removeprefix("::")) for path, name in _NODE.findall(text)]


def test_every_node_id_in_security_md_exists() -> None:
    ids = _node_ids(SECURITY.read_text())
    assert len(ids) >= 40
    missing = []
    for path, name in ids:
        file = ROOT / path
        if not file.is_file() or name not in _defined(file):
            missing.append(f"{path}::{name}")
    assert missing == []


def test_every_semantic_rule_names_a_guarding_test() -> None:
    # The ten rules of "The semantic rules and the tests that guard them", in order, each
    # with at least one node id before the next rule starts.
    section = SECURITY.read_text().split("## The semantic rules", 1)[1].split("\n## ", 1)[0]
    rules: dict[int, list[str]] = {}
    current = 0
    for line in section.splitlines():
        if match := _RULE.match(line):
            current = int(match.group(1))
            rules[current] = []
        elif current:
            rules[current] += [f"{p}::{n}" for p, n in _node_ids(line)]
    assert sorted(rules) == list(range(1, 11))
    assert all(rules.values()), [n for n, ids in rules.items() if not ids]


def test_the_checker_finds_a_missing_test() -> None:
    # A misspelt name is reported, so the test above cannot pass for want of looking.
    text = "`tests/test_enforce.py::test_no_such_test` `tests/test_enforce.py::test_tls_12_and_13`"
    found = [(p, n, n in _defined(ROOT / p)) for p, n in _node_ids(text)]
    assert found == [
        ("tests/test_enforce.py", "test_no_such_test", False),
        ("tests/test_enforce.py", "test_tls_12_and_13", True),
    ]


def test_the_readme_links_security_md() -> None:
    assert "](SECURITY.md)" in (ROOT / "README.md").read_text()
