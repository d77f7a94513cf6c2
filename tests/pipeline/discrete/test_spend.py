"""Gamma-Gamma CLV of the discrete job: the spend input from the raw feed, the project's spend fitter, the
numbers of the registered parameters (JSON round trip), and no money columns with fit.spend_model: none."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from models import bgbb, gamma_gamma
from models.gamma_gamma import GammaGammaParams
from models.gamma_gamma_fit import SpendData, fit_spend_data
from models.opportunity_model import MONEY_COLUMNS, OUTPUT_COLUMNS, OpportunityParams, score_opportunities
from pipeline.config import Config, parse_config
from pipeline.discrete.workflow import DiscreteResult, train_discrete
from pipeline.engines import open_engine
from pipeline.engines.rules import SCALE
from pipeline.spend_fit import fit_spend
from tests.discrete_feed import write_discrete_feed


def _config(path: Path, **fit: Any) -> Config:
    return parse_config(
        {
            "data": {"source": "csv", "path": str(path), "columns": {"timestamp": "date"}},
            "prepare": {"calibration_end": "2023-06-30"},
            "business": {"type": "discrete", "billing_period": "month"},
            **({"fit": fit} if fit else {}),
        }
    )


def _train(config: Config) -> DiscreteResult:
    engine = open_engine(config.engine)
    return train_discrete(config, engine, engine.open(config.data))


@pytest.fixture(scope="module")
def feed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_discrete_feed(tmp_path_factory.mktemp("feed") / "donations.csv")


@pytest.fixture(scope="module")
def trained(feed: Path) -> DiscreteResult:
    return _train(_config(feed))


def _mean_spend_per_opportunity(feed: Path) -> pd.Series:
    """From the raw feed in pandas: the mean of the monthly spend totals after the first month, per customer, of the
    amounts rounded to 1/SCALE as the prepare rounds them (pipeline.engines.rules: this feed's amounts have 15
    decimals, so unrounded the means differ by up to 2e-5 relative)."""
    rows = pd.read_csv(feed, parse_dates=["date"])
    rows["amount"] = (rows["amount"] * SCALE).round() / SCALE
    rows = rows[rows["date"] <= "2023-11-30"]  # December 2023 is still running at the observation end
    rows["month"] = rows["date"].dt.to_period("M")
    monthly = rows.groupby(["customer_id", "month"])["amount"].sum().reset_index()
    first = monthly.groupby("customer_id")["month"].transform("min")
    return monthly[monthly["month"] > first].groupby("customer_id")["amount"].mean()


def test_the_spend_input_is_the_mean_spend_per_repeat_opportunity(trained: DiscreteResult, feed: Path) -> None:
    full = trained.histories.full.set_index("customer_id")
    expected = _mean_spend_per_opportunity(feed)
    repeat = full[full["frequency"] > 0]
    assert sorted(repeat.index) == sorted(expected.index)
    assert repeat["monetary_value"].to_numpy() == pytest.approx(expected.loc[repeat.index].to_numpy(), rel=1e-12)
    assert (full.loc[full["frequency"] == 0, "monetary_value"] == 0).all()


def test_gamma_gamma_is_the_projects_fitter_on_the_repeat_buyers(trained: DiscreteResult) -> None:
    full = trained.histories.full
    assert trained.spend is not None
    assert trained.spend.fallback == ""
    params = trained.spend.fit.params
    assert isinstance(params, GammaGammaParams)
    config = trained.config.fit
    direct = fit_spend(full["frequency"], full["monetary_value"], config.spend_penalizer, config.remedies)
    assert params == direct.fit.params
    repeat = full[full["frequency"] > 0]
    mle = fit_spend_data(SpendData.from_arrays(repeat["frequency"], repeat["monetary_value"]))
    for found, other in zip(params.as_dict().values(), mle.params.as_dict().values(), strict=True):
        assert found == pytest.approx(other, rel=1e-9)
    # Measured: p 1.795, q 4.498, v 56.56 (spread test p-value 1e-196); the population mean p v / (q - 1)
    # is 29.02, the feed's 28.33 (the mean of 10, 25 and 50, times a spend level of mean 1) within 2.5%.
    assert (params.p, params.q, params.v) == pytest.approx((1.795, 4.498, 56.56), rel=1e-3)
    assert params.population_mean == pytest.approx(85 / 3, rel=0.025)


def test_clv_is_order_value_times_discounted_transactions(trained: DiscreteResult) -> None:
    model, scores = trained.model, trained.scores
    assert model is not None
    assert scores is not None
    assert model.spend is not None
    assert tuple(scores.columns[-2:]) == MONEY_COLUMNS
    x, t_x, n, m = (scores[c].to_numpy() for c in ("frequency", "recency", "n_periods", "monetary_value"))
    order_value = gamma_gamma.expected_order_value(model.spend, x, m)  # type: ignore[arg-type]
    assert scores["expected_order_value"].to_numpy() == pytest.approx(order_value, rel=1e-12)
    rate = (1.1) ** (30.4375 / 365.25) - 1  # score.annual_discount_rate 0.10 by default, per month
    assert model.discount_rate == pytest.approx(rate, rel=1e-12)
    steps = [bgbb.expected_transactions(model.params, k, x, t_x, n) for k in range(13)]
    discounted = sum((steps[k] - steps[k - 1]) / (1 + rate) ** k for k in range(1, 13))
    assert scores["clv"].to_numpy() == pytest.approx(order_value * discounted, rel=1e-12)
    assert steps[12] == pytest.approx(scores["expected_transactions"].to_numpy(), rel=1e-12)
    assert (scores["clv"] < scores["expected_order_value"] * scores["expected_transactions"]).all()
    undiscounted = OpportunityParams(model.params, model.horizon, model.period, model.spend, 0.0)
    plain = score_opportunities(undiscounted, scores)
    assert plain["clv"].to_numpy() == pytest.approx(order_value * steps[12], rel=1e-12)


def test_the_registered_parameters_give_the_same_numbers(trained: DiscreteResult, tmp_path: Path) -> None:
    import json

    model, scores = trained.model, trained.scores
    assert model is not None
    assert scores is not None
    loaded = OpportunityParams.from_dict(json.loads(model.write(tmp_path / "params.json").read_text()))
    assert loaded == model
    again = score_opportunities(loaded, scores.loc[:, list(loaded.input_columns)])
    for column in (*OUTPUT_COLUMNS[1:], *MONEY_COLUMNS):
        assert again[column].to_numpy() == pytest.approx(scores[column].to_numpy(), rel=1e-12)
    with pytest.raises(ValueError, match="missing column 'monetary_value'"):
        score_opportunities(loaded, scores.loc[:, ["customer_id", "frequency", "recency", "n_periods"]])


def test_without_a_spend_model_nothing_changes(trained: DiscreteResult, feed: Path) -> None:
    plain = _train(_config(feed, spend_model="none"))
    assert plain.spend is None
    assert plain.model is not None
    assert plain.scores is not None
    assert "spend_model" not in plain.model.to_dict()
    assert tuple(plain.scores.columns) == ("customer_id", "frequency", "recency", "n_periods", *OUTPUT_COLUMNS[1:])
    assert trained.scores is not None
    for column in OUTPUT_COLUMNS[1:]:
        assert plain.scores[column].to_numpy() == pytest.approx(trained.scores[column].to_numpy(), rel=1e-12)
    np.testing.assert_array_equal(plain.scores["customer_id"], trained.scores["customer_id"])


def test_the_spend_model_is_the_purchase_jobs_fit_spend_model(trained: DiscreteResult) -> None:
    """``fit_discrete_spend`` is :func:`pipeline.fit.fit_spend_model` on the histories, for each ``fit.spend_model``."""
    from pipeline.discrete.workflow import fit_discrete_spend
    from pipeline.fit import fit_spend_model

    full = trained.histories.full
    f, m = full["frequency"].to_numpy(dtype=np.float64), full["monetary_value"].to_numpy(dtype=np.float64)
    for chosen in ("gamma_gamma", "pooled_mean", "none"):
        config = trained.config.model_copy(
            update={"fit": trained.config.fit.model_copy(update={"spend_model": chosen})}
        )
        got, expected = fit_discrete_spend(config, full), fit_spend_model(chosen, f, m, config.fit)
        if chosen == "none":
            assert got is None
            assert expected is None
            continue
        assert got is not None
        assert expected is not None
        assert got.fit.params == expected.fit.params
        assert got.fallback == expected.fallback
    small = pd.DataFrame({"frequency": [2, 1, 0, 3], "monetary_value": [10.0, 40.0, 0.0, 20.0]})
    config = trained.config.model_copy(
        update={"fit": trained.config.fit.model_copy(update={"spend_model": "pooled_mean"})}
    )
    pooled = fit_discrete_spend(config, small)
    assert pooled is not None
    assert pooled.fit.params.as_dict() == {"mean": pytest.approx(20.0, rel=1e-12)}  # (2*10 + 40 + 3*20) / 6
    assert pooled.fallback == "configured (fit.spend_model: pooled_mean)"
