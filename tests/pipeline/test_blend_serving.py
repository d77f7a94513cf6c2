"""The registered model serves the blend when it wins the contest (configs/cdnow-challenger.yaml on CDNOW): loaded in
a fresh process, through ``clv score``, a real ``mlflow models serve`` and ``spark_udf`` in local Spark, it gives the
training run's scores (the blend's columns to 1e-9), from input rows built by
:func:`models.challenger_features.serving_input` (slow: one ``clv train`` of about two minutes)."""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import math
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from models.blend import blend_columns
from models.challenger_features import FEATURE_COLUMNS, serving_input
from pipeline.config import Config, load_config
from pipeline.engines import open_engine
from tests.conftest import REPO, clean_env, clv_command
from tests.rest import post, predictions, serve, split

pytestmark = pytest.mark.slow

AS_OF = dt.date(1998, 6, 30)
H = 181
MODEL_URI = "models:/clv-challenger@champion"
BLEND = list(blend_columns(H))
STRUCTURAL = ["p_alive", "churn_risk", "expected_purchases_30d", "expected_purchases_365d", "expected_order_value"]
STRUCTURAL += ["clv", "btyd_clv", "btyd_churn_risk"]  # clv and churn_risk are the winner's, BTYD's kept

FRESH = """
import json, sys, time
t0 = time.perf_counter()
import mlflow
import pandas as pd
t1 = time.perf_counter()
model = mlflow.pyfunc.load_model(sys.argv[1])
t2 = time.perf_counter()
frame = pd.read_parquet(sys.argv[2])
out = model.predict(frame)
t3 = time.perf_counter()
out.to_parquet(sys.argv[3])
inputs = model.metadata.get_input_schema().input_names()
json.dump({"import_s": t1 - t0, "load_s": t2 - t1, "predict_s": t3 - t2, "inputs": inputs}, open(sys.argv[4], "w"))
"""


@dataclass(frozen=True)
class Trained:
    folder: Path
    uri: str
    transactions: Path
    scores: pd.DataFrame
    """The training run's scores table (``--output``), by customer id."""
    inputs: pd.DataFrame
    """The registered model's input at observation end, built by ``serving_input`` from the transactions."""

    def env(self) -> dict[str, str]:
        path = f"{Path(sys.executable).parent}:{clean_env().get('PATH', '')}"
        return clean_env() | {"MLFLOW_TRACKING_URI": self.uri, "MLFLOW_DISABLE_TELEMETRY": "true", "PATH": path}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, cdnow_master: pd.DataFrame) -> Trained:
    """``clv train`` on configs/cdnow-challenger.yaml in a subprocess with its own store; the input rows."""
    folder = tmp_path_factory.mktemp("blend")
    (folder / "challenger.yaml").write_text((REPO / "configs" / "cdnow-challenger.yaml").read_text(encoding="utf-8"))
    transactions = folder / "cdnow.csv"
    cdnow_master.assign(timestamp=cdnow_master["date"].dt.strftime("%Y-%m-%d"))[
        ["customer_id", "timestamp", "amount"]
    ].to_csv(transactions, index=False)
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    found = Trained(folder, uri, transactions, pd.DataFrame(), pd.DataFrame())
    done = subprocess.run(
        [str(clv_command()), "train", "--config", "challenger.yaml", "--output", "out"],
        cwd=folder,
        env=found.env(),
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert done.returncode == 0, done.stderr + done.stdout
    assert "the registered model serves the blend (value_model = blend)" in done.stdout
    config = load_config(folder / "challenger.yaml").resolved()
    scores = pd.read_parquet(folder / "out" / "scores.parquet").set_index("customer_id")
    return Trained(folder, uri, transactions, scores, _inputs(config))


def _inputs(config: Config) -> pd.DataFrame:
    """The model's input at observation end: the same function as training, from the same transactions."""
    engine = open_engine(config.engine)
    try:
        data = engine.open(config.data)
        customers = engine.prepare_as_of(data, config.prepare, AS_OF).customers
        activity = engine.activity(data, config.prepare, AS_OF)
    finally:
        engine.close()
    return serving_input(customers, activity, AS_OF)


def _agree(scored: pd.DataFrame, expected: pd.DataFrame, rtol: float = 1e-9) -> float:
    """Assert every blend and structural column of ``scored`` (by customer id) matches; the largest relative gap."""
    scored = scored.set_index("customer_id").loc[expected.index]
    assert (scored["value_model"] == "blend").all()
    assert scored["risk_tier"].tolist() == expected["risk_tier"].tolist()
    worst = 0.0
    for column in [c for c in (*BLEND, *STRUCTURAL) if c != "value_model"]:
        got, want = scored[column].to_numpy(dtype=np.float64), expected[column].to_numpy(dtype=np.float64)
        np.testing.assert_allclose(got, want, rtol=rtol, atol=1e-12, err_msg=column)
        worst = max(worst, float(np.max(np.abs(got - want) / np.maximum(np.abs(want), 1e-12))))
    return worst


def test_the_registered_blend_loads_in_a_fresh_process_and_gives_the_training_scores(
    trained: Trained, tmp_path: Path
) -> None:
    assert len(trained.inputs) == len(trained.scores) == 23_570
    summary = ["customer_id", "frequency", "recency", "T", "monetary_value"]
    assert list(trained.inputs.columns) == [*summary, *FEATURE_COLUMNS]
    trained.inputs.to_parquet(tmp_path / "in.parquet")
    done = subprocess.run(
        [sys.executable, "-c", FRESH, MODEL_URI, *(str(tmp_path / n) for n in ("in.parquet", "out.parquet", "t.json"))],
        env=trained.env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    timing = json.loads((tmp_path / "t.json").read_text())
    assert timing["inputs"] == list(trained.inputs.columns)  # the signature lists the inputs
    worst = _agree(pd.read_parquet(tmp_path / "out.parquet"), trained.scores)
    print(f"fresh process: import {timing['import_s']:.2f} s, load {timing['load_s']:.2f} s, "
          f"predict {timing['predict_s']:.2f} s for 23,570 customers; largest relative gap {worst:.3g}")  # fmt: skip
    # The blend's total is BTYD's over H (rescaled at training), and the blend ranks differently from BTYD.
    blend, btyd = trained.scores[f"expected_revenue_{H}d"], trained.scores[f"btyd_expected_revenue_{H}d"]
    assert blend.sum() == pytest.approx(btyd.sum(), rel=1e-9)
    assert not np.allclose(blend, btyd)


def test_the_registered_model_holds_the_challenger_as_skops_not_pickle(trained: Trained, tmp_path: Path) -> None:
    import mlflow

    mlflow.set_tracking_uri(trained.uri)
    mlflow.set_registry_uri(trained.uri)  # an earlier test in this process may have pointed the registry elsewhere
    local = Path(mlflow.artifacts.download_artifacts(MODEL_URI, dst_path=str(tmp_path)))
    artifacts = sorted(p.name for p in (local / "artifacts").iterdir())
    assert artifacts == ["blend.json", "challenger.skops", "config.yaml", "params.json"]
    assert json.loads((local / "artifacts" / "blend.json").read_text()) == {"weight": 0.5, "horizon_days": H}
    assert not list(local.rglob("*.pkl"))
    assert not list(local.rglob("*.pickle"))
    requirements = (local / "requirements.txt").read_text()
    assert "scikit-learn==" in requirements
    assert "skops==" in requirements


def test_clv_score_on_cdnow_gives_the_training_scores(trained: Trained, tmp_path: Path) -> None:
    """``clv score`` builds the features from the transactions with ``serving_input`` and calls the model."""
    output = tmp_path / "scored.parquet"
    done = subprocess.run(
        [str(clv_command()), "score", "--model-uri", MODEL_URI, "--input", str(trained.transactions),
         "--as-of", str(AS_OF), "--output", str(output)],
        cwd=trained.folder, env=trained.env(), capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    scored = pd.read_parquet(output)
    assert len(scored) == 23_570
    _agree(scored, trained.scores)
    # The value ranking is the winner's clv (the blend's), as in the training scores, not BTYD's.
    by_id = scored.set_index("customer_id").loc[trained.scores.index]
    assert by_id["value_segment"].tolist() == trained.scores["value_segment"].tolist()
    top = trained.scores["clv"].rank(pct=True, method="first") > 0.95
    assert top.sum() == 1_179
    assert (trained.scores.loc[top, "value_segment"] == "top 5%").all()
    assert (trained.scores.loc[~top, "value_segment"] != "top 5%").all()
    by_btyd = trained.scores["btyd_clv"].rank(pct=True, method="first") > 0.95
    assert (by_btyd != top).sum() > 0


def exact_split(frame: pd.DataFrame) -> dict[str, object]:
    """``dataframe_split`` with every float exactly (Python's round-trip repr), missing values as null.

    pandas' ``to_json`` keeps at most 15 significant digits: a feature rounded so can cross a tree's threshold
    (measured: 1 of 2,357 CDNOW customers moved by 0.36% with :func:`tests.rest.split`)."""
    table = frame.to_dict(orient="split", index=False)
    data = [[None if isinstance(v, float) and math.isnan(v) else v for v in row] for row in table["data"]]
    return {"dataframe_split": {"columns": table["columns"], "data": data}}


def test_rest_serves_the_blend_with_the_training_numbers(trained: Trained, tmp_path: Path) -> None:
    """A real ``mlflow models serve``; the client sends rows built by ``serving_input`` (missing gaps as null)."""
    rows = trained.inputs.iloc[::10]  # 2,357 customers, many one-time buyers with null gaps
    assert rows["mean_gap_days"].isna().any()
    with serve(MODEL_URI, trained.folder, trained.env(), tmp_path) as url:
        status, body = post(url, exact_split(rows))
        assert status == 200, body
        bad_status, bad = post(url, split(rows.head(3).assign(spend_4w="x")))
        rounded_status, rounded = post(url, split(rows))  # pandas' JSON: 15 significant digits
    scored = predictions(body)
    worst = _agree(scored, trained.scores.loc[rows["customer_id"]])
    print(f"REST: {len(scored)} customers, largest relative gap {worst:.3g}")
    assert rounded_status == 200
    blend = predictions(rounded)[f"expected_revenue_{H}d"]
    gap = np.abs(blend.to_numpy() / trained.scores.loc[rows["customer_id"], f"expected_revenue_{H}d"].to_numpy() - 1)
    print(f"REST with 15-digit JSON: {(gap > 1e-9).sum()} customers off, largest relative gap {gap.max():.3g}")
    assert bad_status == 400
    assert bad["message"] == "column 'spend_4w' must be numeric, got text"


@pytest.mark.skipif(importlib.util.find_spec("pyspark") is None, reason="install the spark extra")
def test_spark_udf_serves_the_blend_with_the_training_numbers(  # type: ignore[no-untyped-def]
    trained: Trained,
    spark,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import mlflow
    from pyspark.sql import functions

    monkeypatch.setenv("MLFLOW_TRACKING_URI", trained.uri)
    mlflow.set_tracking_uri(trained.uri)
    mlflow.set_registry_uri(trained.uri)
    schema = mlflow.models.get_model_info(MODEL_URI).signature.outputs
    result = ", ".join(f"{c.name} {'string' if c.type.name == 'string' else 'double'}" for c in schema.inputs)
    frame = spark.createDataFrame(trained.inputs).repartition(4)
    udf = mlflow.pyfunc.spark_udf(spark, MODEL_URI, result_type=result, env_manager="local")
    columns = [functions.col(c) for c in trained.inputs.columns]
    scored = frame.withColumn("scores", udf(*columns)).select("scores.*").toPandas()
    assert len(scored) == 23_570
    worst = _agree(scored, trained.scores)
    print(f"spark_udf: {len(scored)} customers, largest relative gap {worst:.3g}")
