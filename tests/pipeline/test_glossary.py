from __future__ import annotations

from models.bundle import RiskTier, ScoringSpec
from pipeline.glossary import metric_label, scoring_definitions
from pipeline.metrics import METRIC_NAMES


def test_every_metric_has_a_readable_label() -> None:
    for name in METRIC_NAMES:
        assert metric_label(name) != name, name
    assert metric_label("churn_auc") == "Churn risk: AUC against 'no purchase in the holdout'"
    assert metric_label("baseline_spend_rate_revenue_gini") == "Holdout revenue (baseline spend_rate): normalised Gini"
    assert metric_label("purchases_spearman") == "Holdout purchases (model): Spearman rank correlation"
    assert metric_label("not_a_metric") == "not_a_metric"


def test_scoring_definitions_name_the_settings() -> None:
    spec = ScoringSpec(
        churn_horizon_days=60,
        clv_horizon_months=24,
        annual_discount_rate=0.08,
        risk_tiers=(RiskTier("low", 0.4), RiskTier("high", 1.0)),
    )
    text = scoring_definitions(spec)
    assert text["Churn risk"].startswith("P(no purchase in the next 60 days)")
    assert "next 24 months" in text["CLV"]
    assert "8% a year" in text["CLV"]
    assert text["Risk tier"] == "Churn risk tiers: low below 0.4, high."
    assert "CLV" not in scoring_definitions(spec, has_spend=False)
