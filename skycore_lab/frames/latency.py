"""Every latency skycore-lab reports, defined once: which time starts the clock, which stops it.

=================  =====================  ==========================================  =========================
column             stops at               starts at (first one known)                 censored from
=================  =====================  ==========================================  =========================
``latency_s``      ``delivered_at``       ``sent_at`` (N101)                          ``sent_at``, else
                                                                                      ``requested_at``, else
                                                                                      ``first_event_at``
``total_latency_s``  ``delivered_at``     ``requested_at`` (the API request), else    ``requested_at``, else
                                          ``first_event_at``                          ``first_event_at``
``ddm_latency_s``  ``ddm_delivered_at``   ``ddm_sent_at`` (N501)                      ``ddm_sent_at``
=================  =====================  ==========================================  =========================

:func:`latency_seconds` computes a latency from a frame's time columns (the
deliveries, the sending-statistics report and the sandbox's truth all call
it); :func:`clock_start` gives the time a send's clock started, which is
where the statistics censor an undelivered send from
(:func:`skycore_lab.censored_latencies`). The report's definitions of the
latencies are :attr:`Latency.description`.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from .. import columns as col
from ..exceptions import SkycoreValidationError
from .times import as_utc

__all__ = ["Latency", "LATENCIES", "latency_seconds", "clock_start"]


@dataclass(frozen=True)
class Latency:
    """One latency: the time column that stops its clock and those that start it.

    Attributes
    ----------
    column : str
        The latency column, seconds (float).
    end : str
        The time column that stops the clock.
    starts : tuple of str
        The time columns that start it, the first one present and known
        per row.
    censor_starts : tuple of str
        Where the clock of a send that was never delivered started, for
        censoring: a send that never reached N101 still waited since its
        request.
    description : str
        The definition, in words (shown in reports).
    """

    column: str
    end: str
    starts: tuple[str, ...]
    censor_starts: tuple[str, ...]
    description: str


LATENCIES: dict[str, Latency] = {
    col.LATENCY_S: Latency(
        col.LATENCY_S, col.DELIVERED_AT, (col.SENT_AT,), (col.SENT_AT, col.REQUESTED_AT, col.FIRST_EVENT_AT),
        "Seconds from the N101 'Message Sent' notification to the delivery report (delivered sends).",
    ),
    col.TOTAL_LATENCY_S: Latency(
        col.TOTAL_LATENCY_S, col.DELIVERED_AT, (col.REQUESTED_AT, col.FIRST_EVENT_AT),
        (col.REQUESTED_AT, col.FIRST_EVENT_AT),
        "Seconds from the API request (the manifest's requested_at; else the first notification) to the "
        "delivery report: includes any DDM wait.",
    ),
    col.DDM_LATENCY_S: Latency(
        col.DDM_LATENCY_S, col.DDM_DELIVERED_AT, (col.DDM_SENT_AT,), (col.DDM_SENT_AT,),
        "Seconds from the DDM being sent (N501) to its delivery report (N502).",
    ),
}


def _first_known(frame: pd.DataFrame, names: tuple[str, ...]) -> pd.Series:
    present = [name for name in names if name in frame.columns]
    if len(present) == 1:  # the common case: no filling needed (the statistics call this at every look)
        return as_utc(frame[present[0]], present[0], naive="utc")
    start = pd.Series(pd.NaT, index=frame.index, dtype=col.DATETIME_DTYPE)
    for name in present:
        start = start.fillna(as_utc(frame[name], name, naive="utc"))
    return start


def _definition(column: str) -> Latency:
    try:
        return LATENCIES[column]
    except KeyError:
        raise SkycoreValidationError(
            "column", f"{column!r} is not a latency skycore-lab defines ({', '.join(LATENCIES)})"
        ) from None


def latency_seconds(frame: pd.DataFrame, column: str) -> pd.Series:
    """The latency ``column`` of each row, in seconds (NaN when either end is unknown).

    ``frame`` needs the latency's ``end`` column and any of its ``starts``
    (:data:`LATENCIES`); time columns may be tz-aware or ISO-8601 text.
    """
    latency = _definition(column)
    if latency.end not in frame.columns:
        return pd.Series(float("nan"), index=frame.index, dtype="float64")
    end = as_utc(frame[latency.end], latency.end, naive="utc")
    return (end - _first_known(frame, latency.starts)).dt.total_seconds().astype("float64")


def clock_start(frame: pd.DataFrame, column: str) -> pd.Series:
    """When the clock of latency ``column`` started for each send, delivered or not (NaT when unknown).

    The first known of the latency's ``censor_starts``; a column that is not
    one of :data:`LATENCIES` (a latency the caller computed) is taken to
    run from the send, like ``latency_s``. Raises
    :class:`~skycore_lab.SkycoreValidationError` when ``frame`` has none of
    those columns.
    """
    latency = LATENCIES.get(column, LATENCIES[col.LATENCY_S])
    present = [name for name in latency.censor_starts if name in frame.columns]
    if not present:
        raise SkycoreValidationError(
            latency.censor_starts[0],
            "undelivered sends are censored at their last known time, which needs a start time: "
            f"deliveries has none of the columns {list(latency.censor_starts)}",
        )
    return _first_known(frame, latency.censor_starts)
