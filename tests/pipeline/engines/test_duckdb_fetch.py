from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pytest

from pipeline.config import PrepareConfig
from pipeline.engines import duckdb_fetch, duckdb_prepare
from pipeline.engines.duckdb_prepare import prepare, prepare_as_of
from pipeline.errors import InputError
from tests.pipeline.engines.test_duckdb_prepare import _generated_transactions

CONFIG = PrepareConfig(calibration_end=dt.date(2021, 8, 31), observation_end=dt.date(2021, 12, 31))


def _raw_transactions() -> pd.DataFrame:
    """Generated transactions of 300 customers, with text timestamps."""
    tx = _generated_transactions(customers=300)
    return tx.assign(timestamp=tx["date"].dt.strftime("%Y-%m-%d"))[["customer_id", "timestamp", "amount"]]


def test_large_summaries_through_files_equal_the_direct_fetch(monkeypatch: pytest.MonkeyPatch) -> None:
    raw = _raw_transactions()
    new = pd.DataFrame(  # customers new in the holdout: in the full history only
        {
            "customer_id": [f"n{k:03d}" for k in range(20)] * 2,
            "timestamp": ["2021-10-04"] * 20 + ["2021-11-15"] * 20,
            "amount": [12.5] * 40,
        }
    )
    raw = pd.concat([raw, new], ignore_index=True)
    config = CONFIG
    con = duckdb.connect()
    con.execute("SET preserve_insertion_order = false")
    direct = prepare(con.from_df(raw), config, "%Y-%m-%d")
    scoring = prepare_as_of(con.from_df(raw), config, dt.date(2021, 12, 31), "%Y-%m-%d")
    monkeypatch.setattr(duckdb_fetch, "FETCH_THROUGH_FILES", 0)
    files = prepare(con.from_df(raw), config, "%Y-%m-%d")
    pd.testing.assert_frame_equal(direct.calibration, files.calibration, check_exact=True)
    pd.testing.assert_frame_equal(direct.full, files.full, check_exact=True)
    files_scoring = prepare_as_of(con.from_df(raw), config, dt.date(2021, 12, 31), "%Y-%m-%d")
    pd.testing.assert_frame_equal(scoring.customers, files_scoring.customers, check_exact=True)
    assert files.full["customer_id"].is_monotonic_increasing
    # one query, two frames: the calibration's rows are the customers who bought by calibration_end, in order
    assert len(files.calibration) < len(files.full)
    bought = files.full["first_purchase"] <= pd.Timestamp(config.calibration_end)
    assert files.calibration["customer_id"].tolist() == files.full.loc[bought, "customer_id"].tolist()
    assert files.calibration.columns.tolist()[:7] == files.full.columns.tolist()
    assert con.sql("SELECT current_setting('preserve_insertion_order')").fetchall() == [(False,)]


def _text_buffers(column: pd.Series) -> set[int]:
    """Addresses of the Arrow buffers behind a text column."""
    array = pa.array(column.array)
    chunks = array.chunks if isinstance(array, pa.ChunkedArray) else [array]
    return {buffer.address for chunk in chunks for buffer in chunk.buffers() if buffer is not None and buffer.size}


def test_parts_that_keep_every_customer_share_one_column_of_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    raw = _raw_transactions()
    config = CONFIG
    con = duckdb.connect()
    direct = prepare(con.from_df(raw), config, "%Y-%m-%d")
    monkeypatch.setattr(duckdb_fetch, "FETCH_THROUGH_FILES", 0)
    files = prepare(con.from_df(raw), config, "%Y-%m-%d")
    assert len(files.calibration) == len(files.full)  # every customer bought by calibration_end
    pd.testing.assert_frame_equal(direct.calibration, files.calibration, check_exact=True)
    pd.testing.assert_frame_equal(direct.full, files.full, check_exact=True)
    # the ids are read once: both frames hold the same text buffers, not a copy each
    assert _text_buffers(files.full["customer_id"]) == _text_buffers(files.calibration["customer_id"])


def test_cdnow_through_files_equals_the_direct_fetch(monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.config import parse_config
    from pipeline.workflow import prepare_data

    config = parse_config({"data": {"source": "cdnow_master"}})
    direct = prepare_data(config)[0]
    monkeypatch.setattr(duckdb_fetch, "FETCH_THROUGH_FILES", 0)
    files = prepare_data(config)[0]
    assert len(files.full) == 23_570
    pd.testing.assert_frame_equal(direct.calibration, files.calibration, check_exact=True)
    pd.testing.assert_frame_equal(direct.full, files.full, check_exact=True)
    assert _text_buffers(files.full["customer_id"]) == _text_buffers(files.calibration["customer_id"])


@pytest.mark.parametrize(("ids", "sorted_again"), [("int64", True), ("str", False)])
def test_buckets_of_integer_ids_are_sorted_by_text_once_more(
    ids: str, sorted_again: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The buckets of integer ids are ranges of numbers, while the rows are sorted by the id's text: their
    rows one bucket after the other are not sorted, and DuckDB sorts the ids once more. Text ids' ranges are
    in the text's order: their buckets' rows are kept as they come."""
    raw = _raw_transactions()
    raw["customer_id"] = raw["customer_id"].str[1:].astype("int64")  # 0 to 299: "10" sorts before "2"
    if ids == "str":
        raw["customer_id"] = raw["customer_id"].astype(str)
    con = duckdb.connect()
    one_pass = prepare(con.from_df(raw), CONFIG, "%Y-%m-%d")
    sorts: list[int] = []
    sorting_order = duckdb_fetch._sorting_order

    def counted(ids: pa.ChunkedArray, query: duckdb_fetch.Query) -> npt.NDArray[np.int64]:
        sorts.append(len(ids))
        return sorting_order(ids, query)

    monkeypatch.setattr(duckdb_fetch, "_sorting_order", counted)
    monkeypatch.setattr(duckdb_prepare, "ROWS_PER_PASS", len(raw) // 4)
    monkeypatch.setattr(duckdb_prepare, "ROWS_PER_FULL_PASS", len(raw) // 4)
    buckets = prepare(con.from_df(raw), CONFIG, "%Y-%m-%d")
    assert sorts == ([len(one_pass.full)] if sorted_again else [])
    assert buckets.full["customer_id"].tolist() == sorted(buckets.full["customer_id"].tolist())
    pd.testing.assert_frame_equal(one_pass.calibration, buckets.calibration, check_exact=True)
    pd.testing.assert_frame_equal(one_pass.full, buckets.full, check_exact=True)


def _mapped_files() -> list[str]:
    with open("/proc/self/maps") as maps:
        return [line.split()[-1] for line in maps if "summaries-" in line]


def test_no_bucket_file_stays_mapped_behind_the_frames(monkeypatch: pytest.MonkeyPatch) -> None:
    """The bucket files are read memory-mapped; every column is copied before they go (a column of one chunk
    would otherwise reach pandas as the file's own buffer), so no frame keeps a deleted file mapped."""
    raw = _raw_transactions()
    con = duckdb.connect()
    direct = prepare(con.from_df(raw), CONFIG, "%Y-%m-%d")
    monkeypatch.setattr(duckdb_fetch, "FETCH_THROUGH_FILES", 0)  # one bucket, one file of one batch
    files = prepare(con.from_df(raw), CONFIG, "%Y-%m-%d")
    assert _mapped_files() == []
    pd.testing.assert_frame_equal(direct.calibration, files.calibration, check_exact=True)
    pd.testing.assert_frame_equal(direct.full, files.full, check_exact=True)


def test_the_ids_are_copied_into_one_array_of_large_text() -> None:
    ids = pa.chunked_array([pa.array(["a", "b"])])
    text = duckdb_fetch._owned_text(ids)
    assert (text.type, text.num_chunks, text.to_pylist()) == (pa.large_string(), 1, ["a", "b"])
    assert text.chunk(0).buffers()[2].address != ids.chunk(0).buffers()[2].address  # the characters copied too


def test_buckets_in_order_only_when_each_border_is() -> None:
    def column(*ids: str) -> pa.ChunkedArray:
        return pa.chunked_array([pa.array(list(ids), pa.string())])

    assert duckdb_fetch._ordered([column("a", "b"), column(), column("c")])
    assert not duckdb_fetch._ordered([column("a", "c"), column("b", "d")])
    assert not duckdb_fetch._ordered([column("a", "b"), column("b", "c")])  # one id in two buckets: not in order
    assert duckdb_fetch._ordered([column("Z"), column("a"), column("é")])  # code points: UTF-8 byte order


@pytest.mark.parametrize("setting", ["memory_limit = '-1'", "default_order = 'DESC'"])
def test_the_second_sort_runs_in_the_connection_as_it_is_set(setting: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Integer ids in several buckets are sorted once more in prepare's own connection, whatever it is set to
    (no memory limit; descending by default: every ORDER BY says ASC), and the frames are those of one pass."""
    raw = _raw_transactions()
    raw["customer_id"] = raw["customer_id"].str[1:].astype("int64")
    one_pass = prepare(duckdb.connect().from_df(raw), CONFIG, "%Y-%m-%d")
    con = duckdb.connect()
    con.execute(f"SET {setting}")
    monkeypatch.setattr(duckdb_prepare, "ROWS_PER_PASS", len(raw) // 4)
    monkeypatch.setattr(duckdb_prepare, "ROWS_PER_FULL_PASS", len(raw) // 4)
    buckets = prepare(con.from_df(raw), CONFIG, "%Y-%m-%d")
    pd.testing.assert_frame_equal(one_pass.calibration, buckets.calibration, check_exact=True)
    pd.testing.assert_frame_equal(one_pass.full, buckets.full, check_exact=True)


def test_no_bucket_file_is_left_in_the_staging_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    raw = _raw_transactions()
    monkeypatch.setattr(duckdb_prepare, "ROWS_PER_PASS", len(raw) // 4)
    monkeypatch.setattr(duckdb_prepare, "ROWS_PER_FULL_PASS", len(raw) // 4)
    prepared = prepare(duckdb.connect().from_df(raw), CONFIG, "%Y-%m-%d", staging=tmp_path)
    assert len(prepared.full) == 300
    assert list(tmp_path.iterdir()) == []
    late = CONFIG.model_copy(update={"calibration_end": dt.date(2019, 1, 1)})  # stops after the buckets' files
    with pytest.raises(InputError):
        prepare(duckdb.connect().from_df(raw), late, "%Y-%m-%d", staging=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_connection_without_python_replacements_gets_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    raw = _raw_transactions()
    raw["customer_id"] = raw["customer_id"].str[1:].astype("int64")
    con = duckdb.connect()
    con.execute("SET python_enable_replacements = false")
    monkeypatch.setattr(duckdb_prepare, "ROWS_PER_PASS", len(raw) // 4)
    monkeypatch.setattr(duckdb_prepare, "ROWS_PER_FULL_PASS", len(raw) // 4)
    with pytest.raises(InputError, match="python_enable_replacements off"):
        prepare(con.from_df(raw), CONFIG, "%Y-%m-%d")
    raw["customer_id"] = raw["customer_id"].astype(str)  # text ids need no second sort
    assert len(prepare(con.from_df(raw), CONFIG, "%Y-%m-%d").full) == 300


@pytest.mark.parametrize("ids", ["int64", "text"])
@pytest.mark.parametrize("feed", ["invoice lines", "events"])
def test_feeds_a_user_brings_through_several_buckets_equal_one_pass(
    feed: str, ids: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Invoice lines (quantity and unit price, order ids, cancellations; weekly periods) and an event feed (no
    amounts) give the same frames, weekly table and ledger through files in several buckets, with integer ids
    (sorted once more) and text ids (copied straight from the files)."""
    raw = _raw_transactions()
    if ids == "int64":
        raw["customer_id"] = raw["customer_id"].str[1:].astype("int64")
    config = CONFIG
    if feed == "invoice lines":
        raw = raw.assign(quantity=2, unit_price=raw.pop("amount") / 2, order_id=[f"o{k // 3}" for k in range(len(raw))])
        raw.loc[raw.index % 17 == 0, "order_id"] = "C-" + raw["order_id"]  # cancellations, netted
        config = CONFIG.model_copy(update={"cancel_prefix": "C-", "period": "week"})
    else:
        raw = raw.drop(columns="amount")
    one_pass = prepare(duckdb.connect().from_df(raw), config, "%Y-%m-%d")
    monkeypatch.setattr(duckdb_prepare, "ROWS_PER_PASS", len(raw) // 5)
    monkeypatch.setattr(duckdb_prepare, "ROWS_PER_FULL_PASS", len(raw) // 5)
    buckets = prepare(duckdb.connect().from_df(raw), config, "%Y-%m-%d")
    scores = prepare_as_of(duckdb.connect().from_df(raw), config, dt.date(2021, 10, 31), "%Y-%m-%d")
    monkeypatch.setattr(duckdb_prepare, "ROWS_PER_PASS", 10**9)
    monkeypatch.setattr(duckdb_prepare, "ROWS_PER_FULL_PASS", 10**9)
    one_pass_scores = prepare_as_of(duckdb.connect().from_df(raw), config, dt.date(2021, 10, 31), "%Y-%m-%d")
    assert one_pass.has_amounts == (feed == "invoice lines")
    if feed == "invoice lines":
        assert one_pass.ledger.returns_netted > 0
    pd.testing.assert_frame_equal(one_pass.calibration, buckets.calibration, check_exact=True)
    pd.testing.assert_frame_equal(one_pass.full, buckets.full, check_exact=True)
    pd.testing.assert_frame_equal(one_pass.weekly, buckets.weekly, check_exact=True)
    assert one_pass.ledger == buckets.ledger
    pd.testing.assert_frame_equal(one_pass_scores.customers, scores.customers, check_exact=True)


def _buckets_table() -> pa.Table:
    """Two buckets' columns of four chunks: numbers, timestamps, and types pandas converts itself (nulls, flags,
    a time zone, dates); the part's row flag with a NULL."""

    def chunks(*values: list[object], kind: pa.DataType | None = None) -> pa.ChunkedArray:
        kind = kind or pa.array(values[0]).type
        return pa.chunked_array([pa.array(v, kind) for v in values], kind)

    stamp = pa.timestamp("us")
    return pa.table(
        {
            "c:x": chunks([1.5, 2.5], [3.5], [], [4.5, 5.5]),
            "c:n": chunks([1, 2], [3], [], [4, 5], kind=pa.int64()),
            "c:first": chunks([dt.datetime(2021, 1, k) for k in (1, 2)], [dt.datetime(2021, 2, 1)], [], [None, None])
            .cast(stamp)
            .fill_null(dt.datetime(2021, 3, 1)),
            "c:gaps": chunks([1.0, None], [3.0], [], [4.0, 5.0]),
            "c:flag": chunks([True, False], [True], [], [False, True]),
            "c:zoned": chunks([0, 1], [2], [], [3, 4], kind=pa.int64()).cast(pa.timestamp("us", "UTC")),
            "c:day": chunks([0, 1], [2], [], [3, 4], kind=pa.int32()).cast(pa.date32()),
            "in": chunks([True, False], [None], [], [True, True]),
        }
    )


@pytest.mark.parametrize("rows", [None, "in"])
def test_frames_copied_straight_to_numpy_equal_pyarrows_conversion(rows: str | None) -> None:
    table = _buckets_table()
    ids = pa.chunked_array([pa.array(["a", "b", "c", "d", "e"], pa.large_string())])
    part = duckdb_fetch.Part("c:", rows)
    columns = table.select(part.columns(table.column_names))
    expected = duckdb_fetch._part(columns.add_column(0, "customer_id", ids), part).to_pandas(split_blocks=True)
    frame = duckdb_fetch._frame(columns, part, ids)
    pd.testing.assert_frame_equal(frame, expected, check_exact=True)
    assert frame["customer_id"].tolist() == (["a", "b", "c", "d", "e"] if rows is None else ["a", "d", "e"])
    assert frame["x"].dtype == np.float64
    assert frame["first"].dtype == np.dtype("datetime64[us]")
    # a numpy copy, not a view of the buckets' buffers
    assert not np.shares_memory(frame["x"].to_numpy(), columns["c:x"].chunk(0).to_numpy())


def test_frames_whose_chunks_do_not_line_up_are_converted_by_pyarrow() -> None:
    ids = pa.chunked_array([pa.array(["a", "b", "c"], pa.large_string())])
    table = pa.table(
        {
            "c:x": pa.chunked_array([pa.array([1.0, 2.0]), pa.array([3.0])]),
            "in": pa.chunked_array([pa.array([True]), pa.array([False, True])]),
        }
    )
    part = duckdb_fetch.Part("c:", "in")
    frame = duckdb_fetch._frame(table, part, ids)
    assert frame.to_dict("list") == {"customer_id": ["a", "c"], "x": [1.0, 3.0]}


def test_frames_of_buckets_without_a_customer() -> None:
    """Bucket files without a batch (no customer) give empty frames, as pyarrow's conversion does."""
    table = pa.table({"c:x": pa.chunked_array([], pa.float64()), "in": pa.chunked_array([], pa.bool_())})
    ids = pa.chunked_array([], pa.large_string())
    for rows in (None, "in"):
        part = duckdb_fetch.Part("c:", rows)
        columns = table.select(part.columns(table.column_names))
        expected = duckdb_fetch._part(columns.add_column(0, "customer_id", ids), part).to_pandas(split_blocks=True)
        pd.testing.assert_frame_equal(duckdb_fetch._frame(columns, part, ids), expected, check_exact=True)


def test_a_feed_of_returns_only_through_several_buckets_stops_as_in_one_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    raw = pd.DataFrame(
        {
            "customer_id": [f"c{k:03d}" for k in range(40)],
            "timestamp": ["2021-03-01"] * 20 + ["2021-10-01"] * 20,
            "amount": [-5.0] * 40,
        }
    )
    with pytest.raises(InputError, match="no customer made a purchase on or before calibration_end"):
        prepare(duckdb.connect().from_df(raw), CONFIG, "%Y-%m-%d")
    monkeypatch.setattr(duckdb_prepare, "ROWS_PER_PASS", 10)  # four buckets, each file without a batch
    monkeypatch.setattr(duckdb_prepare, "ROWS_PER_FULL_PASS", 10)
    with pytest.raises(InputError, match="no customer made a purchase on or before calibration_end"):
        prepare(duckdb.connect().from_df(raw), CONFIG, "%Y-%m-%d")


def test_columns_pyarrow_converts_are_copied_out_of_the_buckets() -> None:
    """A column numpy cannot take as it is (here 32-bit integers) is still copied, not kept in the file's buffer."""
    column = pa.chunked_array([pa.array([1, 2, 3], pa.int32())])
    ids = pa.chunked_array([pa.array(["a", "b", "c"], pa.large_string())])
    frame = duckdb_fetch._frame(pa.table({"c:n": column}), duckdb_fetch.Part("c:"), ids)
    assert frame["n"].tolist() == [1, 2, 3]
    assert not np.shares_memory(frame["n"].to_numpy(), column.chunk(0).to_numpy())
