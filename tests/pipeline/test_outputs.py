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


def test_a_frame_mapped_from_disk_is_written_as_to_parquet_writes_it(tmp_path: Path) -> None:
    """Written one row group at a time with its pages let go (pipeline.mapped): the file ``to_parquet`` writes
    (values, schema with pandas' metadata, row groups, compression, dictionary columns); the frame unchanged."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from pipeline.mapped import is_mapped, map_to_disk

    rng = np.random.default_rng(11)
    n = 2 * 1024 * 1024 + 12_345  # three row groups, the last one short
    predicted = rng.gamma(0.5, 50.0, n)
    predicted[::1_001] = np.nan
    ids = pc.cast(pa.array(rng.permutation(n)), pa.large_string()).to_pandas(types_mapper=pd.ArrowDtype)
    frame = pd.DataFrame(
        {
            "customer_id": ids.astype("str"),
            "actual_purchases": rng.poisson(0.7, n).astype(float),
            "expected_revenue": predicted,
            "recent_purchases": rng.poisson(0.3, n),
        }
    )
    copy = frame.copy(deep=True)
    aside = map_to_disk(frame, tmp_path)
    assert is_mapped(aside.frame)
    assert not is_mapped(frame)
    (mapped_path,) = write_tables(tmp_path / "mapped", {"holdout": aside.frame})
    (direct_path,) = write_tables(tmp_path / "direct", {"holdout": frame})
    written, direct = pq.ParquetFile(mapped_path), pq.ParquetFile(direct_path)
    assert written.schema_arrow == direct.schema_arrow
    assert written.schema_arrow.metadata == direct.schema_arrow.metadata
    assert written.metadata.num_row_groups == direct.metadata.num_row_groups == 3
    for group in range(3):
        ours, theirs = written.metadata.row_group(group), direct.metadata.row_group(group)
        assert ours.num_rows == theirs.num_rows
        for column in range(ours.num_columns):
            assert ours.column(column).compression == theirs.column(column).compression
            assert ours.column(column).encodings == theirs.column(column).encodings
    assert written.read().equals(direct.read())
    pd.testing.assert_frame_equal(pd.read_parquet(mapped_path), pd.read_parquet(direct_path), check_exact=True)
    pd.testing.assert_frame_equal(aside.frame, copy, check_exact=True)  # its pages let go, its values the same


def test_mapped_frames_without_rows_or_with_other_names_are_written_as_to_parquet_writes_them(tmp_path: Path) -> None:
    from pipeline.mapped import is_mapped, map_to_disk

    frames = {
        "empty": pd.DataFrame({"customer_id": pd.Series([], dtype="str"), "p": pd.Series([], dtype=float)}),
        "numbered": pd.DataFrame({0: [1.5, 2.5], 1: ["a", "b"]}),
        "attrs": pd.DataFrame({"p": [0.5, 0.25]}),
    }
    frames["attrs"].attrs["source"] = "test"
    for name, frame in frames.items():
        aside = map_to_disk(frame, tmp_path)
        assert is_mapped(aside.frame), name
        (ours,) = write_tables(tmp_path / "mapped", {name: aside.frame})
        (theirs,) = write_tables(tmp_path / "direct", {name: frame})
        assert ours.read_bytes() == theirs.read_bytes(), name
