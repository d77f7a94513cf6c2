"""The contractual job names the feed's columns as the source does, as the non-contractual job: its quarantine
carries every source column under its source name (not ``timestamp`` or a private ``source:`` alias), then
``reason``, and ``prepare.duplicate_key`` names source columns (a name the source does not have: exit 2)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import pytest

from pipeline.commands.business_feed import opened_feed
from pipeline.config import Config, parse_config
from pipeline.contractual.prepare import Subscribers
from pipeline.contractual.subscriptions import prepare_contract_feed
from pipeline.engines import open_engine
from pipeline.errors import InputError
from tests.subscription_feed import subscription_feed

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
QUARANTINED = [
    ("d", "2024-07-05", "10", "active", "after_observation_end"),
    ("c", "2024-02-10", "abc", "active", "invalid_amount"),
    ("c", "garbage", "30", "active", "invalid_timestamp"),
    (None, "2024-01-15", "10", "active", "missing_customer_id"),
]
"""The bad rows of :data:`ROWS` as the quarantine holds them: sorted by reason, the empty id read as NULL."""


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
    assert config.data.path is not None
    with opened_feed(config, config.data.path) as (engine, source, relation):
        return prepare_contract_feed(
            engine.connection, relation, config, source=source.description, column_names=source.column_names
        )


def _rows(frame: pd.DataFrame) -> list[tuple[object, ...]]:
    return [tuple(None if pd.isna(v) else v for v in row) for row in frame.itertuples(index=False)]


def _non_contractual_quarantine(config: Config, path: Path) -> pd.DataFrame:
    """The quarantine file the non-contractual job writes for the same feed and prepare settings."""
    engine = open_engine(config.engine)
    try:
        prepared = engine.prepare(engine.open(config.data), config.prepare)
        return pd.read_parquet(engine.write_quarantine(prepared, path))
    finally:
        engine.close()


def test_the_quarantine_carries_the_sources_column_names(tmp_path: Path) -> None:
    """Mapped, renamed columns and an unmapped one: the quarantine's columns are the source's, in its order (it
    had customer_id, timestamp, amount, source:Status), and the rows are those of the non-contractual job's file."""
    config = _config(_write(tmp_path / "billing.csv"))
    prepared = _prepared(config)
    ledger = prepared.ledger
    assert (ledger.rows_in, ledger.rows_used, ledger.rows_quarantined) == (10, 6, 4)
    assert list(prepared.quarantine.columns) == [*HEADER, "reason"]
    assert _rows(prepared.quarantine) == QUARANTINED
    expected = _non_contractual_quarantine(config, tmp_path / "non_contractual.parquet")
    assert list(expected.columns) == [*HEADER, "reason"]
    assert _rows(expected) == QUARANTINED
    assert prepared.full.set_index("customer_id")["revenue"].to_dict() == {"a": 42.0, "b": 40.0}


def test_a_source_column_named_reason_is_written_as_source_reason(tmp_path: Path) -> None:
    """As in the non-contractual file: a source column called ``Reason`` would be the reason column's name."""
    rows = [("a", "2024-01-15", "10", "new"), ("a", "2024-02-15", "10", "renewal"), ("", "2024-02-01", "10", "new")]
    path = _write(tmp_path / "billing.csv", rows, ["Customer ID", "Created (UTC)", "Amount", "Reason"])
    prepared = _prepared(_config(path))
    assert list(prepared.quarantine.columns) == ["Customer ID", "Created (UTC)", "Amount", "source_Reason", "reason"]
    assert _rows(prepared.quarantine) == [(None, "2024-02-01", "10", "new", "missing_customer_id")]


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
    assert _rows(prepared.quarantine) == [
        QUARANTINED[0],
        ("a", "2024-02-15", "12", "retried", "duplicate"),
        *QUARANTINED[1:],
    ]
    full = prepared.full.set_index("customer_id")
    row = full.loc["a", ["renewals", "price", "revenue"]]
    assert isinstance(row, pd.Series)  # one customer's row
    assert row.tolist() == [2, 10.0, 30.0]


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
    assert list(prepared.quarantine.columns) == ["Customer ID", "Started", "Amount", "Ended", "Plan", "reason"]
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


@pytest.mark.slow
def test_clv_train_logs_the_quarantine_under_the_sources_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The generated subscription feed with renamed columns (its plan as ``Status``) and ``duplicate_key`` on two of
    them: the run's tables/quarantine.parquet is the non-contractual job's file of the same feed, the copy of the
    first charge a duplicate on the key."""
    from mlflow.tracking import MlflowClient

    feed = subscription_feed()  # customer_id, charge_date, amount, plan
    feed.columns = pd.Index(HEADER)
    feed.to_csv(tmp_path / "billing.csv", index=False)
    assert _clv_train(tmp_path, monkeypatch, _job("billing.csv", '["Customer ID", "Created (UTC)"]')) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert (summary["data"]["rows_quarantined"], summary["data"]["observation_end"]) == (4, "2024-06-28")
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("clv")
    assert experiment is not None
    (run,) = client.search_runs([experiment.experiment_id])
    logged = pd.read_parquet(client.download_artifacts(run.info.run_id, "tables/quarantine.parquet", str(tmp_path)))
    assert list(logged.columns) == [*HEADER, "reason"]
    assert _rows(logged) == [
        ("c00-0001", "2031-01-01", "10.0", "basic", "after_observation_end"),
        ("c00-0000", "2022-01-27", "10.0", "basic", "duplicate"),
        ("c00-0000", "not a date", "10.0", "basic", "invalid_timestamp"),
        (None, "2023-01-05", "10.0", "basic", "missing_customer_id"),
    ]
    config = parse_config(
        {
            "data": {"source": "csv", "path": str(tmp_path / "billing.csv"), "columns": COLUMNS},
            "prepare": {
                "calibration_end": "2023-12-31",
                "observation_end": summary["data"]["observation_end"],
                "duplicate_key": ["Customer ID", "Created (UTC)"],
            },
        }
    )
    expected = _non_contractual_quarantine(config, tmp_path / "non_contractual.parquet")
    pd.testing.assert_frame_equal(logged, expected)
    # The registered model scores the same feed as of the same date: its duplicate_key names source columns at
    # scoring too (it stopped with exit 2 before), and the quarantine file beside the scores is the training run's.
    from pipeline.cli import main

    uri = "models:/subscriptions@champion"
    assert (
        main(["score", "--model-uri", uri, "--input", "billing.csv", "--as-of", "2024-06-28", "--output", "s.parquet"])
        == 0
    )
    written = pd.read_parquet(tmp_path / "s.quarantine.parquet")
    pd.testing.assert_frame_equal(written, logged)
