"""The production refit starts at the calibration optimum (``warm_start``): the same fit as from the cold start.

A spy on our BG/NBD fit (:func:`models.bgnbd_fit.fit_beta_geo`, what ``BetaGeoMle`` calls) records the start each
fit was given and the likelihood evaluations it took: the warm refit must start at the warm parameters and need
fewer evaluations, so these tests fail if ``warm_start`` is dropped anywhere on the way (pipeline, models.mle, the
BG/NBD hook) or ignored by the optimiser.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from models import bgnbd_fit
from models.bgnbd import BetaGeoParams
from pipeline.config import FitConfig
from pipeline.fit import FitAttempt, FittedModels, fit, fit_histories, fit_input
from tests.pipeline.test_fit import _simulated

WARM = 1e-8
"""Relative tolerance between the warm- and cold-start refits: both are our own fit, polished to a gradient of
1e-11 of the mean objective (measured: below 1e-9)."""


@dataclass(frozen=True)
class OwnFitCall:
    start: dict[str, float] | None
    penalizer: float
    evaluations: int


@pytest.fixture
def own_fits(monkeypatch: pytest.MonkeyPatch) -> list[OwnFitCall]:
    """Every call of models.bgnbd_fit.fit_beta_geo from now on: its start (data time unit), penalizer and the
    likelihood evaluations it took."""
    calls: list[OwnFitCall] = []
    original = bgnbd_fit.fit_beta_geo

    def spy(rows: pd.DataFrame, penalizer: float = 0.0, start: np.ndarray | None = None) -> bgnbd_fit.OwnFit:
        own = original(rows, penalizer, start)
        given = None if start is None else dict(zip(("r", "alpha", "a", "b"), map(float, start), strict=True))
        calls.append(OwnFitCall(given, penalizer, own.evaluations))
        return own

    monkeypatch.setattr(bgnbd_fit, "fit_beta_geo", spy)
    return calls


def _only_call(calls: list[OwnFitCall]) -> OwnFitCall:
    """The one call made since the last one taken (and forget it)."""
    assert len(calls) == 1, calls
    return calls.pop()


def _assert_same_fit(warm: FittedModels, cold: FittedModels) -> None:
    for name, value in cold.purchase.params.as_dict().items():
        assert warm.purchase.params.as_dict()[name] == pytest.approx(value, rel=WARM), name
    for name, value in cold.purchase.standard_errors.items():
        assert warm.purchase.standard_errors[name] == pytest.approx(value, rel=1e-6), name
    assert warm.purchase.stats.log_likelihood == pytest.approx(cold.purchase.stats.log_likelihood, rel=1e-12)
    assert [(a.remedy, a.outcome) for a in warm.attempts] == [(a.remedy, a.outcome) for a in cold.attempts]


def test_warm_refit_equals_the_cold_refit_on_the_generated_feed(tmp_path: Path, own_fits: list[OwnFitCall]) -> None:
    from benchmarks.feed import prepared_feed

    prepared = prepared_feed(200_000, tmp_path)
    calibration = fit(prepared.calibration, FitConfig())
    assert calibration.chosen is not None
    full = fit_input(prepared.full)
    own_fits.clear()
    cold = fit_histories(full, FitConfig(), reuse=calibration.chosen)
    cold_call = _only_call(own_fits)
    warm = fit_histories(full, FitConfig(), reuse=calibration.chosen, warm_start=calibration.purchase.params)
    warm_call = _only_call(own_fits)
    _assert_same_fit(warm, cold)
    assert cold_call.start is None
    assert warm_call.start == calibration.purchase.params.as_dict()
    # Measured: 42 evaluations from lifetimes' start, 35 from the calibration optimum.
    assert warm_call.evaluations < cold_call.evaluations
    assert [(a.remedy, a.outcome) for a in warm.attempts] == [("plain", "ok")]
    assert warm.purchase.params.as_dict()["r"] == pytest.approx(0.835, abs=1e-3)


def test_warm_refit_equals_the_cold_refit_on_cdnow(
    cdnow_sample_summary: pd.DataFrame, own_fits: list[OwnFitCall]
) -> None:
    """A refit of CDNOW started near its optimum, and at it (the calibration fit, on the same customers): the
    same optimum as the cold refit, in fewer evaluations."""
    calibration = fit(cdnow_sample_summary, FitConfig())
    assert calibration.chosen is not None
    own_fits.clear()
    cold = fit(cdnow_sample_summary, FitConfig(), reuse=calibration.chosen)
    cold_call = _only_call(own_fits)
    assert cold_call.start is None
    start = BetaGeoParams(r=0.3, alpha=5.0, a=1.0, b=3.0)
    for warm_start in (start, calibration.purchase.params):
        warm = fit_histories(
            fit_input(cdnow_sample_summary), FitConfig(), reuse=calibration.chosen, warm_start=warm_start
        )
        warm_call = _only_call(own_fits)
        _assert_same_fit(warm, cold)
        assert warm_call.start == warm_start.as_dict()
        # Measured: 48 evaluations from lifetimes' start, 45 from (0.3, 5, 1, 3), 10 from the optimum.
        assert warm_call.evaluations < cold_call.evaluations


def test_a_penalized_remedy_is_refitted_from_the_calibration_optimum(own_fits: list[OwnFitCall]) -> None:
    calibration, full = _simulated(dropout=0.1)
    fitted = fit(calibration, FitConfig(), holdout_full=full)
    assert fitted.chosen is not None
    assert fitted.chosen.remedy == "penalizer 0.001"
    own_fits.clear()
    cold = fit(full, FitConfig(), reuse=fitted.chosen)
    cold_call = _only_call(own_fits)
    warm = fit_histories(fit_input(full), FitConfig(), reuse=fitted.chosen, warm_start=fitted.purchase.params)
    warm_call = _only_call(own_fits)
    _assert_same_fit(warm, cold)
    assert (cold_call.start, cold_call.penalizer) == (None, 0.001)
    assert (warm_call.start, warm_call.penalizer) == (fitted.purchase.params.as_dict(), 0.001)
    # Measured: 39 evaluations from lifetimes' start, 31 from the calibration optimum.
    assert warm_call.evaluations < cold_call.evaluations
    assert [(a.remedy, a.outcome) for a in warm.attempts] == [("penalizer 0.001", "ok")]


def test_a_warm_start_that_fails_is_recorded_and_the_refit_goes_on_as_without_it(
    own_fits: list[OwnFitCall],
) -> None:
    """On data where the reused remedy fails, the warm attempt is recorded, then the remedy from its own start,
    then the search: the same choice as without a warm start."""
    calibration, full = _simulated(dropout=0.1)
    searched = fit(calibration, FitConfig(), holdout_full=full, reuse=FitAttempt("plain", 0.0, "ok"))
    own_fits.clear()
    warm = fit_histories(
        fit_input(calibration, full),
        FitConfig(),
        reuse=FitAttempt("plain", 0.0, "ok"),
        warm_start=BetaGeoParams(r=2.0, alpha=7.0, a=1.0, b=9.0),
    )
    # The warm attempt started where it was told, the remedy's own attempt at lifetimes' start.
    assert [c.start for c in own_fits[:2]] == [{"r": 2.0, "alpha": 7.0, "a": 1.0, "b": 9.0}, None]
    assert [a.remedy for a in warm.attempts][:4] == ["plain (warm start)", "plain", "plain", "restart"]
    assert warm.attempts[0].outcome == "failed"
    assert [(a.remedy, a.outcome) for a in warm.attempts[1:]] == [(a.remedy, a.outcome) for a in searched.attempts]
    assert warm.chosen == searched.chosen
