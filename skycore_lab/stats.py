"""Statistics that tell the truth about MMS delivery.

Delivery rates with Wilson intervals (:func:`delivery_rates`), latency
quantiles that count undelivered sends as censored rather than dropping them
(:func:`latency_summary`, :func:`censored_latencies`), A/B comparisons of
arms with multiple-comparison control and optional always-valid sequential
inference (:func:`compare_arms`), and sample-size planning
(:func:`plan_sample_size`, :func:`power`).

The statistics are scipy's (``binomtest``'s Wilson interval,
``fisher_exact``, ``ecdf`` on ``CensoredData``, ``logrank``,
``bootstrap``); written here are only what scipy lacks: Holm's adjustment,
the Kaplan–Meier quantile's confidence bounds, and the mixture SPRT
(:mod:`skycore_lab._sequential`). Each is checked against simulations in
``tests/test_stats_*.py``.

Every function reads only the columns it needs (``outcome``, the latency
column, the grouping or arm columns, and the time columns when censoring
needs them), so deliveries from any source work.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import _stats_input as _in
from . import columns as col
from ._compare import (  # noqa: F401  (re-exported: compare_arms' column names and vocabularies)
    CONTROL,
    CONTROL_ESTIMATE,
    ARM_ESTIMATE,
    COMPARISON_COLUMNS,
    CONTROL_LABELS,
    DIFF,
    METRIC,
    METRIC_DELIVERED_WITHIN,
    METRIC_DELIVERY_RATE,
    METRIC_LATENCY,
    METRICS,
    N_ARM,
    N_CONTROL,
    P_ADJUSTED,
    P_VALUE,
    REL_DIFF,
    SIGNIFICANT,
    TEST,
    TEST_FISHER,
    TEST_LOGRANK,
    TEST_MSPRT,
    TEST_Z,
    compare_arms,
)
from ._planning import CORRECTIONS, adjust_p_values, plan_sample_size, power  # noqa: F401
from ._stats_input import LatencyDataWarning
from ._survival import km_quantiles

__all__ = [
    "censored_latencies",
    "delivery_rates",
    "latency_summary",
    "compare_arms",
    "adjust_p_values",
    "plan_sample_size",
    "power",
    "LatencyDataWarning",
]

# --- column names of the frames made here (candidates for columns.py) --------------
DURATION_S = "duration_s"
OBSERVED = "observed"
CENSORED_COLUMNS: tuple[str, ...] = (DURATION_S, OBSERVED)

N = "n"
P50 = "p50"
P90 = "p90"
P99 = "p99"
KM_P50 = "km_p50"
KM_P50_LOW = "km_p50_low"
KM_P50_HIGH = "km_p50_high"
KM_P90 = "km_p90"
KM_P90_LOW = "km_p90_low"
KM_P90_HIGH = "km_p90_high"
LATENCY_SUMMARY_COLUMNS: tuple[str, ...] = (
    N, col.DELIVERED, P50, P90, P99, KM_P50, KM_P50_LOW, KM_P50_HIGH, KM_P90, KM_P90_LOW, KM_P90_HIGH,
)  # fmt: skip

def _empty(keys, names, int_columns) -> pd.DataFrame:
    """A frame with no rows: key columns (object), counts (int64), the rest float."""
    columns = {key: pd.Series(dtype=object) for key in keys}
    columns |= {name: pd.Series(dtype="int64" if name in int_columns else float) for name in names}
    return pd.DataFrame(columns)


# ====================================================================================
# Censoring
# ====================================================================================
def censored_latencies(deliveries: pd.DataFrame, column: str = col.LATENCY_S, as_of=None) -> pd.DataFrame:
    """Latency of every send, delivered or not, as right-censored data.

    An undelivered send is information: it tells us its latency exceeds the
    time we waited. This turns each send into ``(duration_s, observed)``.

    * delivered → observed at ``column`` (``latency_s`` by default);
    * failed, expired, rejected, not_supported → censored at
      ``failed_at − start``;
    * pending → censored at ``as_of − start``;

    where start is ``sent_at``, else ``requested_at``, else
    ``first_event_at`` (for ``total_latency_s``: ``requested_at``, else
    ``first_event_at``).

    Censoring a failure at its failure time assumes the failure says nothing
    about how long delivery would have taken; the Kaplan–Meier curve then
    estimates how long delivery takes, not the share of all sends delivered
    by a time t (failures never are): for that, use :func:`delivery_rates` or
    ``compare_arms(metric="delivered_within")``.

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
        latest timestamp anywhere in the frame's time columns
        (``requested_at``, ``first_event_at``, ``sent_at``, ``delivered_at``,
        ``failed_at``): the last moment the data know about. Naive
        timestamps (here and in the frame) are taken as UTC.

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


# ====================================================================================
# Delivery rates
# ====================================================================================
def _groups(frame: pd.DataFrame, keys: tuple[str, ...]):
    """(key tuple, positions) for each non-empty group, in sorted key order."""
    if not keys:
        return [((), np.arange(len(frame)))] if len(frame) else []
    grouped = frame.groupby(list(keys), dropna=False, observed=True, sort=True)
    return [(key if isinstance(key, tuple) else (key,), pos) for key, pos in grouped.indices.items()]


def delivery_rates(
    deliveries: pd.DataFrame, by=(col.CARRIER,), confidence: float = 0.95, exclude_pending: bool = False
) -> pd.DataFrame:
    """Delivery rate per group with Wilson score intervals.

    Parameters
    ----------
    deliveries : DataFrame
        One row per send; needs ``outcome`` and the ``by`` columns.
    by : str or sequence of str
        Grouping columns; ``()`` gives one overall row. Missing key values
        form their own group rather than being dropped.
    confidence : float
        Confidence level of the interval.
    exclude_pending : bool
        Leave pending sends out of ``sent``. The default counts them as not
        delivered, the conservative choice: a carrier that sends no delivery
        receipts leaves delivered messages "pending" forever, and excluding
        them would report that carrier on its few receipts only.

    Returns
    -------
    DataFrame
        One row per group with at least one counted send (groups with zero
        sends are absent, never NaN rows), in sorted key order; no sends
        give an empty frame with these columns:

        ``<by…>``
            The group keys.
        ``sent`` : int
            Sends counted in the rate (pending included unless excluded).
        ``delivered``, ``failed``, ``pending`` : int
            Sends by outcome; ``failed`` counts every failure outcome
            (failed, expired, rejected, not_supported). ``pending`` is
            reported even when excluded from ``sent``.
        ``rate`` : float
            ``delivered / sent``.
        ``ci_low``, ``ci_high`` : float
            Wilson score interval of the rate (``scipy.stats.binomtest``).
    """
    frame = _in.check_frame(deliveries)
    keys = _in.column_list(by, "by")
    confidence = _in.check_level(confidence, "confidence")
    if len(frame) == 0:  # no sends, nothing to require: the empty answer
        return _empty(keys, col.RATE_COLUMNS, (col.SENT, col.DELIVERED, col.FAILED, col.PENDING))
    _in.require(frame, keys, "to group by")
    outcome = _in.outcomes(frame)
    delivered = outcome == col.OUTCOME_DELIVERED
    failed = np.isin(outcome, col.FAILURE_OUTCOMES)
    pending = outcome == col.OUTCOME_PENDING
    rows = []
    for key, pos in _groups(frame, keys):
        n_delivered, n_failed, n_pending = int(delivered[pos].sum()), int(failed[pos].sum()), int(pending[pos].sum())
        sent = n_delivered + n_failed + (0 if exclude_pending else n_pending)
        if sent == 0:
            continue
        low, high = _in.wilson(n_delivered, sent, confidence)
        rows.append((*key, sent, n_delivered, n_failed, n_pending, n_delivered / sent, low, high))
    result = pd.DataFrame(rows, columns=[*keys, *col.RATE_COLUMNS])
    return result.astype({col.SENT: "int64", col.DELIVERED: "int64", col.FAILED: "int64", col.PENDING: "int64"})


# ====================================================================================
# Latency
# ====================================================================================
def latency_summary(
    deliveries: pd.DataFrame, by=(), column: str = col.LATENCY_S, *, confidence: float = 0.95, as_of=None
) -> pd.DataFrame:
    """Latency quantiles per group, naive and censoring-aware.

    ``p50``/``p90``/``p99`` are quantiles of delivered sends only: what an
    analyst would compute by dropping the rest. They are biased fast — a
    send still pending after ten minutes is not among them. ``km_*`` are
    Kaplan–Meier quantiles (``scipy.stats.ecdf`` on ``CensoredData``) that
    count every undelivered send as censored at its last known time (see
    :func:`censored_latencies`); quantile q is the smallest t with
    F(t) ≥ q, F = 1 − S.

    The bounds invert the curve's pointwise log-log interval
    (Brookmeyer–Crowley): the low bound is the first time the upper band
    reaches q, the high bound the first time the lower band does. Tested:
    with 30 % censoring the 95 % interval covers the true median of a
    log-normal latency in ≥ 93 % of simulations.

    Parameters
    ----------
    deliveries : DataFrame
        One row per send; see :func:`censored_latencies` for the columns.
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
        One row per group with at least one usable send, sorted by key; no
        sends give an empty frame with these columns:

        ``<by…>``
            The group keys.
        ``n`` : int
            Sends with a known latency or censoring time.
        ``delivered`` : int
            Delivered sends among them (observed latencies).
        ``p50``, ``p90``, ``p99`` : float
            Quantiles of the delivered sends' latency, seconds (NaN if none).
        ``km_p50``, ``km_p90`` : float
            Kaplan–Meier median and 90th percentile, seconds; NaN when the
            curve never reaches the quantile (too many sends undelivered).
        ``km_p50_low``, ``km_p50_high``, ``km_p90_low``, ``km_p90_high`` : float
            Their confidence bounds; a low bound is NaN and a high bound
            ``inf`` when the band never reaches the quantile.
    """
    frame = _in.check_frame(deliveries)
    keys = _in.column_list(by, "by")
    confidence = _in.check_level(confidence, "confidence")
    if len(frame) == 0:
        return _empty(keys, LATENCY_SUMMARY_COLUMNS, (N, col.DELIVERED))
    _in.require(frame, keys, "to group by")
    duration, observed, keep = _in.censor(frame, column, as_of)
    kept = frame.loc[keep]
    duration, observed = duration[keep], observed[keep]
    rows = []
    for key, pos in _groups(kept, keys):
        d, o = duration[pos], observed[pos]
        delivered = d[o]
        naive = np.quantile(delivered, [0.5, 0.9, 0.99]) if delivered.size else [np.nan] * 3
        (m, m_lo, m_hi), (p, p_lo, p_hi) = km_quantiles(d, o, (0.5, 0.9), confidence)
        rows.append((*key, len(pos), int(o.sum()), *map(float, naive), m, m_lo, m_hi, p, p_lo, p_hi))
    result = pd.DataFrame(rows, columns=[*keys, *LATENCY_SUMMARY_COLUMNS])
    return result.astype({N: "int64", col.DELIVERED: "int64"})
