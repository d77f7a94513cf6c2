"""The blend on the feed shapes new users bring: integer and messy text customer ids through ``serving_input``,
``production_blend``, ``with_blend`` and ``clv score``; invoice lines with an order id (the challenger's
purchases are orders merged per day, as BTYD's); an event feed without amounts (the challenger is ineligible,
BTYD stands)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from models.blend import blend_columns, btyd_over, score_blend
from models.challenger_features import FEATURE_COLUMNS, activity_from_transactions, features, serving_input
from models.scoring import score_customers
from pipeline.commands.score import score_file
from pipeline.config import ChallengerConfig, Config
from pipeline.contest import challenge, production_blend, with_blend
from pipeline.engines import Engine, Source, open_engine
from pipeline.engines.prepared import PreparedData
from pipeline.recorder import store
from pipeline.summary import summary_text
from pipeline.workflow import train
from tests.models.test_blend import BTYD, H
from tests.models.test_challenger import btyd_summary, simulate_bgnbd

CALIBRATION_END = dt.date(2000, 7, 1)
OBSERVATION_END = dt.date(2000, 12, 30)  # a 26-week holdout: H = 182 days, BTYD's second horizon
CUSTOMERS = 1_000
BLEND = [c for c in blend_columns(H) if c != "value_model"]


def _transactions() -> pd.DataFrame:
    """1,000 customers of a pure BG/NBD x Gamma-Gamma world (integer ids 0..999), 2000-01-01..2001-06-29."""
    return simulate_bgnbd(CUSTOMERS, seed=1)


def _messy(ids: pd.Series) -> pd.Series:
    """Zero-padded text ids, every third one with spaces around it (``' 00042 '``): prepare trims them."""
    return ids.map(lambda i: f" {i:05d} " if i % 3 == 0 else f"{i:05d}")


def _ratio(scores: pd.DataFrame) -> np.ndarray:
    btyd, blend = scores[f"btyd_expected_revenue_{H}d"].to_numpy(), scores[f"expected_revenue_{H}d"].to_numpy()
    return np.where(btyd > 0, blend / np.where(btyd > 0, btyd, 1.0), 1.0)


# --- ids through the pure functions --------------------------------------------------------------------------


def test_serving_input_keeps_integer_float_and_padded_ids_as_canonical_text() -> None:
    """Integer ids (int64 in both tables), whole-number float ids (a pandas export with a missing id) against
    text activity, and padded text with spaces: the rows follow the customers, ids are the prepare's text."""
    activity = activity_from_transactions(_transactions().head(40))
    customers = btyd_summary(activity, pd.Timestamp(OBSERVATION_END)).reset_index().iloc[[7, 0, 3]]
    assert customers["customer_id"].dtype == np.int64
    direct = features(activity, OBSERVATION_END).loc[customers["customer_id"]].to_numpy()

    as_int = serving_input(customers, activity, OBSERVATION_END)
    ids = [str(i) for i in customers["customer_id"]]
    assert as_int["customer_id"].tolist() == ids
    assert all(type(i) is str for i in as_int["customer_id"])  # not 7.0, not 7
    np.testing.assert_array_equal(as_int[list(FEATURE_COLUMNS)].to_numpy(), direct)

    as_float = serving_input(
        customers.assign(customer_id=customers["customer_id"].astype(np.float64)),
        activity.assign(customer_id=activity["customer_id"].astype(str)),
        OBSERVATION_END,
    )
    assert as_float["customer_id"].tolist() == ids  # 7.0 is the customer '7'
    np.testing.assert_array_equal(as_float[list(FEATURE_COLUMNS)].to_numpy(), direct)

    padded = serving_input(
        customers.assign(customer_id=_messy(customers["customer_id"]).to_numpy()),
        activity.assign(customer_id=activity["customer_id"].map("{:05d}".format)),
        OBSERVATION_END,
    )
    assert padded["customer_id"].tolist() == [f"{int(i):05d}" for i in ids]  # '00007', trimmed, zeros kept
    np.testing.assert_array_equal(padded[list(FEATURE_COLUMNS)].to_numpy(), direct)


@pytest.fixture(scope="module")
def integer_world() -> tuple[pd.DataFrame, pd.DataFrame]:
    """The activity (integer ids) up to the observation end, and its BTYD summary (integer ``customer_id``)."""
    activity = activity_from_transactions(_transactions())
    activity = activity[activity["date"] <= pd.Timestamp(OBSERVATION_END)].reset_index(drop=True)
    full = btyd_summary(activity, pd.Timestamp(OBSERVATION_END)).reset_index()
    return activity, full


def test_production_blend_on_integer_ids_gives_one_row_per_customer_and_the_winner_value(
    integer_world: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    activity, full = integer_world
    shuffled = full.sample(frac=1.0, random_state=0)  # any order: the rows follow ``full``
    blended, served = production_blend(
        ChallengerConfig(enabled=True), activity, BTYD, shuffled, OBSERVATION_END, H
    )
    assert len(blended) == len(full) == blended["customer_id"].nunique() == CUSTOMERS
    assert blended["customer_id"].tolist() == [str(i) for i in shuffled["customer_id"]]
    assert served.example["customer_id"].tolist() == [str(i) for i in shuffled["customer_id"].head(5)]
    # The challenger's total is rescaled to BTYD's over H; the blend is their half-and-half mean, per customer.
    btyd = blended[f"btyd_expected_revenue_{H}d"]
    assert blended[f"challenger_expected_revenue_{H}d"].sum() == pytest.approx(btyd.sum(), rel=1e-9)
    np.testing.assert_allclose(
        blended[f"expected_revenue_{H}d"],
        0.5 * btyd + 0.5 * blended[f"challenger_expected_revenue_{H}d"],
        rtol=1e-12,
    )
    direct = btyd_over(BTYD, shuffled.reset_index(drop=True), H)["expected_revenue"]
    np.testing.assert_allclose(btyd, direct, rtol=1e-12)
    # The served model's clv is BTYD's clv times the blend / BTYD revenue ratio over H, customer by customer.
    frame = serving_input(shuffled, activity, OBSERVATION_END)
    scored = score_blend(served.model, frame)
    alone = score_customers(BTYD, frame)
    assert scored["customer_id"].tolist() == blended["customer_id"].tolist()
    np.testing.assert_allclose(scored["clv"], alone["clv"] * _ratio(blended), rtol=1e-12)
    np.testing.assert_array_equal(scored["btyd_clv"], alone["clv"])
    print(
        f"integer ids: {len(blended)} customers, BTYD total over {H} d {btyd.sum():.2f}, clv total BTYD "
        f"{alone['clv'].sum():.2f} -> winner {scored['clv'].sum():.2f}"
    )


# --- ids through the engine, with_blend and clv score -------------------------------------------------------


def _config(path: Path, columns: dict[str, str | None] | None = None, **prepare: object) -> Config:
    return Config.model_validate(
        {
            "data": {"source": "csv", "path": str(path), "columns": columns or {}},
            "prepare": {"calibration_end": CALIBRATION_END, "observation_end": OBSERVATION_END} | prepare,
            "challenger": {"enabled": True, "bootstrap_draws": 200},
        }
    )


def _csv(transactions: pd.DataFrame, ids: pd.Series, path: Path) -> Path:
    transactions.assign(customer_id=ids, timestamp=transactions["date"].dt.strftime("%Y-%m-%d"))[
        ["customer_id", "timestamp", "amount"]
    ].to_csv(path, index=False)
    return path


def _prepared(config: Config) -> tuple[Engine, Source, PreparedData]:
    engine = open_engine(config.engine)
    data = engine.open(config.resolved().data)
    return engine, data, engine.prepare(data, config.prepare)


SHAPES = {"integer": lambda ids: ids, "messy text": _messy}
CANONICAL = {"integer": str, "messy text": "{:05d}".format}


@pytest.mark.parametrize("shape", list(SHAPES))
def test_with_blend_and_clv_score_keep_the_ids_and_give_the_winner_value(
    shape: str, tracking_store: str, tmp_path: Path
) -> None:
    tx = _transactions()
    path = _csv(tx, SHAPES[shape](tx["customer_id"]), tmp_path / "feed.csv")
    config = _config(path)
    engine, data, prepared = _prepared(config)
    try:
        assert prepared.ledger.reconciled
        scores = engine.score(BTYD, prepared, tmp_path)
        out, warning, served = with_blend(config.resolved(), engine, data, prepared, BTYD, scores)
    finally:
        engine.close()
    assert warning is None
    assert served is not None
    expected = sorted(CANONICAL[shape](i) for i in range(CUSTOMERS))
    assert sorted(out["customer_id"]) == expected  # ' 00042 ' and '00042' are one customer, zeros kept
    assert len(out) == out["customer_id"].nunique() == CUSTOMERS
    assert all(type(i) is str for i in out["customer_id"])
    assert (out["value_model"] == "blend").all()
    np.testing.assert_allclose(out["clv"], out["btyd_clv"] * _ratio(out), rtol=1e-12)
    np.testing.assert_array_equal(out["churn_risk"], out[f"churn_risk_{H}d"])
    assert not np.allclose(out["clv"], out["btyd_clv"])

    # The same blend registered and served by `clv score` on the same file: the same ids and numbers.
    experiment = store.connect("blend-feeds")
    yaml_text = (
        f"data: {{source: csv, path: {path}}}\n"
        f"prepare: {{calibration_end: {CALIBRATION_END}, observation_end: {OBSERVATION_END}}}\n"
    )
    with store.run(experiment):
        uri = store.log_model(BTYD, served.example, yaml_text, served.model)
    result = score_file(uri, path, tmp_path / "scored.parquet", OBSERVATION_END)
    assert result.customers == CUSTOMERS
    assert result.ledger.reconciled
    scored = pd.read_parquet(tmp_path / "scored.parquet")
    assert sorted(scored["customer_id"]) == expected
    assert len(scored) == scored["customer_id"].nunique() == CUSTOMERS
    by_id, want = scored.set_index("customer_id"), out.set_index("customer_id")
    assert (by_id["value_model"] == "blend").all()
    for column in (*BLEND, "clv", "btyd_clv", "churn_risk", "btyd_churn_risk"):
        np.testing.assert_allclose(by_id.loc[want.index, column], want[column], rtol=1e-9, err_msg=column)
    np.testing.assert_allclose(by_id["clv"], by_id["btyd_clv"] * _ratio(by_id), rtol=1e-12)
    print(
        f"{shape} ids: {len(out)} customers; clv total BTYD {out['btyd_clv'].sum():.2f} -> winner "
        f"{out['clv'].sum():.2f}; challenger total over {H} d {out[f'challenger_expected_revenue_{H}d'].sum():.2f}"
    )
