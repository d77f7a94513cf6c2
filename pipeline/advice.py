"""Advice on the data after prepare: what the feed looks like and which ``business.type`` fits it.

A feed whose customers buy at regular intervals of a billing period (a week, a month, a year) and pay
near-constant amounts is probably a subscription feed (``contractual``): BG/NBD is the wrong model for it.
A feed whose spend has no spread across customers cannot inform Gamma-Gamma. Each piece of advice is one
line starting with ``advice:``; the job prints it, and it goes to the summary and the report.

The signals, on customers with at least :data:`MIN_REPEATS` repeat purchases:

- **regular**: their mean interval between purchases (recency / frequency) is within :data:`TOLERANCE`
  of one billing period for at least :data:`REGULAR_SHARE` of them, and a purchase has come within about
  one period of the end for the active ones;
- **near-constant amounts**: at least :data:`REGULAR_SHARE` of them have a mean repeat spend equal (to the
  cent) to one of the :data:`PRICE_LEVELS` most common values (plan prices).

And one on prepare's row accounting: under ``prepare.duplicates: auto`` with an order id mapped, a row
repeated in every column is quarantined as a double load. When that is at least :data:`ADVICE_SHARE` of
the feed, the feed is probably invoice lines without their product column (two products at the same
quantity and price are then the same row): the advice says how to keep them. The same share of rows
quarantined as ``invalid_amount`` gets the advice on the CSV's number separators, and as ``invalid_timestamp``
the advice on the timestamps' format (a feed that mixes two formats loses every row of the other one).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from models.clv import DAYS_PER_UNIT
from pipeline.config import Config, DataConfig, PrepareConfig
from pipeline.config.business import BILLING_PERIOD_DAYS
from pipeline.engines.prepared import AMOUNT_HINT, Ledger, PreparedData
from pipeline.engines.rules import SCALE

__all__ = [
    "ADVICE_SHARE",
    "MIN_CUSTOMERS",
    "MIN_REPEATS",
    "PRICE_LEVELS",
    "REGULAR_SHARE",
    "TOLERANCE",
    "FeedShape",
    "advice_lines",
    "advise_prepared",
    "amount_advice",
    "charges_summary",
    "duplicate_advice",
    "feed_shape",
    "padded_id_advice",
    "prepared_advice",
    "timestamp_advice",
]

MIN_REPEATS = 2
MIN_CUSTOMERS = 30
TOLERANCE = 0.15
REGULAR_SHARE = 0.8
PRICE_LEVELS = 10
NO_SPREAD_CV = 0.01
ADVICE_SHARE = 0.01
"""Whole-row duplicates, or amounts that are not numbers, in at least this share of the input rows get the
advice (double loads and broken amounts are rarer than that)."""


@dataclass(frozen=True)
class FeedShape:
    """What the feed looks like: the billing period its intervals match (None: irregular), the share of
    repeat customers on it, the share paying one of a few price levels, and the spread of spend."""

    repeat_customers: int
    period: str | None
    regular_share: float
    constant_amount_share: float
    spend_cv: float

    @property
    def looks_contractual(self) -> bool:
        return self.period is not None and self.constant_amount_share >= REGULAR_SHARE

    def as_dict(self) -> dict[str, object]:
        return {
            "repeat_customers": self.repeat_customers,
            "billing_period": self.period,
            "regular_share": self.regular_share,
            "constant_amount_share": self.constant_amount_share,
            "spend_cv": self.spend_cv,
            "looks_contractual": self.looks_contractual,
        }


def feed_shape(full: pd.DataFrame, days_per_unit: float) -> FeedShape:
    """The shape of a per-customer summary (frequency, recency in units of ``days_per_unit`` days, and
    monetary_value when the feed has amounts)."""
    # the repeat customers' columns, taken one by one (not a filtered copy of the whole summary)
    repeat = full["frequency"].to_numpy(dtype=float) >= MIN_REPEATS
    customers = int(repeat.sum())
    if customers < MIN_CUSTOMERS:
        return FeedShape(customers, None, 0.0, 0.0, float("nan"))
    frequency = full["frequency"].to_numpy(dtype=float)[repeat]
    interval = full["recency"].to_numpy(dtype=float)[repeat] * days_per_unit / frequency
    best, share = None, 0.0
    for name, days in BILLING_PERIOD_DAYS.items():
        on_period = float(np.mean(np.abs(interval / days - 1.0) <= TOLERANCE))
        if on_period > share:
            best, share = name, on_period
    period = best if share >= REGULAR_SHARE else None
    if "monetary_value" not in full.columns:
        return FeedShape(customers, period, share, 0.0, float("nan"))
    spend = full["monetary_value"].to_numpy(dtype=float)[repeat]
    levels = pd.Series(np.round(spend, 2)).value_counts()
    constant = float(levels.head(PRICE_LEVELS).sum() / len(spend))
    mean = float(np.mean(spend))
    cv = float(np.std(spend) / mean) if mean > 0 else float("nan")
    return FeedShape(customers, period, share, constant, cv)


def advice_lines(shape: FeedShape, business_type: str) -> tuple[str, ...]:
    """The advice for a feed of this shape run as ``business_type``."""
    lines = []
    if shape.looks_contractual and business_type != "contractual":
        lines.append(
            f"advice: this feed looks like subscriptions ({shape.regular_share:.0%} of repeat customers buy every "
            f"{shape.period} and {shape.constant_amount_share:.0%} pay one of a few fixed prices): it is probably "
            f"contractual; set business.type: contractual (billing_period: {shape.period}) instead of "
            f"{business_type}"
        )
    elif business_type == "contractual" and shape.repeat_customers >= MIN_CUSTOMERS and shape.period is None:
        # Only the billing intervals: a subscription business may have more plans than PRICE_LEVELS prices.
        lines.append(
            f"advice: only {shape.regular_share:.0%} of repeat customers are billed at a regular period (a week, "
            "a month or a year): this feed may not be contractual (business.type: non_contractual)"
        )
    if business_type == "non_contractual" and np.isfinite(shape.spend_cv) and shape.spend_cv < NO_SPREAD_CV:
        lines.append(
            "advice: spend has no spread across customers (coefficient of variation "
            f"{shape.spend_cv:.3g}): it cannot inform Gamma-Gamma; set fit.spend_model: none"
        )
    return tuple(lines)


def charges_summary(charges: pd.DataFrame) -> pd.DataFrame:
    """A billing feed's charges (customer_id, charge_date, amount) as the summary :func:`feed_shape` reads:
    frequency (charge days after the first), recency (days from the first to the last), monetary_value
    (the mean spend of the repeat charge days). The charges come from DuckDB in no set order, so amounts are
    rounded to 1/``SCALE`` and added up as exact integers (as the contractual prepare adds up revenue,
    :mod:`pipeline.engines.rules`): the same charges in any row order give the same bits."""
    days = pd.to_datetime(charges["charge_date"])
    amounts = charges["amount"].to_numpy(dtype=float)
    units = (np.sign(amounts) * np.floor(np.abs(amounts) * SCALE + 0.5)).astype(np.int64)  # DuckDB's round
    frame = pd.DataFrame({"customer_id": charges["customer_id"].to_numpy(), "day": days.to_numpy(), "units": units})
    daily = frame.groupby(["customer_id", "day"])["units"].sum().reset_index()
    first = daily.groupby("customer_id")["day"].transform("min")
    repeat = daily[daily["day"] > first].groupby("customer_id")["units"]
    grouped = daily.groupby("customer_id")
    out = pd.DataFrame(
        {
            "frequency": grouped["day"].count() - 1,
            "recency": (grouped["day"].max() - grouped["day"].min()).dt.days.astype(float),
        }
    )
    mean = repeat.sum().astype(float) / (SCALE * repeat.count())
    out["monetary_value"] = mean.reindex(out.index).fillna(0.0)
    return out.reset_index()


def advise_prepared(full: pd.DataFrame, days_per_unit: float, business_type: str) -> tuple[str, ...]:
    """The advice lines for a prepared per-customer summary (the workflow's hook after prepare)."""
    return advice_lines(feed_shape(full, days_per_unit), business_type)


def duplicate_advice(ledger: Ledger, prepare: PrepareConfig) -> tuple[str, ...]:
    """The advice when ``prepare.duplicates: auto`` quarantined many whole-row duplicates (see above)."""
    duplicates = ledger.quarantined.get("duplicate", 0)
    if prepare.duplicates != "auto" or prepare.duplicate_key is not None or not ledger.rows_in:
        return ()
    if duplicates < ADVICE_SHARE * ledger.rows_in:
        return ()
    return (
        f"advice: {duplicates:,} rows ({duplicates / ledger.rows_in:.1%} of the input) repeat another row in every "
        "column and were quarantined as double loads (prepare.duplicates: auto with an order id). If the feed "
        "has one row per product line but no product column, they are real lines (two products at the same "
        "quantity and price): add the product column and set prepare.duplicate_key (e.g. [InvoiceNo, "
        "StockCode]), or set prepare.duplicates: keep",
    )


def amount_advice(ledger: Ledger, data: DataConfig) -> tuple[str, ...]:
    """The advice on a CSV's amounts that are not numbers: at least :data:`ADVICE_SHARE` of the rows read with the
    plain ``1234.56`` (its number separators are the usual cause); or any row of a CSV read with a decimal comma
    and no thousands separator, where the usual cause is an amount of 1,000 or more written ``1.234,56``: few
    rows, but the largest amounts (a trial's feed lost 0.28% of its lines so, and its spend model's mean fell from
    152 to 139, with no word)."""
    invalid = ledger.quarantined.get("invalid_amount", 0)
    if data.source != "csv" or not ledger.rows_in or not invalid:
        return ()
    rows = f"{invalid:,} row{'s' if invalid > 1 else ''} ({invalid / ledger.rows_in:.1%} of the input)"
    if data.csv.decimal == "," and data.csv.thousands is None:
        return (
            f"advice: {rows} quarantined as invalid_amount (empty, or not a number in the configured format: decimal "
            "comma, no thousands separator). If the feed writes 1,000 or more as 1.234,56, set data.csv.thousands: "
            "'.': such rows would be its largest amounts",
        )
    if data.csv.rewrites_numbers or invalid < ADVICE_SHARE * ledger.rows_in:
        return ()
    return (f"advice: {rows} quarantined: {AMOUNT_HINT}",)


def timestamp_advice(ledger: Ledger, timestamp_format: str | None) -> tuple[str, ...]:
    """The advice when at least :data:`ADVICE_SHARE` of the rows have a timestamp that cannot be read (in the
    format given or detected, ``timestamp_format``, when the timestamps are text)."""
    invalid = ledger.quarantined.get("invalid_timestamp", 0)
    if not ledger.rows_in or invalid < ADVICE_SHARE * ledger.rows_in:
        return ()
    read_as = f" as {timestamp_format}" if timestamp_format else ""
    return (
        f"advice: {invalid:,} rows ({invalid / ledger.rows_in:.1%} of the input) were quarantined because their "
        f"timestamp could not be read{read_as} (invalid_timestamp): if the feed mixes formats, write them in one, "
        "or set data.timestamp_format to the format of most rows",
    )


def padded_id_advice(ids: pd.Series) -> tuple[str, ...]:
    """The advice when ids of digits are other ids with their leading zeros removed (``3100488`` and
    ``03100488``): ids are text, so they are two customers; an export that lost its zeros in one file (a
    spreadsheet) counted a trial's 4,996 customers as 6,111. One scan when no id starts with a zero; else the ids
    that do, without their zeros, are looked up among those that do not (ids padded alike, ``0000123456``, cost
    a scan and a lookup in an empty set)."""
    text = pa.array(ids, type=pa.string(), from_pandas=True)
    zero_led = pc.starts_with(text, "0")
    if not pc.any(zero_led).as_py():
        return ()
    digits = pc.match_substring_regex(text, "^[0-9]+$")
    padded = text.filter(pc.and_(zero_led, digits))
    unpadded = text.filter(pc.and_(pc.invert(zero_led), digits))
    if not len(padded) or not len(unpadded):
        return ()
    stripped = pc.utf8_ltrim(padded, "0")
    found = pc.is_in(stripped, value_set=unpadded)
    shared = pc.unique(stripped.filter(found))
    if not len(shared):
        return ()
    key = shared[0].as_py()
    example = f"'{key}' and '{padded.filter(pc.equal(stripped, key))[0].as_py()}'"
    customers = int(pc.sum(found).as_py()) + len(shared)
    width = pc.max(pc.utf8_length(padded)).as_py()
    groups = f"{len(shared):,} group{'s' if len(shared) > 1 else ''}"
    return (
        f"advice: {customers:,} customer ids are the same digits as another id but for leading zeros (e.g. "
        f"{example}), in {groups}: ids are text, so each is a customer of its own; if some files lost the zeros "
        f"(a spreadsheet), write the ids one way in a data.query (e.g. lpad(customer_id, {width}, '0'), the "
        "padded ids' width)",
    )


def prepared_advice(prepared: PreparedData, config: Config) -> tuple[str, ...]:
    """Every advice line on the prepared data (the non-contractual job's hook after prepare)."""
    shape = advise_prepared(prepared.full, DAYS_PER_UNIT[config.prepare.time_unit], config.business.type)
    rows = duplicate_advice(prepared.ledger, config.prepare) + amount_advice(prepared.ledger, config.data)
    ids = padded_id_advice(prepared.full["customer_id"])
    return shape + rows + timestamp_advice(prepared.ledger, prepared.timestamp_format) + ids
