"""The contest stage: the machine-learning challenger (blended with BTYD) against BTYD on the holdout.

Time shift, so that no contender sees the labels it is judged on: with H the holdout length in days, the
challenger is trained on features at ``cutoff = calibration_end - H`` with the revenue of
``(cutoff, calibration_end]`` as labels, from an activity table that stops at ``calibration_end``; it is then
applied at ``calibration_end``, its total rescaled to the BTYD calibration forecast (no holdout label used),
blended ``(1 - weight) x BTYD + weight x challenger``, and judged with BTYD on the holdout by
:func:`models.challenger_contest.contest`. Too little history for a full label window, a feed without
amounts, or a :class:`~models.challenger.ChallengerError` make the challenger ineligible: BTYD stands.

:func:`production_blend` is the production counterpart, run only when the blend won: refitted at
``observation_end - H`` with labels up to ``observation_end``, applied at ``observation_end`` and rescaled to
the production BTYD total over H. It returns the :class:`~models.blend.BlendModel` that the registered model
then serves, and its scores come from the same function as the registered model's
(:func:`models.blend.blend_scores` on :func:`models.challenger_features.serving_input`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from models.blend import BlendModel, blend_scores, btyd_over, winner_value
from models.bundle import CLVModelParams
from models.challenger import Challenger, ChallengerError, blend, fit_challenger
from models.challenger_contest import ContestResult, ContestRules, contest
from models.challenger_explain import decile_table, permutation_importances
from models.challenger_features import features, labels, serving_input
from models.clv import DAYS_PER_UNIT
from pipeline.baselines import BASELINES
from pipeline.config import ChallengerConfig, Config
from pipeline.contest_text import contest_table, interval_line, noise_sentence
from pipeline.engines import Engine, Source
from pipeline.engines.prepared import PreparedData
from pipeline.errors import InputError

__all__ = [
    "SERVING_NOTE",
    "ChallengerContest",
    "ServedBlend",
    "challenge",
    "horizon_days",
    "ineligible",
    "production_blend",
    "run_contest",
    "training_cutoff",
    "with_blend",
]

SERVING_NOTE = "the blend is built at observation end and registered only if the gate passes"
"""The registered-model tag of a blend that won the contest, until the production blend is built (then the
model that is logged serves it, and the tag says ``true``)."""


@dataclass(frozen=True)
class ServedBlend:
    """The production blend that the registered model serves, and a few rows of its input (the input example)."""

    model: BlendModel
    example: pd.DataFrame


@dataclass(frozen=True)
class ChallengerContest:
    """The contest of one run: whether the challenger was eligible, and if so every number it was judged on."""

    eligible: bool
    reason: str
    """Why it is ineligible, or the contest's decision and its reason."""
    horizon_days: int
    training_cutoff: dt.date | None
    weight: float
    result: ContestResult | None = None
    revenue_scale: float = float("nan")
    """The factor that brought the challenger's calibration-time total to the BTYD forecast total."""
    training_customers: int = 0
    challenger: Challenger | None = None
    importance: pd.DataFrame | None = field(default=None, compare=False)
    """The challenger's permutation importance on its training window (:mod:`models.challenger_explain`)."""
    predictions: pd.DataFrame | None = field(default=None, compare=False)
    """Per holdout customer: ``actual`` revenue and the ``btyd``, ``challenger`` and ``blend`` predictions."""
    served: ServedBlend | None = None
    """The production blend (refitted at observation end) that the registered model serves, once built."""

    @property
    def blend_wins(self) -> bool:
        return self.result is not None and self.result.challenger_wins

    @property
    def registered(self) -> str:
        """What the registered model serves: ``blend`` once the production blend is built, else ``btyd``."""
        if self.served is not None:
            return "blend"
        return "btyd" if not self.blend_wins else f"btyd ({SERVING_NOTE})"

    def metrics(self) -> dict[str, float]:
        """Flat numbers (``contest_<metric>_<contender>``); the champion is BTYD, the challenger the blend."""
        out = {"contest_eligible": float(self.eligible), "contest_horizon_days": float(self.horizon_days)}
        if self.result is not None:
            out |= {f"contest_{k}": float(v) for k, v in self.result.as_metrics().items()}
            out |= {
                "contest_revenue_scale": self.revenue_scale,
                "contest_training_customers": float(self.training_customers),
            }
        return out

    def as_dict(self) -> dict[str, Any]:
        """The summary JSON's ``contest`` section."""
        return {
            "eligible": self.eligible,
            "blend_wins": self.blend_wins,
            "reason": self.reason,
            "horizon_days": self.horizon_days,
            "training_cutoff": None if self.training_cutoff is None else str(self.training_cutoff),
            "weight": self.weight,
            "registered": self.registered,
            "metrics": self.metrics(),
        }

    def table(self) -> pd.DataFrame:
        """One row per predictor (BTYD, the blend, the baselines): each metric with its bootstrap interval
        (``<metric> <level> low`` and ``high``; all from the same draws), the report's contest table."""
        return pd.DataFrame() if self.result is None else contest_table(self.result, self.weight)

    def noise(self) -> str:
        """Whether the winner's Gini margins (over the loser, and over the best baseline) are inside the noise."""
        return "" if self.result is None else noise_sentence(self.result)

    def lines(self) -> list[str]:
        """The console lines: the decision, its reason, the numbers it rests on and their intervals."""
        if self.result is None:
            return [f"  contest     challenger ineligible, BTYD stands: {self.reason}"]
        r = self.result
        who = "blend wins" if r.challenger_wins else "BTYD stands"
        lines = [
            f"  contest     {who}: {self.reason}",
            f"              Gini BTYD {r.gini['champion']:.4f}, blend {r.gini['challenger']:.4f} (gain "
            f"{r.gini_gain:+.4f}, interval [{r.gini_gain_interval[0]:+.4f}, {r.gini_gain_interval[1]:+.4f}]); "
            f"MAE {r.mae['champion']:.2f} vs {r.mae['challenger']:.2f}; churn AUC {r.churn_auc['champion']:.3f} vs "
            f"{r.churn_auc['challenger']:.3f}; best baseline {r.best_baseline} Gini {r.gini[r.best_baseline]:.4f}",
            f"              {interval_line(self.result)}",
            f"              {self.noise()}",
        ]
        if r.challenger_wins:
            lines.append(
                "              scores carry the blend's expected revenue and churn risk; "
                + (
                    "the registered model serves the blend (value_model = blend)"
                    if self.served is not None
                    else SERVING_NOTE
                )
            )
        return lines

    def deciles(self) -> pd.DataFrame:
        """Mean predicted and actual holdout revenue by decile of each contender's prediction (BTYD, the
        challenger alone, the blend); empty when the challenger was ineligible."""
        p = self.predictions
        if p is None:
            return pd.DataFrame()
        return decile_table(p["actual"].to_numpy(), {k: p[k].to_numpy() for k in ("btyd", "challenger", "blend")})


def horizon_days(duration_holdout: float, time_unit: str) -> int:
    """The holdout length H in days (the label window of the challenger)."""
    return round(duration_holdout * DAYS_PER_UNIT[time_unit])


def training_cutoff(calibration_end: dt.date, horizon: int) -> dt.date:
    return calibration_end - dt.timedelta(days=horizon)


def ineligible(config: ChallengerConfig, horizon: int, cutoff: dt.date | None, reason: str) -> ChallengerContest:
    return ChallengerContest(False, reason, horizon, cutoff, config.weight)


def _btyd(holdout: pd.DataFrame) -> pd.DataFrame:
    return holdout[["expected_revenue", "churn_risk"]].astype(np.float64)


def _predictions(actual: pd.Series, btyd: pd.DataFrame, challenger: pd.DataFrame, mixed: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "actual": actual,
            "btyd": btyd["expected_revenue"],
            "challenger": challenger["expected_revenue"],
            "blend": mixed["expected_revenue"],
        }
    )


def run_contest(
    config: ChallengerConfig,
    activity: pd.DataFrame,
    holdout: pd.DataFrame,
    calibration_end: dt.date,
    first_date: dt.date,
    horizon: int,
) -> ChallengerContest:
    """The contest on one run's data: a pure function of the activity table (up to ``calibration_end``; later
    rows are ignored), the validate stage's ``holdout`` table (BTYD, actuals and baselines per calibration
    customer) and the config.
    """
    cutoff = training_cutoff(calibration_end, horizon)
    if cutoff < first_date:
        return ineligible(
            config,
            horizon,
            cutoff,
            f"the data starts {first_date}, after the training cutoff {cutoff} (calibration end - {horizon} days): "
            "too short for a full label window",
        )
    if "expected_revenue" not in holdout.columns:
        return ineligible(config, horizon, cutoff, "no spend model: the contest ranks revenue")
    known = activity[pd.to_datetime(activity["date"]) <= pd.Timestamp(calibration_end)]
    try:
        train = features(known, cutoff)
        revenue = labels(known, cutoff, horizon)
        fitted = fit_challenger(train, revenue)
        btyd = _btyd(holdout.set_index("customer_id"))
        scoring = features(known, calibration_end)
        if not scoring.index.sort_values().equals(btyd.index.sort_values()):
            raise ChallengerError("the challenger's customers at calibration end differ from the calibration summary's")
        scoring = scoring.loc[btyd.index]
        rescaled = fitted.rescaled_to(scoring, float(btyd["expected_revenue"].sum()))
        mixed = blend(btyd, ml := rescaled.predict(scoring), config.weight)
    except (ChallengerError, ValueError) as exc:
        return ineligible(config, horizon, cutoff, str(exc))
    actual = pd.DataFrame(
        {"revenue": holdout["actual_revenue"].to_numpy(), "purchases": holdout["actual_purchases"].to_numpy()},
        index=btyd.index,
    )
    baselines = {b: holdout[f"baseline_{b}_revenue"].to_numpy(dtype=np.float64) for b in BASELINES}
    rules = ContestRules(config.mae_tolerance, config.total_tolerance, config.bootstrap_draws, config.level)
    try:
        result = contest(actual, btyd, mixed, baselines, np.random.default_rng(config.seed), rules)
    except ValueError as exc:  # a holdout without revenue: nothing to judge on
        return ineligible(config, horizon, cutoff, str(exc))
    return ChallengerContest(
        True,
        result.reason,
        horizon,
        cutoff,
        config.weight,
        result,
        rescaled.revenue_scale,
        len(train),
        rescaled,
        permutation_importances(rescaled, train, revenue["revenue"], config.seed),
        _predictions(actual["revenue"], btyd, ml, mixed),
    )


def production_blend(
    config: ChallengerConfig,
    activity: pd.DataFrame,
    model: CLVModelParams,
    full: pd.DataFrame,
    observation_end: dt.date,
    horizon: int,
) -> tuple[pd.DataFrame, ServedBlend]:
    """The blend at ``observation_end`` for every customer of ``full`` (ChallengerError if it cannot be built),
    and the :class:`~models.blend.BlendModel` that gives it (what the registered model serves) with a few rows of
    its input.

    Columns ``customer_id`` and :func:`models.blend.blend_columns`: ``btyd_expected_revenue_<H>d``,
    ``challenger_expected_revenue_<H>d``, ``expected_revenue_<H>d`` and ``churn_risk_<H>d`` (the blend's) and
    ``value_model`` (``blend``).
    """
    cutoff = training_cutoff(observation_end, horizon)
    known = activity[pd.to_datetime(activity["date"]) <= pd.Timestamp(observation_end)]
    fitted = fit_challenger(features(known, cutoff), labels(known, cutoff, horizon))
    try:
        frame = serving_input(full, known, observation_end)
    except ValueError as exc:
        raise ChallengerError(f"the challenger's customers at observation end: {exc}") from None
    btyd = btyd_over(model, frame, horizon)
    try:
        rescaled = fitted.rescaled_to(frame, float(btyd["expected_revenue"].sum()))
    except ValueError as exc:
        raise ChallengerError(str(exc)) from None
    served = BlendModel(model, rescaled, config.weight, horizon)
    return blend_scores(served, frame).reset_index(drop=True), ServedBlend(served, frame.head(5))


def challenge(
    config: Config, engine: Engine, data: Source, prepared: PreparedData, holdout: pd.DataFrame
) -> ChallengerContest:
    """The contest step of the workflow: the activity table up to the calibration end from the engine, then
    :func:`run_contest`. An engine that cannot build the table makes the challenger ineligible."""
    chosen = config.challenger
    horizon = horizon_days(prepared.duration_holdout, config.prepare.time_unit)
    try:
        with engine.errors(data.description):
            activity = engine.activity(data, config.prepare, prepared.calibration_end)
    except (ChallengerError, InputError) as exc:
        return ineligible(chosen, horizon, training_cutoff(prepared.calibration_end, horizon), str(exc))
    return run_contest(chosen, activity, holdout, prepared.calibration_end, prepared.first_date, horizon)


def with_blend(
    config: Config, engine: Engine, data: Source, prepared: PreparedData, model: CLVModelParams, scores: pd.DataFrame
) -> tuple[pd.DataFrame, str | None, ServedBlend | None]:
    """``scores`` with the production blend's columns (:func:`production_blend`), ``value_model``, the winner's
    ``clv``, ``churn_risk`` and ``risk_tier`` (:func:`models.blend.winner_value`, as the registered model gives
    them; the value segment, ranked on ``clv`` afterwards, follows the winner), and the blend to register; or the
    scores unchanged, ``value_model`` ``btyd``, a warning saying why the blend could not be built, and None (the
    registered model is then BTYD's)."""
    horizon = horizon_days(prepared.duration_holdout, config.prepare.time_unit)
    try:
        with engine.errors(data.description):
            activity = engine.activity(data, config.prepare, prepared.observation_end)
        blended, served = production_blend(
            config.challenger, activity, model, prepared.full, prepared.observation_end, horizon
        )
    except (ChallengerError, InputError, ValueError) as exc:
        warning = f"the blend won the contest but could not be built at observation end ({exc}): scores are BTYD's"
        return scores.assign(value_model="btyd"), warning, None
    merged = scores.merge(blended, on="customer_id", how="left", validate="one_to_one")
    return winner_value(merged, model, horizon), None, served
