"""Score stage: per-customer predictions from a fitted model, plus what each customer has spent so far."""

from __future__ import annotations

import pandas as pd

from models.bundle import CLVModelParams
from models.scoring import score_customers


def score(model: CLVModelParams, customers: pd.DataFrame) -> pd.DataFrame:
    """Scores for every customer in the summary; ``historical_clv`` is their total spend to date."""
    scores = score_customers(model, customers)
    scores["historical_clv"] = customers["total_spend"].to_numpy()
    return scores.reset_index(drop=True)
