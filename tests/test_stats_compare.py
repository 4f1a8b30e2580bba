"""compare_arms: arms and control, the three metrics, corrections, input checks, error rate by simulation."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from skycore_lab import columns as col
from skycore_lab import stats
from skycore_lab.exceptions import SkycoreValidationError

T0 = pd.Timestamp("2024-05-01", tz="UTC")


def _arms(counts: dict[str, tuple[int, int]], **extra) -> pd.DataFrame:
    """{arm: (delivered, failed)} as a deliveries frame, arms in dict order."""
    arm, outcome = [], []
    for label, (delivered, failed) in counts.items():
        arm += [label] * (delivered + failed)
        outcome += ["delivered"] * delivered + ["failed"] * failed
    return pd.DataFrame({col.ARM: arm, col.OUTCOME: outcome, **extra})


# --- shape, arms and control ----------------------------------------------------------------
def test_one_row_per_treatment_arm_in_order_with_documented_columns():
    frame = _arms({"ddm_30": (80, 20), "control": (70, 30), "ddm_5": (75, 25)})
    result = stats.compare_arms(frame)
    assert list(result.columns) == [col.ARM, *stats.COMPARISON_COLUMNS]
    for name in ("metric", "control_estimate", "arm_estimate", "diff", "rel_diff", "ci_low", "ci_high",
                 "p_value", "p_adjusted", "significant", "n_control", "n_arm"):  # fmt: skip
        assert name in result.columns
    assert list(result[col.ARM]) == ["ddm_30", "ddm_5"]  # order of appearance, control found by name
    assert (result[stats.CONTROL] == "control").all()
    assert (result[stats.METRIC] == "delivery_rate").all()
    first = result.iloc[0]
    assert first[stats.CONTROL_ESTIMATE] == pytest.approx(0.7)
    assert first[stats.ARM_ESTIMATE] == pytest.approx(0.8)
    assert first[stats.DIFF] == pytest.approx(0.1)
    assert first[stats.REL_DIFF] == pytest.approx(0.1 / 0.7)
    assert (first[stats.N_CONTROL], first[stats.N_ARM]) == (100, 100)
    assert first[col.CI_LOW] < first[stats.DIFF] < first[col.CI_HIGH]


@pytest.mark.parametrize(
    ("labels", "control", "expected"),
    [
        (["a", "No_DDM", "b"], None, "No_DDM"),
        (["b", "a"], None, "b"),  # no conventional name: first in order of appearance
        (["b", "a", "c"], "a", "a"),
    ],
)
def test_control_choice(labels, control, expected):
    frame = _arms({label: (5, 5) for label in labels})
    result = stats.compare_arms(frame, control=control)
    assert (result[stats.CONTROL] == expected).all()
    assert list(result[col.ARM]) == [label for label in labels if label != expected]


def test_categorical_arm_order_and_unknown_control():
    frame = _arms({"x": (5, 5), "y": (5, 5), "z": (5, 5)})
    frame[col.ARM] = pd.Categorical(frame[col.ARM], categories=["z", "y", "x"])
    assert list(stats.compare_arms(frame)[col.ARM]) == ["y", "x"]  # control "z": first category
    with pytest.raises(SkycoreValidationError, match="'w' is not one of the arms") as info:
        stats.compare_arms(frame, control="w")
    assert info.value.field == "control"


def test_fewer_than_two_arms_or_no_rows_give_empty_frame():
    assert stats.compare_arms(_arms({"control": (3, 1)})).empty
    empty = stats.compare_arms(pd.DataFrame())
    assert empty.empty and list(empty.columns) == [col.ARM, *stats.COMPARISON_COLUMNS]


def test_unlabelled_sends_are_left_out_with_a_warning():
    frame = _arms({"control": (10, 10), "ddm": (15, 5)})
    frame.loc[0, col.ARM] = None
    with pytest.warns(UserWarning, match="1 send"):
        result = stats.compare_arms(frame)
    assert result[stats.N_CONTROL].iloc[0] == 19


# --- delivery_rate ---------------------------------------------------------------------------
def test_large_counts_use_pooled_z_test_and_newcombe_interval():
    # Newcombe (1998), Stat. Med. 17:873, example (a): 56/70 vs 48/80, method 10: 0.0524 to 0.3339
    row = stats.compare_arms(_arms({"control": (48, 32), "ddm": (56, 14)})).iloc[0]
    assert row[stats.TEST] == stats.TEST_Z
    assert row[col.CI_LOW] == pytest.approx(0.0524, abs=5e-5)
    assert row[col.CI_HIGH] == pytest.approx(0.3339, abs=5e-5)
    pooled = 104 / 150
    z = (56 / 70 - 48 / 80) / math.sqrt(pooled * (1 - pooled) * (1 / 70 + 1 / 80))
    assert row[stats.P_VALUE] == pytest.approx(2 * sps.norm.sf(z))


def test_small_counts_use_fishers_exact_test():
    row = stats.compare_arms(_arms({"control": (18, 2), "ddm": (14, 6)})).iloc[0]
    assert row[stats.TEST] == stats.TEST_FISHER
    assert row[stats.P_VALUE] == pytest.approx(sps.fisher_exact([[14, 6], [18, 2]]).pvalue)


def test_pending_counts_as_not_delivered_unless_excluded():
    frame = _arms({"control": (8, 2), "ddm": (8, 0)})
    frame = pd.concat([frame, pd.DataFrame({col.ARM: ["ddm"] * 2, col.OUTCOME: ["pending"] * 2})])
    assert stats.compare_arms(frame)[stats.ARM_ESTIMATE].iloc[0] == pytest.approx(0.8)
    excluded = stats.compare_arms(frame, exclude_pending=True).iloc[0]
    assert excluded[stats.ARM_ESTIMATE] == 1.0 and excluded[stats.N_ARM] == 8


def test_holm_adjustment_across_arms():
    frame = _arms({"control": (500, 500), "a": (560, 440), "b": (530, 470), "c": (505, 495)})
    result = stats.compare_arms(frame, correction="holm")
    raw = result[stats.P_VALUE].to_numpy()
    assert np.allclose(result[stats.P_ADJUSTED], stats.adjust_p_values(raw, "holm"))
    assert (result[stats.P_ADJUSTED] >= raw).all()
    assert (result[stats.SIGNIFICANT] == (result[stats.P_ADJUSTED] < 0.05)).all()
    assert result[stats.SIGNIFICANT].iloc[0]  # 6 points on 1,000 sends each
    none = stats.compare_arms(frame, correction=None)
    assert np.allclose(none[stats.P_ADJUSTED], raw)


def test_zero_control_rate_gives_infinite_rel_diff_not_an_error():
    row = stats.compare_arms(_arms({"control": (0, 10), "ddm": (3, 7)})).iloc[0]
    assert row[stats.REL_DIFF] == np.inf
    assert 0 < row[stats.P_VALUE] < 1


# --- delivered_within ----------------------------------------------------------------------------
def test_delivered_within_counting_rules():
    frame = pd.DataFrame(
        {
            col.ARM: ["control"] * 4 + ["ddm"] * 5,
            col.OUTCOME: ["delivered", "delivered", "failed", "pending", "delivered", "delivered", "pending",
                          "pending", "expired"],  # fmt: skip
            col.LATENCY_S: [10.0, 90.0, np.nan, np.nan, 20.0, 30.0, np.nan, np.nan, np.nan],
            col.SENT_AT: [T0] * 9,
            col.FAILED_AT: [pd.NaT, pd.NaT, T0, pd.NaT, pd.NaT, pd.NaT, pd.NaT, pd.NaT, T0],
        }
    )
    # every send is 100 s old (> 60: its answer is final); pending sends count as not within
    row = stats.compare_arms(frame, metric="delivered_within", within_s=60, as_of=T0 + pd.Timedelta(seconds=100)).iloc[0]
    assert (row[stats.N_CONTROL], row[stats.CONTROL_ESTIMATE]) == (4, 0.25)
    assert (row[stats.N_ARM], row[stats.ARM_ESTIMATE]) == (5, 0.4)
    assert row[stats.WINDOW_S] == 60.0
    # at 40 s no send's window has closed: none counts, not even the fast deliveries and failures
    young = stats.compare_arms(frame, metric="delivered_within", within_s=60, as_of=T0 + pd.Timedelta(seconds=40))
    assert (young[stats.N_CONTROL].iloc[0], young[stats.N_ARM].iloc[0]) == (0, 0)
    assert np.isnan(young[stats.P_VALUE].iloc[0])


def test_only_sends_whose_window_closed_count_whatever_their_outcome():
    """Inclusion by age only: a young delivery or failure is left out just like a young pending send."""
    ages = np.array([120.0, 120.0, 120.0, 30.0, 30.0, 30.0] * 2)
    frame = pd.DataFrame(
        {
            col.ARM: ["control"] * 6 + ["ddm"] * 6,
            col.OUTCOME: ["delivered", "failed", "pending"] * 4,
            col.LATENCY_S: [5.0, np.nan, np.nan] * 4,
            col.SENT_AT: T0 - pd.to_timedelta(ages, unit="s"),
            col.FAILED_AT: [pd.NaT, T0, pd.NaT] * 4,
        }
    )
    row = stats.compare_arms(frame, metric="delivered_within", within_s=60, as_of=T0).iloc[0]
    assert (row[stats.N_CONTROL], row[stats.N_ARM]) == (3, 3)
    assert row[stats.CONTROL_ESTIMATE] == pytest.approx(1 / 3)


def test_delivery_rate_counts_settled_sends_delivered_within_the_window():
    requested = T0 - pd.to_timedelta([4000.0, 4000.0, 4000.0, 100.0, 100.0, 4000.0], unit="s")
    frame = pd.DataFrame(
        {
            col.ARM: ["control", "control", "control", "control", "ddm", "ddm"],
            col.OUTCOME: ["delivered", "delivered", "pending", "pending", "delivered", "delivered"],
            col.REQUESTED_AT: requested,
            col.TOTAL_LATENCY_S: [10.0, 3000.0, np.nan, np.nan, 50.0, 20.0],
        }
    )
    row = stats.compare_arms(frame, settle_s=1800, as_of=T0).iloc[0]
    # control: 3 settled (the young pending one waits), one delivered within 30 min (the other too late)
    assert (row[stats.N_CONTROL], row[stats.CONTROL_ESTIMATE]) == (3, pytest.approx(1 / 3))
    assert (row[stats.N_ARM], row[stats.ARM_ESTIMATE]) == (1, 1.0)
    assert row[stats.WINDOW_S] == 1800.0
    # no time column: every send is final (pending counted as not delivered)
    untimed = stats.compare_arms(frame.drop(columns=[col.REQUESTED_AT])).iloc[0]
    assert untimed[stats.N_CONTROL] == 4 and np.isnan(untimed[stats.WINDOW_S])


def test_negative_latency_is_clipped_and_counted_never_silently_within():
    frame = pd.DataFrame(
        {
            col.ARM: ["control"] * 3 + ["ddm"] * 3,
            col.OUTCOME: "delivered",
            col.LATENCY_S: [-5.0, 10.0, 20.0, 30.0, -1.0, 40.0],
            col.SENT_AT: T0,
        }
    )
    with pytest.warns(stats.LatencyDataWarning, match="set 2 negative latency_s"):
        row = stats.compare_arms(frame, metric="delivered_within", within_s=15,
                                 as_of=T0 + pd.Timedelta(hours=1)).iloc[0]  # fmt: skip
    assert row[stats.CONTROL_ESTIMATE] == pytest.approx(2 / 3)  # 0 (clipped) and 10 s are within 15 s


# --- arm labels -------------------------------------------------------------------------------------
def test_arm_labels_are_strings_and_colliding_labels_are_an_error():
    frame = _arms({"1": (5, 5), "2": (6, 4)})
    frame[col.ARM] = frame[col.ARM].map({"1": 1, "2": 2})  # ints
    result = stats.compare_arms(frame, control=1)
    assert result[col.ARM].tolist() == ["2"] and result[stats.CONTROL].tolist() == ["1"]
    frame[col.ARM] = frame[col.ARM].astype(object)
    frame.loc[0, col.ARM] = "1"  # the int 1 and the text "1": shown alike, counted apart
    with pytest.raises(SkycoreValidationError, match=r"both read '1'") as info:
        stats.compare_arms(frame)
    assert info.value.field == col.ARM


# --- latency ---------------------------------------------------------------------------------------
def _latency_frame(seed: int = 7, n: int = 150, slower: float = 1.5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    latency = np.concatenate([rng.lognormal(np.log(20), 0.8, n), rng.lognormal(np.log(20 * slower), 0.8, n)])
    failed = rng.random(2 * n) < 0.15
    return pd.DataFrame(
        {
            col.ARM: ["control"] * n + ["ddm"] * n,
            col.OUTCOME: np.where(failed, "failed", "delivered"),
            col.LATENCY_S: np.where(failed, np.nan, latency),
            col.SENT_AT: T0,
            col.FAILED_AT: T0 + pd.to_timedelta(np.where(failed, rng.uniform(0, 60, 2 * n), np.nan), unit="s"),
        }
    )


def test_latency_is_the_restricted_mean_time_to_delivery_with_a_matching_test_and_interval():
    frame = _latency_frame()
    as_of = T0 + pd.Timedelta(hours=1)
    row = stats.compare_arms(frame, metric="latency", horizon_s=120, as_of=as_of).iloc[0]
    # by hand: latency if delivered within the horizon, else the horizon
    value = np.where((frame[col.OUTCOME] == "delivered") & (frame[col.LATENCY_S] <= 120), frame[col.LATENCY_S], 120.0)
    ddm = (frame[col.ARM] == "ddm").to_numpy()
    mean_c, mean_a = value[~ddm].mean(), value[ddm].mean()
    se = np.sqrt(value[~ddm].var(ddof=1) / (~ddm).sum() + value[ddm].var(ddof=1) / ddm.sum())
    assert row[stats.TEST] == stats.TEST_RMST and row[stats.WINDOW_S] == 120.0
    assert (row[stats.CONTROL_ESTIMATE], row[stats.ARM_ESTIMATE]) == pytest.approx((mean_c, mean_a))
    assert row[stats.DIFF] == pytest.approx(mean_a - mean_c)
    assert row[stats.P_VALUE] == pytest.approx(2 * sps.norm.sf(abs(mean_a - mean_c) / se))
    z = sps.norm.ppf(0.975)
    assert (row[col.CI_LOW], row[col.CI_HIGH]) == pytest.approx((mean_a - mean_c - z * se, mean_a - mean_c + z * se))
    assert row[stats.SIGNIFICANT] and row[col.CI_LOW] > 0  # 1.5× slower on 150 sends each


def test_logrank_and_km_medians_match_scipy():
    frame = _latency_frame()
    result = stats.logrank_test(frame)
    censored = stats.censored_latencies(frame)
    d, o = censored[stats.DURATION_S].to_numpy(), censored[stats.OBSERVED].to_numpy()
    ddm = (frame[col.ARM] == "ddm").to_numpy()
    expected = sps.logrank(
        sps.CensoredData(uncensored=d[ddm & o], right=d[ddm & ~o]),
        sps.CensoredData(uncensored=d[~ddm & o], right=d[~ddm & ~o]),
    )
    row = result.summary.iloc[0]
    assert (row[col.ARM], row[stats.CONTROL]) == ("ddm", "control")
    assert row[stats.P_VALUE] == pytest.approx(expected.pvalue) and result.p_value == pytest.approx(expected.pvalue)
    assert row[stats.TEST_STATISTIC] == pytest.approx(expected.statistic)
    # KM medians of the time to delivery (failures excluded) agree with scipy's ecdf of the delivered sends
    summary = stats.latency_summary(frame, by=col.ARM).set_index(col.ARM)
    for arm, mask in (("control", ~ddm), ("ddm", ddm)):
        median = sps.ecdf(d[mask & o]).cdf
        km = summary.loc[arm, stats.KM_P50]
        assert median.evaluate(km) >= 0.5 > median.evaluate(np.nextafter(km, -np.inf))
    assert "log-rank" in repr(result) or "p_adjusted" in repr(result)


def test_logrank_tests_the_curves_with_an_unreached_median_and_int_labels():
    rng = np.random.default_rng(2)
    delivered = rng.random(200) < np.repeat([0.8, 0.3], 100)  # the slow arm: 30 % delivered by as_of
    frame = pd.DataFrame(
        {
            col.ARM: np.repeat([5, 30], 100),  # DDM timeouts in minutes; no label says "control"
            col.OUTCOME: np.where(delivered, "delivered", "pending"),
            col.LATENCY_S: np.where(delivered, rng.exponential(10, 200), np.nan),
            col.SENT_AT: T0,
        }
    )
    as_of = T0 + pd.Timedelta(seconds=100)
    row = stats.logrank_test(frame, as_of=as_of).summary.iloc[0]
    assert (row[stats.CONTROL], row[col.ARM]) == ("5", "30")
    assert row[stats.P_VALUE] < 0.001
    summary = stats.latency_summary(frame, by=col.ARM, as_of=as_of).set_index(col.ARM)
    assert np.isfinite(summary.loc[5, stats.KM_P50]) and np.isnan(summary.loc[30, stats.KM_P50])
    # the restricted mean time to delivery still compares them, with an interval
    latency = stats.compare_arms(frame, metric="latency", horizon_s=60, as_of=as_of).iloc[0]
    assert latency[stats.SIGNIFICANT] and latency[col.CI_LOW] > 0


def test_latency_sequential_is_an_always_valid_test_of_the_same_difference():
    frame = _latency_frame(n=400, slower=2.5)
    as_of = T0 + pd.Timedelta(hours=1)
    fixed = stats.compare_arms(frame, metric="latency", horizon_s=120, as_of=as_of).iloc[0]
    row = stats.compare_arms(frame, metric="latency", horizon_s=120, as_of=as_of, sequential=True).iloc[0]
    assert row[stats.TEST] == stats.TEST_MSPRT and row[stats.DIFF] == fixed[stats.DIFF]
    assert row[col.CI_LOW] < fixed[col.CI_LOW] and fixed[col.CI_HIGH] < row[col.CI_HIGH]  # wider: valid at every look
    assert row[stats.SIGNIFICANT]
    assert -120 <= row[col.CI_LOW] and row[col.CI_HIGH] <= 120


def test_constant_latencies_give_p_1_without_warnings():
    frame = pd.DataFrame({col.ARM: ["control"] * 50 + ["ddm"] * 50, col.OUTCOME: "delivered",
                          col.LATENCY_S: 12.5, col.SENT_AT: T0})  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        as_of = T0 + pd.Timedelta(hours=1)
        row = stats.compare_arms(frame, metric="latency", horizon_s=60, as_of=as_of).iloc[0]
        seq = stats.compare_arms(frame, metric="latency", horizon_s=60, as_of=as_of, sequential=True).iloc[0]
        within = stats.compare_arms(frame, metric="delivered_within", within_s=60, as_of=as_of).iloc[0]
        summary = stats.latency_summary(frame, by=col.ARM)
    assert row[stats.P_VALUE] == 1.0 and (row[col.CI_LOW], row[col.CI_HIGH]) == (0.0, 0.0)
    assert seq[stats.P_VALUE] == 1.0 and within[stats.P_VALUE] == 1.0
    assert (summary[stats.KM_P50] == 12.5).all()


def test_zero_deliveries_give_an_interval_from_zero():
    frame = pd.DataFrame({col.ARM: ["control"] * 40 + ["ddm"] * 40,
                          col.OUTCOME: ["failed"] * 40 + ["delivered"] * 10 + ["failed"] * 30})  # fmt: skip
    rates = stats.delivery_rates(frame, by=col.ARM).set_index(col.ARM)
    assert rates.loc["control", col.CI_LOW] == 0.0 and 0 < rates.loc["control", col.CI_HIGH] < 0.15
    row = stats.compare_arms(frame).iloc[0]
    assert row[stats.CONTROL_ESTIMATE] == 0.0 and row[col.CI_LOW] > 0 and np.isfinite(row[col.CI_HIGH])


# --- input checks ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"metric": "speed"}, "metric"),
        ({"metric": "delivered_within"}, "within_s"),
        ({"metric": "delivered_within", "within_s": -1}, "within_s"),
        ({"within_s": 60}, "within_s"),
        ({"alpha": 0}, "alpha"),
        ({"correction": "sidak"}, "correction"),
        ({"sequential": True, "mixture_sd": 0}, "mixture_sd"),
        ({"metric": "latency", "horizon_s": 0}, "horizon_s"),
        ({"horizon_s": 60}, "horizon_s"),
        ({"metric": "latency", "settle_s": 60}, "settle_s"),
        ({"settle_s": -1}, "settle_s"),
        ({"metric": "latency", "strata": "carrier"}, "strata"),
        ({"strata": 3}, "strata"),
        ({"strata": "region"}, "region"),
        ({"metric": "latency", "exclude_pending": True}, "exclude_pending"),
        ({"arm": "ddm_group"}, "ddm_group"),
        ({"arm": "metric"}, "arm"),
    ],
)
def test_bad_arguments_name_the_field(kwargs, field):
    with pytest.raises(SkycoreValidationError) as info:
        stats.compare_arms(_latency_frame(n=10), **kwargs)
    assert info.value.field == field


# --- error rate by simulation --------------------------------------------------------------------------
@pytest.mark.slow
def test_false_positive_rate_under_no_difference_is_3_to_7_percent():
    """2,000 A/A experiments, realistic rates and sizes (small ones go to Fisher's test)."""
    rng = np.random.default_rng(99)
    flagged, tests = [], set()
    for _ in range(2000):
        rate, n = rng.uniform(0.8, 0.97), int(rng.choice([60, 200, 500, 1000]))
        delivered = rng.random(2 * n) < rate
        frame = pd.DataFrame(
            {col.ARM: np.repeat(["control", "ddm"], n), col.OUTCOME: np.where(delivered, "delivered", "failed")}
        )
        row = stats.compare_arms(frame, alpha=0.05).iloc[0]
        flagged.append(bool(row[stats.SIGNIFICANT]))
        tests.add(row[stats.TEST])
    assert tests == {stats.TEST_Z, stats.TEST_FISHER}
    assert 0.03 <= np.mean(flagged) <= 0.07, np.mean(flagged)


@pytest.mark.slow
def test_newcombe_interval_covers_the_true_difference():
    """The hand-written Newcombe interval (from two Wilson intervals) keeps ~95 % coverage."""
    from skycore_lab.stats.compare import newcombe_interval

    rng = np.random.default_rng(5)
    covered = []
    for _ in range(2000):
        p_c, p_a, n = rng.uniform(0.75, 0.98), rng.uniform(0.75, 0.98), int(rng.choice([50, 300]))
        low, high = newcombe_interval(rng.binomial(n, p_c), n, rng.binomial(n, p_a), n, 0.95)
        covered.append(low <= p_a - p_c <= high)
    assert 0.93 <= np.mean(covered) <= 0.975, np.mean(covered)
