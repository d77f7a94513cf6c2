from __future__ import annotations

import datetime as dt

import duckdb
import pandas as pd
import pyarrow as pa
import pytest

from pipeline.config import PrepareConfig
from pipeline.engines import duckdb_fetch
from pipeline.engines.duckdb_prepare import prepare, prepare_as_of
from tests.pipeline.engines.test_duckdb_prepare import _generated_transactions

CONFIG = PrepareConfig(calibration_end=dt.date(2021, 8, 31), observation_end=dt.date(2021, 12, 31))


def _raw_transactions() -> pd.DataFrame:
    """Generated transactions of 300 customers, with text timestamps."""
    tx = _generated_transactions(customers=300)
    return tx.assign(timestamp=tx["date"].dt.strftime("%Y-%m-%d"))[["customer_id", "timestamp", "amount"]]


def test_large_summaries_through_parquet_files_equal_the_direct_fetch(monkeypatch: pytest.MonkeyPatch) -> None:
    raw = _raw_transactions()
    new = pd.DataFrame(  # customers new in the holdout: in the full history only
        {
            "customer_id": [f"n{k:03d}" for k in range(20)] * 2,
            "timestamp": ["2021-10-04"] * 20 + ["2021-11-15"] * 20,
            "amount": [12.5] * 40,
        }
    )
    raw = pd.concat([raw, new], ignore_index=True)
    config = CONFIG
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
    # one query, two frames: the calibration's rows are the customers who bought by calibration_end, in order
    assert len(files.calibration) < len(files.full)
    bought = files.full["first_purchase"] <= pd.Timestamp(config.calibration_end)
    assert files.calibration["customer_id"].tolist() == files.full.loc[bought, "customer_id"].tolist()
    assert files.calibration.columns.tolist()[:7] == files.full.columns.tolist()
    assert con.sql("SELECT current_setting('preserve_insertion_order')").fetchall() == [(False,)]


def _text_buffers(column: pd.Series) -> set[int]:
    """Addresses of the Arrow buffers behind a text column."""
    array = pa.array(column.array)
    chunks = array.chunks if isinstance(array, pa.ChunkedArray) else [array]
    return {buffer.address for chunk in chunks for buffer in chunk.buffers() if buffer is not None and buffer.size}


def test_parts_that_keep_every_customer_share_one_column_of_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    raw = _raw_transactions()
    config = CONFIG
    con = duckdb.connect()
    direct = prepare(con.from_df(raw), config, "%Y-%m-%d")
    monkeypatch.setattr(duckdb_fetch, "FETCH_THROUGH_FILES", 0)
    files = prepare(con.from_df(raw), config, "%Y-%m-%d")
    assert len(files.calibration) == len(files.full)  # every customer bought by calibration_end
    pd.testing.assert_frame_equal(direct.calibration, files.calibration, check_exact=True)
    pd.testing.assert_frame_equal(direct.full, files.full, check_exact=True)
    # the ids are read once: both frames hold the same text buffers, not a copy each
    assert _text_buffers(files.full["customer_id"]) == _text_buffers(files.calibration["customer_id"])


def test_cdnow_through_parquet_files_equals_the_direct_fetch(monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.config import parse_config
    from pipeline.workflow import prepare_data

    config = parse_config({"data": {"source": "cdnow_master"}})
    direct = prepare_data(config)[0]
    monkeypatch.setattr(duckdb_fetch, "FETCH_THROUGH_FILES", 0)
    files = prepare_data(config)[0]
    assert len(files.full) == 23_570
    pd.testing.assert_frame_equal(direct.calibration, files.calibration, check_exact=True)
    pd.testing.assert_frame_equal(direct.full, files.full, check_exact=True)
    assert _text_buffers(files.full["customer_id"]) == _text_buffers(files.calibration["customer_id"])
