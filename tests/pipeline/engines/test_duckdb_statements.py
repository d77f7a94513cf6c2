"""Prepare's statements: those on the working tables never read the input again."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from pipeline.engines.duckdb_statements import Statements, WorkingTables


def test_statements_on_the_tables_do_not_read_the_input(tmp_path: Path) -> None:
    """Once the input is gone, a statement through its relation fails (it binds the input again: for a CSV, DuckDB
    sniffs the file once more), while the statements on the working tables still run."""
    path = tmp_path / "feed.csv"
    path.write_text("customer_id,amount\na,1.5\nb,2\na,3\n")
    con = duckdb.connect()
    statements = Statements(con.read_csv(str(path), all_varchar=True))
    statements.on_input("SELECT customer_id, sum(CAST(amount AS DOUBLE)) AS spend FROM tx GROUP BY ALL").create("t")
    path.unlink()
    with pytest.raises(duckdb.IOException):
        statements.on_input("SELECT count(*) FROM tx").fetchall()
    assert statements.on_tables("SELECT customer_id, spend FROM t ORDER BY customer_id").fetchall() == [
        ("a", 4.5),
        ("b", 2.0),
    ]
    statements.on_tables("CREATE TABLE u AS SELECT 1 AS one")
    assert statements.on_tables("SELECT count(*) FROM u").fetchall() == [(1,)]


def test_working_tables_drop_their_buckets_and_view() -> None:
    con = duckdb.connect()
    statements = Statements(con.sql("SELECT 1 AS customer_id"))
    tables = WorkingTables.new()
    for bucket in range(3):
        statements.on_tables(f"CREATE TABLE {tables.daily}_{bucket} AS SELECT {bucket} AS b")
    statements.on_tables(f"CREATE TABLE {tables.weekly} AS SELECT 1 AS w")
    every = " UNION ALL ".join(f"SELECT * FROM {tables.daily}_{b}" for b in range(3))
    statements.on_tables(f"CREATE VIEW {tables.daily} AS {every}")
    statements.on_tables("CREATE TABLE kept AS SELECT 1 AS k")
    tables.drop(statements)
    left = con.sql(
        "SELECT table_name FROM duckdb_tables() UNION ALL SELECT view_name FROM duckdb_views() WHERE NOT internal"
    )
    assert sorted(name for (name,) in left.fetchall()) == ["kept"]
