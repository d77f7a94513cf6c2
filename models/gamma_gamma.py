"""Gamma-Gamma spend model (Fader & Hardie 2013) evaluated from its parameters.

``monetary_value`` is a customer's mean spend per repeat purchase period; customers without a
repeat purchase get the population mean.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import gammaln

__all__ = ["GammaGammaParams", "expected_order_value", "log_likelihood"]

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class GammaGammaParams:
    """p: shape of spend per transaction; q, v: gamma heterogeneity of the customers' mean spend."""

    p: float
    q: float
    v: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)

    @property
    def population_mean(self) -> float:
        """Mean spend per transaction of a randomly chosen customer, p*v/(q-1) (infinite if q <= 1)."""
        return self.p * self.v / (self.q - 1) if self.q > 1 else float("inf")


def expected_order_value(params: GammaGammaParams, frequency: ArrayLike, monetary_value: ArrayLike) -> FloatArray:
    """E[M | x, m_x]: a weighted mean of the population mean and the customer's own mean spend."""
    x = np.asarray(frequency, dtype=np.float64)
    m = np.asarray(monetary_value, dtype=np.float64)
    weight = params.p * x / (params.p * x + params.q - 1)
    return np.asarray((1 - weight) * params.population_mean + weight * m, dtype=np.float64)


def log_likelihood(
    params: GammaGammaParams,
    frequency: ArrayLike,
    monetary_value: ArrayLike,
    weights: ArrayLike | None = None,
) -> float:
    """Total log-likelihood of the repeat customers' mean spend (comparable to the published -4055.92)."""
    x = np.asarray(frequency, dtype=np.float64)
    m = np.asarray(monetary_value, dtype=np.float64)
    w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=np.float64)
    p, q, v = params.p, params.q, params.v
    per_row = (
        gammaln(p * x + q)
        - gammaln(p * x)
        - gammaln(q)
        + q * np.log(v)
        + (p * x - 1) * np.log(m)
        + p * x * np.log(x)
        - (p * x + q) * np.log(x * m + v)
    )
    return float(np.sum(w * per_row))
