from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pytest

from pipeline.config import PrepareConfig
from pipeline.engines import duckdb_classify, duckdb_prepare
from pipeline.engines.duckdb_activity import activity
from pipeline.engines.duckdb_classify import Buckets, classified_sql, counted_rows, customer_buckets, plain_ids
from pipeline.engines.duckdb_prepare import prepare
from pipeline.engines.source_columns import layout as source_layout
from pipeline.engines.sql import DUCKDB, duckdb_id, plain_id_sql
from pipeline.errors import InputError

CONFIG = PrepareConfig(calibration_end=dt.date(2020, 1, 31), observation_end=dt.date(2020, 3, 31))


def _ids(ids: list[object]) -> duckdb.DuckDBPyRelation:
    return duckdb.connect().from_df(pd.DataFrame({"customer_id": ids}))


def _query(relation: duckdb.DuckDBPyRelation, sql: str) -> duckdb.DuckDBPyRelation:
    """``relation.query`` of a SELECT, which always gives a relation (its stubs allow None)."""
    result = relation.query("tx", sql)
    assert result is not None
    return result


PLAIN_IDS = [
    (["a", "C536379", "17850", "", None], True),
    (["a", "17850.0"], False),  # a whole float loses its ".0"
    (["a", "C 536379", "a.b"], False),  # a dot, even where the rule keeps it
    (["a", " a"], False),
    (["a", "a "], False),
    ([None, None], True),
]


@pytest.mark.parametrize(("ids", "plain"), PLAIN_IDS)
def test_buckets_compare_the_column_where_every_id_is_its_own_text(ids: list[object], plain: bool) -> None:
    buckets = customer_buckets(_ids(ids), "VARCHAR", 3, len(ids))
    text = '"customer_id"' if plain else duckdb_id("customer_id")
    assert buckets.key == f"({text} COLLATE C)"


@pytest.mark.parametrize(("ids", "plain"), PLAIN_IDS)
def test_plain_ids_where_every_id_is_its_own_text(ids: list[object], plain: bool) -> None:
    assert plain_ids(_ids(ids), "VARCHAR") is plain
    assert counted_rows(_ids(ids), "VARCHAR") == (len(ids), plain)  # the row count finds them alike
    # where they are, the classified rows' ids are those of the rule
    relation = _ids(ids).query("tx", "SELECT customer_id, DATE '2020-01-02' AS timestamp, 1.0 AS amount FROM tx")
    assert relation is not None
    columns = {name: str(dtype) for name, dtype in zip(relation.columns, relation.types, strict=True)}
    layout = source_layout(list(columns), None, CONFIG, "test")
    queries = [f"SELECT cid FROM ({classified_sql(columns, layout, CONFIG, None, plain_ids=p)})" for p in (False, True)]
    cids = [_query(relation, query).fetchall() for query in queries]
    assert cids[0] == cids[1] or not plain


@pytest.mark.parametrize("form", ["parquet", "csv", "frame"])
def test_rows_and_plain_ids_counted_alike_from_files_and_frames(form: str, tmp_path: Path) -> None:
    """Parquet and frames are counted in two queries (the ids that are not plain in a WHERE), text files in one
    scan: the same counts."""
    con = duckdb.connect()
    for k, (ids, plain) in enumerate(PLAIN_IDS):
        assert isinstance(ids, list)
        relation = con.from_df(pd.DataFrame({"customer_id": pd.Series(ids, dtype=object), "amount": 1.0}))
        path = str(tmp_path / f"rows-{k}.{form}")
        if form == "parquet":
            relation.write_parquet(path)
            relation = con.read_parquet(path)
        elif form == "csv":
            relation.write_csv(path)
            relation = con.read_csv(path, all_varchar=True)
        assert duckdb_classify.parses_text(relation) is (form == "csv")
        assert counted_rows(relation, "VARCHAR") == (len(ids), plain)


def test_text_files_named_in_a_query_are_parsed_once(tmp_path: Path) -> None:
    con = duckdb.connect()
    for name in ("x.csv", "monthly.CSV", "events.ndjson"):
        (tmp_path / name).write_text('{"customer_id": "a"}\n' if name.endswith("json") else "customer_id\na\n")
    parquet = tmp_path / "x.parquet"
    con.sql("SELECT 'a' AS customer_id").write_parquet(str(parquet))
    assert duckdb_classify.parses_text(con.sql(f"SELECT * FROM read_csv_auto('{tmp_path / 'x.csv'}')"))
    assert duckdb_classify.parses_text(con.sql(f"SELECT * FROM '{tmp_path / 'monthly.CSV'}'"))
    assert duckdb_classify.parses_text(con.sql(f"SELECT * FROM read_json('{tmp_path / 'events.ndjson'}')"))
    assert not duckdb_classify.parses_text(con.sql(f"SELECT * FROM read_parquet('{parquet}')"))
    assert not duckdb_classify.parses_text(con.sql("SELECT 'a' AS customer_id"))


def test_integer_ids_are_plain_without_a_scan() -> None:
    no_ids = duckdb.connect().sql("SELECT 1 AS other")  # a scan of customer_id would fail
    assert plain_ids(no_ids, "BIGINT")
    assert plain_ids(no_ids, "UTINYINT")
    with pytest.raises(duckdb.BinderException):
        plain_ids(no_ids, "VARCHAR")


def test_integer_ids_are_compared_as_integers() -> None:
    buckets = customer_buckets(_ids(list(range(50, 350))), "BIGINT", 3, 300)
    assert buckets == Buckets('"customer_id"', ("149", "249"))  # as numbers: as text, "50" to "99" come last
    assert customer_buckets(_ids([1, 2]), "BIGINT", 1, 2) == Buckets('"customer_id"')  # one pass, no scan
    # another type's text is compared when it is plain: here a date's text, '2020-01-02'
    dates = duckdb.connect().sql("SELECT DATE '2020-01-01' + CAST(i AS INTEGER) AS customer_id FROM range(30) t(i)")
    assert customer_buckets(dates, "DATE", 3, 30).key == f"({plain_id_sql(DUCKDB, 'customer_id')} COLLATE C)"


def _bucket_rows(relation: duckdb.DuckDBPyRelation, n: int) -> list[list[tuple[object, ...]]]:
    columns = {name: str(dtype) for name, dtype in zip(relation.columns, relation.types, strict=True)}
    layout = source_layout(list(columns), None, CONFIG, "test")
    count = len(relation.fetchall())
    buckets = customer_buckets(relation, columns["customer_id"], n, count)
    out = []
    for k in range(buckets.count):
        query = classified_sql(columns, layout, CONFIG, "%Y-%m-%d", buckets.where(k))
        result = relation.query("tx", f"SELECT cid, ts, raw_value, reason FROM ({query}) ORDER BY ALL")
        assert result is not None
        out.append(result.fetchall())
    return out


def _one_bucket_each(buckets: list[list[tuple[object, ...]]], rows: int) -> None:
    """Every row in one bucket, and every customer's rows in the same one."""
    assert sum(len(rows) for rows in buckets) == rows
    owners = [{row[0] for row in rows} for rows in buckets]
    assert all(not (a & b) for i, a in enumerate(owners) for b in owners[i + 1 :])


def test_every_row_falls_in_one_bucket_and_every_customer_in_one() -> None:
    ids = [f"c{i:05d}" for i in range(400)] + ["", None]
    frame = pd.DataFrame({"customer_id": ids, "timestamp": "2020-01-05", "amount": "1"})
    by_text = _bucket_rows(duckdb.connect().from_df(frame), 7)
    _one_bucket_each(by_text, len(ids))
    assert len(by_text) == 7
    assert min(len(rows) for rows in by_text) > 50  # the ids do spread over the buckets
    assert [row[3] for row in by_text[0]].count("missing_customer_id") == 2  # '' and NULL: the first bucket
    # "17", "17.0" and " 17" are one customer under the id rule: the buckets compare the rule's text
    messy = [f"{pad}{i}{e}" for i in range(60) for e, pad in (("", ""), (".0", ""), ("", " "))]
    messy_frame = pd.DataFrame({"customer_id": messy, "timestamp": "2020-01-05", "amount": "1"})
    by_rule = _bucket_rows(duckdb.connect().from_df(messy_frame), 7)
    _one_bucket_each(by_rule, len(messy))
    assert len(by_rule) == 7


@pytest.mark.parametrize(
    "ids",
    [
        "CAST(i AS DOUBLE) / 4",  # not plain: '1.0' is the customer '1'
        "CAST(i AS DOUBLE) * 1e18",  # plain: '1e+18'
        "CAST(i AS DECIMAL(12, 0))",
        "CAST(i AS DECIMAL(12, 2)) / 8",
        "CAST(md5(CAST(i AS VARCHAR)) AS UUID)",
        "CAST(i AS HUGEINT) * CAST(1e35 AS HUGEINT) - CAST(1.7e38 AS HUGEINT)",  # from near the smallest HUGEINT
        "CAST(i AS UBIGINT) + CAST(18000000000000000000 AS UBIGINT)",  # above the largest BIGINT
        "CASE WHEN i % 9 = 0 THEN NULL ELSE 'O''Brien ' || CAST(i AS VARCHAR) END",  # quotes and NULLs
        "CASE WHEN i % 2 = 0 THEN upper(md5(CAST(i AS VARCHAR))) ELSE md5(CAST(i AS VARCHAR)) END",  # A and a
    ],
)
def test_every_type_of_id_falls_in_one_bucket(ids: str) -> None:
    relation = duckdb.connect().sql(
        f"SELECT {ids} AS customer_id, '2020-01-05' AS timestamp, '1' AS amount FROM range(0, 600, 3) t(i)"
    )
    buckets = _bucket_rows(relation, 5)
    _one_bucket_each(buckets, 200)
    assert len(buckets) == 5


def test_buckets_compare_bytes_under_any_collation() -> None:
    """Under NOCASE, 'Z' < 'c' is false: the bounds, sorted byte by byte, would give overlapping ranges."""
    ids = [f"{c}{i}" for i in range(20) for c in "aBbCZyYAxcDe"]
    frame = pd.DataFrame({"customer_id": ids, "timestamp": "2020-01-05", "amount": "1"})
    for collation in ("nocase", "en"):
        con = duckdb.connect()
        con.execute(f"SET default_collation = '{collation}'")
        buckets = _bucket_rows(con.from_df(frame), 4)
        _one_bucket_each(buckets, len(ids))
        assert len(buckets) == 4
    con = duckdb.connect()
    column = con.from_df(frame).query("f", "SELECT customer_id COLLATE NOCASE AS customer_id, timestamp, amount FROM f")
    assert column is not None
    _one_bucket_each(_bucket_rows(column, 4), len(ids))


def test_a_sample_of_customers_gives_the_bounds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(duckdb_classify, "SAMPLE_ROWS", 500)  # one customer in 2,000 rows / 500 = 4
    ids = [f"c{i:05d}" for i in range(1000) for _ in range(2)]
    frame = pd.DataFrame({"customer_id": ids, "timestamp": "2020-01-05", "amount": "1"})
    buckets = _bucket_rows(duckdb.connect().from_df(frame), 4)
    _one_bucket_each(buckets, len(ids))
    assert len(buckets) == 4
    assert all(350 < len(rows) < 650 for rows in buckets)  # 500 each from a sample of about 250 customers


def test_a_file_sorted_by_customer_is_read_a_range_at_a_time(tmp_path: Path) -> None:
    """DuckDB skips the row groups outside a bucket's range on their statistics (the pass reads less)."""
    path = tmp_path / "sorted.parquet"
    con = duckdb.connect()
    con.execute(
        f"""COPY (SELECT 'c' || lpad(CAST(i // 4 AS VARCHAR), 6, '0') AS customer_id, DATE '2020-01-05' AS timestamp,
                         1.0 AS amount FROM range(40000) t(i))
            TO '{path}' (FORMAT parquet, ROW_GROUP_SIZE 2048)"""
    )
    relation = con.sql(f"SELECT * FROM read_parquet('{path}')")
    buckets = customer_buckets(relation, "VARCHAR", 4, 40000)
    plan = relation.query("tx", f"EXPLAIN ANALYZE SELECT count(*) FROM tx {buckets.where(1)}")
    assert plan is not None
    scanned = re.search(r"Row Groups Scanned: (\d+) / (\d+)", plan.fetchall()[0][1])
    assert scanned is not None
    assert int(scanned.group(1)) <= int(scanned.group(2)) // 3


@pytest.mark.parametrize("order", ["customer", "time", "csv"])
@pytest.mark.parametrize("ids", ["int64", "str", "messy"])
def test_prepare_in_buckets_equals_one_pass(
    ids: str, order: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The rows in buckets give what one pass gives: five buckets where the rows are ordered by customer (the first
    rows read hold a narrow range of ids), two where they are not, or are a CSV file (parsed whole by every pass)."""
    days = ["2020-01-05", "2020-01-20", "2020-02-10", "2020-03-02"]
    customers = sorted(range(300), key=lambda i: i if ids == "int64" else str(i))  # as the buckets compare them
    rows = [(i, day, str(1 + i % 7)) for i in customers for day in days[: 1 + i % 4]]
    frame = pd.DataFrame(rows, columns=["customer_id", "timestamp", "amount"])
    if order == "time":
        frame = frame.sample(frac=1.0, random_state=5).reset_index(drop=True)
    if ids == "str":
        frame["customer_id"] = frame["customer_id"].astype(str)
    if ids == "messy":  # one customer's id written three ways
        frame["customer_id"] = [
            f"{i}.0" if k % 3 == 1 else f" {i}" if k % 3 == 2 else str(i) for k, i in enumerate(frame["customer_id"])
        ]
    frame.to_csv(tmp_path / "feed.csv", index=False)

    def source() -> duckdb.DuckDBPyRelation:
        if order == "csv":
            return duckdb.connect().read_csv(str(tmp_path / "feed.csv"), all_varchar=True)
        return duckdb.connect().from_df(frame)

    one_pass = prepare(source(), CONFIG, "%Y-%m-%d")
    monkeypatch.setattr(duckdb_prepare, "ROWS_PER_PASS", len(rows) // 5)
    monkeypatch.setattr(duckdb_prepare, "ROWS_PER_FULL_PASS", len(rows) // 2)
    monkeypatch.setattr(duckdb_classify, "PROBE_ROWS", 20)
    seen: list[Buckets] = []

    def recorded(*args: Any, **kwargs: Any) -> Buckets:  # customer_buckets, its buckets kept
        seen.append(customer_buckets(*args, **kwargs))
        return seen[-1]

    monkeypatch.setattr(duckdb_prepare, "customer_buckets", recorded)
    buckets = prepare(source(), CONFIG, "%Y-%m-%d")
    assert seen[0].count == (5 if order == "customer" else 2)
    text = duckdb_id("customer_id") if ids == "messy" else '"customer_id"'
    assert seen[0].key == ('"customer_id"' if ids == "int64" and order != "csv" else f"({text} COLLATE C)")
    pd.testing.assert_frame_equal(one_pass.calibration, buckets.calibration, check_exact=True)
    pd.testing.assert_frame_equal(one_pass.full, buckets.full, check_exact=True)
    pd.testing.assert_frame_equal(one_pass.weekly, buckets.weekly, check_exact=True)
    assert one_pass.ledger == buckets.ledger
    assert len(one_pass.full) == 300


def test_a_connection_that_ignores_case_is_refused() -> None:
    """Under NOCASE, 'a' and 'A' would be one customer: prepare and the activity table stop with a clear error."""
    days = ["2020-01-05", "2020-02-05", "2020-01-06"]
    frame = pd.DataFrame({"customer_id": ["a", "A", "b"], "timestamp": days, "amount": "1"})
    assert len(prepare(duckdb.connect().from_df(frame), CONFIG, "%Y-%m-%d").full) == 3
    con = duckdb.connect()
    con.execute("SET default_collation = 'nocase'")
    with pytest.raises(InputError, match="default_collation 'nocase'"):
        prepare(con.from_df(frame), CONFIG, "%Y-%m-%d")
    with pytest.raises(InputError, match="default_collation 'nocase'"):
        activity(con.from_df(frame), CONFIG, dt.date(2020, 3, 31), "%Y-%m-%d")


def _feed(zone: str | None) -> pd.DataFrame:
    """Two years of purchases at any second of the day (some near midnight, where a time zone moves the date)."""
    rng = np.random.default_rng(1)
    n = 3000
    start = pd.Timestamp("2019-06-01", tz=zone)
    seconds = pd.to_timedelta(rng.integers(0, 300 * 86400, n), unit="s")
    return pd.DataFrame(
        {"customer_id": rng.integers(1, 400, n), "timestamp": start + seconds, "amount": rng.gamma(3, 10, n).round(2)}
    )


@pytest.mark.parametrize("zone", [None, "UTC", "Asia/Tokyo"], ids=["naive", "utc", "tokyo"])
def test_nanosecond_parquet_timestamps_prepare_as_microseconds_do(tmp_path: Path, zone: str | None) -> None:
    """pandas writes a timestamp column at nanoseconds (TIMESTAMP_NS, TIMESTAMPTZ_NS with a zone); it is read with
    the same wall times in ``prepare.timezone`` as the same data written at microseconds."""
    feed = _feed(zone)
    for unit in ("ns", "us"):
        feed.assign(timestamp=feed["timestamp"].dt.as_unit(unit)).to_parquet(tmp_path / f"{unit}.parquet")
    config = PrepareConfig(calibration_end=dt.date(2019, 12, 31), timezone="America/New_York")
    prepared = []
    for name in ("ns", "us"):
        relation = duckdb.connect().read_parquet(str(tmp_path / f"{name}.parquet"))
        prepared.append(prepare(relation, config))
    ns, us = prepared
    assert ns.ledger.rows_used == len(feed)
    pd.testing.assert_frame_equal(ns.calibration, us.calibration, check_exact=True)
    pd.testing.assert_frame_equal(ns.full, us.full, check_exact=True)
    assert (ns.first_date, ns.last_date) == (us.first_date, us.last_date)


@pytest.mark.parametrize(("fmt", "per_second"), [("epoch_s", 1), ("%s", 1), ("epoch_ms", 1000), ("epoch_us", 10**6)])
def test_epoch_timestamps_prepare_as_the_same_instants_written_out(fmt: str, per_second: int) -> None:
    """Numbers since 1970-01-01 UTC are instants: read as the wall time in prepare.timezone, as the same instants
    written with a UTC offset are; text and integer columns alike; what is not a number, or lies past the year
    5138, is an invalid_timestamp."""
    feed = _feed("UTC")
    epoch = (feed["timestamp"] - pd.Timestamp("1970-01-01", tz="UTC")) // pd.Timedelta(seconds=1) * per_second
    written = feed.assign(timestamp=feed["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%SZ"))
    config = PrepareConfig(calibration_end=dt.date(2019, 12, 31), timezone="Asia/Tokyo")
    expected = prepare(duckdb.connect().from_df(written), config)
    for numbers in (epoch.astype("int64"), epoch.astype(str)):
        got = prepare(duckdb.connect().from_df(feed.assign(timestamp=numbers)), config, fmt)
        pd.testing.assert_frame_equal(got.calibration, expected.calibration, check_exact=True)
        pd.testing.assert_frame_equal(got.full, expected.full, check_exact=True)
        assert (got.first_date, got.last_date) == (expected.first_date, expected.last_date)
    instants = [1_559_433_600, 1_577_836_800]  # 2019-06-02 and 2020-01-01 00:00 UTC, 09:00 in Tokyo
    bad = feed.head(4).assign(timestamp=["soon", str(10**11 * per_second), *(str(i * per_second) for i in instants)])
    got = prepare(duckdb.connect().from_df(bad), config, fmt)
    assert got.ledger.quarantined == {"invalid_timestamp": 2}
    assert (got.first_date, got.last_date) == (dt.date(2019, 6, 2), dt.date(2020, 1, 1))


@pytest.mark.parametrize("dtype", ["VARCHAR", "BIGINT", "messy"])
def test_an_input_clustered_by_customer_gets_the_finer_buckets(tmp_path: Path, dtype: str) -> None:
    """Rows sorted by customer: the first rows read hold a narrow range of ids, so the finer buckets are kept (each
    pass reads its own row groups); the same rows shuffled (as a feed ordered by time) get the fewer buckets, since
    every pass reads every row group. Text ids, integer ids and ids read through the id rule alike; on a connection
    set as the engine's (insertion order not kept) with more threads than this machine's cores."""
    numbers = np.repeat(np.arange(1000, 7000), 10)
    ids: pd.Series = pd.Series(numbers) if dtype == "BIGINT" else pd.Series([f"c{n}" for n in numbers])
    if dtype == "messy":
        ids = ids.where(numbers % 2 == 0, " " + ids)  # padded ids: read through the id rule (not plain)
    column = "BIGINT" if dtype == "BIGINT" else "VARCHAR"
    shuffled = ids.sample(frac=1.0, random_state=3).reset_index(drop=True)
    con = duckdb.connect()
    con.execute("SET preserve_insertion_order = false")
    con.execute("SET threads = 8")
    for name, frame in (("sorted", ids), ("shuffled", shuffled)):
        pd.DataFrame({"customer_id": frame}).to_parquet(tmp_path / f"{name}.parquet", row_group_size=2000)
    clustered = con.read_parquet(str(tmp_path / "sorted.parquet"))
    unclustered = con.read_parquet(str(tmp_path / "shuffled.parquet"))
    fine = customer_buckets(clustered, column, 6, len(ids), unclustered=3)
    coarse = customer_buckets(unclustered, column, 6, len(ids), unclustered=3)
    assert (fine.count, coarse.count) == (6, 3)
    assert fine.key == coarse.key == customer_buckets(clustered, column, 6, len(ids)).key
    # each set of buckets holds every row once, in about as many rows per bucket
    for buckets, relation in ((fine, clustered), (coarse, unclustered)):
        sizes = [
            _query(relation, f"SELECT count(*) FROM tx {buckets.where(k)}").fetchall()[0][0]
            for k in range(buckets.count)
        ]
        assert sum(sizes) == len(ids)
        assert max(sizes) < 1.2 * len(ids) / buckets.count
    assert customer_buckets(unclustered, column, 6, len(ids)).count == 6  # without a coarser count: the finer
    assert customer_buckets(unclustered, column, 3, len(ids), unclustered=6).count == 3  # never more buckets
