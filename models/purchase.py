"""One interface over the purchase models: BG/NBD, MBG/NBD and Pareto/NBD.

Each model module evaluates its formulas from a frozen parameter dataclass; this module picks the
module from the parameters' type, so scoring, validation and the checks work with any of them.
"""

from __future__ import annotations

from types import ModuleType
from typing import Final

import numpy as np
from numpy.typing import ArrayLike, NDArray

from models import bgnbd, mbgnbd, pareto_nbd
from models.bgnbd import BetaGeoParams
from models.mbgnbd import MBGNBDParams
from models.pareto_nbd import ParetoNBDParams

FloatArray = NDArray[np.float64]
PurchaseParams = BetaGeoParams | MBGNBDParams | ParetoNBDParams

PARAM_TYPES: Final[dict[str, type[BetaGeoParams] | type[MBGNBDParams] | type[ParetoNBDParams]]] = {
    "bgnbd": BetaGeoParams,
    "mbgnbd": MBGNBDParams,
    "pareto_nbd": ParetoNBDParams,
}
PARAM_NAMES: Final[dict[str, tuple[str, ...]]] = {
    "bgnbd": ("r", "alpha", "a", "b"),
    "mbgnbd": ("r", "alpha", "a", "b"),
    "pareto_nbd": ("r", "alpha", "s", "beta"),
}
LABELS: Final[dict[str, str]] = {"bgnbd": "BG/NBD", "mbgnbd": "MBG/NBD", "pareto_nbd": "Pareto/NBD"}
_MODULES: Final[dict[str, ModuleType]] = {"bgnbd": bgnbd, "mbgnbd": mbgnbd, "pareto_nbd": pareto_nbd}


def model_name(params: PurchaseParams) -> str:
    for name, kind in PARAM_TYPES.items():
        if type(params) is kind:
            return name
    raise TypeError(f"not purchase-model parameters: {params!r}")


def make_params(model: str, values: dict[str, float]) -> PurchaseParams:
    """Parameters of ``model`` from a mapping with (at least) its parameter names."""
    if model not in PARAM_TYPES:
        raise ValueError(f"unknown purchase model {model!r}; expected one of {sorted(PARAM_TYPES)}")
    return PARAM_TYPES[model](*(float(values[k]) for k in PARAM_NAMES[model]))


def _module(params: PurchaseParams) -> ModuleType:
    return _MODULES[model_name(params)]


def p_alive(params: PurchaseParams, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> FloatArray:
    """P(alive at T | x, t_x, T)."""
    return np.asarray(_module(params).p_alive(params, frequency, recency, T), dtype=np.float64)


def p_no_purchase(
    params: PurchaseParams, t: ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
) -> FloatArray:
    """P(no purchase in (T, T + t] | x, t_x, T): the churn risk over a horizon t."""
    return np.asarray(_module(params).p_no_purchase(params, t, frequency, recency, T), dtype=np.float64)


def expected_purchases(
    params: PurchaseParams, t: ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
) -> FloatArray:
    """E[X(T, T + t) | x, t_x, T]: expected purchases in the next t time units."""
    return np.asarray(_module(params).expected_purchases(params, t, frequency, recency, T), dtype=np.float64)


def expected_purchases_new_customer(params: PurchaseParams, t: ArrayLike) -> FloatArray:
    """E[X(t)]: expected repeat purchases in (0, t] of a new customer."""
    return np.asarray(_module(params).expected_purchases_new_customer(params, t), dtype=np.float64)


def log_likelihood_rows(params: PurchaseParams, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> FloatArray:
    """Each history's log-likelihood, in the data's time unit."""
    return np.asarray(_module(params).log_likelihood_rows(params, frequency, recency, T), dtype=np.float64)


def log_likelihood(
    params: PurchaseParams, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike, weights: ArrayLike | None = None
) -> float:
    """Total log-likelihood (weighted by the number of customers sharing each history)."""
    per_row = log_likelihood_rows(params, frequency, recency, T)
    w = np.ones_like(per_row) if weights is None else np.asarray(weights, dtype=np.float64)
    return float(np.sum(w * per_row))


def repeat_count_pmf(params: PurchaseParams, counts: ArrayLike, t: ArrayLike) -> FloatArray:
    """P(X(t) = x): the chance that a new customer observed for t makes x repeat purchases."""
    return np.asarray(_module(params).repeat_count_pmf(params, counts, t), dtype=np.float64)
