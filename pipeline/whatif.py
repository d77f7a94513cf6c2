"""What-if stage: scenarios applied to a segment of customers, summed per segment, with the break-even spend.

Pure functions of a model, a per-customer summary and the segment labels (:mod:`models.whatif` does the
per-customer math). The break-even spend per targeted customer is the most a campaign can pay per customer
it targets while the value it adds still covers it::

    break_even_spend = delta_clv_per_customer x response_rate - campaign_cost_per_customer

where ``response_rate`` is the share of targeted customers on whom the scenario's effect lands and
``campaign_cost_per_customer`` the fixed cost of reaching one (both assumptions of the user).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal, get_args

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from models.bundle import CLVModelParams
from models.contract import CUSTOMER_ID
from models.whatif import Scenario, whatif_customers
from pipeline.business import SEGMENTS, value_segment

__all__ = [
    "SEGMENTINGS",
    "Campaign",
    "Segmenting",
    "WhatIf",
    "segment_labels",
    "whatif",
    "whatif_figure",
]

Segmenting = Literal["value_segment", "risk_tier", "cohort", "all"]
SEGMENTINGS: Final[tuple[str, ...]] = get_args(Segmenting)
ALL = "all customers"
TOTAL = "all selected"


@dataclass(frozen=True)
class Campaign:
    """response_rate: share of targeted customers the effect lands on; cost_per_customer: cost of reaching one."""

    response_rate: float = 1.0
    cost_per_customer: float = 0.0

    def __post_init__(self) -> None:
        if not 0 <= self.response_rate <= 1:
            raise ValueError(f"response rate must be between 0 and 1, got {self.response_rate}")
        if not (np.isfinite(self.cost_per_customer) and self.cost_per_customer >= 0):
            raise ValueError(f"campaign cost per customer must be >= 0, got {self.cost_per_customer}")

    def break_even(self, delta_clv_per_customer: pd.Series | float) -> pd.Series | float:
        return delta_clv_per_customer * self.response_rate - self.cost_per_customer


@dataclass(frozen=True)
class WhatIf:
    """``customers``: one row per customer and scenario; ``table``: one row per segment and scenario."""

    customers: pd.DataFrame
    table: pd.DataFrame


def segment_labels(segmenting: Segmenting, scores: pd.DataFrame, first_purchase: pd.Series | None) -> pd.Series:
    """Each customer's segment: value segment (CLV rank over all customers given), risk tier, acquisition cohort
    (month of first purchase) or one segment for all."""
    if segmenting == "all":
        return pd.Series(ALL, index=scores.index, name="segment")
    if segmenting == "value_segment":
        return value_segment(scores).rename("segment")
    if segmenting == "risk_tier":
        return scores["risk_tier"].astype(str).rename("segment")
    if first_purchase is None:
        raise ValueError("cohorts need the customers' first purchase dates (raw transactions with --as-of)")
    months = pd.to_datetime(first_purchase).dt.to_period("M").astype(str)
    return pd.Series(months.to_numpy(), index=scores.index, name="segment")


def _segment_order(labels: pd.Series) -> list[str]:
    """Value segments from the top, risk tiers and cohorts in their own order."""
    found = list(dict.fromkeys(labels))
    known = [name for name, _ in SEGMENTS] + ["low", "medium", "high"]
    return sorted(found, key=lambda s: (known.index(s), "") if s in known else (len(known), s))


def _summarise(frame: pd.DataFrame, campaign: Campaign) -> pd.DataFrame:
    """Per segment and scenario, and a total over the selected customers per scenario (``all selected``)."""
    order = _segment_order(frame["segment"])
    if len(order) > 1:
        frame = pd.concat([frame, frame.assign(segment=TOTAL)], ignore_index=True)
        order.append(TOTAL)
    frame = frame.assign(segment=pd.Categorical(frame["segment"], categories=order, ordered=True))
    grouped = frame.groupby(["segment", "scenario"], sort=False, observed=True)
    table = grouped.agg(
        customers=(CUSTOMER_ID, "size"),
        clv_before=("clv_before", "sum"),
        clv_after=("clv_after", "sum"),
        delta_clv=("delta_clv", "sum"),
        p_alive_before=("p_alive_before", "mean"),
        p_alive_after=("p_alive_after", "mean"),
    ).reset_index()
    table = table.sort_values("segment", kind="stable").reset_index(drop=True)
    table["segment"] = table["segment"].astype(str)
    table["delta_clv_pct"] = np.where(table["clv_before"] > 0, table["delta_clv"] / table["clv_before"], np.nan)
    table["delta_clv_per_customer"] = table["delta_clv"] / table["customers"]
    table["break_even_spend_per_customer"] = campaign.break_even(table["delta_clv_per_customer"])
    return table


def whatif(
    model: CLVModelParams,
    customers: pd.DataFrame,
    segments: pd.Series,
    scenarios: Sequence[Scenario],
    campaign: Campaign = Campaign(),
) -> WhatIf:
    """Every scenario on every customer of ``customers`` (the model's per-customer summary), summed per segment.

    ``segments``: each customer's segment label, row for row. The table has per segment and scenario the
    customers, CLV before and after (sums), the change in total, in % and per customer, the mean P(alive) at
    the end of the CLV horizon before and after, and the break-even spend per targeted customer.
    """
    if len(segments) != len(customers):
        raise ValueError("one segment label per customer is needed")
    labels = segments.astype(str).to_numpy()
    months = model.spec.clv_horizon_months
    parts = []
    for scenario in scenarios:
        one = whatif_customers(model, customers.reset_index(drop=True), scenario)
        one = one.rename(
            columns={f"p_alive_{months}m_before": "p_alive_before", f"p_alive_{months}m_after": "p_alive_after"}
        )
        one.insert(1, "segment", labels)
        one.insert(2, "scenario", scenario.name)
        parts.append(one)
    frame = pd.concat(parts, ignore_index=True)
    return WhatIf(frame, _summarise(frame, campaign))


def whatif_figure(table: pd.DataFrame, currency: str = "") -> Figure:
    """ΔCLV per customer by segment, one bar per scenario, and the break-even spend as a marker."""
    figure = Figure(figsize=(9, 5))
    axes = figure.subplots()
    segments = list(dict.fromkeys(table["segment"]))
    scenarios = list(dict.fromkeys(table["scenario"]))
    width = 0.8 / max(len(scenarios), 1)
    positions = np.arange(len(segments))
    for i, scenario in enumerate(scenarios):
        rows = table[table["scenario"] == scenario].set_index("segment").reindex(segments)
        offset = positions + (i - (len(scenarios) - 1) / 2) * width
        axes.bar(offset, rows["delta_clv_per_customer"], width, label=f"{scenario}: ΔCLV per customer")
        axes.scatter(offset, rows["break_even_spend_per_customer"], color="black", marker="_", s=200, zorder=3)
    axes.scatter([], [], color="black", marker="_", s=200, label="break-even spend per targeted customer")
    axes.set_xticks(
        positions, segments, rotation=30 if len(segments) > 6 else 0, ha="right" if len(segments) > 6 else "center"
    )
    axes.axhline(0, color="grey", linewidth=0.8)
    axes.set_ylabel(f"value per customer {currency}".strip())
    axes.set_title("What-if: change in discounted CLV per customer, by segment")
    axes.legend(fontsize="small")
    figure.tight_layout()
    return figure
