"""The challenger benchmark's feed is BG/NBD x Gamma-Gamma, and both engines forecast similar totals on it."""

from __future__ import annotations

import pytest

from benchmarks import challenger_bench


def test_feed_recovers_the_simulated_parameters_and_engines_agree_on_the_total() -> None:
    btyd = challenger_bench.run_btyd(20_000)
    for name, value in challenger_bench.PURCHASE.items():
        assert btyd[name] == pytest.approx(value, rel=0.15), name
    assert btyd["rows"] == 47_837
    ml = challenger_bench.run_challenger(20_000)
    assert ml["rows"] == btyd["rows"]
    # A stationary feed: the challenger, trained on the previous 182 days, forecasts BTYD's total within 5%
    # (measured 0.976).
    assert ml["predicted_total"] / btyd["predicted_total"] == pytest.approx(0.976, abs=0.05)
    assert ml["features_seconds"] > 0
    assert ml["peak_mb"] >= ml["data_mb"]
