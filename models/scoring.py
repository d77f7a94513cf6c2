"""Per-customer scores from a fitted CLV model: the one function that batch, REST and Spark share."""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from pandas.api.extensions import ExtensionArray

from models import purchase, spend
from models.bundle import CLVModelParams, PosteriorDraws, RiskTier, ScoringSpec
from models.clv import days_to_units, discounted_clv
from models.contract import CUSTOMER_ID, check_customer_summary
from models.gamma_gamma import GammaGammaParams
from models.histories import history_codes, in_chunks
from models.purchase import PurchaseParams
from models.spend import SpendParams

__all__ = [
    "MONEY_COLUMNS",
    "POSTERIOR_CHUNK",
    "NonFiniteScoresError",
    "assign_risk_tier",
    "horizon_column",
    "interval_columns",
    "score_columns",
    "score_customers",
]

FloatArray = NDArray[np.float64]

POSTERIOR_CHUNK = 20_000
"""Histories (and customers) summarised at a time from the posterior draws: memory is draws x chunk per quantity."""


def horizon_column(days: int) -> str:
    return f"expected_purchases_{days}d"


MONEY_COLUMNS = ("expected_order_value", "clv")
"""Scored only when the model has a spend model."""


def interval_columns(model: CLVModelParams) -> list[str]:
    """The scores with ``<name>_lower`` and ``<name>_upper`` columns (none without posterior draws)."""
    if model.posterior is None:
        return []
    return ["p_alive", *[horizon_column(d) for d in model.spec.horizons_days], *(["clv"] if model.has_spend else [])]


def score_columns(model: CLVModelParams) -> list[str]:
    """The output columns of :func:`score_customers`, in order (no money columns without a spend model)."""
    columns = [
        CUSTOMER_ID,
        "p_alive",
        "churn_risk",
        "risk_tier",
        *[horizon_column(d) for d in model.spec.horizons_days],
        *(MONEY_COLUMNS if model.has_spend else ()),
    ]
    for name in interval_columns(model):
        columns += [f"{name}_lower", f"{name}_upper"]
    return columns


def _tier_numbers(churn_risk: np.ndarray, tiers: tuple[RiskTier, ...]) -> NDArray[np.intp]:
    """Tier i holds churn risks in [upper_{i-1}, upper_i); the last tier takes everything above."""
    bounds = np.asarray([t.upper for t in tiers[:-1]], dtype=np.float64)
    return np.searchsorted(bounds, churn_risk, side="right")


def assign_risk_tier(churn_risk: np.ndarray, tiers: tuple[RiskTier, ...]) -> np.ndarray:
    """Each churn risk's tier name (see :func:`_tier_numbers`), as an array of Python strings."""
    names = np.asarray([t.name for t in tiers], dtype=object)
    return np.asarray(names[_tier_numbers(churn_risk, tiers)])


def _risk_tier_text(churn_risk: np.ndarray, tiers: tuple[RiskTier, ...]) -> ExtensionArray:
    """The tier names as pandas text taken from the few names: the same column as :func:`assign_risk_tier`'s
    strings become in a frame, without a Python string per customer (at 10M customers 0.6 s instead of 1.45 s)."""
    return pd.array([t.name for t in tiers], dtype="str").take(_tier_numbers(churn_risk, tiers))


def _point_scores(
    params: PurchaseParams, spec: ScoringSpec, f: FloatArray, r: FloatArray, t: FloatArray, with_clv: bool = True
) -> dict[str, FloatArray]:
    """Scores of the distinct histories ``(f, r, t)``; ``clv`` (if ``with_clv``) is per unit of order value."""
    out = {
        "p_alive": purchase.p_alive(params, f, r, t),
        "churn_risk": purchase.p_no_purchase(params, days_to_units(spec.churn_horizon_days, spec.time_unit), f, r, t),
    }
    for days in spec.horizons_days:
        out[horizon_column(days)] = purchase.expected_purchases(params, days_to_units(days, spec.time_unit), f, r, t)
    if not with_clv:
        return out
    # CLV is linear in the order value: discount the expected purchases per history, then scale.
    out["clv"] = discounted_clv(
        lambda horizon: purchase.expected_purchases(params, horizon, f, r, t),
        np.ones_like(f),
        spec.clv_horizon_months,
        spec.annual_discount_rate,
        spec.time_unit,
    )
    return out


def _posterior_scores(
    model: CLVModelParams, posterior: PosteriorDraws, f: FloatArray, r: FloatArray, t: FloatArray, m: FloatArray
) -> dict[str, FloatArray]:
    """Posterior means and credible intervals, summarised chunk by chunk (never draws x all customers).

    History-level quantities are evaluated once per distinct history and draw, POSTERIOR_CHUNK
    histories at a time; CLV (which also depends on the customer's spend) is then summarised for the
    customers of those histories, POSTERIOR_CHUNK customers at a time.
    """
    names = interval_columns(model)
    lower_q, upper_q = posterior.interval
    history_keys = [k for k in (*names, "churn_risk") if k != "clv"]
    out: dict[str, FloatArray] = {}
    for key in (*names, "churn_risk", *(["expected_order_value"] if model.has_spend else [])):
        out[key] = np.empty(len(f))
        if key in names:
            out[f"{key}_lower"], out[f"{key}_upper"] = np.empty(len(f)), np.empty(len(f))
    rows, codes = history_codes(f, r, t)
    by_history = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[by_history], np.arange(0, len(rows) + POSTERIOR_CHUNK, POSTERIOR_CHUNK))
    spends = _spend_draws(model, posterior)
    purchases = [posterior.purchase_draw(model.purchase_model, i) for i in range(posterior.n_draws)]
    clv_keys = ["clv"] if model.has_spend else []
    for chunk, start in enumerate(range(0, len(rows), POSTERIOR_CHUNK)):
        hist = rows[start : start + POSTERIOR_CHUNK]
        draws = {key: np.empty((posterior.n_draws, len(hist))) for key in (*history_keys, *clv_keys)}
        for i in range(posterior.n_draws):
            scores = _point_scores(purchases[i], model.spec, f[hist], r[hist], t[hist], with_clv=model.has_spend)
            for key in draws:
                draws[key][i] = scores[key]
        summary = {key: _summarise(draws[key], lower_q, upper_q) for key in history_keys}
        members = by_history[bounds[chunk] : bounds[chunk + 1]]
        for key, (mean, lower, upper) in summary.items():
            local = codes[members] - start
            out[key][members] = mean[local]
            if key in names:
                out[f"{key}_lower"][members], out[f"{key}_upper"][members] = lower[local], upper[local]
        if not model.has_spend:
            continue
        for part in range(0, len(members), POSTERIOR_CHUNK):
            who = members[part : part + POSTERIOR_CHUNK]
            order_value = np.stack([spend.expected_order_value(s, f[who], m[who]) for s in spends])
            clv = order_value * draws["clv"][:, codes[who] - start]
            out["expected_order_value"][who] = order_value.mean(axis=0)
            out["clv"][who], out["clv_lower"][who], out["clv_upper"][who] = _summarise(clv, lower_q, upper_q)
    return out


def _spend_draws(model: CLVModelParams, posterior: PosteriorDraws) -> list[spend.SpendParams]:
    """One spend model per posterior draw: Gamma-Gamma's draws, or the point estimate (the pooled mean
    has no draws); empty without a spend model."""
    if model.spend is None:
        return []
    if isinstance(model.spend, GammaGammaParams) and posterior.spend:
        return [posterior.spend_draw(i) for i in range(posterior.n_draws)]
    return [model.spend] * posterior.n_draws


def _summarise(draws: FloatArray, lower_q: float, upper_q: float) -> tuple[FloatArray, FloatArray, FloatArray]:
    lower, upper = np.quantile(draws, [lower_q, upper_q], axis=0)
    return draws.mean(axis=0), lower, upper


def _money(
    params: SpendParams | None, f: FloatArray, m: FloatArray, clv_per_order: FloatArray
) -> dict[str, FloatArray]:
    """The expected order value, and the CLV from the discounted expected purchases (``clv_per_order``)."""
    order_value = spend.expected_order_value(params, f, m)
    return {"expected_order_value": order_value, "clv": order_value * clv_per_order}


def score_customers(model: CLVModelParams, customers: pd.DataFrame) -> pd.DataFrame:
    """Score a per-customer summary (customer_id, frequency, recency, T, and monetary_value when the
    model has a spend model); ids and numbers may come in any natural type (see :mod:`models.contract`).

    - ``p_alive``: P(alive at T).
    - ``churn_risk``: P(no purchase in the next ``churn_horizon_days``), not 1 - p_alive: BG/NBD gives
      P(alive) = 1 to every customer without a repeat purchase.
    - ``expected_purchases_<N>d``: expected purchases in the next N days.
    - ``expected_order_value``: the spend model's expected spend per purchase (Gamma-Gamma's conditional
      expectation, or the pooled mean); absent without a spend model.
    - ``clv``: discounted value over ``clv_horizon_months`` at ``annual_discount_rate``; absent without a
      spend model.

    With posterior draws, each is the posterior mean, and P(alive), the expected purchases and CLV
    get ``_lower`` / ``_upper`` credible bounds.
    """
    customers = check_customer_summary(customers, spend=model.has_spend)
    spec = model.spec
    f_all = customers["frequency"].to_numpy()
    r_all = customers["recency"].to_numpy()
    t_all = customers["T"].to_numpy()
    m = customers["monetary_value"].to_numpy() if model.has_spend else np.zeros_like(f_all)
    if model.posterior is None:
        rows, codes = history_codes(f_all, r_all, t_all)
        point = in_chunks(  # on every core: chunks of distinct histories in a thread pool
            lambda f, r, t: _point_scores(model.purchase, spec, f, r, t, with_clv=model.has_spend),
            f_all[rows],
            r_all[rows],
            t_all[rows],
        )
        values = {key: value[codes] for key, value in point.items()}
        if model.has_spend:  # elementwise, chunk by chunk on every core: the same numbers
            values |= in_chunks(lambda *c: _money(model.spend, *c), f_all, m, values["clv"])
    else:
        values = _posterior_scores(model, model.posterior, f_all, r_all, t_all, m)
    out: dict[str, object] = {CUSTOMER_ID: customers[CUSTOMER_ID]}
    for column in score_columns(model)[1:]:
        out[column] = (
            _risk_tier_text(values["churn_risk"], spec.risk_tiers) if column == "risk_tier" else values[column]
        )
    # the columns as they are (no copy into one 2-D block), checked one at a time (no 2-D copy either)
    scores = pd.DataFrame(out, index=customers.index, copy=False)
    finite = np.ones(len(scores), dtype=bool)
    for column in scores.select_dtypes("number").columns:
        finite &= np.isfinite(scores[column].to_numpy())
    if not finite.all():
        bad = int((~finite).sum())
        raise NonFiniteScoresError(f"{bad} customers got NaN or infinite scores; the fitted parameters are degenerate")
    return scores


class NonFiniteScoresError(ValueError):
    """Raised instead of letting NaN or infinity reach a scores table."""
