"""``clv prepare``: the prepare stage alone, its tables written to a folder (no MLflow)."""

from __future__ import annotations

from pathlib import Path

from pipeline.config import Config
from pipeline.engines import open_engine
from pipeline.engines.prepared import PreparedData
from pipeline.outputs import write_summary, write_tables
from pipeline.recorder.names import ledger_dict

__all__ = ["prepare_only"]


def prepare_only(config: Config, output_dir: Path) -> PreparedData:
    """Run the prepare stage alone and write its tables: quarantine, calibration, customers and the ledger."""
    config = config.resolved()
    engine = open_engine(config.engine)
    data = engine.open(config.data)
    with engine.errors(data.description):
        prepared = engine.prepare(data, config.prepare)
        engine.write_quarantine(prepared, output_dir / "quarantine.parquet")
    engine.close()
    write_tables(output_dir, {"calibration": prepared.calibration, "customers": prepared.full})
    write_summary(output_dir / "ledger.json", ledger_dict(prepared))
    return prepared
