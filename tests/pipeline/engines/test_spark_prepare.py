"""Spark prepare: the same ledger, summaries and weekly tracking as the DuckDB prepare, to the last bit (slow)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.config import Config, DataConfig, EngineConfig, FitConfig, PrepareConfig
from pipeline.engines.duckdb_prepare import prepare
from pipeline.engines.duckdb_source import connect, open_transactions
from pipeline.engines.prepared import PreparedData
from pipeline.errors import ConfigError, InputError
from pipeline.fit import FitInput, fit, fit_histories
from tests.feeds import RETAIL_MAPPING, monthly_exports, online_retail_lines, write_with_separators
from tests.pipeline.engines.test_duckdb_prepare import _quarantined

pytestmark = pytest.mark.slow
pytest.importorskip("pyspark", reason="install the spark extra: pip install -e '.[spark]'")

from pyspark.sql import SparkSession  # noqa: E402

from pipeline.engines import spark_prepare, spark_session  # noqa: E402


def _both(
    spark: SparkSession, data: DataConfig, config: PrepareConfig
) -> tuple[PreparedData, PreparedData, spark_prepare.SparkPrepared]:
    duck = open_transactions(connect(EngineConfig()), data)
    ours = prepare(duck.relation, config, duck.timestamp_format, column_names=duck.column_names)
    tx = spark_session.open_transactions(spark, data)
    assert tx.column_names == duck.column_names
    distributed = spark_prepare.prepare(tx.frame, config, tx.timestamp_format, column_names=tx.column_names)
    return ours, spark_prepare.collect(distributed), distributed


def _assert_identical(duck: PreparedData, spark: PreparedData) -> None:
    assert spark.ledger == duck.ledger
    assert spark.ledger.reconciled
    names = ("calibration_end", "observation_end", "duration_holdout", "first_date", "last_date")
    for name in (*names, "has_amounts", "timestamp_format"):
        assert getattr(spark, name) == getattr(duck, name), name
    # check_exact: every number bit for bit, not approximately.
    pd.testing.assert_frame_equal(spark.calibration, duck.calibration, check_exact=True)
    pd.testing.assert_frame_equal(spark.full, duck.full, check_exact=True)
    pd.testing.assert_frame_equal(spark.weekly, duck.weekly, check_exact=True)


def test_identical_to_duckdb_on_cdnow_and_fit_from_collected_histories(spark) -> None:  # type: ignore[no-untyped-def]
    config = PrepareConfig(calibration_end=dt.date(1997, 9, 30))
    duck, ours, distributed = _both(spark, DataConfig(source="cdnow_master"), config)
    _assert_identical(duck, ours)
    assert (ours.ledger.rows_in, len(ours.calibration), len(ours.full)) == (69_659, 23_570, 23_570)

    # The fit sees only the unique histories (and the repeat customers' spend): the same parameters.
    histories = spark_prepare.histories(distributed.calibration)
    assert int(histories["weight"].sum()) == 23_570
    assert len(histories) < 23_570 / 2
    repeat, total = spark_prepare.repeat_spend(distributed.calibration, 2_000_000)
    cal = duck.calibration
    assert total == len(repeat) == int(((cal["frequency"] > 0) & (cal["monetary_value"] > 0)).sum())
    from_spark = fit_histories(FitInput(histories, repeat), FitConfig())
    from_frame = fit(duck.calibration, FitConfig())
    assert from_spark.params() == from_frame.params()
    assert from_spark.purchase.stats == from_frame.purchase.stats
    assert from_spark.spend is not None
    assert from_frame.spend is not None
    assert from_spark.spend.stats == from_frame.spend.stats

    # Above the cap, Gamma-Gamma gets a fixed sample: the same customers on every run and partitioning.
    sample, total = spark_prepare.repeat_spend(distributed.calibration.repartition(7), 500)
    again, _ = spark_prepare.repeat_spend(distributed.calibration.repartition(3), 500)
    assert (len(sample), total) == (500, len(repeat))
    pd.testing.assert_frame_equal(sample, again)


def _messy_transactions(seed: int = 5, customers: int = 300) -> pd.DataFrame:
    """A feed with several purchases a day, returns, duplicates, offsets, and rows for every quarantine
    reason; everything as text, as a CSV file holds it."""
    rng = np.random.default_rng(seed)
    start = dt.date(2021, 1, 1)
    rows: list[tuple[object, ...]] = []
    for i in range(customers):
        first = int(rng.integers(0, 200))
        days = np.unique(first + np.concatenate([[0], rng.integers(0, 365 - first, rng.poisson(4))]))
        for day in days:
            for _ in range(1 + int(rng.random() < 0.15) * int(rng.integers(1, 4))):
                stamp = start + dt.timedelta(days=int(day))
                hour = int(rng.integers(0, 24))
                text = {
                    0: stamp.isoformat(),
                    1: f"{stamp.isoformat()} {hour:02d}:15:00",
                    2: f"{stamp.isoformat()}T{hour:02d}:30:00-05:00",  # may cross midnight into another day
                    3: stamp.strftime("%Y%m%d"),
                    4: f"{stamp.isoformat()} {hour:02d}:45:00Z",
                }[int(rng.integers(0, 5))]
                amount = round(float(rng.lognormal(3, 0.8)), 2)
                rows.append((f"c{i:04d}", text, f"{amount}"))
            if rng.random() < 0.05:  # a return, sometimes before any purchase
                back = start + dt.timedelta(days=int(day) + int(rng.integers(-3, 10)))
                rows.append((f"c{i:04d}", back.isoformat(), f"-{round(float(rng.lognormal(2, 0.5)), 2)}"))
    rows += rows[:: len(rows) // 40]  # exact duplicate rows
    bad: list[tuple[object, ...]] = [
        (None, "2021-02-01", "5"),
        ("  ", "2021-02-01", "5"),
        ("c0001", None, "5"),
        ("c0001", "  ", "5"),
        ("c0001", "2021-13-45", "5"),
        ("c0001", "not a date", "5"),
        ("c0001", "2021", "5"),
        ("c0002", "2021-02-01", "abc"),
        ("c0002", "2021-02-01", "nan"),
        ("c0002", "2021-02-01", "inf"),
        ("c0002", "2021-02-01", None),
        ("c0003", "2021-02-01", "1e14"),
        ("c0003", "2021-02-01", "0"),
        ("c0003", "2021-02-01", "0.0"),
        ("c0004", "1899-12-31", "5"),
        ("c0004", "2022-06-01", "5"),
        ("c0004", "2099-01-01 10:00:00", "5"),
        ("c0005", "2021/03/04", "6.5"),
        ("c0005", "2021-03-04 10:00:00 UTC", "7.25"),
        ("c0005", "2021-03-04 23:30:00+0130", "1.125"),
        ("c0006", "2021-04-01", "12345.678"),
        (" c0007 ", "2021-04-02", "3"),  # the same customer as c0007: ASCII spaces are trimmed
        ("\u00a0c0007", "2021-04-03", "4"),  # another customer: only ASCII spaces are trimmed
        ("c0008\u3000", "2021-04-03", "5"),
    ]
    return pd.DataFrame(rows + bad, columns=["customer_id", "timestamp", "amount"])


@pytest.mark.parametrize(
    "rules",
    [
        {"timezone": "America/New_York", "max_amount": 10_000.0},
        {
            "period": "week",
            "time_unit": "month",
            "returns": "drop",
            "zero_amount": "quarantine",
            "duplicates": "quarantine",
        },
    ],
    ids=["day-week-net-new-york", "week-month-drop-quarantine"],
)
def test_identical_to_duckdb_on_messy_csv(spark, tmp_path: Path, rules: dict[str, object]) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "messy.csv"
    _messy_transactions().to_csv(path, index=False)
    data = DataConfig(source="csv", path=path)
    config = PrepareConfig(
        calibration_end=dt.date(2021, 8, 31),
        observation_end=dt.date(2021, 12, 31),
        **rules,  # type: ignore[arg-type]
    )
    duck, ours, _ = _both(spark, data, config)
    _assert_identical(duck, ours)
    ledger = ours.ledger
    assert ledger.rows_quarantined >= 15
    if config.returns == "net":
        assert ledger.returns_netted > 10
        assert ledger.returns_unmatched > 0
    # The quarantined rows themselves, as Spark writes them: the same rows with the same reasons.
    written = tmp_path / "quarantine.parquet"
    ours.quarantine.write_parquet(str(written))
    theirs = _quarantined(duck)
    mine = pd.read_parquet(written)
    key = ["reason", "customer_id", "timestamp", "amount"]
    pd.testing.assert_frame_equal(
        mine.sort_values(key).fillna("").reset_index(drop=True).astype(str),
        theirs.sort_values(key).fillna("").reset_index(drop=True).astype(str),
    )


def test_identical_to_duckdb_with_days_outside_pythons_dates(spark, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Rows dated in the year 0 or 12000 are quarantined: collecting the counts' days of such a row stopped Spark's
    prepare with a ValueError (ordinal must be >= 1)."""
    path = tmp_path / "far.csv"
    rows = [("a", "2021-01-01", "10"), ("a", "2021-03-01", "20"), ("b", "2021-01-05", "5"), ("b", "2021-01-20", "7")]
    rows += [("c", "1890-01-01", "5"), ("d", "0000-06-01", "5"), ("e", "12000-01-01", "5"), ("", "0000-06-01", "5")]
    pd.DataFrame(rows, columns=["customer_id", "timestamp", "amount"]).to_csv(path, index=False)
    config = PrepareConfig(calibration_end=dt.date(2021, 2, 1), observation_end=dt.date(2021, 3, 31))
    duck, ours, _ = _both(spark, DataConfig(source="csv", path=path), config)
    # The summaries are the same; the year 12000 is a day after observation_end to DuckDB, unreadable to Spark
    # (documented in the Spark how-to).
    _assert_identical(duck, dataclasses.replace(ours, ledger=duck.ledger))
    assert (ours.ledger.rows_in, ours.ledger.rows_used) == (duck.ledger.rows_in, duck.ledger.rows_used) == (8, 4)
    assert duck.ledger.quarantined == {
        "missing_customer_id": 1,
        "timestamp_out_of_range": 2,
        "after_observation_end": 1,
    }
    assert ours.ledger.quarantined == {"missing_customer_id": 1, "timestamp_out_of_range": 2, "invalid_timestamp": 1}


def test_identical_to_duckdb_on_parquet_orders_and_native_timestamps(spark, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Invoice lines (quantity x unit price), order ids with cancellations, a TIMESTAMP column."""
    rng = np.random.default_rng(3)
    n = 4_000
    lines = pd.DataFrame(
        {
            "cust": [f"k{int(i):03d}" for i in rng.integers(0, 250, n)],
            "ts": pd.Timestamp("2022-01-01") + pd.to_timedelta(rng.integers(0, 400 * 24 * 60, n), unit="min"),
            "qty": rng.integers(-1, 4, n).astype(float),
            "price": np.round(rng.lognormal(2, 0.7, n), 2),
            "invoice": [("C" if rng.random() < 0.03 else "") + f"i{int(j)}" for j in rng.integers(0, 1500, n)],
        }
    )
    lines.loc[::97, "invoice"] = None
    lines = pd.concat([lines, lines.iloc[::50]], ignore_index=True)  # doubly loaded lines
    path = tmp_path / "lines.parquet"
    lines.to_parquet(path)
    data = DataConfig.model_validate(
        {
            "source": "parquet",
            "path": path,
            "columns": {
                "customer_id": "cust",
                "timestamp": "ts",
                "quantity": "qty",
                "unit_price": "price",
                "order_id": "invoice",
            },
        }
    )
    config = PrepareConfig(
        period="week",
        time_unit="week",
        calibration_end=dt.date(2022, 9, 30),
        observation_end=dt.date(2023, 2, 4),
        zero_amount="quarantine",
    )
    duck, ours, _ = _both(spark, data, config)
    _assert_identical(duck, ours)
    assert ours.ledger.quarantined["duplicate"] > 0
    assert ours.ledger.quarantined["zero_amount"] > 0


def test_source_errors_are_one_line_input_errors(spark, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "t.csv"
    path.write_text("id,timestamp,amount\na,2020-01-01,1\n")
    with pytest.raises(InputError, match=r"missing required column 'customer_id' \(data.columns.customer_id\)"):
        spark_session.open_transactions(spark, DataConfig(source="csv", path=path))
    with pytest.raises(InputError, match=r"^data.table no_such_table: "):
        spark_session.open_transactions(
            spark,
            Config(
                engine=EngineConfig(name="spark"), data=DataConfig(source="spark_table", table="no_such_table")
            ).data,
        )


def test_strptime_formats_become_spark_patterns() -> None:
    assert spark_prepare.spark_pattern("%Y%m%d") == "yyyyMMdd"  # touching numbers keep fixed widths
    assert spark_prepare.spark_pattern("%d/%m/%Y %H:%M") == "d/M/yyyy H:m"  # 1 or 2 digits, as DuckDB reads
    assert spark_prepare.spark_pattern("%Y-%m-%dT%H:%M:%S%z") == "yyyy-M-d'T'H:m:sXXX"
    with pytest.raises(ConfigError, match=r"data.timestamp_format: %U is not supported with engine.name 'spark'"):
        spark_prepare.spark_pattern("%Y %U")


def test_timestamp_format_reads_as_duckdb_does(spark, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    rows = [
        ("a", "5/1/2021 9:05", "10"),
        ("a", "05/02/2021 23:59", "11"),
        ("a", "17/3/2021 0:00", "12"),
        ("b", "1/1/2021 10:00", "5"),
        ("b", "31/12/2021 10:00", "6"),
        ("b", "31/02/2021 10:00", "6"),  # no such day
        ("b", "2021-03-01", "6"),  # another format
    ]
    path = tmp_path / "dmy.csv"
    pd.DataFrame(rows, columns=["customer_id", "timestamp", "amount"]).to_csv(path, index=False)
    data = DataConfig(source="csv", path=path, timestamp_format="%d/%m/%Y %H:%M")
    config = PrepareConfig(calibration_end=dt.date(2021, 2, 28), observation_end=dt.date(2021, 12, 31))
    duck, ours, _ = _both(spark, data, config)
    _assert_identical(duck, ours)
    assert ours.ledger.quarantined == {"invalid_timestamp": 2}


@pytest.mark.parametrize("fmt", ["epoch_s", "epoch_ms"])
def test_epoch_timestamps_read_as_in_duckdb(spark, tmp_path: Path, fmt: str) -> None:  # type: ignore[no-untyped-def]
    """Numbers since 1970 (UTC) as the wall time in prepare.timezone, near midnight too; not a number, or past
    the year 5138: invalid_timestamp."""
    scale = 1000 if fmt == "epoch_ms" else 1
    rng = np.random.default_rng(7)
    seconds = 1_609_459_200 + rng.integers(0, 360 * 86400, 400)  # 2021, UTC
    ids = [f"c{i % 60}" for i in range(400)]
    rows = [(i, str(int(s) * scale), "10.5") for i, s in zip(ids, seconds, strict=True)]
    rows += [("x", "not a number", "1"), ("x", str(10**12 * scale), "1"), ("y", str(1_640_995_199 * scale), "2")]
    path = tmp_path / "epoch.csv"
    pd.DataFrame(rows, columns=["customer_id", "timestamp", "amount"]).to_csv(path, index=False)
    data = DataConfig(source="csv", path=path, timestamp_format=fmt)
    config = PrepareConfig(calibration_end=dt.date(2021, 6, 30), timezone="Asia/Tokyo")
    duck, ours, _ = _both(spark, data, config)
    _assert_identical(duck, ours)
    assert ours.ledger.quarantined == {"invalid_timestamp": 2}
    assert ours.last_date == dt.date(2022, 1, 1)  # 2021-12-31 23:59:59 UTC is the next morning in Tokyo


def _assert_same_quarantine(duck: PreparedData, spark: PreparedData, folder: Path) -> pd.DataFrame:
    """The quarantined rows as both engines write them: the same rows, columns and reasons."""
    written = folder / "quarantine.parquet"
    spark.quarantine.write_parquet(str(written))
    theirs = _quarantined(duck)
    mine = pd.read_parquet(written)
    assert list(mine.columns) == list(theirs.columns)
    key = list(theirs.columns)
    pd.testing.assert_frame_equal(
        mine.fillna("\0").sort_values(key).reset_index(drop=True),
        theirs.fillna("\0").sort_values(key).reset_index(drop=True),
    )
    return theirs


def test_identical_to_duckdb_on_the_invoice_feed(spark, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The UCI-style feed as a CSV file, with the default rules: 12/1/2010 8:26 detected, 17850.0 read as
    17850, only whole repeated lines are duplicates, the quarantine written with the source's columns."""
    feed = online_retail_lines()
    path = tmp_path / "online_retail.csv"
    feed.lines.to_csv(path, index=False)
    data = DataConfig.model_validate({"source": "csv", "path": path, "columns": RETAIL_MAPPING})
    duck, ours, _ = _both(spark, data, PrepareConfig(calibration_end=dt.date(2011, 9, 9)))
    _assert_identical(duck, ours)
    assert ours.timestamp_format == "%m/%d/%Y %H:%M"
    assert ours.ledger.quarantined == {"missing_customer_id": feed.empty_ids, "duplicate": feed.true_duplicates}
    assert len(ours.full) == feed.customers
    quarantine = _assert_same_quarantine(duck, ours, tmp_path)
    assert list(quarantine.columns) == [*feed.lines.columns, "reason"]


def test_identical_to_duckdb_on_a_folder_of_csv_exports(spark, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The invoice feed as monthly CSV exports in a folder (a hidden copy and a README beside them): Spark reads the
    files DuckDB reads, and a file whose header differs is refused with DuckDB's line."""
    feed = online_retail_lines()
    monthly_exports(feed.lines, tmp_path / "exports")
    data = DataConfig.model_validate({"source": "csv", "path": tmp_path / "exports", "columns": RETAIL_MAPPING})
    duck, ours, _ = _both(spark, data, PrepareConfig(calibration_end=dt.date(2011, 9, 9)))
    _assert_identical(duck, ours)
    assert ours.ledger.rows_in == len(feed.lines)
    (tmp_path / "exports" / "2012-01.csv").write_text(",".join(reversed(feed.lines.columns)) + "\n")
    with pytest.raises(InputError, match=r"2012-01\.csv: its header \(Country, .*\) is not that of 2010-12\.csv"):
        spark_session.open_transactions(spark, data)


def test_identical_to_duckdb_on_numbers_with_a_decimal_comma(spark, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Quantities like 1.200 and prices like 2,55 in a semicolon CSV (data.csv.decimal and thousands): both
    engines rewrite them alike, and the quarantine holds the rewritten numbers on both."""
    lines = online_retail_lines(seed=5, customers=300).lines
    lines = lines.assign(Quantity=lines["Quantity"] * 100)
    path = tmp_path / "lines.csv"
    write_with_separators(lines, path, ";", ",", ".")
    with path.open("a") as csv_file:  # prices of another shape: refused on both engines, not rescaled
        for price in ("12.50", "1.2,5", "abc"):
            csv_file.write(f"999999;X1;ODD;1;12/1/2010 10:00;{price};12346.0;France\n")
    csv = {"delimiter": ";", "decimal": ",", "thousands": "."}
    data = DataConfig.model_validate({"source": "csv", "path": path, "columns": RETAIL_MAPPING, "csv": csv})
    duck, ours, _ = _both(spark, data, PrepareConfig(calibration_end=dt.date(2011, 9, 9)))
    _assert_identical(duck, ours)
    assert ours.ledger.quarantined["invalid_amount"] == 3
    quarantine = _assert_same_quarantine(duck, ours, tmp_path)
    odd = quarantine.loc[quarantine["reason"] == "invalid_amount", "UnitPrice"]
    assert sorted(odd) == [f"{p} (not in the data.csv number format)" for p in ("1.2,5", "12.50", "abc")]
    quantities = quarantine.loc[quarantine["reason"] != "invalid_amount", "Quantity"]
    assert quantities.str.fullmatch(r"-?\d+").all()  # 1.200 is read, and kept, as 1200
    assert (quantities.astype(int).abs() >= 1000).sum() > 100


def test_identical_to_duckdb_on_typed_invoice_lines_with_a_duplicate_key(spark, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Parquet with native types (float ids, int quantities) and lines repeated on (InvoiceNo, StockCode)
    with another quantity or description: both engines keep the same one."""
    lines = online_retail_lines(seed=7, customers=300).lines
    again = lines[lines["CustomerID"].notna() & (lines["Quantity"] > 0)].iloc[::97].copy()
    again["Quantity"] = again["Quantity"] + 1
    again.loc[again.index[::2], "Description"] = None
    lines = pd.concat([lines, again], ignore_index=True)
    path = tmp_path / "lines.parquet"
    lines.to_parquet(path)
    data = DataConfig.model_validate({"source": "parquet", "path": path, "columns": RETAIL_MAPPING})
    config = PrepareConfig(calibration_end=dt.date(2011, 9, 9), duplicate_key=("InvoiceNo", "StockCode"), period="week")
    duck, ours, _ = _both(spark, data, config)
    _assert_identical(duck, ours)
    assert ours.ledger.quarantined["duplicate"] == 18 + len(again)
    quarantine = _assert_same_quarantine(duck, ours, tmp_path)
    assert set(quarantine["CustomerID"].dropna().str[-2:]) == {".0"}  # as the source holds them


def test_identical_to_duckdb_on_an_event_feed(spark, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """`date,id` without amounts: purchases only, and no spend columns in either engine."""
    lines = online_retail_lines(seed=3, customers=300).lines
    events = lines.loc[lines["Quantity"] > 0, ["InvoiceDate", "CustomerID"]].drop_duplicates()
    path = tmp_path / "events.csv"
    events.rename(columns={"InvoiceDate": "date", "CustomerID": "id"}).to_csv(path, index=False)
    columns = {"customer_id": "id", "timestamp": "date", "amount": None}
    data = DataConfig.model_validate({"source": "csv", "path": path, "columns": columns})
    duck, ours, _ = _both(spark, data, PrepareConfig(calibration_end=dt.date(2011, 9, 9), time_unit="day"))
    _assert_identical(duck, ours)
    assert not ours.has_amounts
    assert list(ours.full.columns) == ["customer_id", "frequency", "recency", "T", "first_purchase"]
    assert ours.ledger.rows_used == events["CustomerID"].notna().sum()


def test_ids_and_detected_formats_read_as_in_duckdb(spark) -> None:  # type: ignore[no-untyped-def]
    from pipeline.engines.sql import spark_id
    from pipeline.engines.timestamps import CANDIDATE_FORMATS
    from tests.pipeline.engines.test_sql import IDS
    from tests.pipeline.engines.test_timestamps import candidate_values, python_parsed

    ids = spark.createDataFrame([(k, raw) for k, (raw, _) in enumerate(IDS)], "k INT, x STRING")
    got = ids.selectExpr("k", f"{spark_id('x')} AS id").orderBy("k").collect()
    assert [row["id"] for row in got] == [expected for _, expected in IDS]
    for fmt in CANDIDATE_FORMATS:
        values = candidate_values(fmt)
        frame = spark.createDataFrame([(k, v) for k, v in enumerate(values)], "k INT, v STRING")
        pattern = spark_prepare.spark_pattern(fmt)
        parsed = frame.selectExpr(
            "k", f"date_format(try_to_timestamp(v, '{pattern}'), 'yyyy-MM-dd HH:mm:ss') AS t"
        ).orderBy("k")
        expected = [None if d is None else f"{d:%Y-%m-%d %H:%M:%S}" for d in python_parsed(values, fmt)]
        assert [row["t"] for row in parsed.collect()] == expected, fmt


def test_timestamp_errors_read_as_in_duckdb(spark, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Ambiguous dates, and dates no format reads: the same one-line error on both engines."""
    config = PrepareConfig(calibration_end=dt.date(2020, 1, 31), observation_end=dt.date(2020, 3, 31))
    for rows, message in [
        (["a,3/1/2020,1", "a,1/10/2020,2", "b,2/3/2020,3"], "timestamps such as '1/10/2020' read as '%m/%d/%Y'"),
        (
            ["a,3rd of May 2020,1", "b,4th of May 2020,1"],
            "'3rd of May 2020' could not be read: set data.timestamp_format",
        ),
        (
            ["a,01.05.2020 10:00,1", "b,02.05.2020 11:30,1"],
            "'01.05.2020 10:00' could not be read as data.timestamp_format '%Y-%m-%d %H:%M'",
        ),
    ]:
        path = tmp_path / "t.csv"
        path.write_text("\n".join(["customer_id,timestamp,amount", *rows]) + "\n")
        given = "%Y-%m-%d %H:%M" if "read as data.timestamp_format" in message else None
        data = DataConfig(source="csv", path=path, timestamp_format=given)
        duck_tx = open_transactions(connect(EngineConfig()), data)
        with pytest.raises(InputError, match=re.escape(message)) as duck:
            prepare(duck_tx.relation, config, duck_tx.timestamp_format, str(path), duck_tx.column_names)
        tx = spark_session.open_transactions(spark, data)
        with pytest.raises(InputError) as ours:
            spark_prepare.prepare(tx.frame, config, tx.timestamp_format, str(path), tx.column_names)
        assert str(ours.value) == str(duck.value)


def test_runs_of_whitespace_read_as_in_duckdb(spark, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """DuckDB's strptime reads a space of the format as any run of whitespace; Spark's pattern did not."""
    rows = ["a,12/1/2010 8:26,1", "a,12/9/2010  8:26,2", "a,1/5/2011\t8:26,3", "b,1/20/2011 8:26,4", "b,1/3/20118:26,5"]
    path = tmp_path / "spaces.csv"
    path.write_text("\n".join(["customer_id,timestamp,amount", *rows]) + "\n")
    data = DataConfig(source="csv", path=path, timestamp_format="%m/%d/%Y %H:%M")
    config = PrepareConfig(calibration_end=dt.date(2010, 12, 31), observation_end=dt.date(2011, 1, 31))
    duck, ours, _ = _both(spark, data, config)
    _assert_identical(duck, ours)
    assert ours.ledger.quarantined == {"invalid_timestamp": 1}


@pytest.mark.parametrize("encoding", ["cp1252", "utf-16"])
def test_a_csv_in_another_encoding_reads_as_in_duckdb(spark, tmp_path: Path, encoding: str) -> None:  # type: ignore[no-untyped-def]
    """Spark reads the same UTF-8 copy as DuckDB: its own encoding option knows no cp1252, and splits UTF-16
    lines on the byte 0x0A (``€`` came out as ``¬‰``)."""
    rows = [
        f"c{i % 40}\t2020-{1 + i % 12:02d}-{1 + i % 28:02d}\t{(i * 37) % 1000 / 10}\tMüller €{i}" for i in range(400)
    ]
    path = tmp_path / "tx.tsv"
    path.write_text("\n".join(["kunde\tdatum\tbetrag\tname", *rows]) + "\n", encoding=encoding)
    columns = {"customer_id": "kunde", "timestamp": "datum", "amount": "betrag"}
    csv = {"encoding": encoding, "delimiter": "\t"}
    data = DataConfig.model_validate({"source": "csv", "path": path, "csv": csv, "columns": columns})
    duck, ours, _ = _both(spark, data, PrepareConfig(calibration_end=dt.date(2020, 6, 30)))
    _assert_identical(duck, ours)
    names = spark_session.open_transactions(spark, data).frame.select("`source:name`").collect()
    assert sorted(row[0] for row in names) == sorted(row.split("\t")[-1] for row in rows)


def test_nanosecond_parquet_timestamps_are_one_line(spark, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Spark 4 cannot read them (PARQUET_TYPE_ILLEGAL; nanosAsLong gives integers): the column is named."""
    when = (pd.Timestamp("2021-01-01", tz="UTC") + pd.to_timedelta(np.arange(3), unit="D")).as_unit("ns")
    frame = pd.DataFrame({"customer_id": [1, 2, 3], "timestamp": when, "amount": [1.0, 2.0, 3.0]})
    frame.to_parquet(tmp_path / "ns.parquet")
    frame.to_parquet(tmp_path / "us.parquet", coerce_timestamps="us")
    message = r"ns\.parquet: column 'timestamp' holds Parquet timestamps at nanoseconds, which Spark cannot read; "
    with pytest.raises(InputError, match=message):
        spark_session.open_transactions(spark, DataConfig(source="parquet", path=tmp_path / "ns.parquet"))
    tx = spark_session.open_transactions(spark, DataConfig(source="parquet", path=tmp_path / "us.parquet"))
    assert tx.frame.count() == 3


def test_unreadable_parquet_is_one_line(spark, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A file that is not Parquet (as DuckDB says it), and a folder whose files disagree on a column's type, which
    an executor fails to read: input errors with one line, not tracebacks."""
    (tmp_path / "broken.parquet").write_bytes(b"PAR1 not parquet")
    with pytest.raises(InputError, match=r"broken\.parquet: cannot read parquet: Parquet magic bytes not found"):
        spark_session.open_transactions(spark, DataConfig(source="parquet", path=tmp_path / "broken.parquet"))
    frame = pd.DataFrame({"customer_id": ["a", "b"], "timestamp": ["2021-01-01", "2021-01-02"], "amount": [1.0, 2.0]})
    (tmp_path / "feed").mkdir()
    frame.to_parquet(tmp_path / "feed" / "a.parquet")
    frame.astype({"amount": str}).to_parquet(tmp_path / "feed" / "b.parquet")
    tx = spark_session.open_transactions(spark, DataConfig(source="parquet", path=tmp_path / "feed"))
    with pytest.raises(InputError) as raised, spark_session.spark_errors(tx.description):
        tx.frame.collect()
    assert str(raised.value).startswith(f"{tmp_path / 'feed'}: [FAILED_READ_FILE.PARQUET_COLUMN_DATA_TYPE_MISMATCH] ")
    assert len(str(raised.value).splitlines()) == 1
