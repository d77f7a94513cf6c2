"""One interface over the spend models: what a customer's next order is worth.

- ``gamma_gamma``: Gamma-Gamma (Fader & Hardie 2013): a weighted mean of the population mean and the
  customer's own mean spend, the weight growing with the customer's repeat purchases.
- ``pooled_mean``: the population mean spend per transaction (total repeat spend / repeat purchases)
  for every customer. It is Gamma-Gamma's limit without spend heterogeneity (q -> infinity, where a
  customer's own mean gets weight 0), and the fit falls back to it when spend does not vary across
  customers or Gamma-Gamma cannot be fitted (the reason is recorded with the fit).
- ``none``: no spend model (a feed without amounts): scoring gives no money columns.

Like :mod:`models.purchase` for the purchase models, this module picks the formulas from the
parameters' type, so scoring, validation and the business metrics have one call for any spend model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Final, Literal, get_args

import numpy as np
from numpy.typing import ArrayLike, NDArray

from models import gamma_gamma
from models.gamma_gamma import GammaGammaParams

__all__ = [
    "LABELS",
    "PARAM_NAMES",
    "SPEND_MODELS",
    "NoSpendModelError",
    "PooledMeanParams",
    "SpendModel",
    "SpendParams",
    "expected_order_value",
    "make_spend_params",
    "population_mean",
    "spend_model_name",
]

FloatArray = NDArray[np.float64]
SpendModel = Literal["gamma_gamma", "pooled_mean", "none"]
SPEND_MODELS: Final[tuple[str, ...]] = get_args(SpendModel)
PARAM_NAMES: Final[dict[str, tuple[str, ...]]] = {"gamma_gamma": ("p", "q", "v"), "pooled_mean": ("mean",), "none": ()}
LABELS: Final[dict[str, str]] = {"gamma_gamma": "Gamma-Gamma", "pooled_mean": "pooled mean spend", "none": "none"}


@dataclass(frozen=True)
class PooledMeanParams:
    """mean: the population mean spend per transaction, the same expected order value for everyone."""

    mean: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


SpendParams = GammaGammaParams | PooledMeanParams


class NoSpendModelError(ValueError):
    """A money quantity was asked of a model fitted without a spend model (a feed without amounts)."""


def spend_model_name(params: SpendParams | None) -> SpendModel:
    if params is None:
        return "none"
    if isinstance(params, GammaGammaParams):
        return "gamma_gamma"
    if isinstance(params, PooledMeanParams):
        return "pooled_mean"
    raise TypeError(f"not spend-model parameters: {params!r}")


def make_spend_params(model: str, values: Mapping[str, float] | None) -> SpendParams | None:
    """Parameters of spend model ``model`` from a mapping with its parameter names (None for ``none``)."""
    if model not in PARAM_NAMES:
        raise ValueError(f"unknown spend model {model!r}; expected one of {list(SPEND_MODELS)}")
    if model == "none":
        return None
    if values is None:
        raise ValueError(f"spend model {model!r} needs its parameters {PARAM_NAMES[model]}")
    numbers = [float(values[k]) for k in PARAM_NAMES[model]]
    return GammaGammaParams(*numbers) if model == "gamma_gamma" else PooledMeanParams(*numbers)


def expected_order_value(params: SpendParams | None, frequency: ArrayLike, monetary_value: ArrayLike) -> FloatArray:
    """E[value of the next order | x, m_x] under the spend model, per customer."""
    if params is None:
        raise NoSpendModelError("the model has no spend model (fitted without amounts): no order values")
    if isinstance(params, GammaGammaParams):
        return gamma_gamma.expected_order_value(params, frequency, monetary_value)
    shape = np.broadcast_shapes(np.shape(frequency), np.shape(monetary_value))
    return np.full(shape, params.mean, dtype=np.float64)


def population_mean(params: SpendParams | None) -> float:
    """Expected order value of a customer without repeat purchases (NaN without a spend model)."""
    if params is None:
        return float("nan")
    return params.population_mean if isinstance(params, GammaGammaParams) else params.mean
