from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from pipeline.errors import InputError
from pipeline.outputs import write_summary, write_tables


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
