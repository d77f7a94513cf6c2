"""The names of the spend model's metrics and tags: one rule for the non-contractual and the discrete job."""

from __future__ import annotations

import math

from models.fitted import FitStatistics, SpendFit
from models.gamma_gamma import GammaGammaParams
from models.spend import PooledMeanParams
from pipeline.recorder import names


def test_spend_metrics_are_named_by_the_spend_model() -> None:
    fit = SpendFit(
        GammaGammaParams(p=1.5, q=4.0, v=50.0), {"p": 0.1, "q": 0.2, "v": 3.0}, FitStatistics(-1000.0, 400, 3)
    )
    assert names.spend_fit_metrics("production_", fit) == {
        "production_gamma_gamma_p": 1.5,
        "production_gamma_gamma_p_se": 0.1,
        "production_gamma_gamma_q": 4.0,
        "production_gamma_gamma_q_se": 0.2,
        "production_gamma_gamma_v": 50.0,
        "production_gamma_gamma_v_se": 3.0,
        "production_gamma_gamma_log_likelihood": -1000.0,
        "production_gamma_gamma_aic": 2006.0,
        "production_gamma_gamma_bic": 3 * math.log(400) + 2000.0,
        "production_gamma_gamma_customers": 400,
    }
    pooled = SpendFit(PooledMeanParams(20.0), {"mean": 0.5}, FitStatistics(-50.0, 10, 2))
    assert names.spend_fit_metrics("", pooled) == {
        "pooled_mean_mean": 20.0,
        "pooled_mean_mean_se": 0.5,
        "pooled_mean_log_likelihood": -50.0,
        "pooled_mean_aic": 104.0,
        "pooled_mean_bic": 2 * math.log(10) + 100.0,
        "pooled_mean_customers": 10,
    }


def test_spend_metrics_of_a_fallback_fitted_to_no_one() -> None:
    """No repeat customer with a positive spend: the pooled mean 0, with NaN statistics (this raised in BIC)."""
    nothing = SpendFit(PooledMeanParams(0.0), {"mean": 0.0}, FitStatistics(math.nan, 0, 2))
    metrics = names.spend_fit_metrics("", nothing)
    assert {k: v for k, v in metrics.items() if not math.isnan(v)} == {
        "pooled_mean_mean": 0.0,
        "pooled_mean_mean_se": 0.0,
        "pooled_mean_customers": 0,
    }
    assert sorted(k for k, v in metrics.items() if math.isnan(v)) == [
        "pooled_mean_aic",
        "pooled_mean_bic",
        "pooled_mean_log_likelihood",
    ]


def test_spend_tags_name_the_model_and_the_fallback() -> None:
    assert names.spend_tags("production_", "gamma_gamma", "") == {"production_spend_model": "gamma_gamma"}
    assert names.spend_tags("", "pooled_mean", "no spend heterogeneity across customers") == {
        "spend_model": "pooled_mean",
        "spend.fallback": "no spend heterogeneity across customers",
    }


def test_the_timestamp_format_tag_says_whether_it_was_given_or_detected() -> None:
    """One tag for the three jobs: the format text timestamps were read with, and where it came from."""
    assert names.timestamp_format_tags(None, "%d/%m/%Y") == {"data.timestamp_format": "%d/%m/%Y (detected)"}
    assert names.timestamp_format_tags("%d/%m/%Y", "%d/%m/%Y") == {"data.timestamp_format": "%d/%m/%Y (given)"}
    assert names.timestamp_format_tags(None, None) == {}
