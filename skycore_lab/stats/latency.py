"""Latency with censoring: every undelivered send counts (:func:`censored_latencies`),
and the time to delivery among delivered sends (:func:`latency_summary`)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .. import columns as col
from ..columns import DURATION_S, LATENCY_SUMMARY_COLUMNS, N, OBSERVED, SENDS
from ..distributed.engine import fold_partitions, is_dask
from . import inputs as _in
from .survival import km_quantiles

__all__ = ["censored_latencies", "latency_summary", "latency_counts", "latency_from_counts", "format_seconds", "NOT_REACHED"]


def censored_latencies(deliveries: pd.DataFrame, column: str = col.LATENCY_S, as_of=None) -> pd.DataFrame:
    """Latency of every send, delivered or not, as right-censored data.

    An undelivered send is information: it tells us its latency exceeds the
    time we waited. This turns each send into ``(duration_s, observed)``.

    * delivered → observed at ``column`` (``latency_s`` by default);
    * failed, expired, rejected, not_supported → censored at
      ``failed_at − start``;
    * pending → censored at ``as_of − start``;

    where start is when the latency's clock started
    (:func:`skycore_lab.frames.latency.clock_start`: for ``latency_s`` the
    send's ``sent_at``, else ``requested_at``, else ``first_event_at``).

    Censoring a failure at its failure time assumes the failure says nothing
    about how long delivery would have taken; the Kaplan–Meier curve then
    estimates how long delivery would take if nothing failed, not the share
    of all sends delivered by a time t (failures never are): for that, use
    :func:`cumulative_incidence` (failures as a competing event).

    Parameters
    ----------
    deliveries : DataFrame
        One row per send; needs ``outcome`` and ``column``, and — only when
        there are undelivered rows — a start time column, ``failed_at`` for
        failures, and a time column or ``as_of`` for pending sends.
    column : str
        The latency column for delivered sends, in seconds.
    as_of : timestamp-like, optional
        When pending sends were last known to be pending. Defaults to the
        last moment the data know about
        (:func:`skycore_lab.frames.times.latest_time`). Naive timestamps
        (here and in the frame) are taken as UTC.

    Returns
    -------
    DataFrame
        Indexed like ``deliveries`` (minus dropped rows), columns:

        ``duration_s`` : float
            Latency (observed) or time waited without delivery (censored), s.
        ``observed`` : bool
            True when the send was delivered.

    Warns
    -----
    LatencyDataWarning
        Rows whose duration is unknown (a delivered send without latency, a
        failure without ``failed_at``, no start time) are dropped; negative
        durations (clock skew) are set to 0. One warning says how many.

    Raises
    ------
    SkycoreValidationError
        A needed column is missing or unreadable, or an outcome is unknown.
    """
    frame = _in.check_frame(deliveries)
    if len(frame) == 0:
        return pd.DataFrame(
            {DURATION_S: pd.Series(dtype=float), OBSERVED: pd.Series(dtype=bool)}, index=frame.index[:0]
        )
    duration, observed, keep = _in.censor(frame, column, as_of)
    return pd.DataFrame({DURATION_S: duration[keep], OBSERVED: observed[keep]}, index=frame.index[keep])


def latency_summary(
    deliveries: pd.DataFrame, by=(), column: str = col.LATENCY_S, *, confidence: float = 0.95, as_of=None
) -> pd.DataFrame:
    """Time to delivery among delivered sends, per group: naive and Kaplan–Meier quantiles.

    What the quantiles measure: **the time to delivery of the sends that are
    delivered** — failures excluded (a failed send has no delivery time),
    pending sends censored at their age (they may still deliver). They say
    how fast delivery is when it happens, not how many sends are delivered
    by a time t: for that, the share delivered with failures as a competing
    event, use :func:`cumulative_incidence` (its plateau is the delivery
    rate).

    ``p50``/``p90``/``p99`` are quantiles of delivered sends only: what an
    analyst would compute by dropping the rest. They are biased fast — a
    send still pending after ten minutes is not among them. ``km_*`` are
    Kaplan–Meier quantiles (``scipy.stats.ecdf`` on ``CensoredData``) that
    count every pending send as censored at its last known time (see
    :func:`censored_latencies`); quantile q is the smallest t with
    F(t) ≥ q, F = 1 − S. A quantile the curve never reaches is NaN in the
    frame and "not reached" in text (:func:`format_seconds`).

    The bounds invert the curve's pointwise log-log interval
    (Brookmeyer–Crowley): the low bound is the first time the upper band
    reaches q, the high bound the first time the lower band does. Tested:
    with 30 % censoring the 95 % interval covers the true median of a
    log-normal latency in ≥ 93 % of simulations.

    Parameters
    ----------
    deliveries : DataFrame or dask DataFrame
        One row per send; see :func:`censored_latencies` for the columns. A
        dask frame is folded on its cluster into each group's distinct
        durations with their counts (:func:`latency_counts`: exact values,
        not rounded), pending sends censored at the whole frame's latest
        time; the quantiles are computed here (:func:`latency_from_counts`),
        equal to the pandas path's.
    by : str or sequence of str
        Grouping columns; ``()`` (default) gives one overall row.
    column : str
        Latency column (``latency_s``, ``total_latency_s``, ...).
    confidence : float
        Confidence level of the KM bounds.
    as_of : timestamp-like, optional
        Censoring time of pending sends; see :func:`censored_latencies`.

    Returns
    -------
    DataFrame
        One row per group, sorted by key; no sends give an empty frame with
        these columns:

        ``<by…>``
            The group keys.
        ``n`` : int
            Delivered and pending sends with a known latency or censoring
            time (failures are not counted; 0 for a group of failures only,
            whose quantiles are then NaN).
        ``delivered`` : int
            Delivered sends among them (observed latencies).
        ``p50``, ``p90``, ``p99`` : float
            Quantiles of the delivered sends' latency, seconds (NaN if none).
        ``km_p50``, ``km_p90`` : float
            Kaplan–Meier median and 90th percentile of the time to delivery,
            seconds, pending sends censored, failures excluded; NaN when the
            curve never reaches the quantile (too many sends still pending).
        ``km_p50_low``, ``km_p50_high``, ``km_p90_low``, ``km_p90_high`` : float
            Their confidence bounds; a low bound is NaN and a high bound
            ``inf`` when the band never reaches the quantile.
    """
    keys = _in.column_list(by, "by")
    confidence = _in.check_level(confidence, "confidence")
    if is_dask(deliveries):  # latency value counts per partition on the cluster; the quantiles here, below
        counts = fold_partitions(deliveries, latency_counts, keys, column, fold=True, resolve_as_of=True, as_of=as_of)
    else:
        counts = latency_counts(_in.check_frame(deliveries), keys, column, as_of=as_of)
    return latency_from_counts(counts, keys, confidence)


def latency_counts(deliveries: pd.DataFrame, keys: tuple[str, ...], column: str = col.LATENCY_S, as_of=None, *,
                   fold: bool = False) -> pd.DataFrame:  # fmt: skip
    """The sufficient statistics of :func:`latency_summary`: each group's durations with their counts.

    Parameters
    ----------
    fold : bool
        Count each distinct (group, duration, observed) once (a partition's
        fold: the exact values, not rounded, so the quantiles equal the
        pandas path's). False: one row per send, count 1 (the pandas path,
        which needs no folding).

    Returns
    -------
    DataFrame
        ``<keys…>``, ``duration_s`` (float), ``observed`` (bool), ``sends``
        (int64): a failure or a send without a usable duration is a row with
        ``sends`` 0 and a missing duration, so that every group of the
        frame has a row (a group of failures only gets its summary row).
    """
    frame = deliveries
    names = [*keys, DURATION_S, OBSERVED, SENDS]
    if len(frame) == 0:
        return _in.empty_frame(keys, (DURATION_S, OBSERVED, SENDS), (SENDS,))[names]
    _in.require(frame, keys, "to group by")
    # Failures have no delivery time: out before any time column is asked for
    # (a group of failures only still gets its row, with n = 0).
    not_failed = ~np.isin(_in.outcomes(frame), col.FAILURE_OUTCOMES)
    usable = np.zeros(len(frame), bool)
    duration = np.full(len(frame), np.nan)
    observed = np.zeros(len(frame), bool)
    if not_failed.any():
        d, o, keep = _in.censor(frame.loc[not_failed], column, as_of)
        usable[not_failed] = keep
        duration[not_failed], observed[not_failed] = d, o
    table = pd.DataFrame({DURATION_S: np.where(usable, duration, np.nan), OBSERVED: observed & usable,
                          SENDS: usable.astype("int64")}, index=frame.index)  # fmt: skip
    table = pd.concat([frame[list(keys)], table], axis=1) if keys else table
    if fold:
        grouped = table.groupby([*keys, DURATION_S, OBSERVED], dropna=False, observed=True, sort=False)
        table = grouped[SENDS].sum().reset_index()
    return table[names].reset_index(drop=True)


def latency_from_counts(counts: pd.DataFrame, keys: tuple[str, ...], confidence: float = 0.95) -> pd.DataFrame:
    """:func:`latency_summary` from its sufficient statistics (:func:`latency_counts`, of one frame or several).

    Each group's durations are its values repeated by their counts: the
    naive and Kaplan–Meier quantiles depend on the multiset of values only,
    so the result is the pandas path's to the last bit.
    """
    if len(counts) == 0:
        return _in.empty_frame(keys, LATENCY_SUMMARY_COLUMNS, (N, col.DELIVERED))
    duration = counts[DURATION_S].to_numpy(dtype=float, na_value=np.nan)
    observed = counts[OBSERVED].to_numpy(dtype=bool)
    sends = counts[SENDS].to_numpy(dtype="int64")
    rows = []
    for key, pos in _in.groups(counts, keys):
        pos = pos[sends[pos] > 0]
        d, o = np.repeat(duration[pos], sends[pos]), np.repeat(observed[pos], sends[pos])
        delivered = d[o]
        naive = np.quantile(delivered, [0.5, 0.9, 0.99]) if delivered.size else [np.nan] * 3
        (m, m_lo, m_hi), (p, p_lo, p_hi) = km_quantiles(d, o, (0.5, 0.9), confidence)
        rows.append((*key, len(d), int(o.sum()), *map(float, naive), m, m_lo, m_hi, p, p_lo, p_hi))
    result = pd.DataFrame(rows, columns=[*keys, *LATENCY_SUMMARY_COLUMNS])
    return result.astype({N: "int64", col.DELIVERED: "int64"})


#: What :func:`format_seconds` writes for a quantile the curve never reaches.
NOT_REACHED = "not reached"


def format_seconds(value, digits: int = 0) -> str:
    """Seconds as text for summaries: ``"42 s"``, ``"∞"``, or "not reached" for NaN (an unreached quantile)."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return NOT_REACHED
    value = float(value)
    if np.isinf(value):
        return "∞"
    return f"{value:,.{digits}f} s"
