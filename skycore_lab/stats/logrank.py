"""The log-rank test of time to delivery between arms (:func:`logrank_test`).

A test of the whole curves, without an estimate or interval of its own:
use it beside ``compare_arms(metric="latency")``, whose test and interval
estimate the same quantity. Delivery is the event; failures and pending
sends are censored (:func:`censored_latencies`), so the null hypothesis is
equal hazards of delivery among the sends not yet delivered or failed.
The statistic is scipy's (:func:`scipy.stats.logrank`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from .. import columns as col
from ..columns import CONTROL, N_ARM, N_CONTROL, P_ADJUSTED, P_VALUE, TEST_STATISTIC
from ..exceptions import SkycoreWarning
from . import inputs as _in
from .compare import control_index, arm_labels
from .planning import adjust_p_values, check_correction
from .results import TestResult

__all__ = ["LogrankResult", "logrank_test"]


@dataclass(frozen=True, repr=False, eq=False)
class LogrankResult(TestResult):
    """Log-rank tests of every treatment arm against the control.

    Attributes
    ----------
    summary : DataFrame
        One row per treatment arm: ``<arm>``, ``control``,
        ``test_statistic`` (scipy's standardised statistic), ``p_value``,
        ``p_adjusted`` (across arms), ``n_control``, ``n_arm``.
    p_value : float
        The smallest adjusted p-value (NaN without a comparison).
    """

    table: pd.DataFrame
    correction: str

    _title = "log-rank test of time to delivery (failures and pending sends censored)"

    @property
    def summary(self) -> pd.DataFrame:
        return self.table

    @property
    def p_value(self) -> float:
        values = self.table[P_ADJUSTED].to_numpy(dtype=float)
        return float(np.nanmin(values)) if np.isfinite(values).any() else float("nan")

    @property
    def test_statistic(self) -> np.ndarray:
        return self.table[TEST_STATISTIC].to_numpy(dtype=float)

    def _details(self) -> list[tuple[str, str]]:
        return [("comparisons", str(len(self.table))), ("correction", self.correction),
                ("smallest p_adjusted", f"{self.p_value:.4g}")]  # fmt: skip


def logrank_test(
    deliveries: pd.DataFrame, arm: str = col.ARM, control=None, *, column: str = col.LATENCY_S, as_of=None,
    correction: str | None = "holm",
) -> LogrankResult:  # fmt: skip
    """Log-rank test of each treatment arm's time to delivery against the control's.

    Parameters
    ----------
    deliveries : DataFrame
        One row per send; see :func:`censored_latencies` for the columns.
    arm, control
        As :func:`compare_arms`.
    column : str
        Latency column.
    as_of : timestamp-like, optional
        Censoring time of pending sends.
    correction : {"holm", "bonferroni", "bh", "none", None}
        Adjustment across the treatment arms.

    Returns
    -------
    LogrankResult
    """
    frame = _in.check_frame(deliveries)
    method = check_correction(correction)
    _in.require(frame, [arm], "to tell the arms apart")
    codes, labels = arm_labels(frame[arm], arm)
    if (codes < 0).any():
        warnings.warn(f"left out {int((codes < 0).sum())} send(s) with no {arm!r} label", SkycoreWarning, stacklevel=2)
    columns = [arm, CONTROL, TEST_STATISTIC, P_VALUE, P_ADJUSTED, N_CONTROL, N_ARM]
    if len(labels) < 2:
        return LogrankResult(pd.DataFrame({name: pd.Series(dtype=object) for name in columns}), method)
    control_at = control_index(labels, control)
    labelled = frame.loc[codes >= 0]
    censored = _in.censor(labelled, column, as_of)
    duration, observed, keep = censored
    codes = codes[codes >= 0][keep]
    duration, observed = duration[keep], observed[keep]
    mine = codes == control_at
    rows = []
    for i, label in enumerate(labels):
        if i == control_at:
            continue
        theirs = codes == i
        statistic = p_value = float("nan")
        if theirs.any() and mine.any() and (observed[theirs].any() or observed[mine].any()):
            result = stats.logrank(
                x=stats.CensoredData(uncensored=duration[theirs & observed], right=duration[theirs & ~observed]),
                y=stats.CensoredData(uncensored=duration[mine & observed], right=duration[mine & ~observed]),
            )
            statistic, p_value = float(result.statistic), float(result.pvalue)
        rows.append({arm: label, CONTROL: labels[control_at], TEST_STATISTIC: statistic, P_VALUE: p_value,
                     N_CONTROL: int(mine.sum()), N_ARM: int(theirs.sum())})  # fmt: skip
    table = pd.DataFrame(rows)
    table[P_ADJUSTED] = adjust_p_values(table[P_VALUE].to_numpy(dtype=float), method)
    return LogrankResult(table[columns], method)
