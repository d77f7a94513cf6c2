"""Machine-learning challenger to the BTYD model: a two-part gradient-boosted model of revenue over H.

Part one classifies P(purchase in the next H days); part two regresses the revenue over H of the customers
who bought (Poisson loss, log link: its balance property keeps the buyers' total close to the training
total, and it accepts a buyer whose revenue is 0). Expected revenue is their product, and the churn risk
is 1 - P(purchase). Features come from :mod:`models.challenger_features`.

The model is trained on features at ``calibration end - H`` with the labels of the following H days, and
applied at the calibration end (the time-shift protocol): it never sees the labels it is judged on. The
label window of training may hold a season that the scored window lacks, so the predicted total is
rescaled to a structural total that uses no scored labels (:meth:`Challenger.rescaled_to`, e.g. the BTYD
forecast), and :func:`blend` averages it with BTYD. :func:`models.challenger_contest.contest` decides,
on the holdout, whether the challenger replaces the champion.

Persistence is skops (no pickle): :func:`save` and :func:`load`, which refuses any type outside
:data:`TRUSTED_TYPES`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from models.challenger_features import FEATURE_COLUMNS

if TYPE_CHECKING:  # imported where used: a BTYD-only job or model never pays their import (about 1 s)
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

__all__ = [
    "MIN_CLASS",
    "PREDICTION_COLUMNS",
    "TRUSTED_TYPES",
    "Challenger",
    "ChallengerError",
    "ChallengerSettings",
    "blend",
    "fit_challenger",
    "load",
    "rescale_to",
    "save",
]

FloatArray = NDArray[np.float64]
PREDICTION_COLUMNS = ("expected_revenue", "p_purchase", "churn_risk")
MIN_CLASS = 2
"""Fewest buyers (and non-buyers) in the label window: early stopping holds out part of each."""


class ChallengerError(ValueError):
    """The challenger cannot be fitted on this data (it is then not a contender)."""


@dataclass(frozen=True)
class ChallengerSettings:
    """Gradient-boosting settings, fixed before looking at any result; shared by both parts."""

    max_iter: int = 300
    learning_rate: float = 0.05
    max_leaf_nodes: int = 15
    min_samples_leaf: int = 40
    l2_regularization: float = 1.0
    validation_fraction: float = 0.1
    random_state: int = 20260101

    def as_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class Challenger:
    """A fitted two-part model. ``revenue_scale`` multiplies the expected revenue (1 until rescaled)."""

    classifier: HistGradientBoostingClassifier
    regressor: HistGradientBoostingRegressor
    feature_names: tuple[str, ...] = FEATURE_COLUMNS
    revenue_scale: float = 1.0
    settings: ChallengerSettings = field(default_factory=ChallengerSettings)

    def _matrix(self, features: pd.DataFrame) -> FloatArray:
        missing = [c for c in self.feature_names if c not in features.columns]
        if missing:
            raise ValueError(f"challenger features lack column(s) {', '.join(missing)}")
        return np.asarray(features[list(self.feature_names)].to_numpy(dtype=np.float64))

    def predict(self, features: pd.DataFrame) -> pd.DataFrame:
        """``expected_revenue`` over H, ``p_purchase`` in H and ``churn_risk`` = 1 - p_purchase, per row."""
        x = self._matrix(features)
        if len(x) == 0:
            return pd.DataFrame({c: np.zeros(0) for c in PREDICTION_COLUMNS}, index=features.index)
        p = np.asarray(self.classifier.predict_proba(x)[:, 1], dtype=np.float64)
        spend = np.asarray(self.regressor.predict(x), dtype=np.float64)
        return pd.DataFrame(
            {"expected_revenue": p * spend * self.revenue_scale, "p_purchase": p, "churn_risk": 1.0 - p},
            index=features.index,
        )

    def rescaled_to(self, features: pd.DataFrame, total: float) -> Challenger:
        """A copy whose expected revenue on ``features`` sums to ``total`` (a total that uses no scored labels)."""
        unscaled = replace(self, revenue_scale=1.0).predict(features)["expected_revenue"].sum()
        if not unscaled > 0 or not np.isfinite(total) or total < 0:
            raise ValueError(f"cannot rescale a predicted total of {unscaled} to {total}")
        return replace(self, revenue_scale=float(total / unscaled))


def _boosting(kind: type[Any], settings: ChallengerSettings, **loss: Any) -> Any:
    return kind(
        max_iter=settings.max_iter,
        learning_rate=settings.learning_rate,
        max_leaf_nodes=settings.max_leaf_nodes,
        min_samples_leaf=settings.min_samples_leaf,
        l2_regularization=settings.l2_regularization,
        early_stopping=True,
        validation_fraction=settings.validation_fraction,
        random_state=settings.random_state,
        **loss,
    )


def fit_challenger(
    features: pd.DataFrame, labels: pd.DataFrame, settings: ChallengerSettings | None = None
) -> Challenger:
    """Fit both parts on ``features`` and ``labels`` (columns ``revenue``, ``purchases``) with the same index."""
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    chosen = settings or ChallengerSettings()
    if not features.index.equals(labels.index):
        raise ValueError("features and labels must have the same customers in the same order")
    x = np.asarray(features[list(FEATURE_COLUMNS)].to_numpy(dtype=np.float64))
    revenue = labels["revenue"].to_numpy(dtype=np.float64)
    bought = labels["purchases"].to_numpy(dtype=np.float64) > 0
    if min(bought.sum(), (~bought).sum()) < MIN_CLASS:
        raise ChallengerError(
            f"the label window needs at least {MIN_CLASS} buyers and {MIN_CLASS} non-buyers; "
            f"{int(bought.sum())} of {len(bought)} customers bought"
        )
    # Early stopping holds out rows by position: the rows go in an order of their content, not of the customers'
    # ids, so that the same customers make the same challenger however their ids are spelled or sort.
    order = np.lexsort((revenue, bought, *x.T[::-1]))
    x, revenue, bought = x[order], revenue[order], bought[order]
    classifier = _boosting(HistGradientBoostingClassifier, chosen).fit(x, bought.astype(np.int64))
    regressor = _boosting(HistGradientBoostingRegressor, chosen, loss="poisson").fit(
        x[bought], np.maximum(revenue[bought], 0.0)
    )
    return Challenger(classifier=classifier, regressor=regressor, settings=chosen)


def rescale_to(prediction: pd.DataFrame, total: float) -> pd.DataFrame:
    """``prediction`` with ``expected_revenue`` multiplied so that it sums to ``total``."""
    current = float(prediction["expected_revenue"].sum())
    if not current > 0 or not np.isfinite(total) or total < 0:
        raise ValueError(f"cannot rescale a predicted total of {current} to {total}")
    return prediction.assign(expected_revenue=prediction["expected_revenue"] * (total / current))


def blend(btyd: pd.DataFrame, challenger: pd.DataFrame, weight: float = 0.5) -> pd.DataFrame:
    """(1 - weight) x BTYD + weight x challenger, for ``expected_revenue`` and ``churn_risk``.

    Both frames have the same index (customers in the same order); ``p_purchase`` is 1 - churn risk.
    """
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"blend weight must be in [0, 1], got {weight}")
    if not btyd.index.equals(challenger.index):
        raise ValueError("BTYD and challenger predictions must have the same customers in the same order")
    revenue = (1 - weight) * btyd["expected_revenue"] + weight * challenger["expected_revenue"]
    risk = (1 - weight) * btyd["churn_risk"] + weight * challenger["churn_risk"]
    return pd.DataFrame({"expected_revenue": revenue, "p_purchase": 1.0 - risk, "churn_risk": risk}, index=btyd.index)


# --- persistence (skops, no pickle) ------------------------------------------------------------------

TRUSTED_TYPES: tuple[str, ...] = ("sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",)
"""Every type a saved challenger holds besides skops' own defaults; :func:`load` refuses any other."""


def save(challenger: Challenger, path: Path) -> Path:
    """Write ``challenger`` to ``path`` in the skops format."""
    import skops.io

    state = {
        "classifier": challenger.classifier,
        "regressor": challenger.regressor,
        "feature_names": list(challenger.feature_names),
        "revenue_scale": float(challenger.revenue_scale),
        "settings": asdict(challenger.settings),
    }
    skops.io.dump(state, path)
    return path


def load(path: Path) -> Challenger:
    """Read a challenger written by :func:`save`; raises ValueError if the file holds an unexpected type."""
    import skops.io

    unexpected = sorted(set(skops.io.get_untrusted_types(file=path)) - set(TRUSTED_TYPES))
    if unexpected:
        raise ValueError(f"{path}: refusing to load untrusted type(s) {', '.join(unexpected)}")
    state = skops.io.load(path, trusted=list(TRUSTED_TYPES))
    return Challenger(
        classifier=state["classifier"],
        regressor=state["regressor"],
        feature_names=tuple(state["feature_names"]),
        revenue_scale=float(state["revenue_scale"]),
        settings=ChallengerSettings(**state["settings"]),
    )
