from __future__ import annotations

import datetime as dt
import gc
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from pipeline.config import DataConfig, PrepareConfig
from pipeline.engines.duckdb_prepare import prepare
from pipeline.engines.duckdb_source import open_transactions
from pipeline.errors import InputError
from tests.feeds import RETAIL_MAPPING, monthly_exports, online_retail_lines


def test_bundled_cdnow_master() -> None:
    tx = open_transactions(duckdb.connect(), DataConfig(source="cdnow_master"))
    assert tx.relation.columns == ["customer_id", "timestamp", "amount"]
    rows, customers, first, last = tx.relation.aggregate(
        "count(*), count(DISTINCT customer_id), min(timestamp), max(timestamp)"
    ).fetchall()[0]
    assert (rows, customers, first, last) == (69_659, 23_570, "19970101", "19980630")
    assert tx.timestamp_format == "%Y%m%d"
    assert len(tx.fingerprint) == 64


def test_bundled_cdnow_sample_uses_sample_ids() -> None:
    tx = open_transactions(duckdb.connect(), DataConfig(source="cdnow_sample"))
    rows, customers = tx.relation.aggregate("count(*), count(DISTINCT customer_id)").fetchall()[0]
    assert (rows, customers) == (6_919, 2_357)


def test_csv_with_column_mapping(tmp_path: Path) -> None:
    path = tmp_path / "orders.csv"
    path.write_text("cust;when;total\nx;2020-01-01;3.5\ny;2020-01-02;4\n")
    data = DataConfig.model_validate(
        {
            "source": "csv",
            "path": path,
            "csv": {"delimiter": ";"},
            "columns": {"customer_id": "cust", "timestamp": "when", "amount": "total"},
        }
    )
    tx = open_transactions(duckdb.connect(), data)
    assert tx.relation.fetchall() == [("x", "2020-01-01", "3.5"), ("y", "2020-01-02", "4")]


def test_parquet_folder(tmp_path: Path) -> None:
    for i in range(2):
        pd.DataFrame({"customer_id": [f"c{i}"], "timestamp": ["2020-01-01"], "amount": [1.0]}).to_parquet(
            tmp_path / f"part{i}.parquet"
        )
    tx = open_transactions(duckdb.connect(), DataConfig(source="parquet", path=tmp_path))
    assert sorted(r[0] for r in tx.relation.fetchall()) == ["c0", "c1"]


def _retail_data(path: Path) -> DataConfig:
    return DataConfig.model_validate({"source": "csv", "path": path, "columns": RETAIL_MAPPING})


def test_a_folder_of_csv_exports_prepares_as_the_one_file(tmp_path: Path) -> None:
    """Monthly exports in a folder: every .csv file is read (not the hidden copy, not README.txt), and prepare
    gives what it gives on the same lines in one file, bit for bit, the ledger included."""
    feed = online_retail_lines()
    exports = monthly_exports(feed.lines, tmp_path / "exports")
    assert len(exports) == 13  # December 2010 to December 2011
    feed.lines.to_csv(tmp_path / "all.csv", index=False)
    config = PrepareConfig(calibration_end=dt.date(2011, 9, 9))
    prepared = []
    for path in (tmp_path / "exports", tmp_path / "all.csv"):
        tx = open_transactions(duckdb.connect(), _retail_data(path))
        prepared.append(prepare(tx.relation, config, tx.timestamp_format, column_names=tx.column_names))
    folder, one_file = prepared
    assert folder.ledger == one_file.ledger
    assert folder.ledger.rows_in == len(feed.lines)
    assert folder.ledger.quarantined == {"missing_customer_id": feed.empty_ids, "duplicate": feed.true_duplicates}
    for part in ("calibration", "full", "weekly"):
        pd.testing.assert_frame_equal(getattr(folder, part), getattr(one_file, part), check_exact=True)


def test_the_files_of_a_folder_need_one_header(tmp_path: Path) -> None:
    """Both engines read a folder's files by position: a file with its columns in another order would put
    timestamps under customer_id. It is refused, naming the file and both headers."""
    (tmp_path / "a.csv").write_text("customer_id,timestamp,amount\nx,2020-01-01,1\n")
    (tmp_path / "b.csv").write_text("timestamp,customer_id,amount\n2020-01-02,y,2\n")
    with pytest.raises(InputError) as raised:
        open_transactions(duckdb.connect(), DataConfig(source="csv", path=tmp_path))
    assert str(raised.value) == (
        f"{tmp_path / 'b.csv'}: its header (timestamp, customer_id, amount) is not that of a.csv "
        "(customer_id, timestamp, amount); every file of the folder needs the same columns in the same order, "
        "or a data.query that reads them by name (see the docs on real feeds: folders)"
    )
    # every file that differs is counted, the first few named
    for name in ("c", "d", "e", "f"):
        (tmp_path / f"{name}.csv").write_text("customer_id,timestamp,amount,extra\nx,2020-01-01,1,z\n")
    with pytest.raises(InputError, match=r"\(and 4 more: c\.csv, d\.csv, e\.csv, \.\.\.\); every file"):
        open_transactions(duckdb.connect(), DataConfig(source="csv", path=tmp_path))


def test_a_folder_without_the_sources_files(tmp_path: Path) -> None:
    (tmp_path / "part.parquet").write_bytes(b"PAR1")
    with pytest.raises(InputError) as raised:
        open_transactions(duckdb.connect(), DataConfig(source="csv", path=tmp_path))
    assert str(raised.value) == f"{tmp_path}: folder holds no .csv files"
    (tmp_path / "EXPORT.CSV").write_text("")
    with pytest.raises(InputError) as raised:
        open_transactions(duckdb.connect(), DataConfig(source="csv", path=tmp_path))
    assert str(raised.value) == f"{tmp_path / 'EXPORT.CSV'}: the file is empty"


def test_missing_column_names_file_and_column(tmp_path: Path) -> None:
    path = tmp_path / "orders.csv"
    path.write_text("customer_id,date,amount\nx,2020-01-01,1\n")
    with pytest.raises(
        InputError, match=r"orders\.csv: missing required column 'timestamp' \(data\.columns\.timestamp\)"
    ):
        open_transactions(duckdb.connect(), DataConfig(source="csv", path=path))


@pytest.mark.parametrize(
    ("last", "fields"), [("9,2020-01-09,10,extra", "line 10 has 4 fields"), ("9,2020-01-09", "line 10 has 2 fields")]
)
def test_a_line_with_more_or_fewer_fields_is_named(tmp_path: Path, last: str, fields: str) -> None:
    """DuckDB only says it could not detect the dialect; the error names the line and its fields."""
    path = tmp_path / "ragged.csv"
    lines = [f"{i},2020-01-0{i},{i}.5" for i in range(1, 9)]
    path.write_text("customer_id,timestamp,amount\n" + "\n".join([*lines, last]) + "\n")
    with pytest.raises(InputError) as raised:
        open_transactions(duckdb.connect(), DataConfig(source="csv", path=path))
    assert str(raised.value) == f"{path}: cannot read csv: {fields} where the header has 3"


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="input file not found"):
        open_transactions(duckdb.connect(), DataConfig(source="csv", path=tmp_path / "none.csv"))


def test_duckdb_table(tmp_path: Path) -> None:
    path = tmp_path / "shop.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE orders AS SELECT 'a' AS cust, DATE '2020-01-01' AS ts, 3.5 AS value")
    data = DataConfig.model_validate(
        {
            "source": "duckdb",
            "path": path,
            "table": "orders",
            "columns": {"customer_id": "cust", "timestamp": "ts", "amount": "value"},
        }
    )
    tx = open_transactions(duckdb.connect(), data)
    assert tx.relation.columns == ["customer_id", "timestamp", "amount"]
    assert tx.relation.fetchall()[0][0] == "a"
    bad = data.model_copy(update={"table": "nope"})
    with pytest.raises(InputError, match="no table 'nope'"):
        open_transactions(duckdb.connect(), bad)


def test_sql_query_over_files(tmp_path: Path) -> None:
    path = tmp_path / "lines.csv"
    path.write_text("cust,ts,qty,price,invoice\na,2020-01-01,2,1.5,i1\n")
    query = f"SELECT * FROM read_csv('{path}', all_varchar=true) WHERE qty <> '0'"
    data = DataConfig.model_validate(
        {
            "source": "sql",
            "query": query,
            "columns": {
                "customer_id": "cust",
                "timestamp": "ts",
                "quantity": "qty",
                "unit_price": "price",
                "order_id": "invoice",
            },
        }
    )
    tx = open_transactions(duckdb.connect(), data)
    assert tx.relation.columns == ["customer_id", "timestamp", "quantity", "unit_price", "order_id"]
    with pytest.raises(InputError, match=r"^data\.query: "):
        open_transactions(duckdb.connect(), data.model_copy(update={"query": "SELECT * FROM nowhere"}))


def test_duplicate_column_names(tmp_path: Path) -> None:
    path = tmp_path / "dup.csv"
    path.write_text("customer_id,timestamp,amount\na,2020-01-01,1\n")
    relation = duckdb.connect().sql("SELECT 'a' AS customer_id, 'x' AS timestamp, 1 AS amount, 2 AS amount")
    from pipeline.engines.duckdb_source import _mapped

    with pytest.raises(InputError, match="duplicate column name"):
        _mapped(relation, DataConfig(source="csv", path=path), "dup.csv", "f")


def test_unmapped_columns_come_along_under_private_aliases(tmp_path: Path) -> None:
    path = tmp_path / "lines.csv"
    path.write_text(
        "InvoiceNo,StockCode,Quantity,customer_id,UnitPrice,CustomerID,InvoiceDate\n"
        "1,85123A,6,x,2.55,17850.0,12/1/2010 8:26\n"
    )
    data = DataConfig.model_validate(
        {
            "source": "csv",
            "path": path,
            "columns": {
                "customer_id": "CustomerID",
                "timestamp": "InvoiceDate",
                "quantity": "Quantity",
                "unit_price": "UnitPrice",
                "order_id": "InvoiceNo",
            },
        }
    )
    tx = open_transactions(duckdb.connect(), data)
    # The source's own "customer_id" column is not the mapped one: it comes along, without a clash.
    assert tx.relation.columns == [
        "order_id",
        "source:StockCode",
        "quantity",
        "source:customer_id",
        "unit_price",
        "customer_id",
        "timestamp",
    ]
    assert list(tx.column_names.values()) == [
        "InvoiceNo",
        "StockCode",
        "Quantity",
        "customer_id",
        "UnitPrice",
        "CustomerID",
        "InvoiceDate",
    ]
    assert tx.relation.fetchall() == [("1", "85123A", "6", "x", "2.55", "17850.0", "12/1/2010 8:26")]


@pytest.mark.parametrize(
    ("amount", "hint"),
    [
        ("amount", "an event feed without amounts sets data.columns.amount: null (not for business.type contractual)"),
        ("none", "'none' is a column name here: for an event feed (no amounts) write data.columns.amount: null"),
    ],
)
def test_a_missing_amount_column_says_how_to_read_an_event_feed(tmp_path: Path, amount: str, hint: str) -> None:
    """A new user's event feed without amounts: the line said only that the column was missing, and YAML's
    ``amount: none`` is the text "none", a column name."""
    path = tmp_path / "events.csv"
    path.write_text("date,id\n2014-03-08 00:00:00,0\n")
    data = DataConfig.model_validate(
        {"source": "csv", "path": path, "columns": {"customer_id": "id", "timestamp": "date", "amount": amount}}
    )
    with pytest.raises(InputError) as raised:
        open_transactions(duckdb.connect(), data)
    assert str(raised.value) == (
        f"{path}: missing required column '{amount}' (data.columns.amount); found: date, id; {hint}"
    )


def test_an_event_feed_needs_no_amount_column(tmp_path: Path) -> None:
    """lifetimes' example_transactions.csv is `date,id`: it stopped on "missing required column 'amount'"."""
    path = tmp_path / "events.csv"
    path.write_text("date,id\n2014-03-08 00:00:00,0\n2014-05-21 00:00:00,1\n")
    data = DataConfig.model_validate(
        {"source": "csv", "path": path, "columns": {"customer_id": "id", "timestamp": "date", "amount": None}}
    )
    tx = open_transactions(duckdb.connect(), data)
    assert tx.relation.columns == ["timestamp", "customer_id"]
    assert tx.column_names == {"timestamp": "date", "customer_id": "id"}


SPILLING = """
import pathlib, sys
from pipeline.config import EngineConfig
from pipeline.engines.duckdb_source import connect
from pipeline.interpreter import exit_now

spill = pathlib.Path(sys.argv[1])
con = connect(EngineConfig(memory_limit="100MB", temp_directory=spill, threads=1))
con.execute("CREATE TABLE t AS SELECT i, random() AS r, repeat('x', 40) AS s FROM range(6000000) t(i) ORDER BY r")
print(len(list(spill.iterdir())), file=sys.stderr)
exit_now(0)  # the connection still open, as clv train leaves its engine's
"""


def test_the_spill_files_go_when_the_clv_process_ends(tmp_path: Path) -> None:
    import subprocess
    import sys

    from tests.conftest import REPO, clean_env

    spill = tmp_path / "spill"
    done = subprocess.run(
        [sys.executable, "-c", SPILLING, str(spill)],
        cwd=REPO,
        env=clean_env() | {"PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert int(done.stderr.strip().splitlines()[-1]) > 1  # it spilled
    assert not spill.exists()


ROWS = [f"c{i % 40},2020-{1 + i % 12:02d}-{1 + i % 28:02d},{(i * 37) % 1000 / 10},Müller {i}" for i in range(400)]


def _encoded_feed(folder: Path, encoding: str, delimiter: str = ",") -> DataConfig:
    path = folder / f"tx.{encoding}.csv"
    text = "\n".join(["kunde,datum,betrag,name", *ROWS]) + "\n"
    path.write_text(text.replace(",", delimiter), encoding=encoding, newline="")
    csv = {"encoding": encoding, "delimiter": delimiter}
    columns = {"customer_id": "kunde", "timestamp": "datum", "amount": "betrag"}
    return DataConfig.model_validate({"source": "csv", "path": path, "csv": csv, "columns": columns})


@pytest.mark.parametrize(("encoding", "delimiter"), [("cp1252", ","), ("latin-1", ";"), ("utf-16", "\t")])
def test_a_csv_in_another_encoding_prepares_as_in_utf8(tmp_path: Path, encoding: str, delimiter: str) -> None:
    """DuckDB reads only UTF-8 here (no encodings extension offline): the file is transcoded to a temporary
    UTF-8 file, which goes with the connection."""
    from pipeline.config import PrepareConfig
    from pipeline.engines.duckdb_prepare import prepare

    config = PrepareConfig(calibration_end=dt.date(2020, 6, 30))
    temp = tmp_path / "temp"
    con = duckdb.connect()
    ours = open_transactions(con, _encoded_feed(tmp_path, encoding, delimiter), temp)
    utf8 = open_transactions(duckdb.connect(), _encoded_feed(tmp_path, "utf-8"))
    assert ours.relation.fetchall() == utf8.relation.fetchall()
    assert ours.relation.fetchall()[0][-1] == "Müller 0"
    prepared = [prepare(tx.relation, config, source=tx.description) for tx in (ours, utf8)]
    pd.testing.assert_frame_equal(prepared[0].calibration, prepared[1].calibration, check_exact=True)
    pd.testing.assert_frame_equal(prepared[0].full, prepared[1].full, check_exact=True)
    assert [p.name for p in temp.iterdir()]  # in the engine's temp_directory
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("clv_csv")]
    del ours, prepared, con
    gc.collect()
    assert list(temp.iterdir()) == []


@pytest.mark.parametrize(
    ("encoding", "written", "line", "reason"),
    [
        ("utf16", "utf-8", 1, "UTF-16 stream does not start with BOM"),
        ("ascii", "utf-8", 2, "ordinal not in range(128)"),
        ("cp1252", "utf-8", 2, "character maps to <undefined>"),  # ü in UTF-8 is 0xC3 0xBC; 0x81 ... is not cp1252
    ],
)
def test_a_wrong_encoding_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], encoding: str, written: str, line: int, reason: str
) -> None:
    from pipeline.cli import main

    data = _encoded_feed(tmp_path, written)
    rows = ROWS if encoding != "cp1252" else [r.replace("Müller", "M\u0081ller") for r in ROWS]
    assert data.path is not None
    data.path.write_text("\n".join(["kunde,datum,betrag,name", *rows]) + "\n", encoding="utf-8")
    config = tmp_path / "config.yaml"
    columns = "columns: {customer_id: kunde, timestamp: datum, amount: betrag}"
    csv = f"csv: {{encoding: {encoding}}}"
    temp = tmp_path / "temp"
    config.write_text(
        f"data: {{source: csv, path: {data.path}, {csv}, {columns}}}\nengine: {{temp_directory: {temp}}}\n"
    )
    assert main(["prepare", "--config", str(config), "--output", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert error == [f"clv: error: {data.path}: not {encoding} text (line {line}: {reason}); set data.csv.encoding"]
    assert not list(temp.glob("clv_csv_*"))  # the partly transcoded file is gone
