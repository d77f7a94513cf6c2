"""The README's quick start runs as written: every shell block after a ``<!-- tested -->`` comment, in
order, in a temporary copy of the repository (with the repository's .venv) and its own MLflow store."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[2]
TESTED_BLOCK = re.compile(r"^<!-- tested -->\n```bash\n(.*?)^```", flags=re.DOTALL | re.MULTILINE)


def _tested_blocks() -> list[str]:
    return TESTED_BLOCK.findall((REPO / "README.md").read_text(encoding="utf-8"))


def _copy_repository(target: Path) -> None:
    """The files a fresh clone has (tracked, plus new files not ignored), and a link to the built .venv."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = REPO / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    (target / ".venv").symlink_to(REPO / ".venv", target_is_directory=True)


def test_readme_marks_the_quick_start() -> None:
    blocks = _tested_blocks()
    assert len(blocks) == 2
    assert ".venv/bin/clv train --config my-config.yaml" in blocks[0]
    assert ".venv/bin/clv score --model-uri models:/my-shop@champion" in blocks[1]


@pytest.mark.slow
def test_readme_quick_start_runs_as_written(tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    clone.mkdir()
    _copy_repository(clone)
    store = tmp_path / "store"
    store.mkdir()
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": f"sqlite:///{store / 'mlflow.db'}",
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }
    for block in _tested_blocks():
        run = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", block], cwd=clone, env=env, capture_output=True, text=True, check=False
        )
        assert run.returncode == 0, (block, run.stdout, run.stderr)

    out = clone / "output-mine"
    for name in ("scores.parquet", "holdout.parquet", "report.html", "at_risk_valuable.parquet", "summary.json"):
        assert (out / name).is_file(), name
    assert not (out / "quarantine.parquet").exists()  # the example file has no bad row
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert (summary["model_name"], summary["version"], summary["promoted"]) == ("my-shop", 1, True)
    assert summary["data"]["rows_in"] == summary["data"]["rows_used"] == 6919
    assert summary["data"]["customers_calibration"] == 2357
    # the example file is the 1/10 CDNOW sample: the published BG/NBD and Gamma-Gamma fits (Fader, Hardie & Lee 2005)
    calibration = summary["parameters"]["calibration"]
    published = {"r": 0.2426, "alpha": 4.4136, "a": 0.7929, "b": 2.4259, "p": 6.25, "q": 3.74, "v": 15.44}
    for name, value in published.items():
        assert calibration[name] == pytest.approx(value, rel=2e-3), name
    assert summary["log_likelihood"]["bgnbd"] == pytest.approx(-9582.43, abs=0.01)

    scores = pd.read_csv(out / "scores-1998-06-30.csv", dtype={"customer_id": str})
    assert len(scores) == 2357
    assert scores["customer_id"].is_unique
    assert scores["customer_id"].iloc[0] == "0001"
    production = pd.read_parquet(out / "scores.parquet")
    assert len(production) == 2357
    # scoring the training file as of its last day gives the training job's own scores
    merged = scores.merge(production, on="customer_id", suffixes=("", "_train"))
    assert len(merged) == 2357
    for column in ("p_alive", "churn_risk", "expected_purchases_90d", "clv"):
        assert (merged[column] - merged[f"{column}_train"]).abs().max() < 1e-9, column
    # nothing was written outside the copy and the temporary store
    assert (store / "mlflow.db").is_file()
    assert not (clone / "mlflow.db").exists()
