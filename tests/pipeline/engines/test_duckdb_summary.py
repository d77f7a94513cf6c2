from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from pipeline.engines import duckdb_prepare, duckdb_summary
from pipeline.engines.duckdb_classify import counted_rows
from pipeline.engines.duckdb_summary import (
    PURCHASE,
    RETURN,
    Windows,
    counts_sql,
    customers_sql,
    overflow_sql,
    periods_sql,
)
from pipeline.engines.prepared import AsOfData, PreparedData
from pipeline.engines.rules import QUARANTINE_REASONS, period_start
from pipeline.engines.sql import DUCKDB

WINDOWS = Windows(dt.date(2021, 6, 30), dt.date(2021, 12, 31), dt.date(2021, 1, 1), "day")

_DUPLICATE, _INVALID = (RETURN + 1 + QUARANTINE_REASONS.index(r) for r in ("duplicate", "invalid_amount"))

_DAILY = f"""
    SELECT CAST(kind AS UTINYINT) AS kind, cid, CAST(d AS DATE) AS d, CAST(amount AS BIGINT) AS amount,
           CAST(n AS BIGINT) AS n
    FROM (VALUES
        -- calibration only, a day on the recent window's first day (outside it) and one on calibration_end (in it)
        ({PURCHASE}, 'a', '2021-01-01', 100000, 1), ({PURCHASE}, 'a', '2021-06-30', 25000, 2),
        -- new in the holdout: no calibration columns; a day after observation_end is not counted
        ({PURCHASE}, 'b', '2021-07-01', 70000, 1), ({PURCHASE}, 'b', '2021-09-15', 5, 3),
        ({PURCHASE}, 'b', '2022-01-01', 99, 1),
        -- both windows, a return and quarantined rows (which keep their customer and day) that do not count
        ({PURCHASE}, 'c', '2020-12-31', 10000, 1), ({PURCHASE}, 'c', '2021-03-02', 20000, 1),
        ({RETURN}, 'c', '2021-03-03', -20000, 1), ({PURCHASE}, 'c', '2021-07-04', 30000, 4),
        ({PURCHASE}, 'c', '2021-12-31', 40000, 1), ({_DUPLICATE}, 'c', '2021-07-04', NULL, 2),
        ({_DUPLICATE}, 'f', '2021-03-01', NULL, 1),
        -- one day, in calibration; and amounts of a big business (over 2**63 in all)
        ({PURCHASE}, 'd', '2021-05-05', 0, 1),
        ({PURCHASE}, 'e', '2021-02-01', 9000000000000000000, 1),
        ({PURCHASE}, 'e', '2021-08-01', 9000000000000000000, 1),
        ({_INVALID}, NULL, '2021-04-01', NULL, 1)
    ) t(kind, cid, d, amount, n)
"""


def _customers(by_day: bool) -> pd.DataFrame:
    """The customers of the daily table above, as Python objects (HUGEINT sums exact, not as floats)."""
    con = duckdb.connect()
    con.execute(f"CREATE TABLE daily AS {_DAILY}")
    periods, aggregates = periods_sql("daily", WINDOWS, has_order=False)
    assert not aggregates  # a day's rows are its periods
    query = con.sql(customers_sql("daily", f"({periods})", WINDOWS, False, by_day)).order("cid")
    return pd.DataFrame(query.fetchall(), columns=query.columns, dtype=object)


def _values(rows: pd.DataFrame, cid: str, columns: list[str]) -> list[object]:
    """One customer's values in ``columns``: a row of a frame indexed by unique ids."""
    row = rows.loc[cid, columns]
    assert isinstance(row, pd.Series)
    return row.tolist()


def test_customers_straight_from_the_days_equal_the_general_query() -> None:
    general, by_day = _customers(by_day=False), _customers(by_day=True)
    pd.testing.assert_frame_equal(by_day, general, check_exact=True)
    assert by_day["cid"].tolist() == ["a", "b", "c", "d", "e"]
    rows = by_day.set_index("cid")
    assert _values(rows, "a", ["periods", "cal_periods", "hold_periods", "recent_periods", "recent"]) == [
        2,
        2,
        0,
        1,
        25000,
    ]
    assert rows.loc["a", "hold_gross"] is None
    assert _values(rows, "b", ["periods", "cal_periods", "hold_periods", "hold_gross", "hold_n"]) == [
        2,
        0,
        2,
        70005,
        4,
    ]
    assert _values(rows, "b", ["cal_first_amount", "cal_total"]) == [None, None]
    assert _values(rows, "c", ["first_amount", "cal_first_amount", "cal_total", "hold_gross", "hold_n"]) == [
        10000,
        10000,
        30000,
        70000,
        5,
    ]
    assert _values(rows, "e", ["total", "hold_gross"]) == [18 * 10**18, 9 * 10**18]


def _weekly_parts_in_one_pass(periods: str, customers: str, w: Windows) -> str:
    """The weekly parts as they were counted before ``weekly_per_day``: per week in one pass, the new customers
    looked up in a FILTER for every period."""
    new_from = period_start(w.calibration_end + dt.timedelta(days=1), w.period)
    return f"""
        SELECT {DUCKDB.week("p")} AS week, count(*) AS n_all,
               count(*) FILTER (
                   WHERE p >= DATE '{new_from}' AND cid IN (SELECT cid FROM {customers} WHERE cal_periods = 0)
               ) AS n_new,
               0 AS n_first
        FROM {periods} GROUP BY week
        UNION ALL
        SELECT {DUCKDB.week("first_p")} AS week, 0 AS n_all, 0 AS n_new, count(*) AS n_first FROM {customers}
        WHERE cal_periods > 0 GROUP BY week
    """


def _with(speed_up: str, rows: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where ``speed_up`` applies: plain ids in one pass (the count finds them) and in several (``plain_ids_3``)."""
    if speed_up == "plain_ids_3":
        monkeypatch.setattr(duckdb_prepare, "ROWS_PER_PASS", rows // 3)
        monkeypatch.setattr(duckdb_prepare, "ROWS_PER_FULL_PASS", rows // 3)


def _without(speed_up: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Prepare as it was before ``speed_up``: the customers by the general query, the weekly parts in one pass, or
    every id through the id rule."""
    if speed_up == "customers_by_day":
        general = duckdb_summary.customers_sql
        monkeypatch.setattr(duckdb_prepare, "customers_sql", lambda d, p, w, net, by_day=False: general(d, p, w, net))
    elif speed_up == "weekly_per_day":
        monkeypatch.setattr(duckdb_prepare, "weekly_parts_sql", _weekly_parts_in_one_pass)
    else:

        def counted_without_plain_ids(transactions: duckdb.DuckDBPyRelation, dtype: str) -> tuple[int, bool]:
            return counted_rows(transactions, dtype)[0], False

        monkeypatch.setattr(duckdb_prepare, "counted_rows", counted_without_plain_ids)


def _assert_prepared_equal(new: PreparedData, old: PreparedData) -> None:
    pd.testing.assert_frame_equal(new.calibration, old.calibration, check_exact=True)
    pd.testing.assert_frame_equal(new.full, old.full, check_exact=True)
    pd.testing.assert_frame_equal(new.weekly, old.weekly, check_exact=True)
    assert new.ledger == old.ledger


@pytest.mark.parametrize("speed_up", ["customers_by_day", "plain_ids", "plain_ids_3", "weekly_per_day"])
def test_speed_ups_give_the_same_summaries_on_cdnow(speed_up: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.config import parse_config
    from pipeline.workflow import prepare_data

    config = parse_config({"data": {"source": "cdnow_master"}})
    _with(speed_up, 69_659, monkeypatch)
    new = prepare_data(config)[0]
    _without(speed_up, monkeypatch)
    old = prepare_data(config)[0]
    assert len(new.full) == 23_570
    _assert_prepared_equal(new, old)


@pytest.mark.parametrize("speed_up", ["customers_by_day", "plain_ids", "plain_ids_3", "weekly_per_day"])
def test_speed_ups_give_the_same_summaries_on_the_generated_feed(
    speed_up: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from benchmarks.feed import OBSERVATION_END, prepared_feed

    _with(speed_up, 200_000, monkeypatch)
    new = prepared_feed(200_000, tmp_path)
    new_scoring = _scoring(tmp_path / "feed-200000-42.parquet", OBSERVATION_END)
    _without(speed_up, monkeypatch)
    old = prepared_feed(200_000, tmp_path)
    assert len(new.full) > 15_000
    _assert_prepared_equal(new, old)
    old_scoring = _scoring(tmp_path / "feed-200000-42.parquet", OBSERVATION_END)
    pd.testing.assert_frame_equal(new_scoring.customers, old_scoring.customers, check_exact=True)
    assert new_scoring.ledger == old_scoring.ledger


def _scoring(path: Path, as_of: dt.date) -> AsOfData:
    """The feed at ``path`` prepared for scoring as of ``as_of`` by the job's DuckDB prepare."""
    from pipeline.config import Config, DataConfig, PrepareConfig
    from pipeline.engines.duckdb_source import connect, open_transactions

    data = open_transactions(connect(Config().engine), DataConfig(source="parquet", path=path))
    return duckdb_prepare.prepare_as_of(data.relation, PrepareConfig(), as_of, data.timestamp_format)


def test_counts_name_each_kind_and_merge_purchases_and_returns() -> None:
    con = duckdb.connect()
    con.execute(f"CREATE TABLE daily AS {_DAILY}")
    assert sorted(con.sql(counts_sql("daily")).fetchall()) == [
        ("", 19, dt.date(2020, 12, 31), dt.date(2022, 1, 1), 1, 0),
        ("duplicate", 3, None, None, None, None),  # the days of used rows only
        ("invalid_amount", 1, None, None, None, None),
    ]
    assert con.sql(overflow_sql("daily")).fetchall() == [(None,)]
    # A used day whose sum overflowed (NULL) is counted and names its customer; a quarantined row's NULL amount not.
    con.execute(f"INSERT INTO daily VALUES ({RETURN}, 'g', DATE '2021-05-01', NULL, 1)")
    con.execute(f"INSERT INTO daily VALUES ({PURCHASE}, 'h', DATE '2021-05-02', NULL, 1)")
    assert [row[5] for row in con.sql(counts_sql("daily")).fetchall() if row[0] == ""] == [2]
    assert con.sql(overflow_sql("daily")).fetchall() == [("g",)]
