"""The shared maximum-likelihood helper on a model with a known answer: exponential waiting times."""

from __future__ import annotations

import numpy as np
import pytest

from models.fitted import FitError
from models.positive_mle import central_hessian, delta_method_errors, maximize_log_likelihood


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


def _cubic_gradient(u: np.ndarray) -> np.ndarray:
    """The gradient of f(u) = u0^3 + 2 u0 u1^2 - 3 u1 u2 + u2^2 / 2: quadratic, so central differences of it are
    exact up to rounding."""
    return np.array([3 * u[0] ** 2 + 2 * u[1] ** 2, 4 * u[0] * u[1] - 3 * u[2], -3 * u[1] + u[2]])


def test_central_hessian_is_the_analytic_hessian() -> None:
    u = np.array([0.7, -1.3, 2.1])
    analytic = np.array([[6 * u[0], 4 * u[1], 0.0], [4 * u[1], 4 * u[0], -3.0], [0.0, -3.0, 1.0]])
    hessian = central_hessian(_cubic_gradient, u)
    np.testing.assert_allclose(hessian, analytic, rtol=1e-9, atol=1e-9)
    np.testing.assert_array_equal(hessian, hessian.T)
    # Only coordinates 2 and 0 moved: their block, in that order.
    block = central_hessian(_cubic_gradient, u, free=[2, 0])
    np.testing.assert_allclose(block, analytic[np.ix_([2, 0], [2, 0])], rtol=1e-9, atol=1e-9)


def test_delta_method_errors_of_a_known_information() -> None:
    # The inverse of [[4, 1], [1, 2]] is [[2, -1], [-1, 4]] / 7.
    information = np.array([[4.0, 1.0], [1.0, 2.0]])
    values = np.array([3.0, 5.0])
    expected = values * np.sqrt(np.array([2.0, 4.0]) / 7 / 10)
    errors = delta_method_errors(information, values, n=10.0)
    assert errors is not None
    np.testing.assert_allclose(errors, expected, rtol=1e-14)
    total = delta_method_errors(information, values)
    assert total is not None
    np.testing.assert_allclose(total, values * np.sqrt(np.array([2.0, 4.0]) / 7), rtol=1e-14)
    assert delta_method_errors(np.array([[1.0, 2.0], [2.0, 1.0]]), values) is None  # indefinite


def test_the_helpers_give_the_exponential_standard_error() -> None:
    """LL(rate) = N log(rate) - rate * sum(x) in u = log(rate): d2LL/du2 = -rate * sum(x) = -N at the maximum,
    so the standard error is rate / sqrt(N)."""
    count, total = 5000.0, 12_500.0

    def log_gradient(u: np.ndarray) -> np.ndarray:
        rate = np.exp(u)
        return np.asarray((count / rate - total) * rate, dtype=np.float64)

    u = np.log(np.array([count / total]))
    information = -central_hessian(log_gradient, u)
    np.testing.assert_allclose(information, [[count]], rtol=1e-9)
    errors = delta_method_errors(information, np.exp(u))
    assert errors is not None
    assert errors[0] == pytest.approx(0.4 / np.sqrt(count), rel=1e-9)
