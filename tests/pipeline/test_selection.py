from __future__ import annotations

import math

import pytest

from pipeline.selection import NoCandidateError, select


def test_best_candidate_wins_and_the_reason_says_why() -> None:
    selection = select(
        {"bgnbd_mle": -5000.0, "pareto_nbd_mle": -4990.0, "mbgnbd_mle": -5010.0},
        {"bgnbd_mle": "ok", "pareto_nbd_mle": "ok", "mbgnbd_mle": "ok", "bgnbd_mcmc": "failed: no draws"},
        "purchases_holdout_log_likelihood",
        "higher",
    )
    assert selection.winner == "pareto_nbd_mle"
    assert selection.table.set_index("candidate")["rank"].to_dict() == {
        "bgnbd_mle": 2.0,
        "pareto_nbd_mle": 1.0,
        "mbgnbd_mle": 3.0,
        "bgnbd_mcmc": pytest.approx(math.nan, nan_ok=True),
    }
    assert selection.reason == (
        "pareto_nbd_mle has the highest purchases_holdout_log_likelihood (-4990; others: bgnbd_mle -5000, "
        "mbgnbd_mle -5010); not ranked: bgnbd_mcmc (failed: no draws)"
    )


def test_lower_is_better_and_ties_go_to_the_first_listed() -> None:
    selection = select({"a": 0.8, "b": 0.8, "c": 0.9}, {"a": "ok", "b": "ok", "c": "ok"}, "purchases_mae", "lower")
    assert selection.winner == "a"


def test_a_missing_metric_is_not_ranked_and_no_candidate_is_an_error() -> None:
    selection = select({"a": math.nan, "b": 1.0}, {"a": "ok", "b": "ok"}, "m", "lower")
    assert selection.winner == "b"
    assert selection.table.set_index("candidate")["status"]["a"] == "no m"
    with pytest.raises(NoCandidateError, match="a: failed: x"):
        select({}, {"a": "failed: x"}, "m", "lower")
