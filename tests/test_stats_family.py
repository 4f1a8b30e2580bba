"""One family per experiment: the whole summary of an A/A experiment rarely claims a difference.

Three identical arms (:func:`sim_worlds.aa_world`, plain numpy), sends
staggered over an hour, looked at mid-test (80 min, while sends still
settle) through :meth:`DdmExperiment.analyze_deliveries`: its summary
compares 2 arms × 3 metrics and checks the sample ratio. A summary that
says "a real difference" anywhere, or flags a sample ratio mismatch, is a
family-wise false positive.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sim_worlds import aa_world, at, frame_at

from skycore_lab import DDM, DdmExperiment
from skycore_lab import columns as col
from skycore_lab import stats

EXPERIMENTS = 250
PER_ARM = 400
LOOK_S = 4800.0  # 80 min: the last 30 min of sends are still in their delivery-rate window
ARM_NAMES = ("no_ddm", "ddm_a", "ddm_b")


def _experiment() -> DdmExperiment:
    ddm = DDM("Checking your phone", timeout_min=5)
    return DdmExperiment({"no_ddm": None, "ddm_a": ddm, "ddm_b": ddm}, mms_id=1001, sender="60856")


@pytest.mark.slow
def test_aa_summary_claims_a_difference_at_most_7_percent_of_the_time():
    experiment = _experiment()
    claimed, raw_any, srm, families = [], [], [], set()
    for e in range(EXPERIMENTS):
        frame = frame_at(aa_world(np.random.default_rng([11, e]), len(ARM_NAMES), PER_ARM), LOOK_S, ARM_NAMES)
        result = experiment.analyze_deliveries(frame, as_of=at(LOOK_S))
        text = result.summary()
        says = "a real difference" in text or "sample ratio mismatch" in text.lower()
        assert says == bool(result.comparisons[stats.SIGNIFICANT].any() or result.srm.flagged)
        claimed.append(says)
        srm.append(result.srm.flagged)
        raw_any.append(bool((result.comparisons[stats.P_VALUE] < 0.05).any()))
        families.add(result.family_size)
    assert families == {6}  # every comparison could be made at this look
    assert np.mean(claimed) <= 0.07, np.mean(claimed)
    assert np.mean(srm) <= 0.01
    # the world is a real test: reading each of the 6 comparisons at 5 % on its own claims far more
    assert np.mean(raw_any) >= 0.12, np.mean(raw_any)


def test_bh_mode_controls_false_discoveries_and_the_summary_says_so():
    frame = frame_at(aa_world(np.random.default_rng(5), len(ARM_NAMES), 300), LOOK_S, ARM_NAMES)
    result = _experiment().analyze_deliveries(frame, as_of=at(LOOK_S), correction="bh")
    assert "Benjamini–Hochberg" in result.summary() and "false" in result.summary()
    raw = result.comparisons[stats.P_VALUE].to_numpy()
    from scipy import stats as sps

    assert result.comparisons[stats.P_ADJUSTED].to_numpy() == pytest.approx(sps.false_discovery_control(raw))


def test_the_family_is_every_arm_times_every_metric_adjusted_together():
    frame = frame_at(aa_world(np.random.default_rng(6), len(ARM_NAMES), 300), LOOK_S, ARM_NAMES)
    result = _experiment().analyze_deliveries(frame, as_of=at(LOOK_S))
    comparisons = result.comparisons
    assert len(comparisons) == 6 and set(comparisons[stats.METRIC]) == set(stats.METRICS)
    assert comparisons[stats.P_ADJUSTED].to_numpy() == pytest.approx(
        stats.adjust_p_values(comparisons[stats.P_VALUE].to_numpy(), "holm"))
    text = result.summary()
    assert "Primary metric: delivery rate" in text and "6 comparisons" in text and "Holm" in text
    assert list(result.primary[stats.METRIC].unique()) == [stats.METRIC_DELIVERY_RATE]
    assert set(result.latency_cost[stats.METRIC]) == {stats.METRIC_LATENCY, stats.METRIC_DELIVERED_WITHIN}
    # the primary metric is listed first
    first = [line for line in text.splitlines() if " vs no_ddm, " in line][0]
    assert "delivery rate [primary]" in first
    assert isinstance(result.deliveries[col.ARM].dtype, pd.CategoricalDtype)
