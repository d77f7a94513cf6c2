"""Our BG/NBD maximum-likelihood fit (models.bgnbd_fit) against the published CDNOW values and lifetimes' fit.

lifetimes stops BFGS at a gradient of 1e-7 of its mean objective, which leaves its parameters about 5e-7
(relative) from the optimum on CDNOW; ours is polished to a gradient of 1e-11. So the two are asserted equal
to 1e-6 relative (measured: at most 4.4e-7 on CDNOW, 2.2e-7 on the generated feed), the standard errors too.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from models import registry
from models.bgnbd import BetaGeoParams, log_likelihood
from models.bgnbd_fit import SHAPE_RANGE, BetaGeoMle, BetaGeoObjective, fit_beta_geo
from models.fitted import FitError
from models.histories import unique_histories
from models.lifetimes_fit import LifetimesFitter
from tests.pipeline.test_fit import _simulated

NAMES = ("r", "alpha", "a", "b")
SAME = 1e-6
"""Relative tolerance between our fit and lifetimes' (see the module docstring)."""


def _rows(summary: pd.DataFrame) -> pd.DataFrame:
    return unique_histories(summary["frequency"], summary["recency"], summary["T"])


def _lifetimes(rows: pd.DataFrame, penalizer: float = 0.0, start: np.ndarray | None = None) -> dict[str, float]:
    return LifetimesFitter("BetaGeoFitter")(registry.get("bgnbd"), rows, penalizer, start).values  # noqa: PD011


def _assert_same(ours: dict[str, float], theirs: dict[str, float], rel: float = SAME) -> None:
    for name in NAMES:
        assert ours[name] == pytest.approx(theirs[name], rel=rel), name


@pytest.fixture(scope="module")
def feed(tmp_path_factory: pytest.TempPathFactory) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Calibration and full-history unique histories of the generated benchmark feed (200k rows)."""
    from benchmarks.feed import prepared_feed

    prepared = prepared_feed(200_000, tmp_path_factory.mktemp("feed"))
    return _rows(prepared.calibration), _rows(prepared.full)


def test_reproduces_fader_hardie_lee_2005(cdnow_sample_summary: pd.DataFrame) -> None:
    rows = _rows(cdnow_sample_summary)
    fitted = fit_beta_geo(rows)
    assert fitted.accepted, fitted.reason
    published = {"r": 0.2425945, "alpha": 4.4136019, "a": 0.7929199, "b": 2.4258881}
    for name, value in published.items():
        assert fitted.params[name] == pytest.approx(value, rel=1e-5), name
    params = BetaGeoParams(**fitted.params)
    ll = log_likelihood(params, rows["frequency"], rows["recency"], rows["T"], rows["weight"])
    assert ll == pytest.approx(-9582.43, abs=0.005)
    for name, value in {"r": 0.0126, "alpha": 0.378, "a": 0.186, "b": 0.705}.items():
        assert fitted.standard_errors[name] == pytest.approx(value, rel=0.01), name


@pytest.mark.parametrize("penalizer", [0.0, 0.01])
def test_equals_lifetimes_on_cdnow(cdnow_sample_summary: pd.DataFrame, penalizer: float) -> None:
    """The same parameters and standard errors as lifetimes' BetaGeoFitter, per customer and penalized."""
    from lifetimes import BetaGeoFitter

    s = cdnow_sample_summary
    fitted = fit_beta_geo(_rows(s), penalizer)
    assert fitted.accepted, fitted.reason
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        per_customer = BetaGeoFitter(penalizer_coef=penalizer).fit(s["frequency"], s["recency"], s["T"])
    _assert_same(fitted.params, {k: float(per_customer.params_[k]) for k in NAMES})
    _assert_same(fitted.standard_errors, {k: float(per_customer.standard_errors_[k]) for k in NAMES})


@pytest.mark.parametrize("period", ["calibration", "full"])
@pytest.mark.parametrize("penalizer", [0.0, 0.01])
def test_equals_lifetimes_on_the_generated_feed(
    feed: tuple[pd.DataFrame, pd.DataFrame], period: str, penalizer: float
) -> None:
    rows = feed[0] if period == "calibration" else feed[1]
    fitted = fit_beta_geo(rows, penalizer)
    assert fitted.accepted, fitted.reason
    _assert_same(fitted.params, _lifetimes(rows, penalizer))
    if penalizer == 0.0:  # the feed's population (per day): r 0.8, alpha 20 days = 2.86 weeks, a 1.2, b 12
        assert fitted.params["r"] == pytest.approx(0.83, abs=0.01)
        assert fitted.params["b"] == pytest.approx(11.9 if period == "calibration" else 11.2, abs=0.1)


def test_gradient_and_value_are_the_model_log_likelihood(cdnow_sample_summary: pd.DataFrame) -> None:
    """The objective is lifetimes' mean negative log-likelihood: its value is the model's log-likelihood, and the
    analytic gradient equals central differences."""
    rows = _rows(cdnow_sample_summary)
    scale = 1.0 / float(rows["T"].max())
    objective = BetaGeoObjective(rows, 0.0, scale)
    params = np.array([0.3, 4.0 * scale, 0.9, 2.0])
    ll, gradient = objective.log_likelihood(params)
    scaled = BetaGeoParams(0.3, 4.0 * scale, 0.9, 2.0)
    t_x, t_obs = rows["recency"] * scale, rows["T"] * scale
    expected = log_likelihood(scaled, rows["frequency"], t_x, t_obs, rows["weight"])
    assert ll == pytest.approx(expected, rel=1e-12)
    for i in range(4):
        step = np.zeros(4)
        step[i] = 1e-6 * params[i]
        difference = (objective.log_likelihood(params + step)[0] - objective.log_likelihood(params - step)[0]) / (
            2 * step[i]
        )
        assert gradient[i] == pytest.approx(difference, rel=1e-6), NAMES[i]


def _outcome(fitter: object, rows: pd.DataFrame, penalizer: float) -> dict[str, float] | str:
    try:
        fitted = fitter(registry.get("bgnbd"), rows, penalizer, None)  # type: ignore[operator]
    except FitError as exc:
        return str(exc)
    return dict(fitted.values)


@pytest.mark.parametrize("penalizer", [0.0, 0.1])
def test_a_run_off_goes_to_lifetimes_as_before(penalizer: float) -> None:
    """Nobody ever drops out: a runs off to 0. Ours says why it is not accepted, and the hook gives lifetimes'
    answer unchanged (what the fit stage's remedies saw before): lifetimes' failure without a penalizer, a
    degenerate a with a penalizer of 0.1 (measured 4.6e-20)."""
    calibration, _ = _simulated(dropout=None, n=3000, seed=3)
    rows = _rows(calibration)
    own = fit_beta_geo(rows, penalizer)
    assert not own.accepted
    assert own.params["a"] < SHAPE_RANGE[0]
    assert own.reason.startswith("a parameter left")
    hooked = _outcome(BetaGeoMle(), rows, penalizer)
    assert hooked == _outcome(LifetimesFitter("BetaGeoFitter"), rows, penalizer)
    if penalizer:
        assert isinstance(hooked, dict)
        assert hooked["a"] < 1e-6  # degenerate: the fit stage's min_shape catches it
    else:
        assert isinstance(hooked, str)
        assert "did not converge" in hooked


@pytest.mark.parametrize(
    ("frequency", "recency", "T", "error"),
    [
        ([1.0, 2.0], [5.0, 3.0], [4.0, 6.0], "recency vector are larger than T"),
        ([0.0, 0.0], [0.0, 0.0], [0.0, 0.0], "did not converge"),  # every T is 0: no time scale
        ([1.5, 2.0], [1.0, 3.0], [4.0, 6.0], None),  # lifetimes truncates a fractional frequency
    ],
)
def test_histories_ours_does_not_take_go_to_lifetimes_as_before(
    frequency: list[float], recency: list[float], T: list[float], error: str | None
) -> None:
    rows = pd.DataFrame({"frequency": frequency, "recency": recency, "T": T, "weight": [3, 2]})
    if error is None:
        assert _outcome(BetaGeoMle(), rows, 0.0) == _outcome(LifetimesFitter("BetaGeoFitter"), rows, 0.0)
        return
    with pytest.raises((ValueError, FitError), match=error):
        BetaGeoMle()(registry.get("bgnbd"), rows, 0.0, None)


def test_a_given_start_reaches_the_same_optimum(feed: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    """Started at the calibration fit (the production refit's warm start) the full-history fit is the cold-start
    one, to 1e-8 relative (both polished to a gradient of 1e-11), in fewer passes."""
    calibration, full = feed
    warm_start = np.asarray(list(fit_beta_geo(calibration).params.values()))
    cold = fit_beta_geo(full)
    warm = fit_beta_geo(full, start=warm_start)
    assert cold.accepted
    assert warm.accepted
    _assert_same(warm.params, cold.params, rel=1e-8)
    _assert_same(warm.standard_errors, cold.standard_errors, rel=1e-6)
    assert warm.evaluations < cold.evaluations


CDNOW_STANDARD_ERRORS = {
    0.0: {"r": 0.012557378067540537, "alpha": 0.3782240598442487, "a": 0.18573381892665206, "b": 0.7054142499125511},
    0.01: {
        "r": 0.012564643516353067,
        "alpha": 0.38057577274028503,
        "a": 0.035480995919918455,
        "b": 0.08048176637430098,
    },
}
"""fit_beta_geo's standard errors on CDNOW, measured before its Hessian and delta method became the shared
models.positive_mle.central_hessian and delta_method_errors (at 19a971c); after, they are bitwise the same."""


@pytest.mark.parametrize("penalizer", [0.0, 0.01])
def test_standard_errors_are_unchanged_by_the_shared_helpers(
    cdnow_sample_summary: pd.DataFrame, penalizer: float
) -> None:
    fitted = fit_beta_geo(_rows(cdnow_sample_summary), penalizer)
    assert fitted.accepted, fitted.reason
    for name, value in CDNOW_STANDARD_ERRORS[penalizer].items():
        assert fitted.standard_errors[name] == pytest.approx(value, rel=1e-12), name


@pytest.mark.parametrize("period", ["calibration", "full"])
def test_the_objective_in_parts_on_threads_equals_one_part(
    feed: tuple[pd.DataFrame, pd.DataFrame], period: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The repeat buyers' terms are computed part by part on every core; the sums are taken over the whole
    arrays, so the value, the gradient and the fit are bit-equal to one part, whatever the number of parts."""
    from models import histories

    rows = feed[0] if period == "calibration" else feed[1]
    points = [np.array(p) for p in ([0.8, 0.02, 1.2, 11.0], [0.3, 0.5, 0.7, 2.0], [2.0, 0.001, 0.1, 50.0])]
    monkeypatch.setattr(histories, "workers", lambda: 1)
    objective = BetaGeoObjective(rows, 0.0, 1.0 / float(rows["T"].max()))
    one = [objective.log_likelihood(p) for p in points]
    fit_one = fit_beta_geo(rows)
    monkeypatch.setattr(histories, "workers", lambda: 3)
    monkeypatch.setattr(histories, "PARALLEL_ROWS", 1_000)
    assert len(objective.w) > 12 * 1_000  # more than 12 parts, on 3 threads
    for point, (value, gradient) in zip(points, one, strict=True):
        parts_value, parts_gradient = objective.log_likelihood(point)
        assert parts_value == value
        np.testing.assert_array_equal(parts_gradient, gradient)
    fit_parts = fit_beta_geo(rows)
    assert fit_parts.params == fit_one.params
    assert fit_parts.standard_errors == fit_one.standard_errors
    assert fit_parts.evaluations == fit_one.evaluations
