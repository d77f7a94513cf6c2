"""The ``clv`` command line.

``clv train [--config PATH] [--summary PATH] [--output DIR]`` runs the whole job;
``clv prepare [--config PATH] --output DIR`` runs the prepare stage alone.

Exit codes: 0 trained and promoted; 1 trained but rejected by the gate; 2 bad input or config (one
line on stderr, no traceback); 3 the MLflow tracking store is unreachable.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

from pipeline.errors import CLVError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="clv", description="Customer-lifetime-value pipeline.")
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train", help="prepare, fit, validate, and register a CLV model")
    train.add_argument("--config", type=Path, help="YAML config (default: built-in CDNOW defaults)")
    train.add_argument("--summary", type=Path, help="write a JSON summary of the run here")
    train.add_argument("--output", type=Path, help="write scores.parquet and holdout.parquet in this folder")
    prepare = commands.add_parser("prepare", help="run the prepare stage alone and write its tables")
    prepare.add_argument("--config", type=Path, help="YAML config (default: built-in CDNOW defaults)")
    prepare.add_argument("--output", type=Path, required=True, help="folder for the tables and ledger.json")
    return parser


def _prepare(args: argparse.Namespace) -> int:
    from pipeline.config import load_config
    from pipeline.run import prepare_only

    prepared = prepare_only(load_config(args.config), args.output)
    ledger = prepared.ledger
    reasons = ", ".join(f"{n:,} {reason}" for reason, n in ledger.quarantined.items()) or "none"
    print(
        f"clv prepare: {ledger.rows_in:,} rows in, {ledger.rows_used:,} used, {ledger.rows_quarantined:,} "
        f"quarantined ({reasons}); {len(prepared.calibration):,} customers in calibration, "
        f"{len(prepared.full):,} in total; tables in {args.output}"
    )
    return 0


def _train(args: argparse.Namespace) -> int:
    from pipeline.config import config_as_dict, load_config
    from pipeline.outputs import write_summary
    from pipeline.run import train
    from pipeline.summary import summary_dict, summary_text

    config = load_config(args.config)
    config_yaml = (
        args.config.read_text(encoding="utf-8") if args.config else _default_yaml(config_as_dict(config))
    )
    result = train(config, config_yaml, output_dir=args.output)
    if args.summary is not None:
        write_summary(args.summary, summary_dict(result))
    print(summary_text(result))
    return result.exit_code


def _default_yaml(config: dict[str, object]) -> str:
    import yaml

    return "# built-in defaults\n" + yaml.safe_dump(config, sort_keys=False)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    with warnings.catch_warnings():
        # Third-party deprecation chatter (SQLAlchemy, pydantic inside MLflow) is not for users.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        try:
            return _prepare(args) if args.command == "prepare" else _train(args)
        except CLVError as exc:
            print(f"clv: error: {exc}", file=sys.stderr)
            return exc.exit_code
        except KeyboardInterrupt:
            print("clv: interrupted", file=sys.stderr)
            return 130


if __name__ == "__main__":
    sys.exit(main())
