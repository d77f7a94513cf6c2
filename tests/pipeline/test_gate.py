from __future__ import annotations

import math

import pytest

from pipeline.config import Criterion, ValidateConfig
from pipeline.errors import ConfigError
from pipeline.gate import check_criteria_known, evaluate_gate

METRICS = {
    "revenue_mae": 30.0,
    "baseline_spend_rate_revenue_mae": 70.0,
    "baseline_repeat_spend_rate_revenue_mae": 40.0,
    "baseline_historical_clv_revenue_mae": 60.0,
    "baseline_last_period_revenue_mae": 50.0,
    "churn_auc": 0.75,
    "purchases_total_abs_pct_error": 14.0,
}


def _config(*criteria: Criterion) -> ValidateConfig:
    return ValidateConfig(criteria=criteria)


def test_builtin_baseline_check_uses_the_best_baseline() -> None:
    result = evaluate_gate(METRICS, _config())
    check, champion = result.checks
    assert champion.name == "does_not_lose_to_champion"
    assert champion.passed  # no champion yet
    assert (check.name, check.value, check.threshold, check.passed) == (
        "beats_historical_baseline",
        30,
        40,
        True,
    )
    worse = evaluate_gate(METRICS | {"revenue_mae": 41.0}, _config())
    assert not worse.passed
    assert [c.name for c in worse.failed] == ["beats_historical_baseline"]


@pytest.mark.parametrize(
    ("criterion", "passed"),
    [
        (Criterion(metric="churn_auc", threshold=0.7, direction="higher"), True),
        (Criterion(metric="churn_auc", threshold=0.75, direction="higher"), True),
        (Criterion(metric="churn_auc", threshold=0.8, direction="higher"), False),
        (Criterion(metric="purchases_total_abs_pct_error", threshold=15, direction="lower"), True),
        (Criterion(metric="purchases_total_abs_pct_error", threshold=10, direction="lower"), False),
    ],
)
def test_criteria_directions(criterion: Criterion, passed: bool) -> None:
    result = evaluate_gate(METRICS, _config(criterion))
    assert result.checks[2].passed is passed
    assert result.passed is passed


def test_nan_metric_fails() -> None:
    result = evaluate_gate(
        METRICS | {"churn_auc": math.nan},
        _config(Criterion(metric="churn_auc", threshold=0, direction="higher")),
    )
    assert not result.passed


def test_unknown_metric_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"validate\.criteria\.0\.metric: unknown metric 'auc'"):
        check_criteria_known(_config(Criterion(metric="auc", threshold=0.7, direction="higher")))


def test_champion_check() -> None:
    config = _config()
    assert evaluate_gate(METRICS, config, champion_value=30.0).passed  # equal is not a loss
    assert evaluate_gate(METRICS, config, champion_value=29.8).passed  # within the 1% tolerance
    worse = evaluate_gate(METRICS, config, champion_value=29.0)
    assert [c.name for c in worse.failed] == ["does_not_lose_to_champion"]
    assert worse.checks[1].threshold == pytest.approx(29.0 * 1.01)


def test_mcmc_diagnostics_gate_the_run() -> None:
    from models.pymc_fit import Diagnostics
    from pipeline.config import DiagnosticsConfig
    from pipeline.gate import diagnostic_checks

    limits = DiagnosticsConfig(max_rhat=1.01, min_ess=400, max_divergences=0)
    assert diagnostic_checks(None, limits) == ()
    good = diagnostic_checks(Diagnostics(1.004, 812.0, 650.0, 0), limits)
    assert [c.passed for c in good] == [True, True, True, True]
    bad = diagnostic_checks(Diagnostics(1.03, 812.0, 150.0, 2), limits, prefix="production_")
    assert {c.name: c.passed for c in bad} == {
        "production_mcmc_max_rhat_lower_than_1.01": False,
        "production_mcmc_min_ess_bulk_higher_than_400": True,
        "production_mcmc_min_ess_tail_higher_than_400": False,
        "production_mcmc_divergences_lower_than_0": False,
    }


PURCHASE_METRICS = {
    "purchases_mae": 0.8,
    "baseline_historical_purchases_mae": 0.9,
    "baseline_purchase_rate_purchases_mae": 1.4,
    "baseline_repeat_purchase_rate_purchases_mae": 1.1,
    "baseline_last_period_purchases_mae": 1.0,
    "purchases_mae_skill": 1 - 0.8 / 0.9,
    "churn_auc": 0.75,
    "purchases_total_abs_pct_error": 14.0,
}


def test_without_spend_the_gate_compares_purchases() -> None:
    config = ValidateConfig()
    result = evaluate_gate(PURCHASE_METRICS, config, has_spend=False)
    beats = result.checks[0]
    assert (beats.metric, beats.value, beats.threshold, beats.passed) == ("purchases_mae", 0.8, 0.9, True)
    assert [c.name for c in result.checks[2:]] == [
        "churn_auc_higher_than_0.7",
        "purchases_total_abs_pct_error_lower_than_20",
        "purchases_mae_skill_higher_than_0.05",
    ]
    assert result.passed  # skill 0.111 >= 0.05
    assert not evaluate_gate(PURCHASE_METRICS | {"purchases_mae": 0.95}, config, has_spend=False).passed


def test_money_criteria_are_refused_without_spend() -> None:
    check_criteria_known(ValidateConfig(), has_spend=False)  # the defaults adapt
    with pytest.raises(ConfigError, match=r"validate\.criteria\.0\.metric: 'revenue_mae_skill' needs amounts"):
        check_criteria_known(
            _config(Criterion(metric="revenue_mae_skill", threshold=0.05, direction="higher")), has_spend=False
        )
    with pytest.raises(ConfigError, match=r"validate\.baseline_metric: 'revenue_mae' needs amounts"):
        check_criteria_known(ValidateConfig(baseline_metric="revenue_mae"), has_spend=False)
