"""A corpus of malformed inputs, generated here: each ends with exit 2 and one clear line, or with the
bad rows quarantined and the counts reconciled. None of them registers a model or moves an alias."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from pipeline.cli import main
from tests.conftest import Registry

HEADER = "customer_id,timestamp,amount"


def _valid_rows(customers: int = 300, seed: int = 3) -> list[str]:
    """Two years of purchases by customers who first bought in 2020-Q1 (enough to fit and validate)."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(customers):
        first = np.datetime64("2020-01-01") + rng.integers(0, 90)
        days = np.unique(np.concatenate([[0], rng.integers(0, 545 - 90, rng.poisson(4))]))
        for day in days:
            rows.append(f"c{i:04d},{first + day},{rng.lognormal(3, 0.5):.2f}")
    return rows


ROWS = _valid_rows()


def _csv(*extra: str, rows: list[str] | None = None, header: str = HEADER) -> Callable[[Path], Path]:
    def write(folder: Path) -> Path:
        path = folder / "tx.csv"
        path.write_text("\n".join([header, *(ROWS if rows is None else rows), *extra]) + "\n")
        return path

    return write


def _bytes(content: bytes) -> Callable[[Path], Path]:
    def write(folder: Path) -> Path:
        path = folder / "tx.csv"
        path.write_bytes(content)
        return path

    return write


def _parquet(frame: Callable[[], pd.DataFrame], truncate: bool = False) -> Callable[[Path], Path]:
    def write(folder: Path) -> Path:
        path = folder / "tx.parquet"
        frame().to_parquet(path)
        if truncate:
            data = path.read_bytes()
            path.write_bytes(data[: len(data) // 2])
        return path

    return write


@dataclass(frozen=True)
class Case:
    name: str
    make: Callable[[Path], Path]
    fragments: tuple[str, ...] = ()  # exit 2 with these in the one error line
    quarantined: dict[str, int] = field(default_factory=dict)  # or: prepared with these counts
    prepare: dict[str, object] = field(default_factory=dict)
    raw_config: str | None = None


def _frame() -> pd.DataFrame:
    return pd.DataFrame([r.split(",") for r in ROWS], columns=HEADER.split(","))


CASES = [
    Case("empty file", _bytes(b""), ("tx.csv", "the file is empty")),
    Case("header only", _csv(rows=[]), ("no usable transactions after cleaning (the input is empty)",)),
    Case(
        "wrong delimiter",
        _csv(rows=[r.replace(",", ";") for r in ROWS], header=HEADER.replace(",", ";")),
        ("tx.csv", "missing required column 'customer_id'"),
    ),
    Case(
        "missing column",
        _csv(rows=[r.rsplit(",", 1)[0] for r in ROWS], header="customer_id,timestamp"),
        ("tx.csv", "missing required column 'amount'"),
    ),
    Case(
        "duplicate column names",
        _csv(rows=[r + ",1" for r in ROWS], header=HEADER + ",amount"),
        ("tx.csv", "duplicate column name(s) in the header: amount"),
    ),
    Case(
        "non-UTF-8 bytes",
        _bytes((HEADER + "\n" + "\n".join(ROWS[:5]) + "\n\xe9t\xe9,2020-01-02,5\n").encode("latin-1")),
        ("tx.csv", "not utf-8 text"),
    ),
    Case("empty ids", _csv(",2020-02-01,5.0", ",2020-02-02,6.0"), quarantined={"missing_customer_id": 2}),
    Case("blank ids", _csv("   ,2020-02-01,5.0"), quarantined={"missing_customer_id": 1}),
    Case("mixed id types", _csv("12345,2020-02-01,5.0", "12345,2020-05-01,5.0", "1.5e3,2020-02-01,1.0")),
    Case(
        "unparseable dates", _csv("c0001,31/02/2020,5.0", "c0001,yesterday,5.0"), quarantined={"invalid_timestamp": 2}
    ),
    Case("missing dates", _csv("c0001,,5.0"), quarantined={"missing_timestamp": 1}),
    Case("future dates", _csv("c0001,2031-01-01,5.0"), quarantined={"after_observation_end": 1}),
    Case("out-of-range dates", _csv("c0001,1800-01-01,5.0"), quarantined={"timestamp_out_of_range": 1}),
    Case("mixed time zones", _csv("c0001,2020-06-01T10:00:00+02:00,5.0", "c0001,2020-06-03T23:00:00-07:00,5.0")),
    Case("text amounts", _csv("c0001,2020-02-01,five", "c0001,2020-02-01,$5"), quarantined={"invalid_amount": 2}),
    Case("NaN amount", _csv("c0001,2020-02-01,NaN"), quarantined={"invalid_amount": 1}),
    Case(
        "infinite amount", _csv("c0001,2020-02-01,inf", "c0001,2020-02-01,-Infinity"), quarantined={"invalid_amount": 2}
    ),
    Case("negative amounts are returns", _csv("c0001,2021-06-01,-3.0")),
    Case(
        "zero amounts quarantined",
        _csv("c0001,2020-02-01,0", "c0002,2020-02-01,0.00"),
        quarantined={"zero_amount": 2},
        prepare={"zero_amount": "quarantine"},
    ),
    Case(
        "absurd outliers over max_amount",
        _csv("c0001,2020-03-01,1e12"),
        quarantined={"amount_too_large": 1},
        prepare={"max_amount": 100000},
    ),
    Case("absurd outliers kept by default", _csv("c0001,2020-03-01,1e12")),
    Case(
        "single customer",
        _csv(rows=["a,2020-01-01,5", "a,2020-02-01,5", "a,2021-03-01,5"]),
        ("too few customers to fit (1 customers",),
    ),
    Case(
        "every customer a one-time buyer",
        _csv(rows=[f"c{i},2020-01-{1 + i % 28:02d},5" for i in range(50)] + [f"n{i},2021-02-01,5" for i in range(5)]),
        ("no customer has a repeat purchase",),
    ),
    Case(
        "all purchases on one day",
        _csv(rows=[f"c{i},2020-03-01,5" for i in range(50)]),
        ("calibration_end 2020-12-31 is outside the data (2020-03-01 to 2020-03-01)",),
    ),
    Case(
        "holdout without purchases",
        _csv(rows=[r for r in ROWS if r.split(",")[1] <= "2020-12-31"]),
        ("calibration_end 2020-12-31 is outside the data",),
    ),
    Case(
        "calibration end after the data",
        _csv(),
        ("calibration_end 2022-01-01 is outside the data",),
        prepare={"calibration_end": "2022-01-01", "observation_end": None},
    ),
    Case(
        "parquet with wrong types",
        _parquet(lambda: _frame().assign(timestamp=np.arange(len(ROWS)))),
        ("no usable transactions after cleaning", "invalid_timestamp"),
    ),
    Case("truncated parquet", _parquet(_frame, truncate=True), ("tx.parquet", "cannot read parquet")),
    Case(
        "config with an unknown key",
        _csv(),
        ("c.yaml: prepare.calibraton_end: unknown key",),
        raw_config="prepare: {calibraton_end: 2020-12-31}\n",
    ),
    Case(
        "config with a wrong type",
        _csv(),
        ("c.yaml: score.churn_horizon_days:",),
        raw_config="score: {churn_horizon_days: ninety}\n",
    ),
]


def _config(case: Case, data: Path, folder: Path) -> Path:
    path = folder / "c.yaml"
    if case.raw_config is not None:
        path.write_text(case.raw_config)
        return path
    prepare = {"calibration_end": "2020-12-31", "observation_end": "2021-06-30"} | case.prepare
    source = "parquet" if data.suffix == ".parquet" else "csv"
    path.write_text(json.dumps({"data": {"source": source, "path": str(data)}, "prepare": prepare}))
    return path


def test_corpus_is_large_enough() -> None:
    assert len(CASES) >= 25


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_malformed_input(
    case: Case, registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    for key, value in registry.env().items():
        if key.startswith("MLFLOW_"):
            monkeypatch.setenv(key, value)
    config = _config(case, case.make(tmp_path), tmp_path)
    if case.fragments:
        assert main(["train", "--config", str(config)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        errors = [line for line in err if line.startswith("clv: error:")]
        assert len(errors) == 1, err
        for fragment in case.fragments:
            assert fragment in errors[0]
    else:
        assert main(["prepare", "--config", str(config), "--output", "out"]) == 0
        ledger = json.loads((tmp_path / "out" / "ledger.json").read_text())
        assert ledger["reconciled"] is True
        assert ledger["quarantined"] == case.quarantined
        assert ledger["rows_in"] == ledger["rows_used"] + ledger["rows_quarantined"]
        quarantine = pd.read_parquet(tmp_path / "out" / "quarantine.parquet")
        assert sorted(quarantine["reason"].unique()) == sorted(case.quarantined)
        customers = pd.read_parquet(tmp_path / "out" / "customers.parquet")
        assert np.isfinite(customers[["frequency", "recency", "T", "monetary_value"]].to_numpy()).all()
    client = MlflowClient(tracking_uri=registry.uri, registry_uri=registry.uri)
    assert [int(v.version) for v in client.search_model_versions("name='clv'")] == [1]
    assert int(client.get_model_version_by_alias("clv", "champion").version) == 1
