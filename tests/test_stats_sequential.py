"""Always-valid inference (mixture SPRT): error rate under repeated looks, by simulation.

The simulations run the same functions ``compare_arms(sequential=True)`` calls
(:mod:`skycore_lab.stats.sequential`), vectorised over experiments and looks with
cumulative sums; ``test_compare_arms_sequential_is_these_functions`` ties the
two together.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from skycore_lab import columns as col
from skycore_lab import stats
from skycore_lab.stats.sequential import DEFAULT_MIXTURE_SD, confidence_sequence, msprt_p_value, shrunk_variance

EXPERIMENTS = 2000
LOOKS = 20
SENDS_PER_LOOK = 100  # both arms together: 50 each


def _cumulative_counts(rate_control: float, rate_arm: float, seed: int):
    """Delivered counts at each look (experiments × looks) and the sends per arm at each look."""
    rng = np.random.default_rng(seed)
    per_arm = SENDS_PER_LOOK // 2
    x_control = rng.binomial(per_arm, rate_control, (EXPERIMENTS, LOOKS)).cumsum(axis=1)
    x_arm = rng.binomial(per_arm, rate_arm, (EXPERIMENTS, LOOKS)).cumsum(axis=1)
    n = per_arm * np.arange(1, LOOKS + 1)
    return x_control, x_arm, n


def _naive_p_values(x_control, x_arm, n):
    """The fixed-horizon pooled z-test, (wrongly) repeated at every look."""
    pooled = (x_control + x_arm) / (2 * n)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (x_arm - x_control) / n / np.sqrt(pooled * (1 - pooled) * 2 / n)
    return np.nan_to_num(2 * sps.norm.sf(np.abs(z)), nan=1.0)


@pytest.mark.slow
@pytest.mark.parametrize("rate", [0.5, 0.9, 0.97])
def test_looking_after_every_100_sends_keeps_false_positives_at_most_5_percent(rate):
    x_control, x_arm, n = _cumulative_counts(rate, rate, seed=int(rate * 1000))
    diff = x_arm / n - x_control / n
    variance = shrunk_variance(x_control, n, x_arm, n)
    p_values = msprt_p_value(diff, variance, DEFAULT_MIXTURE_SD)
    ever_flagged = (p_values < 0.05).any(axis=1).mean()
    assert ever_flagged <= 0.05, ever_flagged
    low, high = confidence_sequence(diff, variance, 0.05, DEFAULT_MIXTURE_SD)
    always_covered = ((low <= 0) & (0 <= high)).all(axis=1).mean()
    assert always_covered >= 0.95, always_covered

    naive = _naive_p_values(x_control, x_arm, n)
    naive_ever = (naive < 0.05).any(axis=1).mean()
    assert naive_ever > 0.10, naive_ever  # peeking 20 times inflates 5 % to ~20-25 %
    # ... while one look at the planned end is fine: the inflation is the peeking's
    assert 0.03 <= (naive[:, -1] < 0.05).mean() <= 0.07


@pytest.mark.slow
def test_sequential_still_detects_a_real_difference_and_covers_it():
    x_control, x_arm, n = _cumulative_counts(0.90, 0.85, seed=17)
    diff = x_arm / n - x_control / n
    variance = shrunk_variance(x_control, n, x_arm, n)
    p_values = msprt_p_value(diff, variance)
    assert (p_values < 0.05).any(axis=1).mean() >= 0.6  # 1,000 sends per arm by the last look
    low, high = confidence_sequence(diff, variance, 0.05)
    assert ((low <= -0.05) & (-0.05 <= high)).all(axis=1).mean() >= 0.95


def test_p_value_and_interval_agree_at_every_look():
    """Λ(0) ≥ 1/α exactly when 0 is outside the confidence sequence."""
    rng = np.random.default_rng(3)
    diff = rng.normal(0, 0.05, 5000)
    variance = rng.uniform(1e-5, 1e-2, 5000)
    low, high = confidence_sequence(diff, variance, 0.05)
    rejects = msprt_p_value(diff, variance) < 0.05
    excludes = (low > 0) | (high < 0)
    assert (rejects == excludes).mean() > 0.999  # equal up to float ties at the boundary


def test_shrunk_variance_is_positive_at_all_or_nothing():
    assert shrunk_variance(10, 10, 0, 10) > 0
    assert shrunk_variance(0, 10, 0, 10) > 0


def test_compare_arms_sequential_is_these_functions():
    rng = np.random.default_rng(8)
    for n_control, n_arm in [(50, 50), (400, 380), (1000, 1000)]:
        x_control, x_arm = rng.binomial(n_control, 0.9), rng.binomial(n_arm, 0.87)
        outcome = (["delivered"] * x_control + ["failed"] * (n_control - x_control)
                   + ["delivered"] * x_arm + ["failed"] * (n_arm - x_arm))  # fmt: skip
        frame = pd.DataFrame({col.ARM: ["control"] * n_control + ["ddm"] * n_arm, col.OUTCOME: outcome})
        row = stats.compare_arms(frame, sequential=True).iloc[0]
        diff = x_arm / n_arm - x_control / n_control
        variance = shrunk_variance(x_control, n_control, x_arm, n_arm)
        assert row[stats.TEST] == stats.TEST_MSPRT
        assert row[stats.DIFF] == pytest.approx(diff)
        assert row[stats.P_VALUE] == pytest.approx(float(msprt_p_value(diff, variance)))
        low, high = confidence_sequence(diff, variance, 0.05)
        assert (row[col.CI_LOW], row[col.CI_HIGH]) == pytest.approx((float(low), float(high)))
        # always-valid intervals are wider than the fixed-horizon ones
        fixed = stats.compare_arms(frame).iloc[0]
        assert row[col.CI_LOW] < fixed[col.CI_LOW] and fixed[col.CI_HIGH] < row[col.CI_HIGH]


def test_sequential_with_delivered_within():
    rng = np.random.default_rng(4)
    latency = rng.lognormal(np.log(30), 1, 2000)
    frame = pd.DataFrame(
        {
            col.ARM: np.repeat(["control", "ddm"], 1000),
            col.OUTCOME: "delivered",
            col.LATENCY_S: latency * np.repeat([1.0, 2.0], 1000),
        }
    )
    row = stats.compare_arms(frame, metric="delivered_within", within_s=60, sequential=True).iloc[0]
    assert row[stats.TEST] == stats.TEST_MSPRT
    assert row[stats.SIGNIFICANT] and row[col.CI_HIGH] < 0  # twice as slow: fewer within a minute
    wider = stats.compare_arms(frame, metric="delivered_within", within_s=60, sequential=True, mixture_sd=0.2)
    assert wider[stats.P_VALUE].iloc[0] != row[stats.P_VALUE]  # τ is used
