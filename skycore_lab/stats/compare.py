"""A/B comparison of experiment arms (:func:`compare_arms`)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
from scipy import stats

from . import inputs as _in
from .. import columns as col
from ..columns import (
    ARM_ESTIMATE,
    COMPARISON_COLUMNS,
    CONTROL,
    CONTROL_ESTIMATE,
    DIFF,
    METRIC,
    N_ARM,
    N_CONTROL,
    P_ADJUSTED,
    P_VALUE,
    REL_DIFF,
    SIGNIFICANT,
    TEST,
)
from .planning import adjust_p_values, check_correction
from .sequential import DEFAULT_MIXTURE_SD, confidence_sequence, msprt_p_value, shrunk_variance
from .survival import km_quantile_of_resamples, km_quantiles, sort_for_km
from ..exceptions import SkycoreValidationError, SkycoreWarning

# --- vocabularies -----------------------------------------------------------------------
METRIC_DELIVERY_RATE = "delivery_rate"
METRIC_LATENCY = "latency"
METRIC_DELIVERED_WITHIN = "delivered_within"
METRICS: tuple[str, ...] = (METRIC_DELIVERY_RATE, METRIC_LATENCY, METRIC_DELIVERED_WITHIN)

TEST_Z = "z_test"
TEST_FISHER = "fisher_exact"
TEST_MSPRT = "msprt"
TEST_LOGRANK = "logrank"

#: Default deadline of ``delivered_within``, seconds: the documented default DDM
#: timeout (5 min) plus as long again for the content to arrive.
DEFAULT_WITHIN_S = 600.0

#: Arm labels taken as the control when ``control`` is not given (case-insensitive).
CONTROL_LABELS: tuple[str, ...] = ("control", "no_ddm", "no-ddm", "none", "baseline")

# Fisher's exact test replaces the z-test when an expected 2×2 cell is below this.
_MIN_EXPECTED = 5.0
# Elements per bootstrap batch (resamples × sends), to bound memory.
_BOOTSTRAP_BATCH_ELEMENTS = 2_000_000


# --- arms --------------------------------------------------------------------------------
def _arm_order(labels: pd.Series) -> list:
    """Arms in category order for a categorical column, else order of appearance."""
    present = labels.dropna()
    if isinstance(labels.dtype, pd.CategoricalDtype):
        seen = set(present.unique())
        return [category for category in labels.cat.categories if category in seen]
    return list(pd.unique(present))


def _control_index(order: list, control) -> int:
    if control is not None:
        for i, label in enumerate(order):
            if label == control:
                return i
        raise SkycoreValidationError("control", f"{control!r} is not one of the arms {order}")
    for i, label in enumerate(order):
        if str(label).strip().lower() in CONTROL_LABELS:
            return i
    return 0


# --- proportions ---------------------------------------------------------------------------
def newcombe_interval(x_c: int, n_c: int, x_a: int, n_a: int, confidence: float) -> tuple[float, float]:
    """Newcombe's hybrid score interval for p_arm − p_control, from two Wilson intervals."""
    p_c, p_a = x_c / n_c, x_a / n_a
    low_c, high_c = _in.wilson(x_c, n_c, confidence)
    low_a, high_a = _in.wilson(x_a, n_a, confidence)
    diff = p_a - p_c
    return (
        diff - math.sqrt((p_a - low_a) ** 2 + (high_c - p_c) ** 2),
        diff + math.sqrt((high_a - p_a) ** 2 + (p_c - low_c) ** 2),
    )


def _two_proportion_p_value(x_c: int, n_c: int, x_a: int, n_a: int) -> tuple[float, str]:
    table = np.array([[x_a, n_a - x_a], [x_c, n_c - x_c]], dtype=float)
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / table.sum()
    if expected.min() < _MIN_EXPECTED:
        return float(stats.fisher_exact(table.astype(int), alternative="two-sided").pvalue), TEST_FISHER
    pooled = (x_a + x_c) / (n_a + n_c)
    z = (x_a / n_a - x_c / n_c) / math.sqrt(pooled * (1.0 - pooled) * (1.0 / n_a + 1.0 / n_c))
    return float(2.0 * stats.norm.sf(abs(z))), TEST_Z


def _compare_proportions(x_c, n_c, x_a, n_a, alpha, sequential, mixture_sd) -> dict:
    estimate_c = x_c / n_c if n_c else math.nan
    estimate_a = x_a / n_a if n_a else math.nan
    row = {CONTROL_ESTIMATE: estimate_c, ARM_ESTIMATE: estimate_a, DIFF: estimate_a - estimate_c}
    if not (n_c and n_a):
        return row | {col.CI_LOW: math.nan, col.CI_HIGH: math.nan, P_VALUE: math.nan, TEST: ""}
    if sequential:
        variance = shrunk_variance(x_c, n_c, x_a, n_a)
        p_value = float(msprt_p_value(row[DIFF], variance, mixture_sd))
        low, high = (float(v) for v in confidence_sequence(row[DIFF], variance, alpha, mixture_sd))
        test = TEST_MSPRT
    else:
        low, high = newcombe_interval(x_c, n_c, x_a, n_a, 1.0 - alpha)
        p_value, test = _two_proportion_p_value(x_c, n_c, x_a, n_a)
    return row | {col.CI_LOW: low, col.CI_HIGH: high, P_VALUE: p_value, TEST: test}


def _within_counts(frame, outcome, column, within_s, as_of) -> tuple[np.ndarray, np.ndarray]:
    """Per send: delivered within ``within_s``, and whether that is known yet."""
    delivered = outcome == col.OUTCOME_DELIVERED
    pending = outcome == col.OUTCOME_PENDING
    latency = np.full(len(frame), np.nan)
    if delivered.any():
        _in.require(frame, [column], "for the latency of delivered sends")
        latency = _in.delivered_latency(frame, column)
    success = delivered & (latency <= within_s)
    known = np.isin(outcome, col.FAILURE_OUTCOMES) | (delivered & np.isfinite(latency))
    unusable = delivered & ~np.isfinite(latency)
    if pending.any():
        waited, _ = _in.censored_durations(frame, column, as_of, outcome, needed="pending")
        known |= pending & (waited >= within_s)
        unusable |= pending & np.isnan(waited)
    if unusable.any():
        warnings.warn(
            f"left out {int(unusable.sum())} send(s) whose {column} or pending time is unknown",
            _in.LatencyDataWarning,
            stacklevel=3,
        )
    return success, known


# --- latency -------------------------------------------------------------------------------
def _median_diff_interval(d_c, o_c, d_a, o_a, confidence, n_boot, random_state) -> tuple[float, float]:
    """Percentile bootstrap interval of KM median(arm) − KM median(control)."""
    if min(len(d_c), len(d_a)) < 2:
        return math.nan, math.nan
    sorted_c, sorted_a = sort_for_km(d_c, o_c), sort_for_km(d_a, o_a)

    def median_diff(index_c, index_a, axis=-1):
        return km_quantile_of_resamples(*sorted_a, index_a, 0.5) - km_quantile_of_resamples(*sorted_c, index_c, 0.5)

    batch = max(1, min(n_boot, _BOOTSTRAP_BATCH_ELEMENTS // max(len(d_c), len(d_a))))
    with warnings.catch_warnings(), np.errstate(invalid="ignore"):
        # Resamples whose medians are both unreached give NaN; the interval then says so.
        warnings.simplefilter("ignore", stats.DegenerateDataWarning)
        result = stats.bootstrap(
            (np.arange(len(d_c)), np.arange(len(d_a))),
            median_diff,
            n_resamples=n_boot,
            batch=batch,
            vectorized=True,
            paired=False,
            confidence_level=confidence,
            method="percentile",
            rng=np.random.default_rng(random_state),
        )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def _compare_latency(d_c, o_c, d_a, o_a, alpha, n_boot, random_state) -> dict:
    median_c = km_quantiles(d_c, o_c, (0.5,))[0][0]
    median_a = km_quantiles(d_a, o_a, (0.5,))[0][0]
    row = {CONTROL_ESTIMATE: median_c, ARM_ESTIMATE: median_a, DIFF: median_a - median_c, TEST: TEST_LOGRANK}
    if not (len(d_c) and len(d_a)) or not (o_c.any() or o_a.any()):
        return row | {col.CI_LOW: math.nan, col.CI_HIGH: math.nan, P_VALUE: math.nan, TEST: ""}
    p_value = stats.logrank(
        x=stats.CensoredData(uncensored=d_a[o_a], right=d_a[~o_a]),
        y=stats.CensoredData(uncensored=d_c[o_c], right=d_c[~o_c]),
    ).pvalue
    low, high = _median_diff_interval(d_c, o_c, d_a, o_a, 1.0 - alpha, n_boot, random_state)
    return row | {col.CI_LOW: low, col.CI_HIGH: high, P_VALUE: float(p_value)}


def _empty_result(arm: str) -> pd.DataFrame:
    return pd.DataFrame({name: pd.Series(dtype=object) for name in (arm, *COMPARISON_COLUMNS)})


# --- the public function ---------------------------------------------------------------------
def compare_arms(
    deliveries: pd.DataFrame,
    arm: str = col.ARM,
    control=None,
    metric: str = METRIC_DELIVERY_RATE,
    alpha: float = 0.05,
    correction: str | None = "holm",
    sequential: bool = False,
    *,
    within_s: float | None = None,
    column: str = col.LATENCY_S,
    as_of=None,
    exclude_pending: bool = False,
    mixture_sd: float = DEFAULT_MIXTURE_SD,
    n_boot: int = 1000,
    random_state: int | None = 0,
) -> pd.DataFrame:
    """Compare every treatment arm with the control arm.

    Parameters
    ----------
    deliveries : DataFrame
        One row per send; needs the ``arm`` column and ``outcome``, plus
        ``column`` (and the time columns, for censoring) for ``latency`` and
        ``delivered_within``. Rows without an arm label are left out with a
        warning.
    arm : str
        Column naming each send's arm.
    control : optional
        The control arm's label. Default: the first arm whose label is one
        of ``CONTROL_LABELS`` (``"control"``, ``"no_ddm"``, ``"none"``, ...,
        case-insensitive), else the first arm. Arms are ordered by category
        for a categorical column, else by first appearance; result rows
        follow that order.
    metric : {"delivery_rate", "latency", "delivered_within"}
        ``delivery_rate``: delivered / sent (pending counted as not delivered
        unless ``exclude_pending``). p-value from the pooled two-proportion
        z-test, or ``scipy.stats.fisher_exact`` when an expected cell of the
        2×2 table is below 5; interval: Newcombe's hybrid score interval
        (from the two Wilson intervals), which keeps near-nominal coverage
        even for rates near 0 or 1, unlike the Wald interval. (At the
        margin the exact test and the score interval can disagree on
        significance; ``significant`` follows the p-value.)

        ``latency``: estimates are Kaplan–Meier medians of ``column`` (every
        undelivered send censored, see :func:`censored_latencies`), ``diff``
        their difference with a percentile bootstrap interval
        (``scipy.stats.bootstrap``, ``n_boot`` resamples, seeded by
        ``random_state``), p-value from ``scipy.stats.logrank`` (the whole
        curves, not only the medians). A median the curve never reaches is
        NaN; the bootstrap counts it as ``inf``, so the interval may be
        infinite or NaN.

        ``delivered_within``: share of sends delivered within ``within_s``
        seconds — the number a DDM-timeout decision turns on, since a longer
        timeout can deliver more but later. Failures count as not within.
        A pending send counts as not within once it has waited ``within_s``
        (up to ``as_of``); younger pending sends are left out, their answer
        is not known yet. Tested like ``delivery_rate``.
    alpha : float
        Significance level: ``significant = p_adjusted < alpha``. Intervals
        are at level 1 − alpha per comparison (not adjusted).
    correction : {"holm", "bonferroni", "none", None}
        Multiple-comparison adjustment across the treatment arms
        (:func:`adjust_p_values`).
    sequential : bool
        Always-valid p-values and confidence sequences (a normal-mixture
        SPRT, :mod:`skycore_lab.stats.sequential`) for the proportion metrics, so
        that analysts may look after every batch of sends and stop whenever
        they like while keeping the error rate at ``alpha``. Each look is
        valid on its own; keeping the running minimum of the p-value (and
        the running intersection of the intervals) across looks is valid too.
        Use it with ``delivered_within``: a send's answer there is final once
        ``within_s`` has passed, whereas under ``delivery_rate`` pending sends
        still turn into deliveries, which at an early look penalises the arm
        with slower delivery. Not available for ``latency``
        (NotImplementedError): no sound always-valid log-rank test is
        implemented here.
    within_s : float
        Deadline in seconds; required for (and only for) ``delivered_within``.
    column : str
        Latency column for ``latency`` and ``delivered_within``.
    as_of : timestamp-like, optional
        When pending sends were last known pending; default the latest time
        in the frame (see :func:`censored_latencies`).
    exclude_pending : bool
        ``delivery_rate`` only: leave pending sends out of the counts.
    mixture_sd : float
        Standard deviation τ of the normal mixture (in rate points) for
        ``sequential``; fix it before the experiment starts.
    n_boot : int
        Bootstrap resamples for ``latency``.
    random_state : int or None
        Seed of the bootstrap; fixed by default so results repeat.

    Returns
    -------
    DataFrame
        One row per treatment arm, in arm order (an empty frame with these
        columns when fewer than two arms are present):

        ``<arm>``
            The treatment arm's label (the column is named like ``arm``).
        ``control``
            The control arm's label.
        ``metric`` : str
            The metric compared.
        ``control_estimate``, ``arm_estimate`` : float
            Rate (or share within the deadline, or KM median latency in s).
        ``diff`` : float
            ``arm_estimate − control_estimate``.
        ``rel_diff`` : float
            ``diff / control_estimate`` (±inf or NaN when that is 0).
        ``ci_low``, ``ci_high`` : float
            Interval of ``diff`` at level 1 − alpha.
        ``p_value``, ``p_adjusted`` : float
            Raw and multiplicity-adjusted p-values (NaN if not computable).
        ``significant`` : bool
            ``p_adjusted < alpha``.
        ``n_control``, ``n_arm`` : int
            Sends counted in each arm.
        ``test`` : str
            ``z_test``, ``fisher_exact``, ``msprt`` or ``logrank``; empty when
            an arm had nothing to compare.
    """
    frame = _in.check_frame(deliveries)
    if not isinstance(arm, str):
        raise SkycoreValidationError("arm", f"expected the name of the arm column, got {arm!r}")
    if arm in COMPARISON_COLUMNS:
        raise SkycoreValidationError("arm", f"an arm column named {arm!r} would clash with an output column")
    if metric not in METRICS:
        raise SkycoreValidationError("metric", f"expected one of {list(METRICS)}, got {metric!r}")
    alpha = _in.check_level(alpha, "alpha")
    method = check_correction(correction)
    if metric == METRIC_DELIVERED_WITHIN:
        if within_s is None or not (isinstance(within_s, (int, float)) and 0 < within_s < math.inf):
            raise SkycoreValidationError("within_s", f"delivered_within needs a deadline in seconds > 0, got {within_s!r}")
    elif within_s is not None:
        raise SkycoreValidationError("within_s", f"applies to metric='delivered_within' only, not {metric!r}")
    if sequential and metric == METRIC_LATENCY:
        raise NotImplementedError(
            "sequential=True is implemented for 'delivery_rate' and 'delivered_within' only; for latency, use a "
            "fixed-horizon analysis or compare delivered_within at the deadline that matters"
        )
    if sequential and not (isinstance(mixture_sd, (int, float)) and 0 < mixture_sd < math.inf):
        raise SkycoreValidationError("mixture_sd", f"must be a positive number, got {mixture_sd!r}")
    if metric == METRIC_LATENCY and (isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < 1):
        raise SkycoreValidationError("n_boot", f"must be a positive integer, got {n_boot!r}")

    if len(frame) == 0:  # no sends, nothing to compare (and no column to require)
        return _empty_result(arm)
    _in.require(frame, [arm], "to tell the arms apart")
    labels = frame[arm]
    unlabelled = labels.isna().to_numpy()
    if unlabelled.any():
        warnings.warn(f"left out {int(unlabelled.sum())} send(s) with no {arm!r} label", SkycoreWarning, stacklevel=2)
    data = frame.loc[~unlabelled]
    order = _arm_order(labels[~unlabelled])
    if len(order) < 2:
        if control is not None and control not in order:
            raise SkycoreValidationError("control", f"{control!r} is not one of the arms {order}")
        return _empty_result(arm)
    control_at = _control_index(order, control)
    control_label = order[control_at]
    values = data[arm].to_numpy(dtype=object)
    masks = [values == label for label in order]

    outcome = _in.outcomes(data)
    has_pending = bool((outcome == col.OUTCOME_PENDING).any())
    # The default as_of is the whole frame's last known moment, unlabelled rows included.
    as_of = _in.resolve_as_of(frame, as_of) if has_pending and metric != METRIC_DELIVERY_RATE else None
    if metric == METRIC_LATENCY:
        duration, observed, keep = _in.censor(data, column, as_of)
        masks = [mask & keep for mask in masks]
    else:
        if metric == METRIC_DELIVERY_RATE:
            success = outcome == col.OUTCOME_DELIVERED
            counted = outcome != col.OUTCOME_PENDING if exclude_pending else np.ones(len(data), bool)
        else:
            success, counted = _within_counts(data, outcome, column, float(within_s), as_of)
        masks = [mask & counted for mask in masks]

    rows = []
    in_control = masks[control_at]
    for i, label in enumerate(order):
        if i == control_at:
            continue
        in_arm = masks[i]
        if metric == METRIC_LATENCY:
            result = _compare_latency(
                duration[in_control], observed[in_control], duration[in_arm], observed[in_arm],
                alpha, n_boot, random_state,
            )  # fmt: skip
        else:
            result = _compare_proportions(
                int(success[in_control].sum()), int(in_control.sum()), int(success[in_arm].sum()), int(in_arm.sum()),
                alpha, sequential, mixture_sd,
            )  # fmt: skip
        with np.errstate(divide="ignore", invalid="ignore"):
            rel_diff = float(np.divide(result[DIFF], result[CONTROL_ESTIMATE]))
        rows.append(
            {arm: label, CONTROL: control_label, METRIC: metric, **result, REL_DIFF: rel_diff,
             N_CONTROL: int(in_control.sum()), N_ARM: int(in_arm.sum())}
        )  # fmt: skip
    table = pd.DataFrame(rows)
    table[P_ADJUSTED] = adjust_p_values(table[P_VALUE].to_numpy(dtype=float), method)
    table[SIGNIFICANT] = (table[P_ADJUSTED] < alpha).astype(bool)
    return table[[arm, *COMPARISON_COLUMNS]].reset_index(drop=True)
