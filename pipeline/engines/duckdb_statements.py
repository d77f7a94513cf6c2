"""Where prepare's statements run on DuckDB, and the working tables they make.

Prepare runs two kinds of statements in the input's connection: those that read the input, through its relation
(``relation.query("tx", ...)``, the input named ``tx`` for the call), and those on its working tables only. DuckDB's
Python relation binds itself again at a statement when the catalog changed since its last one, and prepare
creates and drops tables between its statements: each statement through the input's relation bound the input
again, which for a CSV source is DuckDB sniffing every file once more (about 11 ms a file a statement). The
20,666 invoice lines of the test feed took 2.1 s to prepare from one CSV file and 6.5 s from its 13 monthly
files. The statements on the working tables go through a relation that does not read the input (one row held in
memory): 0.70-0.76 s and 1.1-1.8 s (a machine loaded by other work).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import duckdb

from pipeline.engines.sql import DUCKDB

__all__ = ["Statements", "WorkingTables"]

_WORKING = "clv_prepare_working"


def _query(relation: duckdb.DuckDBPyRelation, name: str, sql: str) -> duckdb.DuckDBPyRelation:
    """Run ``sql`` with ``relation`` visible as table ``name`` (lazily, in the relation's connection)."""
    result = relation.query(name, sql)
    assert result is not None  # a SELECT always yields a relation
    return result


class Statements:
    """Prepare's statements in the connection of its input, ``transactions``."""

    def __init__(self, transactions: duckdb.DuckDBPyRelation) -> None:
        self.transactions = transactions
        self.working = _query(transactions, "tx", f"SELECT 1 AS {_WORKING}").materialize()
        """A relation of the input's connection that does not read the input."""

    def on_input(self, sql: str) -> duckdb.DuckDBPyRelation:
        """``sql``, which reads the input as ``tx``."""
        return _query(self.transactions, "tx", sql)

    def on_tables(self, sql: str) -> duckdb.DuckDBPyRelation:
        """``sql``, which reads only the working tables (not ``tx``)."""
        return _query(self.working, _WORKING, sql)


@dataclass(frozen=True)
class WorkingTables:
    """Names of the working tables prepare creates (and drops) in the input's connection."""

    daily: str
    periods: str
    customers: str
    weekly: str

    @staticmethod
    def new() -> WorkingTables:
        stem = f"clv_prepare_{uuid.uuid4().hex}"
        return WorkingTables(f"{stem}_daily", f"{stem}_periods", f"{stem}_customers", f"{stem}_weekly")

    def drop(self, statements: Statements, *names: str) -> None:
        """Drop the named tables (all of them by default); ``daily`` stands for its view and bucket tables."""
        names = names or (self.daily, self.periods, self.customers, self.weekly)
        if self.daily in names:
            statements.on_tables(f"DROP VIEW IF EXISTS {self.daily}")
            prefix = DUCKDB.string(f"{self.daily}_")
            sql = f"SELECT table_name FROM duckdb_tables() WHERE starts_with(table_name, {prefix})"
            buckets = statements.on_tables(sql).fetchall()
            names = tuple(n for n in names if n != self.daily) + tuple(name for (name,) in buckets)
        for name in names:
            statements.on_tables(f"DROP TABLE IF EXISTS {name}")
