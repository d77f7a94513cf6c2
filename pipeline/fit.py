"""Fit stage: BG/NBD on the per-customer summary and Gamma-Gamma on the repeat customers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from models.bundle import CLVModelParams, ScoringSpec
from models.mle import FitError, PurchaseFit, SpendFit, fit_bgnbd_histories, fit_gamma_gamma, unique_histories
from pipeline.config import FitConfig
from pipeline.errors import InputError

MIN_CUSTOMERS = 10
"""BG/NBD has four parameters and Gamma-Gamma three: fewer customers than this cannot identify them."""
MIN_REPEAT_CUSTOMERS = 3


@dataclass(frozen=True)
class FittedModels:
    purchase: PurchaseFit
    spend: SpendFit
    spend_frequency_correlation: float
    """Pearson correlation of frequency and monetary_value among repeat customers: Gamma-Gamma assumes ~0."""

    def bundle(self, spec: ScoringSpec) -> CLVModelParams:
        return CLVModelParams(purchase=self.purchase.params, spend=self.spend.params, spec=spec)

    def params(self) -> dict[str, float]:
        return {**self.purchase.params.as_dict(), **self.spend.params.as_dict()}


def fit(customers: pd.DataFrame, config: FitConfig, label: str = "calibration") -> FittedModels:
    """Fit the purchase and spend models; an unfittable summary is an InputError naming the cause."""
    repeat = customers[(customers["frequency"] > 0) & (customers["monetary_value"] > 0)]
    histories = unique_histories(customers["frequency"], customers["recency"], customers["T"])
    return fit_histories(histories, repeat.loc[:, ["frequency", "monetary_value"]], config, label)


def fit_histories(
    histories: pd.DataFrame, repeat: pd.DataFrame, config: FitConfig, label: str = "calibration"
) -> FittedModels:
    """Fit from what a distributed prepare collects: the unique (frequency, recency, T) ``histories``
    with their ``weight`` (sorted as ``unique_histories`` sorts them), and the repeat customers'
    ``frequency`` and ``monetary_value`` (frequency > 0 and positive spend, in customer id order).

    The same numbers as :func:`fit` on the per-customer summary.
    """
    customers = int(histories["weight"].sum())
    if repeat.empty:
        raise InputError(f"{label}: no customer has a repeat purchase, so BG/NBD and Gamma-Gamma cannot be fitted")
    if customers < MIN_CUSTOMERS or len(repeat) < MIN_REPEAT_CUSTOMERS:
        raise InputError(
            f"{label}: too few customers to fit ({customers} customers, {len(repeat)} with a repeat purchase; "
            f"need at least {MIN_CUSTOMERS} and {MIN_REPEAT_CUSTOMERS})"
        )
    try:
        purchase = fit_bgnbd_histories(histories, penalizer=config.purchase_penalizer)
        spend = fit_gamma_gamma(repeat["frequency"], repeat["monetary_value"], penalizer=config.spend_penalizer)
    except FitError as exc:
        raise InputError(f"{label}: {exc}") from None
    except (np.linalg.LinAlgError, ValueError) as exc:  # e.g. a singular Hessian for the standard errors
        raise InputError(f"{label}: the models could not be fitted to this data ({exc})") from None
    correlation = (
        float(np.corrcoef(repeat["frequency"], repeat["monetary_value"])[0, 1]) if len(repeat) > 2 else float("nan")
    )
    return FittedModels(purchase=purchase, spend=spend, spend_frequency_correlation=correlation)
