"""Features and labels of the machine-learning challenger, from a per-customer activity table.

The activity table has one row per customer and period with activity: ``customer_id``, ``date`` (the
first day of the period), ``purchases`` and ``revenue``. With ``period_days = 1`` it is a daily table
(purchases on the same day already merged, as the BTYD summary does); a SQL or Spark engine produces it
with one ``GROUP BY customer_id, date``.

Features use only periods that end on or before the cutoff, so they are the same whatever happens
afterwards. They are age-free where possible (rates per week of life, ratios, recent windows, spend per
purchase): the challenger is trained on customers younger than the ones it scores, and trees cannot
extrapolate age. Inter-purchase gaps are missing (NaN) for customers with a single active period;
the gradient-boosted trees handle missing values natively.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from models.contract import CUSTOMER_ID, SUMMARY_COLUMNS, canonical_ids

__all__ = [
    "ACTIVITY_COLUMNS",
    "FEATURE_COLUMNS",
    "LABEL_COLUMNS",
    "WINDOWS_WEEKS",
    "activity_from_transactions",
    "features",
    "labels",
    "serving_input",
]

ACTIVITY_COLUMNS = ("customer_id", "date", "purchases", "revenue")
WINDOWS_WEEKS = (4, 13, 26)
"""Recent windows (weeks before the cutoff) for purchase and spend counts."""

FEATURE_COLUMNS: tuple[str, ...] = (
    "purchases",
    "repeat_purchases",
    "recency_ratio",
    "days_since_last",
    "purchases_per_week",
    "spend_per_week",
    "mean_gap_days",
    "std_gap_days",
    "last_gap_days",
    "overdue_ratio",
    "first_spend",
    "last_spend",
    "max_spend",
    "mean_spend",
    "std_spend",
    "repeat_mean_spend",
    "last_to_mean_spend",
    *(f"purchases_{w}w" for w in WINDOWS_WEEKS),
    *(f"spend_{w}w" for w in WINDOWS_WEEKS),
)
LABEL_COLUMNS = ("revenue", "purchases")

Cutoff = dt.date | str | pd.Timestamp


def _day(value: Cutoff) -> pd.Timestamp:
    return pd.Timestamp(value).normalize()


def activity_from_transactions(
    transactions: pd.DataFrame, customer: str = "customer_id", date: str = "date", amount: str = "amount"
) -> pd.DataFrame:
    """Daily activity from raw transactions: one purchase per customer and day, revenue summed."""
    days = pd.to_datetime(transactions[date]).dt.normalize()
    frame = pd.DataFrame({"customer_id": transactions[customer].to_numpy(), "date": days.to_numpy()})
    frame["revenue"] = transactions[amount].to_numpy(dtype=np.float64)
    daily = frame.groupby(["customer_id", "date"], sort=True, as_index=False)[["revenue"]].sum()
    daily.insert(2, "purchases", np.ones(len(daily), dtype=np.int64))
    return daily


def _up_to(activity: pd.DataFrame, cutoff: pd.Timestamp, period_days: int) -> pd.DataFrame:
    """Rows of active periods that end on or before the cutoff, sorted by customer and date."""
    missing = [c for c in ACTIVITY_COLUMNS if c not in activity.columns]
    if missing:
        raise ValueError(f"activity table lacks column(s) {', '.join(missing)}")
    if period_days < 1:
        raise ValueError(f"period_days must be at least 1, got {period_days}")
    dates = pd.to_datetime(activity["date"])
    ends = dates + pd.Timedelta(days=period_days - 1)
    keep = (ends <= cutoff) & (activity["purchases"].to_numpy() > 0)
    rows = pd.DataFrame(
        {
            "customer_id": activity["customer_id"].to_numpy()[keep],
            "date": dates.to_numpy()[keep],
            "purchases": activity["purchases"].to_numpy(dtype=np.float64)[keep],
            "revenue": activity["revenue"].to_numpy(dtype=np.float64)[keep],
        }
    )
    return rows.sort_values(["customer_id", "date"], kind="stable", ignore_index=True)


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        out = numerator / denominator
    return np.where(np.isfinite(out), out, np.nan)


def _per_period(rows: pd.DataFrame, end: pd.Timestamp) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """One row per active period: day relative to the cutoff, gap, count, spend, recent windows; and the
    masks of each customer's first and last period."""
    ids = rows["customer_id"].to_numpy()
    first_row = np.r_[True, ids[1:] != ids[:-1]] if len(ids) else np.zeros(0, dtype=bool)
    last_row = np.r_[ids[1:] != ids[:-1], True] if len(ids) else np.zeros(0, dtype=bool)
    day = (rows["date"].to_numpy() - end.to_datetime64()) / np.timedelta64(1, "D")  # <= 0
    gap = np.where(first_row, np.nan, np.diff(day, prepend=np.nan))
    spend = rows["revenue"].to_numpy()
    count = rows["purchases"].to_numpy()
    per_purchase = spend / count
    work = pd.DataFrame(
        {
            "customer_id": ids,
            "day": day,
            "gap": gap,
            "count": count,
            "spend": spend,
            "per_purchase": per_purchase,
        }
    )
    for w in WINDOWS_WEEKS:
        recent = day > -7 * w  # the period starts within the last w weeks
        work[f"purchases_{w}w"] = np.where(recent, count, 0.0)
        work[f"spend_{w}w"] = np.where(recent, spend, 0.0)
    return work, first_row, last_row


def features(activity: pd.DataFrame, cutoff: Cutoff, period_days: int = 1) -> pd.DataFrame:
    """One row per customer whose first activity ends on or before ``cutoff`` (index ``customer_id``).

    Ages and gaps are in days, rates per week of life; the life of a customer runs from the first day of
    its first active period to the cutoff, inclusive.
    """
    end = _day(cutoff)
    rows = _up_to(activity, end, period_days)
    work, first_row, last_row = _per_period(rows, end)
    grouped = work.groupby("customer_id", sort=True)
    sums = grouped[["count", "spend", *[c for c in work.columns if c.endswith("w")]]].sum()
    first = work[first_row].set_index("customer_id")
    last = work[last_row].set_index("customer_id")
    n = sums["count"].to_numpy()
    total = sums["spend"].to_numpy()
    first_day = first["day"].to_numpy()
    last_day = last["day"].to_numpy()
    life_days = 1 - first_day  # from the first day of the first period to the cutoff, inclusive
    life_weeks = life_days / 7
    mean_gap = grouped["gap"].mean().to_numpy()
    first_spend = first["per_purchase"].to_numpy()
    out = pd.DataFrame(index=sums.index)
    out["purchases"] = n
    out["repeat_purchases"] = n - 1
    out["recency_ratio"] = (last_day - first_day) / life_days
    out["days_since_last"] = -last_day
    out["purchases_per_week"] = n / life_weeks
    out["spend_per_week"] = total / life_weeks
    out["mean_gap_days"] = mean_gap
    out["std_gap_days"] = grouped["gap"].std(ddof=0).to_numpy()
    out["last_gap_days"] = last["gap"].to_numpy()
    out["overdue_ratio"] = _ratio(-last_day, mean_gap)
    out["first_spend"] = first_spend
    out["last_spend"] = last["per_purchase"].to_numpy()
    out["max_spend"] = grouped["per_purchase"].max().to_numpy()
    out["mean_spend"] = total / n
    out["std_spend"] = grouped["per_purchase"].std(ddof=0).to_numpy()
    out["repeat_mean_spend"] = _ratio(total - first["spend"].to_numpy(), n - first["count"].to_numpy())
    out["last_to_mean_spend"] = _ratio(out["last_spend"].to_numpy(), out["mean_spend"].to_numpy())
    for w in WINDOWS_WEEKS:
        out[f"purchases_{w}w"] = sums[f"purchases_{w}w"].to_numpy()
        out[f"spend_{w}w"] = sums[f"spend_{w}w"].to_numpy()
    out.index.name = "customer_id"
    return out[list(FEATURE_COLUMNS)].astype(np.float64)


def labels(activity: pd.DataFrame, cutoff: Cutoff, horizon_days: int, period_days: int = 1) -> pd.DataFrame:
    """Revenue and purchases in (cutoff, cutoff + horizon_days] of every customer born by the cutoff.

    Index ``customer_id``, the same rows as :func:`features` at the same cutoff; periods that straddle
    either end of the window are left out, so a period never counts both as history and as label.
    """
    if horizon_days < 1:
        raise ValueError(f"horizon_days must be at least 1, got {horizon_days}")
    start = _day(cutoff)
    born = pd.Index(_up_to(activity, start, period_days)["customer_id"].unique(), name="customer_id")
    dates = pd.to_datetime(activity["date"])
    ends = dates + pd.Timedelta(days=period_days - 1)
    inside = (dates > start) & (ends <= start + pd.Timedelta(days=horizon_days))
    window = pd.DataFrame(
        {
            "customer_id": activity["customer_id"].to_numpy()[inside],
            "revenue": activity["revenue"].to_numpy(dtype=np.float64)[inside],
            "purchases": activity["purchases"].to_numpy(dtype=np.float64)[inside],
        }
    )
    sums = window.groupby("customer_id", sort=True)[list(LABEL_COLUMNS)].sum()
    out = sums.reindex(born.sort_values(), fill_value=0.0)
    out.index.name = "customer_id"
    return out.astype(np.float64)


def serving_input(customers: pd.DataFrame, activity: pd.DataFrame, as_of: Cutoff, period_days: int = 1) -> pd.DataFrame:
    """The blend model's input, row for row of ``customers``: their summary columns (``customer_id``,
    ``frequency``, ``recency``, ``T``, ``monetary_value``) and :func:`features` of ``activity`` at ``as_of``.

    The one function that builds the registered blend model's input: production training, ``clv score``, and
    every REST or Spark caller (build the rows with it, then send them). ValueError when a customer has no
    activity on or before ``as_of``.
    """
    feats = features(activity, as_of, period_days)
    feats.index = pd.Index(canonical_ids(pd.Series(feats.index.to_numpy())), name=CUSTOMER_ID)
    summary = customers.loc[:, [c for c in (CUSTOMER_ID, *SUMMARY_COLUMNS) if c in customers.columns]]
    ids = canonical_ids(summary[CUSTOMER_ID].reset_index(drop=True))
    absent = ~ids.isin(feats.index)
    if absent.any():
        raise ValueError(f"{int(absent.sum())} customers have no activity on or before {_day(as_of).date()}")
    out = summary.reset_index(drop=True).assign(**{CUSTOMER_ID: ids})
    return pd.concat([out, feats.loc[ids.to_numpy()].reset_index(drop=True)], axis=1)
