from __future__ import annotations

import numpy as np
import pytest

from models import gamma_gamma, spend
from models.gamma_gamma import GammaGammaParams
from models.spend import NoSpendModelError, PooledMeanParams

GG = GammaGammaParams(p=6.2488, q=3.7446, v=15.4477)


def test_dispatches_on_the_parameter_type() -> None:
    f, m = np.array([0.0, 2.0, 5.0]), np.array([0.0, 22.35, 80.0])
    np.testing.assert_array_equal(spend.expected_order_value(GG, f, m), gamma_gamma.expected_order_value(GG, f, m))
    np.testing.assert_array_equal(spend.expected_order_value(PooledMeanParams(31.5), f, m), [31.5, 31.5, 31.5])
    assert spend.expected_order_value(PooledMeanParams(31.5), 2.0, 10.0).shape == ()
    with pytest.raises(NoSpendModelError, match="no spend model"):
        spend.expected_order_value(None, f, m)
    assert [spend.spend_model_name(p) for p in (GG, PooledMeanParams(1.0), None)] == [
        "gamma_gamma",
        "pooled_mean",
        "none",
    ]
    assert spend.SPEND_MODELS == ("gamma_gamma", "pooled_mean", "none")


def test_population_mean() -> None:
    assert spend.population_mean(GG) == pytest.approx(35.171, abs=2e-3)
    assert spend.population_mean(PooledMeanParams(12.0)) == 12.0
    assert np.isnan(spend.population_mean(None))


def test_make_spend_params_by_name() -> None:
    assert spend.make_spend_params("gamma_gamma", {"p": 1, "q": 2, "v": 3, "r": 9}) == GammaGammaParams(1, 2, 3)
    assert spend.make_spend_params("pooled_mean", {"mean": 4}) == PooledMeanParams(4.0)
    assert spend.make_spend_params("none", None) is None
    with pytest.raises(ValueError, match="unknown spend model 'lognormal'"):
        spend.make_spend_params("lognormal", {})
    with pytest.raises(ValueError, match="needs its parameters"):
        spend.make_spend_params("pooled_mean", None)
