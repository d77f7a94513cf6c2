"""The spend model never stops a valid feed: remedies, the spread test and the pooled-mean fallback.

The feeds are transactions generated here, prepared by the real DuckDB prepare and fitted by the fit
stage. Every one of these stopped the job with exit 2 before ("Gamma-Gamma did not converge (penalizer
0.0)") or "converged" silently with q in the hundreds or millions (no spend heterogeneity).
"""

from __future__ import annotations

import datetime as dt
import math
import warnings
from collections.abc import Callable

import duckdb
import numpy as np
import pandas as pd
import pytest

from models import spend
from models.bundle import ScoringSpec
from models.gamma_gamma import GammaGammaParams
from models.spend import PooledMeanParams
from pipeline.config import FitConfig, PrepareConfig
from pipeline.engines.duckdb_prepare import prepare
from pipeline.engines.prepared import PreparedData
from pipeline.fit import FittedModels, fit
from pipeline.spend_fit import fit_spend

START = dt.date(2020, 1, 1)
CONFIG = PrepareConfig(
    period="day", time_unit="week", calibration_end=dt.date(2021, 6, 30), observation_end=dt.date(2021, 12, 31)
)
Amounts = Callable[[pd.DataFrame, np.random.Generator], np.ndarray]


def _purchases(n: int = 2000, seed: int = 1) -> tuple[pd.DataFrame, np.random.Generator]:
    """Purchase days of ``n`` customers born in 2020: gamma-distributed rates, at most one purchase a
    day (no same-day merges), a chance to leave after each purchase."""
    rng = np.random.default_rng(seed)
    rate = rng.gamma(1.2, 1 / 40, n)
    dropout = rng.beta(1.0, 6.0, n)
    birth = rng.uniform(0, 360, n)
    rows = []
    for i in range(n):
        day, count = float(np.floor(birth[i])), 0
        while day < 730:
            rows.append((i, day))
            count += 1
            if count > 1 and rng.uniform() < dropout[i]:
                break
            day += 1 + np.floor(rng.exponential(1 / rate[i]))
    return pd.DataFrame(rows, columns=["customer", "day"]), rng


def _feed(purchases: pd.DataFrame, amounts: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": "c" + purchases["customer"].astype(str),
            "timestamp": [str(START + dt.timedelta(days=int(d))) for d in purchases["day"]],
            "amount": np.round(amounts, 2),
        }
    )


def _prepare(feed: pd.DataFrame) -> PreparedData:
    return prepare(duckdb.connect().from_df(feed), CONFIG, "%Y-%m-%d")


def _fit(feed: pd.DataFrame, config: FitConfig | None = None) -> tuple[PreparedData, FittedModels]:
    prepared = _prepare(feed)
    return prepared, fit(prepared.calibration, config or FitConfig(), holdout_full=prepared.full)


def _order_values(prepared: PreparedData, fitted: FittedModels) -> np.ndarray:
    calibration = prepared.calibration
    model = fitted.bundle(ScoringSpec())
    return spend.expected_order_value(model.spend, calibration["frequency"], calibration["monetary_value"])


def _subscription(n: int = 1500, seed: int = 4) -> pd.DataFrame:
    """Monthly charges of 100.00 from a start in 2020, cancelled after a Geometric(0.08) number of months."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        start = pd.Timestamp("2020-01-01") + pd.Timedelta(days=int(rng.integers(0, 365)))
        for month in range(int(rng.geometric(0.08))):
            day = start + pd.DateOffset(months=month)
            if day > pd.Timestamp("2021-12-31"):
                break
            rows.append((f"s{i}", day.strftime("%Y-%m-%d"), 100.0))
    return pd.DataFrame(rows, columns=["customer_id", "timestamp", "amount"])


def test_every_charge_100_values_every_order_at_exactly_100() -> None:
    prepared, fitted = _fit(_subscription())
    assert fitted.spend_model == "pooled_mean"
    assert fitted.spend is not None
    assert fitted.spend.params == PooledMeanParams(100.0)
    assert fitted.spend_fallback == "every repeat customer's mean spend is 100: spend does not vary"
    assert [(a.remedy, a.outcome) for a in fitted.spend_attempts] == [("pooled_mean", "fallback")]
    values = _order_values(prepared, fitted)
    assert (values == 100.0).all()
    assert len(values) == len(prepared.calibration) == 1500
    assert fitted.bundle(ScoringSpec()).to_dict()["spend_params"] == {"mean": 100.0}


def test_amount_one_everywhere_values_every_order_at_one() -> None:
    purchases, _ = _purchases()
    prepared, fitted = _fit(_feed(purchases, np.ones(len(purchases))))
    assert fitted.spend is not None
    assert fitted.spend.params == PooledMeanParams(1.0)
    assert (_order_values(prepared, fitted) == 1.0).all()
    assert fitted.spend_fallback.startswith("every repeat customer's mean spend is 1:")


def _homogeneous(purchases: pd.DataFrame, rng: np.random.Generator) -> np.ndarray:
    """Every purchase Gamma(2, scale 25), whoever buys: no spend heterogeneity across customers."""
    return rng.gamma(2.0, 25.0, len(purchases))


def _heterogeneous(purchases: pd.DataFrame, rng: np.random.Generator) -> np.ndarray:
    """Gamma-Gamma spend: each customer's rate nu ~ Gamma(4, rate 15), each purchase Gamma(6, rate nu)."""
    nu = rng.gamma(4.0, 1 / 15.0, purchases["customer"].max() + 1)
    return np.asarray(rng.gamma(6.0, 1 / nu[purchases["customer"].to_numpy()]), dtype=np.float64)


def _with_zero_rows(feed: pd.DataFrame) -> pd.DataFrame:
    extra = feed.sample(2, random_state=1).assign(amount=0.0, timestamp="2021-03-03")
    return pd.concat([feed, extra], ignore_index=True)


def _with_duplicates(feed: pd.DataFrame) -> pd.DataFrame:
    return pd.concat([feed, feed.sample(40, random_state=2)], ignore_index=True)


@pytest.mark.parametrize(
    ("change", "mean", "p_value"),
    [
        # measured: the likelihood-ratio test finds no heterogeneity (p > 0.05) in each
        (None, 50.0517, 0.148),
        (_with_zero_rows, 50.0455, 0.147),
        (_with_duplicates, 50.1417, 0.125),
    ],
)
def test_spend_without_heterogeneity_falls_back_to_the_pooled_mean(
    change: Callable[[pd.DataFrame], pd.DataFrame] | None, mean: float, p_value: float
) -> None:
    purchases, rng = _purchases(3000)
    feed = _feed(purchases, _homogeneous(purchases, rng))
    prepared, fitted = _fit(change(feed) if change else feed)
    assert fitted.spend is not None
    assert isinstance(fitted.spend.params, PooledMeanParams)
    assert fitted.spend.params.mean == pytest.approx(mean, abs=1e-4)
    # the pooled mean is total repeat spend over repeat purchases
    calibration = prepared.calibration
    repeat = calibration[(calibration["frequency"] > 0) & (calibration["monetary_value"] > 0)]
    pooled = (repeat["frequency"] * repeat["monetary_value"]).sum() / repeat["frequency"].sum()
    assert fitted.spend.params.mean == pytest.approx(pooled, rel=1e-12)
    assert fitted.spread_test is not None
    assert fitted.spread_test.p_value == pytest.approx(p_value, abs=1e-3)
    assert fitted.spend_fallback == f"no spend heterogeneity across customers (likelihood-ratio test p = {p_value})"
    assert [(a.remedy, a.outcome) for a in fitted.spend_attempts] == [("plain", "ok"), ("pooled_mean", "fallback")]
    # standard error mean / sqrt(p x total purchases): per purchase Gamma(2, .), so about mean / sqrt(2 X)
    purchases_total = repeat["frequency"].sum()
    assert fitted.spend.standard_errors["mean"] == pytest.approx(mean / np.sqrt(2 * purchases_total), rel=0.05)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        # measured
        (None, (6.3614, 3.9657, 13.973)),
        (_with_zero_rows, (6.3645, 3.9651, 13.963)),
        (_with_duplicates, (6.3062, 3.9651, 14.118)),
    ],
)
def test_heterogeneous_spend_keeps_gamma_gamma(
    change: Callable[[pd.DataFrame], pd.DataFrame] | None, expected: tuple[float, float, float]
) -> None:
    """The same purchases with Gamma-Gamma spend (p 6, q 4, v 15): the fit recovers it, rows added or not."""
    purchases, rng = _purchases(3000)
    feed = _feed(purchases, _heterogeneous(purchases, rng))
    _, fitted = _fit(change(feed) if change else feed)
    assert fitted.spend is not None
    assert isinstance(fitted.spend.params, GammaGammaParams)
    params = fitted.spend.params
    assert (params.p, params.q, params.v) == pytest.approx(expected, rel=1e-4)
    assert (params.p, params.q, params.v) == pytest.approx((6.0, 4.0, 15.0), rel=0.1)  # the simulated values
    assert fitted.spend_fallback == ""
    assert [(a.remedy, a.outcome) for a in fitted.spend_attempts] == [("plain", "ok")]
    assert fitted.spread_test is not None
    assert fitted.spread_test.p_value < 1e-100


def test_spend_that_barely_varies_falls_back_when_q_runs_off() -> None:
    """Customers' mean spends within 0.1% of 50: Gamma-Gamma's q runs off to about 1e6."""
    purchases, rng = _purchases(3000)
    level = 50 * (1 + 0.001 * rng.standard_normal(purchases["customer"].max() + 1))
    amounts = level[purchases["customer"].to_numpy()] * (1 + 0.002 * rng.standard_normal(len(purchases)))
    prepared, fitted = _fit(_feed(purchases, amounts))
    assert fitted.spend is not None
    assert isinstance(fitted.spend.params, PooledMeanParams)
    assert fitted.spend.params.mean == pytest.approx(50.0, abs=0.01)
    assert [(a.remedy, a.outcome) for a in fitted.spend_attempts] == [
        ("plain", "degenerate"),
        ("restart", "degenerate"),
        ("pooled_mean", "fallback"),
    ]
    assert fitted.spend_fallback.startswith("q ran off to 1.")
    assert fitted.spend_fallback.endswith(": no spend heterogeneity across customers")
    values = _order_values(prepared, fitted)
    assert np.ptp(values) == 0.0


def test_price_plans_use_the_smallest_penalizer_that_works() -> None:
    """Each customer pays one of three prices every time: p runs off (no variation within customers)
    while customers differ a lot; lifetimes' L2 penalty 0.001 gives an acceptable fit (measured)."""
    purchases, rng = _purchases(3000)
    plans = rng.choice([9.99, 19.99, 49.99], purchases["customer"].max() + 1)
    _, fitted = _fit(_feed(purchases, plans[purchases["customer"].to_numpy()]))
    assert fitted.spend is not None
    assert isinstance(fitted.spend.params, GammaGammaParams)
    assert [(a.remedy, a.outcome) for a in fitted.spend_attempts] == [
        ("plain", "degenerate"),
        ("restart", "degenerate"),
        ("penalizer 0.001", "ok"),
    ]
    assert fitted.spend_attempts[0].message.startswith("p ran off to ")
    params = fitted.spend.params
    assert (params.p, params.q, params.v) == pytest.approx((6.8584, 2.4163, 6.0265), rel=1e-4)


def test_heavy_tailed_spend_refused_as_q_below_one_falls_back() -> None:
    """Spend rates Gamma(0.9, rate 15): q <= 1 in every attempt (the mean spend is undefined)."""
    rng = np.random.default_rng(2)
    x = rng.geometric(0.4, 3000).astype(np.float64)
    m = rng.gamma(4 * x, 1 / (x * rng.gamma(0.9, 1 / 15, 3000)))
    outcome = fit_spend(x, m, 0.0, FitConfig().remedies)
    assert [a.remedy for a in outcome.attempts] == [
        "plain",
        "restart",
        "penalizer 0.001",
        "penalizer 0.01",
        "penalizer 0.1",
        "penalizer 1",
        "pooled_mean",
    ]
    assert all(a.outcome == "degenerate" for a in outcome.attempts[:-1])
    assert "q = 0.873 <= 1: the mean spend p v / (q - 1) is undefined" in outcome.attempts[0].message
    assert outcome.fallback.startswith("Gamma-Gamma could not be fitted: plain: degenerate (q = 0.873 <= 1")
    assert outcome.fallback.endswith("4 penalizers: none acceptable")
    mean = pytest.approx(float(np.sum(x * m) / np.sum(x)), rel=1e-12)
    assert outcome.fit.params == PooledMeanParams(mean)  # type: ignore[arg-type]  # an approx compares to the float


def test_too_few_or_no_spend_customers_fall_back() -> None:
    outcome = fit_spend([1.0, 2.0, 0.0], [10.0, 40.0, 0.0], 0.0, FitConfig().remedies)
    assert outcome.fit.params == PooledMeanParams(30.0)  # (10 + 2 x 40) / 3 purchases
    assert outcome.fallback == "only 2 repeat customers with positive spend (Gamma-Gamma needs 3)"
    nothing = fit_spend([1.0, 2.0, 0.0], [0.0, 0.0, 0.0], 0.0, FitConfig().remedies)
    assert nothing.fit.params == PooledMeanParams(0.0)
    assert nothing.fallback == "no repeat customer has a positive net spend: every repeat order is free or refunded"


def _free_repeats(purchases: pd.DataFrame, refunded: bool) -> pd.DataFrame:
    """First purchases at 25; every later one free (amount 0), or at 30 and refunded by an equal negative row."""
    first = ~purchases["customer"].duplicated().to_numpy()
    if not refunded:
        return _feed(purchases, np.where(first, 25.0, 0.0))
    repeats = purchases[~first]
    sales = _feed(purchases, np.where(first, 25.0, 30.0))
    return pd.concat([sales, _feed(repeats, np.full(len(repeats), -30.0))], ignore_index=True)


@pytest.mark.parametrize("refunded", [False, True], ids=["free", "refunded"])
def test_no_positive_repeat_spend_falls_back_to_a_pooled_mean_of_zero(refunded: bool) -> None:
    """Repeat buyers, none with a positive net spend: the pooled mean 0 with its reason, fitted to no one
    (NaN log-likelihood, AIC and BIC; the BIC raised a math domain error and the run failed)."""
    purchases, _ = _purchases(800, seed=3)
    prepared, fitted = _fit(_free_repeats(purchases, refunded))
    assert (prepared.calibration["frequency"] > 0).sum() > 100
    assert (prepared.calibration["monetary_value"] == 0).all()
    assert fitted.spend_model == "pooled_mean"
    assert fitted.spend is not None
    assert fitted.spend.params == PooledMeanParams(0.0)
    assert fitted.spend.standard_errors == {"mean": 0.0}
    reason = "no repeat customer has a positive net spend: every repeat order is free or refunded"
    assert fitted.spend_fallback == reason
    assert [(a.remedy, a.outcome, a.message) for a in fitted.spend_attempts] == [("pooled_mean", "fallback", reason)]
    stats = fitted.spend.stats
    assert (stats.n_observations, stats.n_params) == (0, 2)
    assert all(math.isnan(value) for value in (stats.log_likelihood, stats.aic, stats.bic))
    assert (_order_values(prepared, fitted) == 0.0).all()
    assert fitted.bundle(ScoringSpec()).to_dict()["spend_params"] == {"mean": 0.0}


def test_cdnow_keeps_gamma_gamma_with_one_attempt(cdnow_sample_summary: pd.DataFrame) -> None:
    fitted = fit(cdnow_sample_summary, FitConfig())
    assert fitted.spend_model == "gamma_gamma"
    assert [(a.remedy, a.outcome) for a in fitted.spend_attempts] == [("plain", "ok")]
    assert fitted.spend_attempts[0].log_likelihood == pytest.approx(-4055.92, abs=0.01)
    assert fitted.spread_test is not None
    assert fitted.spread_test.statistic == pytest.approx(524.12, abs=0.01)


def test_spend_model_none_needs_no_amounts() -> None:
    """An event feed: no monetary_value column at all; the purchase model is fitted, no spend model."""
    purchases, _ = _purchases()
    prepared = _prepare(_feed(purchases, np.ones(len(purchases))))
    events = prepared.calibration.drop(columns=["monetary_value"])
    config = FitConfig().model_copy(update={"spend_model": "none"})  # the literal "none" is the lead's config
    fitted = fit(events, config, holdout_full=prepared.full)
    assert fitted.spend is None
    assert fitted.spend_model == "none"
    assert fitted.spend_attempts == ()
    model = fitted.bundle(ScoringSpec())
    assert model.spend is None
    assert model.to_dict()["spend_model"] == "none"
    assert set(fitted.params()) == {"r", "alpha", "a", "b"}
    with pytest.raises(spend.NoSpendModelError):
        spend.expected_order_value(model.spend, [1.0], [1.0])


def test_no_repeat_purchase_is_still_an_input_error_without_a_spend_model() -> None:
    from pipeline.errors import InputError

    customers = pd.DataFrame({"frequency": [0.0, 0.0], "recency": [0.0, 0.0], "T": [3.0, 4.0]})
    config = FitConfig().model_copy(update={"spend_model": "none"})
    with pytest.raises(InputError, match="no customer has a repeat purchase, so the purchase model cannot be fitted"):
        fit(customers, config, label="events.csv")


@pytest.mark.slow
def test_map_uses_the_same_spend_decision() -> None:
    """MAP: spend without heterogeneity falls back before PyMC; heterogeneous spend is fitted by PyMC."""
    purchases, rng = _purchases(3000)
    config = FitConfig(method="map")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        _, flat = _fit(_feed(purchases, _homogeneous(purchases, rng)), config)
        _, varied = _fit(_feed(purchases, _heterogeneous(purchases, rng)), config)
    assert flat.spend_model == "pooled_mean"
    assert [a.remedy for a in flat.spend_attempts] == ["plain", "pooled_mean"]
    assert varied.spend_model == "gamma_gamma"
    assert [(a.remedy, a.outcome) for a in varied.spend_attempts] == [("plain", "ok"), ("pymc map", "ok")]
    assert varied.spend is not None
    # MAP with flat priors is the maximum-likelihood estimate
    mle = varied.spend_attempts[0].log_likelihood
    assert varied.spend.stats.log_likelihood == pytest.approx(mle, abs=0.05)
