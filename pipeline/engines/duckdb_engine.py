"""The DuckDB engine: one machine, out of core; the summaries come to pandas, scoring runs in process."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Literal

import duckdb
import pandas as pd

from models.bundle import CLVModelParams
from pipeline.config import DataConfig, EngineConfig, PrepareConfig
from pipeline.engines import Source, duckdb_activity, duckdb_prepare
from pipeline.engines.duckdb_classify import classified_sql
from pipeline.engines.duckdb_source import connect, open_transactions, release_memory
from pipeline.engines.inputs import first_line
from pipeline.engines.prepared import WINDOW_REASON, AsOfData, PreparedData
from pipeline.engines.source_columns import REASON, layout
from pipeline.engines.sql import DUCKDB, quarantined_days_sql
from pipeline.errors import InputError
from pipeline.fit import FitInput, fit_input
from pipeline.outputs import write_relation
from pipeline.score import score

__all__ = ["SORTED_QUARANTINE_ROWS", "DuckDBEngine", "QuarantineDays"]

SORTED_QUARANTINE_ROWS = 1_000_000
"""Up to this many quarantined rows, ``quarantine.parquet`` is sorted (see :meth:`DuckDBEngine.write_quarantine`)."""


class DuckDBEngine:
    """Prepare and score with DuckDB: one in-memory connection with the configured memory limit, threads
    and spill folder; the large fetches of prepare go through a private temporary folder it owns."""

    name = "duckdb"

    def __init__(self, config: EngineConfig) -> None:
        self.config = config
        self._con: duckdb.DuckDBPyConnection | None = None

    @property
    def connection(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            self._con = connect(self.config)
        return self._con

    def open(self, data: DataConfig) -> Source:
        tx = open_transactions(self.connection, data, self.config.temp_directory)
        return Source(tx.description, tx.fingerprint, tx.timestamp_format, tx.column_names, tx.relation)

    @contextlib.contextmanager
    def errors(self, source: str) -> Iterator[None]:
        try:
            yield
        except duckdb.Error as exc:
            raise InputError(f"{source}: {first_line(exc)}") from None

    @contextlib.contextmanager
    def _staging(self) -> Iterator[Path]:
        """A private temporary folder for prepare's large fetches, removed afterwards."""
        with tempfile.TemporaryDirectory(prefix="clv_prepare_") as folder:
            yield Path(folder)

    @contextlib.contextmanager
    def _released(self) -> Iterator[None]:
        """Afterwards, the memory DuckDB freed goes back to the system (not kept by its allocator for the
        rest of the job, next to the pandas frames)."""
        try:
            yield
        finally:
            release_memory(self.connection.sql)

    def prepare(self, source: Source, config: PrepareConfig) -> PreparedData:
        relation = _relation(source)
        with self.errors(source.description), self._staging() as staging, self._released():
            prepared = duckdb_prepare.prepare(
                relation, config, source.timestamp_format, source.description, source.column_names, staging
            )
        days = QuarantineDays.of(relation, config, prepared.timestamp_format, source.description, source.column_names)
        return dataclasses.replace(prepared, quarantine_days=days)

    def prepare_as_of(self, source: Source, config: PrepareConfig, as_of: dt.date) -> AsOfData:
        relation = _relation(source)
        with self.errors(source.description), self._staging() as staging, self._released():
            return duckdb_prepare.prepare_as_of(
                relation, config, as_of, source.timestamp_format, source.description, source.column_names, staging
            )

    def activity(self, source: Source, config: PrepareConfig, up_to: dt.date) -> pd.DataFrame:
        relation = _relation(source)
        with self.errors(source.description):
            return duckdb_activity.activity(
                relation, config, up_to, source.timestamp_format, source.description, source.column_names
            )

    def fit_input(self, prepared: PreparedData, part: Literal["calibration", "full"]) -> FitInput:
        if part == "calibration":
            return fit_input(prepared.calibration, holdout_full=prepared.full)
        return fit_input(prepared.full)

    def score(self, model: CLVModelParams, prepared: PreparedData, staging: Path) -> pd.DataFrame:
        return score(model, prepared.full)

    def write_quarantine(self, prepared: PreparedData | AsOfData, path: Path) -> Path:
        """The quarantined rows, up to :data:`SORTED_QUARANTINE_ROWS` of them sorted by reason, then by the
        source's columns (as text, in the source's order): the same file on every run. Unsorted, the rows come
        in the order DuckDB's threads find them (the duplicate search partitions the rows), which changes from
        run to run; more rows are written so, as they stream (a past ``--as-of`` can quarantine most of a long
        feed, and sorting 4M rows doubled the write)."""
        rows = prepared.quarantine
        if not isinstance(rows, duckdb.DuckDBPyRelation):
            raise TypeError("the quarantined rows were not prepared by the DuckDB engine")
        if prepared.ledger.rows_quarantined <= SORTED_QUARANTINE_ROWS:
            keys = [REASON, *(c for c in rows.columns if c != REASON)]
            rows = rows.order(", ".join(f"{DUCKDB.identifier(c)} ASC NULLS FIRST" for c in keys))
        return write_relation(rows, path)

    def quarantined_days(self, prepared: PreparedData) -> dict[dt.date | None, int]:
        days = prepared.quarantine_days
        if not isinstance(days, QuarantineDays):
            raise TypeError("the quarantined rows were not prepared by the DuckDB engine")
        with self.errors(days.source):
            return days.counted()

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None


@dataclasses.dataclass(frozen=True)
class QuarantineDays:
    """The quarantined rows per day as prepare dated them, counted when asked: prepare's own classification of
    the input (:func:`pipeline.engines.duckdb_classify.classified_sql`: its reasons, and its reading of the
    timestamp, ``ts``, in ``prepare.timezone``) run again, one query; nothing is written."""

    relation: duckdb.DuckDBPyRelation
    sql: str
    """Reads the input as ``tx``: :func:`pipeline.engines.sql.quarantined_days_sql` of the classified rows."""
    source: str

    @staticmethod
    def of(
        relation: duckdb.DuckDBPyRelation,
        config: PrepareConfig,
        timestamp_format: str | None,
        source: str,
        column_names: Mapping[str, str],
    ) -> QuarantineDays:
        """The count for the input ``relation`` prepared under ``config``, its timestamps read with
        ``timestamp_format`` (the one prepare used, detected or given)."""
        columns = {name: str(dtype) for name, dtype in zip(relation.columns, relation.types, strict=True)}
        rows = layout(list(columns), column_names, config, source)
        classified = classified_sql(columns, rows, config, timestamp_format)
        return QuarantineDays(relation, quarantined_days_sql(classified, WINDOW_REASON), source)

    def counted(self) -> dict[dt.date | None, int]:
        result = self.relation.query("tx", self.sql)
        assert result is not None  # a SELECT always yields a relation
        return {day: int(n) for day, n in result.fetchall()}


def _relation(source: Source) -> duckdb.DuckDBPyRelation:
    if not isinstance(source.handle, duckdb.DuckDBPyRelation):
        raise TypeError(f"{source.description}: not opened by the DuckDB engine")
    return source.handle
