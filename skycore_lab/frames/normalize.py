"""Normalising frames for the analysis: text columns, delivery dtypes, places, clock skew.

Helpers shared by :func:`skycore_lab.deliveries`,
:func:`skycore_lab.handset_profiles` and :func:`skycore_lab.read_sending_report`,
which all return frames of the same shape.
"""

from __future__ import annotations

import warnings
from typing import Literal

import numpy as np
import pandas as pd

from .. import columns as col
from ..exceptions import ClockSkewWarning, SkycoreValidationError
from ..reference import carrier_and_country
from .grouped import as_text, text_codes
from .latency import LATENCIES
from .times import as_utc

__all__ = [
    "NegativeLatency",
    "as_text",
    "check_negative_latency",
    "handle_negative_latencies",
    "fill_place",
    "finish_delivery_dtypes",
    "sorted_categorical",
]

#: What to do with negative latencies (see :func:`skycore_lab.deliveries`).
NegativeLatency = Literal["warn", "clip", "nan"]
_NEGATIVE_LATENCY_POLICIES = ("warn", "clip", "nan")

#: Delivery columns held as (unordered) categoricals: small vocabularies.
_CATEGORICAL_DELIVERY_COLUMNS = (col.CARRIER, col.COUNTRY, col.SENT_AS, col.FINAL_CODE)
_TEXT_DELIVERY_COLUMNS = (col.TRACKING_ID, col.TO, col.MMS_ID, col.SENDER, col.SPID, col.HANDSET)
_DATETIME_DELIVERY_COLUMNS = (col.REQUESTED_AT, col.FIRST_EVENT_AT, col.SENT_AT, col.DELIVERED_AT, col.FAILED_AT)


def check_negative_latency(negative_latency: str) -> None:
    if negative_latency not in _NEGATIVE_LATENCY_POLICIES:
        raise SkycoreValidationError(
            "negative_latency", f"must be one of {', '.join(_NEGATIVE_LATENCY_POLICIES)}, got {negative_latency!r}"
        )


def handle_negative_latencies(frame: pd.DataFrame, policy: str, what: str = "sends") -> None:
    """Apply the negative-latency policy to the latency columns of ``frame`` in place."""
    negative = pd.Series(False, index=frame.index)
    for name in LATENCIES:
        if name in frame.columns:
            negative |= frame[name] < 0
    count = int(negative.sum())
    if not count:
        return
    if policy == "warn":
        examples = ", ".join(frame.loc[negative, col.TRACKING_ID].astype("str").head(3))
        warnings.warn(
            f"{count} {what} have a negative latency (a later step stamped before an earlier one: clock skew "
            f"between systems), e.g. tracking id(s) {examples}; kept as is — pass negative_latency='clip' "
            "or 'nan' to change that",
            ClockSkewWarning,
            stacklevel=3,
        )
        return
    for name in LATENCIES:
        if name in frame.columns:
            below = frame[name] < 0
            frame.loc[below, name] = 0.0 if policy == "clip" else np.nan


def fill_place(frame: pd.DataFrame) -> None:
    """Fill a missing ``carrier`` or ``country`` from the row's SPID and number (in place).

    Events already carry both (:func:`skycore_lab.read_postbacks` looks them
    up once, at read time), so this only reaches rows the events could not
    place: a manifest row without events has no SPID, but its number still
    tells the country, so pending sends count in per-country statistics; a
    sending report names the carrier but not the country. One look-up for
    all of them (:func:`skycore_lab.reference.carrier_and_country`).
    """
    need = frame[col.CARRIER].isna() | frame[col.COUNTRY].isna()
    if not need.any():
        return
    carrier, country = carrier_and_country(
        frame.loc[need, col.SPID], frame.loc[need, col.TO], country_from_number=True
    )
    for name, found in ((col.CARRIER, carrier), (col.COUNTRY, country)):
        values = pd.Series(np.asarray(found.astype(object)), index=frame.index[need], dtype=object)
        frame.loc[need, name] = frame.loc[need, name].astype(object).fillna(values)


def finish_delivery_dtypes(frame: pd.DataFrame, *, text_ready: bool = False) -> pd.DataFrame:
    """Give the delivery columns of ``frame`` their documented dtypes.

    ``text_ready``: the caller built the text columns with :func:`as_text`
    already (``str``, stripped, blanks missing), so they are left as they are.
    """
    for name in () if text_ready else _TEXT_DELIVERY_COLUMNS:
        frame[name] = as_text(frame[name])
    for name in _CATEGORICAL_DELIVERY_COLUMNS:
        frame[name] = sorted_categorical(frame[name])
    for name in _DATETIME_DELIVERY_COLUMNS:
        frame[name] = as_utc(frame[name], name)
    for name in LATENCIES:
        frame[name] = frame[name].astype("float64")
    frame[col.OUTCOME] = pd.Categorical(frame[col.OUTCOME], categories=col.OUTCOMES, ordered=True)
    frame[col.DDM] = pd.Categorical(frame[col.DDM], categories=col.DDM_STATES, ordered=True)
    return frame


def sorted_categorical(series: pd.Series) -> pd.Categorical:
    """``as_text(series)`` as a categorical whose categories are its distinct values, sorted."""
    codes, categories = text_codes(series)
    used = np.zeros(len(categories) + 1, dtype=bool)
    used[codes] = True  # code -1 marks the extra last slot
    renumber = np.append(np.cumsum(used[:-1]) - 1, -1)
    return pd.Categorical.from_codes(renumber[codes], categories=categories[used[:-1]])
