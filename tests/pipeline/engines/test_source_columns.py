from __future__ import annotations

import pytest

from pipeline.config import PrepareConfig
from pipeline.engines.source_columns import Duplicates, layout, private_alias, quarantine_names
from pipeline.errors import InputError

COLUMNS = ["order_id", "source:StockCode", "quantity", "timestamp", "unit_price", "customer_id", "source:reason"]
NAMES = {
    "order_id": "InvoiceNo",
    "source:StockCode": "StockCode",
    "quantity": "Quantity",
    "timestamp": "InvoiceDate",
    "unit_price": "UnitPrice",
    "customer_id": "CustomerID",
    "source:reason": "reason",
}


def test_unmapped_columns_get_a_prefix_that_no_role_has() -> None:
    assert private_alias("customer_id") == "source:customer_id"


def test_whole_rows_are_compared_when_an_order_id_is_mapped() -> None:
    rows = layout(COLUMNS, NAMES, PrepareConfig(), "f.csv")
    assert rows.duplicates == Duplicates(tuple(COLUMNS), ())
    assert (rows.has_order, rows.has_amounts) == (True, True)
    assert list(rows.names.values()) == list(NAMES.values())
    assert layout(COLUMNS, NAMES, PrepareConfig(duplicates="keep"), "f.csv").duplicates is None
    no_order = [c for c in COLUMNS if c != "order_id"]
    assert layout(no_order, None, PrepareConfig(), "f.csv").duplicates is None
    assert layout(no_order, None, PrepareConfig(duplicates="quarantine"), "f.csv").duplicates == Duplicates(
        tuple(no_order), ()
    )


def test_a_named_key_uses_source_names_and_orders_by_the_other_columns() -> None:
    config = PrepareConfig(duplicate_key=("InvoiceNo", "StockCode"))
    rows = layout(COLUMNS, NAMES, config, "f.csv")
    assert rows.duplicates == Duplicates(
        ("order_id", "source:StockCode"), ("quantity", "timestamp", "unit_price", "customer_id", "source:reason")
    )


def test_an_unknown_key_column_is_an_input_error_naming_it() -> None:
    config = PrepareConfig(duplicate_key=("InvoiceNo", "Stock Code"))
    with pytest.raises(
        InputError, match=r"^f\.csv: prepare\.duplicate_key names column\(s\) the input does not have: "
    ):
        layout(COLUMNS, NAMES, config, "f.csv")
    with pytest.raises(InputError, match=r"have: Stock Code; found: InvoiceNo, StockCode, Quantity"):
        layout(COLUMNS, NAMES, config, "f.csv")


def test_without_column_names_columns_name_themselves() -> None:
    rows = layout(["customer_id", "timestamp", "amount", "source:cds"], None, PrepareConfig(), "x")
    assert rows.names == {
        "customer_id": "customer_id",
        "timestamp": "timestamp",
        "amount": "amount",
        "source:cds": "cds",
    }
    assert layout(["customer_id", "timestamp"], None, PrepareConfig(), "x").has_amounts is False


def test_one_source_column_mapped_twice_is_written_once() -> None:
    names = {"customer_id": "id", "order_id": "id", "timestamp": "t", "amount": "a"}
    rows = layout(list(names), names, PrepareConfig(), "x")
    assert rows.names == {"customer_id": "id", "timestamp": "t", "amount": "a"}


def test_a_source_column_named_reason_keeps_apart_from_the_reason() -> None:
    assert quarantine_names(NAMES)["source:reason"] == "source_reason"
    assert quarantine_names(NAMES)["order_id"] == "InvoiceNo"
    assert quarantine_names({"source:Reason": "Reason", "source:REASON": "REASON"}) == {
        "source:Reason": "source_Reason",
        "source:REASON": "source_REASON",
    }
