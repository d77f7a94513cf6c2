"""Prepare stage: raw transactions -> cleaned rows, a quarantine ledger, and per-customer summaries.

The summaries follow lifetimes' ``calibration_and_holdout_data`` and
``summary_data_from_transaction_data`` exactly (``freq='D'`` with ``freq_multiplier=7`` for the
default day periods in weeks):

- purchases by a customer in the same period (day or week) merge into one, with their amounts summed;
- ``frequency`` counts the periods with a purchase after the first one;
- ``recency`` is the time from the first to the last purchase period, ``T`` from the first purchase
  period to the period holding the end of calibration, in ``time_unit``;
- ``monetary_value`` is the mean of the merged repeat purchases (0 without repeats);
- ``frequency_holdout`` counts holdout periods with a purchase, ``monetary_value_holdout`` is the mean
  holdout transaction, ``revenue_holdout`` the holdout spend.

Rules for real feeds, on top of lifetimes:

- with an order id, invoice lines become one transaction per order (dated by its first line) before
  they are merged per period;
- returns (negative amount or quantity, or an order id starting with ``cancel_prefix``) are netted
  (``returns: net``): a return is subtracted from the customer's latest purchase period at or before it
  within the same window (calibration, or full history), and a period's value never goes below 0;
  holdout revenue is holdout purchases minus holdout returns (at least 0). Returns never count as
  purchases. A return with no purchase before it is counted as ``returns_unmatched`` and has no
  effect. With ``returns: drop`` they are quarantined instead;
- timestamps with an offset are converted to ``timezone`` before periods are cut.

One difference from lifetimes, on purpose: ``calibration_end`` includes the whole day, so a purchase
at 15:00 on that day is calibration, not holdout (lifetimes compares against midnight).

The stage runs in DuckDB over a lazy relation: DuckDB reads the input itself, and pandas frames are
built only for the per-customer summaries. The quarantined rows stay a lazy relation for the edge to
write.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from typing import Protocol

import duckdb
import pandas as pd

from models.clv import DAYS_PER_UNIT
from pipeline.config import PrepareConfig
from pipeline.errors import InputError

QUARANTINE_REASONS: tuple[str, ...] = (
    "missing_customer_id",
    "missing_timestamp",
    "invalid_timestamp",
    "invalid_amount",
    "timestamp_out_of_range",
    "amount_too_large",
    "duplicate",
    "zero_amount",
    "return_dropped",
    "after_observation_end",
)
SUMMARY_COLUMNS = ("frequency", "recency", "T", "monetary_value", "total_spend", "first_purchase")
HOLDOUT_COLUMNS = ("frequency_holdout", "monetary_value_holdout", "revenue_holdout", "recent_spend")
MAX_ABS_AMOUNT = 1e13
"""Amounts this large are always errors (and beyond what exact DECIMAL(18, 4) sums hold)."""
_OFFSET = r"[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?\s*([+-][0-9]{2}(:?[0-9]{2})?|Z|UTC)$"


@dataclass(frozen=True)
class Ledger:
    """Row accounting: every input row is either used or quarantined with a reason."""

    rows_in: int
    rows_used: int
    quarantined: dict[str, int] = field(default_factory=dict)
    returns_netted: int = 0
    returns_unmatched: int = 0

    @property
    def rows_quarantined(self) -> int:
        return sum(self.quarantined.values())

    @property
    def reconciled(self) -> bool:
        return self.rows_in == self.rows_used + self.rows_quarantined


class QuarantinedRows(Protocol):
    """Rows that write themselves to Parquet: a lazy DuckDB relation, or a Spark DataFrame's wrapper."""

    def write_parquet(self, file_name: str) -> None: ...


@dataclass(frozen=True)
class PreparedData:
    """Output of the prepare stage.

    ``calibration``: one row per customer whose first purchase is on or before calibration_end, with the
    calibration summary and the holdout actuals. ``full``: one row per customer over the whole history
    up to observation_end (what the production model is fitted on and scores). ``quarantine``: the
    rejected rows (as text) with their ``reason``, as a lazy DuckDB relation (or Spark DataFrame).
    """

    calibration: pd.DataFrame
    full: pd.DataFrame
    quarantine: QuarantinedRows
    ledger: Ledger
    weekly: pd.DataFrame
    """Repeat purchase periods per week (``week``, ``repeat_purchases``) by the calibration customers."""
    calibration_end: dt.date
    observation_end: dt.date
    duration_holdout: float
    first_date: dt.date
    last_date: dt.date

    @property
    def customers_new_in_holdout(self) -> int:
        """Customers whose first purchase falls in the holdout: never in the calibration fit."""
        return len(self.full) - len(self.calibration)


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _timestamp_sql(dtype: str, timestamp_format: str | None, zone: str) -> str:
    column, tz = '"timestamp"', _literal(zone)
    if dtype.startswith("TIMESTAMP WITH TIME ZONE"):
        return f"timezone({tz}, {column})"
    if dtype == "DATE" or dtype.startswith("TIMESTAMP"):
        return f"CAST({column} AS TIMESTAMP)"
    text = f"NULLIF(trim(CAST({column} AS VARCHAR)), '')"
    if timestamp_format is not None:
        parsed = f"try_strptime({text}, {_literal(timestamp_format)})"
        return f"timezone({tz}, {parsed})" if "%z" in timestamp_format or "%Z" in timestamp_format else parsed
    return (
        f"CASE WHEN regexp_matches({text}, {_literal(_OFFSET)}) "
        f"THEN timezone({tz}, TRY_CAST({text} AS TIMESTAMPTZ)) "
        f"ELSE coalesce(TRY_CAST({text} AS TIMESTAMP), try_strptime({text}, '%Y%m%d')) END"
    )


def _classified_sql(
    columns: dict[str, str], config: PrepareConfig, timestamp_format: str | None, duplicates: bool
) -> str:
    """Every input row with its parsed values and a quarantine ``reason`` (NULL when it is used)."""
    has_order = "order_id" in columns
    if "quantity" in columns:
        value = "TRY_CAST(quantity AS DOUBLE) * TRY_CAST(unit_price AS DOUBLE)"
    else:
        value = "TRY_CAST(amount AS DOUBLE)"
    order = "NULLIF(trim(CAST(order_id AS VARCHAR)), '')" if has_order else "NULL"
    cancelled = (
        f"coalesce(starts_with({order}, {_literal(config.cancel_prefix)}), false)"
        if has_order and config.cancel_prefix
        else "false"
    )
    raw = ", ".join(f'"{c}"' for c in columns)
    native_ts = columns["timestamp"] == "DATE" or columns["timestamp"].startswith("TIMESTAMP")
    raw_ts = '"timestamp"' if native_ts else "NULLIF(trim(CAST(\"timestamp\" AS VARCHAR)), '')"
    duplicate = f"row_number() OVER (PARTITION BY {raw}) > 1" if duplicates else "false"
    rules = [
        "WHEN cid IS NULL THEN 'missing_customer_id'",
        "WHEN raw_ts IS NULL THEN 'missing_timestamp'",
        "WHEN ts IS NULL THEN 'invalid_timestamp'",
        "WHEN raw_value IS NULL OR NOT isfinite(raw_value) THEN 'invalid_amount'",
        f"WHEN abs(raw_value) >= {MAX_ABS_AMOUNT!r} THEN 'amount_too_large'",
        f"WHEN CAST(ts AS DATE) < DATE '{config.min_date}' THEN 'timestamp_out_of_range'",
    ]
    if config.max_amount is not None:
        rules.append(f"WHEN abs(raw_value) > {float(config.max_amount)!r} THEN 'amount_too_large'")
    rules.append("WHEN is_duplicate THEN 'duplicate'")
    if config.zero_amount == "quarantine":
        rules.append("WHEN raw_value = 0 THEN 'zero_amount'")
    if config.returns == "drop":
        rules.append("WHEN is_return THEN 'return_dropped'")
    # Without an observation end, a date after today is still a typo, not the end of the holdout.
    observation_end = config.observation_end or dt.date.today()
    rules.append(f"WHEN CAST(ts AS DATE) > DATE '{observation_end}' THEN 'after_observation_end'")
    return f"""
        SELECT *,
               CASE WHEN is_return THEN -abs(raw_value) ELSE raw_value END AS value,
               CASE {" ".join(rules)} ELSE NULL END AS reason
        FROM (
            SELECT *, (raw_value < 0 OR {cancelled}) AS is_return
            FROM (
                SELECT {raw},
                       NULLIF(trim(CAST(customer_id AS VARCHAR)), '') AS cid,
                       {raw_ts} AS raw_ts,
                       {_timestamp_sql(columns["timestamp"], timestamp_format, config.timezone)} AS ts,
                       {value} AS raw_value,
                       {order} AS order_key,
                       {duplicate} AS is_duplicate
                FROM tx
            )
        )
    """


def _period_start(day: dt.date, period: str) -> dt.date:
    """First day of the period holding ``day``: weeks start on Monday (DuckDB and pandas 'W')."""
    return day if period == "day" else day - dt.timedelta(days=day.weekday())


def _dsum(column: str) -> str:
    """An exact, order-independent sum of a DECIMAL amount column, as DOUBLE."""
    return f"CAST(sum({column}) AS DOUBLE)"


def _daily_sql(classified: str) -> str:
    """The one scan of the input: rows grouped by reason, customer, order, return flag and day.

    Amounts are summed as DECIMAL(18, 4) from here on, exactly: floating-point sums split across
    threads would depend on the thread schedule, and the same input must always give the same numbers.
    """
    return f"""
        SELECT reason, cid, order_key, is_return, CAST(ts AS DATE) AS d,
               sum(TRY_CAST(value AS DECIMAL(18, 4))) AS amount, count(*) AS n
        FROM ({classified}) GROUP BY ALL
    """


def _window_sql(
    name: str, cutoff: dt.date, period: str, unit_days: float, net_returns: bool, one_row_per_day: bool
) -> str:
    """CTE ``summary_<name>``: the per-customer summary of purchases (netted returns) up to ``cutoff``.

    ``one_row_per_day``: ``orders`` already holds one row per customer and day (no order ids), so
    with day periods there is nothing left to merge.
    """
    trunc = "d" if period == "day" else "date_trunc('week', d)::DATE"
    purchases = (
        f"SELECT cid, d AS p, amount FROM orders WHERE d <= DATE '{cutoff}'"
        if period == "day" and one_row_per_day
        else f"""SELECT cid, {trunc} AS p, sum(amount) AS amount
                 FROM orders WHERE d <= DATE '{cutoff}' GROUP BY cid, p"""
    )
    netted = (
        f"""
        refunds_{name} AS (
            SELECT r.cid, pp.p, sum(r.amount) AS amount, count(*) AS n
            FROM (SELECT cid, {trunc} AS p, amount FROM refunds WHERE d <= DATE '{cutoff}') r
            ASOF JOIN purchases_{name} pp ON r.cid = pp.cid AND r.p >= pp.p
            GROUP BY r.cid, pp.p
        ),
        periods_{name} AS (
            SELECT cid, p,
                   greatest(purchases_{name}.amount + coalesce(refunds_{name}.amount, 0), 0) AS amount
            FROM purchases_{name} LEFT JOIN refunds_{name} USING (cid, p)
        ),"""
        if net_returns
        else f"""
        periods_{name} AS (SELECT cid, p, amount FROM purchases_{name}),"""
    )
    cutoff_period = _period_start(cutoff, period)
    # Repeat spend = all spend minus the first period's: one aggregation, no self-join.
    return f"""
        purchases_{name} AS ({purchases}),{netted}
        summary_{name} AS (
            SELECT cid,
                   CAST(count(*) - 1 AS DOUBLE) AS frequency,
                   date_diff('day', min(p), max(p)) / {unit_days} AS recency,
                   date_diff('day', min(p), DATE '{cutoff_period}') / {unit_days} AS "T",
                   CASE WHEN count(*) > 1
                        THEN CAST(sum(amount) - arg_min(amount, p) AS DOUBLE) / (count(*) - 1) ELSE 0.0 END
                       AS monetary_value,
                   {_dsum("amount")} AS total_spend,
                   min(p) AS first_purchase
            FROM periods_{name} GROUP BY cid
        )"""


_EMPTY_REFUNDS = "SELECT NULL::VARCHAR AS cid, NULL::DATE AS d, NULL::DECIMAL(38, 4) AS amount WHERE false"


def _valid_sql(daily: str, observation_end: dt.date) -> str:
    return f"SELECT * FROM {daily} WHERE reason IS NULL AND d <= DATE '{observation_end}'"


def _orders_sql(valid: str, has_order: bool) -> str:
    """Purchases as transactions: one per order (dated by its first line) with order ids, else per row."""
    if has_order:
        # Lines without an order id are one transaction per customer and day, not one giant order.
        return f"""SELECT cid, min(d) AS d, sum(amount) AS amount, 1 AS n
            FROM ({valid}) WHERE NOT is_return GROUP BY cid, coalesce(order_key, 'day ' || CAST(d AS VARCHAR))"""
    return f"SELECT cid, d, amount, n FROM ({valid}) WHERE NOT is_return"


def _weekly_sql(daily: str, calibration_end: dt.date, observation_end: dt.date, has_order: bool, period: str) -> str:
    """Repeat purchase periods per calendar week (Monday start) by the calibration customers."""
    trunc = "d" if period == "day" else "date_trunc('week', d)::DATE"
    orders = _orders_sql(_valid_sql(daily, observation_end), has_order)
    return f"""
        WITH purchases AS ({orders}),
        periods AS (SELECT DISTINCT cid, {trunc} AS p FROM purchases),
        calibration_customers AS (
            SELECT cid FROM purchases GROUP BY cid HAVING min(d) <= DATE '{calibration_end}'
        ),
        firsts AS (
            SELECT cid, min(p) AS first_p FROM periods JOIN calibration_customers USING (cid) GROUP BY cid
        )
        SELECT date_trunc('week', p)::DATE AS week, count(*) FILTER (WHERE p > first_p) AS repeat_purchases
        FROM periods JOIN firsts USING (cid) GROUP BY week ORDER BY week
    """


def _summaries_sql(
    config: PrepareConfig,
    observation_end: dt.date,
    has_order: bool,
    unit_days: float,
    daily: str,
    net: bool,
    with_holdout: bool,
    holdout_days: int = 0,
) -> str:
    """One row per customer: the full-history summary, plus (``with_holdout``) the calibration summary
    prefixed ``cal_`` and the holdout actuals."""
    cal_end = config.calibration_end
    valid = _valid_sql(daily, observation_end)
    orders = _orders_sql(valid, has_order)
    refunds = f"SELECT cid, d, amount FROM ({valid}) WHERE is_return" if net else _EMPTY_REFUNDS
    full = ", ".join(f'f."{c}"' for c in SUMMARY_COLUMNS)
    ctes = [
        f"orders AS {'MATERIALIZED ' if has_order else ''}({orders})",
        f"refunds AS ({refunds})",
        _window_sql("full", observation_end, config.period, unit_days, net, not has_order),
    ]
    if not with_holdout:
        return f"WITH {', '.join(ctes)} SELECT f.cid AS customer_id, {full} FROM summary_full f ORDER BY customer_id"
    holdout_periods = "d" if config.period == "day" else "date_trunc('week', d)"
    ctes += [
        _window_sql("cal", cal_end, config.period, unit_days, net, not has_order),
        f"""hold AS (
            SELECT cid,
                   CAST(count(DISTINCT {holdout_periods}) AS DOUBLE) AS frequency_holdout,
                   {_dsum("amount")} / sum(n) AS monetary_value_holdout,
                   sum(amount) AS gross
            FROM orders WHERE d > DATE '{cal_end}' GROUP BY cid
        )""",
        f"""hold_refunds AS (
            SELECT cid, sum(amount) AS amount FROM refunds WHERE d > DATE '{cal_end}' GROUP BY cid
        )""",
        f"""recent AS (
            SELECT cid, CAST(greatest(sum(amount), 0) AS DOUBLE) AS recent_spend
            FROM (SELECT cid, d, amount FROM orders UNION ALL SELECT cid, d, amount FROM refunds)
            WHERE d > DATE '{cal_end}' - INTERVAL ({holdout_days}) DAY AND d <= DATE '{cal_end}' GROUP BY cid
        )""",
    ]
    cal = ", ".join(f'c."{c}" AS "cal_{c}"' for c in SUMMARY_COLUMNS)
    return f"""
        WITH {", ".join(ctes)}
        SELECT f.cid AS customer_id, {full}, {cal},
               coalesce(h.frequency_holdout, 0.0) AS frequency_holdout,
               coalesce(h.monetary_value_holdout, 0.0) AS monetary_value_holdout,
               CAST(greatest(coalesce(h.gross, 0) + coalesce(hr.amount, 0), 0) AS DOUBLE) AS revenue_holdout,
               coalesce(rc.recent_spend, 0.0) AS recent_spend
        FROM summary_full f
        LEFT JOIN summary_cal c USING (cid)
        LEFT JOIN hold h USING (cid)
        LEFT JOIN hold_refunds hr USING (cid)
        LEFT JOIN recent rc USING (cid)
        ORDER BY customer_id
    """


def _returns_sql(daily: str, observation_end: dt.date, period: str) -> str:
    """Counts of used return rows, and of those with no purchase period at or before them."""
    trunc = "d" if period == "day" else "date_trunc('week', d)::DATE"
    return f"""
        WITH valid AS (
            SELECT cid, {trunc} AS p, is_return, n FROM {daily}
            WHERE reason IS NULL AND d <= DATE '{observation_end}'
        ),
        purchases AS (SELECT DISTINCT cid, p FROM valid WHERE NOT is_return),
        refunds AS (SELECT cid, p, n FROM valid WHERE is_return)
        SELECT coalesce(sum(n) FILTER (WHERE purchases.p IS NOT NULL), 0) AS netted,
               coalesce(sum(n) FILTER (WHERE purchases.p IS NULL), 0) AS unmatched
        FROM refunds ASOF LEFT JOIN purchases ON refunds.cid = purchases.cid AND refunds.p >= purchases.p
    """


def _query(relation: duckdb.DuckDBPyRelation, name: str, sql: str) -> duckdb.DuckDBPyRelation:
    """Run ``sql`` with ``relation`` visible as table ``name`` (lazily, in the relation's connection)."""
    result = relation.query(name, sql)
    assert result is not None  # a SELECT always yields a relation
    return result


@dataclass(frozen=True)
class AsOfData:
    """Output of :func:`prepare_as_of`: the per-customer summary of everything up to ``as_of``."""

    customers: pd.DataFrame
    quarantine: duckdb.DuckDBPyRelation
    ledger: Ledger
    as_of: dt.date


@dataclass(frozen=True)
class _Scan:
    """The input scanned once: rows per (reason, customer, order, return flag, day) in table ``daily``."""

    daily: str
    columns: dict[str, str]
    classified_sql: str
    ledger: Ledger
    first_date: dt.date
    last_date: dt.date
    observation_end: dt.date
    net: bool


def _scan(
    transactions: duckdb.DuckDBPyRelation,
    config: PrepareConfig,
    timestamp_format: str | None,
    source: str,
    daily: str,
) -> _Scan:
    columns = {name: str(dtype) for name, dtype in zip(transactions.columns, transactions.types, strict=True)}
    has_order = "order_id" in columns
    duplicates = config.duplicates == "quarantine" or (config.duplicates == "auto" and has_order)
    classified_sql = _classified_sql(columns, config, timestamp_format, duplicates)
    _query(transactions, "tx", _daily_sql(classified_sql)).create(daily)
    counts = _query(
        transactions,
        "tx",
        f"""SELECT coalesce(reason, '') AS reason, sum(n) AS n, min(d) AS first, max(d) AS last,
                   sum(n) FILTER (WHERE is_return) AS returns
            FROM {daily} GROUP BY ALL""",
    ).fetchall()
    by_reason = {reason: (int(n), first, last, int(r or 0)) for reason, n, first, last, r in counts}
    rows_used, first_date, last_date, returns = by_reason.pop("", (0, None, None, 0))
    if first_date is None or last_date is None:
        reasons = ", ".join(f"{v[0]} {k}" for k, v in sorted(by_reason.items())) or "the input is empty"
        raise InputError(f"{source}: no usable transactions after cleaning ({reasons})")
    observation_end = config.observation_end or last_date
    if observation_end < first_date:
        raise InputError(
            f"{source}: prepare.observation_end {observation_end} is before the first transaction ({first_date})"
        )
    rows_in = int(_query(transactions, "tx", "SELECT count(*) FROM tx").fetchall()[0][0])
    net = config.returns == "net" and returns > 0
    netted, unmatched = (0, 0)
    if net:
        returns_sql = _returns_sql(daily, observation_end, config.period)
        netted, unmatched = _query(transactions, "tx", returns_sql).fetchall()[0]
    quarantined = {reason: by_reason[reason][0] for reason in QUARANTINE_REASONS if reason in by_reason}
    ledger = Ledger(rows_in, rows_used, quarantined, int(netted), int(unmatched))
    if not ledger.reconciled:
        raise InputError(
            f"{source}: row reconciliation failed: {rows_in} rows in, {rows_used} used + "
            f"{ledger.rows_quarantined} quarantined"
        )
    return _Scan(daily, columns, classified_sql, ledger, first_date, last_date, observation_end, net)


def _quarantine(transactions: duckdb.DuckDBPyRelation, scan: _Scan) -> duckdb.DuckDBPyRelation:
    raw = ", ".join(f'CAST("{c}" AS VARCHAR) AS "{c}"' for c in scan.columns)
    return _query(transactions, "tx", f"SELECT {raw}, reason FROM ({scan.classified_sql}) WHERE reason IS NOT NULL")


def _daily_table() -> str:
    return f"clv_prepare_{uuid.uuid4().hex}"


def prepare(
    transactions: duckdb.DuckDBPyRelation,
    config: PrepareConfig,
    timestamp_format: str | None = None,
    source: str = "input",
) -> PreparedData:
    """Clean, quarantine and summarise ``transactions`` for training: calibration, holdout and full history.

    Columns: customer_id, timestamp, amount (or quantity and unit_price) and optionally order_id.
    The input is scanned once into a table of rows per (reason, customer, order, day) in the
    relation's DuckDB connection (which spills to disk past its memory limit); the ledger and the
    summaries come from that table, which is dropped before returning.
    """
    daily = _daily_table()
    try:
        scan = _scan(transactions, config, timestamp_format, source, daily)
        calibration_end = config.calibration_end
        if calibration_end < scan.first_date or calibration_end >= scan.last_date:
            raise InputError(
                f"{source}: prepare.calibration_end {calibration_end} is outside the data "
                f"({scan.first_date} to {scan.last_date}); it must leave transactions on both sides"
            )
        unit_days = DAYS_PER_UNIT[config.time_unit]
        has_order = "order_id" in scan.columns
        observation_end = scan.observation_end
        holdout_days = (
            _period_start(observation_end, config.period) - _period_start(calibration_end, config.period)
        ).days
        sql = _summaries_sql(
            config, observation_end, has_order, unit_days, daily, scan.net, with_holdout=True, holdout_days=holdout_days
        )
        table = _query(transactions, "tx", sql).df()
        weekly_sql = _weekly_sql(daily, calibration_end, observation_end, has_order, config.period)
        weekly = _query(transactions, "tx", weekly_sql).df()
    finally:
        _query(transactions, "tx", f"DROP TABLE IF EXISTS {daily}")
    full = table.loc[:, ["customer_id", *SUMMARY_COLUMNS]].reset_index(drop=True)
    in_calibration = table["cal_frequency"].notna()
    calibration = table.loc[in_calibration, ["customer_id", *[f"cal_{c}" for c in SUMMARY_COLUMNS], *HOLDOUT_COLUMNS]]
    calibration = calibration.rename(columns=lambda c: c.removeprefix("cal_")).reset_index(drop=True)
    duration_holdout = holdout_days / unit_days
    calibration["duration_holdout"] = duration_holdout
    if calibration.empty:
        raise InputError(f"{source}: no customer made a purchase on or before calibration_end {calibration_end}")
    return PreparedData(
        calibration=calibration,
        full=full,
        quarantine=_quarantine(transactions, scan),
        ledger=scan.ledger,
        weekly=weekly,
        calibration_end=calibration_end,
        observation_end=observation_end,
        duration_holdout=duration_holdout,
        first_date=scan.first_date,
        last_date=scan.last_date,
    )


def prepare_as_of(
    transactions: duckdb.DuckDBPyRelation,
    config: PrepareConfig,
    as_of: dt.date,
    timestamp_format: str | None = None,
    source: str = "input",
) -> AsOfData:
    """Clean, quarantine and summarise ``transactions`` up to ``as_of`` for scoring (no holdout).

    The same rules as :func:`prepare`; rows after ``as_of`` are quarantined as ``after_observation_end``.
    """
    config = config.model_copy(update={"observation_end": as_of})
    daily = _daily_table()
    try:
        scan = _scan(transactions, config, timestamp_format, source, daily)
        has_order = "order_id" in scan.columns
        unit_days = DAYS_PER_UNIT[config.time_unit]
        sql = _summaries_sql(config, as_of, has_order, unit_days, daily, scan.net, with_holdout=False)
        customers = _query(transactions, "tx", sql).df()
    finally:
        _query(transactions, "tx", f"DROP TABLE IF EXISTS {daily}")
    return AsOfData(customers=customers, quarantine=_quarantine(transactions, scan), ledger=scan.ledger, as_of=as_of)
