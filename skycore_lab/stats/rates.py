"""Delivery rates with Wilson score intervals (:func:`delivery_rates`)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .. import columns as col
from . import inputs as _in

__all__ = ["delivery_rates"]


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
        return _in.empty_frame(keys, col.RATE_COLUMNS, (col.SENT, col.DELIVERED, col.FAILED, col.PENDING))
    _in.require(frame, keys, "to group by")
    outcome = _in.outcomes(frame)
    delivered = outcome == col.OUTCOME_DELIVERED
    failed = np.isin(outcome, col.FAILURE_OUTCOMES)
    pending = outcome == col.OUTCOME_PENDING
    rows = []
    for key, pos in _in.groups(frame, keys):
        n_delivered, n_failed, n_pending = int(delivered[pos].sum()), int(failed[pos].sum()), int(pending[pos].sum())
        sent = n_delivered + n_failed + (0 if exclude_pending else n_pending)
        if sent == 0:
            continue
        low, high = _in.wilson(n_delivered, sent, confidence)
        rows.append((*key, sent, n_delivered, n_failed, n_pending, n_delivered / sent, low, high))
    result = pd.DataFrame(rows, columns=[*keys, *col.RATE_COLUMNS])
    return result.astype({col.SENT: "int64", col.DELIVERED: "int64", col.FAILED: "int64", col.PENDING: "int64"})
