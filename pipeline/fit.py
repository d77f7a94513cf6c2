"""Fit stage: a registered purchase model (BG/NBD, MBG/NBD, Pareto/NBD, a plug-in) and a spend model, by
MLE, MAP or MCMC.

Maximum-likelihood fits that fail or degenerate go through the remedies of ``fit.remedies`` in a fixed
order, and every attempt is recorded; when nothing works for the purchase model the error says what in
the data causes it. The spend model (:mod:`pipeline.spend_fit`) never stops the job: Gamma-Gamma, or the
pooled mean spend with the recorded reason, or no spend model at all (``fit.spend_model: none``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from models import gamma_gamma, purchase, registry
from models.bayes import fit_gamma_gamma_bayes, fit_purchase_bayes_histories
from models.bundle import CLVModelParams, PosteriorDraws, ScoringSpec
from models.fitted import FitError, FitStatistics, PurchaseFit, SpendFit
from models.gamma_gamma_fit import SpendData
from models.histories import unique_histories
from models.mle import fit_purchase_histories
from models.purchase import LABELS, PurchaseParams, holdout_log_likelihood
from models.pymc_fit import BayesFit, Diagnostics, Method, Sampler
from models.spend import SpendModel
from models.spend_spread import SpreadTest
from pipeline.attempts import FitAttempt as FitAttempt
from pipeline.config import CandidateConfig, FitConfig, RemediesConfig
from pipeline.errors import InputError
from pipeline.spend_fit import SpendOutcome, fit_spend, pooled_mean_outcome, spend_problem

__all__ = [
    "MIN_CUSTOMERS",
    "MIN_REPEAT_CUSTOMERS",
    "FitAttempt",
    "FitInput",
    "FittedModels",
    "HoldoutScore",
    "data_diagnosis",
    "fit",
    "fit_histories",
    "fit_input",
    "fit_spend_model",
    "holdout_scorer",
]

MIN_CUSTOMERS = 10
"""BG/NBD has four parameters and Gamma-Gamma three: fewer customers than this cannot identify them."""
MIN_REPEAT_CUSTOMERS = 3


@dataclass(frozen=True)
class FittedModels:
    purchase: PurchaseFit
    spend: SpendFit | None
    """Gamma-Gamma or the pooled mean spend; None with ``fit.spend_model: none``."""
    spend_frequency_correlation: float
    """Pearson correlation of frequency and monetary_value among repeat customers: Gamma-Gamma assumes ~0."""
    method: str = "mle"
    attempts: tuple[FitAttempt, ...] = ()
    """The purchase model's maximum-likelihood attempts, in order; the last ``ok`` one (or the chosen
    penalizer) is used."""
    chosen: FitAttempt | None = None
    diagnostics: Diagnostics | None = None
    posterior: PosteriorDraws | None = None
    spend_attempts: tuple[FitAttempt, ...] = ()
    """The spend model's attempts, in order, ending with the one used (see :mod:`pipeline.spend_fit`)."""
    spend_fallback: str = ""
    """Why the pooled mean spend replaced Gamma-Gamma; "" when it did not."""
    spread_test: SpreadTest | None = None
    """The likelihood-ratio test of spend heterogeneity (None when it was not run)."""

    @property
    def model(self) -> str:
        return self.purchase.model

    @property
    def spend_model(self) -> SpendModel:
        """``gamma_gamma``, ``pooled_mean`` or ``none``."""
        return "none" if self.spend is None else self.spend.model

    @property
    def candidate(self) -> str:
        return f"{self.model}_{self.method}"

    def bundle(self, spec: ScoringSpec) -> CLVModelParams:
        spend = None if self.spend is None else self.spend.params
        return CLVModelParams(purchase=self.purchase.params, spend=spend, spec=spec, posterior=self.posterior)

    def params(self) -> dict[str, float]:
        spend = {} if self.spend is None else self.spend.params.as_dict()
        return {**self.purchase.params.as_dict(), **spend}


def _degenerate(params: PurchaseParams, remedies: RemediesConfig) -> str:
    """A shape parameter of the model (not a rate) outside [min_shape, max_shape]: the fit ran off."""
    values = params.as_dict()
    for name in registry.of_params(params).shapes:
        if not remedies.min_shape <= values[name] <= remedies.max_shape:
            return f"{name} ran off to {values[name]:.3g}"
    return ""


def data_diagnosis(histories: pd.DataFrame) -> str:
    """What in the data tends to make purchase models unidentifiable, in words (from weighted histories)."""
    weight = histories["weight"].to_numpy(dtype=np.float64)
    repeat = histories[histories["frequency"] > 0]
    repeat_weight = repeat["weight"].to_numpy(dtype=np.float64)
    parts = [f"{int(weight.sum())} customers, {int(repeat_weight.sum())} with a repeat purchase"]
    if len(repeat):
        late_rows = ((repeat["T"] - repeat["recency"]) <= 0.05 * repeat["T"]).to_numpy()
        late = float(repeat_weight[late_rows].sum() / repeat_weight.sum())
        parts.append(
            f"{late:.0%} of repeat buyers bought in the last 5% of their observed time (little sign of dropout)"
        )
        order = np.argsort(repeat["frequency"].to_numpy(), kind="stable")
        cumulative = np.cumsum(repeat_weight[order])
        median = repeat["frequency"].to_numpy()[order][np.searchsorted(cumulative, cumulative[-1] / 2)]
        parts.append(f"median frequency of repeat buyers {float(median):g}")
    if len(histories) and (histories["T"] == histories["T"].iloc[0]).all():
        parts.append("every customer has the same age T")
    return "; ".join(parts)


HoldoutScore = Callable[[PurchaseParams], float]
"""The holdout log-likelihood of a calibration fit's parameters (see pipeline.validate)."""


def _mle_attempt(
    model: str,
    histories: pd.DataFrame,
    remedy: str,
    penalizer: float,
    restart: bool,
    remedies: RemediesConfig,
    warm: dict[str, float] | None = None,
) -> tuple[FitAttempt, PurchaseFit | None]:
    try:
        fitted = fit_purchase_histories(model, histories, penalizer, "median_age" if restart else "default", warm)
    except (FitError, np.linalg.LinAlgError, ValueError) as exc:
        return FitAttempt(remedy, penalizer, "failed", str(exc).splitlines()[0], restart=restart), None
    problem = _degenerate(fitted.params, remedies)
    outcome = "degenerate" if problem else "ok"
    return FitAttempt(remedy, penalizer, outcome, problem, fitted.stats.log_likelihood, restart=restart), fitted


def _fit_purchase_mle(
    model: str,
    histories: pd.DataFrame,
    config: FitConfig,
    holdout_score: HoldoutScore | None,
    reuse: FitAttempt | None,
    warm_start: PurchaseParams | None = None,
) -> tuple[PurchaseFit, tuple[FitAttempt, ...], FitAttempt]:
    """Plain fit, then the restart, then the penalizer path chosen by holdout log-likelihood."""
    attempts: list[FitAttempt] = []
    if reuse is not None:  # repeat what worked on the calibration period: from its optimum, then the remedy's start
        for warm in (warm_start.as_dict(), None) if warm_start is not None else (None,):
            attempt, fitted = _mle_attempt(
                model, histories, reuse.remedy, reuse.penalizer, reuse.restart, config.remedies, warm
            )
            if attempt.outcome == "ok" and fitted is not None:
                return fitted, (attempt,), attempt
            attempts.append(replace(attempt, remedy=f"{reuse.remedy} (warm start)") if warm else attempt)
    plain, fitted = _mle_attempt(model, histories, "plain", config.purchase_penalizer, False, config.remedies)
    attempts.append(plain)
    if plain.outcome == "ok" and fitted is not None:
        return fitted, tuple(attempts), plain
    if config.remedies.restart:
        restart, fitted = _mle_attempt(model, histories, "restart", config.purchase_penalizer, True, config.remedies)
        attempts.append(restart)
        if restart.outcome == "ok" and fitted is not None:
            return fitted, tuple(attempts), restart
    best: tuple[float, FitAttempt, PurchaseFit] | None = None
    for penalizer in config.remedies.penalizers:
        attempt, fitted = _mle_attempt(model, histories, f"penalizer {penalizer:g}", penalizer, False, config.remedies)
        if fitted is not None and holdout_score is not None:
            attempt = replace(attempt, holdout_log_likelihood=holdout_score(fitted.params))
        attempts.append(attempt)
        if attempt.outcome == "ok" and fitted is not None:
            score = attempt.holdout_log_likelihood if holdout_score is not None else attempt.log_likelihood
            if best is None or score > best[0]:
                best = (score, attempt, fitted)
    if best is None:
        tried = "; ".join(f"{a.remedy}: {a.outcome} ({a.message})" for a in attempts)
        raise FitError(
            f"{LABELS[model]} could not be fitted after {len(attempts)} attempts [{tried}]. "
            f"In the data: {data_diagnosis(histories)}"
        )
    return best[2], tuple(attempts), best[1]


def _worst(a: Diagnostics | None, b: Diagnostics | None) -> Diagnostics | None:
    if a is None or b is None:
        return a or b
    return Diagnostics(
        max(a.max_rhat, b.max_rhat),
        min(a.min_ess_bulk, b.min_ess_bulk),
        min(a.min_ess_tail, b.min_ess_tail),
        a.divergences + b.divergences,
    )


def _bayes_stats(ll: float, n: int, k: int) -> FitStatistics:
    return FitStatistics(log_likelihood=ll, n_observations=n, n_params=k)


@dataclass(frozen=True)
class FitInput:
    """What the fit needs, on either engine: the unique (frequency, recency, T) ``histories`` with their
    ``weight`` (sorted as ``unique_histories`` sorts them), the repeat customers' ``frequency`` and
    ``monetary_value``, and for a calibration fit the holdout log-likelihood of candidate parameters."""

    histories: pd.DataFrame
    repeat: pd.DataFrame
    holdout_score: HoldoutScore | None = None
    info: dict[str, float] = field(default_factory=dict)


def fit_input(customers: pd.DataFrame, holdout_full: pd.DataFrame | None = None) -> FitInput:
    """The fit's input from a per-customer summary; ``holdout_full`` (the full-history summary of the same
    customers) adds the holdout score that the penalizer path ranks by."""
    histories = unique_histories(customers["frequency"], customers["recency"], customers["T"])
    if "monetary_value" in customers.columns:  # the two columns taken, then the rows: not a copy of every column
        repeat = customers[["frequency", "monetary_value"]]
        repeat = repeat.loc[(repeat["frequency"] > 0) & (repeat["monetary_value"] > 0)]
    else:  # a feed without amounts: no spend data (fit.spend_model: none)
        repeat = pd.DataFrame({"frequency": pd.Series(dtype=float), "monetary_value": pd.Series(dtype=float)})
    holdout_score = None if holdout_full is None else holdout_scorer(customers, holdout_full)
    return FitInput(histories, repeat, holdout_score)


def holdout_scorer(calibration: pd.DataFrame, full: pd.DataFrame) -> HoldoutScore:
    """The holdout log-likelihood of candidate parameters on these customers (what the penalizer path ranks)."""

    def holdout_score(params: PurchaseParams) -> float:
        return holdout_log_likelihood(params, calibration, full)

    return holdout_score


def fit(
    customers: pd.DataFrame,
    config: FitConfig,
    label: str = "calibration",
    candidate: CandidateConfig | None = None,
    holdout_full: pd.DataFrame | None = None,
    reuse: FitAttempt | None = None,
) -> FittedModels:
    """Fit the purchase and spend models on a per-customer summary; an unfittable one is an InputError.

    ``holdout_full`` (the full-history summary) lets the penalizer path pick by holdout log-likelihood;
    ``reuse`` repeats a calibration attempt's remedy for the production refit.
    """
    return fit_histories(fit_input(customers, holdout_full), config, label, candidate, reuse)


def fit_histories(
    data: FitInput,
    config: FitConfig,
    label: str = "calibration",
    candidate: CandidateConfig | None = None,
    reuse: FitAttempt | None = None,
    warm_start: PurchaseParams | None = None,
) -> FittedModels:
    """Fit from a :class:`FitInput` (what a distributed prepare collects, or :func:`fit_input`): the same
    numbers as :func:`fit` on the per-customer summary; ``warm_start``: the ``reuse`` refit starts there first.

    ``config.spend_model``: ``gamma_gamma`` (with the remedies and the pooled-mean fallback of
    :mod:`pipeline.spend_fit`), ``pooled_mean`` (the pooled mean without trying Gamma-Gamma) or ``none``
    (no spend model: the repeat spend is not needed)."""
    candidate = candidate or config.candidate_list()[0]
    histories, repeat = data.histories, data.repeat
    customers = int(histories["weight"].sum())
    repeaters = int(histories.loc[histories["frequency"] > 0, "weight"].sum())
    spend_model = config.spend_model or "gamma_gamma"
    if repeaters == 0:
        models_named = "the purchase model" if spend_model == "none" else "the purchase and spend models"
        raise InputError(f"{label}: no customer has a repeat purchase, so {models_named} cannot be fitted")
    if customers < MIN_CUSTOMERS or repeaters < MIN_REPEAT_CUSTOMERS:
        raise InputError(
            f"{label}: too few customers to fit ({customers} customers, {repeaters} with a repeat purchase; "
            f"need at least {MIN_CUSTOMERS} and {MIN_REPEAT_CUSTOMERS})"
        )
    f, m = repeat["frequency"].to_numpy(dtype=np.float64), repeat["monetary_value"].to_numpy(dtype=np.float64)
    try:
        if candidate.method == "mle":
            purchase_fit, attempts, chosen = _fit_purchase_mle(
                candidate.model, histories, config, data.holdout_score, reuse, warm_start
            )
            result = FittedModels(purchase_fit, None, float("nan"), "mle", attempts, chosen)
            spend = fit_spend_model(spend_model, f, m, config)
        else:
            result, spend = _fit_bayes(histories, f, m, config, candidate, spend_model)
    except FitError as exc:
        raise InputError(f"{label}: {exc}") from None
    except (np.linalg.LinAlgError, ValueError) as exc:  # e.g. a singular Hessian for the standard errors
        raise InputError(f"{label}: the models could not be fitted to this data ({exc})") from None
    correlation = float(np.corrcoef(f, m)[0, 1]) if len(f) > 2 and np.ptp(f) > 0 and np.ptp(m) > 0 else float("nan")
    if spend is None:
        return replace(result, spend_frequency_correlation=correlation)
    return replace(
        result,
        spend=spend.fit,
        spend_frequency_correlation=correlation,
        spend_attempts=spend.attempts,
        spend_fallback=spend.fallback,
        spread_test=spend.spread_test,
    )


def fit_spend_model(spend_model: str, f: np.ndarray, m: np.ndarray, config: FitConfig) -> SpendOutcome | None:
    """The spend model by maximum likelihood, or the configured pooled mean, or none (``spend_model``: the
    resolved ``fit.spend_model``); the discrete job's spend model too."""
    if spend_model == "none":
        return None
    if spend_model == "pooled_mean":
        keep = (f > 0) & (m > 0)
        data = SpendData.from_arrays(f[keep], m[keep]) if keep.any() else None
        return pooled_mean_outcome(data, "configured (fit.spend_model: pooled_mean)", [])
    return fit_spend(f, m, config.spend_penalizer, config.remedies)


def _fit_bayes(
    histories: pd.DataFrame,
    f: np.ndarray,
    m: np.ndarray,
    config: FitConfig,
    candidate: CandidateConfig,
    spend_model: str,
) -> tuple[FittedModels, SpendOutcome | None]:
    """MAP or MCMC. The spend model is decided by maximum likelihood first (remedies, spread test): PyMC
    fits Gamma-Gamma only where spend is heterogeneous, and a degenerate PyMC result falls back too."""
    method: Method = "map" if candidate.method == "map" else "mcmc"
    sampler = Sampler(**config.mcmc.model_dump())
    params, purchase_bayes, n_unique = fit_purchase_bayes_histories(
        candidate.model, histories, method, config.priors, sampler
    )
    problem = _degenerate(params, config.remedies)
    if problem:
        raise FitError(
            f"{LABELS[candidate.model]} ({candidate.method}): {problem}. In the data: {data_diagnosis(histories)}"
        )
    spend, spend_bayes = _bayes_spend(spend_model, f, m, config, method, sampler)
    weight = histories["weight"]
    purchase_fit = PurchaseFit(
        params=params,
        standard_errors=purchase_bayes.posterior_sd,
        stats=_bayes_stats(
            purchase.log_likelihood(params, histories["frequency"], histories["recency"], histories["T"], weight),
            int(weight.sum()),
            len(params.as_dict()),
        ),
        n_unique_rows=n_unique,
    )
    fitted = FittedModels(
        purchase_fit,
        None,
        float("nan"),
        candidate.method,
        diagnostics=_worst(purchase_bayes.diagnostics, None if spend_bayes is None else spend_bayes.diagnostics),
        posterior=_posterior(purchase_bayes, spend_bayes, config.interval),
    )
    return fitted, spend


def _bayes_spend(
    spend_model: str, f: np.ndarray, m: np.ndarray, config: FitConfig, method: Method, sampler: Sampler
) -> tuple[SpendOutcome | None, BayesFit | None]:
    decided = fit_spend_model(spend_model, f, m, config)
    if decided is None or decided.fit.model != "gamma_gamma":
        return decided, None
    keep = (f > 0) & (m > 0)
    data = SpendData.from_arrays(f[keep], m[keep])
    attempts = list(decided.attempts)
    try:
        params, spend_bayes = fit_gamma_gamma_bayes(f, m, method, sampler)
        problem = spend_problem(params, data.scale, config.remedies)
    except FitError as exc:
        params, spend_bayes, problem = None, None, str(exc).splitlines()[0]
    if problem or params is None or spend_bayes is None:
        attempts.append(FitAttempt(f"pymc {method}", 0.0, "degenerate", problem))
        return pooled_mean_outcome(data, f"Gamma-Gamma ({method}): {problem}", attempts, decided.spread_test), None
    stats = _bayes_stats(gamma_gamma.log_likelihood(params, data.x, data.y * data.scale / data.x), int(data.n), 3)
    attempts.append(FitAttempt(f"pymc {method}", 0.0, "ok", "", stats.log_likelihood))
    fit = SpendFit(params=params, standard_errors=spend_bayes.posterior_sd, stats=stats)
    return replace(decided, fit=fit, attempts=tuple(attempts), chosen=attempts[-1]), spend_bayes


def _posterior(
    purchase_fit: BayesFit, spend_fit: BayesFit | None, interval: tuple[float, float]
) -> PosteriorDraws | None:
    """Joint draws for MCMC; without Gamma-Gamma draws (the pooled mean, or no spend model) only the
    purchase model's."""
    if purchase_fit.draws is None:
        return None
    spend = {} if spend_fit is None or spend_fit.draws is None else spend_fit.draws
    return PosteriorDraws(purchase=purchase_fit.draws, spend=spend, interval=interval)
