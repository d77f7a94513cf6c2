"""The column contract of a per-customer summary, checked at the boundary before any scoring.

Natural input types are accepted: ``customer_id`` as text or as whole numbers (an int 17850 or a float
17850.0 both become the text "17850", as prepare writes ids), the counts and times as ints or floats.
:func:`check_customer_summary` returns the summary in the types scoring uses (ids as text, numbers as
float64) or raises :class:`ContractError` with one line naming the first column that breaks it.

Why hand-written and not pandera (0.35, measured here): importing it after pandas and mlflow took
0.13-0.6 s, on top of about 0.8 s for loading the model itself (imported first, it also touches
pyspark's pandas layer where pyspark is installed, which warns under pandas 3); its checks of 1M rows
took 0.11-0.34 s against 0.015-0.035 s for these numpy checks; the id rule needs custom code anyway;
and its multi-line reports would still need translating into one line for REST clients.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

__all__ = [
    "CUSTOMER_ID",
    "FLOAT_ID_PATTERN",
    "PURCHASE_COLUMNS",
    "REQUIRED_COLUMNS",
    "SUMMARY_COLUMNS",
    "ContractError",
    "canonical_ids",
    "check_customer_summary",
    "check_history_rules",
    "check_spend_without_repeats",
    "numeric_column",
    "required_columns",
]

CUSTOMER_ID = "customer_id"
PURCHASE_COLUMNS: tuple[str, ...] = ("frequency", "recency", "T")
SUMMARY_COLUMNS: tuple[str, ...] = (*PURCHASE_COLUMNS, "monetary_value")
REQUIRED_COLUMNS: tuple[str, ...] = (CUSTOMER_ID, *SUMMARY_COLUMNS)
FLOAT_ID_PATTERN = r"^[+-]?[0-9]+\.0+$"
"""An id that looks like a whole float (``17850.0``) loses its ``.0...`` part, as prepare does."""
_WHOLE_FLOAT = re.compile(FLOAT_ID_PATTERN.removesuffix("$") + r"\Z")


class ContractError(ValueError):
    """The per-customer summary does not satisfy the column contract."""


def required_columns(spend: bool = True) -> tuple[str, ...]:
    """The input columns: ``monetary_value`` only when the model has a spend model."""
    return REQUIRED_COLUMNS if spend else (CUSTOMER_ID, *PURCHASE_COLUMNS)


def _canonical_text(value: object) -> object:
    """One id as text (None stays None): ASCII spaces trimmed, ``17850.0`` as ``17850``."""
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, bool | np.bool_):
        raise ContractError(f"column '{CUSTOMER_ID}' must hold text or whole numbers, got a boolean")
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        if not np.isfinite(value):
            raise ContractError(f"column '{CUSTOMER_ID}' has infinite values")
        return str(int(value)) if float(value).is_integer() else repr(float(value))
    text = str(value).strip(" ")
    if not text:
        return None
    return text.split(".", 1)[0] if _WHOLE_FLOAT.match(text) else text


def canonical_ids(ids: pd.Series) -> pd.Series:
    """Customer ids as text, whatever their input type; raises ContractError on missing ids."""
    if ids.dtype == object:  # e.g. from JSON: take the vectorised paths when the objects share one type
        inferred = pd.api.types.infer_dtype(ids, skipna=False)
        if inferred == "string":
            ids = ids.astype("str")
        elif inferred == "integer" and all(abs(i) < 2**63 for i in (ids.min(), ids.max())):
            ids = ids.astype(np.int64)
        elif inferred in ("floating", "mixed-integer-float"):
            ids = ids.astype(np.float64)
    kind = ids.dtype.kind
    if kind == "b":
        raise ContractError(f"column '{CUSTOMER_ID}' must hold text or whole numbers, got {ids.dtype}")
    if isinstance(ids.dtype, pd.StringDtype):
        # only ids with a '.' or a space at an end can change (vectorised: prepared ids pass untouched)
        strings = ids.fillna("")
        suspect = (
            strings.str.contains(".", regex=False)
            | strings.str.startswith(" ")
            | strings.str.endswith(" ")
            | (strings == "")
        ).to_numpy(dtype=bool)
        text = ids if not suspect.any() else ids.astype(object).where(~suspect, ids[suspect].map(_canonical_text))
    elif kind in "iu":
        text = ids.astype(str)
    elif kind == "f" and _small_whole_numbers(ids):
        text = ids.astype(np.int64).astype(str)
    elif kind in "fO":
        text = ids.map(_canonical_text)  # fractional floats, NaN, or mixed objects (e.g. from JSON)
    else:
        raise ContractError(f"column '{CUSTOMER_ID}' must hold text or whole numbers, got {ids.dtype}")
    if text.isna().any():
        raise ContractError(f"column '{CUSTOMER_ID}' has null or empty values")
    return text if isinstance(text.dtype, pd.StringDtype) else text.astype(str)


def _small_whole_numbers(values: pd.Series) -> bool:
    """All finite whole numbers that int64 holds exactly (then the fast conversion is exact)."""
    numbers = values.to_numpy(dtype=np.float64, na_value=np.nan)
    with np.errstate(invalid="ignore"):
        return bool((np.abs(numbers) < 2**53).all() and (numbers == np.floor(numbers)).all())


def numeric_column(values: pd.Series, column: str, *, nullable: bool = False, negative: bool = False) -> np.ndarray:
    """``values`` as float64 if they are numbers of any width (ints, floats, numbers in objects; all-null is
    NaN), or ContractError with one line: text, infinity, a null (unless ``nullable``) or a negative value
    (unless ``negative``). Shared by the customer summary and the challenger's features."""
    if values.dtype == object:
        values = values.infer_objects()
        if values.isna().all():
            values = values.astype(np.float64)
    if values.dtype.kind not in "iuf" or not pd.api.types.is_numeric_dtype(values):
        kind = "text" if values.dtype == object or pd.api.types.is_string_dtype(values) else values.dtype
        raise ContractError(f"column '{column}' must be numeric, got {kind}")
    numbers = values.to_numpy(dtype=np.float64, na_value=np.nan)
    if np.isinf(numbers).any():
        raise ContractError(f"column '{column}' has infinite values")
    if not nullable and np.isnan(numbers).any():
        raise ContractError(f"column '{column}' has null or NaN values")
    if not negative and (numbers < 0).any():
        raise ContractError(f"column '{column}' has negative values")
    return numbers


def check_customer_summary(customers: pd.DataFrame, spend: bool = True) -> pd.DataFrame:
    """Check the contract and return the summary in canonical types, or raise ContractError.

    frequency is a whole number >= 0; 0 <= recency <= T; monetary_value >= 0 and finite, and 0 where frequency
    is 0 (only when ``spend``: a model without a spend model does not need it); no column is missing or null; recency is
    0 whenever frequency is 0. The result has the required columns only: ``customer_id`` as text, the
    others as float64, on the input's index.
    """
    columns = required_columns(spend)
    missing = [c for c in columns if c not in customers.columns]
    if missing:
        raise ContractError(f"missing required column(s): {', '.join(missing)}")
    out = {CUSTOMER_ID: canonical_ids(customers[CUSTOMER_ID])}
    for column in columns[1:]:
        out[column] = pd.Series(numeric_column(customers[column], column), index=customers.index, name=column)
    frequency, recency, T = (out[c].to_numpy() for c in PURCHASE_COLUMNS)
    history = {"frequency": frequency, "recency": recency, "T": T}
    check_history_rules(history, whole=("frequency",), ordered=(("recency", "T"),))
    if spend:
        check_spend_without_repeats(frequency, out["monetary_value"].to_numpy())
    return pd.DataFrame(out, index=customers.index)


def check_spend_without_repeats(frequency: np.ndarray, monetary_value: np.ndarray) -> None:
    """``monetary_value`` is the mean spend of the repeat purchases, so 0 without one: a value there is most likely
    a mean over every purchase, the first included, which is not what the spend model was fitted on (and the
    customers with repeats would then be wrong too, where it cannot be seen). ContractError with one line."""
    if ((frequency == 0) & (monetary_value != 0)).any():
        raise ContractError(
            "column 'monetary_value' must be 0 where 'frequency' is 0: it is the mean spend of the repeat purchases "
            "(the first purchase left out)"
        )


def check_history_rules(
    columns: dict[str, np.ndarray], whole: tuple[str, ...], ordered: tuple[tuple[str, str], ...]
) -> None:
    """The rules of a purchase history, shared by every model's summary (``columns`` as numbers, from
    :func:`numeric_column`): the ``whole`` columns hold whole numbers, in each pair of ``ordered`` the first is at
    most the second, and ``recency`` is 0 where ``frequency`` is 0. ContractError with one line naming the column."""
    for name in whole:
        if (columns[name] != np.floor(columns[name])).any():
            raise ContractError(f"column '{name}' must hold whole numbers")
    for low, high in ordered:
        if (columns[low] > columns[high]).any():
            raise ContractError(f"column '{low}' is greater than '{high}' for some customers")
    if ((columns["frequency"] == 0) & (columns["recency"] > 0)).any():
        raise ContractError("column 'recency' must be 0 where 'frequency' is 0")
