"""Fit and judge the sBG on a subscription feed: per-cohort fits, the holdout survival curves, baselines, gate.

- **Fit**: one sBG per acquisition cohort by maximum likelihood (:func:`models.sbg.fit_sbg_cohorts`); a
  cohort with fewer than :data:`MIN_COHORT_DECISIONS` renewal decisions observed or fewer than
  :data:`MIN_COHORT_SIZE` subscribers, or whose fit ran to a bound, is scored with the pooled fit. With
  ``fit.method: map`` or ``mcmc`` the pooled fit and the same cohorts are then refitted together with PyMC
  (:func:`models.sbg_bayes.fit_sbg_pymc`, ``fit.priors``, ``fit.mcmc``): the MAP, or the posterior means with
  the MCMC diagnostics (checked against ``fit.diagnostics`` by the workflow's gate). ``standard_errors``: the
  MLE's (Hessian); after ``mcmc`` the posterior sd; after ``map`` the MLE's with flat priors (the MAP is then the
  MLE) and NaN with ``pymc_marketing`` priors (a penalized fit: no maximum-likelihood standard errors).
- **Holdout** (the periods after ``prepare.calibration_end``): for each cohort, the observed survival
  S(t) = share of the subscribers whose t-th renewal had come due by the observation end who made it,
  at every t beyond the decisions observed in calibration (cells with at least :data:`MIN_CELL`
  subscribers). ``survival_mape``: the mean absolute percentage error of the model's projected S(t)
  over those cells; ``survival_mape_by_cohort`` in the table. A cell where no subscriber made it (S(t) = 0, common
  late in a small cohort) has its error divided by one subscriber's share, 1 / at_risk (what the cell can tell),
  not by 0, which made every MAPE infinite and the gate's comparison meaningless; counted in
  ``holdout_cells_without_survivors`` (every other cell's error is unchanged: its S(t) is at least that share).
- **Baselines**: ``last_period`` carries each cohort's last calibration retention rate forward
  (S(a) r^(t - a)); ``average_lifetime`` is the traditional average revenue x average lifetime, i.e. one
  churn rate for everyone (churned / decisions in calibration), S(t) = (1 - c)^t.
- ``churn_auc``: per active subscriber at the calibration end, the model's churn risk over the holdout
  decisions against "churned in the holdout" (the Mann-Whitney AUC).
- **Gate**: ``beats_historical_baseline`` (survival MAPE below every baseline's by more than :data:`TIE`, relative:
  at the geometric limit, alpha and beta run off together, the sBG is the ``average_lifetime`` baseline and their
  MAPEs differ in the 9th digit, either way) and
  ``churn_auc_higher_than_0.5``; and (:func:`calibration_checks`) a calibration that can tell the sBG's two
  parameters apart: ``calibration_decision_depth_at_least_2`` (at least :data:`MIN_CELL` subscribers came to a
  second renewal decision: with first decisions only, the data hold the mean churn alone, alpha / (alpha + beta),
  and the curve beyond is the optimiser's stopping point) and ``calibration_churned_at_least_1`` (with no churn
  the fit runs alpha to its bound, 1e-9, a model of no churn). The metrics ``calibration_decisions`` (renewal
  decisions made in calibration), ``calibration_churned`` and ``calibration_decision_depth`` are recorded.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from models import sbg
from models.fitted import FitStatistics
from models.pymc_fit import Diagnostics, Sampler
from pipeline.config.fit import FitConfig
from pipeline.gate import Check, GateResult

__all__ = [
    "BASELINES",
    "MIN_CELL",
    "MIN_COHORT_DECISIONS",
    "MIN_COHORT_SIZE",
    "TIE",
    "CohortFits",
    "SubscriptionValidation",
    "auc",
    "calibration_checks",
    "decision_depth",
    "fit_cohorts",
    "holdout_reach",
    "observed_survival",
    "subscription_gate",
    "validate_subscriptions",
]

MIN_COHORT_DECISIONS = 3
MIN_COHORT_SIZE = 50
MIN_CELL = 20
BASELINES = ("last_period", "average_lifetime")
TIE = 1e-6
"""A survival MAPE within this fraction of the best baseline's ties it, and does not beat it."""
_POOLED = "pooled"


@dataclass(frozen=True)
class CohortFits:
    """The pooled fit, and the parameters each cohort is scored with (its own or the pooled ones)."""

    pooled: sbg.SBGFit
    own: dict[str, sbg.SBGFit]
    params: dict[str, sbg.ShiftedBetaGeoParams]
    method: str = "mle"
    diagnostics: Diagnostics | None = None
    """The worst MCMC diagnostics over the pooled and own fits (``mcmc`` only)."""

    def table(self) -> pd.DataFrame:
        rows = [
            {
                "cohort": cohort,
                "alpha": p.alpha,
                "beta": p.beta,
                "own_fit": cohort in self.own,
                "customers": self.own[cohort].stats.n_observations if cohort in self.own else math.nan,
            }
            for cohort, p in sorted(self.params.items())
        ]
        return pd.DataFrame(rows, columns=["cohort", "alpha", "beta", "own_fit", "customers"])


def _label(cohort: Hashable) -> str:
    return pd.Timestamp(str(cohort)).strftime("%Y-%m-%d")


def _labels(cohorts: pd.Series) -> pd.Series:
    """:func:`_label` of every row, parsed once per distinct cohort (per row, 1M subscribers took a minute)."""
    codes, uniques = pd.factorize(cohorts)
    labels = np.array([_label(u) for u in uniques], dtype=object)
    return pd.Series(labels[codes] if len(uniques) else np.array([], dtype=object), index=cohorts.index)


def fit_cohorts(subscribers: pd.DataFrame, fit: FitConfig | None = None) -> CohortFits:
    """sBG pooled and per cohort, by ``fit.method`` (maximum likelihood without ``fit``; see the module
    docstring for the fallback)."""
    counts = sbg.cohort_counts(
        subscribers["renewals"].to_numpy(), subscribers["churned"].to_numpy(), _labels(subscribers["cohort"])
    )
    total = sum(counts.values(), start=sbg.RenewalCounts(np.zeros(1), np.zeros(1)))
    pooled = sbg.fit_sbg(total, "sBG (pooled)")
    decisions = subscribers.groupby(_labels(subscribers["cohort"]))["age"].max()
    own: dict[str, sbg.SBGFit] = {}
    params: dict[str, sbg.ShiftedBetaGeoParams] = {}
    for cohort, c in counts.items():
        label = str(cohort)
        if c.customers >= MIN_COHORT_SIZE and decisions[label] >= MIN_COHORT_DECISIONS and c.churned.sum() > 0:
            fitted = sbg.fit_sbg(c, f"sBG (cohort {label})")
            if not fitted.at_bound:
                own[label] = fitted
        params[label] = own[label].params if label in own else pooled.params
    fits = CohortFits(pooled, own, params)
    if fit is None or fit.method == "mle":
        return fits
    return _refit_pymc(fits, {str(k): v for k, v in counts.items()}, total, fit)


def _refit_pymc(
    fits: CohortFits, counts: dict[str, sbg.RenewalCounts], total: sbg.RenewalCounts, fit: FitConfig
) -> CohortFits:
    """The pooled fit and the cohorts with an own fit, refitted together by PyMC (``map`` or ``mcmc``)."""
    from models.sbg_bayes import fit_sbg_pymc

    method: Literal["map", "mcmc"] = "map" if fit.method == "map" else "mcmc"
    chosen: dict[Hashable, sbg.RenewalCounts] = {_POOLED: total, **{label: counts[label] for label in fits.own}}
    found = fit_sbg_pymc(chosen, method, fit.priors, Sampler(**fit.mcmc.model_dump()))

    def refitted(key: str, old: sbg.SBGFit) -> sbg.SBGFit:
        new = found.params[key]
        stats = FitStatistics(sbg.log_likelihood(new, chosen[key]), old.stats.n_observations, 2)
        # mcmc: the posterior sd. map with flat priors: the MAP is the MLE, whose Hessian errors stand. map with
        # informative priors: NaN (fit_sbg_pymc's), the MLE's errors belong to another point and the log-posterior's
        # curvature is not the likelihood's.
        flat_map = method == "map" and fit.priors == "flat"
        errors = old.standard_errors if flat_map else found.posterior_sd[key]
        return dataclasses.replace(old, params=new, stats=stats, standard_errors=errors, at_bound=())

    pooled = refitted(_POOLED, fits.pooled)
    own = {label: refitted(label, f) for label, f in fits.own.items()}
    params = {label: own[label].params if label in own else pooled.params for label in fits.params}
    return CohortFits(pooled, own, params, fit.method, found.diagnostics)


def observed_survival(full: pd.DataFrame) -> pd.DataFrame:
    """Per cohort and t >= 1: subscribers whose t-th renewal decision came due (``at_risk``) and those of them
    who made it (``survived``): the observed S(t) is ``share`` = survived / at_risk."""
    frames = []
    for cohort, group in full.groupby(_labels(full["cohort"])):
        age, renewals = group["age"].to_numpy(), group["renewals"].to_numpy()
        top = int(age.max(initial=0))
        t = np.arange(1, top + 1)
        at_risk = np.array([(age >= k).sum() for k in t])
        survived = np.array([((age >= k) & (renewals >= k)).sum() for k in t])
        frames.append(pd.DataFrame({"cohort": cohort, "t": t, "at_risk": at_risk, "survived": survived}))
    table = pd.concat(frames, ignore_index=True)
    table["share"] = table["survived"] / table["at_risk"]
    return table


def holdout_reach(calibration: pd.DataFrame, full: pd.DataFrame) -> int:
    """The most subscribers of one cohort with a renewal decision due by the observation end beyond the cohort's
    last one in calibration (0 in a cohort acquired after it): the largest first holdout cell, at t = a + 1 (the
    holdout needs one of :data:`MIN_CELL` subscribers; see :func:`validate_subscriptions`)."""
    if full.empty:
        return 0
    calibration_age = calibration.groupby(_labels(calibration["cohort"]))["age"].max()
    labels = _labels(full["cohort"])
    beyond = full["age"].to_numpy() > labels.map(calibration_age).fillna(0).to_numpy()
    return int(pd.Series(beyond, index=full.index).groupby(labels).sum().max())


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """The area under the ROC curve (Mann-Whitney, ties counted half); NaN with one class only."""
    positive = labels.astype(bool)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return math.nan
    ranks = rankdata(scores)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


@dataclass(frozen=True)
class SubscriptionValidation:
    metrics: dict[str, float]
    curves: pd.DataFrame
    """Per holdout cell: cohort, t, at_risk, observed, model, last_period, average_lifetime."""
    by_cohort: pd.DataFrame
    holdout: pd.DataFrame
    """Per active subscriber at the calibration end: churn_risk (model) and churned_in_holdout."""


def _last_period_rates(calibration: pd.DataFrame) -> tuple[dict[str, tuple[int, float, float]], float]:
    """Per cohort: (a, S_obs(a), r_last) from calibration, and the pooled last-decision retention."""
    observed = observed_survival(calibration)
    previous = observed.groupby("cohort")["share"].shift(1).fillna(1.0)
    observed["rate"] = np.where(previous > 0, observed["share"] / previous, 0.0)
    rates: dict[str, tuple[int, float, float]] = {}
    for cohort, group in observed.groupby("cohort"):
        group = group[group["at_risk"] >= MIN_CELL]
        if len(group) >= 1:
            last = group.iloc[-1]
            rates[str(cohort)] = (int(last["t"]), float(last["share"]), float(last["rate"]))
    top = observed[observed["t"] == observed.groupby("cohort")["t"].transform("max")]
    pooled = float(np.average(top["rate"], weights=top["at_risk"])) if len(top) else 1.0
    return rates, pooled


def validate_subscriptions(calibration: pd.DataFrame, full: pd.DataFrame, fits: CohortFits) -> SubscriptionValidation:
    """The holdout metrics of the fits made on ``calibration``, judged on ``full`` (see the module docstring)."""
    observed = observed_survival(full).rename(columns={"share": "observed"})
    calibration_age = calibration.groupby(_labels(calibration["cohort"]))["age"].max()
    rates, pooled_rate = _last_period_rates(calibration)
    decisions = float(calibration["renewals"].sum() + calibration["churned"].sum())
    churn_rate = float(calibration["churned"].sum()) / max(decisions, 1.0)
    rows = []
    for cohort, group in observed.groupby("cohort"):
        label = str(cohort)
        a = int(calibration_age.get(label, 0))
        cells = group[(group["t"] > a) & (group["at_risk"] >= MIN_CELL)]
        if cells.empty:
            continue
        t = cells["t"].to_numpy()
        params = fits.params.get(label, fits.pooled.params)
        start_t, start_s, rate = rates.get(label, (0, 1.0, pooled_rate))
        rows.append(
            pd.DataFrame(
                {
                    "cohort": label,
                    "t": t,
                    "at_risk": cells["at_risk"].to_numpy(),
                    "observed": cells["observed"].to_numpy(),
                    "model": sbg.survival(params, t),
                    "last_period": start_s * rate ** (t - start_t),
                    "average_lifetime": (1.0 - churn_rate) ** t,
                }
            )
        )
    if not rows:
        raise ValueError(
            f"no cohort has {MIN_CELL} subscribers with a renewal decision in the holdout beyond its calibration "
            "ones (move prepare.calibration_end back)"
        )
    curves = pd.concat(rows, ignore_index=True)
    share = np.maximum(curves["observed"], 1.0 / curves["at_risk"])  # the observed S(t), or one subscriber's share
    errors = {name: np.abs(curves[name] - curves["observed"]) / share for name in ("model", *BASELINES)}
    metrics = {"survival_mape": float(errors["model"].mean())}
    for name in BASELINES:
        metrics[f"baseline_{name}_survival_mape"] = float(errors[name].mean())
    by_cohort = (
        pd.DataFrame({"cohort": curves["cohort"], **{k: v for k, v in errors.items()}})
        .groupby("cohort", as_index=False)
        .mean()
    )
    metrics["calibration_decisions"] = decisions
    metrics["calibration_churned"] = float(calibration["churned"].sum())
    metrics["calibration_decision_depth"] = float(decision_depth(calibration["age"].to_numpy()))
    holdout = _holdout_churn(calibration, full, fits)
    metrics["churn_auc"] = auc(holdout["churn_risk"].to_numpy(), holdout["churned_in_holdout"].to_numpy())
    metrics["holdout_cells"] = float(len(curves))
    metrics["holdout_cells_without_survivors"] = float((curves["observed"] == 0).sum())
    metrics["holdout_subscribers"] = float(len(holdout))
    return SubscriptionValidation(metrics, curves, by_cohort, holdout)


def _holdout_churn(calibration: pd.DataFrame, full: pd.DataFrame, fits: CohortFits) -> pd.DataFrame:
    active = calibration.loc[~calibration["churned"], ["customer_id", "cohort", "renewals", "age"]]
    later = full.set_index("customer_id").loc[active["customer_id"], ["age", "renewals", "churned"]]
    ahead = np.maximum(later["age"].to_numpy() - active["renewals"].to_numpy(), 0)
    risk = np.empty(len(active))
    labels = _labels(active["cohort"]).to_numpy()
    for label in np.unique(labels):
        index = np.flatnonzero(labels == label)
        params = fits.params.get(str(label), fits.pooled.params)
        risk[index] = sbg.churn_risk(params, ahead[index], active["renewals"].to_numpy()[index])
    return pd.DataFrame(
        {
            "customer_id": active["customer_id"].to_numpy(),
            "churn_risk": risk,
            "churned_in_holdout": later["churned"].to_numpy(dtype=bool),
        }
    )


def decision_depth(ages: np.ndarray) -> int:
    """The most renewal decisions that :data:`MIN_CELL` subscribers or more have come to (0 when fewer than that
    many subscribers have come to one): the largest t with at least MIN_CELL ages >= t."""
    if len(ages) < MIN_CELL:
        return 0
    return int(np.partition(ages, len(ages) - MIN_CELL)[len(ages) - MIN_CELL])


def calibration_checks(metrics: dict[str, float]) -> tuple[Check, ...]:
    """The gate's checks that the calibration can identify the sBG (see the module docstring); a missing metric
    fails its check."""
    depth = metrics.get("calibration_decision_depth", math.nan)
    churned = metrics.get("calibration_churned", math.nan)
    return (
        Check(
            "calibration_decision_depth_at_least_2",
            "calibration_decision_depth",
            depth,
            2.0,
            "higher",
            not math.isnan(depth) and depth >= 2,
        ),
        Check(
            "calibration_churned_at_least_1",
            "calibration_churned",
            churned,
            1.0,
            "higher",
            not math.isnan(churned) and churned >= 1,
        ),
    )


def subscription_gate(metrics: dict[str, float], extra: tuple[Check, ...] = ()) -> GateResult:
    """The contractual gate: the survival MAPE beats every baseline's, and the churn AUC is above chance;
    ``extra`` checks (the MCMC diagnostics, :func:`pipeline.gate.diagnostic_checks`) are added as they are."""
    model = metrics.get("survival_mape", math.nan)
    best = min(metrics.get(f"baseline_{b}_survival_mape", math.nan) for b in BASELINES)
    beats = Check(
        "beats_historical_baseline",
        "survival_mape",
        model,
        best,
        "lower",
        not math.isnan(model) and not math.isnan(best) and model < best and not math.isclose(model, best, rel_tol=TIE),
    )
    value = metrics.get("churn_auc", math.nan)
    chance = Check(
        "churn_auc_higher_than_0.5", "churn_auc", value, 0.5, "higher", not math.isnan(value) and value > 0.5
    )
    return GateResult((beats, chance, *extra))
