"""A CAC file's ids follow the feed's id rule (spaces at both ends, a whole number written as 12.0)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from pipeline.cac import read_cac
from pipeline.config import BusinessConfig
from pipeline.errors import InputError


def test_the_ids_are_the_feeds_ids(tmp_path: Path) -> None:
    path = tmp_path / "cac.csv"
    path.write_text("customer_id,cac\n 0001 ,10\n0002.0,20\n0003,30\n")
    cac = read_cac(BusinessConfig(cac_file=path), pd.Series(["0001", "0002", "0003"]))
    assert cac is not None
    assert cac.to_dict() == {"0001": 10.0, "0002": 20.0, "0003": 30.0}


def test_ids_that_are_one_id_under_the_rule_are_repeated(tmp_path: Path) -> None:
    path = tmp_path / "cac.csv"
    path.write_text("customer_id,cac\n7,10\n7.0,20\n")
    with pytest.raises(InputError, match=r"cac\.csv: customer_id '7' appears more than once"):
        read_cac(BusinessConfig(cac_file=path), pd.Series(["7"]))


def test_a_missing_id_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "cac.csv"
    path.write_text("customer_id,cac\n,10\n")
    with pytest.raises(InputError, match=r"^.*cac\.csv: .*customer_id"):
        read_cac(BusinessConfig(cac_file=path), pd.Series(["7"]))
