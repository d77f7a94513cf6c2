"""The ``clv`` command line.

``clv train [--config PATH] [--summary PATH] [--output DIR]`` runs the whole job;
``clv prepare [--config PATH] --output DIR`` runs the prepare stage alone;
``clv score --model-uri URI --input PATH --as-of DATE --output PATH`` scores with a registered model;
``clv whatif --input PATH --as-of DATE --scenario dropout:0.05`` values a scenario per segment;
``clv monitor [--input PATH] [--config PATH] [--summary PATH]`` judges the champion on the data since it was trained;
``clv promote --version N [--alias A] [--force]`` moves an alias; ``clv models`` lists versions.

Exit codes: 0 trained and promoted (monitor: healthy); 1 trained but rejected by the gate; 2 bad input or config
(one line on stderr, no traceback); 3 the MLflow tracking store or the Spark master is unreachable (``CLVError``
subclasses in ``pipeline/errors.py``); 4 monitor: a retrain is due.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import signal
import sys
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
# An unreachable tracking server should fail in seconds, not after MLflow's minutes of retries.
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")

from pipeline import stop
from pipeline.allocator import keep_freed_memory, limit_heaps
from pipeline.errors import CLVError, ConfigError
from pipeline.secrets import mask_text

if TYPE_CHECKING:
    from pipeline.commands.score import ScoreResult


class _OneLineParser(argparse.ArgumentParser):
    """argparse with the CLI's one line for a usage mistake (``clv monitor: error: ...``, exit 2), naming ``-h``
    instead of printing the usage block; ``-h`` prints it as before. The subcommands' parsers are of this class
    too (argparse makes them of their parent's)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} -h)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(prog="clv", description="Customer-lifetime-value pipeline.")
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train", help="prepare, fit, validate, and register a CLV model")
    train.add_argument("--config", type=Path, help="YAML config (default: built-in CDNOW defaults)")
    train.add_argument("--summary", type=Path, help="write a JSON summary of the run here")
    train.add_argument("--output", type=Path, help="write scores.parquet and holdout.parquet in this folder")
    prepare = commands.add_parser("prepare", help="run the prepare stage alone and write its tables")
    prepare.add_argument("--config", type=Path, help="YAML config (default: built-in CDNOW defaults)")
    prepare.add_argument("--output", type=Path, required=True, help="folder for the tables and ledger.json")

    score = commands.add_parser("score", help="score raw transactions with a registered model")
    score.add_argument(
        "--model-uri", default="models:/clv@champion", help="models:/NAME@ALIAS, models:/NAME/N or runs:/"
    )
    score.add_argument("--input", type=Path, required=True, help="transactions: .csv, .parquet, or a folder of either")
    score.add_argument("--as-of", type=_date, required=True, help="score as of this date (YYYY-MM-DD)")
    score.add_argument("--output", type=Path, required=True, help="scores file: .parquet or .csv")
    score.add_argument("--chunk-rows", type=int, default=1_000_000, help="customers scored per chunk")

    _whatif_parser(commands)
    _monitor_parser(commands)

    promote = commands.add_parser("promote", help="move an alias to a registered version (rollback too)")
    promote.add_argument("--version", type=int, required=True)
    promote.add_argument("--alias", default="champion")
    promote.add_argument("--name", default="clv", help="registered model name")
    promote.add_argument("--force", action="store_true", help="move it even if the version failed its gate")

    compare = commands.add_parser("compare", help="recent training runs side by side")
    compare.add_argument("--experiment", default="clv", help="MLflow experiment name")
    compare.add_argument("--limit", type=int, default=10, help="how many runs")

    listing = commands.add_parser("models", help="list registered versions, aliases, gate results and metrics")
    listing.add_argument("--name", default="clv", help="registered model name")
    return parser


def _whatif_parser(commands: argparse._SubParsersAction[_OneLineParser]) -> None:
    whatif = commands.add_parser("whatif", help="what a retention, activation or upsell scenario is worth per segment")
    whatif.add_argument("--model-uri", default="models:/clv@champion", help="models:/NAME@ALIAS, models:/NAME/N")
    whatif.add_argument("--input", type=Path, help="raw transactions (.csv, .parquet), summarised --as-of")
    whatif.add_argument("--as-of", type=_date, help="summarise the transactions as of this date (YYYY-MM-DD)")
    whatif.add_argument("--customers", type=Path, help="per-customer summaries instead of --input")
    whatif.add_argument(
        "--scenario",
        action="append",
        default=[],
        help="LEVER:K, repeatable: dropout:0.05 (dropout x 0.95), "
        "rate:0.1 (purchase rate x 1.1), spend:0.1 (spend per order x 1.1); default dropout:0.05",
    )
    whatif.add_argument(
        "--segment-by", default="value_segment", choices=["value_segment", "risk_tier", "cohort", "all"]
    )
    whatif.add_argument("--segment", action="append", default=[], help="keep only this segment (repeatable)")
    whatif.add_argument("--ids", type=Path, help="keep only these customers: one id per line, or a customer_id column")
    whatif.add_argument("--response-rate", type=float, default=1.0, help="share of targeted customers it works on")
    whatif.add_argument("--campaign-cost", type=float, default=0.0, help="cost of reaching one customer")
    whatif.add_argument("--horizon-months", type=int, help="CLV horizon for the what-if (default: the model's)")
    whatif.add_argument(
        "--output", type=Path, help="write whatif.csv, whatif.parquet, whatif_customers.parquet, whatif.png"
    )


def _monitor_parser(commands: argparse._SubParsersAction[_OneLineParser]) -> None:
    monitor = commands.add_parser("monitor", help="is the champion still right? exit 4 when a retrain is due")
    monitor.add_argument("--model-uri", default="models:/clv@champion", help="models:/NAME@ALIAS or models:/NAME/N")
    monitor.add_argument("--input", type=Path, help="the feed up to now (default: the model's training source)")
    monitor.add_argument("--as-of", type=_date, help="last day to judge (default: the feed's last date)")
    monitor.add_argument("--config", type=Path, help="YAML with a monitor: mapping of thresholds")
    monitor.add_argument("--summary", type=Path, help="write the verdict and every period as JSON here")


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


class _Progress:
    """A one-line progress bar on stderr, only when stderr is a terminal."""

    def __init__(self) -> None:
        self.enabled = sys.stderr.isatty()

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        width = 30
        filled = int(width * done / total) if total else width
        print(f"\rscoring [{'#' * filled}{'.' * (width - filled)}] {done:,}/{total:,}", end="", file=sys.stderr)
        if done >= total:
            print(file=sys.stderr)


def _score(args: argparse.Namespace) -> int:
    from pipeline.commands.score import score_file

    if args.chunk_rows < 1:
        raise ConfigError("--chunk-rows must be at least 1")
    from pipeline.contractual.scoring import score_subscription_file

    subscribers = score_subscription_file(args.model_uri, args.input, args.output, args.as_of)
    if subscribers is not None:  # a subscription (sBG) model: its active subscribers were scored
        print(_score_line(subscribers, "active subscribers"))
        return 0
    from pipeline.discrete.scoring import score_opportunity_file

    histories = score_opportunity_file(args.model_uri, args.input, args.output, args.as_of)
    if histories is not None:  # a discrete-opportunity (BG/BB) model: every customer acquired by then
        print(_score_line(histories, "customers", " (BG/BB)"))
        return 0
    print(_score_line(score_file(args.model_uri, args.input, args.output, args.as_of, args.chunk_rows, _Progress())))
    return 0


def _score_line(result: ScoreResult, scored: str = "customers", kind: str = "") -> str:
    """``clv score``'s line, alike for every business type: what was scored with which model, where every row went
    and, when rows were quarantined, the file they were written to."""
    ledger = result.ledger
    quarantine = f"; quarantined rows in {result.quarantine}" if result.quarantine is not None else ""
    return (
        f"clv score: {result.customers:,} {scored} scored as of {result.as_of} with {result.model_uri}{kind} -> "
        f"{result.output} ({ledger.rows_in:,} rows in, {ledger.rows_used:,} used, "
        f"{ledger.rows_quarantined:,} quarantined{quarantine})"
    )


def _whatif(args: argparse.Namespace) -> int:
    from pipeline.commands.whatif import parse_scenario, run_whatif, table_lines
    from pipeline.whatif import Campaign

    scenarios = [parse_scenario(text) for text in args.scenario or ["dropout:0.05"]]
    try:
        campaign = Campaign(args.response_rate, args.campaign_cost)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    done = run_whatif(
        args.model_uri,
        scenarios,
        input_path=args.input,
        as_of=args.as_of,
        customers_path=args.customers,
        segment_by=args.segment_by,
        segments=args.segment,
        ids_path=args.ids,
        campaign=campaign,
        output_dir=args.output,
        horizon_months=args.horizon_months,
    )
    version = f" version {done.version}" if done.version else ""
    print(f"clv whatif: {args.model_uri}{version}; run {done.run_id} (type whatif)")
    print("\n".join(table_lines(done.result.table)))
    if not done.has_spend:
        print("no spend model: CLV here is the discounted expected purchases (an order value of 1)")
    for warning in done.warnings:
        print(f"clv: warning: {warning}", file=sys.stderr)
    if done.outputs:
        print(f"written: {', '.join(str(p) for p in done.outputs)}")
    return 0


def _monitor(args: argparse.Namespace) -> int:
    from pipeline.commands.monitor import load_monitor_config, run_monitor
    from pipeline.monitor_report import period_lines, verdict_line

    done = run_monitor(args.model_uri, args.input, args.as_of, load_monitor_config(args.config), args.summary)
    model = f"{done.model['uri']} (version {done.model['version']})"
    if done.result.periods:
        print("\n".join(period_lines(done.result)))
    print(f"{verdict_line(done.result, model)}; run {done.run_id} (type monitor)")
    return done.exit_code


def _promote(args: argparse.Namespace) -> int:
    from pipeline.commands.registry import promote

    done = promote(args.name, args.alias, args.version, args.force)
    was = f" (was version {done.before})" if done.before is not None else ""
    print(f"clv promote: {done.name}@{done.alias} -> version {done.version}{was}")
    return 0


def _compare(args: argparse.Namespace) -> int:
    from pipeline.commands.registry import compare_lines

    print("\n".join(compare_lines(args.experiment, args.limit)))
    return 0


def _models(args: argparse.Namespace) -> int:
    from pipeline.commands.registry import model_lines

    print("\n".join(model_lines(args.name)))
    return 0


def _prepare(args: argparse.Namespace) -> int:
    from pipeline.commands.prepare import prepare_only
    from pipeline.config import load_config

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
    from pipeline.commands.train import run_training
    from pipeline.config import config_as_dict, load_config
    from pipeline.outputs import write_summary
    from pipeline.summary import summary_dict, summary_text
    from pipeline.workflow import TrainResult

    config = load_config(args.config)
    config_yaml = args.config.read_text(encoding="utf-8") if args.config else _default_yaml(config_as_dict(config))
    if config.business.type != "non_contractual":  # subscriptions (sBG): their own summary
        from pipeline.commands.train import run_business_training
        from pipeline.contractual import report

        business = run_business_training(config, config_yaml, output_dir=args.output, checkpoint=stop.checkpoint)
        assert not isinstance(business, TrainResult)
        if args.summary is not None:
            write_summary(args.summary, report.summary_dict(business))
        print(mask_text(report.summary_text(business)))
        return business.exit_code
    result = run_training(config, config_yaml, output_dir=args.output, checkpoint=stop.checkpoint)
    if args.summary is not None:
        write_summary(args.summary, summary_dict(result))
    print(mask_text(summary_text(result)))
    for warning in result.warnings:
        print(f"clv: warning: {warning}", file=sys.stderr)
    return result.exit_code


def _default_yaml(config: dict[str, object]) -> str:
    import yaml

    return "# built-in defaults\n" + yaml.safe_dump(config, sort_keys=False)


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    """The parsed command line; an option the command does not know is its command's one line (``clv train: error:
    unrecognized arguments: --confg (see clv train -h)``), where argparse names the top-level parser."""
    parser = _parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        prog = f"{parser.prog} {args.command}"
        parser.exit(2, f"{prog}: error: unrecognized arguments: {' '.join(unknown)} (see {prog} -h)\n")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = _arguments(argv)
    limit_heaps()  # the job's worker threads would otherwise leave heaps of freed memory behind
    keep_freed_memory()  # the next stage's arrays reuse the pages the last one freed
    from pipeline.recorder import store

    store.quiet()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, stop.on_sigterm)
    with warnings.catch_warnings():
        # Third-party deprecation chatter (SQLAlchemy, pydantic inside MLflow) is not for users.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        try:
            commands = {
                "train": _train,
                "prepare": _prepare,
                "score": _score,
                "whatif": _whatif,
                "monitor": _monitor,
                "promote": _promote,
                "models": _models,
                "compare": _compare,
            }
            return commands[args.command](args)
        except (stop.Terminated, Exception) as exc:
            if stop.requested():
                # After a SIGTERM any error is the stop: a library may have caught the handler's exception
                # and raised its own (DuckDB's InterruptException, pyarrow's ArrowCancelled).
                print(f"clv: error: {stop.MESSAGE}", file=sys.stderr)
                return stop.Terminated.exit_code
            if isinstance(exc, CLVError):
                print(f"clv: error: {mask_text(str(exc))}", file=sys.stderr)
                return exc.exit_code
            raise
        except KeyboardInterrupt:
            print("clv: interrupted", file=sys.stderr)
            return 130


def run() -> None:
    """The ``clv`` command: :func:`main` with the cycle collector run less often, and the process ended without
    tearing the interpreter down once the command has returned (:mod:`pipeline.interpreter`)."""
    from pipeline.interpreter import exit_now, fewer_collections

    fewer_collections()
    exit_now(main())


if __name__ == "__main__":
    run()
