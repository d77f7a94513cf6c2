"""What-if scenarios on a fitted CLV model: shift each customer's latent dropout, purchase rate or spend.

A purchase model implies, for each customer history (x, t_x, T), a posterior over the customer's own
purchase rate lambda and dropout. For BG/NBD (Fader, Hardie & Lee 2005) it is a two-part mixture:

- alive at T, with probability P(alive): lambda ~ Gamma(r + x, alpha + T), p ~ Beta(a, b + x);
- dropped out after the last purchase: no future purchases, whatever lambda and p are.

MBG/NBD is the same with p ~ Beta(a, b + x + 1); Pareto/NBD has lambda ~ Gamma(r + x, alpha + T) and an
exponential lifetime mu ~ Gamma(s, beta + T) given alive. A scenario changes the customer's behaviour from
T on (the history already happened, so P(alive at T) does not move):

- ``dropout``: p -> p (1 - k) (BG/NBD, MBG/NBD) or mu -> mu (1 - k) (Pareto/NBD), 0 <= k <= 1; k = 1 is
  the no-dropout limit, a Poisson process whose rate is Gamma: the NBD;
- ``rate``: lambda -> lambda (1 + k), k > -1 (in BG/NBD more purchases also mean more chances to drop out);
- ``spend``: expected order value x (1 + k), k > -1 (purchases unchanged).

Given alive, a customer with rate lambda and dropout p makes (1 - exp(-lambda p t)) / p purchases in t and
is still alive at T + t with probability exp(-lambda p t). The lambda expectation is closed-form; the p
expectation (a Beta) is a Gauss-Jacobi sum, exact for the Beta weight, so the shifted quantities are
numerical integrals of the model's own posterior, not a simulation (the tests check them against one).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal, get_args

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from scipy.special import roots_jacobi

from models import bgnbd, mbgnbd, pareto_nbd, spend
from models.bgnbd import BetaGeoParams
from models.bundle import CLVModelParams
from models.clv import DAYS_PER_MONTH, days_to_units, discounted_clv
from models.contract import CUSTOMER_ID, check_customer_summary
from models.mbgnbd import MBGNBDParams
from models.pareto_nbd import ParetoNBDParams

__all__ = [
    "LEVERS",
    "Lever",
    "Scenario",
    "UnsupportedModelError",
    "p_alive_after",
    "shifted_expected_purchases",
    "whatif_customers",
]

FloatArray = NDArray[np.float64]
Lever = Literal["dropout", "rate", "spend"]
LEVERS: Final[tuple[str, ...]] = get_args(Lever)
CHUNK: Final[int] = 20_000
"""Distinct histories integrated at a time (memory: CHUNK x NODES per array)."""
NODES: Final[int] = 64
"""Gauss-Jacobi nodes over the dropout probability: the integrand is smooth on [0, 1], and 64 nodes agree
with the closed forms to better than 1e-10 relative on CDNOW's histories."""


class UnsupportedModelError(ValueError):
    """A purchase model the what-if does not shift (one line, for the CLI)."""


@dataclass(frozen=True)
class Scenario:
    """``lever`` scaled by k: dropout x (1 - k), purchase rate x (1 + k) or spend per order x (1 + k)."""

    lever: Lever
    k: float

    def __post_init__(self) -> None:
        if self.lever not in LEVERS:
            raise ValueError(f"unknown lever {self.lever!r}; expected one of {list(LEVERS)}")
        if not np.isfinite(self.k):
            raise ValueError(f"k must be a finite number, got {self.k}")
        if self.lever == "dropout" and not 0 <= self.k <= 1:
            raise ValueError(f"dropout x (1 - k) needs 0 <= k <= 1, got {self.k}")
        if self.lever != "dropout" and self.k <= -1:
            raise ValueError(f"{self.lever} x (1 + k) needs k > -1, got {self.k}")

    @property
    def name(self) -> str:
        sign = "-" if self.lever == "dropout" else "+"
        return f"{self.lever} {sign}{self.k * 100:g}%"

    @property
    def dropout_factor(self) -> float:
        return 1.0 - self.k if self.lever == "dropout" else 1.0

    @property
    def rate_factor(self) -> float:
        return 1.0 + self.k if self.lever == "rate" else 1.0

    @property
    def spend_factor(self) -> float:
        return 1.0 + self.k if self.lever == "spend" else 1.0


PurchaseParams = BetaGeoParams | MBGNBDParams | ParetoNBDParams


def _arrays(*values: ArrayLike) -> tuple[FloatArray, ...]:
    return tuple(np.asarray(v, dtype=np.float64) for v in np.broadcast_arrays(*values))


def _p_alive(params: PurchaseParams, x: FloatArray, t_x: FloatArray, t_obs: FloatArray) -> FloatArray:
    if isinstance(params, BetaGeoParams):
        return bgnbd.p_alive(params, x, t_x, t_obs)
    if isinstance(params, MBGNBDParams):
        return mbgnbd.p_alive(params, x, t_x, t_obs)
    if isinstance(params, ParetoNBDParams):
        return pareto_nbd.p_alive(params, x, t_x, t_obs)
    raise UnsupportedModelError(f"what-if scenarios are not defined for {type(params).__name__}")


def _beta_geo_if_alive(
    params: BetaGeoParams | MBGNBDParams, scenario: Scenario, t: FloatArray, x: FloatArray, t_obs: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Given alive at T: E[purchases in (T, T+t)] and P(still alive at T+t), under the scenario.

    With q = p (1 - k_dropout) and rate c = (1 + k_rate): E over lambda ~ Gamma(s, B) (s = r + x, B = alpha + T)
    of (1 - exp(-lambda c q t)) / q is (1 - (B / (B + c q t))^s) / q, and of exp(-lambda c q t) is
    (B / (B + c q t))^s; the expectation over p ~ Beta(a, b + x + shift) is a Gauss-Jacobi sum. At q -> 0
    the first tends to s c t / B (the NBD): ``-expm1(-s log1p(z)) / q`` keeps it exact there.
    """
    shift = 1 if isinstance(params, MBGNBDParams) else 0
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    purchases, alive = np.empty_like(t), np.empty_like(t)
    horizon = t * scenario.rate_factor
    for frequency in np.unique(x):
        rows = x == frequency
        u, w = roots_jacobi(NODES, b + frequency + shift - 1, a - 1)
        p = (1 + u) / 2  # nodes on (0, 1)
        w = w / w.sum()
        q = p * scenario.dropout_factor
        base = (alpha + t_obs[rows])[:, None]
        shape = r + frequency
        span = horizon[rows][:, None] / base  # c t / B
        log_survive = -shape * np.log1p(q[None, :] * span)
        with np.errstate(divide="ignore", invalid="ignore"):
            per_q = np.where(q[None, :] > 0, -np.expm1(log_survive) / q[None, :], shape * span)
        purchases[rows] = per_q @ w
        alive[rows] = np.exp(log_survive) @ w
    return purchases, alive


def _pareto_if_alive(
    params: ParetoNBDParams, scenario: Scenario, t: FloatArray, x: FloatArray, t_obs: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Pareto/NBD given alive: lambda ~ Gamma(r+x, alpha+T), mu ~ Gamma(s, beta+T) independent; with
    mu' = mu (1 - k): E[lambda'] int_0^t (B / (B + (1-k) u))^s du and P(alive at T+t) = (B / (B + (1-k) t))^s."""
    r, alpha, s, beta = params.r, params.alpha, params.s, params.beta
    rate = scenario.rate_factor * (r + x) / (alpha + t_obs)
    base = beta + t_obs
    z = scenario.dropout_factor * t / base
    log1p_z = np.log1p(z)
    with np.errstate(divide="ignore", invalid="ignore"):
        if abs(s - 1) < 1e-9:
            mean_life = np.where(z > 0, log1p_z / z, 1.0)
        else:
            mean_life = np.where(z > 0, -np.expm1(-(s - 1) * log1p_z) / ((s - 1) * z), 1.0)
    return rate * t * mean_life, np.exp(-s * log1p_z)


def _if_alive(
    params: PurchaseParams, scenario: Scenario, t: FloatArray, x: FloatArray, t_obs: FloatArray
) -> tuple[FloatArray, FloatArray]:
    if isinstance(params, BetaGeoParams | MBGNBDParams):
        return _beta_geo_if_alive(params, scenario, t, x, t_obs)
    if isinstance(params, ParetoNBDParams):
        return _pareto_if_alive(params, scenario, t, x, t_obs)
    raise UnsupportedModelError(f"what-if scenarios are not defined for {type(params).__name__}")


def shifted_expected_purchases(
    params: PurchaseParams, scenario: Scenario, t: ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
) -> FloatArray:
    """E[purchases in (T, T + t) | x, t_x, T] when the scenario acts from T on (time in the model's unit)."""
    horizon, x, t_x, t_obs = _arrays(t, frequency, recency, T)
    purchases, _ = _if_alive(params, scenario, horizon, x, t_obs)
    return np.asarray(_p_alive(params, x, t_x, t_obs) * purchases, dtype=np.float64)


def p_alive_after(
    params: PurchaseParams, scenario: Scenario, t: ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
) -> FloatArray:
    """P(alive at T + t | x, t_x, T) when the scenario acts from T on: the retention the scenario buys."""
    horizon, x, t_x, t_obs = _arrays(t, frequency, recency, T)
    _, alive = _if_alive(params, scenario, horizon, x, t_obs)
    return np.asarray(_p_alive(params, x, t_x, t_obs) * alive, dtype=np.float64)


def _quantities(
    model: CLVModelParams, scenario: Scenario, f: FloatArray, r: FloatArray, t: FloatArray
) -> dict[str, FloatArray]:
    """The shifted quantities of distinct histories; ``clv`` per unit of order value (CLV is linear in it)."""
    spec = model.spec
    params = model.purchase
    if not isinstance(params, BetaGeoParams | MBGNBDParams | ParetoNBDParams):
        raise UnsupportedModelError(f"what-if scenarios are not defined for {type(params).__name__}")
    out: dict[str, FloatArray] = {}
    months = spec.clv_horizon_months
    out[f"p_alive_{months}m"] = p_alive_after(
        params, scenario, days_to_units(months * DAYS_PER_MONTH, spec.time_unit), f, r, t
    )
    for days in spec.horizons_days:
        horizon = days_to_units(days, spec.time_unit)
        out[f"expected_purchases_{days}d"] = shifted_expected_purchases(params, scenario, horizon, f, r, t)
    out["clv"] = discounted_clv(
        lambda horizon: shifted_expected_purchases(params, scenario, horizon, f, r, t),
        np.ones_like(f),
        months,
        spec.annual_discount_rate,
        spec.time_unit,
    )
    return out


def _by_history(
    model: CLVModelParams, scenario: Scenario, f: FloatArray, r: FloatArray, t: FloatArray
) -> dict[str, FloatArray]:
    """:func:`_quantities` once per distinct (x, t_x, T), CHUNK histories at a time, mapped back to customers."""
    histories, codes = np.unique(np.stack([f, r, t], axis=1), axis=0, return_inverse=True)
    uf, ur, ut = (np.ascontiguousarray(histories[:, i]) for i in range(3))
    codes = codes.reshape(-1)
    parts = [
        _quantities(model, scenario, uf[s : s + CHUNK], ur[s : s + CHUNK], ut[s : s + CHUNK])
        for s in range(0, max(len(uf), 1), CHUNK)  # one (empty) chunk for no customers
    ]
    return {key: np.concatenate([part[key] for part in parts])[codes] for key in parts[0]}


def whatif_customers(model: CLVModelParams, customers: pd.DataFrame, scenario: Scenario) -> pd.DataFrame:
    """Per customer, before and after the scenario: P(alive) at the end of the CLV horizon, the expected
    purchases over the configured horizons and the discounted CLV, with ``delta_clv`` = after - before.

    "Before" is the same integral at k = 0, so k = 0 changes nothing, to the last bit. With posterior draws the
    point estimates are used. Without a spend model CLV is counted in purchases (an order value of 1).
    """
    customers = check_customer_summary(customers, spend=model.has_spend)
    f, r, t = (customers[c].to_numpy(dtype=np.float64) for c in ("frequency", "recency", "T"))
    if model.has_spend:
        order_value = spend.expected_order_value(model.spend, f, customers["monetary_value"].to_numpy())
    else:
        order_value = np.ones_like(f)
    before = _by_history(model, Scenario(scenario.lever, 0.0), f, r, t)
    after = _by_history(model, scenario, f, r, t)
    out: dict[str, object] = {CUSTOMER_ID: customers[CUSTOMER_ID].to_numpy()}
    for key in before:
        scale = (order_value, order_value * scenario.spend_factor) if key == "clv" else (1.0, 1.0)
        out[f"{key}_before"] = before[key] * scale[0]
        out[f"{key}_after"] = after[key] * scale[1]
    out["delta_clv"] = np.asarray(out["clv_after"]) - np.asarray(out["clv_before"])
    return pd.DataFrame(out)
