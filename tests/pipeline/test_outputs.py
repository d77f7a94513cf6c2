from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.errors import InputError
from pipeline.outputs import dictionary_columns, write_summary, write_tables


def test_tables_and_summary(tmp_path: Path) -> None:
    paths = write_tables(tmp_path / "out", {"scores": pd.DataFrame({"a": [1.0]})})
    assert paths == [tmp_path / "out" / "scores.parquet"]
    assert pd.read_parquet(paths[0])["a"].tolist() == [1.0]
    path = write_summary(tmp_path / "s" / "summary.json", {"x": float("nan"), "y": [1.5, float("inf")]})
    assert json.loads(path.read_text()) == {"x": None, "y": [1.5, None]}


def test_unwritable_output_is_an_input_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(InputError, match="cannot create directory"):
        write_tables(blocker / "out", {"scores": pd.DataFrame({"a": [1]})})


def test_tables_written_side_by_side_equal_one_by_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import numpy as np

    rng = np.random.default_rng(7)
    n = 200_000
    tables = {
        "scores": pd.DataFrame({"customer_id": [f"c{k}" for k in range(n)], "clv": rng.gamma(0.5, 50.0, n)}),
        "holdout": pd.DataFrame({"frequency_holdout": rng.poisson(0.7, n).astype(float), "p": rng.random(n)}),
        "segments": pd.DataFrame({"segment": ["top", "rest"], "customers": [10, n - 10]}),
    }
    files = {}
    for threads in (1, 3):
        monkeypatch.setattr("pipeline.outputs.workers", lambda threads=threads: threads)
        paths = write_tables(tmp_path / str(threads), tables)
        assert [p.name for p in paths] == ["scores.parquet", "holdout.parquet", "segments.parquet"]
        files[threads] = [p.read_bytes() for p in paths]
        for path, frame in zip(paths, tables.values(), strict=True):
            pd.testing.assert_frame_equal(pd.read_parquet(path), frame, check_exact=True)
    assert files[1] == files[3]
    assert sorted(p.name for p in (tmp_path / "3").iterdir()) == [
        "holdout.parquet",
        "scores.parquet",
        "segments.parquet",
    ]


def test_only_columns_that_repeat_their_values_get_a_dictionary(tmp_path: Path) -> None:
    """Counts and labels are dictionary-encoded, distinct floats are not; every value reads back as written."""
    import pyarrow.parquet as pq

    rng = np.random.default_rng(2)
    n = 100_000
    frame = pd.DataFrame(
        {
            "customer_id": pd.Series([f"c{i}" for i in range(n)], dtype="str"),
            "frequency": rng.poisson(2.0, n).astype(float),
            "expected_revenue": rng.gamma(1.0, 50.0, n),
            "value_segment": pd.Series(rng.choice(["top 5%", "bottom 50%"], n), dtype="str"),
        }
    )
    assert dictionary_columns(frame) == ["frequency", "value_segment"]
    (path,) = write_tables(tmp_path, {"scores": frame})
    pd.testing.assert_frame_equal(pd.read_parquet(path), frame)
    chunks = pq.ParquetFile(path).metadata.row_group(0)
    encodings = {chunks.column(i).path_in_schema: chunks.column(i).encodings for i in range(chunks.num_columns)}
    assert [c for c, e in encodings.items() if "RLE_DICTIONARY" in e] == ["frequency", "value_segment"]
    assert dictionary_columns(frame.iloc[:0]) == list(frame.columns)  # nothing to look at: parquet's default
