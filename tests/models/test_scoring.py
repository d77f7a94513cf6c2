from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from models import bgnbd, gamma_gamma, pareto_nbd, scoring
from models.bgnbd import BetaGeoParams
from models.bundle import CLVModelParams, PosteriorDraws, RiskTier, ScoringSpec
from models.contract import ContractError
from models.gamma_gamma import GammaGammaParams
from models.pareto_nbd import ParetoNBDParams
from models.scoring import NonFiniteScoresError, assign_risk_tier, score_columns, score_customers
from models.spend import PooledMeanParams

PURCHASE = BetaGeoParams(r=0.2425945, alpha=4.4136019, a=0.7929199, b=2.4258881)
SPEND = GammaGammaParams(p=6.2488, q=3.7446, v=15.4477)
MODEL = CLVModelParams(purchase=PURCHASE, spend=SPEND, spec=ScoringSpec())
CUSTOMERS = pd.DataFrame(
    {
        "customer_id": ["a", "b", "c"],
        "frequency": [2.0, 0.0, 7.0],
        "recency": [30.43, 0.0, 5.0],
        "T": [38.86, 38.86, 38.0],
        "monetary_value": [22.35, 0.0, 40.0],
    }
)


def test_scores_are_the_model_formulas() -> None:
    scores = score_customers(MODEL, CUSTOMERS)
    assert list(scores.columns) == score_columns(MODEL)
    f, r, t = CUSTOMERS["frequency"], CUSTOMERS["recency"], CUSTOMERS["T"]
    np.testing.assert_allclose(scores["p_alive"], bgnbd.p_alive(PURCHASE, f, r, t))
    np.testing.assert_allclose(scores["churn_risk"], bgnbd.p_no_purchase(PURCHASE, 90 / 7, f, r, t))
    np.testing.assert_allclose(scores["expected_purchases_365d"], bgnbd.expected_purchases(PURCHASE, 365 / 7, f, r, t))
    np.testing.assert_allclose(
        scores["expected_order_value"],
        gamma_gamma.expected_order_value(SPEND, f, CUSTOMERS["monetary_value"]),
    )
    assert scores["expected_order_value"][1] == pytest.approx(35.171, abs=2e-3)


def test_churn_risk_is_not_one_minus_p_alive() -> None:
    scores = score_customers(MODEL, CUSTOMERS)
    # A one-time buyer is "alive" for BG/NBD, yet very likely to make no purchase in 90 days.
    assert scores["p_alive"][1] == 1.0
    assert 0.8 < scores["churn_risk"][1] < 1.0
    # A lapsed frequent buyer (7 purchases, last one 33 weeks ago) is likely gone.
    assert scores["p_alive"][2] < 0.05
    assert scores["risk_tier"].tolist() == ["medium", "high", "high"]


def test_clv_ordering_and_finiteness() -> None:
    scores = score_customers(MODEL, CUSTOMERS)
    assert np.isfinite(scores["clv"]).all()
    assert scores["clv"][0] > scores["clv"][1] > 0
    longer = score_customers(CLVModelParams(MODEL.purchase, MODEL.spend, ScoringSpec(clv_horizon_months=24)), CUSTOMERS)
    assert (longer["clv"] > scores["clv"]).all()


def test_risk_tier_boundaries() -> None:
    tiers = (RiskTier("low", 0.5), RiskTier("medium", 0.8), RiskTier("high", 1.0))
    risks = np.array([0.0, 0.49, 0.5, 0.79, 0.8, 1.0])
    assert assign_risk_tier(risks, tiers).tolist() == ["low", "low", "medium", "medium", "high", "high"]


def test_contract_is_checked_at_the_boundary() -> None:
    with pytest.raises(ContractError, match="missing required column"):
        score_customers(MODEL, CUSTOMERS.drop(columns=["recency"]))


def test_recency_equal_to_t_and_huge_spend_are_finite() -> None:
    customers = pd.DataFrame(
        {
            "customer_id": ["just-bought", "big-spender"],
            "frequency": [4.0, 3.0],
            "recency": [38.0, 20.0],  # last purchase at the very end of observation
            "T": [38.0, 38.0],
            "monetary_value": [25.0, 1e9],
        }
    )
    scores = score_customers(MODEL, customers)
    assert np.isfinite(scores.select_dtypes("number").to_numpy()).all()
    # Buying at T gives the highest P(alive) for that frequency and age: exactly 1 / (1 + a / (b + x - 1)).
    assert scores["p_alive"][0] == pytest.approx(1 / (1 + PURCHASE.a / (PURCHASE.b + 3)))
    # Gamma-Gamma shrinks an outlier toward the population mean, but it stays an outlier.
    assert 1e8 < scores["expected_order_value"][1] < 1e9


def test_non_finite_scores_never_leave_the_function() -> None:
    broken = CLVModelParams(MODEL.purchase, GammaGammaParams(p=6.0, q=0.5, v=15.0), MODEL.spec)
    with pytest.raises(NonFiniteScoresError, match="3 customers got NaN or infinite scores"):
        score_customers(broken, CUSTOMERS)


def _with_posterior(n_draws: int = 60, interval: tuple[float, float] = (0.05, 0.95)) -> CLVModelParams:
    rng = np.random.default_rng(3)
    base = PURCHASE.as_dict() | SPEND.as_dict()
    draws = {k: v * rng.lognormal(0.0, 0.05, n_draws) for k, v in base.items()}
    return CLVModelParams(
        MODEL.purchase,
        MODEL.spend,
        MODEL.spec,
        posterior=PosteriorDraws(
            purchase={k: draws[k] for k in ("r", "alpha", "a", "b")},
            spend={k: draws[k] for k in ("p", "q", "v")},
            interval=interval,
        ),
    )


def _bgnbd_draw(draws: PosteriorDraws, i: int) -> BetaGeoParams:
    params = draws.purchase_draw("bgnbd", i)
    assert isinstance(params, BetaGeoParams)
    return params


def test_posterior_draws_give_means_and_credible_intervals(monkeypatch: pytest.MonkeyPatch) -> None:
    model = _with_posterior()
    customers = pd.concat([CUSTOMERS] * 5, ignore_index=True)
    customers["customer_id"] = [f"c{i}" for i in range(len(customers))]
    monkeypatch.setattr(scoring, "POSTERIOR_CHUNK", 4)  # several chunks, some repeating histories
    scores = score_customers(model, customers)
    assert list(scores.columns) == score_columns(model)
    for name in ("p_alive", "expected_purchases_30d", "expected_purchases_90d", "expected_purchases_365d", "clv"):
        assert (scores[f"{name}_lower"] <= scores[name]).all(), name
        assert (scores[name] <= scores[f"{name}_upper"]).all(), name
    # The posterior mean of a customer's expected purchases is the mean over the draws.
    draws = model.posterior
    assert draws is not None
    by_draw = [bgnbd.expected_purchases(_bgnbd_draw(draws, i), 90 / 7, 2.0, 30.43, 38.86) for i in range(draws.n_draws)]
    assert scores["expected_purchases_90d"][0] == pytest.approx(float(np.mean(by_draw)), rel=1e-12)
    assert scores["expected_purchases_90d_lower"][0] == pytest.approx(float(np.quantile(by_draw, 0.05)), rel=1e-12)
    # A one-time buyer is alive for sure under BG/NBD, whatever the draw.
    assert scores["p_alive_lower"][1] == scores["p_alive_upper"][1] == 1.0
    # Identical histories get identical scores across chunk boundaries.
    np.testing.assert_allclose(scores["clv"][0::3].to_numpy(), scores["clv"][0], rtol=1e-12)


def test_other_purchase_models_score() -> None:
    purchase = ParetoNBDParams(0.5533, 10.578, 0.6062, 11.669)
    model = CLVModelParams(purchase, MODEL.spend, MODEL.spec)
    scores = score_customers(model, CUSTOMERS)
    f, r, t = (CUSTOMERS[c].to_numpy() for c in ("frequency", "recency", "T"))
    np.testing.assert_allclose(scores["p_alive"], pareto_nbd.p_alive(purchase, f, r, t))
    assert scores["p_alive"][1] < 1  # unlike BG/NBD, a one-time buyer may be gone
    assert "p_alive_lower" not in scores


def test_posterior_scores_across_many_history_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    model = _with_posterior(n_draws=12, interval=(0.1, 0.9))
    assert model.posterior is not None
    rng = np.random.default_rng(8)
    n = 400
    frequency = rng.integers(0, 6, n).astype(float)
    T = rng.integers(1, 40, n).astype(float)
    customers = pd.DataFrame(
        {
            "customer_id": np.arange(n),
            "frequency": frequency,
            "recency": np.where(frequency > 0, np.floor(rng.uniform(0, 1, n) * T), 0.0),
            "T": T,
            "monetary_value": np.where(frequency > 0, rng.uniform(5, 50, n).round(), 0.0),
        }
    )
    monkeypatch.setattr(scoring, "POSTERIOR_CHUNK", 7)  # many history chunks, customers spread over them
    scores = score_customers(model, customers)
    # Against scoring every draw as a point model, customer by customer.
    per_draw = [
        score_customers(
            CLVModelParams(model.posterior.purchase_draw("bgnbd", i), model.posterior.spend_draw(i), model.spec),
            customers,
        )
        for i in range(model.posterior.n_draws)
    ]
    for name in ("p_alive", "churn_risk", "expected_purchases_30d", "expected_order_value", "clv"):
        stacked = np.stack([s[name].to_numpy() for s in per_draw])
        np.testing.assert_allclose(scores[name], stacked.mean(axis=0), rtol=1e-12, err_msg=name)
        if name in ("p_alive", "clv"):
            np.testing.assert_allclose(scores[f"{name}_lower"], np.quantile(stacked, 0.1, axis=0), rtol=1e-12)
            np.testing.assert_allclose(scores[f"{name}_upper"], np.quantile(stacked, 0.9, axis=0), rtol=1e-12)


def test_pooled_mean_spend_values_every_order_alike() -> None:
    pooled = CLVModelParams(MODEL.purchase, PooledMeanParams(40.0), MODEL.spec)
    scores = score_customers(pooled, CUSTOMERS)
    assert list(scores.columns) == score_columns(MODEL)
    assert scores["expected_order_value"].tolist() == [40.0, 40.0, 40.0]
    # CLV is the order value times the discounted expected purchases, whatever the spend model
    gamma_gamma_scores = score_customers(MODEL, CUSTOMERS)
    np.testing.assert_allclose(
        scores["clv"] / 40.0, gamma_gamma_scores["clv"] / gamma_gamma_scores["expected_order_value"], rtol=1e-12
    )


def test_without_a_spend_model_there_are_no_money_columns_and_no_monetary_value_is_needed() -> None:
    events = CLVModelParams(MODEL.purchase, None, MODEL.spec)
    scores = score_customers(events, CUSTOMERS.drop(columns=["monetary_value"]))
    assert list(scores.columns) == [
        "customer_id",
        "p_alive",
        "churn_risk",
        "risk_tier",
        "expected_purchases_30d",
        "expected_purchases_90d",
        "expected_purchases_365d",
    ]
    with_spend = score_customers(MODEL, CUSTOMERS)
    pd.testing.assert_frame_equal(scores, with_spend[scores.columns])
    assert scoring.MONEY_COLUMNS == ("expected_order_value", "clv")


def test_posterior_without_spend_draws() -> None:
    """MCMC purchase draws with the pooled mean (no Gamma-Gamma draws) or no spend model."""
    model = _with_posterior(n_draws=20)
    assert model.posterior is not None
    purchase_only = PosteriorDraws(model.posterior.purchase, {}, model.posterior.interval)
    pooled = CLVModelParams(MODEL.purchase, PooledMeanParams(40.0), MODEL.spec, purchase_only)
    scores = score_customers(pooled, CUSTOMERS)
    assert scores["expected_order_value"].tolist() == [40.0, 40.0, 40.0]
    assert (scores["clv_lower"] <= scores["clv"]).all()
    assert (scores["clv"] <= scores["clv_upper"]).all()
    none = score_customers(CLVModelParams(MODEL.purchase, None, MODEL.spec, purchase_only), CUSTOMERS)
    assert "clv" not in none
    assert "clv_lower" not in none
    np.testing.assert_allclose(none["p_alive_lower"], scores["p_alive_lower"], rtol=1e-12)
    # a fixed order value scales the draws: the CLV bounds are 40 x the bounds of CLV per unit of value
    per_unit = score_customers(
        CLVModelParams(MODEL.purchase, PooledMeanParams(1.0), MODEL.spec, purchase_only), CUSTOMERS
    )
    np.testing.assert_allclose(scores["clv_upper"], 40.0 * per_unit["clv_upper"], rtol=1e-12)


def test_natural_input_types_give_the_same_scores() -> None:
    """Int ids and counts, float ids (17850.0 from a CSV with empty cells) give the float input's numbers."""
    floats = CUSTOMERS.assign(customer_id=["17850", "12", "7"])
    ints = pd.DataFrame(
        {
            "customer_id": [17850, 12, 7],
            "frequency": [2, 0, 7],
            "recency": [30.43, 0, 5],
            "T": [38.86, 38.86, 38],
            "monetary_value": [22.35, 0, 40],
        }
    )
    expected = score_customers(MODEL, floats)
    pd.testing.assert_frame_equal(score_customers(MODEL, ints), expected)
    pd.testing.assert_frame_equal(score_customers(MODEL, floats.assign(customer_id=[17850.0, 12.0, 7.0])), expected)
    assert score_customers(MODEL, floats.assign(customer_id=["17850.0", "12", "7.00"]))["customer_id"].tolist() == [
        "17850",
        "12",
        "7",
    ]


def _score_on_threads_equal(customers: pd.DataFrame, monkeypatch: pytest.MonkeyPatch) -> None:
    from models import histories

    model = CLVModelParams(
        BetaGeoParams(0.2426, 4.4136, 0.7929, 2.4259), GammaGammaParams(6.25, 3.74, 15.44), ScoringSpec()
    )
    one_call = score_customers(model, customers)
    with monkeypatch.context() as patch:
        patch.setattr(histories, "PARALLEL_ROWS", 500)
        patch.setattr(histories, "workers", lambda: 2)
        threaded = score_customers(model, customers)
    pd.testing.assert_frame_equal(threaded, one_call, check_exact=True)


def test_scores_in_thread_chunks_equal_one_call_on_cdnow(
    cdnow_sample_summary: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    _score_on_threads_equal(cdnow_sample_summary.reset_index(), monkeypatch)


def test_scores_in_thread_chunks_equal_one_call_on_the_generated_feed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from benchmarks.feed import prepared_feed

    full = prepared_feed(200_000, tmp_path).full
    _score_on_threads_equal(full[["customer_id", "frequency", "recency", "T", "monetary_value"]], monkeypatch)


def _risk_tier_as_strings(scores: pd.DataFrame, tiers: tuple[RiskTier, ...]) -> pd.Series:
    """The risk tier column as it was made before: Python strings in a frame."""
    strings = assign_risk_tier(scores["churn_risk"].to_numpy(), tiers)
    return pd.DataFrame({"risk_tier": strings}, index=scores.index, copy=False)["risk_tier"]


@pytest.mark.parametrize("feed", ["cdnow", "generated"])
def test_risk_tier_text_equals_the_python_strings(
    feed: str, cdnow_sample_summary: pd.DataFrame, tmp_path: Path
) -> None:
    if feed == "cdnow":
        customers = cdnow_sample_summary.reset_index()
    else:
        from benchmarks.feed import prepared_feed

        customers = prepared_feed(200_000, tmp_path).full
    tiers = (RiskTier("low", 0.3), RiskTier("medium", 0.6), RiskTier("high", 1.0))
    for spec in (ScoringSpec(), ScoringSpec(risk_tiers=tiers)):
        scores = score_customers(CLVModelParams(MODEL.purchase, MODEL.spend, spec), customers)
        assert scores["risk_tier"].nunique() == len(spec.risk_tiers)
        expected = _risk_tier_as_strings(scores, spec.risk_tiers)
        pd.testing.assert_series_equal(scores["risk_tier"], expected, check_exact=True)
