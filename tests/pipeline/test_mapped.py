"""Frames mapped to disk come back the same, as views of a file the OS can drop; what does not map stays as it was."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.mapped import _memory, is_mapped, map_to_disk, set_aside


def _frame(rows: int = 1_000) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    values = rng.gamma(2.0, 10.0, rows)
    values[::97] = np.nan
    days = pd.to_datetime("2021-01-01") + pd.to_timedelta(rng.integers(0, 700, rows), unit="D")
    return pd.DataFrame(
        {
            "customer_id": pd.array([f" id-{i:05d}é" for i in range(rows)], dtype="str"),
            "frequency": rng.integers(0, 9, rows).astype(np.float64),
            "monetary_value": values,
            "recent_purchases": rng.integers(0, 4, rows),
            "first_purchase": days.astype("datetime64[ns]"),
            "first_seen": days.astype("datetime64[us]").where(np.arange(rows) % 5 > 0),  # NaT every 5th row
            "repeat": rng.integers(0, 2, rows).astype(bool),
            "tier": pd.Categorical(rng.choice(["low", "high"], rows), categories=["low", "high"], ordered=True),
        }
    )


def _file_mappings() -> list[tuple[int, int, str]]:
    """The process's memory mappings of the job's frame files: (start, end, path)."""
    out = []
    for line in Path("/proc/self/maps").read_text().splitlines():
        fields = line.split(maxsplit=5)
        if len(fields) == 6 and "clv-frame-" in fields[5]:
            start, end = (int(x, 16) for x in fields[0].split("-"))
            out.append((start, end, fields[5]))
    return out


def test_a_mapped_frame_is_the_same_frame(tmp_path: Path) -> None:
    frame = _frame()
    result = map_to_disk(frame, tmp_path)
    assert result.reason is None
    assert result.frame is not frame
    pd.testing.assert_frame_equal(result.frame, frame, check_exact=True)
    assert isinstance(result.frame.index, pd.RangeIndex)
    assert np.isnan(result.frame["monetary_value"].to_numpy()[::97]).all()  # NaN stays NaN, not a null


def test_a_frame_with_another_index_keeps_it(tmp_path: Path) -> None:
    frame = _frame().iloc[::3]  # rows 0, 3, 6, ...: an integer index, not a range from 0
    result = map_to_disk(frame, tmp_path)
    assert result.reason is None
    pd.testing.assert_frame_equal(result.frame, frame, check_exact=True)


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="reads the memory map of the process (Linux)")
def test_numbers_and_dates_are_views_of_the_file_which_is_already_unlinked(tmp_path: Path) -> None:
    result = map_to_disk(_frame(), tmp_path)
    assert list(tmp_path.iterdir()) == []  # unlinked once mapped: nothing left behind
    mappings = _file_mappings()
    assert mappings
    assert all(path.endswith("(deleted)") for _, _, path in mappings)
    for column in ("frequency", "monetary_value", "recent_purchases", "first_purchase"):
        address = result.frame[column].to_numpy().__array_interface__["data"][0]
        assert any(start <= address < end for start, end, _ in mappings), column


def test_a_column_that_does_not_come_back_the_same_keeps_the_frame_in_memory(tmp_path: Path) -> None:
    frame = _frame().assign(note=pd.Series(["a"] * 1_000, dtype=object))  # object text would come back as str
    result = map_to_disk(frame, tmp_path)
    assert result.frame is frame
    assert result.reason == "column 'note' came back as str, not object"
    mixed = _frame().assign(note=pd.Series([1, "a"] * 500, dtype=object))
    assert map_to_disk(mixed, tmp_path).reason == "not representable in Arrow (ArrowInvalid)"
    assert list(tmp_path.iterdir()) == []


def test_a_folder_that_cannot_be_written_keeps_the_frame_in_memory(tmp_path: Path) -> None:
    frame = _frame()
    result = map_to_disk(frame, tmp_path / "missing")
    assert result.frame is frame
    assert result.reason == "could not be written (No such file or directory)"


def test_set_aside_maps_the_calibration_summary_and_the_holdout_from_its_bound(tmp_path: Path) -> None:
    import dataclasses

    from benchmarks.feed import prepared_feed
    from pipeline.validate import Validation

    prepared = prepared_feed(20_000, tmp_path)
    holdout = prepared.calibration[["customer_id", "frequency", "T"]].assign(p_alive=0.5)
    validation = Validation(holdout, {"x": 1.0}, pd.DataFrame(), pd.DataFrame(), pd.DataFrame())
    folder = tmp_path / "scratch"
    folder.mkdir()
    rows = len(prepared.calibration)
    assert set_aside(prepared, validation, folder, rows + 1) == (prepared, validation, ())  # below: untouched
    assert set_aside(prepared, validation, folder) == (prepared, validation, ())  # 2M rows by default
    aside, validation_aside, warnings = set_aside(prepared, validation, folder, rows)
    assert warnings == ()
    assert aside.calibration is not prepared.calibration
    assert validation_aside.holdout is not holdout
    pd.testing.assert_frame_equal(aside.calibration, prepared.calibration, check_exact=True)
    pd.testing.assert_frame_equal(validation_aside.holdout, holdout, check_exact=True)
    assert aside.full is prepared.full
    # the columns the holdout shares with the calibration summary are written once: the same mapped memory
    for column in ("customer_id", "frequency", "T"):
        assert _memory(validation_aside.holdout[column]) == _memory(aside.calibration[column]), column
    assert _memory(validation_aside.holdout["p_alive"]) is not None
    assert is_mapped(validation_aside.holdout)
    assert is_mapped(aside.calibration)
    assert validation_aside.metrics == {"x": 1.0}
    assert dataclasses.replace(aside, calibration=prepared.calibration) == prepared
    odd = validation.holdout.assign(note=pd.Series(["a"] * len(holdout), dtype=object))
    _, kept, warnings = set_aside(prepared, dataclasses.replace(validation, holdout=odd), folder, rows)
    assert kept.holdout is odd
    assert warnings == ("memory: the holdout table stays in memory (column 'note' came back as str, not object)",)


def test_a_value_arrow_cannot_hold_keeps_the_frame_in_memory(tmp_path: Path) -> None:
    frame = _frame().assign(big=pd.Series([2**70] * 1_000, dtype=object))  # OverflowError, not an Arrow error
    result = map_to_disk(frame, tmp_path)
    assert result.frame is frame
    assert result.reason == "not representable in Arrow (OverflowError)"
