"""The data's dates from the scan's counts; a feed with no usable row names why, with a hint."""

from __future__ import annotations

import datetime as dt

import pytest

from pipeline.config import PrepareConfig
from pipeline.engines.prepared import ReasonCounts, no_usable_reasons, used_dates
from pipeline.errors import InputError


def test_dates_of_the_rows_used() -> None:
    counts: ReasonCounts = {
        "": (5, dt.date(2022, 1, 3), dt.date(2022, 6, 30), 1),
        "duplicate": (2, dt.date(2022, 2, 1), None, 0),
    }
    config = PrepareConfig(calibration_end=dt.date(2022, 3, 31))
    assert used_dates(counts, config, "feed.csv") == (
        dt.date(2022, 1, 3),
        dt.date(2022, 6, 30),
        dt.date(2022, 6, 30),
        True,
    )


def test_two_digit_years_get_the_format_hint() -> None:
    """31/12/22 read as the year 22: every row before min_date; the error says what to set."""
    counts: ReasonCounts = {"timestamp_out_of_range": (9239, dt.date(22, 1, 1), dt.date(23, 6, 30), 0)}
    with pytest.raises(InputError) as raised:
        used_dates(counts, PrepareConfig(calibration_end=dt.date(2022, 12, 31)), "yy.csv")
    assert str(raised.value) == (
        "yy.csv: no usable transactions after cleaning (9239 timestamp_out_of_range); timestamps before "
        "prepare.min_date (1900-01-01): if the dates have two-digit years (31/12/22), set data.timestamp_format "
        "(e.g. %d/%m/%y)"
    )


def test_the_rows_used_of_a_feed_with_no_usable_row_are_counted_under_their_word() -> None:
    """The contractual and discrete prepares' reasons: quarantined rows by reason, the rows used (all returns then)
    under "refunds" or "returns", nothing for them when there are none."""
    counts = [("duplicate", 2), (None, 3), ("invalid_timestamp", 1)]
    assert no_usable_reasons(counts, "refunds") == {"duplicate": 2, "invalid_timestamp": 1, "refunds": 3}
    assert no_usable_reasons(counts, "returns") == {"duplicate": 2, "invalid_timestamp": 1, "returns": 3}
    assert no_usable_reasons([("duplicate", 2)], "returns") == {"duplicate": 2}
    assert no_usable_reasons([], "refunds") == {}
