"""Explainability of the contest: the challenger's permutation importance (scikit-learn's, on the training
window) is fixed by the seed and finds the features the model uses; the decile table by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.challenger import Challenger, fit_challenger
from models.challenger_contest import normalized_gini
from models.challenger_explain import decile_table, permutation_importances
from models.challenger_features import FEATURE_COLUMNS, activity_from_transactions, features, labels
from tests.models.test_challenger import simulate_bgnbd


@pytest.fixture(scope="module")
def trained() -> tuple[Challenger, pd.DataFrame, pd.DataFrame]:
    """The challenger fitted on 3,000 simulated customers' training window, with its features and labels."""
    activity = activity_from_transactions(simulate_bgnbd(3_000, seed=1))
    cutoff = pd.Timestamp("2000-07-01")
    train, target = features(activity, cutoff), labels(activity, cutoff, 182)
    return fit_challenger(train, target), train, target


@pytest.mark.slow
def test_permutation_importance_is_fixed_by_the_seed(trained: tuple[Challenger, pd.DataFrame, pd.DataFrame]) -> None:
    challenger, train, target = trained
    first = permutation_importances(challenger, train, target["revenue"], seed=17, customers=1_000)
    again = permutation_importances(challenger, train, target["revenue"], seed=17, customers=1_000)
    other = permutation_importances(challenger, train, target["revenue"], seed=18, customers=1_000)
    pd.testing.assert_frame_equal(first, again, check_exact=True)
    assert not np.array_equal(first["gini_drop"].to_numpy(), other.set_index("feature").loc[first["feature"]].values)
    assert sorted(first["feature"]) == sorted(FEATURE_COLUMNS)
    assert list(first.columns) == ["feature", "gini_drop", "gini_drop_std"]
    assert first["gini_drop"].is_monotonic_decreasing
    assert (first["gini_drop_std"] >= 0).all()


@pytest.mark.slow
def test_permutation_importance_finds_what_the_model_uses(
    trained: tuple[Challenger, pd.DataFrame, pd.DataFrame],
) -> None:
    """All 3,000 customers (fewer than the 5,000 drawn by default), 3 shuffles: shuffling a feature the trees
    never split on changes nothing, and the top feature's drop is what shuffling it by hand costs."""
    challenger, train, target = trained
    table = permutation_importances(challenger, train, target["revenue"], seed=17)
    drops = table.set_index("feature")["gini_drop"]
    assert drops.iloc[0] > 0.01
    used = {
        int(f)
        for model in (challenger.classifier, challenger.regressor)
        for trees in model._predictors
        for tree in trees
        for f in tree.nodes["feature_idx"][tree.nodes["is_leaf"] == 0]
    }
    unused = [c for i, c in enumerate(FEATURE_COLUMNS) if i not in used]
    assert all(drops[c] == 0.0 for c in unused)
    top = table["feature"].iloc[0]
    y = target["revenue"].to_numpy()
    base = normalized_gini(y, challenger.predict(train)["expected_revenue"].to_numpy())
    rng = np.random.default_rng(0)
    shuffled = train.assign(**{top: rng.permutation(train[top].to_numpy())})
    by_hand = base - normalized_gini(y, challenger.predict(shuffled)["expected_revenue"].to_numpy())
    assert by_hand == pytest.approx(drops[top], rel=0.5)


def test_decile_table_by_hand() -> None:
    actual = np.arange(20, dtype=np.float64)
    table = decile_table(actual, {"right": actual, "reversed": -actual})
    right = table[table["contender"] == "right"]
    assert right["decile"].tolist() == list(range(1, 11))
    assert right["customers"].tolist() == [2] * 10
    assert right["mean_actual"].tolist() == [18.5, 16.5, 14.5, 12.5, 10.5, 8.5, 6.5, 4.5, 2.5, 0.5]
    assert right["mean_predicted"].tolist() == right["mean_actual"].tolist()
    reversed_ = table[table["contender"] == "reversed"]
    assert reversed_["mean_actual"].tolist() == [0.5, 2.5, 4.5, 6.5, 8.5, 10.5, 12.5, 14.5, 16.5, 18.5]
    uneven = decile_table(np.arange(23, dtype=np.float64), {"x": np.zeros(23)})  # ties keep row order
    assert uneven["customers"].tolist() == [3, 3, 3, 2, 2, 2, 2, 2, 2, 2]
    assert uneven["mean_actual"].iloc[0] == 1.0
