"""The contractual job names the feed's columns as the source does, as the non-contractual job:
``prepare.duplicate_key`` names source columns (a name the source does not have: exit 2)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from pipeline.config import Config, parse_config
from pipeline.contractual.prepare import Subscribers
from pipeline.contractual.subscriptions import prepare_contract_feed
from pipeline.engines.duckdb_engine import DuckDBEngine
from pipeline.errors import InputError

COLUMNS = {"customer_id": "Customer ID", "timestamp": "Created (UTC)", "amount": "Amount"}
HEADER = ["Customer ID", "Created (UTC)", "Amount", "Status"]
ROWS = [
    ("a", "2024-01-15", "10", "active"),
    ("a", "2024-02-15", "10", "active"),
    ("a", "2024-02-15", "12", "retried"),  # the February charge again: repeats on Customer ID and Created (UTC)
    ("a", "2024-03-15", "10", "active"),
    ("b", "2024-01-31", "20", "active"),
    ("b", "2024-02-29", "20", "active"),
    ("", "2024-01-15", "10", "active"),  # missing_customer_id
    ("c", "garbage", "30", "active"),  # invalid_timestamp
    ("c", "2024-02-10", "abc", "active"),  # invalid_amount
    ("d", "2024-07-05", "10", "active"),  # after_observation_end
]


def _config(path: Path, prepare: dict[str, object] | None = None) -> Config:
    return parse_config(
        {
            "data": {"source": "csv", "path": str(path), "columns": COLUMNS},
            "prepare": {"calibration_end": "2024-01-31", "observation_end": "2024-06-30", **(prepare or {})},
            "business": {"type": "contractual", "billing_period": "month", "grace_days": 7},
        }
    )


def _write(path: Path, rows: Sequence[tuple[str, ...]] = ROWS, header: list[str] = HEADER) -> Path:
    pd.DataFrame(rows, columns=header).to_csv(path, index=False)
    return path


def _prepared(config: Config) -> Subscribers:
    """The contractual prepare of the configured feed, opened as the job opens it (its column names with it)."""
    engine = DuckDBEngine(config.engine)
    try:
        source = engine.open(config.data)
        assert isinstance(source.handle, duckdb.DuckDBPyRelation)
        return prepare_contract_feed(
            engine.connection,
            source.handle,
            config,
            source=source.description,
            column_names=source.column_names,
        )
    finally:
        engine.close()


def _rows(frame: pd.DataFrame) -> list[tuple[object, ...]]:
    return [tuple(None if pd.isna(v) else v for v in row) for row in frame.itertuples(index=False)]


def test_duplicate_key_names_source_columns(tmp_path: Path) -> None:
    """The February charge repeated on the two source columns named is a duplicate: the row first in the order
    of the other columns (Amount, then Status, as text) is kept, the other quarantined, under its source names."""
    config = _config(_write(tmp_path / "billing.csv"), {"duplicate_key": ["Customer ID", "Created (UTC)"]})
    prepared = _prepared(config)
    ledger = prepared.ledger
    assert (ledger.rows_in, ledger.rows_used, ledger.rows_quarantined, ledger.charges) == (10, 5, 5, 5)
    assert ledger.reasons == {
        "after_observation_end": 1,
        "duplicate": 1,
        "invalid_amount": 1,
        "invalid_timestamp": 1,
        "missing_customer_id": 1,
    }
    duplicate = prepared.quarantine[prepared.quarantine["reason"] == "duplicate"]
    assert _rows(duplicate) == [("a", "2024-02-15", "12", "retried", "duplicate")]
    full = prepared.full.set_index("customer_id")
    assert full.loc["a", ["renewals", "price", "revenue"]].tolist() == [2, 10.0, 30.0]


@pytest.mark.parametrize(
    ("key", "missing"),
    [
        (["Customer ID", "Created"], "Created"),
        (["customer_id", "timestamp"], "customer_id, timestamp"),  # role names are not the source's names
    ],
)
def test_a_duplicate_key_the_source_does_not_have_stops_prepare(tmp_path: Path, key: list[str], missing: str) -> None:
    config = _config(_write(tmp_path / "billing.csv"), {"duplicate_key": key})
    with pytest.raises(InputError) as error:
        _prepared(config)
    assert str(error.value) == (
        f"{tmp_path / 'billing.csv'}: prepare.duplicate_key names column(s) the input does not have: {missing}; "
        "found: Customer ID, Created (UTC), Amount, Status"
    )


def test_a_subscriptions_tables_duplicate_key_names_source_columns(tmp_path: Path) -> None:
    """A subscriptions table, its start mapped from ``Started`` and its end ``Ended``: the second subscription of
    a starting the same day is a duplicate on the key (not an overlapping subscription), under the source's names."""
    rows = [
        ("a", "2024-01-10", "10", "", "basic"),
        ("a", "2024-01-10", "30", "", "pro"),  # repeats on Customer ID and Started
        ("b", "2024-02-01", "10", "2024-04-01", "basic"),
    ]
    path = _write(tmp_path / "subs.csv", rows, ["Customer ID", "Started", "Amount", "Ended", "Plan"])
    config = parse_config(
        {
            "data": {"source": "csv", "path": str(path), "columns": COLUMNS | {"timestamp": "Started"}},
            "prepare": {
                "calibration_end": "2024-01-31",
                "observation_end": "2024-06-30",
                "duplicate_key": ["Customer ID", "Started"],
            },
            "business": {"type": "contractual", "input": "subscriptions", "end_column": "Ended"},
        }
    )
    prepared = _prepared(config)
    ledger = prepared.ledger
    assert (ledger.rows_in, ledger.rows_used, ledger.rows_quarantined) == (3, 2, 1)
    assert _rows(prepared.quarantine) == [("a", "2024-01-10", "30", None, "pro", "duplicate")]
    assert prepared.full.set_index("customer_id")["revenue"].to_dict() == {"a": 60.0, "b": 20.0}


def _clv_train(folder: Path, monkeypatch: pytest.MonkeyPatch, job: str) -> int:
    from pipeline.cli import main

    monkeypatch.chdir(folder)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{folder / 'mlflow.db'}")
    (folder / "job.yaml").write_text(job, encoding="utf-8")
    return main(["train", "--config", "job.yaml", "--summary", "summary.json", "--output", "out"])


def _job(path: str, key: str) -> str:
    return (
        f"data: {{source: csv, path: {path}, columns: {json.dumps(COLUMNS)}}}\n"
        f"prepare: {{calibration_end: 2023-12-31, duplicate_key: {key}}}\n"
        "business: {type: contractual}\n"
        "tracking: {model_name: subscriptions}\n"
    )


@pytest.mark.parametrize(
    ("key", "missing"),
    [('["Customer ID", Created]', "Created"), ("[customer_id, timestamp]", "customer_id, timestamp")],
)
def test_clv_train_with_a_duplicate_key_the_source_does_not_have_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], key: str, missing: str
) -> None:
    _write(tmp_path / "f.csv")
    assert _clv_train(tmp_path, monkeypatch, _job("f.csv", key)) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"clv: error: f.csv: prepare.duplicate_key names column(s) the input does not have: {missing}; "
        "found: Customer ID, Created (UTC), Amount, Status"
    ]
