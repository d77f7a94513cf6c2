from __future__ import annotations

import duckdb
import pandas as pd
import pytest

from pipeline.config import FitConfig, load_config
from pipeline.errors import InputError
from pipeline.fit import fit
from pipeline.prepare import prepare
from pipeline.sources import open_transactions
from tests.conftest import REPO


def test_paper_config_reproduces_published_parameters() -> None:
    """The full path (bundled sample -> DuckDB prepare -> fit) gives the published values within 0.1%."""
    config = load_config(REPO / "configs" / "cdnow-sample-paper.yaml")
    tx = open_transactions(duckdb.connect(), config.data)
    prepared = prepare(tx.relation, config.prepare, tx.timestamp_format)
    assert len(prepared.calibration) == 2357
    fitted = fit(prepared.calibration, config.fit)
    published = {
        "r": 0.2426,
        "alpha": 4.4136,
        "a": 0.7929,
        "b": 2.4259,
        "p": 6.2488,
        "q": 3.7446,
        "v": 15.4477,
    }
    for name, value in published.items():
        assert fitted.params()[name] == pytest.approx(value, rel=1e-3), name
    assert fitted.purchase.stats.log_likelihood == pytest.approx(-9582.43, rel=1e-5)
    assert fitted.spend.stats.log_likelihood == pytest.approx(-4055.92, rel=1e-5)
    assert abs(fitted.spend_frequency_correlation) < 0.2


def test_no_repeat_customer_is_an_input_error() -> None:
    customers = pd.DataFrame(
        {"frequency": [0.0, 0.0], "recency": [0.0, 0.0], "T": [3.0, 4.0], "monetary_value": [0.0, 0.0]}
    )
    with pytest.raises(InputError, match="no customer has a repeat purchase"):
        fit(customers, FitConfig(), label="orders.csv")
