"""Simulated experiments with a known truth, written with plain numpy, apart from the code under test.

Nothing here imports skycore_lab's statistics: the worlds are defined by
their own distributions, and their true values are computed here from
those definitions (closed forms or large Monte Carlo samples), so that a
test compares the statistics against a truth that does not share their
assumptions. Only the column names (the frame's schema) come from
``skycore_lab.columns``.

A world draws, per send: its request time (sends staggered over the
sending period), whether and when it is delivered, fails, or never reports
(pending forever). A *look* at time L sees only what had happened by L:
later deliveries and failures are still pending, so outcomes arrive late
and young sends are pending because it is early.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from skycore_lab import columns as col

T0 = pd.Timestamp("2024-05-01 09:00", tz="UTC")
ARMS = ("control", "ddm")
_T0 = np.datetime64(T0.tz_convert(None), "us")


@dataclass(frozen=True)
class Sends:
    """One simulated experiment's sends (seconds from T0); NaN where something never happens."""

    arm: np.ndarray  # index into the arm labels
    requested: np.ndarray
    delivered_after: np.ndarray  # latency from the request, NaN if never delivered
    failed_after: np.ndarray  # failure time from the request, NaN if it never fails
    strata: np.ndarray | None = None


def shaped_latency(rng, n: int, slow: bool, split_s: float = 600.0, tail_s: float = 900.0, early: float = 0.8):
    """Delivery latency given delivery: a share ``early`` before ``split_s``, the rest in (split_s, split_s + tail_s].

    Both shapes put exactly ``early`` of the deliveries before ``split_s``
    and all of them before ``split_s + tail_s``, so the share delivered by
    ``split_s`` and the final delivery rate are equal; the ``slow`` shape
    (Beta(3, 1) within each segment instead of Beta(1, 3)) delivers later
    inside both segments.
    """
    a, b = (3.0, 1.0) if slow else (1.0, 3.0)
    inside = rng.beta(a, b, n)
    first = rng.random(n) < early
    return np.where(first, split_s * inside, split_s + tail_s * inside)


def null_world(rng, per_arm: int, sending_s: float = 3600.0, p_deliver: float = 0.85, p_fail: float = 0.10,
               fail_within_s: float = 1200.0) -> Sends:  # fmt: skip
    """Two arms equal in share delivered by 600 s and in final delivery rate; the DDM arm is slower.

    The rest of the sends fail (at a uniform time) or never report.
    """
    n = 2 * per_arm
    arm = np.repeat([0, 1], per_arm)
    requested = rng.uniform(0.0, sending_s, n)
    kind = rng.random(n)
    delivered = kind < p_deliver
    failed = (kind >= p_deliver) & (kind < p_deliver + p_fail)
    latency = np.where(arm == 1, shaped_latency(rng, n, slow=True), shaped_latency(rng, n, slow=False))
    return Sends(arm=arm, requested=requested, delivered_after=np.where(delivered, latency, np.nan),
                 failed_after=np.where(failed, rng.uniform(0.0, fail_within_s, n), np.nan))  # fmt: skip


def frame_at(sends: Sends, look_s: float, arms=ARMS) -> pd.DataFrame:
    """The deliveries frame a look at ``look_s`` seconds after T0 sees (sends requested by then)."""
    sent = sends.requested <= look_s
    requested = sends.requested[sent]
    delivered_at = requested + sends.delivered_after[sent]
    failed_at = requested + sends.failed_after[sent]
    delivered = delivered_at <= look_s
    failed = ~delivered & (failed_at <= look_s)
    outcome = np.where(delivered, col.OUTCOME_DELIVERED, np.where(failed, col.OUTCOME_FAILED, col.OUTCOME_PENDING))

    def stamp(seconds):
        micros = np.where(np.isnan(seconds), 0, np.round(seconds * 1e6)).astype("int64").astype("timedelta64[us]")
        values = np.where(np.isnan(seconds), np.datetime64("NaT", "us"), _T0 + micros)
        return pd.DatetimeIndex(values).tz_localize("UTC")

    frame = pd.DataFrame({
        col.ARM: np.asarray(arms, dtype=object)[sends.arm[sent]],
        col.OUTCOME: outcome,
        col.REQUESTED_AT: stamp(requested),
        col.DELIVERED_AT: stamp(np.where(delivered, delivered_at, np.nan)),
        col.FAILED_AT: stamp(np.where(failed, failed_at, np.nan)),
        col.TOTAL_LATENCY_S: np.where(delivered, sends.delivered_after[sent], np.nan),
    })  # fmt: skip
    if sends.strata is not None:
        frame[col.COUNTRY] = sends.strata[sent]
    return frame


def at(look_s: float) -> pd.Timestamp:
    return T0 + pd.Timedelta(seconds=look_s)


def aa_world(rng, arms: int, per_arm: int, sending_s: float = 3600.0, p_deliver: float = 0.85,
             p_fail: float = 0.08) -> Sends:  # fmt: skip
    """``arms`` identical arms: log-normal latency (median 40 s, σ 1.2, cut at 25 min), failures, silence."""
    n = arms * per_arm
    kind = rng.random(n)
    delivered = kind < p_deliver
    failed = (kind >= p_deliver) & (kind < p_deliver + p_fail)
    latency = np.minimum(rng.lognormal(np.log(40.0), 1.2, n), 1500.0)
    return Sends(arm=np.repeat(np.arange(arms), per_arm), requested=rng.uniform(0.0, sending_s, n),
                 delivered_after=np.where(delivered, latency, np.nan),
                 failed_after=np.where(failed, rng.uniform(0.0, 1200.0, n), np.nan))  # fmt: skip
