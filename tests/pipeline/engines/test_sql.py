from __future__ import annotations

import duckdb
import pytest

from pipeline.engines.sql import DUCKDB, duckdb_id, plain_id_sql, plain_id_test

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


@pytest.mark.parametrize(("raw", "expected"), IDS)
def test_where_an_id_is_plain_its_text_is_its_id(raw: str | None, expected: str | None) -> None:
    """The plain test holds only where the id rule leaves the text as it is (NULL for an empty one); prepare
    compares the text alone into customer buckets when it holds for every id."""
    con = duckdb.connect()
    test, plain = plain_id_test(DUCKDB, "x"), plain_id_sql(DUCKDB, "x")
    query = f"SELECT {test}, {plain}, {duckdb_id('x')} FROM (SELECT ?::VARCHAR AS x)"
    ((holds, text, rule),) = con.execute(query, [raw]).fetchall()
    assert rule == expected
    assert holds is (None if raw is None else ("." not in raw and raw.strip(" ") == raw))
    if holds or raw is None:
        assert text == rule
