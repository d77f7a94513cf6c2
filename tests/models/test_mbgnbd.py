from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from models import mbgnbd
from models.mbgnbd import MBGNBDParams

with warnings.catch_warnings():
    from lifetimes import ModifiedBetaGeoFitter

# Batislam et al. (2007) as reproduced by BTYDplus, CDNOW 1/10 sample, weeks
PAPER = MBGNBDParams(r=0.525, alpha=6.183, a=0.891, b=1.614)


@pytest.fixture(scope="module")
def lifetimes_model() -> ModifiedBetaGeoFitter:
    model = ModifiedBetaGeoFitter()
    model.params_ = pd.Series(PAPER.as_dict())
    return model


def test_scores_match_lifetimes(cdnow_sample_summary: pd.DataFrame, lifetimes_model: ModifiedBetaGeoFitter) -> None:
    f, r, t = (cdnow_sample_summary[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T"))
    np.testing.assert_allclose(
        mbgnbd.p_alive(PAPER, f, r, t), lifetimes_model.conditional_probability_alive(f, r, t), rtol=1e-12
    )
    for horizon in (1.0, 39.0, 104.0):
        np.testing.assert_allclose(
            mbgnbd.expected_purchases(PAPER, horizon, f, r, t),
            lifetimes_model.conditional_expected_number_of_purchases_up_to_time(horizon, f, r, t),
            rtol=1e-10,
        )
    np.testing.assert_allclose(
        mbgnbd.expected_purchases_new_customer(PAPER, np.array([1.0, 39.0])),
        lifetimes_model.expected_number_of_purchases_up_to_time(np.array([1.0, 39.0])),
        rtol=1e-10,
    )


def test_one_time_buyers_are_not_certainly_alive() -> None:
    alive = mbgnbd.p_alive(PAPER, [0.0], [0.0], [30.0])[0]
    assert alive == pytest.approx(1 / (1 + PAPER.a / PAPER.b * ((PAPER.alpha + 30) / PAPER.alpha) ** PAPER.r))
    assert alive < 1


def test_quadrature_takes_over_at_a_equal_to_one() -> None:
    at_one = MBGNBDParams(0.5, 6.0, 1.0, 1.6)
    near = MBGNBDParams(0.5, 6.0, 1.001, 1.6)
    f, r, t = np.array([0.0, 3.0]), np.array([0.0, 20.0]), np.array([30.0, 38.0])
    ours = mbgnbd.expected_purchases(at_one, 52.0, f, r, t)
    assert np.isfinite(ours).all()
    np.testing.assert_allclose(ours, mbgnbd.expected_purchases(near, 52.0, f, r, t), rtol=2e-3)


def test_repeat_count_pmf_is_a_distribution_with_the_right_mean() -> None:
    counts = np.arange(300, dtype=float)
    pmf = mbgnbd.repeat_count_pmf(PAPER, counts, np.full_like(counts, 39.0))
    assert pmf.sum() == pytest.approx(1.0, abs=1e-12)
    assert (counts * pmf).sum() == pytest.approx(float(mbgnbd.expected_purchases_new_customer(PAPER, 39.0)))
