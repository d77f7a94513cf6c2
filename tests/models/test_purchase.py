from __future__ import annotations

import numpy as np
import pytest

from models import bgnbd, purchase
from models.bgnbd import BetaGeoParams
from models.mbgnbd import MBGNBDParams
from models.pareto_nbd import ParetoNBDParams

BG = BetaGeoParams(r=0.2425945, alpha=4.4136019, a=0.7929199, b=2.4258881)


def test_dispatches_on_the_parameter_type() -> None:
    f, r, t = np.array([0.0, 2.0]), np.array([0.0, 30.43]), np.array([38.86, 38.86])
    np.testing.assert_array_equal(
        purchase.expected_purchases(BG, 39, f, r, t), bgnbd.expected_purchases(BG, 39, f, r, t)
    )
    assert purchase.model_name(BG) == "bgnbd"
    assert purchase.model_name(MBGNBDParams(0.5, 6.0, 0.9, 1.6)) == "mbgnbd"
    assert purchase.model_name(ParetoNBDParams(0.5, 10.0, 0.6, 11.0)) == "pareto_nbd"


def test_make_params_by_name() -> None:
    assert purchase.make_params("pareto_nbd", {"r": 1, "alpha": 2, "s": 3, "beta": 4, "p": 9}) == ParetoNBDParams(
        1, 2, 3, 4
    )
    with pytest.raises(ValueError, match="unknown purchase model 'nbd'"):
        purchase.make_params("nbd", {})


def test_bgnbd_repeat_count_pmf_matches_the_published_p_zero() -> None:
    # P(X(39) = 0) = 0.5737864 for a new customer, with the parameters rounded as in R's BTYD
    rounded = BetaGeoParams(r=0.243, alpha=4.414, a=0.793, b=2.426)
    assert purchase.repeat_count_pmf(rounded, [0.0], [39.0])[0] == pytest.approx(0.5737864, abs=1e-7)
    counts = np.arange(400, dtype=float)
    pmf = purchase.repeat_count_pmf(BG, counts, np.full_like(counts, 39.0))
    assert pmf.sum() == pytest.approx(1.0, abs=1e-12)
    assert (counts * pmf).sum() == pytest.approx(float(purchase.expected_purchases_new_customer(BG, 39.0)))
