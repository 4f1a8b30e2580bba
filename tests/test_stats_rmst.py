"""The latency comparison: its test and its interval estimate the same quantity, and both are calibrated.

``compare_arms(metric="latency")`` compares the restricted mean time to
delivery up to a horizon H (a send not delivered by H counts as H). The true
values come from the world's own definition, by a large Monte Carlo sample
drawn with plain numpy; the experiments are staggered and looked at while
young sends are still inside their window.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from skycore_lab import columns as col
from skycore_lab import stats

T0 = pd.Timestamp("2024-05-01 09:00", tz="UTC")
HORIZON_S = 600.0
LOOK_S = 2100.0  # sends of the last 5 min are younger than the horizon


def _draw(rng, n: int, ddm_wait_s: float, p_deliver: float):
    """(delivered_after, failed_after) of n sends: log-normal latency after a uniform DDM wait."""
    kind = rng.random(n)
    delivered = kind < p_deliver
    failed = (kind >= p_deliver) & (kind < p_deliver + 0.08)
    latency = rng.uniform(0.0, ddm_wait_s, n) + rng.lognormal(np.log(60.0), 1.0, n)
    return np.where(delivered, latency, np.nan), np.where(failed, rng.uniform(0.0, 900.0, n), np.nan)


ARMS = {"control": (0.0, 0.85), "ddm": (240.0, 0.88)}


def _true_rmst(wait_s: float, p_deliver: float) -> float:
    delivered_after, _ = _draw(np.random.default_rng(123), 4_000_000, wait_s, p_deliver)
    return float(np.where(delivered_after <= HORIZON_S, delivered_after, HORIZON_S).mean())


def _experiment(rng, arms: dict, per_arm: int) -> pd.DataFrame:
    parts = []
    for name, (wait_s, p_deliver) in arms.items():
        requested = rng.uniform(0.0, 1800.0, per_arm)
        delivered_after, failed_after = _draw(rng, per_arm, wait_s, p_deliver)
        age = LOOK_S - requested
        delivered = delivered_after <= age
        failed = ~delivered & (failed_after <= age)
        parts.append(pd.DataFrame({
            col.ARM: name,
            col.OUTCOME: np.where(delivered, "delivered", np.where(failed, "failed", "pending")),
            col.REQUESTED_AT: T0 + pd.to_timedelta(requested, unit="s"),
            col.TOTAL_LATENCY_S: np.where(delivered, delivered_after, np.nan),
            col.FAILED_AT: T0 + pd.to_timedelta(np.where(failed, requested + failed_after, np.nan), unit="s"),
        }))  # fmt: skip
    return pd.concat(parts, ignore_index=True)


def _compare(frame: pd.DataFrame, sequential: bool = False) -> pd.Series:
    return stats.compare_arms(frame, metric="latency", horizon_s=HORIZON_S, column=col.TOTAL_LATENCY_S,
                              as_of=T0 + pd.Timedelta(seconds=LOOK_S), sequential=sequential).iloc[0]  # fmt: skip


@pytest.mark.slow
def test_interval_covers_the_true_difference_and_the_test_has_its_size():
    truth = _true_rmst(*ARMS["ddm"]) - _true_rmst(*ARMS["control"])
    assert truth > 60  # the DDM wait costs about a minute and a half
    rng = np.random.default_rng(8)
    covered, rejected_aa, agree, counted = [], [], [], []
    for _ in range(500):
        row = _compare(_experiment(rng, ARMS, 300))
        covered.append(row[col.CI_LOW] <= truth <= row[col.CI_HIGH])
        counted.append(row[stats.N_ARM])
        aa = _compare(_experiment(rng, {"control": ARMS["control"], "ddm": ARMS["control"]}, 300))
        rejected_aa.append(aa[stats.P_VALUE] < 0.05)
        for one in (row, aa):  # the test rejects exactly when the interval excludes 0
            agree.append((one[stats.P_VALUE] < 0.05) == (one[col.CI_LOW] > 0 or one[col.CI_HIGH] < 0))
    assert all(agree)
    assert 0.93 <= np.mean(covered) <= 0.97, np.mean(covered)
    assert 0.03 <= np.mean(rejected_aa) <= 0.07, np.mean(rejected_aa)
    assert np.mean(counted) < 300  # young sends (under 600 s old) were left out


@pytest.mark.slow
def test_sequential_latency_keeps_its_level_over_many_looks():
    """A/A, looked at every 4 minutes for 60 minutes while sends go out: ever flagged ≤ 5 %."""
    rng = np.random.default_rng(21)
    looks = np.arange(720.0, 4320.0, 240.0)
    ever = []
    for _ in range(150):
        per_arm = 300
        requested = rng.uniform(0.0, 2400.0, 2 * per_arm)
        delivered_after, failed_after = _draw(rng, 2 * per_arm, 120.0, 0.85)
        flagged = False
        for look in looks:
            age = look - requested
            sent = age >= 0
            delivered = delivered_after <= age
            failed = ~delivered & (failed_after <= age)
            frame = pd.DataFrame({
                col.ARM: np.repeat(["control", "ddm"], per_arm)[sent],
                col.OUTCOME: np.where(delivered, "delivered", np.where(failed, "failed", "pending"))[sent],
                col.REQUESTED_AT: (T0 + pd.to_timedelta(requested, unit="s"))[sent],
                col.TOTAL_LATENCY_S: np.where(delivered, delivered_after, np.nan)[sent],
                col.FAILED_AT: (T0 + pd.to_timedelta(np.where(failed, requested + failed_after, np.nan), unit="s"))[sent],
            })  # fmt: skip
            row = stats.compare_arms(frame, metric="latency", horizon_s=HORIZON_S, column=col.TOTAL_LATENCY_S,
                                     as_of=T0 + pd.Timedelta(seconds=look), sequential=True).iloc[0]  # fmt: skip
            flagged |= bool(row[stats.P_VALUE] < 0.05)
        ever.append(flagged)
    assert np.mean(ever) <= 0.05, np.mean(ever)


def test_one_million_sends_are_compared_from_aggregates():
    """Correctness on a large frame (the timing is benchmarks/bench_stats.py's)."""
    rng = np.random.default_rng(3)
    frame = _experiment(rng, ARMS, 200_000)
    row = _compare(frame)
    truth = _true_rmst(*ARMS["ddm"]) - _true_rmst(*ARMS["control"])
    assert row[col.CI_LOW] <= truth <= row[col.CI_HIGH]
    assert row[col.CI_HIGH] - row[col.CI_LOW] < 5.0  # seconds: a large sample, a narrow interval
