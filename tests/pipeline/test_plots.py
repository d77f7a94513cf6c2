from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline import plots

BY_FREQUENCY = pd.DataFrame(
    {
        "frequency_bin": ["0", "1", "7+"],
        "actual_purchases": [0.2, 0.6, 4.0],
        "expected_purchases": [0.25, 0.55, 3.6],
        "actual_revenue": [5.0, 20.0, 200.0],
        "expected_revenue": [6.0, 18.0, 180.0],
        "baseline_spend_rate_revenue": [30.0, 50.0, 400.0],
    }
)


def test_figures_have_the_lines_they_claim() -> None:
    fig = plots.purchases_by_frequency(BY_FREQUENCY)
    (ax,) = fig.axes
    assert [line.get_label() for line in ax.get_lines()] == ["actual", "BG/NBD"]
    np.testing.assert_array_equal(ax.get_lines()[1].get_ydata(), [0.25, 0.55, 3.6])
    fig = plots.revenue_by_frequency(BY_FREQUENCY, ("spend_rate",))
    assert len(fig.axes[0].get_lines()) == 3


def test_churn_calibration_bins() -> None:
    curve = pd.DataFrame({"mean_predicted": [0.05, 0.95], "observed": [0.0, 0.5]})
    fig = plots.churn_calibration(curve)
    line = fig.axes[0].get_lines()[1]
    np.testing.assert_allclose(np.asarray(line.get_xdata(), dtype=np.float64), [0.05, 0.95])
    np.testing.assert_allclose(np.asarray(line.get_ydata(), dtype=np.float64), [0.0, 0.5])


def test_purchase_tracking_has_two_panels() -> None:
    tracking = pd.DataFrame(
        {
            "week": pd.to_datetime(["2020-01-06", "2020-01-13"]),
            "actual": [1.0, 2.0],
            "expected": [1.5, 1.5],
            "actual_cumulative": [1.0, 3.0],
            "expected_cumulative": [1.5, 3.0],
        }
    )
    fig = plots.purchase_tracking(tracking, "2020-01-10")
    assert len(fig.axes) == 2
    np.testing.assert_array_equal(fig.axes[0].get_lines()[1].get_ydata(), [1.5, 3.0])
