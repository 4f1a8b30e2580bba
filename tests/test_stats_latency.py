"""latency_summary and the Kaplan–Meier quantiles: against scipy, edge cases, coverage by simulation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from skycore_lab import columns as col
from skycore_lab import stats
from skycore_lab.stats.survival import km_quantile_of_resamples, km_quantiles, sort_for_km

T0 = pd.Timestamp("2024-05-01", tz="UTC")
TRUE_MEDIAN_S = 30.0
SIGMA = 1.0


def _simulate(groups: int, n: int, window_s: float, seed: int, fail_share: float = 0.05) -> pd.DataFrame:
    """Sends spread over ``window_s`` seconds, log-normal latency, analysed at the window's end.

    Sends whose delivery would come after the analysis time are pending (censored by
    the clock); a random ``fail_share`` fails within a minute regardless of latency.
    """
    rng = np.random.default_rng(seed)
    size = groups * n
    sent = rng.uniform(0.0, window_s, size)
    latency = rng.lognormal(np.log(TRUE_MEDIAN_S), SIGMA, size)
    fails_after = np.where(rng.random(size) < fail_share, rng.uniform(0.0, 60.0, size), np.inf)
    delivered = (sent + latency <= window_s) & (latency < fails_after)
    failed = ~delivered & (sent + fails_after <= window_s)
    outcome = np.where(delivered, "delivered", np.where(failed, "failed", "pending"))
    at = lambda seconds: T0 + pd.to_timedelta(seconds, unit="s")  # noqa: E731
    return pd.DataFrame(
        {
            col.CARRIER: np.repeat(np.arange(groups), n),
            col.OUTCOME: outcome,
            col.SENT_AT: at(sent),
            col.FAILED_AT: at(np.where(failed, sent + fails_after, np.nan)),
            col.LATENCY_S: np.where(delivered, latency, np.nan),
        }
    )


def test_columns_and_naive_quantiles():
    frame = pd.DataFrame({col.OUTCOME: ["delivered"] * 5, col.LATENCY_S: [1.0, 2.0, 3.0, 4.0, 10.0]})
    summary = stats.latency_summary(frame)
    assert list(summary.columns) == list(stats.LATENCY_SUMMARY_COLUMNS)
    row = summary.iloc[0]
    assert (row[stats.N], row[col.DELIVERED]) == (5, 5)
    assert row[stats.P50] == 3.0
    assert row[stats.P90] == pytest.approx(np.quantile([1, 2, 3, 4, 10], 0.9))
    assert row[stats.KM_P50] == 3.0  # no censoring: smallest t with F(t) >= 0.5
    assert row[stats.KM_P90] == 10.0


def test_km_quantile_matches_scipy_curve_with_censoring():
    rng = np.random.default_rng(3)
    duration = np.round(rng.exponential(20.0, 300), 0)  # rounded: ties between events and censorings
    observed = rng.random(300) < 0.7
    as_of = T0 + pd.Timedelta(seconds=1000)
    frame = pd.DataFrame(
        {
            col.OUTCOME: np.where(observed, "delivered", "pending"),  # pending: censored at its age
            col.LATENCY_S: np.where(observed, duration, np.nan),
            col.SENT_AT: as_of - pd.to_timedelta(duration, unit="s"),
        }
    )
    row = stats.latency_summary(frame, as_of=as_of).iloc[0]
    cdf = sps.ecdf(sps.CensoredData(uncensored=duration[observed], right=duration[~observed])).cdf
    for q, name in ((0.5, stats.KM_P50), (0.9, stats.KM_P90)):
        t = row[name]
        assert cdf.evaluate(t) >= q > cdf.evaluate(np.nextafter(t, -np.inf))
    assert row[stats.KM_P50_LOW] <= row[stats.KM_P50] <= row[stats.KM_P50_HIGH]
    assert row[stats.KM_P90_LOW] <= row[stats.KM_P90] <= row[stats.KM_P90_HIGH]
    # the naive median, from delivered sends only, is biased fast
    assert row[stats.P50] < row[stats.KM_P50]


def test_groups_and_bounds_widen_with_confidence():
    frame = _simulate(groups=2, n=300, window_s=180.0, seed=5)
    narrow = stats.latency_summary(frame, by=col.CARRIER, confidence=0.8)
    wide = stats.latency_summary(frame, by=col.CARRIER, confidence=0.99)
    assert list(wide[col.CARRIER]) == [0, 1]
    not_failed = (frame[col.OUTCOME] != "failed").groupby(frame[col.CARRIER]).sum().to_numpy()
    assert (wide[stats.N].to_numpy() == not_failed).all() and (not_failed < 300).all()  # failures excluded
    assert (wide[col.DELIVERED] < wide[stats.N]).all()
    assert (wide[stats.KM_P50_LOW] <= narrow[stats.KM_P50_LOW]).all()
    assert (wide[stats.KM_P50_HIGH] >= narrow[stats.KM_P50_HIGH]).all()
    assert (wide[stats.KM_P50] == narrow[stats.KM_P50]).all()


def test_unreached_quantile_is_nan_with_infinite_high_bound():
    # 3 of 10 delivered, the rest censored later: the curve stops at F = 0.3
    frame = pd.DataFrame(
        {
            col.OUTCOME: ["delivered"] * 3 + ["pending"] * 7,
            col.LATENCY_S: [5.0, 6.0, 7.0] + [np.nan] * 7,
            col.SENT_AT: T0,
        }
    )
    row = stats.latency_summary(frame, as_of=T0 + pd.Timedelta(seconds=100)).iloc[0]
    assert np.isnan(row[stats.KM_P50]) and np.isnan(row[stats.KM_P90])
    assert row[stats.KM_P50_HIGH] == np.inf
    assert row[stats.P50] == 6.0  # the naive median still reports one, from 3 sends


def test_no_delivery_at_all():
    frame = pd.DataFrame({col.OUTCOME: ["pending"] * 4, col.SENT_AT: T0, col.FAILED_AT: T0 + pd.Timedelta(seconds=3)})
    row = stats.latency_summary(frame).iloc[0]
    assert (row[stats.N], row[col.DELIVERED]) == (4, 0)
    assert np.isnan(row[stats.P50]) and np.isnan(row[stats.KM_P50]) and row[stats.KM_P50_HIGH] == np.inf


def test_failures_have_no_delivery_time_and_are_excluded_not_censored():
    """The quantiles are of the time to delivery among delivered sends: a failure is not a late delivery."""
    frame = pd.DataFrame(
        {
            col.ARM: ["a"] * 6 + ["b"] * 2,
            col.OUTCOME: ["delivered"] * 3 + ["failed"] * 3 + ["expired"] * 2,
            col.LATENCY_S: [10.0, 20.0, 30.0] + [np.nan] * 5,
            col.SENT_AT: T0,
            col.FAILED_AT: T0 + pd.Timedelta(seconds=5),
        }
    )
    summary = stats.latency_summary(frame, by=col.ARM).set_index(col.ARM)
    assert (summary.loc["a", stats.N], summary.loc["a", col.DELIVERED]) == (3, 3)
    assert summary.loc["a", stats.KM_P50] == 20.0  # failures censored at 5 s would not move it; excluded, they do not
    assert summary.loc["b", stats.N] == 0 and np.isnan(summary.loc["b", stats.KM_P50])  # failures only: a row, n = 0
    assert stats.format_seconds(summary.loc["b", stats.KM_P50]) == "not reached"
    assert stats.format_seconds(20.0) == "20 s" and stats.format_seconds(np.inf) == "∞"


def test_empty_input():
    summary = stats.latency_summary(pd.DataFrame(), by=col.CARRIER)
    assert summary.empty and list(summary.columns) == [col.CARRIER, *stats.LATENCY_SUMMARY_COLUMNS]


def test_km_quantiles_empty_sample():
    (only,) = km_quantiles(np.array([]), np.array([], bool), (0.5,))
    assert np.isnan(only).all()


def test_vectorised_resample_quantile_equals_scipy_on_every_resample():
    """The hand-written KM quantile used by the bootstrap agrees with scipy's ecdf, ties included."""
    rng = np.random.default_rng(11)
    duration = np.round(rng.lognormal(3.0, 0.8, 80))
    observed = rng.random(80) < 0.75
    sorted_sample = sort_for_km(duration, observed)
    index = rng.integers(0, 80, size=(200, 80))
    fast = km_quantile_of_resamples(*sorted_sample, index, 0.5)
    for i in range(200):
        d, o = sorted_sample[0][index[i]], sorted_sample[1][index[i]]
        expected = km_quantiles(d, o, (0.5,))[0][0]
        assert fast[i] == (np.inf if np.isnan(expected) else expected)


# --- coverage by simulation ---------------------------------------------------------------------
@pytest.mark.slow
def test_km_median_interval_covers_true_lognormal_median_with_30pct_censoring():
    frame = _simulate(groups=1500, n=200, window_s=155.0, seed=2024)
    censored_share = 1.0 - (frame[col.OUTCOME] == "delivered").mean()
    assert 0.27 <= censored_share <= 0.33
    summary = stats.latency_summary(frame, by=col.CARRIER, as_of=T0 + pd.Timedelta(seconds=155))
    assert len(summary) == 1500
    covered = (summary[stats.KM_P50_LOW] <= TRUE_MEDIAN_S) & (TRUE_MEDIAN_S <= summary[stats.KM_P50_HIGH])
    assert covered.mean() >= 0.93, covered.mean()
    assert covered.mean() <= 0.985  # honest, not absurdly wide
    # KM is nearly unbiased; dropping the undelivered is not
    assert summary[stats.KM_P50].median() == pytest.approx(TRUE_MEDIAN_S, rel=0.05)
    assert summary[stats.P50].median() < 0.8 * TRUE_MEDIAN_S
