from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from pipeline.config import Config, config_as_dict, load_config, parse_config, read_yaml
from pipeline.errors import ConfigError
from tests.conftest import REPO
from tests.feeds import RETAIL_MAPPING


def test_default_yaml_equals_built_in_defaults() -> None:
    assert load_config(REPO / "configs" / "default.yaml") == Config()
    assert load_config(None) == Config()


def test_defaults_are_the_cdnow_split_in_weeks() -> None:
    config = Config()
    assert config.data.source == "cdnow_master"
    assert config.prepare.calibration_end == dt.date(1997, 9, 30)
    assert config.prepare.observation_end is None  # the last transaction date: 1998-06-30 for CDNOW
    assert (config.prepare.period, config.prepare.time_unit) == ("day", "week")
    assert config.scoring_spec().time_unit == "week"
    assert config.tracking.model_name == "clv"


def test_paper_config_loads() -> None:
    config = load_config(REPO / "configs" / "cdnow-sample-paper.yaml")
    assert config.data.source == "cdnow_sample"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"prepare": {"calibraton_end": "1997-09-30"}}, r"^config: prepare\.calibraton_end: unknown key$"),
        (
            {"prepare": {"time_unit": "fortnight"}},
            r"^config: prepare\.time_unit: Input should be 'day', 'week'",
        ),
        ({"prepare": {"calibration_end": "soon"}}, r"^config: prepare\.calibration_end: .*'soon'"),
        ({"score": {"annual_discount_rate": -1}}, r"^config: score\.annual_discount_rate: "),
        (
            {"score": {"risk_tiers": [{"name": "a", "upper": 0.9}]}},
            r"risk_tiers must have strictly increasing",
        ),
        (
            {"validate": {"criteria": [{"metric": "churn_auc", "threshold": 0.7, "direction": "up"}]}},
            r"^config: validate\.criteria\.0\.direction: ",
        ),
        ({"data": {"source": "csv"}}, r"data\.path is required when data\.source is 'csv'"),
        ({"prepare": {"calibration_end": "1998-01-01", "observation_end": "1997-01-01"}}, r"must be after"),
        ([1, 2], r"expected a mapping at the top level"),
        ({"prepare": {"timezone": "Mars/Olympus"}}, r"prepare\.timezone: unknown time zone 'Mars/Olympus'"),
        ({"prepare": {"returns": "keep"}}, r"prepare\.returns: "),
        ({"data": {"columns": {"quantity": "q"}}}, r"quantity and data\.columns\.unit_price go together"),
        ({"data": {"columns": {"amount": "a", "quantity": "q", "unit_price": "p"}}}, r"not both"),
        ({"data": {"source": "duckdb", "path": "x.duckdb"}}, r"data\.table is required"),
        ({"data": {"source": "sql"}}, r"data\.query is required"),
        ({"engine": {"name": "spark", "shuffle_partitions": 0}}, r"^config: engine\.shuffle_partitions: "),
        ({"engine": {"name": "flink"}}, r"^config: engine\.name: Input should be 'duckdb' or 'spark'"),
        (
            {"engine": {"name": "spark"}, "data": {"source": "sql", "query": "SELECT 1"}},
            r"data\.source 'sql' runs in DuckDB and is not supported with engine\.name 'spark'",
        ),
        (
            {"engine": {"name": "spark"}, "data": {"source": "duckdb", "path": "x.duckdb", "table": "t"}},
            r"data\.source 'duckdb' runs in DuckDB",
        ),
        (
            {"data": {"source": "spark_table", "table": "db.tx"}},
            r"data\.source 'spark_table' needs engine\.name 'spark'",
        ),
        ({"engine": {"name": "spark"}, "data": {"source": "spark_table"}}, r"data\.table is required"),
    ],
)
def test_wrong_keys_and_values_are_named(raw: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(raw)


def test_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("prepare: [unclosed\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: invalid YAML at line"):
        load_config(bad)
    for text in ("", "# only a comment\n"):
        bad.write_text(text)
        with pytest.raises(ConfigError, match=r"bad\.yaml: the config file is empty"):
            load_config(bad)


@pytest.mark.parametrize(
    ("written", "problem"),
    [("1997-02-30", "day value is outside expected range"), ("2022-31-06", "month value is outside expected range")],
)
def test_an_impossible_unquoted_date_names_its_key(tmp_path: Path, written: str, problem: str) -> None:
    """YAML itself raised on an unquoted impossible date (a traceback, exit 1); the key's type now judges it."""
    path = tmp_path / "dates.yaml"
    path.write_text(f"prepare: {{calibration_end: {written}}}\n")
    with pytest.raises(ConfigError, match=rf"dates\.yaml: prepare\.calibration_end: .*{problem}.*'{written}'"):
        load_config(path)


def test_unquoted_dates_and_times_read_as_before(tmp_path: Path) -> None:
    path = tmp_path / "dates.yaml"
    path.write_text("prepare: {calibration_end: 1997-09-30, observation_end: '1998-06-30'}\n")
    config = load_config(path)
    assert (config.prepare.calibration_end, config.prepare.observation_end) == (
        dt.date(1997, 9, 30),
        dt.date(1998, 6, 30),
    )
    assert read_yaml("a: 1997-09-30\nb: 2001-12-14 21:59:43\nc: 3\nd: yes\n") == {
        "a": "1997-09-30",
        "b": "2001-12-14 21:59:43",
        "c": 3,
        "d": True,
    }


def test_relative_data_path_resolves_next_to_the_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "tx.csv").write_text("customer_id,timestamp,amount\n")
    config_file = tmp_path / "c.yaml"
    config_file.write_text("data: {source: csv, path: tx.csv}\n")
    monkeypatch.chdir(REPO)
    assert load_config(config_file).data.path == (tmp_path / "tx.csv").resolve()


def test_config_dump_uses_the_file_spelling() -> None:
    dumped = config_as_dict(Config())
    assert "validate" in dumped
    assert parse_config(dumped) == Config()


def test_fit_candidates_and_their_errors() -> None:
    config = parse_config({"fit": {"candidates": [{"model": "bgnbd"}, {"model": "pareto_nbd", "method": "map"}]}})
    assert [c.name for c in config.fit.candidate_list()] == ["bgnbd_mle", "pareto_nbd_map"]
    assert [c.name for c in Config().fit.candidate_list()] == ["bgnbd_mle"]
    with pytest.raises(ConfigError, match=r"fit.candidates.0.model: Input should be 'bgnbd', 'mbgnbd' or 'pareto_nbd'"):
        parse_config({"fit": {"candidates": [{"model": "nbd"}]}})
    with pytest.raises(ConfigError, match=r"set fit\.candidates, or fit\.purchase_model and fit\.method, not both"):
        parse_config({"fit": {"method": "map", "candidates": [{"model": "bgnbd"}]}})
    with pytest.raises(ConfigError, match="lists the same model and method twice"):
        parse_config({"fit": {"candidates": [{"model": "bgnbd"}, {"model": "bgnbd", "method": "mle"}]}})
    with pytest.raises(ConfigError, match=r"fit\.interval"):
        parse_config({"fit": {"interval": [0.9, 0.1]}})
    with pytest.raises(ConfigError, match=r"fit\.mcmc\.chains: Input should be greater than or equal to 2"):
        parse_config({"fit": {"mcmc": {"chains": 1}}})
    assert Config().fit.selection_direction is None


def test_spark_example_config_loads() -> None:
    config = load_config(REPO / "configs" / "spark-example.yaml")
    assert (config.engine.name, config.engine.master, config.data.source) == ("spark", "local[2]", "cdnow_master")
    table = parse_config({"engine": {"name": "spark"}, "data": {"source": "spark_table", "table": "db.tx"}})
    assert (table.engine.name, table.data.source, table.data.table) == ("spark", "spark_table", "db.tx")


def test_spend_model_none_reads_no_amounts() -> None:
    config = parse_config({"fit": {"spend_model": "none"}})
    assert not config.has_spend
    columns = config.resolved().data.columns
    assert (columns.amount, columns.quantity, columns.unit_price) == (None, None, None)
    assert parse_config({}).has_spend
    assert parse_config({}).resolved().data == parse_config({}).data
    assert parse_config({}).resolved().fit.spend_model == "gamma_gamma"


def test_gamma_gamma_needs_an_amount_column() -> None:
    with pytest.raises(
        ConfigError, match=r"fit\.spend_model 'gamma_gamma' needs amounts, but data\.columns\.amount is null"
    ):
        parse_config(
            {"data": {"source": "cdnow_sample", "columns": {"amount": None}}, "fit": {"spend_model": "gamma_gamma"}}
        )


def test_a_quantity_mapping_survives_a_round_trip() -> None:
    """`clv score` rebuilt the training mapping from model_dump(): the default amount came along with
    quantity and unit_price, and pydantic refused the pair (a traceback, exit 1)."""
    config = parse_config({"data": {"source": "csv", "path": "train.csv", "columns": RETAIL_MAPPING}})
    columns = config.data.columns
    assert (columns.amount, columns.uses_quantity, columns.has_amounts) == (None, True, True)
    assert parse_config({"data": {"source": "csv", "path": "train.csv", "columns": columns.model_dump()}}) == config
    assert parse_config(config_as_dict(config)) == config
    scoring = config.data.pointed_at("parquet", Path("score.parquet"))
    assert (scoring.source, scoring.path, scoring.columns) == ("parquet", Path("score.parquet"), columns)
    assert scoring.timestamp_format is None


def test_pointed_at_keeps_exactly_the_users_mapping_and_options() -> None:
    raw = {
        "source": "csv",
        "path": "t.csv",
        "columns": {"customer_id": "id", "amount": "total"},
        "csv": {"delimiter": ";"},
        "timestamp_format": "%d.%m.%Y",
    }
    config = parse_config({"data": raw}).data
    again = config.pointed_at("csv", Path("other.csv"))
    assert again == config.model_copy(update={"path": Path("other.csv")})
    assert again.columns.model_fields_set == {"customer_id", "amount"}
    duckdb_source = parse_config({"data": {"source": "duckdb", "path": "x.duckdb", "table": "t"}}).data
    assert duckdb_source.pointed_at("csv", Path("x.csv")).table is None


def test_event_feeds_have_no_amount() -> None:
    """An event feed (date,id) maps no amount: refused before ('needs amount, or quantity and unit_price')."""
    config = parse_config(
        {"data": {"source": "csv", "path": "e.csv", "columns": {"customer_id": "id", "amount": None}}}
    )
    assert (config.data.columns.amount, config.data.columns.has_amounts) == (None, False)
    assert Config().data.columns.has_amounts is True
    assert parse_config(config_as_dict(config)) == config


def test_duplicate_key() -> None:
    config = parse_config({"prepare": {"duplicate_key": ["InvoiceNo", "StockCode"]}})
    assert config.prepare.duplicate_key == ("InvoiceNo", "StockCode")
    assert Config().prepare.duplicate_key is None
    for key, message in [
        ([], r"prepare\.duplicate_key: must list one or more distinct column names"),
        (["a", "a"], r"prepare\.duplicate_key: must list one or more distinct column names"),
        ("InvoiceNo", r"prepare\.duplicate_key: Input should be a valid tuple"),
    ]:
        with pytest.raises(ConfigError, match=message):
            parse_config({"prepare": {"duplicate_key": key}})
    with pytest.raises(ConfigError, match=r"duplicate_key has no effect with prepare\.duplicates 'keep'"):
        parse_config({"prepare": {"duplicate_key": ["a"], "duplicates": "keep"}})


def test_an_event_feed_has_no_spend_model() -> None:
    config = parse_config({"data": {"source": "csv", "path": "e.csv", "columns": {"amount": None}}})
    assert not config.has_spend
    assert config.fit.spend_model is None
    assert config.resolved().fit.spend_model == "none"
    assert parse_config({"data": {"source": "csv", "path": "e.csv"}}).has_spend


def test_config_hash_of_the_defaults() -> None:
    from pipeline.config import config_hash

    # the defaults as they were when the config was one module (the scoring and MCMC defaults now read from
    # ScoringSpec and Sampler): the same hash, so runs before and after compare as reruns
    assert config_hash(Config()) == "3d3f0c42be459abf199a750431af9fa18ba87cc7a0d55003af24d67da7f3bc16"
    assert config_hash(parse_config({"fit": {"purchase_penalizer": 0.1}})) != config_hash(Config())


def test_business_type_defaults_to_non_contractual_and_is_written_only_when_set() -> None:
    from pipeline.config import config_as_dict, config_hash

    assert Config().business.type == "non_contractual"
    assert "type" not in config_as_dict(Config())["business"]  # type: ignore[operator]
    contractual = parse_config({"business": {"type": "contractual", "billing_period": "week"}})
    dumped = config_as_dict(contractual)["business"]
    assert isinstance(dumped, dict)
    assert dumped["type"] == "contractual"
    assert dumped["billing_period"] == "week"
    assert parse_config(config_as_dict(contractual)) == contractual
    assert config_hash(contractual) != config_hash(Config())
    assert contractual.business.churn_risk_periods == 13  # 90 days of weeks
    assert parse_config({"business": {"type": "contractual"}}).business.churn_risk_periods == 3  # of months
    assert Config().business.discount_rate_per_period(0.1) == pytest.approx(1.1 ** (30.4375 / 365.25) - 1)
    with pytest.raises(ConfigError, match=r"business.type: Input should be 'non_contractual', 'contractual' or"):
        parse_config({"business": {"type": "saas"}})


def test_number_separators_go_to_scoring_and_into_the_hash() -> None:
    from pipeline.config import config_hash

    european = parse_config({"data": {"source": "csv", "path": "e.csv", "csv": {"decimal": ",", "thousands": "."}}})
    scored = european.data.pointed_at("csv", Path("new.csv"))  # clv score --input
    assert (scored.csv.decimal, scored.csv.thousands) == (",", ".")
    plain = parse_config({"data": {"source": "csv", "path": "e.csv"}})
    assert config_hash(european) != config_hash(plain)
    assert "decimal" not in config_as_dict(plain)["data"]["csv"]  # type: ignore[index]
