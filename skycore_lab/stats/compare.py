"""A/B comparison of experiment arms (:func:`compare_arms`).

Every metric counts a send only once its outcome window has closed
(:mod:`.windows`), so a comparison read while postbacks still arrive uses
only sends whose answer is final, chosen by their age and never by their
outcome. Counts are aggregated per arm (and stratum) before any statistic
is computed: a million sends cost a few array passes.
"""

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
    COUNTED,
    RESTRICTED_S,
    SENDS,
    STRATUM,
    WITHIN,
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
    WINDOW_S,
)
from .planning import adjust_p_values, check_correction
from .proportions import TEST_CMH, TEST_FISHER, TEST_Z, mantel_haenszel, newcombe_interval, two_proportion_test
from .sequential import DEFAULT_MIXTURE_SD, confidence_sequence, msprt_p_value, shrunk_mean_variance, shrunk_variance
from .windows import check_window, default_settle_s, windowed_outcomes
from ..distributed.engine import empty_like, fold_partitions, is_dask, known_categories
from ..exceptions import SkycoreValidationError, SkycoreWarning

__all__ = ["compare_arms", "arm_labels", "control_index", "newcombe_interval", "arm_tallies", "tally_labels",
           "compare_from_tallies"]

# --- vocabularies -----------------------------------------------------------------------
METRIC_DELIVERY_RATE = "delivery_rate"
METRIC_LATENCY = "latency"
METRIC_DELIVERED_WITHIN = "delivered_within"
METRICS: tuple[str, ...] = (METRIC_DELIVERY_RATE, METRIC_LATENCY, METRIC_DELIVERED_WITHIN)
#: Metrics compared as two proportions (and so stratifiable).
RATE_METRICS: tuple[str, ...] = (METRIC_DELIVERY_RATE, METRIC_DELIVERED_WITHIN)

TEST_MSPRT = "msprt"
TEST_LOGRANK = "logrank"
TEST_RMST = "rmst_z"
TESTS: tuple[str, ...] = (TEST_Z, TEST_FISHER, TEST_CMH, TEST_MSPRT, TEST_RMST)

#: Default deadline of ``delivered_within`` (and horizon of ``latency``), seconds:
#: the documented default DDM timeout (5 min) plus as long again for the content to arrive.
DEFAULT_WITHIN_S = 600.0

#: Arm labels taken as the control when ``control`` is not given (case-insensitive).
CONTROL_LABELS: tuple[str, ...] = ("control", "no_ddm", "no-ddm", "none", "baseline")


# --- arms --------------------------------------------------------------------------------
def arm_labels(values: pd.Series, field: str = col.ARM) -> tuple[np.ndarray, list[str]]:
    """Each row's arm as a position into the arms' labels, normalised to strings.

    Returns ``(codes, labels)``: ``codes`` is −1 for a missing label;
    ``labels`` are ``str`` of the distinct values, in category order for a
    categorical column (categories present only), else in order of first
    appearance. Two distinct values that read the same (``1`` and ``"1"``)
    are an error: they would be shown as one arm and counted as two.
    """
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    uniques = list(np.asarray(uniques, dtype=object))
    order = list(range(len(uniques)))
    if isinstance(values.dtype, pd.CategoricalDtype):
        rank = {category: i for i, category in enumerate(values.cat.categories)}
        order.sort(key=lambda i: rank[uniques[i]])
    labels = [str(uniques[i]) for i in order]
    seen: dict[str, object] = {}
    for i in order:
        text = str(uniques[i])
        if text in seen:
            raise SkycoreValidationError(
                field,
                f"arm labels {seen[text]!r} ({type(seen[text]).__name__}) and {uniques[i]!r} "
                f"({type(uniques[i]).__name__}) both read {text!r}; give every arm one label",
            )
        seen[text] = uniques[i]
    remap = np.empty(len(uniques) + 1, dtype=np.int64)
    remap[np.array(order, dtype=np.int64)] = np.arange(len(order))
    remap[-1] = -1
    return remap[codes], labels


def control_index(labels: list[str], control) -> int:
    """Position of the control among ``labels`` (:func:`arm_labels`): ``control`` as a string, else
    the first label in :data:`CONTROL_LABELS`, else the first arm."""
    if control is not None:
        wanted = str(control)
        if wanted in labels:
            return labels.index(wanted)
        raise SkycoreValidationError("control", f"{control!r} is not one of the arms {labels}")
    for i, label in enumerate(labels):
        if label.strip().lower() in CONTROL_LABELS:
            return i
    return 0


# --- the statistics per pair of arms -------------------------------------------------------
def _nan_result(test: str = "") -> dict:
    return {col.CI_LOW: math.nan, col.CI_HIGH: math.nan, P_VALUE: math.nan, TEST: test}


def _compare_proportions(x_c, n_c, x_a, n_a, alpha, sequential, mixture_sd) -> dict:
    estimate_c = x_c / n_c if n_c else math.nan
    estimate_a = x_a / n_a if n_a else math.nan
    row = {CONTROL_ESTIMATE: estimate_c, ARM_ESTIMATE: estimate_a, DIFF: estimate_a - estimate_c}
    if not (n_c and n_a):
        return row | _nan_result()
    if sequential:
        variance = shrunk_variance(x_c, n_c, x_a, n_a)
        p_value = float(msprt_p_value(row[DIFF], variance, mixture_sd))
        low, high = (float(v) for v in confidence_sequence(row[DIFF], variance, alpha, mixture_sd))
        test = TEST_MSPRT
    else:
        low, high = newcombe_interval(x_c, n_c, x_a, n_a, 1.0 - alpha)
        p_value, test = two_proportion_test(x_c, n_c, x_a, n_a)
    return row | {col.CI_LOW: low, col.CI_HIGH: high, P_VALUE: p_value, TEST: test}


def _compare_stratified(x_c, n_c, x_a, n_a, alpha, sequential, mixture_sd) -> dict:
    """Per-stratum counts (arrays) → the Mantel–Haenszel difference, Sato interval, CMH test."""
    total_c, total_a = n_c.sum(), n_a.sum()
    row = {CONTROL_ESTIMATE: x_c.sum() / total_c if total_c else math.nan,
           ARM_ESTIMATE: x_a.sum() / total_a if total_a else math.nan}  # fmt: skip
    result = mantel_haenszel(x_c, n_c, x_a, n_a, 1.0 - alpha)
    row[DIFF] = result["diff"]
    if not result["strata"]:
        return row | _nan_result()
    if sequential:
        # The MH difference with the independent-binomial variance of the shrunk
        # per-stratum rates: never 0, as the always-valid test needs.
        both = (n_c > 0) & (n_a > 0)
        weight = n_a[both] * n_c[both] / (n_a[both] + n_c[both])
        per_stratum = shrunk_variance(x_c[both], n_c[both], x_a[both], n_a[both])
        variance = float((weight**2 * per_stratum).sum() / weight.sum() ** 2)
        p_value = float(msprt_p_value(row[DIFF], variance, mixture_sd))
        low, high = (float(v) for v in confidence_sequence(row[DIFF], variance, alpha, mixture_sd))
        return row | {col.CI_LOW: low, col.CI_HIGH: high, P_VALUE: p_value, TEST: TEST_MSPRT}
    return row | {col.CI_LOW: result["ci_low"], col.CI_HIGH: result["ci_high"], P_VALUE: result["p_value"],
                  TEST: TEST_CMH}  # fmt: skip


def _compare_means(summary_c, summary_a, horizon, alpha, sequential, mixture_sd) -> dict:
    """(n, mean, Σ(v − mean)²) of each arm's restricted times → mean difference, interval and test.

    Fixed horizon: z-test and Wald interval on the same estimate and
    standard error, so ``p < alpha`` exactly when the interval excludes 0.
    """
    (n_c, mean_c, ss_c), (n_a, mean_a, ss_a) = summary_c, summary_a
    diff = mean_a - mean_c
    row = {CONTROL_ESTIMATE: mean_c, ARM_ESTIMATE: mean_a, DIFF: diff}
    if sequential:
        if not (n_c and n_a):
            return row | _nan_result()
        variance = float(shrunk_mean_variance(n_c, mean_c, ss_c, horizon) + shrunk_mean_variance(n_a, mean_a, ss_a, horizon))
        p_value = float(msprt_p_value(diff, variance, mixture_sd))
        low, high = (float(v) for v in confidence_sequence(diff, variance, alpha, mixture_sd, bound=horizon))
        return row | {col.CI_LOW: low, col.CI_HIGH: high, P_VALUE: p_value, TEST: TEST_MSPRT}
    if n_c < 2 or n_a < 2:
        return row | _nan_result()
    se = math.sqrt(ss_c / (n_c - 1) / n_c + ss_a / (n_a - 1) / n_a)
    if se <= 1e-9 * max(horizon, 1.0):  # nothing varies (constant latencies): equal, or certainly different
        same = abs(diff) <= 1e-9 * max(horizon, 1.0)
        return row | {col.CI_LOW: diff, col.CI_HIGH: diff, P_VALUE: 1.0 if same else 0.0, TEST: TEST_RMST}
    z = stats.norm.ppf(1.0 - alpha / 2.0)
    p_value = float(2.0 * stats.norm.sf(abs(diff) / se))
    return row | {col.CI_LOW: diff - z * se, col.CI_HIGH: diff + z * se, P_VALUE: p_value, TEST: TEST_RMST}


def _empty_result(arm: str) -> pd.DataFrame:
    return pd.DataFrame({name: pd.Series(dtype=object) for name in (arm, *COMPARISON_COLUMNS)})


def _check_arguments(arm, metric, within_s, horizon_s, settle_s, sequential, mixture_sd, strata, exclude_pending):
    if not isinstance(arm, str):
        raise SkycoreValidationError("arm", f"expected the name of the arm column, got {arm!r}")
    if arm in COMPARISON_COLUMNS:
        raise SkycoreValidationError("arm", f"an arm column named {arm!r} would clash with an output column")
    if metric not in METRICS:
        raise SkycoreValidationError("metric", f"expected one of {list(METRICS)}, got {metric!r}")
    for name, value, wanted in (("within_s", within_s, METRIC_DELIVERED_WITHIN), ("horizon_s", horizon_s, METRIC_LATENCY),
                                ("settle_s", settle_s, METRIC_DELIVERY_RATE)):  # fmt: skip
        if value is not None and metric != wanted:
            raise SkycoreValidationError(name, f"applies to metric={wanted!r} only, not {metric!r}")
    if metric == METRIC_DELIVERED_WITHIN:
        if within_s is None:
            raise SkycoreValidationError("within_s", "delivered_within needs a deadline in seconds > 0, got None")
        check_window(within_s, "within_s")
    if exclude_pending and metric != METRIC_DELIVERY_RATE:
        raise SkycoreValidationError("exclude_pending", f"applies to metric='delivery_rate' only, not {metric!r}")
    if strata is not None:
        if not isinstance(strata, str):
            raise SkycoreValidationError("strata", f"expected the name of a column (carrier, country...), got {strata!r}")
        if metric not in RATE_METRICS:
            raise SkycoreValidationError("strata", f"stratified comparisons are for {list(RATE_METRICS)}, not {metric!r}")
    if sequential and mixture_sd is not None and (
        isinstance(mixture_sd, bool) or not isinstance(mixture_sd, (int, float)) or not 0 < mixture_sd < math.inf
    ):
        raise SkycoreValidationError("mixture_sd", f"must be a positive number, got {mixture_sd!r}")


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
    horizon_s: float | None = None,
    settle_s: float | None = None,
    column: str = col.LATENCY_S,
    as_of=None,
    exclude_pending: bool = False,
    strata: str | None = None,
    mixture_sd: float | None = None,
) -> pd.DataFrame:
    """Compare every treatment arm with the control arm.

    **Which sends count.** A send counts once its outcome window has closed at ``as_of`` (its
    age ≥ the window), and is judged on what happened within the window
    (:mod:`skycore_lab.stats.windows`). Inclusion depends on request times
    only, never on outcomes, so a comparison read mid-test compares like
    with like: a young pending send is neither "not delivered" nor chosen
    over a young fast delivery. Each row's ``window_s`` says which window
    applied. A frame with no time column at all (no way to know ages)
    counts every send as final.

    Parameters
    ----------
    deliveries : DataFrame or dask DataFrame
        (A dask frame is folded on its cluster into sends per arm, stratum,
        window state and value, :func:`arm_tallies`; the comparison is
        computed here, :func:`compare_from_tallies`. Arms are ordered by
        category when dask knows the categories, else by first appearance
        in partition order, which may differ from the pandas frame's row
        order: pass ``control`` when no label says which arm it is.)
        One row per send; needs the ``arm`` column and ``outcome``, the time
        columns that start the windows' clocks (``requested_at`` for
        ``delivery_rate``, the start of ``column`` otherwise), ``column``
        for ``latency`` and ``delivered_within``, and ``strata`` when given.
        Rows without an arm label are left out with a warning.
    arm : str
        Column naming each send's arm. Labels are compared as strings
        (:func:`arm_labels`): ``1`` and ``"1"`` in one column is an error.
    control : optional
        The control arm's label. Default: the first arm whose label is one
        of ``CONTROL_LABELS`` (``"control"``, ``"no_ddm"``, ``"none"``, ...,
        case-insensitive), else the first arm. Arms are ordered by category
        for a categorical column, else by first appearance; result rows
        follow that order.
    metric : {"delivery_rate", "latency", "delivered_within"}
        ``delivery_rate``: share of sends delivered within ``settle_s`` of
        the request, among sends at least ``settle_s`` old (a send still
        pending then counts as not delivered; ``exclude_pending`` leaves
        those out). p-value from the pooled two-proportion z-test, or
        ``scipy.stats.fisher_exact`` when an expected cell of the 2×2 table
        is below 5; interval: Newcombe's hybrid score interval (from the two
        Wilson intervals), which keeps near-nominal coverage even for rates
        near 0 or 1. (At the margin the exact test and the score interval
        can disagree on significance; ``significant`` follows the p-value.)

        ``delivered_within``: share of sends delivered within ``within_s``
        seconds of ``column``'s clock start, among sends at least
        ``within_s`` old — the number a DDM-timeout decision turns on, since
        a longer timeout can deliver more but later. Failures count as not
        within. Tested like ``delivery_rate``.

        ``latency``: the restricted mean time to delivery up to
        ``horizon_s`` (RMST): each send counts as its latency if delivered
        within the horizon, else as the whole horizon (failed and
        undelivered sends waited it all), among sends at least
        ``horizon_s`` old. Estimates are the arms' means in seconds,
        ``diff`` their difference (positive: the arm is slower), with a
        z-test and a Wald interval from the same estimate and standard error
        (each arm's sample variance / n): the test rejects exactly when the
        interval excludes 0. Constant latencies give p = 1 (equal) or 0.
        It sums up the whole curve of the share delivered up to the horizon
        (its area), so it weighs speed and reach together.
    alpha : float
        Significance level: ``significant = p_adjusted < alpha``. Intervals
        are at level 1 − alpha per comparison (not adjusted).
    correction : {"holm", "bonferroni", "bh", "none", None}
        Multiple-comparison adjustment across the treatment arms of this
        call (:func:`adjust_p_values`); ``"bh"`` controls the false
        discovery rate instead of the family-wise error.
        :meth:`skycore_lab.DdmExperiment.analyze` adjusts over every arm and
        metric at once instead.
    sequential : bool
        Always-valid p-values and confidence sequences (the normal-mixture
        SPRT, :mod:`skycore_lab.stats.sequential`) for every metric, so that
        analysts may look whenever they like — after every batch, or
        continuously — and stop when they like while keeping the error rate
        at ``alpha``. Each look is valid on its own; keeping the running
        minimum of the p-value (and the running intersection of the
        intervals) across looks is valid too. The outcome windows make the
        counted sends a growing sample of final outcomes, which the test
        needs.
    within_s : float
        Deadline in seconds; required for (and only for) ``delivered_within``.
    horizon_s : float, optional
        Horizon of ``latency`` (default :data:`DEFAULT_WITHIN_S`).
    settle_s : float, optional
        Window of ``delivery_rate``, from the request; default
        :func:`skycore_lab.stats.windows.default_settle_s` (the platform's
        default DDM timeout plus 30 min). An experiment passes its longest
        DDM timeout plus the allowance.
    column : str
        Latency column for ``latency`` and ``delivered_within`` (its clock
        starts their windows).
    as_of : timestamp-like, optional
        The moment of the look; default the latest time in the frame.
    exclude_pending : bool
        ``delivery_rate`` only: leave out the sends still pending when their
        window closed (a carrier without delivery receipts) instead of
        counting them as not delivered.
    strata : str, optional
        Column to stratify by (``"carrier"``, ``"country"``, ...) for the
        rate metrics: the Mantel–Haenszel rate difference, its interval by
        Sato's variance, and the Cochran–Mantel–Haenszel test
        (:mod:`skycore_lab.stats.proportions`). Missing values form their
        own stratum. With ``sequential``, the always-valid test on the MH
        difference.
    mixture_sd : float, optional
        Standard deviation τ of the sequential test's normal mixture, in
        the metric's units: rate points (default 0.05) or seconds for
        ``latency`` (default 5 % of the horizon). Fix it before the
        experiment starts.

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
            Rate, share within the deadline, or restricted mean time to
            delivery in seconds (with ``strata``: the crude rates).
        ``diff`` : float
            ``arm_estimate − control_estimate`` (with ``strata``: the
            Mantel–Haenszel adjusted difference).
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
            ``z_test``, ``fisher_exact``, ``cmh``, ``rmst_z`` or ``msprt``;
            empty when an arm had nothing to compare.
        ``window_s`` : float
            The outcome window a send had to have passed, seconds (NaN
            when the frame had no times to apply it).

    Warns
    -----
    LatencyDataWarning
        Sends left out because a needed time or latency is unknown, and
        negative latencies set to 0 (never silently "within").
    SkycoreWarning
        Rows without an arm label were left out.
    """
    frame = deliveries if is_dask(deliveries) else _in.check_frame(deliveries)
    _check_arguments(arm, metric, within_s, horizon_s, settle_s, sequential, mixture_sd, strata, exclude_pending)
    alpha = _in.check_level(alpha, "alpha")
    method = check_correction(correction)
    if metric == METRIC_DELIVERY_RATE:
        window = check_window(settle_s, "settle_s") if settle_s is not None else default_settle_s()
    elif metric == METRIC_DELIVERED_WITHIN:
        window = float(within_s)
    else:
        window = check_window(horizon_s, "horizon_s") if horizon_s is not None else DEFAULT_WITHIN_S
    if mixture_sd is None:
        mixture_sd = DEFAULT_MIXTURE_SD * (window if metric == METRIC_LATENCY else 1.0)
    options = {"metric": metric, "window": window, "column": column, "exclude_pending": exclude_pending,
               "strata": strata}  # fmt: skip
    if is_dask(frame):  # tallies per partition on the cluster; the comparison here, below
        _in.require(empty_like(frame), [arm, *([strata] if strata is not None else [])], "to compare arms")
        tallies = fold_partitions(frame, arm_tallies, arm, fold=True, resolve_as_of=True, as_of=as_of, **options)
        labels = tally_labels(tallies, known_categories(frame, arm))
    else:
        if len(frame) == 0:  # no sends, nothing to compare (and no column to require)
            return _empty_result(arm)
        _in.require(frame, [arm], "to tell the arms apart")
        if strata is not None:
            _in.require(frame, [strata], "to stratify by")
        codes, labels = arm_labels(frame[arm], arm)
        if len(labels) < 2:  # before any time column is asked for
            _warn_unlabelled(int((codes < 0).sum()), arm)
            return _few_arms(arm, labels, control)
        tallies = arm_tallies(frame, arm, as_of=as_of, **options)
    _warn_unlabelled(int(tallies.loc[tallies[col.ARM].isna(), SENDS].sum()) if len(tallies) else 0, arm)
    if len(labels) < 2:
        return _few_arms(arm, labels, control)
    return compare_from_tallies(tallies, labels, control_index(labels, control), arm, metric=metric, window=window,
                                alpha=alpha, correction=method, sequential=sequential, mixture_sd=mixture_sd,
                                stratified=strata is not None)  # fmt: skip


def _warn_unlabelled(count: int, arm: str) -> None:
    if count:
        warnings.warn(f"left out {count} send(s) with no {arm!r} label", SkycoreWarning, stacklevel=3)


def _few_arms(arm: str, labels: list[str], control) -> pd.DataFrame:
    if control is not None and str(control) not in labels:
        raise SkycoreValidationError("control", f"{control!r} is not one of the arms {labels}")
    return _empty_result(arm)


def arm_tallies(deliveries: pd.DataFrame, arm: str = col.ARM, *, metric: str = METRIC_DELIVERY_RATE,
                window: float, column: str = col.LATENCY_S, as_of=None, exclude_pending: bool = False,
                strata: str | None = None, fold: bool = False) -> pd.DataFrame:  # fmt: skip
    """The sufficient statistics of :func:`compare_arms`: sends per arm label, window state and value.

    ``as_of`` is the look (None: the frame's latest time; a partition's fold
    gets the whole frame's). ``fold=True`` counts each distinct row once
    (a partition's fold; ``restricted_s`` exact, never rounded); False keeps
    one row per send, in the frame's order (the pandas path).

    Returns
    -------
    DataFrame
        ``arm`` (the label as text, missing for rows without one),
        ``counted``, ``within`` (bool), ``restricted_s`` (float: the latency
        metric's value, 0 otherwise), ``stratum`` (with ``strata``),
        ``sends`` (int64), ``window_s`` (the window applied, NaN when the
        frame had no times).
    """
    frame = deliveries
    names = [col.ARM, COUNTED, WITHIN, RESTRICTED_S, *([STRATUM] if strata is not None else []), SENDS, WINDOW_S]
    if len(frame) == 0:
        return pd.DataFrame({name: pd.Series(dtype=object) for name in names}).astype({SENDS: "int64"})
    _in.require(frame, [arm], "to tell the arms apart")
    if strata is not None:
        _in.require(frame, [strata], "to stratify by")
    codes, labels = arm_labels(frame[arm], arm)
    labelled = codes >= 0
    counted = np.zeros(len(frame), bool)
    within = np.zeros(len(frame), bool)
    value = np.zeros(len(frame))
    window_s = math.nan
    if labelled.any():
        data = frame.loc[labelled] if not labelled.all() else frame
        outcome = _in.outcomes(data)
        # The look: the whole frame's last known moment (unlabelled rows included) unless given.
        moment = _in.resolve_as_of(frame, as_of)
        clock = col.TOTAL_LATENCY_S if metric == METRIC_DELIVERY_RATE else column
        windowed = windowed_outcomes(
            data, outcome, clock, window, moment, need_latency=metric != METRIC_DELIVERY_RATE,
            untimed_pending="count" if metric == METRIC_DELIVERY_RATE else "error", stacklevel=4,
        )  # fmt: skip
        is_counted = windowed.counted
        if exclude_pending:
            is_counted = is_counted & (outcome != col.OUTCOME_PENDING)
        counted[labelled], within[labelled] = is_counted, windowed.within & is_counted
        if metric == METRIC_LATENCY:
            value[labelled] = np.where(is_counted, np.where(windowed.within, windowed.latency, window), 0.0)
        window_s = windowed.window_s
    table = pd.DataFrame({col.ARM: pd.Categorical.from_codes(codes, categories=labels) if labels else
                                   pd.Categorical([None] * len(frame)),
                          COUNTED: counted, WITHIN: within, RESTRICTED_S: value}, index=frame.index)  # fmt: skip
    if strata is not None:
        table[STRATUM] = frame[strata].to_numpy(dtype=object)
    table[SENDS] = np.ones(len(frame), "int64")
    if fold:
        keys = [name for name in names if name not in (SENDS, WINDOW_S)]
        table = table.groupby(keys, dropna=False, observed=True, sort=False)[SENDS].sum().reset_index()
        table[col.ARM] = table[col.ARM].astype(object)
    table[WINDOW_S] = window_s
    return table[names].reset_index(drop=True)


def tally_labels(tallies: pd.DataFrame, categories: list | None = None) -> list[str]:
    """The arms' labels of partitions' tallies: in the order of ``categories`` (the arm column's, when
    categorical), else in order of first appearance (partition order, then row order)."""
    present = list(pd.unique(tallies[col.ARM].dropna().astype(str))) if len(tallies) else []
    if categories is not None:
        return [label for label in map(str, categories) if label in set(present)]
    return present


def compare_from_tallies(tallies: pd.DataFrame, labels: list[str], control_at: int, arm: str = col.ARM, *,
                         metric: str, window: float, alpha: float, correction: str, sequential: bool,
                         mixture_sd: float, stratified: bool) -> pd.DataFrame:  # fmt: skip
    """:func:`compare_arms`' rows from its sufficient statistics (:func:`arm_tallies` of one frame or several).

    ``labels`` are the arms in result order, ``control_at`` the control's
    position among them; the other arguments are :func:`compare_arms`'
    checked ones.
    """
    k = len(labels)
    position = pd.Index(labels).get_indexer(tallies[col.ARM].astype(object))
    labelled = position >= 0
    sends = tallies[SENDS].to_numpy(dtype="int64")
    counted = tallies[COUNTED].to_numpy(dtype=bool) & labelled
    arm_code = np.where(counted, position, k)  # k: not counted
    n = np.bincount(arm_code, weights=sends, minlength=k + 1)[:k].round().astype("int64")
    within = tallies[WITHIN].to_numpy(dtype=bool)
    if metric == METRIC_LATENCY:
        value = tallies[RESTRICTED_S].to_numpy(dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            means = np.bincount(arm_code, weights=value * sends, minlength=k + 1)[:k] / n
        centred = np.where(counted, value - np.append(means, 0.0)[arm_code], 0.0)
        squares = np.bincount(arm_code, weights=centred * centred * sends, minlength=k + 1)[:k]
    else:
        x = np.bincount(arm_code, weights=within * sends, minlength=k + 1)[:k]
        if stratified:
            stratum, names = pd.factorize(tallies.loc[labelled, STRATUM], use_na_sentinel=False)
            cells = arm_code[labelled] * len(names) + stratum
            size = (k + 1) * len(names)
            n_cells = np.bincount(cells, weights=sends[labelled], minlength=size).reshape(k + 1, len(names))
            x_cells = np.bincount(cells, weights=(within * sends)[labelled], minlength=size).reshape(k + 1, len(names))
    windows = tallies[WINDOW_S].to_numpy(dtype=float) if len(tallies) else np.array([math.nan])
    window_s = float(windows[~np.isnan(windows)][0]) if (~np.isnan(windows)).any() else math.nan
    rows: list[dict] = []
    for i, label in enumerate(labels):
        if i == control_at:
            continue
        if metric == METRIC_LATENCY:
            result = _compare_means((n[control_at], means[control_at], squares[control_at]),
                                    (n[i], means[i], squares[i]), window, alpha, sequential, mixture_sd)  # fmt: skip
        elif stratified:
            result = _compare_stratified(x_cells[control_at], n_cells[control_at].astype(float), x_cells[i],
                                         n_cells[i].astype(float), alpha, sequential, mixture_sd)  # fmt: skip
        else:
            result = _compare_proportions(int(round(x[control_at])), int(n[control_at]), int(round(x[i])), int(n[i]),
                                          alpha, sequential, mixture_sd)  # fmt: skip
        with np.errstate(divide="ignore", invalid="ignore"):
            rel_diff = float(np.divide(result[DIFF], result[CONTROL_ESTIMATE]))
        rows.append({arm: label, CONTROL: labels[control_at], METRIC: metric, **result, REL_DIFF: rel_diff,
                     N_CONTROL: int(n[control_at]), N_ARM: int(n[i]), WINDOW_S: window_s})  # fmt: skip
    adjusted = adjust_p_values(np.array([row[P_VALUE] for row in rows], dtype=float), correction)
    for row, value in zip(rows, adjusted, strict=True):
        row[P_ADJUSTED] = float(value)
        row[SIGNIFICANT] = bool(value < alpha)
    return pd.DataFrame({name: [row[name] for row in rows] for name in (arm, *COMPARISON_COLUMNS)})
