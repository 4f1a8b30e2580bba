"""delivery_rates: counts, Wilson intervals (coverage by simulation), grouping and input checks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats as sps

from skycore_lab import columns as col
from skycore_lab import stats
from skycore_lab.exceptions import SkycoreValidationError


def _frame(outcomes, **extra) -> pd.DataFrame:
    return pd.DataFrame({col.OUTCOME: list(outcomes), **{k: list(v) for k, v in extra.items()}})


# --- counts and columns ---------------------------------------------------------------------
def test_counts_rate_and_columns_per_carrier():
    frame = _frame(
        ["delivered", "delivered", "failed", "expired", "pending", "delivered", "rejected", "not_supported"],
        **{col.CARRIER: ["A", "A", "A", "A", "A", "B", "B", "B"]},
    )
    rates = stats.delivery_rates(frame)
    assert list(rates.columns) == [col.CARRIER, *col.RATE_COLUMNS]
    a, b = rates.iloc[0], rates.iloc[1]
    assert (a[col.CARRIER], a[col.SENT], a[col.DELIVERED], a[col.FAILED], a[col.PENDING]) == ("A", 5, 2, 2, 1)
    assert a[col.RATE] == pytest.approx(2 / 5)
    # failed counts every failure outcome (rejected, not_supported too)
    assert (b[col.SENT], b[col.DELIVERED], b[col.FAILED], b[col.PENDING]) == (3, 1, 2, 0)
    for name in (col.SENT, col.DELIVERED, col.FAILED, col.PENDING):
        assert rates[name].dtype == np.int64


def test_interval_is_scipys_wilson():
    frame = _frame(["delivered"] * 27 + ["failed"] * 3)
    row = stats.delivery_rates(frame, by=(), confidence=0.9).iloc[0]
    ci = sps.binomtest(27, 30).proportion_ci(confidence_level=0.9, method="wilson")
    assert row[col.CI_LOW] == pytest.approx(ci.low)
    assert row[col.CI_HIGH] == pytest.approx(ci.high)
    assert row[col.CI_LOW] < row[col.RATE] < row[col.CI_HIGH] < 1.0


def test_wilson_closed_form_equals_scipys_binomtest_interval():
    from skycore_lab.stats.inputs import wilson

    for n in (1, 2, 7, 30, 999):
        for x in sorted({0, 1, n // 3, n // 2, n - 1, n}):
            for level in (0.8, 0.9, 0.95, 0.99):
                ci = sps.binomtest(x, n).proportion_ci(confidence_level=level, method="wilson")
                assert wilson(x, n, level) == pytest.approx((ci.low, ci.high), abs=1e-12)
    assert wilson(0, 12, 0.95)[0] == 0.0 and wilson(12, 12, 0.95)[1] == 1.0


def test_settled_rates_count_only_sends_whose_window_closed():
    t0 = pd.Timestamp("2024-05-01", tz="UTC")
    frame = pd.DataFrame({
        col.CARRIER: ["A"] * 4,
        col.OUTCOME: ["delivered", "pending", "pending", "delivered"],
        col.REQUESTED_AT: t0 - pd.to_timedelta([3600, 3600, 60, 30], unit="s"),
        col.TOTAL_LATENCY_S: [20.0, np.nan, np.nan, 10.0],
    })  # fmt: skip
    everything = stats.delivery_rates(frame).iloc[0]
    settled = stats.delivery_rates(frame, settle_s=1800, as_of=t0).iloc[0]
    assert (everything[col.SENT], everything[col.RATE]) == (4, 0.5)
    # the two young sends (one pending only because it is early) wait for their window
    assert (settled[col.SENT], settled[col.DELIVERED], settled[col.PENDING], settled[col.RATE]) == (2, 1, 1, 0.5)


def test_pending_counted_as_sent_unless_excluded():
    frame = _frame(["delivered"] * 6 + ["failed"] * 2 + ["pending"] * 2)
    default = stats.delivery_rates(frame, by=()).iloc[0]
    assert default[col.SENT] == 10 and default[col.RATE] == pytest.approx(0.6)
    excluded = stats.delivery_rates(frame, by=(), exclude_pending=True).iloc[0]
    assert excluded[col.SENT] == 8 and excluded[col.RATE] == pytest.approx(0.75)
    assert excluded[col.PENDING] == 2  # still reported


def test_group_with_zero_sends_is_absent_not_nan():
    frame = _frame(["pending", "pending", "delivered"], **{col.CARRIER: ["A", "A", "B"]})
    rates = stats.delivery_rates(frame, exclude_pending=True)
    assert list(rates[col.CARRIER]) == ["B"]
    assert not rates.isna().any().any()
    categorical = frame.assign(**{col.CARRIER: pd.Categorical(frame[col.CARRIER], categories=["A", "B", "C"])})
    assert list(stats.delivery_rates(categorical)[col.CARRIER]) == ["A", "B"]  # unused category absent


def test_by_accepts_str_sequence_and_empty():
    frame = _frame(
        ["delivered", "failed", "delivered", "delivered"],
        **{col.CARRIER: ["A", "A", "B", "B"], col.COUNTRY: ["US", "US", "US", "CA"]},
    )
    assert stats.delivery_rates(frame, by=col.CARRIER).equals(stats.delivery_rates(frame, by=[col.CARRIER]))
    both = stats.delivery_rates(frame, by=(col.CARRIER, col.COUNTRY))
    assert list(both.columns[:2]) == [col.CARRIER, col.COUNTRY]
    assert len(both) == 3
    overall = stats.delivery_rates(frame, by=())
    assert len(overall) == 1 and list(overall.columns) == list(col.RATE_COLUMNS)
    assert overall[col.SENT].iloc[0] == 4


def test_missing_group_key_is_its_own_group():
    frame = _frame(["delivered", "failed", "delivered"], **{col.CARRIER: ["A", None, None]})
    rates = stats.delivery_rates(frame)
    assert len(rates) == 2
    assert rates[col.SENT].sum() == 3  # no send lost


def test_outcome_spelling_is_forgiven_but_unknown_is_an_error():
    assert stats.delivery_rates(_frame([" Delivered", "FAILED"]), by=())[col.DELIVERED].iloc[0] == 1
    with pytest.raises(SkycoreValidationError, match="outcome") as info:
        stats.delivery_rates(_frame(["delivered", "bounced", None]), by=())
    assert info.value.field == col.OUTCOME
    assert "2 row(s)" in str(info.value)


def test_empty_input_gives_empty_frame_with_columns():
    rates = stats.delivery_rates(pd.DataFrame(columns=[col.OUTCOME, col.CARRIER]))
    assert rates.empty and list(rates.columns) == [col.CARRIER, *col.RATE_COLUMNS]
    assert list(stats.delivery_rates(pd.DataFrame(), by=()).columns) == list(col.RATE_COLUMNS)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"by": "handset"}, "handset"),
        ({"by": 3}, "by"),
        ({"confidence": 1.5}, "confidence"),
        ({"confidence": "high"}, "confidence"),
    ],
)
def test_bad_arguments_name_the_field(kwargs, field):
    frame = _frame(["delivered"], **{col.CARRIER: ["A"]})
    with pytest.raises(SkycoreValidationError) as info:
        stats.delivery_rates(frame, **kwargs)
    assert info.value.field == field


def test_missing_outcome_column_named():
    with pytest.raises(SkycoreValidationError, match=r"missing required column\(s\): outcome"):
        stats.delivery_rates(pd.DataFrame({col.CARRIER: ["A"]}))


def test_not_a_frame():
    with pytest.raises(SkycoreValidationError, match="DataFrame"):
        stats.delivery_rates([{"outcome": "delivered"}])


@given(st.lists(st.tuples(st.sampled_from(["A", "B", "C"]), st.sampled_from(col.OUTCOMES)), min_size=1, max_size=60))
def test_invariants_hold_for_any_outcomes(rows):
    frame = pd.DataFrame(rows, columns=[col.CARRIER, col.OUTCOME])
    for exclude in (False, True):
        rates = stats.delivery_rates(frame, exclude_pending=exclude)
        expected_sent = frame.groupby(col.CARRIER)[col.OUTCOME].apply(
            lambda s: len(s) - (int((s == "pending").sum()) if exclude else 0)
        )
        assert dict(zip(rates[col.CARRIER], rates[col.SENT])) == {k: v for k, v in expected_sent.items() if v > 0}
        assert (rates[col.SENT] > 0).all()
        assert (rates[col.DELIVERED] + rates[col.FAILED] + (0 if exclude else rates[col.PENDING])
                == rates[col.SENT]).all()  # fmt: skip
        assert ((0 <= rates[col.CI_LOW]) & (rates[col.CI_LOW] <= rates[col.RATE])).all()
        assert ((rates[col.RATE] <= rates[col.CI_HIGH]) & (rates[col.CI_HIGH] <= 1)).all()


# --- coverage by simulation ------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("n", [30, 1000])
def test_wilson_95_covers_true_rate_93_to_97_percent(n):
    """≥ 2,000 simulated groups; each group's true rate drawn from realistic MMS delivery rates."""
    rng = np.random.default_rng(20240 + n)
    groups = 2000
    true_rate = rng.uniform(0.6, 0.98, size=groups)
    delivered = rng.random((groups, n)) < true_rate[:, None]
    frame = pd.DataFrame(
        {
            col.CARRIER: np.repeat(np.arange(groups), n),
            col.OUTCOME: np.where(delivered.ravel(), col.OUTCOME_DELIVERED, col.OUTCOME_FAILED),
        }
    )
    rates = stats.delivery_rates(frame, confidence=0.95)
    assert len(rates) == groups and (rates[col.SENT] == n).all()
    truth = true_rate[rates[col.CARRIER].to_numpy(dtype=int)]
    covered = (rates[col.CI_LOW] <= truth) & (truth <= rates[col.CI_HIGH])
    assert 0.93 <= covered.mean() <= 0.97, covered.mean()
