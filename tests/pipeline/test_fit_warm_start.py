"""The production refit starts at the calibration optimum (``warm_start``): the same fit as from the cold start."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from models.bgnbd import BetaGeoParams
from pipeline.config import FitConfig
from pipeline.fit import FitAttempt, FittedModels, fit, fit_histories, fit_input
from tests.pipeline.test_fit import _simulated

WARM = 1e-8
"""Relative tolerance between the warm- and cold-start refits: both are our own fit, polished to a gradient of
1e-11 of the mean objective (measured: below 1e-9)."""


def _assert_same_fit(warm: FittedModels, cold: FittedModels) -> None:
    for name, value in cold.purchase.params.as_dict().items():
        assert warm.purchase.params.as_dict()[name] == pytest.approx(value, rel=WARM), name
    for name, value in cold.purchase.standard_errors.items():
        assert warm.purchase.standard_errors[name] == pytest.approx(value, rel=1e-6), name
    assert warm.purchase.stats.log_likelihood == pytest.approx(cold.purchase.stats.log_likelihood, rel=1e-12)
    assert [(a.remedy, a.outcome) for a in warm.attempts] == [(a.remedy, a.outcome) for a in cold.attempts]


def test_warm_refit_equals_the_cold_refit_on_the_generated_feed(tmp_path: Path) -> None:
    from benchmarks.feed import prepared_feed

    prepared = prepared_feed(200_000, tmp_path)
    calibration = fit(prepared.calibration, FitConfig())
    assert calibration.chosen is not None
    full = fit_input(prepared.full)
    cold = fit_histories(full, FitConfig(), reuse=calibration.chosen)
    warm = fit_histories(full, FitConfig(), reuse=calibration.chosen, warm_start=calibration.purchase.params)
    _assert_same_fit(warm, cold)
    assert [(a.remedy, a.outcome) for a in warm.attempts] == [("plain", "ok")]
    assert warm.purchase.params.as_dict()["r"] == pytest.approx(0.835, abs=1e-3)


def test_warm_refit_equals_the_cold_refit_on_cdnow(cdnow_sample_summary: pd.DataFrame) -> None:
    """CDNOW's calibration fit as the start of a refit on the same customers: the same optimum."""
    calibration = fit(cdnow_sample_summary, FitConfig())
    assert calibration.chosen is not None
    cold = fit(cdnow_sample_summary, FitConfig(), reuse=calibration.chosen)
    start = BetaGeoParams(r=0.3, alpha=5.0, a=1.0, b=3.0)
    warm = fit_histories(fit_input(cdnow_sample_summary), FitConfig(), reuse=calibration.chosen, warm_start=start)
    _assert_same_fit(warm, cold)


def test_a_penalized_remedy_is_refitted_from_the_calibration_optimum() -> None:
    calibration, full = _simulated(dropout=0.1)
    fitted = fit(calibration, FitConfig(), holdout_full=full)
    assert fitted.chosen is not None
    assert fitted.chosen.remedy == "penalizer 0.001"
    cold = fit(full, FitConfig(), reuse=fitted.chosen)
    warm = fit_histories(fit_input(full), FitConfig(), reuse=fitted.chosen, warm_start=fitted.purchase.params)
    _assert_same_fit(warm, cold)
    assert [(a.remedy, a.outcome) for a in warm.attempts] == [("penalizer 0.001", "ok")]


def test_a_warm_start_that_fails_is_recorded_and_the_refit_goes_on_as_without_it() -> None:
    """On data where the reused remedy fails, the warm attempt is recorded, then the remedy from its own start,
    then the search: the same choice as without a warm start."""
    calibration, full = _simulated(dropout=0.1)
    searched = fit(calibration, FitConfig(), holdout_full=full, reuse=FitAttempt("plain", 0.0, "ok"))
    warm = fit_histories(
        fit_input(calibration, full),
        FitConfig(),
        reuse=FitAttempt("plain", 0.0, "ok"),
        warm_start=BetaGeoParams(r=2.0, alpha=7.0, a=1.0, b=9.0),
    )
    assert [a.remedy for a in warm.attempts][:4] == ["plain (warm start)", "plain", "plain", "restart"]
    assert warm.attempts[0].outcome == "failed"
    assert [(a.remedy, a.outcome) for a in warm.attempts[1:]] == [(a.remedy, a.outcome) for a in searched.attempts]
    assert warm.chosen == searched.chosen
