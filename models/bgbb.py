"""BG/BB (beta-geometric/beta-binomial) model for discrete purchase opportunities (Fader, Hardie & Shang 2010).

At each of n opportunities an active customer transacts with probability p ~ Beta(alpha, beta), and becomes
inactive before an opportunity with probability theta ~ Beta(gamma, delta). A history is ``frequency`` x
(opportunities with a transaction), ``recency`` t_x (the last one; 0 if x = 0) and ``n_periods`` n.
The dropout process is the sBG of :mod:`models.sbg` with (gamma, delta), so its survival sums come from
there. The formulas are ours, in numpy/scipy (serving needs nothing else); per-customer functions work on
the distinct (x, t_x, n) histories and map back, so 1M customers cost what their few thousand histories do.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import betaln, digamma, gammaln, logsumexp

from models import sbg

if TYPE_CHECKING:
    from models.fitted import FitStatistics

__all__ = [
    "BGBBFit",
    "BetaGeoBetaBinomParams",
    "bgbb_pymc_model",
    "discounted_transactions",
    "expected_transactions",
    "expected_transactions_new_customer",
    "fit_bgbb",
    "fit_bgbb_with_remedies",
    "log_likelihood",
    "log_likelihood_rows",
    "p_alive",
    "transaction_count_pmf",
    "unique_histories",
]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
Histories = tuple[IntArray, IntArray, IntArray, IntArray]


@dataclass(frozen=True)
class BetaGeoBetaBinomParams:
    """alpha, beta: Beta heterogeneity of the transaction probability; gamma, delta: of the dropout probability."""

    alpha: float
    beta: float
    gamma: float
    delta: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def unique_histories(frequency: ArrayLike, recency: ArrayLike, n_periods: ArrayLike) -> Histories:
    """The distinct (x, t_x, n) and, for each customer, the index of its history. Checks 0 <= x <= t_x <= n
    (x >= 1 when t_x >= 1) with whole numbers."""
    fx, ft, fn = (np.asarray(v, dtype=np.float64) for v in (frequency, recency, n_periods))
    whole = np.isfinite(fx) & np.isfinite(ft) & np.isfinite(fn) & (fx == np.floor(fx)) & (ft == np.floor(ft))
    valid = whole & (fn == np.floor(fn)) & (fx >= 0) & (fx <= ft) & (ft <= fn) & ((fx > 0) | (ft == 0))
    if not np.all(valid):
        raise ValueError("BG/BB histories need whole numbers with 0 <= frequency <= recency <= n_periods")
    x, t_x, n = np.broadcast_arrays(fx.astype(np.int64), ft.astype(np.int64), fn.astype(np.int64))
    base = int(n.max(initial=0)) + 1
    if base > 2_000_000:  # the packed key below would overflow int64
        rows, inverse = np.unique(np.stack([x, t_x, n], axis=-1).reshape(-1, 3), axis=0, return_inverse=True)
        return rows[:, 0], rows[:, 1], rows[:, 2], inverse.reshape(x.shape).astype(np.int64)
    # One int64 key per history: sorting 1M keys takes ~0.1 s, np.unique(axis=0) ~5 s.
    keys, inverse = np.unique(((n * base + t_x) * base + x).reshape(-1), return_inverse=True)
    return keys % base, keys // base % base, keys // base // base, inverse.reshape(x.shape).astype(np.int64)


def _terms(params: BetaGeoBetaBinomParams, x: IntArray, t_x: IntArray, n: IntArray) -> tuple[FloatArray, FloatArray]:
    """Log-terms of FHS (2010) eq. 5 without the normalising betas: alive through n (column 0) and inactive
    from opportunity s + 1, s = t_x..n-1 (other columns, -inf where s is outside that range)."""
    a, b, g, d = params.alpha, params.beta, params.gamma, params.delta
    s = np.arange(int(n.max(initial=0)))[None, :]
    inside = (s >= t_x[:, None]) & (s < n[:, None])
    s_ok = np.where(inside, s, t_x[:, None])  # keeps every betaln argument positive
    alive = betaln(a + x, b + n - x) + betaln(g, d + n)
    died = betaln(a + x[:, None], b + s_ok - x[:, None]) + betaln(g + 1, d + s_ok)
    return alive, np.where(inside, died, -np.inf)


def _log_likelihood_histories(params: BetaGeoBetaBinomParams, x: IntArray, t_x: IntArray, n: IntArray) -> FloatArray:
    alive, died = _terms(params, x, t_x, n)
    norm = betaln(params.alpha, params.beta) + betaln(params.gamma, params.delta)
    return np.asarray(logsumexp(np.column_stack([alive, died]), axis=1) - norm, dtype=np.float64)


def log_likelihood_rows(
    params: BetaGeoBetaBinomParams, frequency: ArrayLike, recency: ArrayLike, n_periods: ArrayLike
) -> FloatArray:
    """Each history's log-likelihood (FHS 2010, eq. 5)."""
    x, t_x, n, inverse = unique_histories(frequency, recency, n_periods)
    return _log_likelihood_histories(params, x, t_x, n)[inverse]


def log_likelihood(
    params: BetaGeoBetaBinomParams,
    frequency: ArrayLike,
    recency: ArrayLike,
    n_periods: ArrayLike,
    weights: ArrayLike | None = None,
) -> float:
    """Total log-likelihood (weighted by the customers sharing each history)."""
    per_row = log_likelihood_rows(params, frequency, recency, n_periods)
    w = np.ones_like(per_row) if weights is None else np.asarray(weights, dtype=np.float64)
    return float(np.sum(w * per_row))


def p_alive(
    params: BetaGeoBetaBinomParams,
    frequency: ArrayLike,
    recency: ArrayLike,
    n_periods: ArrayLike,
    m_periods_ahead: int = 0,
) -> FloatArray:
    """P(active at opportunity n + m | x, t_x, n) (FHS 2010, eq. 11 is m = 1; lifetimes'
    ``conditional_probability_alive``). m = 0 is "still active at the end of observation" (exactly 1 for a
    purchase at the n-th opportunity: the ratio of logs, which can round to 1 + 1e-15 there, is capped at 1)."""
    x, t_x, n, inverse = unique_histories(frequency, recency, n_periods)
    a, b, g, d = params.alpha, params.beta, params.gamma, params.delta
    alive = betaln(a + x, b + n - x) + betaln(g, d + n + m_periods_ahead) - betaln(a, b) - betaln(g, d)
    probability = np.minimum(np.exp(alive - _log_likelihood_histories(params, x, t_x, n)), 1.0)  # 1 + 1e-15 at t_x = n
    return np.asarray(probability[inverse], dtype=np.float64)


def expected_transactions(
    params: BetaGeoBetaBinomParams,
    horizon: ArrayLike,
    frequency: ArrayLike,
    recency: ArrayLike,
    n_periods: ArrayLike,
) -> FloatArray:
    """E[X(n, n + n*) | x, t_x, n]: expected transactions in the next n* opportunities (FHS 2010, eq. 13).

    Written as P(active at n) * E[p | active] * sum_{k=1..n*} S(n + k) / S(n), with the dropout survival of
    the sBG(gamma, delta): equal to eq. 13, but without its delta / (gamma - 1), which is 0/0 at gamma = 1.
    """
    x, t_x, n, inverse = unique_histories(frequency, recency, n_periods)
    ahead = sbg.whole_periods(horizon, "horizon")
    alive = p_alive(params, x, t_x, n)
    buy = (params.alpha + x) / (params.alpha + params.beta + n)
    dropout = sbg.ShiftedBetaGeoParams(params.gamma, params.delta)
    if ahead.ndim == 0:
        survive = sbg.expected_remaining_lifetime(dropout, n, ahead)
        return np.asarray((alive * buy * survive)[inverse], dtype=np.float64)
    ahead, rows = np.broadcast_arrays(ahead, inverse)
    survive = sbg.expected_remaining_lifetime(dropout, n[rows], ahead)
    return np.asarray((alive * buy)[rows] * survive, dtype=np.float64)


def discounted_transactions(
    params: BetaGeoBetaBinomParams,
    horizon: int,
    rate_per_period: float,
    frequency: ArrayLike,
    recency: ArrayLike,
    n_periods: ArrayLike,
) -> FloatArray:
    """sum_{k=1..horizon} (E[X(n, n + k)] - E[X(n, n + k - 1)]) / (1 + r)^k: the expected transactions of the
    next ``horizon`` opportunities, the k-th discounted k periods at ``rate_per_period`` r >= 0 (r = 0: eq. 13).

    The k-th term is P(active at n) * E[p | active] * S(n + k) / S(n) / (1 + r)^k (see
    :func:`expected_transactions`), so the sum is P(active at n) * E[p | active] * DERL(r | gamma, delta, n)
    / (1 + r), DERL of at most ``horizon`` payments (:func:`models.sbg.derl`): one pass per distinct history.
    """
    x, t_x, n, inverse = unique_histories(frequency, recency, n_periods)
    alive = p_alive(params, x, t_x, n)
    buy = (params.alpha + x) / (params.alpha + params.beta + n)
    dropout = sbg.ShiftedBetaGeoParams(params.gamma, params.delta)
    ahead = sbg.derl(dropout, rate_per_period, n, sbg.whole_periods(horizon, "horizon")) / (1.0 + rate_per_period)
    return np.asarray((alive * buy * ahead)[inverse], dtype=np.float64)


def expected_transactions_new_customer(params: BetaGeoBetaBinomParams, n_periods: ArrayLike) -> FloatArray:
    """E[X(n)] = alpha / (alpha + beta) * sum_{k=1..n} S(k): a new customer's transactions in n opportunities
    (FHS 2010, eq. 9, without its 0/0 at gamma = 1)."""
    survive = sbg.expected_remaining_lifetime(sbg.ShiftedBetaGeoParams(params.gamma, params.delta), 0, n_periods)
    return np.asarray(params.alpha / (params.alpha + params.beta) * survive, dtype=np.float64)


def transaction_count_pmf(params: BetaGeoBetaBinomParams, counts: ArrayLike, n_periods: ArrayLike) -> FloatArray:
    """P(X(n) = x): a new customer's chance of x transactions in n opportunities (FHS 2010, eq. 7)."""
    x_in, n_in = np.broadcast_arrays(sbg.whole_periods(counts, "counts"), sbg.whole_periods(n_periods, "n_periods"))
    x, n = x_in.reshape(-1), n_in.reshape(-1)
    a, b, g, d = params.alpha, params.beta, params.gamma, params.delta
    rest = np.maximum(n - x, 0)
    alive = gammaln(n + 1) - gammaln(x + 1) - gammaln(rest + 1) + betaln(a + x, b + rest) + betaln(g, d + n)
    i = np.arange(int(n.max(initial=0)))[None, :]
    inside = (i >= x[:, None]) & (i < n[:, None])
    i_ok = np.where(inside, i, x[:, None])
    died = gammaln(i_ok + 1) - gammaln(x[:, None] + 1) - gammaln(i_ok - x[:, None] + 1)
    died = died + betaln(a + x[:, None], b + i_ok - x[:, None]) + betaln(g + 1, d + i_ok)
    terms = np.column_stack([np.where(x <= n, alive, -np.inf), np.where(inside, died, -np.inf)])
    total = logsumexp(terms, axis=1) - betaln(a, b) - betaln(g, d)
    return np.asarray(np.exp(total).reshape(x_in.shape), dtype=np.float64)


def _log_likelihood_and_gradient(
    params: BetaGeoBetaBinomParams, x: IntArray, t_x: IntArray, n: IntArray, w: FloatArray
) -> tuple[float, FloatArray]:
    """Weighted total and its gradient: each history's terms weighted by their softmax share, with
    d/da betaln(a + p, b + q) = psi(a + p) - psi(a + b + p + q)."""
    a, b, g, d = params.alpha, params.beta, params.gamma, params.delta
    alive, died = _terms(params, x, t_x, n)
    log_l = logsumexp(np.column_stack([alive, died]), axis=1)
    share_alive = np.exp(alive - log_l)
    share_died = np.exp(died - log_l[:, None])
    s = np.arange(died.shape[1])[None, :]
    s_ok = np.where(share_died > 0, s, t_x[:, None])
    xs = x[:, None]

    def mix(on_alive: FloatArray, on_died: FloatArray) -> float:
        return float(w @ (share_alive * on_alive + np.sum(share_died * on_died, axis=1)))

    grad = np.array(
        [
            mix(digamma(a + x) - digamma(a + b + n), digamma(a + xs) - digamma(a + b + s_ok)),
            mix(digamma(b + n - x) - digamma(a + b + n), digamma(b + s_ok - xs) - digamma(a + b + s_ok)),
            mix(digamma(g) - digamma(g + d + n), digamma(g + 1) - digamma(g + d + s_ok + 1)),
            mix(digamma(d + n) - digamma(g + d + n), digamma(d + s_ok) - digamma(g + d + s_ok + 1)),
        ]
    )
    total_w = float(w.sum())
    grad -= total_w * np.array(
        [
            digamma(a) - digamma(a + b),
            digamma(b) - digamma(a + b),
            digamma(g) - digamma(g + d),
            digamma(d) - digamma(g + d),
        ]
    )
    ll = float(w @ log_l) - total_w * (betaln(a, b) + betaln(g, d))
    return ll, grad


@dataclass(frozen=True)
class BGBBFit:
    params: BetaGeoBetaBinomParams
    standard_errors: dict[str, float]
    stats: FitStatistics
    n_unique_rows: int
    at_bound: tuple[str, ...]
    penalizer: float = 0.0
    remedy: str = ""
    """Why the fit is penalized (empty for the plain maximum-likelihood fit)."""


def fit_bgbb(
    frequency: ArrayLike,
    recency: ArrayLike,
    n_periods: ArrayLike,
    weights: ArrayLike | None = None,
    penalizer: float = 0.0,
) -> BGBBFit:
    """Maximum likelihood on the weighted distinct histories (analytic gradient, Hessian standard errors).

    ``weights`` counts the customers of each row (as in lifetimes' ``donations.csv``); rows are merged first.
    ``penalizer``: lifetimes' L2 penalty, ``penalizer * (alpha^2 + beta^2 + gamma^2 + delta^2)`` on the mean
    log-likelihood per customer; the statistics are the unpenalized log-likelihood's.
    """
    from models.fitted import FitError, FitStatistics
    from models.positive_mle import maximize_log_likelihood

    x, t_x, n, inverse = unique_histories(frequency, recency, n_periods)
    row_weights = np.ones(inverse.size) if weights is None else np.asarray(weights, dtype=np.float64).reshape(-1)
    w = np.bincount(inverse.reshape(-1), row_weights, minlength=len(x)).astype(np.float64)
    if w.sum() <= 0:
        raise FitError("BG/BB: no customers to fit")

    customers = float(w.sum())

    def objective(values: FloatArray) -> tuple[float, FloatArray]:
        ll, gradient = _log_likelihood_and_gradient(BetaGeoBetaBinomParams(*values), x, t_x, n, w)
        if penalizer:
            ll -= penalizer * customers * float(np.sum(values**2))
            gradient = gradient - 2 * penalizer * customers * values
        return ll, gradient

    names = ("alpha", "beta", "gamma", "delta")
    found = maximize_log_likelihood(objective, names, customers, "BG/BB")
    params = BetaGeoBetaBinomParams(**found.values)
    log_likelihood = _log_likelihood_and_gradient(params, x, t_x, n, w)[0] if penalizer else found.log_likelihood
    return BGBBFit(
        params=params,
        standard_errors=found.standard_errors,
        stats=FitStatistics(log_likelihood, round(customers), 4),
        n_unique_rows=len(x),
        at_bound=found.at_bound,
        penalizer=penalizer,
    )


def fit_bgbb_with_remedies(
    frequency: ArrayLike, recency: ArrayLike, n_periods: ArrayLike, penalizers: tuple[float, ...]
) -> BGBBFit:
    """The plain fit; when it does not converge (a feed with little heterogeneity sends the Beta shapes to
    infinity), the smallest of ``penalizers`` (``fit.remedies.penalizers``) whose fit converges, with the
    reason in :attr:`BGBBFit.remedy`. FitError when none does."""
    from models.fitted import FitError

    try:
        return fit_bgbb(frequency, recency, n_periods)
    except FitError as exc:
        failure = str(exc).splitlines()[0].split(" (")[0]  # without the optimiser's message and parameters
    for penalizer in sorted(penalizers):
        try:
            fit = fit_bgbb(frequency, recency, n_periods, penalizer=penalizer)
        except FitError:
            continue
        return replace(fit, remedy=f"penalizer {penalizer:g} ({failure})")
    raise FitError(f"{failure}; no penalizer of {list(penalizers)} gave a fit either")


def bgbb_pymc_model(
    frequency: ArrayLike,
    recency: ArrayLike,
    n_periods: ArrayLike,
    weights: ArrayLike | None = None,
    priors: Literal["flat", "pymc_marketing"] = "flat",
) -> Any:
    """A PyMC model on the distinct histories with pymc-marketing's ``BetaGeoBetaBinom`` likelihood, each
    history weighted by its customers (``pm.Potential``). ``flat``: HalfFlat priors (MAP = maximum
    likelihood); ``pymc_marketing``: ``BetaGeoBetaBinomModel``'s defaults (phi ~ Uniform(0, 1),
    kappa ~ Pareto(1, 1) for the purchase and the dropout Beta)."""
    import pymc as pm
    from pymc_marketing.clv.distributions import BetaGeoBetaBinom

    x, t_x, n, inverse = unique_histories(frequency, recency, n_periods)
    row_weights = np.ones(inverse.size) if weights is None else np.asarray(weights, dtype=np.float64).reshape(-1)
    w = np.bincount(inverse.reshape(-1), row_weights, minlength=len(x)).astype(np.float64)
    with pm.Model() as model:
        if priors == "flat":
            alpha, beta, gamma, delta = (pm.HalfFlat(k) for k in ("alpha", "beta", "gamma", "delta"))
        else:
            shapes = {}
            for part, (first, second) in {"purchase": ("alpha", "beta"), "dropout": ("gamma", "delta")}.items():
                phi = pm.Uniform(f"phi_{part}", lower=0, upper=1)
                kappa = pm.Pareto(f"kappa_{part}", alpha=1, m=1)
                shapes[first] = pm.Deterministic(first, phi * kappa)
                shapes[second] = pm.Deterministic(second, (1 - phi) * kappa)
            alpha, beta, gamma, delta = (shapes[k] for k in ("alpha", "beta", "gamma", "delta"))
        dist = BetaGeoBetaBinom.dist(alpha=alpha, beta=beta, gamma=gamma, delta=delta, T=n)  # type: ignore[no-untyped-call]
        pm.Potential("likelihood", (w * pm.logp(dist, np.column_stack([t_x, x]))).sum())
    return model
