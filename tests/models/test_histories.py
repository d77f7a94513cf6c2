from __future__ import annotations

from models.histories import unique_histories


def test_unique_histories_counts() -> None:
    rows = unique_histories([0, 0, 1, 1], [0, 0, 2, 3], [5, 5, 5, 5])
    assert rows.to_dict("records") == [
        {"frequency": 0.0, "recency": 0.0, "T": 5.0, "weight": 2},
        {"frequency": 1.0, "recency": 2.0, "T": 5.0, "weight": 1},
        {"frequency": 1.0, "recency": 3.0, "T": 5.0, "weight": 1},
    ]
