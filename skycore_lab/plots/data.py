"""The tidy frames behind :mod:`skycore_lab.plots` — computation apart from drawing.

Each plot first calls one function here, which returns a small tidy frame,
then draws it. Rates, intervals and censoring come from
:mod:`skycore_lab.stats` (never re-derived here); survival curves from
:func:`scipy.stats.ecdf`. The frames' column names (``group``, ``hue``,
``n``...) are private to the plots and not part of any public frame.
"""

from __future__ import annotations

import warnings
from collections.abc import Hashable

import numpy as np
import pandas as pd

from .. import reference as ref
from .. import columns as col
from ..exceptions import PlotDataWarning, SkycoreValidationError
from ..frames.times import PLAUSIBLE_TIMES, event_time, plottable_times

# --- vocabulary of the plots ------------------------------------------------------------
#: Label of a missing group value (never dropped).
MISSING_LABEL = "(missing)"
#: Hue label of the single series when there is no hue column.
SINGLE = ""
#: Label of handsets summed past the top N.
OTHER_HANDSETS = "other"
#: Label of numbers whose handset is unknown.
UNKNOWN_HANDSET = "unknown"

# Notification families of plot_timeline, in drawing order.
FAMILY_SENT = "sent"
FAMILY_DELIVERED = "delivered"
FAMILY_FAILED = "failed"
FAMILY_DDM = "DDM"
FAMILY_OTHER = "other"
FAMILIES: tuple[str, ...] = (FAMILY_SENT, FAMILY_DELIVERED, FAMILY_FAILED, FAMILY_DDM, FAMILY_OTHER)

# --- columns of the tidy frames ------------------------------------------------------------
GROUP = "group"
HUE = "hue"
N = "n"
COUNT = "count"
SHARE = "share"
X = "x"
Y = "y"
Y_LOW = "y_low"
Y_HIGH = "y_high"
X_RIGHT = "x_right"
FAMILY = "family"
IS_REST = "is_rest"  # an "other"/"unknown" bar rather than a named handset


# --- labels and order -------------------------------------------------------------------------
def labels(values: pd.Series) -> pd.Series:
    """Group labels as text, missing values as ``(missing)`` (never dropped)."""
    text = values.astype(object).where(values.notna(), MISSING_LABEL)
    return text.map(str)


def order(values: pd.Series, *, by_count: bool) -> list[str]:
    """Display order of the labels of ``values``.

    A categorical keeps its category order (observed categories only) when it
    is ordered, or when ``by_count`` is False (arms: the experiment's order,
    as :func:`skycore_lab.stats.compare_arms` uses). Otherwise ``by_count``
    orders by number of rows, largest first, ties by name; else by name.
    ``(missing)`` comes last.
    """
    text = labels(values)
    present = set(text)
    if isinstance(values.dtype, pd.CategoricalDtype) and (values.dtype.ordered or not by_count):
        result = [str(c) for c in values.cat.categories if str(c) in present]
    elif by_count:
        counts = text.value_counts()
        result = sorted((label for label in counts.index if label != MISSING_LABEL), key=lambda v: (-counts[v], v))
    else:
        result = sorted(present - {MISSING_LABEL})
    return result + ([MISSING_LABEL] if MISSING_LABEL in present and MISSING_LABEL not in result else [])


def _concat(parts: list[pd.DataFrame], columns: list[str]) -> pd.DataFrame:
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)


# --- delivery rates -----------------------------------------------------------------------------
def rates_frame(
    deliveries: pd.DataFrame, by: str, hue: str | None, confidence: float, exclude_pending: bool
) -> pd.DataFrame:
    """Tidy rates from :func:`skycore_lab.stats.delivery_rates`.

    Columns: ``group``, ``hue`` (``""`` without hue), ``n`` (the rate's
    denominator), ``rate``, ``ci_low``, ``ci_high``. Groups with no counted
    send are absent.
    """
    from .. import stats  # deferred: stats imports scipy.stats

    keys = (by,) if hue is None else (by, hue)
    rates = stats.delivery_rates(deliveries, by=keys, confidence=confidence, exclude_pending=exclude_pending)
    return pd.DataFrame(
        {
            GROUP: labels(rates[by]).to_numpy(),
            HUE: labels(rates[hue]).to_numpy() if hue is not None else SINGLE,
            N: rates[col.SENT].to_numpy(dtype="int64"),
            col.RATE: rates[col.RATE].to_numpy(dtype=float),
            col.CI_LOW: rates[col.CI_LOW].to_numpy(dtype=float),
            col.CI_HIGH: rates[col.CI_HIGH].to_numpy(dtype=float),
        }
    )


# --- outcomes ------------------------------------------------------------------------------------
def outcome_shares(deliveries: pd.DataFrame, by: str) -> pd.DataFrame:
    """Tidy outcome shares per group, zeros included.

    Columns: ``group`` (largest first), ``outcome`` (:data:`columns.OUTCOMES`
    order, then any unknown or missing outcome under its own label),
    ``count``, ``n`` (the group's sends) and ``share`` = count / n.
    """
    groups = order(deliveries[by], by_count=by != col.ARM)
    outcome = labels(deliveries[col.OUTCOME])
    extra = sorted(set(outcome) - set(col.OUTCOMES))
    counts = pd.crosstab(labels(deliveries[by]), outcome).reindex(
        index=groups, columns=[*col.OUTCOMES, *extra], fill_value=0
    )
    tidy = counts.rename_axis(index=GROUP, columns=col.OUTCOME).stack().rename(COUNT).reset_index()
    tidy[N] = tidy[GROUP].map(counts.sum(axis=1))
    tidy[SHARE] = tidy[COUNT] / tidy[N]
    return tidy


# --- latency ---------------------------------------------------------------------------------------
def _censored_by_hue(
    deliveries: pd.DataFrame, hue: str | None, column: str, as_of, delivered_only: bool
) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(hue label, duration_s, observed) per non-empty group, in hue order.

    One call of :func:`skycore_lab.stats.censored_latencies` on the whole
    frame (the single definition of censoring), so every group is censored at
    the same ``as_of``. ``delivered_only`` first keeps delivered sends, so
    that no time column is needed for the others.
    """
    from .. import stats  # deferred: stats imports scipy.stats

    frame = deliveries.reset_index(drop=True)
    if delivered_only:
        outcome = frame[col.OUTCOME].astype(object).map(lambda v: str(v).strip().lower() if pd.notna(v) else v)
        frame = frame[(outcome == col.OUTCOME_DELIVERED).to_numpy()]
    censored = stats.censored_latencies(frame, column=column, as_of=as_of)
    duration = censored[stats.DURATION_S].to_numpy(dtype=float)
    observed = censored[stats.OBSERVED].to_numpy(dtype=bool)
    if hue is None:
        return [(SINGLE, duration, observed)] if len(duration) else []
    group = labels(frame.loc[censored.index, hue]).to_numpy()
    result = []
    for level in order(deliveries[hue], by_count=False):
        mine = group == level
        if mine.any():
            result.append((level, duration[mine], observed[mine]))
    return result


def _last(values: np.ndarray) -> float:
    return float(values[-1]) if len(values) else 0.0


def km_curves(deliveries: pd.DataFrame, hue: str | None, column: str, confidence: float, as_of) -> pd.DataFrame:
    """Tidy Kaplan–Meier curves of the share delivered by time t.

    Columns: ``hue``, ``n`` (sends in the curve), ``x`` (seconds), ``y``
    (1 − KM survival at x, for a post-step), ``y_low``, ``y_high`` (pointwise
    log-log band, the band :func:`skycore_lab.stats.latency_summary` inverts
    for its bounds). :func:`scipy.stats.ecdf` on
    :class:`scipy.stats.CensoredData`; each curve starts at 0 at its first
    time and runs to its last follow-up time. Where the log-log band is
    undefined (curve at 0 or 1) it collapses onto the estimate.
    """
    from scipy import stats as sps

    parts = []
    for level, duration, observed in _censored_by_hue(deliveries, hue, column, as_of, delivered_only=False):
        data = sps.CensoredData(uncensored=duration[observed], right=duration[~observed])
        cdf = sps.ecdf(data).cdf
        with warnings.catch_warnings():
            # scipy warns where the band is undefined; NaNs are replaced just below
            warnings.simplefilter("ignore", RuntimeWarning)
            band = cdf.confidence_interval(confidence_level=confidence, method="log-log")
        x = np.concatenate([[cdf.quantiles[0]], cdf.quantiles])
        y = np.concatenate([[0.0], cdf.probabilities])
        low = np.concatenate([[0.0], band.low.probabilities])
        high = np.concatenate([[0.0], band.high.probabilities])
        low, high = np.where(np.isnan(low), y, low), np.where(np.isnan(high), y, high)
        parts.append(pd.DataFrame({HUE: level, N: len(duration), X: x, Y: y, Y_LOW: low, Y_HIGH: high}))
    return _concat(parts, [HUE, N, X, Y, Y_LOW, Y_HIGH])


def cif_curves(deliveries: pd.DataFrame, hue: str | None, column: str, confidence: float, as_of) -> pd.DataFrame:
    """Tidy curves of the share of sends delivered by time t, failures competing (Aalen–Johansen).

    Columns: ``hue``, ``n`` (sends in the curve), ``x`` (seconds), ``y``
    (share delivered by x, for a post-step), ``y_low``, ``y_high`` (its
    pointwise interval), all from :func:`skycore_lab.stats.cumulative_incidence`
    (one call on the whole frame, so every group is censored at the same
    ``as_of``). Each curve starts at 0 at its first event time (or at 0 s
    when sends were delivered at once) and ends at its last event; its
    plateau is the group's delivery rate once nothing is pending.
    """
    from .. import stats  # deferred: stats imports scipy.stats

    frame = deliveries.reset_index(drop=True)
    by = ()
    if hue is not None:
        frame = frame.assign(**{HUE: labels(frame[hue]).to_numpy()})
        by = (HUE,)
    curves = stats.cumulative_incidence(frame, by=by, as_of=as_of, column=column, confidence=confidence)
    parts = []
    levels = order(deliveries[hue], by_count=False) if hue is not None else [SINGLE]
    for level in levels:
        rows = curves[curves[HUE] == level] if hue is not None else curves
        if rows.empty:
            continue
        x = rows[stats.TIME_S].to_numpy(dtype=float)
        y = rows[stats.SHARE_DELIVERED].to_numpy(dtype=float)
        low = rows[col.CI_LOW].to_numpy(dtype=float)
        high = rows[col.CI_HIGH].to_numpy(dtype=float)
        if len(x) > 1 and x[0] == 0 and y[0] == 0:  # the start row: draw it at the first event instead
            x = np.concatenate([[x[1]], x[1:]])
            y, low, high = (np.concatenate([[0.0], v[1:]]) for v in (y, low, high))
            low[0] = high[0] = 0.0
        n = int(rows[stats.SENDS].iloc[0])
        parts.append(pd.DataFrame({HUE: level, N: n, X: x, Y: y, Y_LOW: low, Y_HIGH: high}))
    return _concat(parts, [HUE, N, X, Y, Y_LOW, Y_HIGH])


def ecdf_curves(deliveries: pd.DataFrame, hue: str | None, column: str) -> pd.DataFrame:
    """Tidy empirical CDFs of the delivered sends' latency.

    Columns: ``hue``, ``n`` (delivered sends), ``x`` (seconds), ``y`` (share
    of delivered sends with latency ≤ x).
    """
    from scipy import stats as sps

    parts = []
    for level, duration, _observed in _censored_by_hue(deliveries, hue, column, None, delivered_only=True):
        cdf = sps.ecdf(duration).cdf
        x = np.concatenate([[cdf.quantiles[0]], cdf.quantiles])
        y = np.concatenate([[0.0], cdf.probabilities])
        parts.append(pd.DataFrame({HUE: level, N: len(duration), X: x, Y: y}))
    return _concat(parts, [HUE, N, X, Y])


def histograms(deliveries: pd.DataFrame, hue: str | None, column: str, bins: int) -> pd.DataFrame:
    """Tidy histograms of the delivered sends' latency.

    Columns: ``hue``, ``n`` (delivered sends), ``x`` and ``x_right`` (bin
    edges, seconds), ``y`` (the group's share of sends in the bin). The bins
    are shared by all groups and log-spaced from the smallest positive
    latency to the largest (latencies are roughly log-normal); 0 s latencies
    (clock skew, clipped by ``censored_latencies``) count in the first bin.
    Linear bins when no latency is positive.
    """
    groups = _censored_by_hue(deliveries, hue, column, None, delivered_only=True)
    if not groups:
        return pd.DataFrame(columns=[HUE, N, X, X_RIGHT, Y])
    every = np.concatenate([duration for _level, duration, _observed in groups])
    positive = every[every > 0]
    if len(positive):
        low, high = positive.min(), positive.max()
        edges = np.geomspace(low, high, bins + 1) if high > low else np.array([low / 1.5, low * 1.5])
    else:
        edges = np.linspace(every.min(), every.min() + 1.0, bins + 1)
    parts = []
    for level, duration, _observed in groups:
        counts, _ = np.histogram(np.clip(duration, edges[0], edges[-1]), bins=edges)
        parts.append(
            pd.DataFrame({HUE: level, N: len(duration), X: edges[:-1], X_RIGHT: edges[1:], Y: counts / len(duration)})
        )
    return _concat(parts, [HUE, N, X, X_RIGHT, Y])


# --- handsets -------------------------------------------------------------------------------------
def handset_counts(profiles: pd.DataFrame, top: int) -> pd.DataFrame:
    """Tidy handset counts, one row per bar.

    Columns: ``handset`` (label), ``count`` (phone numbers), ``share`` (of
    all numbers), ``is_rest`` (True for the ``other (k handsets)`` and
    ``unknown`` rows). The top ``top`` handsets by count (ties by name), then
    the rest summed as ``other (k handsets)``, then ``unknown`` (missing or
    blank handset).
    """
    handset = profiles[col.HANDSET].astype(object)
    text = handset.map(lambda v: str(v).strip() if pd.notna(v) else "")
    known = text != ""
    counts = text[known].value_counts()
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    rows = [(name, int(count), False) for name, count in ranked[:top]]
    rest = ranked[top:]
    if rest:
        rows.append((f"{OTHER_HANDSETS} ({len(rest)} handsets)", sum(count for _name, count in rest), True))
    unknown = int((~known).sum())
    if unknown:
        rows.append((UNKNOWN_HANDSET, unknown, True))
    tidy = pd.DataFrame(rows, columns=[col.HANDSET, COUNT, IS_REST])
    tidy[SHARE] = tidy[COUNT] / len(profiles)
    return tidy[[col.HANDSET, COUNT, SHARE, IS_REST]]


# --- timeline ----------------------------------------------------------------------------------------
def family_of(code: Hashable) -> str:
    """Notification family of a postback code (see :func:`skycore_lab.plots.plot_timeline`)."""
    code = str(code).strip().upper() if isinstance(code, str) else code
    if code in ref.SENT_CODES:
        return FAMILY_SENT
    if code in ref.DELIVERED_CODES:
        return FAMILY_DELIVERED
    if code in ref.FAILED_CODES:
        return FAMILY_FAILED
    if code in ref.DDM_CODES:
        return FAMILY_DDM
    return FAMILY_OTHER


def timeline_counts(events: pd.DataFrame, freq: str, dedupe: bool) -> pd.DataFrame:
    """Notifications per time bin and family.

    Index: ``timestamp``, the bins' starts (naive UTC), every bin from the
    first to the last (empty bins are zeros). Columns: the families present,
    in :data:`FAMILIES` order, int counts. Rows without any time are left out;
    so are rows whose time lies outside
    :data:`~skycore_lab.frames.times.PLAUSIBLE_TIMES` (year 0001, 9999 …),
    with a :class:`~skycore_lab.exceptions.PlotDataWarning` that counts them.
    """
    if dedupe:
        from ..postbacks.dedupe import drop_duplicate_events  # deferred: loads the parser's kernel

        events = drop_duplicate_events(events)
    time = event_time(events, naive="utc")
    plottable = plottable_times(time)
    outside = int((time.notna() & ~plottable).sum())
    if outside:
        start, end = (stamp.strftime("%Y-%m-%d") for stamp in PLAUSIBLE_TIMES)
        warnings.warn(
            f"{outside} notification(s) with a time outside {start} – {end} (UTC) left out of the timeline "
            "(kept in the data)",
            PlotDataWarning,
            stacklevel=3,
        )
    keep = plottable.to_numpy()
    family = events[col.CODE].astype(object).map(family_of)[keep]
    onehot = pd.get_dummies(family).astype("int64")
    onehot.index = pd.DatetimeIndex(time[keep]).tz_convert("UTC").tz_localize(None)  # naive = UTC
    try:
        counts = onehot.resample(freq).sum()
    except (ValueError, TypeError) as exc:
        raise SkycoreValidationError("freq", f"not a pandas frequency: {freq!r} ({exc})") from None
    present = [name for name in FAMILIES if name in counts.columns]
    return counts[present].rename_axis(index=col.TIMESTAMP, columns=FAMILY)
