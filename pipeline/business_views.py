"""The report's business views of the scored customers: at-risk and valuable, value segments, cohorts, CLV:CAC."""

from __future__ import annotations

import pandas as pd

from models.bundle import CLVModelParams
from pipeline import business
from pipeline.config import Config
from pipeline.engines.prepared import PreparedData
from pipeline.report import BusinessView

__all__ = ["AT_RISK_SHOWN", "business_views"]

AT_RISK_SHOWN = 25
"""At-risk customers shown in the report (the whole list is a table of the run)."""


def business_views(
    config: Config,
    production: CLVModelParams,
    prepared: PreparedData,
    scores: pd.DataFrame,
    cac: pd.Series | None = None,
) -> tuple[list[BusinessView], dict[str, pd.DataFrame], dict[str, float]]:
    """The report's business views, the tables behind them (written to the run and to ``--output``) and the
    CLV:CAC summary's numbers (recorded as metrics).

    ``cac``: acquisition cost per customer (see :func:`pipeline.cac.read_cac`), or None.
    """
    business_config = config.business
    at_risk = business.at_risk_valuable(
        scores, business_config.at_risk_clv_quantile, business_config.at_risk_churn_risk
    )
    value = "CLV" if config.has_spend else "expected purchases"
    shown = min(len(at_risk), AT_RISK_SHOWN)
    views = [
        BusinessView(
            f"At risk and valuable (top {1 - business_config.at_risk_clv_quantile:.0%} by {value}, churn risk >= "
            f"{business_config.at_risk_churn_risk:g})",
            business.report_columns(at_risk.head(AT_RISK_SHOWN)),
            f"Showing {shown:,} of {len(at_risk):,} customers, most valuable first; the full list is the run's "
            "tables/at_risk_valuable.parquet (and at_risk_valuable.parquet in --output).",
        )
    ]
    if config.has_spend:
        views.append(BusinessView("Value segments", business.segment_table(scores)))
    cohort_title = f"{value[0].upper()}{value[1:]} by acquisition cohort (month of first purchase)"
    views.append(BusinessView(cohort_title, business.cohort_table(scores, prepared.full)))
    tables = {"at_risk_valuable": at_risk}
    metrics: dict[str, float] = {}
    if cac is not None and config.has_spend:
        cac_view = business.clv_cac(production, prepared.full, scores, cac)
        summary = business.cac_summary(cac_view, config.score.clv_horizon_months)
        views.append(BusinessView("CLV:CAC and payback", summary))
        tables["clv_cac"] = cac_view
        metrics = {str(k): float(v) for k, v in summary.iloc[0].items()}
    return views, tables, metrics
