"""Customer histories as the fits take them: the distinct (frequency, recency, T) rows with their counts.

A purchase model's likelihood depends on a customer only through (frequency, recency, T), so the fits run
on the unique histories weighted by the number of customers that share each: the same parameters as a
per-customer fit, at a cost that does not grow with the customer count.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

__all__ = ["unique_histories"]


def unique_histories(frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> pd.DataFrame:
    """The distinct (frequency, recency, T) rows with the number of customers that share each."""
    histories = pd.DataFrame(
        {
            "frequency": np.asarray(frequency, dtype=np.float64),
            "recency": np.asarray(recency, dtype=np.float64),
            "T": np.asarray(T, dtype=np.float64),
        }
    )
    return histories.groupby(["frequency", "recency", "T"], sort=True).size().rename("weight").reset_index()
