"""Realistic feeds generated inside the tests, for the prepare stage and the end-to-end runs.

:func:`online_retail_lines` writes invoice lines shaped like the UCI "Online Retail" file (Chen, Sain &
Guo 2012): InvoiceNo, StockCode, Description, Quantity, InvoiceDate (``12/1/2010 8:26``), UnitPrice,
CustomerID (``17850.0``, or empty), Country; 2010-12-01 to 2011-12-09. It holds what makes that file
hard: several products per invoice, often at the same quantity and price; cancellations (``C`` invoice
numbers, negative quantities); lines without a customer id; and a known number of lines loaded twice.

Customers follow the BG/NBD story with Gamma-Gamma spend, so that the models can be fitted on it:
each has a purchase rate (gamma across customers), drops out after any purchase with a probability
(beta across customers), and has a basket size and a quantity scale of their own (spend varies across
customers much more than within).

:func:`subscription_feed` (monthly charges at a constant price per plan, with sBG cancellations) and
:func:`fixed_price_feed` (every purchase costs the same) are the feeds whose spend does not vary, and
:func:`bgnbd_purchases` the purchase days of customers who follow BG/NBD.

:func:`duckdb_engine` and :func:`duckdb_relation` are the configured engine and an opened feed's relation, typed
as the DuckDB engine's, for the prepares that take a DuckDB connection and relation; :func:`query_rows` the rows
of a query on DuckDB's default connection.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from pipeline.config import EngineConfig
from pipeline.engines import Source, open_engine
from pipeline.engines.duckdb_engine import DuckDBEngine

__all__ = [
    "RETAIL_COLUMNS",
    "RETAIL_MAPPING",
    "RetailFeed",
    "bgnbd_purchases",
    "duckdb_engine",
    "duckdb_relation",
    "fixed_price_feed",
    "monthly_exports",
    "online_retail_lines",
    "query_rows",
    "subscription_feed",
    "write_with_separators",
]

RETAIL_MAPPING = {
    "customer_id": "CustomerID",
    "timestamp": "InvoiceDate",
    "quantity": "Quantity",
    "unit_price": "UnitPrice",
    "order_id": "InvoiceNo",
}
"""The job's columns (``data.columns``) for the retail lines of :func:`online_retail_lines`."""

RETAIL_COLUMNS = (
    "InvoiceNo",
    "StockCode",
    "Description",
    "Quantity",
    "InvoiceDate",
    "UnitPrice",
    "CustomerID",
    "Country",
)
FIRST_DAY = dt.datetime(2010, 12, 1)
LAST_DAY = dt.datetime(2011, 12, 9)
_PRICES = (0.42, 0.85, 1.25, 1.65, 2.10, 2.55, 2.95, 3.75, 4.95, 7.95, 12.75)
_QUANTITIES = (1, 2, 3, 4, 6, 12)
_COLOURS = ("WHITE", "RED", "PINK", "BLUE", "GREEN", "IVORY", "BLACK", "VINTAGE", "REGENCY", "SET OF 3")
_ITEMS = (
    "HANGING HEART T-LIGHT HOLDER",
    "METAL LANTERN",
    "CREAM CUPID HEARTS COAT HANGER",
    "KNITTED UNION FLAG HOT WATER BOTTLE",
    "WOOLLY HOTTIE",
    "GLASS STAR FROSTED T-LIGHT HOLDER",
    "HAND WARMER",
    "ALARM CLOCK BAKELIKE",
    "JUMBO BAG",
    "LUNCH BAG",
    "CAKE CASES",
    "TEA CUP AND SAUCER",
    "PAPER CHAIN KIT",
    "DOORMAT",
    "NIGHT LIGHT",
)
_COUNTRIES = ("United Kingdom",) * 18 + ("Germany", "France", "EIRE", "Spain", "Netherlands", "Belgium")


@dataclass(frozen=True)
class RetailFeed:
    """The generated lines and what is known about them.

    ``revenue``: value of the distinct purchase lines with a customer id (each line once), in cents;
    ``cancelled``: value of the cancellation lines (all with a customer id), in cents, positive;
    ``same_quantity_and_price``: lines sharing invoice, quantity and price with another, distinct line.
    """

    lines: pd.DataFrame
    true_duplicates: int
    empty_ids: int
    cancellation_lines: int
    customers: int
    invoices: int
    """Invoices, cancellations included."""
    revenue: int
    cancelled: int
    same_quantity_and_price: int


def _catalogue(rng: np.random.Generator, size: int = 400) -> pd.DataFrame:
    codes = rng.choice(np.arange(20_000, 90_000), size, replace=False)
    suffixes = rng.choice(["", "", "", "A", "B", "C"], size)
    names = [f"{_COLOURS[i % len(_COLOURS)]} {_ITEMS[(i // len(_COLOURS)) % len(_ITEMS)]}" for i in range(size)]
    names = [name if i < len(_COLOURS) * len(_ITEMS) else f"{name} {i}" for i, name in enumerate(names)]
    return pd.DataFrame(
        {
            "StockCode": [f"{c}{s}" for c, s in zip(codes, suffixes, strict=True)],
            "Description": names,
            "UnitPrice": rng.choice(_PRICES, size),
        }
    )


def _stamp(when: dt.datetime) -> str:
    """``%m/%d/%Y %H:%M`` as the UCI file writes it: month, day and hour without leading zeros."""
    return f"{when.month}/{when.day}/{when.year} {when.hour}:{when.minute:02d}"


def _visit_times(rng: np.random.Generator, first: dt.datetime, rate: float, dropout: float) -> list[dt.datetime]:
    """BG/NBD purchases: the first at ``first``, then exponential gaps (``rate`` a day); after each
    purchase the customer drops out with probability ``dropout``."""
    times, now = [first], first
    while rng.random() >= dropout:
        now += dt.timedelta(days=float(rng.exponential(1 / rate)))
        if now > LAST_DAY:
            break
        times.append(now)
    return times


def _open_hours(rng: np.random.Generator, day: dt.datetime) -> dt.datetime:
    return day.replace(hour=int(rng.integers(8, 20)), minute=int(rng.integers(0, 60)), second=0, microsecond=0)


def _return_time(rng: np.random.Generator, when: dt.datetime, following: list[dt.datetime]) -> dt.datetime:
    """A day from the invoice's day up to the day before the customer's next invoice (up to 20 days
    after it, within the data, for the last one): the invoice's day stays the latest purchase day."""
    if following:
        last = max(when.date(), following[0].date() - dt.timedelta(days=1))
    else:
        last = min(when + dt.timedelta(days=20), LAST_DAY).date()
    day = when.date() + dt.timedelta(days=int(rng.integers(0, (last - when.date()).days + 1)))
    if day == when.date():
        return when + dt.timedelta(minutes=int(rng.integers(1, 60)))
    return _open_hours(rng, dt.datetime.combine(day, dt.time()))


def _returned(rng: np.random.Generator, lines: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """One or two of the invoice's lines, each with part or all of its quantity."""
    picked = rng.choice(len(lines), min(len(lines), int(rng.integers(1, 3))), replace=False)
    return [(lines[i][0], int(rng.integers(1, lines[i][1] + 1))) for i in picked]


def online_retail_lines(
    seed: int = 2011, customers: int = 800, duplicates: int = 18, guest_share: float = 0.08
) -> RetailFeed:
    """An Online-Retail-style invoice-lines feed (about 20,000 lines for 800 customers), deterministic by seed.

    ``duplicates`` purchase lines (with customer ids) are loaded twice, right after themselves, as a
    double load does; ``guest_share`` of the invoices have no customer id. Cancellations cancel part of
    one or two lines of a customer's invoice before the customer's next invoice (so that netting them
    against the latest purchase never floors at 0).
    """
    rng = np.random.default_rng(seed)
    catalogue = _catalogue(rng)
    ids = rng.choice(np.arange(12_346, 18_288), customers, replace=False).astype(float)
    span = (LAST_DAY - FIRST_DAY).days
    invoices: list[tuple[dt.datetime, float, str, list[tuple[int, int]]]] = []  # when, id, country, lines
    cancels: list[tuple[dt.datetime, float, str, list[tuple[int, int]]]] = []
    for customer in ids:
        rate = float(rng.gamma(0.9, 1 / 45))  # purchases a day: mean 0.02 (7 a year), very uneven
        dropout = float(rng.beta(1.0, 4.0))
        basket = float(rng.gamma(2.0, 3.0))  # lines per invoice beyond the first
        scale = int(rng.choice([1, 1, 2, 3, 6, 12]))
        country = str(rng.choice(_COUNTRIES))
        first = _open_hours(rng, FIRST_DAY + dt.timedelta(days=int(rng.integers(0, int(span * 0.8)))))
        visits = [_open_hours(rng, t) if t > first else t for t in _visit_times(rng, first, rate, dropout)]
        visits = sorted(set(visits))
        for k, when in enumerate(visits):
            n = min(1 + int(rng.poisson(basket)), 40)
            products = rng.choice(len(catalogue), n, replace=False)
            lines = [(int(p), scale * int(rng.choice(_QUANTITIES))) for p in products]
            invoices.append((when, customer, country, lines))
            if rng.random() < 0.08:  # part of the invoice comes back before the next visit
                cancels.append(
                    (_return_time(rng, when, visits[k + 1 : k + 2]), customer, country, _returned(rng, lines))
                )
    guests = int(len(invoices) * guest_share / (1 - guest_share))
    for _ in range(guests):
        when = _open_hours(rng, FIRST_DAY + dt.timedelta(days=int(rng.integers(0, span + 1))))
        n = 1 + int(rng.poisson(8))
        lines = [(int(p), int(rng.choice(_QUANTITIES))) for p in rng.choice(len(catalogue), n, replace=False)]
        invoices.append((when, float("nan"), str(rng.choice(_COUNTRIES)), lines))
    events = sorted(
        [(when, False, c, country, lines) for when, c, country, lines in invoices]
        + [(when, True, c, country, lines) for when, c, country, lines in cancels],
        key=lambda e: (e[0], e[1], -1 if np.isnan(e[2]) else e[2]),
    )
    codes, names, prices = (catalogue[c].tolist() for c in ("StockCode", "Description", "UnitPrice"))
    rows = []
    for number, (when, cancel, customer, country, lines) in enumerate(events, start=536_365):
        invoice = f"C{number}" if cancel else str(number)
        stamp = _stamp(when)
        for p, quantity in lines:
            rows.append(
                (invoice, codes[p], names[p], -quantity if cancel else quantity, stamp, prices[p], customer, country)
            )
    frame = pd.DataFrame(rows, columns=list(RETAIL_COLUMNS))
    frame = frame.astype({"Quantity": "int64", "UnitPrice": "float64", "CustomerID": "float64"})
    cents = np.round(frame["Quantity"] * frame["UnitPrice"] * 100).astype("int64")
    has_id = frame["CustomerID"].notna()
    purchase = frame["Quantity"] > 0
    same = frame[purchase].duplicated(["InvoiceNo", "Quantity", "UnitPrice"], keep=False)
    # Double loads: whole lines repeated right after themselves.
    twice = rng.choice(np.flatnonzero(has_id & purchase), duplicates, replace=False)
    order = np.sort(np.concatenate([np.arange(len(frame)), twice]), kind="stable")
    doubled = frame.iloc[order].reset_index(drop=True)
    return RetailFeed(
        lines=doubled,
        true_duplicates=duplicates,
        empty_ids=int(doubled["CustomerID"].isna().sum()),
        cancellation_lines=int((~purchase).sum()),
        customers=customers,
        invoices=len(events),
        revenue=int(cents[has_id & purchase].sum()),
        cancelled=int(-cents[~purchase].sum()),
        same_quantity_and_price=int(same.sum()),
    )


def bgnbd_purchases(
    customers: int,
    start: dt.date,
    days: int,
    seed: int,
    r: float = 0.25,
    alpha: float = 4.0,
    a: float = 0.8,
    b: float = 2.5,
    birth_days: int = 90,
) -> pd.DataFrame:
    """Purchase days of customers who follow BG/NBD (rates in purchases per week), born over ``birth_days``.

    Columns: ``customer`` (int), ``day`` (date). Purchases on the same day merge into one, as prepare does.
    """
    rng = np.random.default_rng(seed)
    rate = rng.gamma(r, 1 / alpha, customers) / 7  # per day
    dropout = rng.beta(a, b, customers)
    birth = rng.integers(0, birth_days, customers)
    rows: list[tuple[int, int]] = []
    for c in range(customers):
        day = float(birth[c])
        rows.append((c, int(day)))
        while True:
            day += rng.exponential(1 / rate[c]) if rate[c] > 0 else days
            if day >= days:
                break
            rows.append((c, int(day)))
            if rng.random() < dropout[c]:
                break
    frame = pd.DataFrame(rows, columns=["customer", "offset"]).drop_duplicates()
    frame["day"] = pd.Timestamp(start) + pd.to_timedelta(frame["offset"], unit="D")
    return frame.drop(columns="offset").reset_index(drop=True)


def fixed_price_feed(customers: int = 1500, seed: int = 11) -> pd.DataFrame:
    """An app store: every purchase costs 9.99. Integer customer ids, ISO dates. Columns user_id, purchased_on,
    price."""
    purchases = bgnbd_purchases(customers, dt.date(2022, 1, 1), 365, seed, r=0.6, alpha=6.0)
    return pd.DataFrame(
        {
            "user_id": purchases["customer"].to_numpy() + 100_000,
            "purchased_on": purchases["day"].dt.strftime("%Y-%m-%d"),
            "price": 9.99,
        }
    )


def subscription_feed(
    cohorts: int = 12, per_cohort: int = 150, alpha: float = 1.2, beta: float = 6.0, seed: int = 7
) -> tuple[pd.DataFrame, dt.date]:
    """Monthly charges of a subscription business: a cohort starts each month of 2022, each subscriber pays
    the plan's constant price on the same day every month until they cancel; the cancellation probability of
    a subscriber is constant over time and varies across subscribers as Beta(alpha, beta) (sBG). Observed
    until the returned date. Columns: account (int), charged_at (ISO timestamp), amount."""
    rng = np.random.default_rng(seed)
    end = dt.date(2023, 12, 31)
    rows: list[tuple[int, str, float]] = []
    account = 0
    for cohort in range(cohorts):
        for _ in range(per_cohort):
            account += 1
            start = dt.date(2022, 1 + cohort, int(rng.integers(1, 29)))
            price = 29.0 if rng.random() < 0.7 else 99.0
            churn = rng.beta(alpha, beta)
            month = 0
            while True:
                year, month_of_year = divmod(start.month - 1 + month, 12)
                charge = dt.date(start.year + year, month_of_year + 1, start.day)
                if charge > end:
                    break
                rows.append((account, f"{charge.isoformat()}T06:00:00", price))
                if rng.random() < churn:
                    break
                month += 1
    return pd.DataFrame(rows, columns=["account", "charged_at", "amount"]), end


def write_with_separators(lines: pd.DataFrame, path: Path, delimiter: str, decimal: str, thousands: str) -> None:
    """The retail lines as a CSV whose Quantity and UnitPrice use other separators (``1.200`` and ``2,55`` for
    ``thousands="."``, ``decimal=","``), as a spreadsheet in another locale exports them."""

    def written(value: float) -> str:
        text = format(int(value), ",") if float(value).is_integer() else format(float(value), ",")
        return text.replace(",", "\0").replace(".", decimal).replace("\0", thousands)

    frame = lines.copy()
    for column in ("Quantity", "UnitPrice"):
        frame[column] = frame[column].map(written)
    frame.to_csv(path, index=False, sep=delimiter)


def monthly_exports(lines: pd.DataFrame, folder: Path) -> list[Path]:
    """The retail lines as a folder of monthly CSV exports (``2011-03.csv``, ...), each with its header, as a shop
    system exports them, two of them with other line endings and one with a byte order mark; a hidden copy and a
    non-CSV file beside them, which are not read."""
    folder.mkdir(parents=True, exist_ok=True)
    months = pd.to_datetime(lines["InvoiceDate"], format="%m/%d/%Y %H:%M").dt.strftime("%Y-%m")
    written = []
    for month, part in lines.groupby(months, sort=True):
        path = folder / f"{month}.csv"
        part.to_csv(path, index=False)
        written.append(path)
    # Exports from other tools: lines ended in \r\n, in \r alone, a byte order mark (DuckDB read the later files
    # with the first file's line ending: those gave no rows).
    for path, ending in ((written[1], b"\r\n"), (written[2], b"\r")):
        path.write_bytes(path.read_bytes().replace(b"\n", ending))
    written[3].write_bytes(b"\xef\xbb\xbf" + written[3].read_bytes())
    (folder / f"._{written[0].name}").write_bytes(b"\x00\x05\x16\x07 not a csv")
    (folder / "README.txt").write_text("Monthly exports of the shop's invoice lines.\n")
    return written


def duckdb_engine(config: EngineConfig) -> DuckDBEngine:
    """The configured engine (:func:`~pipeline.engines.open_engine`): the DuckDB engine, as the tests configure it."""
    engine = open_engine(config)
    assert isinstance(engine, DuckDBEngine)
    return engine


def duckdb_relation(source: Source) -> duckdb.DuckDBPyRelation:
    """The lazy input of a ``source`` opened by the DuckDB engine: a relation."""
    assert isinstance(source.handle, duckdb.DuckDBPyRelation)
    return source.handle


def query_rows(sql: str) -> list[tuple[Any, ...]]:
    """The rows of the query ``sql`` on DuckDB's default connection (``duckdb.sql``)."""
    relation = duckdb.sql(sql)
    assert relation is not None  # a query gives a relation; only statements give None
    return relation.fetchall()
