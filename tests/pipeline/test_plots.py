from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline import plots

BY_FREQUENCY = pd.DataFrame(
    {
        "frequency_bin": ["0", "1", "7+"],
        "actual_purchases": [0.2, 0.6, 4.0],
        "predicted_purchases": [0.25, 0.55, 3.6],
        "actual_revenue": [5.0, 20.0, 200.0],
        "predicted_revenue": [6.0, 18.0, 180.0],
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
    holdout = pd.DataFrame({"churn_risk": [0.05, 0.05, 0.95, 0.95], "actual_purchases": [1, 1, 0, 1]})
    fig = plots.churn_calibration(holdout)
    line = fig.axes[0].get_lines()[1]
    np.testing.assert_allclose(line.get_xdata(), [0.05, 0.95])
    np.testing.assert_allclose(line.get_ydata(), [0.0, 0.5])
