"""BG/NBD's conditional expectation where its closed form breaks (a = 1, a + b < 1), against an independent value.

The independent value is derived from the individual-level model itself, not from the product's
``p_alive`` or its Gauss-Jacobi sum: integrate the purchase rate lambda ~ Gamma(r, alpha) out analytically,
then integrate the dropout probability p ~ Beta(a, b) numerically with QUADPACK's QAWS rule, which handles
the p^(a-1) (1-p)^(b+x-1) endpoint singularities exactly. With K = r + x:

    numerator   = int_0^1 p^(a-1) (1-p)^(b+x-1) [(alpha+T)^-K - (alpha+T+p t)^-K] / p dp
    denominator = B(a, b+x) (alpha+T)^-K + [x > 0] B(a+1, b+x-1) (alpha+t_x)^-K

(the common factor Gamma(r+x)/Gamma(r) alpha^r / B(a, b) cancels), and E[X(T, T+t) | x, t_x, T] is their ratio.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate
from scipy.special import beta as beta_fn

from models import bgnbd
from models.bgnbd import BetaGeoParams

HISTORIES = [(0.0, 0.0, 38.0), (0.0, 0.0, 0.01), (1.0, 3.0, 38.0), (5.0, 20.0, 20.0), (2.0, 30.43, 38.86)]


def independent_expectation(params: BetaGeoParams, t: float, x: float, t_x: float, T: float) -> float:
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    k = r + x

    def future(p: float) -> float:
        # (alpha+T)^-K (1 - (1 + p t/(alpha+T))^-K) / p, written to stay exact as p -> 0 (limit K t/(alpha+T)).
        if p == 0.0:
            return float(k * t * (alpha + T) ** (-k - 1))
        return float((alpha + T) ** -k * -np.expm1(-k * np.log1p(p * t / (alpha + T))) / p)

    numerator, error = integrate.quad(
        future, 0.0, 1.0, weight="alg", wvar=(a - 1.0, b + x - 1.0), epsabs=0, epsrel=1e-12, limit=200
    )
    assert error < 1e-10 * abs(numerator)
    denominator = beta_fn(a, b + x) * (alpha + T) ** -k
    if x > 0:
        denominator += beta_fn(a + 1, b + x - 1) * (alpha + t_x) ** -k
    return float(numerator / denominator)


@pytest.mark.parametrize(
    "params",
    [
        BetaGeoParams(r=0.24, alpha=4.4, a=0.3, b=0.5),  # a + b < 1: lifetimes #442 gives NaN
        BetaGeoParams(r=0.24, alpha=4.4, a=0.05, b=0.2),
        BetaGeoParams(r=0.24, alpha=4.4, a=1.0, b=2.0),  # a = 1: 0/0 in the closed form
        BetaGeoParams(r=0.2425945, alpha=4.4136019, a=0.7929199, b=2.4258881),  # FHL 2005: closed form holds
    ],
)
def test_expected_purchases_equal_an_independent_integral(params: BetaGeoParams) -> None:
    x, t_x, T = (np.array(column) for column in zip(*HISTORIES, strict=True))
    product = bgnbd.expected_purchases(params, 52.0, x, t_x, T)
    reference = [independent_expectation(params, 52.0, *history) for history in HISTORIES]
    np.testing.assert_allclose(product, reference, rtol=1e-8)


def test_the_independent_integral_reproduces_the_published_point() -> None:
    # FHL (2005): a customer with x = 2, t_x = 30.43, T = 38.86 is expected to buy 1.226 times in 39 weeks.
    paper = BetaGeoParams(r=0.2425945, alpha=4.4136019, a=0.7929199, b=2.4258881)
    assert independent_expectation(paper, 39.0, 2.0, 30.43, 38.86) == pytest.approx(1.226, abs=5e-4)
