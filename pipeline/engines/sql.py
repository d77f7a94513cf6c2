"""The rules of :mod:`pipeline.engines.rules` rendered to SQL, once, for DuckDB and Spark.

A :class:`Dialect` holds the few spellings where DuckDB and Spark SQL differ (string literals, quoted
names, the text type, regular expressions, trimming, week starts, non-finite numbers); everything else
here is written once: the id rule (:func:`id_sql`), the quarantine reasons in their order
(:func:`reason_case`), returns and signed values, the classified rows (:func:`classified_sql`), the
quarantined rows (:func:`quarantine_sql`) and their count per day (:func:`quarantined_days_sql`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pipeline.config import PrepareConfig
from pipeline.engines.rules import ID_PATTERN_ANCHORED, Rule, quarantine_rules
from pipeline.engines.source_columns import REASON, Layout, quarantine_names
from pipeline.engines.timestamps import EPOCH_LIMIT_SECONDS, SAMPLE_SIZE

__all__ = [
    "DUCKDB",
    "SPARK",
    "Dialect",
    "classified_sql",
    "duckdb_id",
    "epoch_timestamp_sql",
    "id_sql",
    "period_sql",
    "plain_id_sql",
    "plain_id_test",
    "quarantine_sql",
    "quarantined_days_sql",
    "reason_case",
    "spark_id",
    "text_timestamp",
    "timestamp_sample_sql",
    "unreadable_timestamp_sql",
]


@dataclass(frozen=True)
class Dialect:
    """How one SQL dialect spells what the rules need."""

    name: str
    text: str
    """The text type (``VARCHAR``, ``STRING``)."""
    quote: str
    """The identifier quote (``"``, `````)."""
    null_text: str
    """A NULL of the text type."""
    backslash_escapes: bool
    """Whether string literals unescape backslashes (Spark does: they are doubled)."""

    def string(self, text: str) -> str:
        """A string literal."""
        if self.backslash_escapes:
            return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"
        return "'" + text.replace("'", "''") + "'"

    def identifier(self, name: str) -> str:
        return self.quote + name.replace(self.quote, self.quote * 2) + self.quote

    def double(self, value: float) -> str:
        """A DOUBLE literal."""
        return f"double('{value!r}')" if self.name == "spark" else repr(value)

    def not_finite(self, column: str) -> str:
        if self.name == "spark":
            return f"isnan({column}) OR abs({column}) = double('Infinity')"
        return f"NOT isfinite({column})"

    def matches(self, text: str, pattern: str) -> str:
        """Whether ``text`` matches the regular expression ``pattern`` anywhere."""
        if self.name == "spark":
            return f"{text} RLIKE {self.string(pattern)}"
        return f"regexp_matches({text}, {self.string(pattern)})"

    def starts_with(self, text: str, prefix: str) -> str:
        return f"{'startswith' if self.name == 'spark' else 'starts_with'}({text}, {self.string(prefix)})"

    def ascii_trim(self, text: str) -> str:
        """``text`` without ASCII spaces at either end. Spark's ``trim`` removes only those; DuckDB's
        one-argument trim also removes Unicode spaces, and trimming only where there is a space at an end
        costs half of trimming every id."""
        if self.name == "spark":
            return f"trim({text})"
        return f"CASE WHEN {text} LIKE ' %' OR {text} LIKE '% ' THEN trim({text}, ' ') ELSE {text} END"

    def week(self, column: str) -> str:
        """The Monday of the week holding the date ``column``."""
        return f"trunc({column}, 'week')" if self.name == "spark" else f"date_trunc('week', {column})::DATE"


DUCKDB = Dialect("duckdb", "VARCHAR", '"', "NULL", backslash_escapes=False)
SPARK = Dialect("spark", "STRING", "`", "CAST(NULL AS STRING)", backslash_escapes=True)


def period_sql(dialect: Dialect, column: str, period: str) -> str:
    """The first day of the period (``day`` or ``week``) holding the date ``column`` (:func:`rules.period_start`)."""
    return column if period == "day" else dialect.week(column)


def id_sql(dialect: Dialect, column: str) -> str:
    """The id in ``column`` as compared and reported (NULL when empty), by the id rule of
    :mod:`pipeline.engines.rules`.

    Most ids have no space at either end and no dot: such an id is its own text, and testing that first
    spares the trim, the LIKE and the regex of the rule (DuckDB, 50M ids: 0.95 s instead of 2.2 s to hash
    them all; prepare hashes every id once per pass over the input). ``NULLIF`` is taken in each branch,
    not around the ``CASE``: DuckDB evaluates a ``NULLIF`` argument twice.
    """
    raw = f"CAST({column} AS {dialect.text})"
    text = dialect.ascii_trim(raw)
    whole = dialect.matches(text, ID_PATTERN_ANCHORED)
    rule = f"CASE WHEN {text} LIKE '%.%0' AND {whole} THEN split_part({text}, '.', 1) ELSE {text} END"
    plain, plain_id = plain_id_test(dialect, column), plain_id_sql(dialect, column)
    return f"CASE WHEN {plain} THEN {plain_id} ELSE NULLIF({rule}, '') END"


def plain_id_test(dialect: Dialect, column: str) -> str:
    """True where the id in ``column`` is its own text under the id rule: no space at either end, no dot
    (NULL where the id is NULL). Where it holds, :func:`id_sql` is :func:`plain_id_sql`."""
    raw = f"CAST({column} AS {dialect.text})"
    return f"NOT ({raw} LIKE ' %' OR {raw} LIKE '% ' OR contains({raw}, '.'))"


def plain_id_sql(dialect: Dialect, column: str) -> str:
    """:func:`id_sql` of an id for which :func:`plain_id_test` holds: its text, NULL when empty."""
    return f"NULLIF(CAST({column} AS {dialect.text}), '')"


def duckdb_id(column: str) -> str:
    """:func:`id_sql` in DuckDB."""
    return id_sql(DUCKDB, column)


def spark_id(column: str) -> str:
    """:func:`id_sql` in Spark SQL."""
    return id_sql(SPARK, column)


def _predicate(dialect: Dialect, rule: Rule) -> str:
    column, value = rule.column, rule.value
    if rule.test == "missing":
        return f"{column} IS NULL"
    if rule.test == "not_finite":
        return f"{column} IS NULL OR {dialect.not_finite(column)}"
    if rule.test in ("abs_at_least", "abs_above"):
        assert isinstance(value, float)
        return f"abs({column}) {'>=' if rule.test == 'abs_at_least' else '>'} {dialect.double(value)}"
    if rule.test in ("day_before", "day_after"):
        return f"CAST({column} AS DATE) {'<' if rule.test == 'day_before' else '>'} DATE '{value}'"
    if rule.test == "zero":
        return f"{column} = 0"
    return column


def reason_case(dialect: Dialect, rules: tuple[Rule, ...]) -> str:
    """The quarantine ``reason`` of a classified row: the first rule that applies, NULL when none does."""
    whens = " ".join(f"WHEN {_predicate(dialect, rule)} THEN '{rule.reason}'" for rule in rules)
    return f"CASE {whens} ELSE NULL END"


def _value_sql(columns: Mapping[str, str], layout: Layout) -> str:
    if not layout.has_amounts:
        return "CAST(0 AS DOUBLE)"  # an event feed: every row is a purchase, and nothing is spent
    if "quantity" in columns:
        return "TRY_CAST(quantity AS DOUBLE) * TRY_CAST(unit_price AS DOUBLE)"
    return "TRY_CAST(amount AS DOUBLE)"


def classified_sql(
    dialect: Dialect,
    columns: Mapping[str, str],
    layout: Layout,
    config: PrepareConfig,
    *,
    raw_ts: str,
    ts: str,
    duplicate: str,
    rows: str,
    plain_ids: bool = False,
) -> str:
    """Every input row (from ``rows``, a FROM clause) with its parsed values and a quarantine ``reason``
    (NULL when used). The engine gives how it reads the timestamp (``raw_ts`` as given, ``ts`` parsed)
    and how it finds duplicates (``duplicate``, a boolean expression); ``plain_ids`` when it knows that every
    id passes :func:`plain_id_test` (the id is then :func:`plain_id_sql`, as :func:`id_sql` would give)."""
    order = id_sql(dialect, "order_id") if layout.has_order else dialect.null_text
    cancelled = (
        f"coalesce({dialect.starts_with(order, config.cancel_prefix)}, false)"
        if layout.has_order and config.cancel_prefix and layout.has_amounts
        else "false"
    )
    raw = ", ".join(dialect.identifier(c) for c in columns)
    return f"""
        SELECT *,
               CASE WHEN is_return THEN -abs(raw_value) ELSE raw_value END AS value,
               {reason_case(dialect, quarantine_rules(config, layout.has_amounts))} AS reason
        FROM (
            SELECT *, (raw_value < 0 OR {cancelled}) AS is_return
            FROM (
                SELECT {raw},
                       {(plain_id_sql if plain_ids else id_sql)(dialect, "customer_id")} AS cid,
                       {raw_ts} AS raw_ts,
                       {ts} AS ts,
                       {_value_sql(columns, layout)} AS raw_value,
                       {order} AS order_key,
                       {duplicate} AS is_duplicate
                FROM {rows}
            )
        )
    """


def quarantine_sql(dialect: Dialect, classified: str, layout: Layout) -> str:
    """The quarantined rows: every source column as text under its own name, and the ``reason``."""
    names = quarantine_names(layout.names)
    raw = ", ".join(
        f"CAST({dialect.identifier(c)} AS {dialect.text}) AS {dialect.identifier(name)}" for c, name in names.items()
    )
    return f"SELECT {raw}, reason AS {REASON} FROM ({classified}) WHERE reason IS NOT NULL"


def quarantined_days_sql(classified: str, ignored: str) -> str:
    """The quarantined rows of ``classified`` per day of their timestamp as the engine read it (``ts``; NULL: not
    readable), every reason but ``ignored``: ``day``, ``n``. The same text in both dialects. A day outside Python's
    dates (before the year 1, after 9999: DuckDB hands it over as text, and a monitor period never holds it) is
    counted on the nearest one."""
    # greatest and least skip NULLs in both dialects: a row without a timestamp keeps its NULL day by the CASE
    day = "CASE WHEN ts IS NOT NULL THEN least(greatest(CAST(ts AS DATE), DATE '0001-01-01'), DATE '9999-12-31') END"
    return f"""SELECT {day} AS day, count(*) AS n FROM ({classified})
               WHERE reason IS NOT NULL AND reason <> '{ignored}' GROUP BY {day}"""


def text_timestamp(dialect: Dialect, column: str) -> str:
    """The timestamp as trimmed text, NULL when empty."""
    return f"NULLIF(trim(CAST({column} AS {dialect.text})), '')"


def timestamp_sample_sql(dialect: Dialect, table: str, parsed: str) -> str:
    """The sample format detection looks at (:mod:`pipeline.engines.timestamps`): the distinct text
    timestamps ``v`` with the :data:`SAMPLE_SIZE` smallest MD5 (which both engines compute alike), and
    ``ok``, whether the engine's own reading (``parsed``, an expression of ``v``) reads each."""
    text = text_timestamp(dialect, dialect.identifier("timestamp"))
    return f"""SELECT v, {parsed} IS NOT NULL AS ok FROM (
                SELECT DISTINCT {text} AS v FROM {table}
            ) WHERE v IS NOT NULL ORDER BY md5(v), v LIMIT {SAMPLE_SIZE}"""


def epoch_timestamp_sql(dialect: Dialect, text: str, per_second: int, zone: str) -> str:
    """The timestamp in ``text``, a number of units since 1970-01-01 UTC (``per_second`` of them a second), as
    the wall time in ``zone`` (Spark: the session's zone, which is prepare.timezone); NULL when it is not a
    number or lies beyond :data:`~pipeline.engines.timestamps.EPOCH_LIMIT_SECONDS`."""
    seconds = f"(TRY_CAST({text} AS DOUBLE) / {per_second})"
    inside = f"CASE WHEN abs({seconds}) < {EPOCH_LIMIT_SECONDS:g} THEN {seconds} END"
    if dialect.name == "spark":
        return f"timestamp_seconds({inside})"
    return f"timezone({dialect.string(zone)}, to_timestamp({inside}))"


def unreadable_timestamp_sql(dialect: Dialect, classified: str) -> str:
    """One timestamp that could not be read (the smallest), for the "no usable transactions" hint."""
    return f"SELECT min(CAST(raw_ts AS {dialect.text})) AS v FROM ({classified}) WHERE reason = 'invalid_timestamp'"
