"""Reading a deliveries frame for the statistics: validation, outcomes and
censoring times.

Each helper reads only the columns it needs, so the statistics work on
deliveries from any source (postbacks, the sending-statistics report, a CSV
someone exported), and names the column when one is missing or unreadable.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from .. import columns as col
from ..checks import require_columns, require_frame
from ..exceptions import LatencyDataWarning, SkycoreValidationError
from ..frames.latency import clock_start
from ..frames.times import TIME_COLUMNS, as_utc, latest_time


def check_frame(deliveries) -> pd.DataFrame:
    return require_frame(deliveries, "deliveries")


def column_list(value, field: str) -> tuple[str, ...]:
    """``by``-style argument: one column name or a sequence of them."""
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, Sequence):
        names = tuple(value)
        if all(isinstance(name, str) for name in names):
            return names
    raise SkycoreValidationError(field, f"expected a column name or a sequence of column names, got {value!r}")


def require(frame: pd.DataFrame, names: Sequence[str], why: str) -> None:
    """The statistics' column check: the error's field is the missing column (an argument)."""
    require_columns(frame, names, "deliveries", why=why, field_is_column=True)


def wilson(successes: int, trials: int, confidence: float) -> tuple[float, float]:
    """Wilson score interval of a proportion.

    The closed form that ``scipy.stats.binomtest(x, n).proportion_ci(method="wilson")``
    evaluates (``tests/test_stats_rates.py`` checks the two agree to 1e-12),
    without ``binomtest``'s p-value search, which costs milliseconds a call:
    comparisons and summaries ask for many intervals.
    """
    x, n = int(successes), int(trials)
    z = _z(confidence)
    p = x / n
    denominator = 1.0 + z * z / n
    centre = (p + z * z / (2.0 * n)) / denominator
    half = z / denominator * math.sqrt(p * (1.0 - p) / n + z * z / (4.0 * n * n))
    # At 0 (or all) successes the bound is exactly 0 (or 1), not float noise beside it.
    return (0.0 if x == 0 else max(0.0, centre - half)), (1.0 if x == n else min(1.0, centre + half))


@functools.lru_cache(maxsize=64)
def _z(confidence: float) -> float:
    return float(stats.norm.ppf(0.5 + confidence / 2.0))


def check_level(value, field: str) -> float:
    try:
        level = float(value)
    except (TypeError, ValueError):
        level = np.nan
    if not 0.0 < level < 1.0:
        raise SkycoreValidationError(field, f"must be a number strictly between 0 and 1, got {value!r}")
    return level


def outcomes(frame: pd.DataFrame) -> np.ndarray:
    """The outcome column as a numpy array of vocabulary strings.

    Case and surrounding blanks are forgiven (``" Delivered"``); a missing or
    unknown outcome is an error, not a guess: a blank cell could be a pending
    send or a lost failure, and the two move a delivery rate differently.
    The distinct values are read once (``pandas.factorize``), so a million
    rows cost one pass, not a million string operations.
    """
    require(frame, [col.OUTCOME], "to tell delivered, failed and pending sends apart")
    codes, uniques = pd.factorize(frame[col.OUTCOME], use_na_sentinel=True)
    names = np.array([str(value).strip().lower() for value in np.asarray(uniques, dtype=object)], dtype=object)
    known = np.isin(names, col.OUTCOMES) if len(names) else np.zeros(0, bool)
    bad = (codes < 0) | ~np.append(known, False)[codes]
    if bad.any():
        shown = sorted({str(v) for v in frame[col.OUTCOME].to_numpy(dtype=object)[bad][:1000]})[:5]
        raise SkycoreValidationError(
            col.OUTCOME,
            f"{int(bad.sum())} row(s) have a missing or unknown outcome (e.g. {shown}); expected one of "
            f"{list(col.OUTCOMES)}",
        )
    return names[codes] if len(names) else np.array([], dtype=object)


def _timestamps(frame: pd.DataFrame, name: str) -> np.ndarray:
    """A time column as naive-UTC datetime64 (naive input is taken as UTC)."""
    return as_utc(frame[name], name, naive="utc").dt.tz_convert(None).to_numpy()


def _to_utc(value) -> np.datetime64:
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        raise SkycoreValidationError("as_of", f"not a timestamp: {value!r} ({exc})") from None
    if stamp is pd.NaT:
        raise SkycoreValidationError("as_of", "must be a timestamp, got NaT")
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return stamp.tz_convert(None).to_datetime64()


def resolve_as_of(frame: pd.DataFrame, as_of) -> np.datetime64 | None:
    """``as_of`` as naive-UTC datetime64; None: the frame's latest known time."""
    if as_of is not None:
        return _to_utc(as_of)
    latest = latest_time(frame)
    return None if latest is None else latest.tz_convert(None).to_datetime64()


def _start_times(frame: pd.DataFrame, column: str) -> np.ndarray:
    """When the latency clock of ``column`` started, per row (:func:`skycore_lab.frames.latency.clock_start`)."""
    return clock_start(frame, column).dt.tz_convert(None).to_numpy()


def _seconds(delta: np.ndarray) -> np.ndarray:
    return delta / np.timedelta64(1, "s")


def delivered_latency(frame: pd.DataFrame, column: str) -> np.ndarray:
    """The latency column as float seconds (NaN where unknown)."""
    values = frame[column]
    if pd.api.types.is_timedelta64_dtype(values.dtype):
        return values.dt.total_seconds().to_numpy(dtype=float, na_value=np.nan)
    try:
        seconds = pd.to_numeric(values, errors="raise")
    except (TypeError, ValueError) as exc:
        raise SkycoreValidationError(column, f"latency must be numeric seconds: {exc}") from None
    # A copy: under pandas' copy-on-write, to_numpy() may be a read-only view.
    seconds = np.array(seconds.to_numpy(dtype=float, na_value=np.nan), dtype=float, copy=True)
    seconds[~np.isfinite(seconds)] = np.nan
    return seconds


def censored_durations(
    frame: pd.DataFrame,
    column: str,
    as_of,
    outcome: np.ndarray | None = None,
    needed: str = "all",
) -> tuple[np.ndarray, np.ndarray]:
    """Durations (float seconds, NaN when unknown) and delivery flags, per row.

    ``needed="all"`` censors failures and pending sends; ``"pending"`` only
    the pending ones (failures get NaN), for metrics that need no failure time.
    ``as_of`` must already be resolved (:func:`resolve_as_of`).
    """
    if outcome is None:
        outcome = outcomes(frame)
    delivered = outcome == col.OUTCOME_DELIVERED
    failed = np.isin(outcome, col.FAILURE_OUTCOMES) if needed == "all" else np.zeros(len(frame), bool)
    pending = outcome == col.OUTCOME_PENDING
    duration = np.full(len(frame), np.nan)
    if delivered.any():
        require(frame, [column], "for the latency of delivered sends")
        duration[delivered] = delivered_latency(frame, column)[delivered]
    if failed.any() or pending.any():
        start = _start_times(frame, column)
        if failed.any():
            require(frame, [col.FAILED_AT], "to censor failed sends at the time they failed")
            duration[failed] = _seconds(_timestamps(frame, col.FAILED_AT)[failed] - start[failed])
        if pending.any():
            if as_of is None:
                raise SkycoreValidationError(
                    "as_of",
                    "pending sends are censored at the last known time; pass as_of= or include one of the "
                    f"time columns {list(TIME_COLUMNS)}",
                )
            duration[pending] = _seconds(as_of - start[pending])
    return duration, delivered


def clean_durations(duration: np.ndarray, outcome: np.ndarray, column: str) -> tuple[np.ndarray, np.ndarray]:
    """Clip negative durations to 0 and flag unknown ones, warning once about both.

    Returns the clipped durations and the mask of rows to keep.
    """
    keep = np.isfinite(duration)
    negative = keep & (duration < 0)
    problems = []
    if not keep.all():
        lost = pd.Series(outcome[~keep]).value_counts()
        detail = ", ".join(f"{name}: {count}" for name, count in lost.items())
        problems.append(
            f"left out {int((~keep).sum())} send(s) whose {column} or censoring time is unknown ({detail}); "
            "check the latency and time columns"
        )
    if negative.any():
        problems.append(
            f"set {int(negative.sum())} negative duration(s) to 0 (timestamps out of order: clock skew between systems?)"
        )
    if problems:
        warnings.warn("; ".join(problems), LatencyDataWarning, stacklevel=4)
    return np.where(negative, 0.0, duration), keep


def censor(frame: pd.DataFrame, column: str, as_of) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Durations, delivery flags and the mask of usable rows (see ``censored_latencies``).

    ``as_of`` is the caller's argument (None: the frame's latest time).
    """
    outcome = outcomes(frame)
    as_of = resolve_as_of(frame, as_of) if (outcome == col.OUTCOME_PENDING).any() else None
    duration, observed = censored_durations(frame, column, as_of, outcome)
    duration, keep = clean_durations(duration, outcome, column)
    return duration, observed, keep


#: Kinds of end of a send's follow-up, for competing-risks estimates (:func:`competing_events`).
CENSORED_KIND, DELIVERED_KIND, FAILED_KIND = 0, 1, 2


def competing_events(frame: pd.DataFrame, column: str, as_of) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Durations, event kinds and usable rows for a competing-risks estimate.

    Delivered sends end at ``column`` (kind 1), failures at ``failed_at``
    (kind 2, the competing event), pending sends are censored at ``as_of``
    (kind 0). Durations come from :func:`censored_durations` (the one
    censoring rule) and :func:`clean_durations` (negative ones clipped to 0
    and unknown ones left out, with one warning that counts both).
    """
    outcome = outcomes(frame)
    as_of = resolve_as_of(frame, as_of) if (outcome == col.OUTCOME_PENDING).any() else None
    duration, delivered = censored_durations(frame, column, as_of, outcome)
    duration, keep = clean_durations(duration, outcome, column)
    kind = np.where(delivered, DELIVERED_KIND, np.where(np.isin(outcome, col.FAILURE_OUTCOMES), FAILED_KIND, 0))
    return duration, kind.astype(np.int8), keep


def ages(frame: pd.DataFrame, column: str, as_of) -> np.ndarray | None:
    """Seconds each send's ``column`` clock had run at ``as_of`` (NaN where its start is unknown).

    ``as_of`` None means the frame's latest time. None when the frame has no
    start column for that clock, or no time at all: the sends' ages are
    then unknown.
    """
    try:
        start = _start_times(frame, column)
    except SkycoreValidationError:
        return None
    moment = resolve_as_of(frame, as_of)
    if moment is None:
        return None
    return _seconds(moment - start)


def clip_negative(values: np.ndarray, column: str, stacklevel: int = 3) -> np.ndarray:
    """``values`` with negative entries set to 0, warning how many there were.

    A negative latency is a clock-skew artefact, not a fast delivery; it is
    counted and said, never silently taken as "within the deadline".
    """
    negative = np.less(values, 0, where=~np.isnan(values), out=np.zeros(len(values), bool))
    if negative.any():
        warnings.warn(
            f"set {int(negative.sum())} negative {column} value(s) to 0 (timestamps out of order: clock skew "
            "between systems?)",
            LatencyDataWarning,
            stacklevel=stacklevel,
        )
        values = np.where(negative, 0.0, values)
    return values


def groups(frame: pd.DataFrame, keys: tuple[str, ...]):
    """(key tuple, positions) for each non-empty group, in sorted key order."""
    if not keys:
        return [((), np.arange(len(frame)))] if len(frame) else []
    grouped = frame.groupby(list(keys), dropna=False, observed=True, sort=True)
    return [(key if isinstance(key, tuple) else (key,), pos) for key, pos in grouped.indices.items()]


def empty_frame(keys, names, int_columns) -> pd.DataFrame:
    """A frame with no rows: key columns (object), counts (int64), the rest float."""
    columns = {key: pd.Series(dtype=object) for key in keys}
    columns |= {name: pd.Series(dtype="int64" if name in int_columns else float) for name in names}
    return pd.DataFrame(columns)
