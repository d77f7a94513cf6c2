"""``data``: where the transactions come from and how their columns are named."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SerializerFunctionWrapHandler, model_serializer, model_validator

from pipeline.config.base import StrictModel

__all__ = ["ColumnMap", "CsvOptions", "DataConfig"]


class ColumnMap(StrictModel):
    """Input column names: customer id, purchase time, and either ``amount`` or ``quantity`` x
    ``unit_price``; ``order_id`` (optional) groups invoice lines into orders.

    ``amount: null`` without quantity and unit price is an event feed (``date,id``): every row is a
    purchase and there is no spend. With quantity and unit price, ``amount`` is None (its default
    ``amount`` applies only without them), so that a dumped mapping validates again.
    """

    customer_id: str = "customer_id"
    timestamp: str = "timestamp"
    amount: str | None = "amount"
    quantity: str | None = None
    unit_price: str | None = None
    order_id: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _no_default_amount_with_quantity(cls, data: object) -> object:
        if isinstance(data, dict) and data.get("quantity") is not None and "amount" not in data:
            return {**data, "amount": None}
        return data

    @model_validator(mode="after")
    def _one_amount(self) -> ColumnMap:
        pair = (self.quantity is None, self.unit_price is None)
        if pair[0] != pair[1]:
            raise ValueError("data.columns.quantity and data.columns.unit_price go together")
        if self.quantity is not None and self.amount is not None:
            raise ValueError("set either data.columns.amount or data.columns.quantity + unit_price, not both")
        return self

    @property
    def uses_quantity(self) -> bool:
        return self.quantity is not None

    @property
    def has_amounts(self) -> bool:
        """Whether the feed has spend: an amount, or quantity and unit price (not an event feed)."""
        return self.amount is not None or self.quantity is not None


class CsvOptions(StrictModel):
    """How the CSV files are written. ``decimal`` and ``thousands``: the separators in the amount, quantity and
    unit price columns (``decimal: ","`` and ``thousands: "."`` for ``1.234,56``); the mapped number columns
    are rewritten to ``1234.56`` as they are read, on both engines, before any rule sees them."""

    delimiter: str = ","
    header: bool = True
    encoding: str = Field(
        default="utf-8",
        description="the files' text encoding, any Python codec (latin-1, cp1252, utf-16, ...); other than UTF-8, "
        "the files are transcoded to a temporary UTF-8 copy that both engines read",
    )
    decimal: Literal[".", ","] = Field(default=".", description="decimal separator of the number columns")
    thousands: Literal[".", ",", " ", "'"] | None = Field(
        default=None, description="thousands separator of the number columns (none: not used)"
    )

    @model_validator(mode="after")
    def _separators_differ(self) -> CsvOptions:
        if self.thousands == self.decimal:
            raise ValueError(f"data.csv.thousands and data.csv.decimal are both {self.decimal!r}")
        return self

    @model_serializer(mode="wrap")
    def _without_default_separators(self, handler: SerializerFunctionWrapHandler) -> dict[str, object]:
        """The separators are written only when set: a config dumps (and hashes) as it did before they existed,
        so its runs still compare as reruns."""
        data: dict[str, object] = handler(self)
        for key in ("decimal", "thousands"):
            if getattr(self, key) == CsvOptions.model_fields[key].default:
                data.pop(key, None)
        return data

    @property
    def rewrites_numbers(self) -> bool:
        """Whether the number columns are rewritten (separators other than the plain ``1234.56``)."""
        return self.decimal != "." or self.thousands is not None


class DataConfig(StrictModel):
    """Where the transactions come from.

    ``cdnow_master`` and ``cdnow_sample`` are the CDNOW files shipped inside the lifetimes wheel;
    ``csv`` and ``parquet`` read ``path`` (a file, or a folder of .csv or .parquet files, read as one); ``duckdb`` reads
    ``table`` from the DuckDB database file ``path``; ``sql`` runs ``query`` in DuckDB (which reads
    the files it names itself); ``spark_table`` reads the catalog table ``table`` (``engine.name: spark``
    only). All use the ``columns`` mapping.
    """

    source: Literal["cdnow_master", "cdnow_sample", "csv", "parquet", "duckdb", "sql", "spark_table"] = "cdnow_master"
    path: Path | None = None
    table: str | None = None
    query: str | None = None
    columns: ColumnMap = ColumnMap()
    csv: CsvOptions = CsvOptions()
    timestamp_format: str | None = Field(
        default=None,
        description="strptime format of the timestamp column, or epoch_s, epoch_ms or epoch_us for numbers since "
        "1970-01-01 UTC (read as the wall time in prepare.timezone); None lets the engines detect the format",
    )

    @model_validator(mode="after")
    def _path_matches_source(self) -> DataConfig:
        if self.source in ("csv", "parquet", "duckdb") and self.path is None:
            raise ValueError(f"data.path is required when data.source is '{self.source}'")
        if self.source in ("cdnow_master", "cdnow_sample", "sql", "spark_table") and self.path is not None:
            raise ValueError(f"data.path must not be set when data.source is '{self.source}'")
        if (self.source in ("duckdb", "spark_table")) != (self.table is not None):
            raise ValueError("data.table is required for, and only for, data.source 'duckdb' and 'spark_table'")
        if (self.source == "sql") != (self.query is not None):
            raise ValueError("data.query is required for, and only for, data.source 'sql'")
        return self

    def pointed_at(self, source: Literal["csv", "parquet"], path: Path) -> DataConfig:
        """This config pointed at another file (``clv score --input``): the same column mapping, CSV options
        and timestamp format, exactly as the user set them (a plain ``model_dump`` would write out the
        defaults too, and a default next to a user's value can contradict it)."""
        return DataConfig.model_validate(
            {
                "source": source,
                "path": path,
                "columns": self.columns.model_dump(exclude_unset=True),
                "csv": self.csv.model_dump(exclude_unset=True),
                "timestamp_format": self.timestamp_format,
            }
        )
