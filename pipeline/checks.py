"""Assumption checks of the fitted models (pure: data in, tables and statistics out).

- Repeat-purchase histogram: the observed number of customers with 0, 1, ..., 6 and 7+ repeat
  purchases in the calibration period against the number the purchase model implies for customers of
  the same ages (an exact version of lifetimes' ``plot_period_transactions``), with a chi-square test.
- Gamma-Gamma's independence of spend and frequency: the correlation against a threshold.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import chi2

from models import purchase
from models.purchase import PurchaseParams

MAX_COUNT = 7
"""Bins 0, 1, ..., MAX_COUNT - 1 and MAX_COUNT+ repeat purchases."""


@dataclass(frozen=True)
class RepeatPurchaseCheck:
    table: pd.DataFrame
    """``repeat_purchases`` (bin label), ``observed`` and ``expected`` customer counts."""
    chi_square: float
    degrees_of_freedom: int
    p_value: float


def repeat_purchase_check(params: PurchaseParams, customers: pd.DataFrame) -> RepeatPurchaseCheck:
    """Observed against model-implied repeat-purchase counts, and Pearson's chi-square statistic.

    The expected count of bin x is the sum over customers of P(X(T_i) = x), each customer observed
    for their own age T_i. Degrees of freedom: bins - 1 - the model's parameter count.
    """
    counts = customers["frequency"].to_numpy(dtype=np.float64)
    ages = customers["T"].value_counts()
    bins = np.arange(MAX_COUNT, dtype=np.float64)
    t_grid, x_grid = np.meshgrid(ages.index.to_numpy(dtype=np.float64), bins, indexing="ij")
    pmf = purchase.repeat_count_pmf(params, x_grid, t_grid)  # ages x bins
    expected = ages.to_numpy(dtype=np.float64) @ pmf
    expected = np.append(expected, len(counts) - expected.sum())
    observed = np.array([(counts == x).sum() for x in bins] + [(counts >= MAX_COUNT).sum()], dtype=np.float64)
    statistic = float(np.sum((observed - expected) ** 2 / expected))
    dof = len(observed) - 1 - len(params.as_dict())
    labels = [str(int(x)) for x in bins] + [f"{MAX_COUNT}+"]
    table = pd.DataFrame({"repeat_purchases": labels, "observed": observed, "expected": expected})
    return RepeatPurchaseCheck(table, statistic, dof, float(chi2.sf(statistic, dof)))


def spend_independence_warning(correlation: float, threshold: float) -> str | None:
    """A warning when spend and frequency are correlated beyond ``threshold`` (Gamma-Gamma assumes not)."""
    if np.isnan(correlation) or abs(correlation) <= threshold:
        return None
    return (
        f"spend and frequency are correlated among repeat customers (r = {correlation:.3f}, threshold "
        f"{threshold:g}): Gamma-Gamma assumes they are independent, so expected order values may be biased"
    )
