"""The fit benchmark's three engines reach the same parameters (1e-6 relative), close to the simulated ones."""

from __future__ import annotations

import pytest

from benchmarks import fit_bench


def test_engines_agree_and_recover_the_simulated_parameters() -> None:
    ours = fit_bench.run_clv(20_000)
    theirs = fit_bench.run_lifetimes(20_000)
    before = fit_bench.run_before(20_000)
    assert fit_bench.same_parameters(ours, theirs)
    assert fit_bench.same_parameters(ours, before)
    assert before["unique"] == ours["unique"]
    assert ours["unique"] < 20_000
    for name, value in fit_bench.TRUE.items():
        assert ours[name] == pytest.approx(value, rel=0.25), name
