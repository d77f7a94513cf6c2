from __future__ import annotations

import datetime as dt

import duckdb
import pandas as pd
import pytest

from pipeline.config import PrepareConfig
from pipeline.engines import duckdb_fetch
from pipeline.engines.duckdb_prepare import prepare, prepare_as_of
from tests.pipeline.engines.test_duckdb_prepare import _generated_transactions


def test_large_summaries_through_parquet_files_equal_the_direct_fetch(monkeypatch: pytest.MonkeyPatch) -> None:
    tx = _generated_transactions(customers=300)
    raw = tx.assign(timestamp=tx["date"].dt.strftime("%Y-%m-%d"))[["customer_id", "timestamp", "amount"]]
    config = PrepareConfig(calibration_end=dt.date(2021, 8, 31), observation_end=dt.date(2021, 12, 31))
    con = duckdb.connect()
    con.execute("SET preserve_insertion_order = false")
    direct = prepare(con.from_df(raw), config, "%Y-%m-%d")
    scoring = prepare_as_of(con.from_df(raw), config, dt.date(2021, 12, 31), "%Y-%m-%d")
    monkeypatch.setattr(duckdb_fetch, "FETCH_THROUGH_FILES", 0)
    files = prepare(con.from_df(raw), config, "%Y-%m-%d")
    pd.testing.assert_frame_equal(direct.calibration, files.calibration, check_exact=True)
    pd.testing.assert_frame_equal(direct.full, files.full, check_exact=True)
    files_scoring = prepare_as_of(con.from_df(raw), config, dt.date(2021, 12, 31), "%Y-%m-%d")
    pd.testing.assert_frame_equal(scoring.customers, files_scoring.customers, check_exact=True)
    assert files.full["customer_id"].is_monotonic_increasing
    assert con.sql("SELECT current_setting('preserve_insertion_order')").fetchall() == [(False,)]
