"""Outcome windows: which sends a comparison may count while an experiment runs.

A send's answer to "was it delivered within w seconds?" is known for good
once w seconds have passed since its clock started, and not before: a young
pending send may still deliver. A comparison that counted the young sends
whose answer happens to be in already (the fast deliveries, the early
failures) and left out the young pending ones would choose its sends by
their outcome, and the slower arm would look worse at every interim look.

So every arm comparison counts a send only once its **outcome window** has
closed at ``as_of`` (its age ≥ w), and then judges it on what happened
within the window. Which sends count depends on their request times only,
never on their outcomes; each send enters with its final answer, so the
counted sends form a growing sample of independent, final outcomes — what
the fixed-horizon tests assume at one look and the always-valid tests
(:mod:`.sequential`) at every look.

The windows:

* ``delivered_within`` — the deadline ``within_s`` (the latency column's clock);
* ``latency`` — the horizon ``horizon_s`` of the restricted mean time to delivery;
* ``delivery_rate`` — ``settle_s`` from the request: the longest DDM
  timeout of the design plus :data:`DEFAULT_DELIVERY_ALLOWANCE_S` for the
  content to arrive (:func:`default_settle_s`). A send still pending when
  its window closes counts as not delivered; a delivery after the window
  does not count. Choose ``settle_s`` to cover the deliveries you care
  about: the rate compared is "delivered within ``settle_s``".

A frame without any time column (no way to know the sends' ages) counts
every send as final; only ``delivery_rate`` accepts pending sends there
(counted as not delivered: the caller vouches the data are final).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .. import columns as col
from ..exceptions import LatencyDataWarning, SkycoreValidationError
from ..frames.latency import LATENCIES, latency_seconds
from ..reference import DEFAULT_DDM_TIMEOUT_MIN
from . import inputs as _in

__all__ = ["DEFAULT_DELIVERY_ALLOWANCE_S", "default_settle_s", "WindowedOutcomes", "windowed_outcomes"]

#: Seconds allowed, after the longest DDM timeout, for an MMS to be delivered
#: before a send's delivery-rate window closes (30 min: in the sandbox's
#: default world, 1 delivery in 1,300 comes later).
DEFAULT_DELIVERY_ALLOWANCE_S = 1800.0


def default_settle_s(ddm_timeouts_min=()) -> float:
    """The delivery-rate window: the longest DDM timeout plus the delivery allowance, seconds.

    Parameters
    ----------
    ddm_timeouts_min : iterable of float
        The DDM timeouts of the design's arms, minutes (arms without DDM
        left out). Empty: the platform's default timeout
        (:data:`skycore_lab.reference.DEFAULT_DDM_TIMEOUT_MIN`).
    """
    timeouts = [float(t) for t in ddm_timeouts_min if t is not None]
    longest = max(timeouts) if timeouts else float(DEFAULT_DDM_TIMEOUT_MIN)
    return longest * 60.0 + DEFAULT_DELIVERY_ALLOWANCE_S


def check_window(value, field: str) -> float:
    """A window length in seconds, > 0 and finite."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise SkycoreValidationError(field, f"must be a number of seconds > 0, got {value!r}")
    if not 0 < float(value) < math.inf:
        raise SkycoreValidationError(field, f"must be a number of seconds > 0, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class WindowedOutcomes:
    """Per send: whether it counts, and what happened within its window.

    Attributes
    ----------
    counted : ndarray of bool
        The window has closed (every usable send when ``timed`` is False).
    within : ndarray of bool
        Delivered within the window (delivered at all, when the frame holds
        no latency to check against).
    latency : ndarray of float
        Delivered sends' latency in seconds, clipped at 0; NaN for the others.
    timed : bool
        Whether the sends' ages were known.
    window_s : float
        The window, or NaN when it could not be applied (``timed`` False).
    """

    counted: np.ndarray
    within: np.ndarray
    latency: np.ndarray
    timed: bool
    window_s: float


def _latency(frame: pd.DataFrame, column: str, delivered: np.ndarray) -> np.ndarray | None:
    """The delivered sends' latency from ``column``, else from the time columns that define it; None if neither."""
    if column in frame.columns:
        values = _in.delivered_latency(frame, column)
    elif column in LATENCIES and LATENCIES[column].end in frame.columns:
        values = latency_seconds(frame, column).to_numpy(dtype=float)
    else:
        return None
    return np.where(delivered, values, np.nan)


def windowed_outcomes(
    frame: pd.DataFrame,
    outcome: np.ndarray,
    column: str,
    window_s: float,
    as_of,
    *,
    need_latency: bool,
    untimed_pending: str = "error",
    stacklevel: int = 4,
) -> WindowedOutcomes:
    """Which sends' windows have closed at ``as_of``, and whether each was delivered within it.

    Parameters
    ----------
    frame : DataFrame
        One row per send.
    outcome : ndarray
        :func:`skycore_lab.stats.inputs.outcomes` of ``frame``.
    column : str
        The latency whose clock the window runs on (its start per
        :func:`skycore_lab.frames.latency.clock_start`).
    window_s : float
        The window, seconds.
    as_of : timestamp-like or None
        The look; None: the frame's latest time.
    need_latency : bool
        A delivered send whose latency is unknown cannot be judged and is
        left out (with a warning). False: it counts as delivered within the
        window (as every delivered send does when the frame holds no
        latency at all).
    untimed_pending : {"error", "count"}
        Without any time column, pending sends are an error (their age is
        unknown) or counted as not delivered.

    Warns
    -----
    LatencyDataWarning
        Once, counting the sends left out (unknown start time or latency)
        and the negative latencies set to 0.
    """
    delivered = outcome == col.OUTCOME_DELIVERED
    pending = outcome == col.OUTCOME_PENDING
    latency = _latency(frame, column, delivered)
    if latency is None:
        if need_latency and delivered.any():
            _in.require(frame, [column], "for the latency of delivered sends")
        latency = np.full(len(frame), np.nan)
        within = delivered.copy()
    else:
        latency = _in.clip_negative(latency, column, stacklevel=stacklevel)
        within = delivered & (latency <= window_s)
        if not need_latency:  # a delivery whose latency is unknown cannot be shown late: it counts
            within |= delivered & np.isnan(latency)
    usable = ~(delivered & np.isnan(latency)) if need_latency else np.ones(len(frame), bool)
    age = _in.ages(frame, column, as_of)
    problems = []
    if age is None:
        if pending.any() and untimed_pending != "count":
            raise SkycoreValidationError(
                "as_of",
                f"{int(pending.sum())} pending send(s) but no time column to tell how long they have waited; include "
                f"the request or send times (e.g. {col.REQUESTED_AT!r}) so that only sends whose outcome is known "
                "are compared",
            )
        counted, timed, used = usable, False, math.nan
    else:
        unknown = np.isnan(age)
        if unknown.any():
            problems.append(f"{int(unknown.sum())} send(s) whose start time is unknown")
        counted, timed, used = usable & ~unknown & (age >= window_s), True, float(window_s)
    if not usable.all():
        problems.insert(0, f"{int((~usable).sum())} delivered send(s) whose {column} is unknown")
    if problems:
        warnings.warn("left out " + " and ".join(problems), LatencyDataWarning, stacklevel=stacklevel)
    return WindowedOutcomes(counted=counted, within=within & counted, latency=latency, timed=timed, window_s=used)
