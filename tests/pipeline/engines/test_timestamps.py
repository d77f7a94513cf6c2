from __future__ import annotations

import datetime as dt
import re

import duckdb
import numpy as np
import pytest

from pipeline.engines.timestamps import CANDIDATE_FORMATS, detect_format, epoch_units_per_second, unreadable_hint
from pipeline.errors import InputError

US = ["12/1/2010 8:26", "12/1/2010 13:05", "1/31/2011 9:00", "6/13/2011 17:45"]


def test_engine_reads_them_itself() -> None:
    assert detect_format(["2010-12-01 08:26:00", "20101201"], engine_reads_all=True) is None
    assert detect_format([], engine_reads_all=False) is None


def test_month_first_without_zero_padding() -> None:
    assert detect_format(US, engine_reads_all=False) == "%m/%d/%Y %H:%M"


def test_day_first_when_a_day_is_above_12() -> None:
    assert detect_format(["13/01/2011", "01/02/2011", "5/3/2011"], engine_reads_all=False) == "%d/%m/%Y"
    assert detect_format(["31.12.2011 10:00", "1.2.2011 8:00"], engine_reads_all=False) == "%d.%m.%Y %H:%M"


def test_ambiguous_dates_are_an_input_error_naming_both_formats_and_a_value() -> None:
    with pytest.raises(InputError, match=r"^f\.csv: timestamps such as '1/2/2011 8:26' read as '%m/%d/%Y %H:%M'"):
        detect_format(["1/2/2011 8:26", "12/12/2011 9:00"], engine_reads_all=False, source="f.csv")
    with pytest.raises(InputError, match=r"or '%d/%m/%Y %H:%M' \(2011-02-01 08:26\); set data\.timestamp_format$"):
        detect_format(["1/2/2011 8:26", "12/12/2011 9:00"], engine_reads_all=False, source="f.csv")


def test_formats_that_agree_on_every_value_are_not_ambiguous() -> None:
    # The same day either way round: nothing to ask.
    assert detect_format(["1/1/2011", "12/12/2011"], engine_reads_all=False) == "%m/%d/%Y"


def test_no_format_reads_every_value() -> None:
    assert detect_format([*US, "yesterday"], engine_reads_all=False) is None
    assert detect_format(["31/02/2020", "2020-01-01"], engine_reads_all=False) is None


def test_hint_names_the_value_and_the_key() -> None:
    assert unreadable_hint(None) == ""
    assert unreadable_hint("3rd of May") == (
        "; timestamps such as '3rd of May' could not be read: set data.timestamp_format (a strptime format)"
    )
    for epoch in ("1672444800", "1672444800123", "1672444800.5"):
        assert unreadable_hint(epoch) == (
            f"; timestamps such as {epoch!r} could not be read: numbers since 1970, set data.timestamp_format to "
            "epoch_s, epoch_ms or epoch_us"
        )
    assert "a strptime format" in unreadable_hint("20221231")  # a date, which the engines read themselves
    # A format set in the config is named: the timestamps do not match it.
    assert unreadable_hint("01.01.2023 00:37", "%Y-%m-%d %H:%M") == (
        "; timestamps such as '01.01.2023 00:37' could not be read as data.timestamp_format '%Y-%m-%d %H:%M': "
        "correct it, or remove it to let the job detect the format"
    )


def test_epoch_formats_and_their_units() -> None:
    assert [epoch_units_per_second(f) for f in ("epoch_s", "%s", "epoch_ms", "epoch_us")] == [1, 1, 1000, 10**6]
    assert epoch_units_per_second("%Y-%m-%d") is None
    assert epoch_units_per_second(None) is None


def candidate_values(fmt: str, seed: int = 1, n: int = 60) -> list[str]:
    """Values written in ``fmt`` (AM/PM, month names, edge days), half without leading zeros where the
    numbers do not touch: what real exports hold."""
    rng = np.random.default_rng(seed)
    start = dt.datetime(1999, 12, 31, 0, 0)
    values = []
    for k in range(n):
        moment = start + dt.timedelta(minutes=int(rng.integers(0, 20 * 366 * 24 * 60)))
        text = moment.strftime(fmt)
        touching = re.search(r"%[YmdHMS]%[YmdHMS]", fmt) is not None
        values.append(text if k % 2 or touching else re.sub(r"(?<![0-9])0(?=[0-9])", "", text))
    return values


def python_parsed(values: list[str], fmt: str) -> list[dt.datetime | None]:
    out: list[dt.datetime | None] = []
    for value in values:
        try:
            out.append(dt.datetime.strptime(value, fmt))
        except ValueError:
            out.append(None)
    return out


@pytest.mark.parametrize("fmt", CANDIDATE_FORMATS)
def test_duckdb_reads_each_candidate_as_python_does(fmt: str) -> None:
    """The choice is made with datetime.strptime; DuckDB must then read the values the same way."""
    values = candidate_values(fmt)
    expected = python_parsed(values, fmt)
    assert all(v is not None for v in expected)
    con = duckdb.connect()
    got = [row[0] for row in con.execute("SELECT try_strptime(v, ?) FROM unnest(?) t(v)", [fmt, values]).fetchall()]
    assert got == expected
