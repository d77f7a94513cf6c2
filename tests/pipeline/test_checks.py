from __future__ import annotations

import pandas as pd
import pytest

from models.bgnbd import BetaGeoParams
from models.mbgnbd import MBGNBDParams
from models.pareto_nbd import ParetoNBDParams
from models.purchase import PurchaseParams
from pipeline.checks import repeat_purchase_check, spend_independence_warning

BG = BetaGeoParams(0.2425945, 4.4136019, 0.7929199, 2.4258881)


def test_repeat_purchase_histogram_of_the_paper_fit(cdnow_sample_summary: pd.DataFrame) -> None:
    check = repeat_purchase_check(BG, cdnow_sample_summary)
    table = check.table
    assert table["repeat_purchases"].tolist() == ["0", "1", "2", "3", "4", "5", "6", "7+"]
    assert table["observed"].tolist() == [1411, 439, 214, 100, 62, 38, 29, 64]
    assert table["expected"].sum() == pytest.approx(2357)
    # Measured; FHL (2005, figure 3) show the same close fit of BG/NBD on this histogram.
    assert table["expected"].round(1).tolist()[:3] == [1407.7, 460.3, 192.5]
    assert check.chi_square == pytest.approx(4.821, abs=1e-3)
    assert check.degrees_of_freedom == 3
    assert check.p_value == pytest.approx(0.1854, abs=1e-4)


@pytest.mark.parametrize(
    ("params", "chi_square"),
    [
        (ParetoNBDParams(0.5533, 10.578, 0.6062, 11.669), 11.988),
        (MBGNBDParams(0.525, 6.183, 0.891, 1.614), 2.960),
    ],
)
def test_repeat_purchase_check_for_the_peer_models(
    cdnow_sample_summary: pd.DataFrame, params: PurchaseParams, chi_square: float
) -> None:
    check = repeat_purchase_check(params, cdnow_sample_summary)
    assert check.table["expected"].sum() == pytest.approx(2357)
    assert check.chi_square == pytest.approx(chi_square, abs=1e-3)


def test_spend_independence_warning() -> None:
    assert spend_independence_warning(0.11, 0.3) is None
    assert spend_independence_warning(float("nan"), 0.3) is None
    warning = spend_independence_warning(-0.42, 0.3)
    assert warning is not None
    assert "r = -0.420" in warning
    assert "threshold 0.3" in warning
