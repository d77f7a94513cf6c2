from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from models import pareto_nbd
from models.pareto_nbd import ParetoNBDParams

with warnings.catch_warnings():
    from lifetimes import ParetoNBDFitter

# Fader, Hardie & Lee (2005) on the CDNOW 1/10 sample, weeks
PAPER = ParetoNBDParams(r=0.5533, alpha=10.578, s=0.6062, beta=11.669)


@pytest.fixture(scope="module")
def lifetimes_model() -> ParetoNBDFitter:
    model = ParetoNBDFitter()
    model.params_ = pd.Series({"r": PAPER.r, "alpha": PAPER.alpha, "s": PAPER.s, "beta": PAPER.beta})
    return model


def _histories(summary: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return tuple(summary[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T"))  # type: ignore[return-value]


def test_log_likelihood_matches_the_published_value(cdnow_sample_summary: pd.DataFrame) -> None:
    f, r, t = _histories(cdnow_sample_summary)
    assert pareto_nbd.log_likelihood_rows(PAPER, f, r, t).sum() == pytest.approx(-9594.98, abs=0.05)


def test_p_alive_and_expected_purchases_match_lifetimes(
    cdnow_sample_summary: pd.DataFrame, lifetimes_model: ParetoNBDFitter
) -> None:
    f, r, t = _histories(cdnow_sample_summary)
    np.testing.assert_allclose(
        pareto_nbd.p_alive(PAPER, f, r, t), lifetimes_model.conditional_probability_alive(f, r, t), rtol=1e-12
    )
    np.testing.assert_allclose(
        pareto_nbd.expected_purchases(PAPER, 39.0, f, r, t),
        lifetimes_model.conditional_expected_number_of_purchases_up_to_time(39.0, f, r, t),
        rtol=1e-12,
    )
    np.testing.assert_allclose(
        pareto_nbd.expected_purchases_new_customer(PAPER, np.array([1.0, 39.0, 78.0])),
        lifetimes_model.expected_number_of_purchases_up_to_time(np.array([1.0, 39.0, 78.0])),
        rtol=1e-12,
    )


def test_p_no_purchase_matches_lifetimes_probability_of_zero_purchases(
    cdnow_sample_summary: pd.DataFrame, lifetimes_model: ParetoNBDFitter
) -> None:
    f, r, t = _histories(cdnow_sample_summary.iloc[:300])
    ours = pareto_nbd.p_no_purchase(PAPER, 13.0, f, r, t)
    theirs = lifetimes_model.conditional_probability_of_n_purchases_up_to_time(0, 13.0, f, r, t)
    np.testing.assert_allclose(ours, theirs, atol=1e-10)


def test_repeat_count_pmf_is_a_distribution_with_the_right_mean() -> None:
    counts = np.arange(300, dtype=float)
    for horizon in (5.0, 39.0):
        pmf = pareto_nbd.repeat_count_pmf(PAPER, counts, np.full_like(counts, horizon))
        assert pmf.sum() == pytest.approx(1.0, abs=1e-9)
        assert (counts * pmf).sum() == pytest.approx(float(pareto_nbd.expected_purchases_new_customer(PAPER, horizon)))


def test_s_equal_to_one_uses_the_limit() -> None:
    at_one = ParetoNBDParams(0.55, 10.0, 1.0, 12.0)
    near = ParetoNBDParams(0.55, 10.0, 1.0 + 1e-7, 12.0)
    np.testing.assert_allclose(
        pareto_nbd.expected_purchases(at_one, 20.0, [2.0], [10.0], [30.0]),
        pareto_nbd.expected_purchases(near, 20.0, [2.0], [10.0], [30.0]),
        rtol=1e-6,
    )
