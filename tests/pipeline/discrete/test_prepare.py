"""The discrete feed's prepare: (x, t_x, n) per customer by calendar opportunity, quarantine reconciled."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from pipeline.config import parse_config
from pipeline.discrete.prepare import prepare_opportunities
from pipeline.engines import open_engine

ROWS = [
    ("a", "2020-03-10", "50"),  # first purchase (2020 is not an opportunity)
    ("a", "2021-06-01", "50"),
    ("a", "2021-09-01", "20"),  # the same opportunity (2021) once
    ("a", "2023-02-01", "50"),
    ("b", "2021-12-31", "10"),
    ("c", "2024-01-05", "10"),  # first purchase in the running period: not counted yet
    ("b", "not a date", "10"),  # invalid_timestamp
    ("", "2022-01-01", "10"),  # missing_customer_id
]


def test_histories_by_calendar_opportunity(tmp_path: Path) -> None:
    path = tmp_path / "donations.csv"
    pd.DataFrame(ROWS, columns=["customer_id", "date", "amount"]).to_csv(path, index=False)
    config = parse_config(
        {
            "data": {"source": "csv", "path": str(path), "columns": {"timestamp": "date"}},
            "prepare": {"calibration_end": "2022-12-31", "observation_end": "2024-06-30"},
            "business": {"type": "discrete", "billing_period": "year"},
        }
    )
    engine = open_engine(config.engine)
    histories = prepare_opportunities(engine.connection, engine.open(config.data).handle, config)  # type: ignore[attr-defined]
    assert histories.ledger.rows_in == 8
    assert histories.ledger.rows_used == 6
    assert histories.ledger.reasons == {"invalid_timestamp": 1, "missing_customer_id": 1}
    full = histories.full.set_index("customer_id")
    assert list(full.index) == ["a", "b"]
    assert full["frequency"].tolist() == [2, 0]  # a: 2021 and 2023 (2024 is still running)
    assert full["recency"].tolist() == [3, 0]
    assert full["n_periods"].tolist() == [3, 2]  # a: 2021-2023; b: 2022-2023
    assert full["monetary_value"].tolist() == [60.0, 0.0]  # a: 2021 (50 + 20) and 2023 (50); b: no repeat
    calibration = histories.calibration.set_index("customer_id")
    assert calibration["frequency"].tolist() == [1, 0]
    assert calibration["recency"].tolist() == [1, 0]
    assert calibration["n_periods"].tolist() == [2, 1]
    assert calibration["recent"].tolist() == [0, 0]  # the holdout is one opportunity (2023): a bought in 2021
    assert calibration["monetary_value"].tolist() == [70.0, 0.0]  # a's 2021 opportunity: 50 + 20


def test_histories_as_of_a_date_for_scoring(tmp_path: Path) -> None:
    """``as_of`` (clv score): the histories as of that date, the rows after it quarantined, no calibration."""
    import datetime as dt

    path = tmp_path / "donations.csv"
    pd.DataFrame(ROWS, columns=["customer_id", "date", "amount"]).to_csv(path, index=False)
    config = parse_config(
        {
            "data": {"source": "csv", "path": str(path), "columns": {"timestamp": "date"}},
            "prepare": {"calibration_end": "2022-12-31", "observation_end": "2024-06-30"},
            "business": {"type": "discrete", "billing_period": "year"},
        }
    )
    engine = open_engine(config.engine)
    source = engine.open(config.data).handle  # type: ignore[attr-defined]
    histories = prepare_opportunities(engine.connection, source, config, as_of=dt.date(2022, 12, 31))
    assert histories.ledger.rows_in == 8
    assert histories.ledger.reasons == {
        "invalid_timestamp": 1,
        "missing_customer_id": 1,
        "after_observation_end": 2,  # a's 2023-02-01 and c's 2024-01-05
    }
    assert histories.ledger.rows_used == 4
    assert (histories.calibration_end, histories.observation_end) == (dt.date(2022, 12, 31), dt.date(2022, 12, 31))
    assert histories.calibration.empty
    full = histories.full.set_index("customer_id")
    assert list(full.index) == ["a", "b"]
    assert full["frequency"].tolist() == [1, 0]  # as the training's calibration histories at the same date
    assert full["recency"].tolist() == [1, 0]
    assert full["n_periods"].tolist() == [2, 1]
