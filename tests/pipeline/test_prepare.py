from __future__ import annotations

import datetime as dt

import duckdb
import numpy as np
import pandas as pd
import pytest
from lifetimes.utils import calibration_and_holdout_data, summary_data_from_transaction_data

from pipeline.config import PrepareConfig
from pipeline.errors import InputError
from pipeline.prepare import prepare

ROWS = [
    # customer A: two purchases on 2020-01-01 merge into one of 15.0
    ("A", "2020-01-01", "10.0"),
    ("A", "2020-01-01", "5.0"),
    ("A", "2020-01-15", "20.0"),
    ("A", "2020-01-29", "30.0"),
    ("A", "2020-02-10", "7.0"),  # holdout
    ("A", "2020-02-10", "3.0"),
    ("A", "2020-03-01", "4.0"),
    ("B", "2020-01-20", "50.0"),  # one-time buyer
    ("C", "2020-02-05", "12.0"),  # first purchase in the holdout
    # bad rows
    (None, "2020-01-05", "9.0"),
    ("D", "2020-13-45", "9.0"),
    ("D", None, "9.0"),
    ("D", "2020-01-05", "abc"),
    ("D", "2020-01-05", "nan"),
    ("D", "2020-01-05", "-5"),
    ("A", "2020-04-05", "9.0"),  # after observation_end
]
CONFIG = PrepareConfig(
    period="day", time_unit="week", calibration_end=dt.date(2020, 1, 31), observation_end=dt.date(2020, 3, 31)
)


def _relation(rows: list[tuple[object, ...]]) -> duckdb.DuckDBPyRelation:
    frame = pd.DataFrame(rows, columns=["customer_id", "timestamp", "amount"])
    return duckdb.connect().from_df(frame)


def test_summaries_by_hand() -> None:
    prepared = prepare(_relation(ROWS), CONFIG, "%Y-%m-%d")
    cal = prepared.calibration.set_index("customer_id")
    assert list(cal.index) == ["A", "B"]
    a = cal.loc["A"]
    assert (a["frequency"], a["recency"], a["T"]) == (2.0, 28 / 7, 30 / 7)
    assert a["monetary_value"] == 25.0  # mean of the repeat purchases 20 and 30
    assert a["total_spend"] == 65.0
    assert (a["frequency_holdout"], a["revenue_holdout"]) == (2.0, 14.0)
    assert a["monetary_value_holdout"] == pytest.approx(14 / 3)  # mean of raw holdout rows, as lifetimes
    b = cal.loc["B"]
    assert (b["frequency"], b["recency"], b["T"], b["monetary_value"]) == (0.0, 0.0, 11 / 7, 0.0)
    assert (b["frequency_holdout"], b["revenue_holdout"]) == (0.0, 0.0)
    assert prepared.duration_holdout == 60 / 7

    full = prepared.full.set_index("customer_id")
    assert list(full.index) == ["A", "B", "C"]
    assert (full.loc["A", "frequency"], full.loc["A", "recency"], full.loc["A", "T"]) == (4.0, 60 / 7, 90 / 7)
    assert full.loc["A", "monetary_value"] == 16.0


def test_bad_rows_are_quarantined_and_counted() -> None:
    prepared = prepare(_relation(ROWS), CONFIG, "%Y-%m-%d")
    ledger = prepared.ledger
    assert ledger.quarantined == {
        "missing_customer_id": 1,
        "missing_timestamp": 1,
        "invalid_timestamp": 1,
        "invalid_amount": 2,
        "negative_amount": 1,
        "after_observation_end": 1,
    }
    assert (ledger.rows_in, ledger.rows_used, ledger.rows_quarantined) == (16, 9, 7)
    assert ledger.reconciled
    assert len(prepared.quarantine) == 7
    assert set(prepared.quarantine["reason"]) == set(ledger.quarantined)


def test_calibration_end_outside_the_data_is_an_input_error() -> None:
    late = CONFIG.model_copy(update={"calibration_end": dt.date(2021, 1, 1), "observation_end": None})
    with pytest.raises(InputError, match=r"calibration_end 2021-01-01 is outside the data \(2020-01-01 to"):
        prepare(_relation(ROWS), late, "%Y-%m-%d")


def test_no_usable_rows_is_an_input_error() -> None:
    with pytest.raises(InputError, match="no usable transactions"):
        prepare(_relation([(None, "2020-01-01", "1")]), CONFIG, "%Y-%m-%d", source="f.csv")


def _lifetimes_frame(prepared_calibration: pd.DataFrame) -> pd.DataFrame:
    return prepared_calibration.set_index("customer_id")


def _assert_equal_to_lifetimes(ours: pd.DataFrame, ref: pd.DataFrame) -> None:
    assert ours.index.tolist() == sorted(ref.index.tolist())
    ref = ref.loc[ours.index]
    for column in ("frequency", "recency", "T"):
        np.testing.assert_array_equal(ours[column], ref[f"{column}_cal"], err_msg=column)
    for column in ("frequency_holdout", "duration_holdout"):
        np.testing.assert_array_equal(ours[column], ref[column], err_msg=column)
    # Means of the same numbers; DuckDB and pandas may add them in another order (last-bit differences).
    np.testing.assert_allclose(ours["monetary_value"], ref["monetary_value_cal"], rtol=1e-13, atol=0)
    np.testing.assert_allclose(
        ours["monetary_value_holdout"], ref["monetary_value_holdout"], rtol=1e-13, atol=0
    )


def test_equal_to_lifetimes_on_cdnow_master(cdnow_master: pd.DataFrame) -> None:
    raw = cdnow_master.assign(timestamp=cdnow_master["date"].dt.strftime("%Y%m%d"))
    relation = duckdb.connect().from_df(raw[["customer_id", "timestamp", "amount"]])
    config = PrepareConfig(calibration_end=dt.date(1997, 9, 30), observation_end=dt.date(1998, 6, 30))
    prepared = prepare(relation, config, "%Y%m%d")
    assert prepared.ledger.rows_used == 69_659
    assert len(prepared.calibration) == 23_570
    ref = calibration_and_holdout_data(
        cdnow_master,
        "customer_id",
        "date",
        "1997-09-30",
        "1998-06-30",
        freq="D",
        freq_multiplier=7,
        monetary_value_col="amount",
    )
    _assert_equal_to_lifetimes(_lifetimes_frame(prepared.calibration), ref)
    full_ref = summary_data_from_transaction_data(
        cdnow_master,
        "customer_id",
        "date",
        observation_period_end="1998-06-30",
        freq="D",
        freq_multiplier=7,
        monetary_value_col="amount",
    )
    full = prepared.full.set_index("customer_id").loc[full_ref.index]
    for column in ("frequency", "recency", "T"):
        np.testing.assert_array_equal(full[column], full_ref[column])
    np.testing.assert_allclose(full["monetary_value"], full_ref["monetary_value"], rtol=1e-13, atol=0)


def _generated_transactions(seed: int = 11, customers: int = 1500) -> pd.DataFrame:
    """Synthetic feed where about 10% of customer-days hold several purchases."""
    rng = np.random.default_rng(seed)
    start = np.datetime64("2021-01-01")
    rows = []
    for i in range(customers):
        first = rng.integers(0, 200)
        days = np.unique(first + np.concatenate([[0], rng.integers(0, 365 - first, rng.poisson(4))]))
        for day in days:
            for _ in range(1 + (rng.random() < 0.1) * rng.integers(1, 4)):
                rows.append((f"c{i:05d}", start + day, round(float(rng.lognormal(3, 0.8)), 2)))
    return pd.DataFrame(rows, columns=["customer_id", "date", "amount"])


@pytest.mark.parametrize(
    ("period", "unit", "freq", "multiplier"),
    [("day", "week", "D", 7), ("day", "day", "D", 1), ("week", "week", "W", 1)],
)
def test_equal_to_lifetimes_on_generated_data(period: str, unit: str, freq: str, multiplier: int) -> None:
    tx = _generated_transactions()
    per_day = tx.groupby(["customer_id", "date"]).size()
    assert 0.07 < (per_day > 1).mean() < 0.13
    raw = tx.assign(timestamp=tx["date"].dt.strftime("%Y-%m-%d"))[["customer_id", "timestamp", "amount"]]
    config = PrepareConfig(
        period=period,  # type: ignore[arg-type]
        time_unit=unit,  # type: ignore[arg-type]
        calibration_end=dt.date(2021, 8, 31),
        observation_end=dt.date(2021, 12, 31),
    )
    prepared = prepare(duckdb.connect().from_df(raw), config, "%Y-%m-%d")
    ref = calibration_and_holdout_data(
        tx,
        "customer_id",
        "date",
        "2021-08-31",
        "2021-12-31",
        freq=freq,
        freq_multiplier=multiplier,
        monetary_value_col="amount",
    )
    _assert_equal_to_lifetimes(_lifetimes_frame(prepared.calibration), ref)


def test_month_unit_is_days_over_30_4375() -> None:
    config = CONFIG.model_copy(update={"time_unit": "month"})
    cal = prepare(_relation(ROWS), config, "%Y-%m-%d").calibration.set_index("customer_id")
    assert cal.loc["A", "recency"] == 28 / 30.4375
    assert cal.loc["A", "T"] == 30 / 30.4375
