"""The shared benchmark feed: exactly the rows asked for, reproducible, and a population the job's models recover."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from benchmarks.feed import generate, generate_frame, prepared_feed
from models.bgnbd import BetaGeoParams
from pipeline.config import FitConfig
from pipeline.fit import fit_histories, fit_input


def test_rows_customers_and_window(tmp_path: Path) -> None:
    customers = generate(tmp_path / "feed.parquet", 50_000, block_customers=2_000)
    feed = pd.read_parquet(tmp_path / "feed.parquet")
    assert len(feed) == 50_000
    assert feed["customer_id"].nunique() == customers == 5_110
    assert feed["timestamp"].min() >= pd.Timestamp("2021-01-01")
    assert feed["timestamp"].max() < pd.Timestamp("2023-07-01")
    assert (feed["amount"] > 0).all()
    assert feed.equals(generate_frame(50_000, block_customers=2_000))  # the same seed, the same feed


def test_a_feed_ordered_by_time_holds_the_same_rows(tmp_path: Path) -> None:
    generate(tmp_path / "time.parquet", 20_000, block_customers=2_000, order="time")
    by_time = pd.read_parquet(tmp_path / "time.parquet")
    assert by_time["timestamp"].is_monotonic_increasing
    assert not by_time["customer_id"].is_monotonic_increasing
    key = ["customer_id", "timestamp", "amount"]
    by_customer = generate_frame(20_000, block_customers=2_000)
    pd.testing.assert_frame_equal(
        by_time.sort_values(key, ignore_index=True), by_customer.sort_values(key, ignore_index=True), check_dtype=False
    )
    assert [p.name for p in tmp_path.iterdir()] == ["time.parquet"]  # the feed by customer was removed
    with pytest.raises(ValueError, match="order must be one of"):
        generate(tmp_path / "x.parquet", 10, order="id")


def test_the_job_recovers_the_population(tmp_path: Path) -> None:
    full = prepared_feed(200_000, tmp_path).full
    fitted = fit_histories(fit_input(full), FitConfig())
    params = fitted.purchase.params
    assert isinstance(params, BetaGeoParams)  # the default purchase model
    # true r = 0.8, alpha = 20 per day (2.86 per week), a = 1.2, b = 12
    assert params.r == pytest.approx(0.8, rel=0.1)
    assert params.alpha == pytest.approx(20 / 7, rel=0.15)
    assert params.a == pytest.approx(1.2, rel=0.25)
    assert params.b == pytest.approx(12, rel=0.3)
