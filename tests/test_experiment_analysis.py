"""DdmExperiment.analyze_deliveries and ExperimentResult: the parts a verdict reads, and the summary's text.

Deliveries are simulated with plain numpy (:mod:`sim_worlds`); no sandbox.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from sim_worlds import aa_world, at, frame_at

from skycore_lab import DDM, DdmExperiment, SkycoreValidationError
from skycore_lab import columns as col
from skycore_lab import stats

ARMS = ("no_ddm", "ddm_5")


def _experiment(manifest=None) -> DdmExperiment:
    return DdmExperiment({"no_ddm": None, "ddm_5": DDM("Checking", timeout_min=5)}, mms_id=1001, sender="60856",
                         manifest=manifest)  # fmt: skip


def _frame(seed=1, per_arm=500, look_s=9000.0) -> pd.DataFrame:
    return frame_at(aa_world(np.random.default_rng(seed), 2, per_arm), look_s, ARMS)


def test_result_parts_a_verdict_reads():
    frame = _frame()
    result = _experiment().analyze_deliveries(frame, as_of=at(9000))
    assert result.primary_metric == stats.METRIC_DELIVERY_RATE
    assert len(result.primary) == 1 and len(result.latency_cost) == 2
    assert result.srm.p_value == result.srm["p_value"] and not result.srm.flagged
    assert result.sample_size.baseline_rate == pytest.approx(result.primary[stats.CONTROL_ESTIMATE].iloc[0])
    assert result.sample_size.comparisons == 3  # 1 treatment arm × 3 metrics
    assert result.settle_s == 5 * 60 + stats.DEFAULT_DELIVERY_ALLOWANCE_S == _experiment().settle_s
    assert result.as_of == at(9000)
    share = result.share_delivered
    assert set(share[stats.TIME_S]) == {60.0, 300.0, 600.0, result.settle_s}
    # every send is older than the window and every delivery came within 25 min: the share delivered by
    # the window is the delivery rate (the silent sends, censored at their age, were at risk all along)
    last = share[share[stats.TIME_S] == result.settle_s].set_index(col.ARM)[stats.SHARE_DELIVERED]
    assert last.to_numpy() == pytest.approx(result.rates.set_index(col.ARM)[col.RATE].to_numpy(), abs=1e-12)
    assert result.comparisons[stats.WINDOW_S].tolist() == [result.settle_s, 600.0, 600.0]
    axes = result.plot()
    assert "share of sends delivered" in axes[1].get_ylabel()


def test_sample_ratio_mismatch_is_the_first_line_of_the_summary():
    frame = _frame(per_arm=1000)
    manifest = pd.DataFrame({
        col.ARM: pd.Categorical(np.repeat(ARMS, 1000), categories=list(ARMS)),
        col.TRACKING_ID: np.where(np.arange(2000) >= 1800, None, "MMS"),  # the last 200 of ddm_5 refused
        col.ERROR_CODE: np.where(np.arange(2000) >= 1800, "E110", None),
    })  # fmt: skip
    result = _experiment(manifest).analyze_deliveries(frame, as_of=at(9000))
    first = result.summary().splitlines()[0]
    assert "sample ratio mismatch" in first and "E110×200" in first
    assert result.srm.flagged and result.srm.p_value < 1e-5
    assert "SAMPLE RATIO MISMATCH" in repr(result)
    clean = _experiment().analyze_deliveries(frame, as_of=at(9000))
    assert "sample ratio mismatch" not in clean.summary().splitlines()[0]


@pytest.mark.parametrize("sequential", [False, True])
def test_every_metric_is_compared_fixed_or_sequential(sequential):
    result = _experiment().analyze_deliveries(_frame(), as_of=at(9000), sequential=sequential)
    tests = set(result.comparisons[stats.TEST])
    assert tests == ({stats.TEST_MSPRT} if sequential else {stats.TEST_Z, stats.TEST_RMST})
    assert result.comparisons[stats.P_VALUE].notna().all()
    assert ("always-valid" in result.summary()) == sequential
    assert result.sample_size.sequential == sequential


def test_a_young_experiment_says_what_is_not_comparable_yet():
    frame = _frame(look_s=1500.0)  # 25 min in: no send is 35 min old
    result = _experiment().analyze_deliveries(frame, as_of=at(1500))
    text = result.summary()
    assert "not yet comparable" in text and "nan" not in text.lower()
    assert "no_ddm: no send is 35 min old yet" in text  # not a rate pulled down by young pending sends
    assert result.rates.empty
    assert result.primary[stats.N_CONTROL].iloc[0] == 0
    assert result.latency_cost[stats.N_CONTROL].min() > 0  # 10-minute windows have closed for the early sends


def test_summary_says_not_reached_instead_of_nan():
    frame = _frame(look_s=1500.0)
    frame.loc[frame[col.ARM] == "ddm_5", col.OUTCOME] = col.OUTCOME_PENDING  # nothing delivered yet
    frame.loc[frame[col.ARM] == "ddm_5", col.TOTAL_LATENCY_S] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        text = _experiment().analyze_deliveries(frame, as_of=at(1500)).summary()
    assert "ddm_5 not reached" in text and "nan" not in text.lower()


def test_arms_outside_the_design_and_colliding_labels_are_errors():
    frame = _frame()
    frame.loc[0, col.ARM] = "ddm_99"
    with pytest.raises(SkycoreValidationError, match="ddm_99"):
        _experiment().analyze_deliveries(frame)
    with pytest.raises(SkycoreValidationError, match="alpha"):
        _experiment().analyze_deliveries(_frame(), alpha=2)
    with pytest.raises(SkycoreValidationError, match="correction"):
        _experiment().analyze_deliveries(_frame(), correction="sidak")


def test_stratified_rates_are_used_and_said():
    frame = _frame()
    frame[col.COUNTRY] = np.where(np.arange(len(frame)) % 3 == 0, "United Kingdom", "United States")
    result = _experiment().analyze_deliveries(frame, as_of=at(9000), strata=col.COUNTRY)
    assert set(result.comparisons[stats.TEST]) == {stats.TEST_CMH, stats.TEST_RMST}
    assert "stratified by country" in result.summary()
