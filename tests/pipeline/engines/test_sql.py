from __future__ import annotations

import duckdb
import pytest

from pipeline.engines.sql import duckdb_id

# (as written in the source, as compared): only whole floats lose their ".0..."; nothing else changes.
IDS = [
    ("17850.0", "17850"),
    ("17850", "17850"),
    (" 17850.0 ", "17850"),
    ("17850.000", "17850"),
    ("+17850.0", "+17850"),
    ("-3.0", "-3"),
    ("017850.0", "017850"),
    ("0.0", "0"),
    ("17850.5", "17850.5"),
    ("17850.01", "17850.01"),
    ("1.5e3", "1.5e3"),
    ("1.0e3", "1.0e3"),
    ("17850.", "17850."),
    (".0", ".0"),
    ("a.0", "a.0"),
    ("17850.0\n", "17850.0\n"),  # not a whole float: a line break is part of the id
    ("17850.0 x", "17850.0 x"),
    ("\u00a017850.0", "\u00a017850.0"),
    ("C536379", "C536379"),
    ("17850 ", "17850"),  # a space at one end only: not the plain path
    (" C536379", "C536379"),
    ("C 536379", "C 536379"),
    (".", "."),
    ("12.00 ", "12"),
    ("", None),
    ("   ", None),
    (None, None),
]


@pytest.mark.parametrize(("raw", "expected"), IDS)
def test_float_looking_ids_lose_their_zero_fraction(raw: str | None, expected: str | None) -> None:
    con = duckdb.connect()
    assert con.execute(f"SELECT {duckdb_id('x')} FROM (SELECT ?::VARCHAR AS x)", [raw]).fetchall() == [(expected,)]


def test_numeric_columns_give_the_same_ids() -> None:
    con = duckdb.connect()
    rows = con.execute(f"SELECT {duckdb_id('x')} FROM (SELECT unnest([17850.0, 12346.0, 2.5]) AS x)").fetchall()
    assert rows == [("17850",), ("12346",), ("2.5",)]
    assert con.execute(f"SELECT {duckdb_id('x')} FROM (SELECT 17850::BIGINT AS x)").fetchall() == [("17850",)]
