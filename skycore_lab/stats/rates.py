"""Delivery rates with Wilson score intervals (:func:`delivery_rates`)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .. import columns as col
from . import inputs as _in
from ..distributed.engine import fold_partitions, is_dask
from .windows import check_window, windowed_outcomes

__all__ = ["delivery_rates", "rate_counts", "rates_from_counts"]


def delivery_rates(
    deliveries: pd.DataFrame, by=(col.CARRIER,), confidence: float = 0.95, exclude_pending: bool = False, *,
    settle_s: float | None = None, as_of=None,
) -> pd.DataFrame:  # fmt: skip
    """Delivery rate per group with Wilson score intervals.

    By default every send counts, with its outcome as known now: the rate
    of a finished experiment. While sends are still young, pass
    ``settle_s``: only sends whose outcome window has closed count
    (:mod:`skycore_lab.stats.windows`), so that the rate is not pulled down
    by young sends that are pending only because it is early.

    Parameters
    ----------
    deliveries : DataFrame or dask DataFrame
        One row per send; needs ``outcome`` and the ``by`` columns. A dask
        frame is folded on its cluster into counts per group
        (:func:`rate_counts`); only those come back, and the rates are
        computed here, as for pandas (:func:`rates_from_counts`).
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
    settle_s : float, optional
        Count only sends at least ``settle_s`` old at ``as_of`` (from the
        request), and as delivered only those delivered within
        ``settle_s`` — the rate :func:`compare_arms` compares. Without any
        time column every send counts.
    as_of : timestamp-like, optional
        The moment of the look for ``settle_s``; default the latest time in
        the frame.

    Returns
    -------
    DataFrame
        One row per group with at least one counted send (groups with zero
        sends are absent, never NaN rows), in sorted key order; no sends
        give an empty frame with these columns:

        ``<by…>``
            The group keys.
        ``sent`` : int
            Sends counted in the rate (pending included unless excluded;
            with ``settle_s``, the settled sends only).
        ``delivered``, ``failed``, ``pending`` : int
            Sends by outcome; ``failed`` counts every failure outcome
            (failed, expired, rejected, not_supported). ``pending`` is
            reported even when excluded from ``sent``. With ``settle_s``:
            among the settled sends, delivered within the window, failed,
            and neither (still pending, or delivered after the window).
        ``rate`` : float
            ``delivered / sent``.
        ``ci_low``, ``ci_high`` : float
            Wilson score interval of the rate (``scipy.stats.binomtest``).
    """
    keys = _in.column_list(by, "by")
    confidence = _in.check_level(confidence, "confidence")
    if is_dask(deliveries):  # counts per partition on the cluster; the rates here, below
        counts = fold_partitions(deliveries, rate_counts, keys, settle_s=settle_s, resolve_as_of=True, as_of=as_of)
    else:
        counts = rate_counts(_in.check_frame(deliveries), keys, settle_s=settle_s, as_of=as_of)
    return rates_from_counts(counts, keys, confidence, exclude_pending)


def rate_counts(deliveries: pd.DataFrame, keys: tuple[str, ...], *, settle_s: float | None = None,
                as_of=None) -> pd.DataFrame:  # fmt: skip
    """The sufficient statistics of :func:`delivery_rates`: counted sends by outcome, per group.

    Returns
    -------
    DataFrame
        ``<keys…>``, ``delivered``, ``failed``, ``pending`` (int64): one row
        per group of the frame (missing keys form their own group), the
        counts among the sends counted (``settle_s``: the settled ones, as in
        :func:`delivery_rates`). Folds of several frames add up.
    """
    frame = deliveries
    if len(frame) == 0:  # no sends, nothing to require
        return _in.empty_frame(keys, (col.DELIVERED, col.FAILED, col.PENDING), (col.DELIVERED, col.FAILED, col.PENDING))
    _in.require(frame, keys, "to group by")
    outcome = _in.outcomes(frame)
    delivered = outcome == col.OUTCOME_DELIVERED
    failed = np.isin(outcome, col.FAILURE_OUTCOMES)
    pending = outcome == col.OUTCOME_PENDING
    if settle_s is not None:
        window = check_window(settle_s, "settle_s")
        windowed = windowed_outcomes(frame, outcome, col.TOTAL_LATENCY_S, window, as_of, need_latency=False,
                                     untimed_pending="count", stacklevel=4)  # fmt: skip
        counted = windowed.counted
        delivered = windowed.within
        failed = failed & counted
        pending = counted & ~delivered & ~failed
        frame = frame.loc[counted]
        delivered, failed, pending = delivered[counted], failed[counted], pending[counted]
    flags = pd.DataFrame({col.DELIVERED: delivered, col.FAILED: failed, col.PENDING: pending}, index=frame.index)
    if not keys:
        return flags.sum().to_frame().T.astype("int64") if len(flags) else flags.iloc[:0].astype("int64")
    flags = pd.concat([frame[list(keys)], flags], axis=1)
    grouped = flags.groupby(list(keys), dropna=False, observed=True, sort=True)
    return grouped[[col.DELIVERED, col.FAILED, col.PENDING]].sum().astype("int64").reset_index()


def rates_from_counts(counts: pd.DataFrame, keys: tuple[str, ...], confidence: float = 0.95,
                      exclude_pending: bool = False) -> pd.DataFrame:  # fmt: skip
    """:func:`delivery_rates` from its sufficient statistics (:func:`rate_counts`, of one frame or added up).

    Rows of the same group (folds of several partitions) are added first;
    the result is :func:`delivery_rates`'s, in sorted key order.
    """
    empty = _in.empty_frame(keys, col.RATE_COLUMNS, (col.SENT, col.DELIVERED, col.FAILED, col.PENDING))
    if len(counts) == 0:
        return empty
    sums = [col.DELIVERED, col.FAILED, col.PENDING]
    if keys:
        counts = counts.groupby(list(keys), dropna=False, observed=True, sort=True)[sums].sum().reset_index()
    else:
        counts = counts[sums].sum().to_frame().T
    rows = []
    for values in counts[[*keys, *sums]].itertuples(index=False):
        *key, n_delivered, n_failed, n_pending = values
        n_delivered, n_failed, n_pending = int(n_delivered), int(n_failed), int(n_pending)
        sent = n_delivered + n_failed + (0 if exclude_pending else n_pending)
        if sent == 0:
            continue
        low, high = _in.wilson(n_delivered, sent, confidence)
        rows.append((*key, sent, n_delivered, n_failed, n_pending, n_delivered / sent, low, high))
    if not rows:
        return empty
    result = pd.DataFrame(rows, columns=[*keys, *col.RATE_COLUMNS])
    return result.astype({col.SENT: "int64", col.DELIVERED: "int64", col.FAILED: "int64", col.PENDING: "int64"})
