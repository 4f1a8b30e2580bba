"""Share delivered by time t, with failures as a competing event (:func:`cumulative_incidence`).

The Aalen–Johansen estimator of the cumulative incidence of delivery. With
n_j sends at risk just before time t_j, d1_j deliveries and d_j events of
any kind (deliveries and failures) at t_j, and S the all-cause Kaplan–Meier
curve::

    F(t) = Σ_{t_j ≤ t}  S(t_{j−1}) · d1_j / n_j

A failure ends a send's chance of delivery (it lowers S); a pending send is
censored at its age: it stays at risk until then and is counted nowhere
after. Its plateau, once no send is pending, is the delivery rate:
delivered / sent. Kaplan–Meier with failures censored (:func:`latency_summary`)
answers another question — how fast delivery would be if nothing failed —
and its 1 − S overstates the share delivered.

Variance
--------
The delta-method (Greenwood-type) estimator of SAS ``PROC LIFETEST`` and
Collett (*Modelling Survival Data in Medical Research*, 3rd ed., p. 411),
as in lifelines' ``AalenJohansenFitter``::

    Var F(t) = Σ_{t_j ≤ t} (F(t) − F_j)² d_j / (n_j (n_j − d_j))
             + Σ_{t_j ≤ t} S(t_{j−1})² d1_j (n_j − d1_j) / n_j³
             − 2 Σ_{t_j ≤ t} (F(t) − F_j) S(t_{j−1}) d1_j / n_j²

(a term with n_j = d_j is 0: nobody is left at risk, F no longer moves).
Without failures it is Greenwood's variance of 1 − S. Expanded into
cumulative sums, the whole curve's variance costs one pass.

Interval
--------
The Wilson score interval at the effective sample size F(1 − F) / Var F
(the idea of Dorey & Korn, 1987, for Kaplan–Meier curves): it stays inside
[0, 1], and where F is 0 or 1 (or its variance 0) the effective size is the
sends whose state at t is known (not censored before t), so before the
first delivery the interval is [0, upper], never a point. Coverage is
checked by simulation with failures and censoring in
``tests/test_stats_incidence.py``.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from .. import columns as col
from ..columns import AT_RISK, CUMULATIVE_INCIDENCE_COLUMNS, DURATION_S, KIND, SENDS, SHARE_DELIVERED, TIME_S
from ..distributed.engine import fold_partitions, is_dask
from ..exceptions import SkycoreValidationError
from . import inputs as _in

__all__ = ["cumulative_incidence", "aalen_johansen", "incidence_counts", "incidence_from_counts"]


def aalen_johansen(duration: np.ndarray, kind: np.ndarray) -> dict[str, np.ndarray]:
    """The Aalen–Johansen curve of delivery at its event times, with its variance.

    Parameters
    ----------
    duration : array of float
        Follow-up time of each send, ≥ 0.
    kind : array of int
        1 delivered, 2 failed (competing), 0 censored.

    Returns
    -------
    dict of arrays
        ``time`` (distinct times of deliveries and failures, ascending),
        ``share`` (F at each, after its events), ``variance``,
        ``at_risk`` (n_j), ``survival`` (all-cause S after the events),
        and ``sorted`` (the durations, ascending, for at-risk counts at
        other times) plus ``censored_sorted`` (the censored durations).
    """
    duration = np.asarray(duration, dtype=float)
    kind = np.asarray(kind)
    ordered = np.sort(duration)
    event = kind != _in.CENSORED_KIND
    times, inverse = np.unique(duration[event], return_inverse=True)
    d1 = np.bincount(inverse, weights=(kind[event] == _in.DELIVERED_KIND), minlength=len(times))
    d = np.bincount(inverse, minlength=len(times)).astype(float)
    at_risk = (len(ordered) - np.searchsorted(ordered, times, side="left")).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        survival = np.cumprod(1.0 - d / at_risk)
        before = np.concatenate([[1.0], survival[:-1]])
        share = np.cumsum(before * d1 / at_risk)
        a = np.where(at_risk > d, d / (at_risk * (at_risk - d)), 0.0)
        b = before**2 * d1 * (at_risk - d1) / at_risk**3
        c = before * d1 / at_risk**2
    # Σ_j (F − F_j)² a_j + Σ b_j − 2 Σ (F − F_j) c_j, as running sums
    sum_a, sum_fa, sum_ffa = np.cumsum(a), np.cumsum(share * a), np.cumsum(share * share * a)
    sum_b, sum_c, sum_fc = np.cumsum(b), np.cumsum(c), np.cumsum(share * c)
    variance = share**2 * sum_a - 2 * share * sum_fa + sum_ffa + sum_b - 2 * share * sum_c + 2 * sum_fc
    return {
        "time": times,
        "share": share,
        "variance": np.maximum(variance, 0.0),
        "at_risk": at_risk,
        "survival": survival,
        "sorted": ordered,
        "censored_sorted": np.sort(duration[~event]),
    }


def wilson_effective(share: np.ndarray, variance: np.ndarray, known: np.ndarray, confidence: float):
    """Wilson score bounds of ``share`` at the effective sample size F(1 − F)/Var (else ``known``)."""
    z = stats.norm.ppf(0.5 + confidence / 2.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        interior = (share > 0) & (share < 1) & (variance > 0)
        n = np.where(interior, share * (1.0 - share) / np.where(variance > 0, variance, 1.0), known)
        denominator = 1.0 + z * z / n
        centre = (share + z * z / (2.0 * n)) / denominator
        half = z / denominator * np.sqrt(share * (1.0 - share) / n + z * z / (4.0 * n * n))
        low, high = np.clip(centre - half, 0.0, 1.0), np.clip(centre + half, 0.0, 1.0)
    # At a share of exactly 0 (or 1) that bound is exact, not float noise beside it.
    low, high = np.where(share <= 0, 0.0, low), np.where(share >= 1, 1.0, high)
    nothing = ~(n > 0) | np.isnan(share)
    return np.where(nothing, np.nan, low), np.where(nothing, np.nan, high)


def _evaluate(curve: dict, times: np.ndarray, n: int) -> tuple[np.ndarray, ...]:
    """(share, variance, at_risk, known) at arbitrary ``times`` from an :func:`aalen_johansen` curve."""
    index = np.searchsorted(curve["time"], times, side="right") - 1
    reached = index >= 0
    safe = np.maximum(index, 0)
    share = np.where(reached, curve["share"][safe] if len(curve["time"]) else 0.0, 0.0)
    variance = np.where(reached, curve["variance"][safe] if len(curve["time"]) else 0.0, 0.0)
    at_risk = n - np.searchsorted(curve["sorted"], times, side="left")
    known = n - np.searchsorted(curve["censored_sorted"], times, side="left")  # not censored before t
    # Past the last follow-up the curve is unknown unless every send has had its event.
    last = curve["sorted"][-1] if n else -np.inf
    done = bool(len(curve["time"])) and bool(curve["survival"][-1] <= 0)
    beyond = (times > last) & (not done)
    return np.where(beyond, np.nan, share), np.where(beyond, np.nan, variance), at_risk, known


def cumulative_incidence(
    deliveries: pd.DataFrame,
    by=(),
    times=None,
    as_of=None,
    column: str = col.TOTAL_LATENCY_S,
    *,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Share of sends delivered by time t, failures competing, pending sends censored (Aalen–Johansen).

    Parameters
    ----------
    deliveries : DataFrame or dask DataFrame
        (A dask frame is folded on its cluster into each group's distinct
        (duration, kind) with counts, :func:`incidence_counts`; the curves
        are computed here, :func:`incidence_from_counts`.)
        One row per send; needs ``outcome``, ``column`` for delivered sends,
        and — when there are undelivered sends — the latency's start time,
        ``failed_at`` for failures and a time column or ``as_of`` for
        pending ones (see :func:`censored_latencies`).
    by : str or sequence of str
        Grouping columns; ``()`` gives one curve over every send. Missing
        key values form their own group.
    times : float or sequence of float, optional
        Seconds at which to evaluate the curve. None: the whole step curve,
        one row at 0 and one at every time a send was delivered or failed.
    as_of : timestamp-like, optional
        When pending sends were last known pending: each is censored at its
        age then. Default the frame's latest time
        (:func:`skycore_lab.frames.times.latest_time`).
    column : str
        The latency: ``total_latency_s`` (request → delivery, the default:
        includes any DDM wait), ``latency_s`` or ``ddm_latency_s``.
    confidence : float
        Level of the pointwise interval.

    Returns
    -------
    DataFrame
        Sorted by group then time; no sends give an empty frame with these
        columns:

        ``<by…>``
            The group keys.
        ``time_s`` : float
            Seconds since the latency's clock started.
        ``share_delivered`` : float
            Aalen–Johansen estimate of the share of sends delivered by
            ``time_s`` (steps up at deliveries, right-continuous). NaN past
            the last follow-up time when sends were still at risk there.
        ``ci_low``, ``ci_high`` : float
            Pointwise Wilson interval at the effective sample size (module
            docstring); [0, upper] before the first delivery.
        ``at_risk`` : int
            Sends still waiting (neither delivered, failed nor censored)
            just before ``time_s``.
        ``sends`` : int
            Sends in the group (with a usable duration).

    Warns
    -----
    LatencyDataWarning
        Sends without a usable duration are left out, negative durations
        set to 0; one warning counts both.

    Notes
    -----
    Without pending sends, the curve's last value is exactly the group's
    delivery rate (:func:`delivery_rates`): F(∞) = delivered / sent.
    """
    frame = deliveries if is_dask(deliveries) else _in.check_frame(deliveries)
    keys = _in.column_list(by, "by")
    confidence = _in.check_level(confidence, "confidence")
    grid = None
    if times is not None:
        grid = np.atleast_1d(np.asarray(times, dtype=float))
        if grid.ndim != 1 or not np.isfinite(grid).all() or (grid < 0).any():
            raise SkycoreValidationError("times", f"expected seconds ≥ 0, got {times!r}")
    if is_dask(deliveries):  # (duration, kind) value counts per partition on the cluster; the curves here, below
        counts = fold_partitions(deliveries, incidence_counts, keys, column, fold=True, resolve_as_of=True, as_of=as_of)
    else:
        counts = incidence_counts(frame, keys, column, as_of=as_of)
    return incidence_from_counts(counts, keys, grid, confidence)


def incidence_counts(deliveries: pd.DataFrame, keys: tuple[str, ...], column: str = col.TOTAL_LATENCY_S,
                     as_of=None, *, fold: bool = False) -> pd.DataFrame:  # fmt: skip
    """The sufficient statistics of :func:`cumulative_incidence`: each group's (duration, kind) with counts.

    ``fold=True`` counts each distinct (group, duration, kind) once (exact
    values, never rounded: a partition's fold); False gives one row per
    usable send with count 1 (the pandas path).

    Returns
    -------
    DataFrame
        ``<keys…>``, ``duration_s`` (float), ``kind`` (int8: 1 delivered,
        2 failed, 0 censored), ``sends`` (int64), usable sends only.
    """
    frame = deliveries
    names = [*keys, DURATION_S, KIND, SENDS]
    if len(frame) == 0:
        return _in.empty_frame(keys, (DURATION_S, KIND, SENDS), (KIND, SENDS))[names]
    _in.require(frame, keys, "to group by")
    duration, kind, keep = _in.competing_events(frame, column, as_of)
    kept = frame.loc[keep]
    table = pd.DataFrame({DURATION_S: duration[keep], KIND: kind[keep], SENDS: np.ones(int(keep.sum()), "int64")},
                         index=kept.index)  # fmt: skip
    table = pd.concat([kept[list(keys)], table], axis=1) if keys else table
    if fold:
        table = table.groupby([*keys, DURATION_S, KIND], dropna=False, observed=True, sort=False)[SENDS].sum()
        table = table.reset_index()
    return table[names].reset_index(drop=True)


def incidence_from_counts(counts: pd.DataFrame, keys: tuple[str, ...], times=None,
                          confidence: float = 0.95) -> pd.DataFrame:  # fmt: skip
    """:func:`cumulative_incidence` from its sufficient statistics (:func:`incidence_counts`, one frame or several).

    Each group's sends are its values repeated by their counts; the curve
    depends on that multiset only, so the result is the pandas path's.
    ``times`` is the checked grid (None: every event time).
    """
    if len(counts) == 0:
        return _in.empty_frame(keys, CUMULATIVE_INCIDENCE_COLUMNS, (AT_RISK, SENDS))
    duration = counts[DURATION_S].to_numpy(dtype=float)
    kind = counts[KIND].to_numpy(dtype=np.int8)
    sends = counts[SENDS].to_numpy(dtype="int64")
    parts = []
    for key, pos in _in.groups(counts, keys):
        d, k = np.repeat(duration[pos], sends[pos]), np.repeat(kind[pos], sends[pos])
        if not len(d):
            continue
        curve = aalen_johansen(d, k)
        at = times if times is not None else np.unique(np.concatenate([[0.0], curve["time"]]))
        share, variance, at_risk, known = _evaluate(curve, at, len(d))
        low, high = wilson_effective(share, variance, known.astype(float), confidence)
        group = {name: [value] * len(at) for name, value in zip(keys, key, strict=True)}
        parts.append(pd.DataFrame({**group, TIME_S: at, SHARE_DELIVERED: share, col.CI_LOW: low, col.CI_HIGH: high,
                                   AT_RISK: at_risk.astype("int64"), SENDS: len(d)}))  # fmt: skip
    if not parts:
        return _in.empty_frame(keys, CUMULATIVE_INCIDENCE_COLUMNS, (AT_RISK, SENDS))
    result = pd.concat(parts, ignore_index=True)
    return result[[*keys, *CUMULATIVE_INCIDENCE_COLUMNS]].astype({AT_RISK: "int64", SENDS: "int64"})


def share_at(duration: np.ndarray, kind: np.ndarray, t: float) -> tuple[float, float]:
    """(F(t), Var F(t)) of one sample: the Aalen–Johansen share delivered by ``t`` and its variance."""
    if len(duration) == 0:
        return math.nan, math.nan
    curve = aalen_johansen(duration, kind)
    share, variance, _at_risk, _known = _evaluate(curve, np.array([float(t)]), len(duration))
    return float(share[0]), float(variance[0])
