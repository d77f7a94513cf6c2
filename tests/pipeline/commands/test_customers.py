"""Customers for a command: summaries from a file, and lists of ids."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from models.bgnbd import BetaGeoParams
from models.bundle import CLVModelParams, ScoringSpec
from models.spend import PooledMeanParams
from pipeline.commands.customers import RegisteredModel, read_customer_ids, read_summaries, source_at
from pipeline.config import Config, DataConfig
from pipeline.errors import InputError

MODEL = RegisteredModel(
    "models:/clv/1",
    CLVModelParams(BetaGeoParams(0.24, 4.4, 0.79, 2.4), PooledMeanParams(35.0), ScoringSpec()),
    Config(),
)


def test_summaries_keep_first_purchase(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text(
        "customer_id,frequency,recency,T,monetary_value,first_purchase\n"
        "0001,2,10.5,30,12.5,1997-01-02\n17850.0,0,0,3,0,1997-03-01\n"
    )
    loaded = read_summaries(MODEL, path)
    assert loaded.summary["customer_id"].tolist() == ["0001", "17850"]  # as prepare writes ids
    assert loaded.summary["recency"].tolist() == [10.5, 0.0]
    assert loaded.summary["first_purchase"].tolist() == ["1997-01-02", "1997-03-01"]


def test_bad_summaries_are_one_line_errors(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text("customer_id,frequency,recency,T\n1,2,40,30\n")
    with pytest.raises(InputError, match="missing required column"):
        read_summaries(MODEL, path)
    with pytest.raises(InputError, match="--customers"):
        read_summaries(MODEL, tmp_path / "missing.parquet")


def test_ids_from_lines_and_columns(tmp_path: Path) -> None:
    (tmp_path / "ids.txt").write_text("0001\n 17850 \n\n")
    assert read_customer_ids(tmp_path / "ids.txt") == {"0001", "17850"}
    pd.DataFrame({"customer_id": [17850, 12]}).to_parquet(tmp_path / "ids.parquet")
    assert read_customer_ids(tmp_path / "ids.parquet") == {"17850", "12"}
    pd.DataFrame({"id": [1]}).to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(InputError, match="no customer_id column"):
        read_customer_ids(tmp_path / "bad.csv")


def test_input_is_read_as_what_it_holds(tmp_path: Path) -> None:
    """``--input`` keeps the training config's column mapping and CSV options and takes the kind of the file, or of
    the files in a folder; a folder of both kinds or of neither is one line."""
    data = DataConfig.model_validate({"source": "csv", "path": "train.csv", "csv": {"delimiter": ";"}})
    (tmp_path / "exports").mkdir()
    (tmp_path / "exports" / "2024-01.CSV").write_text("customer_id;timestamp;amount\n")
    assert source_at(data, tmp_path / "exports").model_dump() == {
        **data.model_dump(),
        "path": tmp_path / "exports",
    }
    assert source_at(data, tmp_path / "new.parquet").source == "parquet"
    (tmp_path / "exports" / "2024-02.parquet").write_bytes(b"PAR1")
    with pytest.raises(InputError) as raised:
        source_at(data, tmp_path / "exports")
    assert str(raised.value) == f"{tmp_path / 'exports'}: folder holds both .csv and .parquet files"
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError) as raised:
        source_at(data, tmp_path / "empty")
    assert str(raised.value) == f"{tmp_path / 'empty'}: folder holds no .csv or .parquet files"
