"""The `clv` console script as a user runs it: exit codes and one-line errors (real processes)."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import Registry, clean_env, clv_command
from tests.feeds import bgnbd_purchases

CLV = clv_command()


def _clv(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = clean_env()
    return subprocess.run(
        [str(CLV), *args], cwd=cwd, env=base | (env or {}), capture_output=True, text=True, timeout=300
    )


def _assert_one_line_error(done: subprocess.CompletedProcess[str], code: int, *fragments: str) -> None:
    assert done.returncode == code, done.stderr
    lines = done.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("clv: error:")]
    assert len(errors) == 1, done.stderr
    assert "Traceback" not in done.stderr
    for fragment in fragments:
        assert fragment in errors[0]


def test_unknown_config_key(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("prepare:\n  calibration_ends: 1997-09-30\n")
    done = _clv("train", "--config", str(config), cwd=tmp_path)
    _assert_one_line_error(done, 2, "c.yaml", "prepare.calibration_ends", "unknown key")
    assert not (tmp_path / "mlflow.db").exists()


def test_missing_config_file(tmp_path: Path) -> None:
    _assert_one_line_error(_clv("train", "--config", "nope.yaml", cwd=tmp_path), 2, "nope.yaml", "not found")


def test_missing_input_column(tmp_path: Path) -> None:
    (tmp_path / "tx.csv").write_text("customer_id,day,amount\na,2020-01-01,3\n")
    config = tmp_path / "c.yaml"
    config.write_text("data: {source: csv, path: tx.csv}\nprepare: {calibration_end: 2020-01-01}\n")
    done = _clv("train", "--config", str(config), cwd=tmp_path)
    _assert_one_line_error(done, 2, "tx.csv", "missing required column 'timestamp'")


def test_no_repeat_customer(tmp_path: Path) -> None:
    (tmp_path / "tx.csv").write_text("customer_id,timestamp,amount\na,2020-01-01,3\nb,2020-01-05,4\nc,2020-02-05,4\n")
    config = tmp_path / "c.yaml"
    config.write_text(
        "data: {source: csv, path: tx.csv}\nprepare: {calibration_end: 2020-01-31, observation_end: 2020-02-28}\n"
    )
    done = _clv("train", "--config", str(config), cwd=tmp_path)
    _assert_one_line_error(done, 2, "no customer has a repeat purchase")


def _no_positive_repeat_spend(path: Path, refunded: bool) -> None:
    """BG/NBD customers whose first order costs 25 and every later one is free (0), or is refunded by an
    equal negative row: no repeat buyer has a positive net spend."""
    days = bgnbd_purchases(1500, dt.date(2021, 1, 1), 540, seed=5, birth_days=180)
    first = ~days["customer"].duplicated()
    days["amount"] = np.where(first, 25.0, 30.0 if refunded else 0.0)
    refunds = days[~first].assign(amount=-30.0) if refunded else days.iloc[:0]
    rows = pd.concat([days, refunds]).sort_values(["customer", "day"], kind="stable")
    rows.assign(day=rows["day"].dt.strftime("%Y-%m-%d")).to_csv(path, index=False)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("refunded", "gate", "code"),
    [
        # The default gate is on revenue: a model of 0 ties the baselines of 0, so it cannot beat them.
        (False, "", 1),
        (True, "validate: {baseline_metric: purchases_mae, criteria: []}\n", 0),
    ],
    ids=["free-default-gate", "refunded-purchases-gate"],
)
def test_no_positive_repeat_spend_trains_on_the_pooled_mean_fallback(
    tmp_path: Path, refunded: bool, gate: str, code: int
) -> None:
    """Every repeat order free or refunded: the spend model falls back to a pooled mean of 0 with its reason, the
    run finishes, and the exit code is the gate's (this ended in a math domain error, exit 1, a FAILED run)."""
    _no_positive_repeat_spend(tmp_path / "tx.csv", refunded)
    config = tmp_path / "c.yaml"
    config.write_text(
        "data: {source: csv, path: tx.csv, columns: {customer_id: customer, timestamp: day}}\n"
        f"prepare: {{calibration_end: 2021-12-31}}\n{gate}"
    )
    done = _clv("train", "--config", str(config), "--summary", "s.json", cwd=tmp_path)
    assert done.returncode == code, done.stderr
    assert "Traceback" not in done.stderr
    reason = "no repeat customer has a positive net spend: every repeat order is free or refunded"
    assert f"  spend       pooled mean 0 for everyone ({reason})\n" in done.stdout
    summary = json.loads((tmp_path / "s.json").read_text())
    assert (summary["spend_model"], summary["spend_fallback"]) == ("pooled_mean", reason)
    assert summary["promoted"] is (code == 0)
    attempts = [(a["remedy"], a["outcome"], a["message"], a["log_likelihood"]) for a in summary["spend_fit_attempts"]]
    assert attempts == [("pooled_mean", "fallback", reason, None)]
    if code == 1:
        failed = [c["name"] for c in summary["checks"] if not c["passed"]]
        assert "beats_historical_baseline" in failed
    from tests.store_checks import run_statuses  # imports MLflow: only here

    assert [status for _, status in run_statuses(str(tmp_path / "mlflow.db"))] == ["FINISHED"]


def test_unreachable_tracking_store_exits_3(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    done = _clv("train", cwd=tmp_path, env={"MLFLOW_TRACKING_URI": f"sqlite:///{blocker}/mlflow.db"})
    _assert_one_line_error(done, 3, "MLflow tracking store", "cannot open the experiment")


@pytest.mark.parametrize("args", [["--help"], ["train", "--help"]])
def test_help(tmp_path: Path, args: list[str]) -> None:
    done = _clv(*args, cwd=tmp_path)
    assert done.returncode == 0
    assert "usage: clv" in done.stdout


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ["trian"],
            "clv: error: argument command: invalid choice: 'trian' (choose from 'train', 'prepare', 'score', "
            "'whatif', 'monitor', 'promote', 'compare', 'models') (see clv -h)",
        ),
        (
            ["monitor", "--as-of", "30.06.2024"],
            "clv monitor: error: argument --as-of: not a date (YYYY-MM-DD): '30.06.2024' (see clv monitor -h)",
        ),
        (["train", "--confg", "c.yaml"], "clv train: error: unrecognized arguments: --confg c.yaml (see clv train -h)"),
    ],
)
def test_a_usage_mistake_is_one_line_and_exit_2(args: list[str], line: str, capsys: pytest.CaptureFixture[str]) -> None:
    """argparse printed its usage block and the error (3 lines); the usage is one ``-h`` away."""
    from pipeline.cli import main

    with pytest.raises(SystemExit) as done:
        main(args)
    assert done.value.code == 2
    assert capsys.readouterr().err == f"{line}\n"


def test_prepare_alone_writes_tables(tmp_path: Path) -> None:
    done = _clv("prepare", "--output", "prep", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "69,659 rows in, 69,659 used, 0 quarantined" in done.stdout
    import json

    import pandas as pd

    ledger = json.loads((tmp_path / "prep" / "ledger.json").read_text())
    assert ledger["reconciled"] is True
    assert len(pd.read_parquet(tmp_path / "prep" / "calibration.parquet")) == 23_570
    assert len(pd.read_parquet(tmp_path / "prep" / "quarantine.parquet")) == 0
    assert not (tmp_path / "mlflow.db").exists()


@pytest.mark.slow
def test_score_from_the_registry_matches_training(registry: Registry, tmp_path: Path) -> None:
    """Batch scoring of raw transactions reproduces the scores the training job wrote."""
    import pandas as pd

    done = _clv(
        "score",
        "--model-uri",
        "models:/clv@champion",
        "--input",
        str(registry.transactions),
        "--as-of",
        "1998-06-30",
        "--output",
        str(tmp_path / "scores.parquet"),
        "--chunk-rows",
        "1000",
        cwd=tmp_path,
        env=registry.env(),
    )
    assert done.returncode == 0, done.stderr
    assert "2,357 customers scored as of 1998-06-30" in done.stdout
    scored = pd.read_parquet(tmp_path / "scores.parquet")
    trained = pd.read_parquet(registry.scores)
    assert len(scored) == 2357
    pd.testing.assert_frame_equal(scored, trained[scored.columns], check_exact=False, rtol=1e-12)


@pytest.mark.slow
def test_score_writes_csv_and_quarantines(registry: Registry, tmp_path: Path) -> None:
    import pandas as pd

    lines = registry.transactions.read_text().splitlines()
    messy = tmp_path / "messy.csv"
    messy.write_text("\n".join([*lines[:200], ",1997-03-01,5.0", "0001,not a date,5.0", "0001,1999-01-01,5.0"]) + "\n")
    done = _clv(
        "score",
        "--input",
        str(messy),
        "--as-of",
        "1998-06-30",
        "--output",
        str(tmp_path / "s.csv"),
        cwd=tmp_path,
        env=registry.env(),
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [  # as the contractual and discrete scores' lines (their tests)
        f"clv score: 75 customers scored as of 1998-06-30 with models:/clv@champion -> {tmp_path / 's.csv'} "
        f"(202 rows in, 199 used, 3 quarantined; quarantined rows in {tmp_path / 's.quarantine.parquet'})"
    ]
    assert len(pd.read_csv(tmp_path / "s.csv")) == 75
    reasons = pd.read_parquet(tmp_path / "s.quarantine.parquet")["reason"].tolist()
    assert sorted(reasons) == ["after_observation_end", "invalid_timestamp", "missing_customer_id"]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--model-uri", "file:///tmp/model"], ["only models:/ and runs:/ URIs"]),
        (["--model-uri", "models:/nope@champion"], ["--model-uri models:/nope@champion"]),
        (["--output", "scores.json"], ["must end in .parquet or .csv"]),
    ],
)
def test_score_errors(registry: Registry, tmp_path: Path, args: list[str], fragments: list[str]) -> None:
    base = {"--model-uri": "models:/clv@champion", "--output": "s.parquet"}
    base.update(dict(zip(args[::2], args[1::2], strict=True)))
    flat = [x for pair in base.items() for x in pair]
    done = _clv(
        "score", "--input", str(registry.transactions), "--as-of", "1998-06-30", *flat, cwd=tmp_path, env=registry.env()
    )
    _assert_one_line_error(done, 2, *fragments)


@pytest.mark.slow
def test_score_input_missing_column(registry: Registry, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("customer_id,date,amount\n0001,1997-01-01,5\n")
    done = _clv(
        "score", "--input", str(bad), "--as-of", "1998-06-30", "--output", "s.parquet", cwd=tmp_path, env=registry.env()
    )
    _assert_one_line_error(done, 2, "bad.csv", "missing required column 'timestamp'")


@pytest.mark.slow
def test_promote_rollback_and_models_listing(tracking_store: str, capsys: pytest.CaptureFixture[str]) -> None:
    from mlflow.tracking import MlflowClient

    from pipeline.cli import main
    from pipeline.commands.train import run_training as train
    from pipeline.config import Config

    config = Config(data={"source": "cdnow_sample"})  # type: ignore[arg-type]
    assert train(config, "data: {source: cdnow_sample}\n").version == 1
    assert train(config, "data: {source: cdnow_sample}\n").version == 2
    client = MlflowClient()
    assert int(client.get_model_version_by_alias("clv", "champion").version) == 2

    assert main(["promote", "--version", "1"]) == 0  # rollback
    assert "clv@champion -> version 1 (was version 2)" in capsys.readouterr().out
    assert int(client.get_model_version_by_alias("clv", "champion").version) == 1

    client.set_model_version_tag("clv", "2", "gate.passed", "false")
    assert main(["promote", "--version", "2"]) == 2
    assert "did not pass its validation gate; use --force" in capsys.readouterr().err
    assert int(client.get_model_version_by_alias("clv", "champion").version) == 1
    assert main(["promote", "--version", "2", "--force"]) == 0
    assert main(["promote", "--version", "9"]) == 2
    assert "has no version 9" in capsys.readouterr().err

    assert main(["models"]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert listing[0].split()[:3] == ["version", "aliases", "gate"]
    assert listing[1].split()[:3] == ["2", "champion", "FAIL"]
    assert listing[2].split()[:3] == ["1", "-", "pass"]
