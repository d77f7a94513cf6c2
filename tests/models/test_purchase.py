from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pytest

from models import bgnbd, purchase
from models.bgnbd import BetaGeoParams
from models.mbgnbd import MBGNBDParams
from models.pareto_nbd import ParetoNBDParams

BG = BetaGeoParams(r=0.2425945, alpha=4.4136019, a=0.7929199, b=2.4258881)


def test_dispatches_on_the_parameter_type() -> None:
    f, r, t = np.array([0.0, 2.0]), np.array([0.0, 30.43]), np.array([38.86, 38.86])
    np.testing.assert_array_equal(
        purchase.expected_purchases(BG, 39, f, r, t), bgnbd.expected_purchases(BG, 39, f, r, t)
    )
    assert purchase.model_name(BG) == "bgnbd"
    assert purchase.model_name(MBGNBDParams(0.5, 6.0, 0.9, 1.6)) == "mbgnbd"
    assert purchase.model_name(ParetoNBDParams(0.5, 10.0, 0.6, 11.0)) == "pareto_nbd"


def test_make_params_by_name() -> None:
    assert purchase.make_params("pareto_nbd", {"r": 1, "alpha": 2, "s": 3, "beta": 4, "p": 9}) == ParetoNBDParams(
        1, 2, 3, 4
    )
    with pytest.raises(ValueError, match="unknown purchase model 'nbd'"):
        purchase.make_params("nbd", {})


def test_bgnbd_repeat_count_pmf_matches_the_published_p_zero() -> None:
    # P(X(39) = 0) = 0.5737864 for a new customer, with the parameters rounded as in R's BTYD
    rounded = BetaGeoParams(r=0.243, alpha=4.414, a=0.793, b=2.426)
    assert purchase.repeat_count_pmf(rounded, [0.0], [39.0])[0] == pytest.approx(0.5737864, abs=1e-7)
    counts = np.arange(400, dtype=float)
    pmf = purchase.repeat_count_pmf(BG, counts, np.full_like(counts, 39.0))
    assert pmf.sum() == pytest.approx(1.0, abs=1e-12)
    assert (counts * pmf).sum() == pytest.approx(float(purchase.expected_purchases_new_customer(BG, 39.0)))


MODELS = [
    BG,
    MBGNBDParams(r=0.525, alpha=6.183, a=0.891, b=1.614),
    ParetoNBDParams(r=0.5533, alpha=10.578, s=0.6062, beta=11.669),
]


@pytest.mark.parametrize("params", MODELS, ids=purchase.model_name)
def test_a_customer_first_seen_on_the_calibration_end_has_the_limit_values(params: purchase.PurchaseParams) -> None:
    """T = 0 (first purchase on the calibration end): finite, warning-free limits (warnings are errors here).

    Such a customer is a new customer: their churn risk over t is P(X(t) = 0) and their expected
    purchases are E[X(t)]; nothing can have been observed in no time.
    """
    zero = np.zeros(3)
    # exact up to rounding (MBG/NBD adds b/(a+b) and a/(a+b))
    np.testing.assert_allclose(purchase.repeat_count_pmf(params, [0.0, 1.0, 5.0], 0.0), [1.0, 0.0, 0.0], atol=1e-15)
    np.testing.assert_allclose(purchase.log_likelihood_rows(params, zero, zero, zero), [0.0, 0.0, 0.0], atol=1e-15)
    assert purchase.log_likelihood(params, [0.0], [0.0], [0.0], [7.0]) == pytest.approx(0.0, abs=1e-14)
    alive = purchase.p_alive(params, 0.0, 0.0, 0.0)
    expected_alive = params.b / (params.a + params.b) if isinstance(params, MBGNBDParams) else 1.0
    assert float(alive) == pytest.approx(expected_alive, rel=1e-12)  # MBG/NBD: can drop out at the first purchase
    horizons = np.array([0.0, 4.0, 13.0, 52.0])
    no_purchase = purchase.p_no_purchase(params, horizons, 0.0, 0.0, 0.0)
    assert no_purchase[0] == 1.0
    np.testing.assert_allclose(no_purchase, purchase.repeat_count_pmf(params, 0.0, horizons), rtol=1e-9)
    expected = purchase.expected_purchases(params, horizons, 0.0, 0.0, 0.0)
    assert expected[0] == 0.0
    np.testing.assert_allclose(expected, purchase.expected_purchases_new_customer(params, horizons), rtol=1e-12)
    assert float(purchase.expected_purchases_new_customer(params, 0.0)) == 0.0


def test_bgnbd_new_customer_limit_in_closed_form() -> None:
    """BG/NBD at T = 0: P(no purchase in (0, t]) = (alpha / (alpha + t))^r, exactly."""
    t = np.array([1.0, 39.0])
    expected = (BG.alpha / (BG.alpha + t)) ** BG.r
    np.testing.assert_allclose(purchase.p_no_purchase(BG, t, 0.0, 0.0, 0.0), expected, rtol=1e-14)
    np.testing.assert_allclose(purchase.repeat_count_pmf(BG, 0.0, t), expected, rtol=1e-14)


def _merged_holdout_log_likelihood(
    params: purchase.PurchaseParams, calibration: pd.DataFrame, full: pd.DataFrame
) -> float:
    """The previous implementation: every row's log-likelihood in one call on the merged summaries."""
    columns = ["customer_id", "frequency", "recency", "T"]
    both = calibration[columns].merge(full[columns], on="customer_id", suffixes=("_cal", "_full"))
    with np.errstate(all="ignore"):
        full_ll = purchase.log_likelihood_rows(params, both["frequency_full"], both["recency_full"], both["T_full"])
        cal_ll = purchase.log_likelihood_rows(params, both["frequency_cal"], both["recency_cal"], both["T_cal"])
    return float(np.sum(full_ll - cal_ll))


@pytest.mark.parametrize(
    ("ids", "params"),
    [
        ("str", BetaGeoParams(r=0.24, alpha=4.41, a=0.79, b=2.43)),
        ("object", BetaGeoParams(r=0.24, alpha=4.41, a=0.79, b=2.43)),
        ("int", ParetoNBDParams(r=0.55, alpha=10.58, s=0.61, beta=11.67)),
    ],
)
def test_holdout_log_likelihood_equals_the_merged_tables(
    ids: str, params: purchase.PurchaseParams, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows evaluated part by part give the previous whole-array numbers bit for bit: shuffled, with customers
    new in the holdout (only in full) and calibration customers missing from full."""
    monkeypatch.setattr(purchase, "LIKELIHOOD_PART_ROWS", 1000)
    rng = np.random.default_rng(3)
    n = 50_000
    T = rng.uniform(10, 60, n)
    recency = T * rng.random(n) * (rng.random(n) < 0.6)
    frequency = np.where(recency > 0, rng.integers(1, 12, n), 0).astype(float)
    number = rng.permutation(n) * 7 + 1000
    key = number if ids == "int" else pd.Series([f"c{k}" for k in number], dtype=ids)
    full = pd.DataFrame({"customer_id": key, "frequency": frequency + 1, "recency": recency + 3, "T": T + 5})
    calibration = pd.DataFrame({"customer_id": key, "frequency": frequency, "recency": recency, "T": T})
    calibration, full = calibration.iloc[: n - 500].sample(frac=1, random_state=1), full.iloc[300:]
    value = purchase.holdout_log_likelihood(params, calibration, full)
    assert value == _merged_holdout_log_likelihood(params, calibration, full)
    assert value == purchase.holdout_log_likelihood(params, calibration, full.sample(frac=1, random_state=2))


@pytest.mark.parametrize("period", ["day", "week"])
def test_holdout_log_likelihood_pairs_prepares_rows_without_a_merge(
    period: Literal["day", "week"], tmp_path: Path
) -> None:
    """On prepare's own summaries, with customers new in the holdout (only in the full history), the rows are
    paired by position (no merge, for daily periods) and the number is the merge's, bit for bit. With weekly
    periods a customer new in the holdout may start in calibration_end's week: then the merge is taken."""
    from benchmarks.feed import generate
    from pipeline.config import Config, DataConfig, PrepareConfig
    from pipeline.engines.duckdb_prepare import prepare
    from pipeline.engines.duckdb_source import connect, open_transactions

    path = tmp_path / "feed.parquet"
    generate(path, 200_000, seed=7)
    data = open_transactions(connect(Config().engine), DataConfig(source="parquet", path=path))
    config = PrepareConfig(calibration_end=dt.date(2022, 9, 28), observation_end=dt.date(2023, 6, 30), period=period)
    prepared = prepare(data.relation, config, data.timestamp_format)
    calibration, full = prepared.calibration, prepared.full
    assert len(full) > len(calibration) + 1000  # customers new in the holdout
    if period == "day":
        assert purchase._aligned_rows(calibration, full) is not None
    params = BetaGeoParams(r=0.8, alpha=20.0, a=1.2, b=12.0)
    value = purchase.holdout_log_likelihood(params, calibration, full)
    assert value == _merged_holdout_log_likelihood(params, calibration, full)
    shuffled = full.sample(frac=1, random_state=3)
    assert purchase._aligned_rows(calibration, shuffled) is None
    assert purchase.holdout_log_likelihood(params, calibration, shuffled) == value
