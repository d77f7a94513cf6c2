"""The sBG benchmark recovers its simulated law and scores its active subscribers with the registered model's
numbers."""

from __future__ import annotations

import pandas as pd
import pytest

from benchmarks import sbg_bench


def test_the_fit_recovers_the_law_and_the_scores_are_the_models() -> None:
    from models.subscription_model import SubscriptionParams, score_subscribers
    from pipeline.contractual.validation import fit_cohorts

    result = sbg_bench.run(20_000)
    assert result["alpha"] == pytest.approx(sbg_bench.TRUE["alpha"], rel=0.1)
    assert result["beta"] == pytest.approx(sbg_bench.TRUE["beta"], rel=0.1)
    frame = sbg_bench.subscribers(20_000)
    assert len(frame) == 20_000
    assert result["active"] == (~frame["churned"]).sum() == 5124
    assert (frame["renewals"] <= frame["age"]).all()
    fits = fit_cohorts(frame)
    model = SubscriptionParams(fits.pooled.params, dict(fits.params), 1.1 ** (1 / 12) - 1, 3)
    active = frame.loc[~frame["churned"]]
    assert result["clv_total"] == pytest.approx(float(score_subscribers(model, active)["clv"].sum()), rel=1e-12)
    assert result["clv_total"] > 0
    assert result["scored_all"] == 20_000
    assert isinstance(frame["cohort"].iloc[0], str)
    assert pd.Timestamp(frame["cohort"].min()) == pd.Timestamp("2022-01-01")
