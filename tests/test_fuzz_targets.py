"""The atheris fuzz targets, replayed without randomness: every seed and every committed find.

``make fuzz`` runs each target of ``tests/_fuzz_targets.py`` under atheris; here ``make
test`` runs the same functions over their seeds (real configs, reports and archives from
``tests/fixtures``) and over ``tests/fixtures/fuzz/TARGET/*``, the inputs fuzzing found,
each kept as a regression test. A target raises only on a find, so each input passes when
its parser gave a valid result or refused it with a message. No atheris needed.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from tests._fuzz_targets import FINDS, TARGETS, finds, refused

from pinset.errors import PinsetError
from pinset.pins import Pin

CASES = [
    pytest.param(name, label, data, id=f"{name}-{kind}-{label}")
    for name, target in TARGETS.items()
    for kind, inputs in (("seed", target.seeds()), ("find", list(finds(name))))
    for label, data in inputs
]


@pytest.mark.parametrize(("target", "label", "data"), CASES)
def test_input_gives_a_result_or_a_refusal(target: str, label: str, data: bytes) -> None:
    TARGETS[target].run(data)


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_every_target_has_seeds_and_takes_empty_input(target: str) -> None:
    assert len(TARGETS[target].seeds()) >= 3
    TARGETS[target].run(b"")


def test_every_finds_folder_belongs_to_a_target() -> None:
    folders = {p.name for p in FINDS.iterdir() if p.is_dir()} if FINDS.is_dir() else set()
    assert folders <= set(TARGETS), folders - set(TARGETS)


def test_a_refusal_without_a_message_is_a_find() -> None:
    """The harness itself: an empty-message error does not count as a refusal."""
    refused(PinsetError("says what"))
    with pytest.raises(AssertionError, match="without a message"):
        refused(PinsetError(" "))


def test_an_unexpected_exception_escapes_the_target(monkeypatch: pytest.MonkeyPatch) -> None:
    """A parser that crashes (not a PinsetError) is reported, not swallowed."""

    def crash(*_args: object, **_kwargs: object) -> None:
        raise IndexError("parser bug")

    monkeypatch.setattr(Pin, "parse", crash)
    with pytest.raises(IndexError, match="parser bug"):
        TARGETS["pin"].run(b"sha256/x")


def test_make_fuzz_runs_every_target() -> None:
    makefile = (Path(__file__).parent.parent / "Makefile").read_text(encoding="utf-8")
    listed = re.search(r"^FUZZ_TARGETS \?= (.*)$", makefile, re.M)
    assert listed is not None
    assert listed.group(1).split() == list(TARGETS)
