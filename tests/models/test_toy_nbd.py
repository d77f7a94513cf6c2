"""Adding a purchase model is one file plus one registration line: the toy NBD (no dropout) of
tests/models/toy_nbd.py, registered by a fixture, is fitted, validated, registered and scored by the normal job."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from models import purchase, registry
from models.definition import PurchaseModel
from models.mle import fit_purchase
from pipeline.cli import main
from pipeline.config import parse_config
from pipeline.errors import ConfigError
from tests.models import toy_nbd
from tests.models.toy_nbd import NBDParams

TRUE = NBDParams(r=1.5, alpha=6.0)  # 0.25 purchases a week on average, alpha in weeks


@pytest.fixture
def toy_model() -> Iterator[PurchaseModel[Any]]:
    yield registry.register(toy_nbd.MODEL)
    registry.unregister(toy_nbd.MODEL.name)


def nbd_purchases(customers: int, start: dt.date, days: int, seed: int) -> pd.DataFrame:
    """Purchase days of customers who follow the NBD (rates per week), born over the first 300 days, never leaving.
    Purchases on the same day merge into one, as prepare does. Columns ``customer``, ``day`` (ISO)."""
    rng = np.random.default_rng(seed)
    rate = rng.gamma(TRUE.r, 1 / TRUE.alpha, customers) / 7  # per day
    birth = rng.integers(0, 300, customers)
    rows: list[tuple[int, int]] = []
    for c in range(customers):
        day = float(birth[c])
        rows.append((c, int(day)))
        while (day := day + rng.exponential(1 / rate[c])) < days:
            rows.append((c, int(day)))
    frame = pd.DataFrame(rows, columns=["customer", "offset"]).drop_duplicates()
    frame["day"] = (pd.Timestamp(start) + pd.to_timedelta(frame["offset"], unit="D")).dt.strftime("%Y-%m-%d")
    return frame.drop(columns="offset")


def test_the_registry_knows_the_toy_only_while_registered(toy_model: PurchaseModel[Any]) -> None:
    assert registry.names() == ("bgnbd", "mbgnbd", "pareto_nbd", "toy_nbd")
    assert purchase.LABELS["toy_nbd"] == "NBD (toy)"
    assert purchase.PARAM_NAMES["toy_nbd"] == ("r", "alpha")
    assert purchase.make_params("toy_nbd", {"r": 1.5, "alpha": 6.0}) == TRUE
    assert parse_config({"fit": {"purchase_model": "toy_nbd"}}).fit.purchase_model == "toy_nbd"
    with pytest.raises(ConfigError, match=r"fit: NBD \(toy\) cannot be fitted by 'map'; it supports mle"):
        parse_config({"fit": {"purchase_model": "toy_nbd", "method": "map"}})
    registry.unregister("toy_nbd")
    with pytest.raises(ConfigError, match=r"fit.purchase_model: Input should be 'bgnbd', 'mbgnbd' or 'pareto_nbd'"):
        parse_config({"fit": {"purchase_model": "toy_nbd"}})
    registry.register(toy_model)


def test_the_toy_formulas_are_the_nbd(toy_model: PurchaseModel[Any]) -> None:
    counts = np.arange(300, dtype=float)
    pmf = purchase.repeat_count_pmf(TRUE, counts, np.full_like(counts, 52.0))
    assert pmf.sum() == pytest.approx(1.0, abs=1e-12)
    assert (counts * pmf).sum() == pytest.approx(1.5 / 6.0 * 52)  # E[X(t)] = r t / alpha
    assert purchase.expected_purchases_new_customer(TRUE, 52.0) == pytest.approx(13.0)
    # a customer with 4 repeat purchases over 20 weeks: rate ~ Gamma(5.5, 26)
    assert purchase.expected_purchases(TRUE, 10.0, 4.0, 15.0, 20.0) == pytest.approx(5.5 / 26 * 10)
    assert purchase.p_no_purchase(TRUE, 10.0, 4.0, 15.0, 20.0) == pytest.approx((26 / 36) ** 5.5)
    assert purchase.p_alive(TRUE, [0.0, 4.0], [0.0, 15.0], [3.0, 20.0]).tolist() == [1.0, 1.0]


def test_the_toy_fits_by_maximum_likelihood(toy_model: PurchaseModel[Any]) -> None:
    rng = np.random.default_rng(5)
    T = rng.uniform(20, 60, 20_000)
    x = rng.poisson(rng.gamma(TRUE.r, 1 / TRUE.alpha, T.size) * T).astype(float)
    fitted = fit_purchase("toy_nbd", x, np.minimum(x, 1) * T / 2, T)
    assert fitted.model == "toy_nbd"
    # measured: r 1.5006, alpha 6.0259 (truth 1.5, 6.0), standard errors 0.0175 and 0.0797
    assert fitted.params.as_dict() == pytest.approx({"r": 1.5006, "alpha": 6.0259}, abs=1e-4)
    assert fitted.standard_errors == pytest.approx({"r": 0.0175, "alpha": 0.0797}, abs=1e-4)
    assert fitted.stats.n_params == 2


@pytest.mark.slow
def test_clv_train_fits_registers_and_scores_the_toy(
    toy_model: PurchaseModel[Any], tracking_store: str, tmp_path: Path
) -> None:
    nbd_purchases(1500, dt.date(2023, 1, 1), 2 * 364, seed=3).to_csv(tmp_path / "events.csv", index=False)
    (tmp_path / "toy.yaml").write_text(
        "data: {source: csv, path: events.csv, columns: {customer_id: customer, timestamp: day, amount: null}}\n"
        "prepare: {calibration_end: 2023-12-30}\n"
        "fit: {purchase_model: toy_nbd}\n"
        "validate: {criteria: []}\n"
    )
    assert main(["train", "--config", "toy.yaml", "--output", "out"]) == 0

    version = MlflowClient().get_model_version_by_alias("clv", "champion")
    assert version.run_id is not None
    run = mlflow.get_run(version.run_id)
    assert run.data.tags["purchase_model"] == "toy_nbd"
    assert version.tags["gate.passed"] == "true"
    fitted = NBDParams(run.data.metrics["production_toy_nbd_r"], run.data.metrics["production_toy_nbd_alpha"])
    # measured on this feed: r 1.6102, alpha 6.3795 (truth 1.5 and 6.0: the mean rate r / alpha within 1%)
    assert fitted.as_dict() == pytest.approx({"r": 1.6102, "alpha": 6.3795}, abs=1e-4)
    assert fitted.r / fitted.alpha == pytest.approx(TRUE.r / TRUE.alpha, rel=0.01)

    customers = pd.DataFrame(
        {
            "customer_id": ["a", "b", "c"],
            "frequency": [0.0, 4.0, 20.0],
            "recency": [0.0, 15.0, 60.0],
            "T": [3.0, 20.0, 80.0],
        }
    )
    scores = mlflow.pyfunc.load_model("models:/clv@champion").predict(customers)
    r, alpha = fitted.r, fitted.alpha
    x, T = customers["frequency"].to_numpy(), customers["T"].to_numpy()
    np.testing.assert_allclose(scores["p_alive"], 1.0)
    np.testing.assert_allclose(scores["expected_purchases_90d"], (r + x) / (alpha + T) * 90 / 7, rtol=1e-12)
    np.testing.assert_allclose(scores["churn_risk"], ((alpha + T) / (alpha + T + 90 / 7)) ** (r + x), rtol=1e-12)
