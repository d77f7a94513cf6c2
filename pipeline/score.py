"""Score stage: per-customer predictions from a fitted model, plus what each customer has spent so far."""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.bundle import CLVModelParams
from models.scoring import NonFiniteScoresError, score_customers
from pipeline.errors import InputError


def score(model: CLVModelParams, customers: pd.DataFrame) -> pd.DataFrame:
    """Scores for every customer in the summary; ``historical_clv`` is their total spend to date (with a
    spend model: a feed without amounts has no money columns)."""
    try:
        scores = score_customers(model, customers)
    except NonFiniteScoresError as exc:
        raise InputError(f"scoring: {exc}") from None
    if model.has_spend:
        # a numpy column of the summary is shared (copy-on-write: an array assigned to a column is copied);
        # any other dtype becomes numpy's, as it always did
        spent = customers["total_spend"]
        shared = isinstance(spent.dtype, np.dtype)
        scores["historical_clv"] = spent.set_axis(scores.index) if shared else spent.to_numpy()
    return scores.reset_index(drop=True)
