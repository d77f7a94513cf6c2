from __future__ import annotations

import datetime as dt

import duckdb
import pandas as pd
import pytest

from pipeline.config import PrepareConfig
from pipeline.engines import duckdb_prepare
from pipeline.engines.duckdb_classify import classified_sql, ids_are_plain
from pipeline.engines.duckdb_prepare import prepare
from pipeline.engines.source_columns import layout as source_layout

CONFIG = PrepareConfig(calibration_end=dt.date(2020, 1, 31), observation_end=dt.date(2020, 3, 31))


def _ids(ids: list[object]) -> duckdb.DuckDBPyRelation:
    return duckdb.connect().from_df(pd.DataFrame({"customer_id": ids}))


@pytest.mark.parametrize(
    ("ids", "plain"),
    [
        (["a", "C536379", "17850", "", None], True),
        (["a", "17850.0"], False),  # a whole float loses its ".0"
        (["a", "C 536379", "a.b"], False),  # a dot, even where the rule keeps it
        (["a", " a"], False),
        (["a", "a "], False),
        ([None, None], True),
    ],
)
def test_ids_are_plain_where_every_id_is_its_own_text(ids: list[object], plain: bool) -> None:
    assert ids_are_plain(_ids(ids), "VARCHAR") is plain


def test_integer_ids_are_plain_without_a_scan() -> None:
    relation = duckdb.connect().sql("SELECT CAST(error('scanned') AS BIGINT) AS customer_id")  # fails if scanned
    with pytest.raises(duckdb.Error, match="scanned"):
        ids_are_plain(relation, "VARCHAR")
    assert ids_are_plain(relation, "BIGINT") is True
    assert ids_are_plain(_ids([1.0, 2.5]), "DOUBLE") is False


def _buckets(relation: duckdb.DuckDBPyRelation, plain_ids: bool, n: int) -> list[list[tuple[object, ...]]]:
    columns = {name: str(dtype) for name, dtype in zip(relation.columns, relation.types, strict=True)}
    layout = source_layout(list(columns), None, CONFIG, "test")
    out = []
    for k in range(n):
        query = classified_sql(columns, layout, CONFIG, "%Y-%m-%d", (k, n), plain_ids)
        result = relation.query("tx", f"SELECT cid, ts, raw_value, reason FROM ({query}) ORDER BY ALL")
        assert result is not None
        out.append(result.fetchall())
    return out


def test_plain_ids_fall_in_the_same_buckets_by_their_text() -> None:
    ids = [f"c{i:05d}" for i in range(400)] + ["", None]
    frame = pd.DataFrame({"customer_id": ids, "timestamp": "2020-01-05", "amount": "1"})
    relation = duckdb.connect().from_df(frame)
    by_rule, by_text = _buckets(relation, False, 7), _buckets(relation, True, 7)
    assert by_text == by_rule
    assert sum(len(rows) for rows in by_text) == len(ids)
    assert min(len(rows) for rows in by_text) > 30  # the ids do spread over the buckets
    # the text key is used, and only holds for plain ids: "17" and "17.0" are one customer, which the rule keeps
    # in one bucket and the text alone would split
    messy = pd.DataFrame({"customer_id": [f"{i}{e}" for i in range(50) for e in ("", ".0")], "timestamp": "2020-01-05"})
    messy = duckdb.connect().from_df(messy.assign(amount="1"))
    assert _buckets(messy, True, 7) != _buckets(messy, False, 7)


@pytest.mark.parametrize("dtype", ["int64", "str"])
def test_prepare_in_buckets_equals_one_pass_on_plain_ids(dtype: str, monkeypatch: pytest.MonkeyPatch) -> None:
    days = ["2020-01-05", "2020-01-20", "2020-02-10", "2020-03-02"]
    rows = [(i, day, str(1 + i % 7)) for i in range(300) for day in days[: 1 + i % 4]]
    frame = pd.DataFrame(rows, columns=["customer_id", "timestamp", "amount"]).astype({"customer_id": dtype})
    one_pass = prepare(duckdb.connect().from_df(frame), CONFIG, "%Y-%m-%d")
    monkeypatch.setattr(duckdb_prepare, "ROWS_PER_PASS", len(rows) // 5)
    seen: list[bool] = []
    monkeypatch.setattr(duckdb_prepare, "ids_are_plain", lambda *a: seen.append(ids_are_plain(*a)) or seen[-1])
    buckets = prepare(duckdb.connect().from_df(frame), CONFIG, "%Y-%m-%d")
    assert seen == [True]  # the passes took the text key
    pd.testing.assert_frame_equal(one_pass.calibration, buckets.calibration, check_exact=True)
    pd.testing.assert_frame_equal(one_pass.full, buckets.full, check_exact=True)
    pd.testing.assert_frame_equal(one_pass.weekly, buckets.weekly, check_exact=True)
    assert one_pass.ledger == buckets.ledger
    assert len(one_pass.full) == 300
