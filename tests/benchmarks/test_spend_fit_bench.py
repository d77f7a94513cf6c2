"""The spend-fit benchmark's two engines reach the same parameters, close to the simulated ones."""

from __future__ import annotations

import pytest

from benchmarks import spend_fit_bench


def test_engines_agree_and_recover_the_simulated_parameters() -> None:
    ours = spend_fit_bench.run_clv(20_000)
    theirs = spend_fit_bench.run_lifetimes(20_000)
    assert spend_fit_bench.same_parameters(ours, theirs)
    assert ours["passes"] <= 12
    for name, value in spend_fit_bench.TRUE.items():
        assert ours[name] == pytest.approx(value, rel=0.25), name
