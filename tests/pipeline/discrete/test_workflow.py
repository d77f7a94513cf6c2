"""The discrete training workflow end to end on a feed (no tracking store): what it does when BG/BB cannot fit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.config import parse_config
from pipeline.discrete.workflow import train_discrete
from pipeline.engines import open_engine
from pipeline.errors import InputError


def _free_repeat_feed(path: Path) -> None:
    """First purchases of 25, every repeat purchase of 0: the same chance to buy for every customer (no
    heterogeneity), where BG/BB's maximum likelihood runs off to infinite parameters."""
    rng = np.random.default_rng(0)
    rows = []
    for c in range(1000):
        t, k = pd.Timestamp("2021-01-01") + pd.Timedelta(days=int(rng.integers(0, 300))), 0
        while t < pd.Timestamp("2022-12-31"):
            rows.append((f"c{c}", t.strftime("%Y-%m-%d"), 25.0 if k == 0 else 0.0))
            k += 1
            t += pd.Timedelta(days=int(rng.integers(20, 200)))
            if rng.random() < 0.3:
                break
    pd.DataFrame(rows, columns=["customer_id", "date", "amount"]).to_csv(path, index=False)


def test_a_bgbb_fit_that_does_not_converge_ends_the_job_with_one_line(tmp_path: Path) -> None:
    """Zero-amount repeat purchases are purchases (``prepare.zero_amount: keep``), so this feed reaches the fit;
    a fit that does not converge is an InputError (exit 2, one line), not a traceback."""
    path = tmp_path / "zero.csv"
    _free_repeat_feed(path)
    config = parse_config(
        {
            "data": {"source": "csv", "path": str(path), "columns": {"timestamp": "date"}},
            "prepare": {"calibration_end": "2022-06-30"},
            "business": {"type": "discrete", "billing_period": "month"},
        }
    )
    engine = open_engine(config.engine)
    try:
        with pytest.raises(InputError, match=r"cannot validate BG/BB on this feed: BG/BB: the maximum-likelihood fit"):
            train_discrete(config, engine, engine.open(config.data))
    finally:
        engine.close()
