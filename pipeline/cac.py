"""Acquisition cost per customer (CAC) for the business views: a flat cost, a file of costs, or of channels."""

from __future__ import annotations

import pandas as pd

from models.contract import ContractError, canonical_ids
from pipeline.config import BusinessConfig
from pipeline.errors import InputError

__all__ = ["read_cac"]


def read_cac(business: BusinessConfig, customers: pd.Series) -> pd.Series | None:
    """Acquisition cost per customer (indexed by customer_id) from the business config, or None."""
    if business.cac is not None:
        return pd.Series(business.cac, index=pd.Index(customers.to_numpy(), name="customer_id"), name="cac")
    if business.cac_file is None:
        return None
    path = business.cac_file
    if not path.is_file():
        raise InputError(f"{path}: CAC file not found (business.cac_file)")
    try:
        frame = pd.read_csv(path, dtype={"customer_id": str})
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise InputError(f"{path}: cannot read CAC file: {str(exc).splitlines()[0]}") from None
    if "customer_id" not in frame.columns or not ({"cac", "channel"} & set(frame.columns)):
        raise InputError(f"{path}: needs columns customer_id and cac, or customer_id and channel")
    try:  # the feed's id rule: " 0001 " and "0001" are one customer, "12.0" is "12"
        ids = canonical_ids(frame["customer_id"])
    except ContractError as exc:
        raise InputError(f"{path}: {exc}") from None
    frame = frame.assign(customer_id=ids)
    repeated = frame["customer_id"][frame["customer_id"].duplicated()]
    if not repeated.empty:
        raise InputError(f"{path}: customer_id {repeated.iloc[0]!r} appears more than once")
    if "cac" in frame.columns:
        cac = pd.to_numeric(frame["cac"], errors="coerce")
        if cac.isna().any() or (cac < 0).any():
            raise InputError(f"{path}: column 'cac' must hold non-negative numbers")
    else:
        unknown = sorted(set(frame["channel"].astype(str)) - set(business.cac_by_channel))
        if unknown:
            raise InputError(f"{path}: channel(s) without a cost in business.cac_by_channel: {', '.join(unknown[:5])}")
        cac = frame["channel"].astype(str).map(business.cac_by_channel).astype(float)
    return pd.Series(cac.to_numpy(), index=pd.Index(frame["customer_id"], name="customer_id"), name="cac")
