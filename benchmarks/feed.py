"""A realistic benchmark feed, shared by every benchmark: BG/NBD x Gamma-Gamma customers.

Each customer is born (first purchase) on a day drawn uniformly over the first ``birth_share`` of the
window, then buys as a Poisson process with rate ``lambda ~ Gamma(r, alpha)`` (per day) and, after each
repeat purchase, drops out with probability ``p ~ Beta(a, b)`` (Fader, Hardie & Lee 2005). Each purchase's
amount is ``Gamma(p_spend, nu)`` with the customer's ``nu ~ Gamma(q, gamma)`` (Fader, Hardie & Lee 2005b).
So the customers differ in rate, lifetime and spend, and the job's models can fit the feed (unlike a feed
where everyone buys at one rate and never drops out).

Customers are generated in blocks and written through one Parquet writer, so a 100M-row feed needs a
few hundred MB of memory. The feed is stopped at exactly ``rows`` rows (the last block is cut); with the
default parameters there are about 10 purchases per customer (5M customers for 50M rows).

The rows come ordered by customer (then time), so a reader can skip row groups by id. With ``order="time"``
they are ordered by timestamp, as a transaction log is usually written (DuckDB sorts the written feed).

    python -m benchmarks.feed --rows 10000000 --output /tmp/feed-10m.parquet [--order time]
"""

from __future__ import annotations

import argparse
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa

if TYPE_CHECKING:
    from pipeline.engines.prepared import PreparedData

__all__ = [
    "CALIBRATION_END",
    "OBSERVATION_END",
    "ORDERS",
    "FeedParams",
    "generate",
    "generate_frame",
    "prepared_feed",
    "time_ordered",
]

CALIBRATION_END = dt.date(2022, 12, 31)
OBSERVATION_END = dt.date(2023, 6, 30)

MINUTES_PER_DAY = 1440

ORDERS = ("customer", "time")
"""The orders a feed can be written in: by customer (as generated) or by timestamp."""


@dataclass(frozen=True)
class FeedParams:
    """Population parameters (time in days) and the window."""

    r: float = 0.8
    alpha: float = 20.0
    a: float = 1.2
    b: float = 12.0
    p_spend: float = 6.0
    q: float = 4.0
    gamma: float = 15.0
    start: dt.date = dt.date(2021, 1, 1)
    end: dt.date = dt.date(2023, 6, 30)
    birth_share: float = 0.8
    """Births fall in the first 80% of the window, so the newest customers have a few months of history."""
    max_purchases: int = 400
    """A customer's purchases in the window are capped here (a guard against extreme rate draws)."""

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1


def _block(rng: np.random.Generator, first_id: int, customers: int, params: FeedParams) -> dict[str, np.ndarray]:
    """Rows of ``customers`` customers numbered from ``first_id``: id, minutes since start, amount."""
    birth = rng.uniform(0, params.days * params.birth_share, customers)
    rate = rng.gamma(params.r, 1 / params.alpha, customers)
    dropout = rng.beta(params.a, params.b, customers)
    nu = rng.gamma(params.q, 1 / params.gamma, customers)
    # repeat purchases: those of the Poisson process in (birth, end], cut at the geometric dropout
    in_window = np.minimum(rng.poisson(rate * (params.days - birth)), params.max_purchases)
    before_dropout = rng.geometric(dropout)
    repeats = np.minimum(in_window, before_dropout)
    # the first k of m uniform arrival times: sort m uniforms per customer, keep ranks < k
    owner = np.repeat(np.arange(customers), in_window)
    arrival = rng.uniform(0.0, 1.0, len(owner))
    order = np.lexsort((arrival, owner))
    arrival = arrival[order]
    starts = np.concatenate([[0], np.cumsum(in_window)[:-1]])
    rank = np.arange(len(owner)) - np.repeat(starts, in_window)
    keep = rank < np.repeat(repeats, in_window)
    owner, arrival = owner[keep], arrival[keep]
    repeat_day = birth[owner] + arrival * (params.days - birth[owner])
    who = np.concatenate([np.arange(customers), owner])
    day = np.concatenate([birth, repeat_day])
    order = np.lexsort((day, who))
    who, day = who[order], day[order]
    amount = np.round(rng.gamma(params.p_spend, 1 / nu[who]), 2) + 0.01
    minutes = np.minimum(np.floor(day * MINUTES_PER_DAY), params.days * MINUTES_PER_DAY - 1).astype(np.int64)
    return {"customer": who.astype(np.int64) + first_id, "minutes": minutes, "amount": amount}


def _arrow(block: dict[str, np.ndarray], params: FeedParams) -> pa.Table:
    import pyarrow.compute as pc

    ids = pc.utf8_lpad(pc.cast(pa.array(block["customer"]), pa.string()), width=9, padding="0")
    start = np.datetime64(params.start.isoformat(), "m")
    return pa.table(
        {
            "customer_id": pc.binary_join_element_wise("c", ids, ""),
            "timestamp": pa.array((start + block["minutes"].astype("timedelta64[m]")).astype("datetime64[us]")),
            "amount": pa.array(block["amount"]),
        }
    )


def _blocks(rows: int, params: FeedParams, seed: int, block_customers: int) -> Iterator[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    written, first_id = 0, 0
    while written < rows:
        block = _block(rng, first_id, block_customers, params)
        first_id += block_customers
        take = min(len(block["customer"]), rows - written)
        written += take
        yield {name: column[:take] for name, column in block.items()}


def generate_frame(
    rows: int, params: FeedParams = FeedParams(), seed: int = 42, block_customers: int = 100_000
) -> pd.DataFrame:
    """The feed as a pandas DataFrame (``customer_id``, ``timestamp``, ``amount``): for tests and small sizes."""
    tables = [_arrow(block, params) for block in _blocks(rows, params, seed, block_customers)]
    frame: pd.DataFrame = pa.concat_tables(tables).to_pandas()
    return frame


def generate(
    path: Path,
    rows: int,
    params: FeedParams = FeedParams(),
    seed: int = 42,
    block_customers: int = 500_000,
    order: str = "customer",
) -> int:
    """Write ``rows`` transactions to ``path`` (Parquet, native TIMESTAMP column), ordered by customer or, with
    ``order="time"``, by timestamp; returns the customer count."""
    import pyarrow.parquet as pq

    if order not in ORDERS:
        raise ValueError(f"order must be one of {ORDERS}, not {order!r}")
    target = path if order == "customer" else path.with_name(f".{path.name}.by-customer")
    writer = None
    last = 0
    for block in _blocks(rows, params, seed, block_customers):
        table = _arrow(block, params)
        if writer is None:
            writer = pq.ParquetWriter(target, table.schema)
        writer.write_table(table, row_group_size=1_000_000)
        last = int(block["customer"].max()) if len(block["customer"]) else last
    if writer is not None:
        writer.close()
    if order == "time":
        time_ordered(target, path)
        target.unlink()
    return last + 1


def time_ordered(source: Path, path: Path) -> None:
    """Write ``source``'s rows to ``path`` ordered by timestamp (then customer and amount, so the file is the same
    every time), in row groups of 1M rows as :func:`generate` writes them."""
    import duckdb

    from pipeline.engines.sql import DUCKDB

    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    con.execute(
        f"""COPY (SELECT * FROM read_parquet({DUCKDB.string(str(source))}) ORDER BY "timestamp", customer_id, amount)
            TO {DUCKDB.string(str(path))} (FORMAT parquet, ROW_GROUP_SIZE 1000000)"""
    )
    con.close()


def prepared_feed(rows: int, folder: Path, seed: int = 42) -> PreparedData:
    """The feed of ``rows`` rows through the job's DuckDB prepare (calibration to 2022-12-31, holdout to
    2023-06-30, daily periods in weeks): a :class:`~pipeline.engines.prepared.PreparedData` for tests."""
    from pipeline.config import Config, DataConfig, PrepareConfig
    from pipeline.engines.duckdb_prepare import prepare
    from pipeline.engines.duckdb_source import connect, open_transactions

    path = folder / f"feed-{rows}-{seed}.parquet"
    if not path.exists():
        generate(path, rows, seed=seed)
    data = open_transactions(connect(Config().engine), DataConfig(source="parquet", path=path))
    config = PrepareConfig(calibration_end=CALIBRATION_END, observation_end=OBSERVATION_END)
    return prepare(data.relation, config, data.timestamp_format)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, required=True)
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--order", choices=ORDERS, default="customer", help="rows by customer (default) or by time")
    args = parser.parse_args()
    customers = generate(args.output, args.rows, seed=args.seed, order=args.order)
    print(f"{args.rows:,} rows, {customers:,} customers, by {args.order} -> {args.output}")


if __name__ == "__main__":
    main()
