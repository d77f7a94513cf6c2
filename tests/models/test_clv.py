from __future__ import annotations

import numpy as np
import pytest

from models import bgnbd
from models.bgnbd import BetaGeoParams
from models.clv import DAYS_PER_MONTH, days_to_units, discounted_clv

PARAMS = BetaGeoParams(r=0.2425945, alpha=4.4136019, a=0.7929199, b=2.4258881)


def _cumulative(f: np.ndarray, r: np.ndarray, t: np.ndarray):  # type: ignore[no-untyped-def]
    return lambda horizon: bgnbd.expected_purchases(PARAMS, horizon, f, r, t)


def test_days_to_units() -> None:
    assert days_to_units(7, "week") == 1.0
    assert days_to_units(30.4375, "month") == 1.0
    assert days_to_units(90, "day") == 90.0


def test_zero_discount_is_value_times_cumulative_purchases() -> None:
    f, r, t = np.array([0.0, 2.0]), np.array([0.0, 30.43]), np.array([38.86, 38.86])
    value = np.array([35.0, 22.35])
    clv = discounted_clv(_cumulative(f, r, t), value, 12, 0.0, "week")
    horizon = days_to_units(12 * DAYS_PER_MONTH, "week")
    np.testing.assert_allclose(clv, value * bgnbd.expected_purchases(PARAMS, horizon, f, r, t), rtol=1e-12)


def test_discounting_matches_a_month_by_month_sum() -> None:
    f, r, t = np.array([3.0]), np.array([20.0]), np.array([38.0])
    value = np.array([40.0])
    expected = 0.0
    for month in range(1, 25):
        start = bgnbd.expected_purchases(PARAMS, (month - 1) * DAYS_PER_MONTH / 7, f, r, t)
        end = bgnbd.expected_purchases(PARAMS, month * DAYS_PER_MONTH / 7, f, r, t)
        expected += 40.0 * (end - start)[0] / 1.1 ** (month / 12)
    clv = discounted_clv(_cumulative(f, r, t), value, 24, 0.10, "week")
    assert clv[0] == pytest.approx(expected, rel=1e-12)
    assert clv[0] < discounted_clv(_cumulative(f, r, t), value, 24, 0.0, "week")[0]
