"""What the challenger reads and how each contender ranks, for analysts.

- :func:`permutation_importances`: scikit-learn's :func:`~sklearn.inspection.permutation_importance` of the
  challenger's features, scored by the normalized Gini of its expected revenue (the contest's primary
  metric) against the revenue labels. It runs on the training window (features at the training cutoff,
  labels of the next H days: what the model was fitted on, so the importances say what the model uses,
  not what generalises) and, to keep the cost small, on :data:`IMPORTANCE_CUSTOMERS` customers drawn with
  the seed and :data:`IMPORTANCE_REPEATS` shuffles per feature (23 features x 3 repeats = 69 predictions of
  5,000 customers on CDNOW), each prediction on one OpenMP thread (threads only add overhead to predictions
  this small, and on a busy machine their waiting multiplied the cost by 40). The same seed gives the same
  table.
- :func:`decile_table`: customers split into ten equal groups by each contender's prediction (highest
  first), with the mean predicted and the mean actual holdout revenue of each group.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from models.challenger import Challenger
from models.challenger_contest import normalized_gini

__all__ = ["DECILES", "IMPORTANCE_CUSTOMERS", "IMPORTANCE_REPEATS", "decile_table", "permutation_importances"]

IMPORTANCE_REPEATS = 3
IMPORTANCE_CUSTOMERS = 5_000
DECILES = 10


class _ExpectedRevenue:
    """The challenger as the estimator :func:`~sklearn.inspection.permutation_importance` shuffles for."""

    def __init__(self, challenger: Challenger) -> None:
        self.challenger = challenger

    def fit(self, features: pd.DataFrame, labels: Any) -> _ExpectedRevenue:
        return self  # already fitted: permutation importance only predicts

    def predict(self, features: pd.DataFrame) -> np.ndarray:
        return self.challenger.predict(features)["expected_revenue"].to_numpy(dtype=np.float64)


def _gini(estimator: _ExpectedRevenue, features: pd.DataFrame, revenue: np.ndarray) -> float:
    return normalized_gini(np.asarray(revenue, dtype=np.float64), estimator.predict(features))


def permutation_importances(
    challenger: Challenger,
    features: pd.DataFrame,
    revenue: pd.Series,
    seed: int,
    repeats: int = IMPORTANCE_REPEATS,
    customers: int = IMPORTANCE_CUSTOMERS,
) -> pd.DataFrame:
    """Drop in normalized Gini when each feature is shuffled, most important first.

    Columns ``feature``, ``gini_drop`` (mean over ``repeats`` shuffles) and ``gini_drop_std``; computed on
    ``customers`` rows of ``features`` (all when fewer) drawn with ``seed``, which also seeds the shuffles.
    """
    if not features.index.equals(revenue.index):
        raise ValueError("features and revenue must have the same customers in the same order")
    from sklearn.inspection import permutation_importance  # imported where used, as in models.challenger

    x = features[list(challenger.feature_names)]
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(len(x), customers, replace=False)) if len(x) > customers else np.arange(len(x))
    y = revenue.to_numpy(dtype=np.float64)[rows]
    with threadpool_limits(limits=1, user_api="openmp"):  # 69 small predictions: threads only add overhead
        result = permutation_importance(
            _ExpectedRevenue(challenger), x.iloc[rows], y, scoring=_gini, n_repeats=repeats, random_state=seed
        )
    table = pd.DataFrame(
        {"feature": list(x.columns), "gini_drop": result.importances_mean, "gini_drop_std": result.importances_std}
    )
    return table.sort_values(["gini_drop", "feature"], ascending=[False, True], ignore_index=True)


def decile_table(actual: np.ndarray, predictions: dict[str, np.ndarray]) -> pd.DataFrame:
    """Per contender and decile of its prediction (1 = the highest predicted tenth): customers, mean
    predicted and mean actual revenue. Ties keep row order; the deciles differ in size by at most one."""
    y = np.asarray(actual, dtype=np.float64)
    rows = []
    for name, predicted in predictions.items():
        p = np.asarray(predicted, dtype=np.float64)
        for decile, members in enumerate(np.array_split(np.argsort(-p, kind="stable"), DECILES), start=1):
            rows.append(
                {
                    "contender": name,
                    "decile": decile,
                    "customers": len(members),
                    "mean_predicted": float(p[members].mean()) if len(members) else float("nan"),
                    "mean_actual": float(y[members].mean()) if len(members) else float("nan"),
                }
            )
    return pd.DataFrame(rows, columns=["contender", "decile", "customers", "mean_predicted", "mean_actual"])
