"""The shared maximum-likelihood helper on a model with a known answer: exponential waiting times."""

from __future__ import annotations

import numpy as np
import pytest

from models.fitted import FitError
from models.positive_mle import maximize_log_likelihood


def test_finds_the_closed_form_maximum_and_its_standard_error() -> None:
    # LL(rate) = N log(rate) - rate * sum(x): the maximum is N / sum(x), its standard error rate / sqrt(N).
    count, total = 5000.0, 12_500.0

    def objective(values: np.ndarray) -> tuple[float, np.ndarray]:
        rate = values[0]
        return count * np.log(rate) - rate * total, np.array([count / rate - total])

    found = maximize_log_likelihood(objective, ("rate",), count, "exponential")
    assert found.values["rate"] == pytest.approx(0.4, rel=1e-9)
    assert found.standard_errors["rate"] == pytest.approx(0.4 / np.sqrt(count), rel=1e-6)
    assert found.log_likelihood == pytest.approx(count * np.log(0.4) - 0.4 * total, rel=1e-12)
    assert found.at_bound == ()


def test_reports_a_bound_and_leaves_its_error_undefined() -> None:
    def objective(values: np.ndarray) -> tuple[float, np.ndarray]:  # increases without limit in the rate
        return float(np.log(values[0])), np.array([1 / values[0]])

    found = maximize_log_likelihood(objective, ("rate",), 1.0, "unbounded")
    assert found.at_bound == ("rate",)
    assert found.values["rate"] == pytest.approx(1e9)
    assert np.isnan(found.standard_errors["rate"])


def test_a_likelihood_that_is_never_finite_is_a_fit_error() -> None:
    def objective(values: np.ndarray) -> tuple[float, np.ndarray]:
        return float("nan"), np.full(len(values), np.nan)

    with pytest.raises(FitError, match="did not converge"):
        maximize_log_likelihood(objective, ("a", "b"), 10.0, "broken")
