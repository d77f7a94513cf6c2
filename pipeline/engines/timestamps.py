"""Timestamp format detection: which strptime format a text timestamp column is written in.

Without ``data.timestamp_format``, each engine reads text timestamps with its own detection (ISO dates
and times, with or without an offset, and compact ``yyyymmdd``). Exports from spreadsheets and
point-of-sale systems often write ``12/1/2010 8:26`` instead, which that detection cannot read, so every
row would be quarantined as ``invalid_timestamp``. Both engines therefore take a sample of the distinct
text values (the same sample: the :data:`SAMPLE_SIZE` values with the smallest MD5, which DuckDB and
Spark compute alike) and, when their own parsing fails on any of them, ask :func:`detect_format` for a
format from :data:`CANDIDATE_FORMATS` that reads every sampled value.

The check is plain Python (``datetime.strptime``), so that both engines choose the same format from the
same sample. The candidates are limited to directives that DuckDB's ``strptime`` and Spark's translated
pattern read alike (numbers with or without leading zeros, English month names, AM/PM); two-digit years
are left out on purpose, because the engines put them in different centuries.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence

from pipeline.errors import InputError

__all__ = [
    "CANDIDATE_FORMATS",
    "EPOCH_FORMATS",
    "OFFSET_PATTERN",
    "SAMPLE_SIZE",
    "detect_format",
    "epoch_units_per_second",
    "unreadable_hint",
]

OFFSET_PATTERN = r"[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?\s*([+-][0-9]{2}(:?[0-9]{2})?|Z|UTC)$"
"""A text timestamp that ends in a UTC offset: both engines convert it to ``prepare.timezone``."""
SAMPLE_SIZE = 10_000
"""Distinct text values looked at."""

CANDIDATE_FORMATS: tuple[str, ...] = (
    # month first (US)
    "%m/%d/%Y %H:%M",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y %I:%M %p",
    "%m/%d/%Y %I:%M:%S %p",
    "%m/%d/%Y",
    "%m-%d-%Y %H:%M",
    "%m-%d-%Y %H:%M:%S",
    "%m-%d-%Y",
    # day first (most of the world)
    "%d/%m/%Y %H:%M",
    "%d/%m/%Y %H:%M:%S",
    "%d/%m/%Y",
    "%d-%m-%Y %H:%M",
    "%d-%m-%Y %H:%M:%S",
    "%d-%m-%Y",
    "%d.%m.%Y %H:%M",
    "%d.%m.%Y %H:%M:%S",
    "%d.%m.%Y",
    # year first, beyond what the engines read themselves
    "%Y/%m/%d %H:%M",
    "%Y.%m.%d",
    "%Y%m%d%H%M%S",
    "%Y%m%d %H%M%S",
    # month names
    "%d %b %Y",
    "%d-%b-%Y",
    "%d %b %Y %H:%M",
    "%d-%b-%Y %H:%M:%S",
    "%b %d %Y",
    "%b %d, %Y",
    "%d %B %Y",
    "%B %d, %Y",
)
"""Formats tried, in this order; the first that reads every sampled value is used."""


EPOCH_FORMATS = {"epoch_s": 1, "%s": 1, "epoch_ms": 1_000, "epoch_us": 1_000_000}
"""``data.timestamp_format`` values for numbers since 1970-01-01 UTC (in seconds, milliseconds or microseconds;
``%s`` is strftime's seconds), with how many make a second. Such a timestamp is an instant: both engines read it
as the wall time in ``prepare.timezone``. Not detected (``20221231`` is a date, ``1672444800`` could be a
time), only hinted at."""
EPOCH_LIMIT_SECONDS = 1e11
"""Epoch values of this many seconds or more (the year 5138) are not timestamps (``invalid_timestamp``)."""


def epoch_units_per_second(timestamp_format: str | None) -> int | None:
    """How many units of an epoch ``data.timestamp_format`` make a second; None for a strptime format."""
    return None if timestamp_format is None else EPOCH_FORMATS.get(timestamp_format)


def _parsed(values: Sequence[str], fmt: str) -> list[dt.datetime] | None:
    """Every value parsed with ``fmt``, or None as soon as one does not parse."""
    out = []
    for value in values:
        try:
            out.append(dt.datetime.strptime(value, fmt))
        except ValueError:
            return None
    return out


def detect_format(sample: Sequence[str], engine_reads_all: bool, source: str = "input") -> str | None:
    """The strptime format to read a text timestamp column with, or None to keep the engine's own parsing.

    ``sample``: distinct, trimmed, non-empty values of the column; ``engine_reads_all``: whether the
    engine's own parsing reads every one of them. None when it does, when the sample is empty, or when
    no candidate reads every value (the rows that cannot be read are then quarantined as
    ``invalid_timestamp``, as before). When two candidates read every value but date some of them
    differently (``1/2/2011``: January 2nd or February 1st?), the column is ambiguous: InputError naming
    both formats and such a value, asking for ``data.timestamp_format``.
    """
    if engine_reads_all or not sample:
        return None
    fits: list[tuple[str, list[dt.datetime]]] = []
    for fmt in CANDIDATE_FORMATS:
        parsed = _parsed(sample, fmt)
        if parsed is not None:
            fits.append((fmt, parsed))
    if not fits:
        return None
    chosen, dates = fits[0]
    for other, other_dates in fits[1:]:
        for value, mine, theirs in zip(sample, dates, other_dates, strict=True):
            if mine != theirs:
                raise InputError(
                    f"{source}: timestamps such as {value!r} read as {chosen!r} ({mine:%Y-%m-%d %H:%M}) "
                    f"or {other!r} ({theirs:%Y-%m-%d %H:%M}); set data.timestamp_format"
                )
    return chosen


def unreadable_hint(value: str | None, given_format: str | None = None) -> str:
    """The hint added to "no usable transactions" when timestamps could not be read; ``given_format``: the
    ``data.timestamp_format`` set in the config, as which they could not be read."""
    if value is None:
        return ""
    if given_format is not None:
        return (
            f"; timestamps such as {value!r} could not be read as data.timestamp_format {given_format!r}: correct "
            "it, or remove it to let the job detect the format"
        )
    if re.fullmatch(r"[+-]?[0-9]{9,16}(\.[0-9]*)?", value.strip()):
        return (
            f"; timestamps such as {value!r} could not be read: numbers since 1970, set data.timestamp_format "
            "to epoch_s, epoch_ms or epoch_us"
        )
    return f"; timestamps such as {value!r} could not be read: set data.timestamp_format (a strptime format)"
