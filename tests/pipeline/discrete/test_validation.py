"""BG/BB on a generated monthly-opportunity feed: the law recovered, the holdout beats both baselines."""

from __future__ import annotations

import pytest

from models import bgbb
from pipeline.config import parse_config
from pipeline.discrete.prepare import Histories, prepare_opportunities
from pipeline.discrete.validation import discrete_gate, validate_bgbb
from tests.discrete_feed import ALPHA, BETA, DELTA, GAMMA, write_discrete_feed
from tests.feeds import duckdb_engine, duckdb_relation


@pytest.fixture(scope="module")
def histories(tmp_path_factory: pytest.TempPathFactory) -> Histories:
    path = write_discrete_feed(tmp_path_factory.mktemp("feed") / "donations.csv")
    config = parse_config(
        {
            "data": {"source": "csv", "path": str(path), "columns": {"timestamp": "date"}},
            "prepare": {"calibration_end": "2023-06-30"},
            "business": {"type": "discrete", "billing_period": "month"},
        }
    )
    engine = duckdb_engine(config.engine)
    return prepare_opportunities(engine.connection, duckdb_relation(engine.open(config.data)), config)


def test_bgbb_recovers_the_simulated_law_within_15_percent(histories: Histories) -> None:
    full = histories.full
    assert len(full) == 5000
    assert sorted(full["n_periods"].unique().tolist()) == [19, 22]
    fit = bgbb.fit_bgbb(full["frequency"], full["recency"], full["n_periods"])
    # Measured: alpha 1.156, beta 0.704, gamma 0.649, delta 2.845.
    for found, truth in zip(fit.params.as_dict().values(), (ALPHA, BETA, GAMMA, DELTA), strict=True):
        assert found == pytest.approx(truth, rel=0.15)


def test_holdout_purchases_beat_both_baselines(histories: Histories) -> None:
    validation = validate_bgbb(histories.calibration, histories.full)
    m = validation.metrics
    assert (validation.holdout["n_holdout"] == 5).all()  # July to November 2023
    assert m["purchases_mae"] < m["baseline_last_period_purchases_mae"]  # measured 0.349 < 0.370
    assert m["purchases_mae"] < m["baseline_average_rate_purchases_mae"]  # measured 0.766
    assert abs(m["purchases_total_error"]) < 0.05  # measured -1.3%
    assert discrete_gate(m).passed
    assert not discrete_gate({**m, "baseline_last_period_purchases_mae": 0.1}).passed
