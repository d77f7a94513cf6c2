"""Words for analysts: a readable label for every metric the job computes, and the definitions that the
report and the docs print next to the numbers. The MLflow names themselves stay as they are (stable keys)."""

from __future__ import annotations

import re

from models.bundle import ScoringSpec

__all__ = ["DEFINITIONS", "metric_label", "scoring_definitions"]

_LABELS: dict[str, str] = {
    "purchases_mae": "Holdout purchases: mean absolute error per customer",
    "purchases_rmse": "Holdout purchases: root mean squared error per customer",
    "purchases_total_actual": "Holdout purchases: actual total",
    "purchases_total_predicted": "Holdout purchases: predicted total",
    "purchases_total_pct_error": "Holdout purchases: error of the total (%)",
    "purchases_total_abs_pct_error": "Holdout purchases: absolute error of the total (%)",
    "purchases_cumulative_pct_error": "Cumulative repeat purchases at the end of the data: error (%)",
    "purchases_cumulative_calibration_pct_error": "Cumulative repeat purchases at the end of calibration: error (%)",
    "purchases_holdout_log_likelihood": "Holdout log-likelihood of the purchase model",
    "purchases_mae_skill": "Purchase skill: 1 - model MAE / best purchase baseline's MAE",
    "purchases_rmse_skill": "Purchase skill: 1 - model RMSE / best purchase baseline's RMSE",
    "churn_auc": "Churn risk: AUC against 'no purchase in the holdout'",
    "churn_brier": "Churn risk: Brier score",
    "churn_rate_actual": "Share of calibration customers with no holdout purchase",
    "churn_brier_check_raw": "Churn risk Brier score on a held-out half (raw)",
    "churn_brier_check_isotonic": "Churn risk Brier score on a held-out half (isotonic recalibration)",
    "revenue_total_actual": "Holdout revenue: actual total",
    "revenue_total_pct_error": "Holdout revenue: error of the total (%)",
    "revenue_mae_skill": "Revenue skill: 1 - model MAE / best baseline's MAE",
    "revenue_rmse_skill": "Revenue skill: 1 - model RMSE / best baseline's RMSE",
    "historical_clv_retention": "Retention over the holdout assumed by the historical-CLV baseline",
}
_PARTS: dict[str, str] = {
    "mae": "mean absolute error",
    "rmse": "root mean squared error",
    "spearman": "Spearman rank correlation",
    "gini": "normalised Gini",
    "top10_share": "share of actual held by the top 10%",
    "top20_share": "share of actual held by the top 20%",
    "total_predicted": "predicted total",
}
_PREDICTED = re.compile(r"^(baseline_(?P<baseline>.+)_)?(?P<kind>revenue|purchases)_(?P<part>[a-z0-9_]+)$")


def metric_label(name: str) -> str:
    """A readable label for a metric name (the name itself when it has none)."""
    if name in _LABELS:
        return _LABELS[name]
    found = _PREDICTED.match(name)
    if found is not None and found["part"] in _PARTS:
        who = f"baseline {found['baseline']}" if found["baseline"] else "model"
        return f"Holdout {found['kind']} ({who}): {_PARTS[found['part']]}"
    return name


DEFINITIONS: dict[str, str] = {
    "P(alive)": "The probability that the customer has not yet silently dropped out at the end of the data.",
    "Normalised Gini": "Gini of actual holdout revenue with customers ordered by the prediction, divided by the Gini "
    "of the perfect ordering: 1 ranks customers perfectly, 0 at random.",
    "Baselines": "Predictions from past behaviour alone, with no model: historical_clv (average order value x "
    "purchase frequency x expected lifespan), spend_rate and repeat_spend_rate (past spend per unit of time "
    "carried forward), last_period (what the customer spent in the last holdout-length of calibration); for "
    "purchases, purchase_rate, repeat_purchase_rate and last_period in counts.",
    "Holdout": "The period after the calibration end: the calibration model predicts it, and the predictions are "
    "compared with what customers really did.",
}


def scoring_definitions(spec: ScoringSpec, has_spend: bool = True) -> dict[str, str]:
    """The definitions that depend on the model's scoring settings (churn horizon, CLV horizon, discount rate)."""
    tiers = ", ".join(f"{t.name} below {t.upper:g}" for t in spec.risk_tiers[:-1]) + f", {spec.risk_tiers[-1].name}"
    out = {
        "Churn risk": f"P(no purchase in the next {spec.churn_horizon_days} days). Not 1 - P(alive): a customer can be "
        "alive and still not buy within the horizon.",
        "Risk tier": f"Churn risk tiers: {tiers}.",
        "Expected purchases (N days)": "Expected number of purchases (purchase days) in the next N days: "
        + ", ".join(f"{d}" for d in spec.horizons_days)
        + ".",
    }
    if has_spend:
        out["CLV"] = (
            f"Discounted value of the purchases expected in the next {spec.clv_horizon_months} months: expected "
            f"order value x expected purchases in each month, discounted at {spec.annual_discount_rate:.0%} a year "
            "(month = 30.4375 days)."
        )
        out["clv_30d ... clv_365d"] = "Expected order value x expected purchases in the next N days, undiscounted."
        out["Value segment"] = "Top 5%, next 15%, middle 30% and bottom 50% of customers by CLV."
    return out
