"""pinset._dates: the one strict yyyy-MM-dd parser every expiration goes through."""

from __future__ import annotations

import datetime as dt

import pytest

from pinset._dates import parse_iso_date


def test_a_yyyy_mm_dd_date_with_surrounding_space() -> None:
    assert parse_iso_date(" 2027-06-30\n") == dt.date(2027, 6, 30)


@pytest.mark.parametrize(
    "text",
    ["20270630", "2027-W26-3", "2027-6-30", "2027-02-30", "2027-13-01", "٢٠٢٧-٠٦-٣٠", "", "x"],
)
def test_anything_else_is_not_a_date(text: str) -> None:
    assert parse_iso_date(text) is None
