"""TEMPORARY shim until the spend-model dispatch lands (feeds-models branch)."""

from __future__ import annotations

from numpy.typing import ArrayLike

from models import gamma_gamma
from models.gamma_gamma import FloatArray, GammaGammaParams


def expected_order_value(params: GammaGammaParams, frequency: ArrayLike, monetary_value: ArrayLike) -> FloatArray:
    return gamma_gamma.expected_order_value(params, frequency, monetary_value)
