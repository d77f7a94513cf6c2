"""The discrete training workflow end to end on a feed (no tracking store): when the plain BG/BB fit does not
converge, the penalized fit (``fit.remedies.penalizers``), with its reason; one line when none converges."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.config import Config, parse_config
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


def _config(path: Path, penalizers: list[float] | None = None) -> Config:
    fit = {} if penalizers is None else {"fit": {"remedies": {"penalizers": penalizers}}}
    return parse_config(
        {
            "data": {"source": "csv", "path": str(path), "columns": {"timestamp": "date"}},
            "prepare": {"calibration_end": "2022-06-30"},
            "business": {"type": "discrete", "billing_period": "month"},
            **fit,
        }
    )


def test_a_bgbb_fit_that_does_not_converge_takes_the_penalized_fit(tmp_path: Path) -> None:
    """Zero-amount repeat purchases are purchases (``prepare.zero_amount: keep``), so this feed reaches the fit;
    its plain fit does not converge: the smallest penalizer that gives one is used, and the reason recorded."""
    path = tmp_path / "zero.csv"
    _free_repeat_feed(path)
    config = _config(path)
    engine = open_engine(config.engine)
    try:
        result = train_discrete(config, engine, engine.open(config.data))
    finally:
        engine.close()
    fit = result.validation.fit
    assert fit.penalizer == 0.001
    assert fit.remedy == "penalizer 0.001 (BG/BB: the maximum-likelihood fit did not converge)"
    assert fit.params.as_dict() == pytest.approx(
        {"alpha": 1.242, "beta": 6.812, "gamma": 0.09857, "delta": 1.889}, rel=1e-3
    )
    assert np.isfinite(result.validation.metrics["purchases_mae"])


def test_without_a_remedy_that_converges_the_job_ends_with_one_line(tmp_path: Path) -> None:
    path = tmp_path / "zero.csv"
    _free_repeat_feed(path)
    config = _config(path, [])  # no remedy to try
    engine = open_engine(config.engine)
    try:
        with pytest.raises(InputError, match=r"cannot validate BG/BB on this feed: BG/BB: the maximum-likelihood fit"):
            train_discrete(config, engine, engine.open(config.data))
    finally:
        engine.close()
