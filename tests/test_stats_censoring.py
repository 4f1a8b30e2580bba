"""censored_latencies: the censoring rule shared by latency_summary, compare_arms and the KM plots."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from skycore_lab import columns as col
from skycore_lab import stats
from skycore_lab.exceptions import SkycoreValidationError
from skycore_lab.stats import LatencyDataWarning

T0 = pd.Timestamp("2024-05-01 12:00:00", tz="UTC")


def _at(seconds):
    return None if seconds is None else T0 + pd.Timedelta(seconds=seconds)


def _mixed() -> pd.DataFrame:
    """One send of each kind, with known durations."""
    return pd.DataFrame(
        {
            col.OUTCOME: ["delivered", "failed", "expired", "pending", "rejected"],
            col.REQUESTED_AT: [_at(-5), _at(-5), _at(0), _at(10), _at(0)],
            col.SENT_AT: [_at(0), _at(0), None, _at(20), _at(0)],
            col.DELIVERED_AT: [_at(12), None, None, None, None],
            col.FAILED_AT: [None, _at(30), _at(300), None, _at(1)],
            col.LATENCY_S: [12.0, np.nan, np.nan, np.nan, np.nan],
        },
        index=[10, 11, 12, 13, 14],
    )


def test_each_outcome_gets_its_duration_and_index_is_kept():
    censored = stats.censored_latencies(_mixed())
    assert list(censored.columns) == [stats.DURATION_S, stats.OBSERVED]
    assert list(censored.index) == [10, 11, 12, 13, 14]
    assert censored[stats.DURATION_S].dtype == float and censored[stats.OBSERVED].dtype == bool
    # delivered: latency_s; failed: failed_at - sent_at; expired: no sent_at -> requested_at;
    # pending: as_of (latest time in frame = expired's failed_at, 300 s) - sent_at (20 s).
    assert censored[stats.DURATION_S].tolist() == [12.0, 30.0, 300.0, 280.0, 1.0]
    assert censored[stats.OBSERVED].tolist() == [True, False, False, False, False]


def test_explicit_as_of_moves_pending_only():
    censored = stats.censored_latencies(_mixed(), as_of=T0 + pd.Timedelta(seconds=1000))
    assert censored.loc[13, stats.DURATION_S] == 980.0
    assert censored.loc[11, stats.DURATION_S] == 30.0
    naive = stats.censored_latencies(_mixed(), as_of="2024-05-01 12:16:40")  # naive = UTC
    assert naive.loc[13, stats.DURATION_S] == 980.0


def test_total_latency_starts_at_requested_at():
    frame = _mixed().assign(**{col.TOTAL_LATENCY_S: [17.0, np.nan, np.nan, np.nan, np.nan]})
    censored = stats.censored_latencies(frame, column=col.TOTAL_LATENCY_S)
    assert censored[stats.DURATION_S].tolist() == [17.0, 35.0, 300.0, 290.0, 1.0]


def test_first_event_at_is_the_last_resort_start():
    frame = pd.DataFrame(
        {
            col.OUTCOME: ["failed"],
            col.FIRST_EVENT_AT: [_at(2)],
            col.FAILED_AT: [_at(9)],
        }
    )
    assert stats.censored_latencies(frame)[stats.DURATION_S].tolist() == [7.0]


def test_all_delivered_needs_no_time_columns():
    frame = pd.DataFrame({col.OUTCOME: ["delivered", "delivered"], col.LATENCY_S: [1.5, 2.5]})
    censored = stats.censored_latencies(frame)
    assert censored[stats.OBSERVED].all() and censored[stats.DURATION_S].tolist() == [1.5, 2.5]


def test_timedelta_and_string_inputs_are_read():
    frame = pd.DataFrame(
        {
            col.OUTCOME: ["delivered", "failed"],
            col.LATENCY_S: pd.to_timedelta([3, None], unit="s"),
            col.SENT_AT: ["2024-05-01T12:00:00Z", "2024-05-01T12:00:00Z"],
            col.FAILED_AT: [None, "2024-05-01T12:01:00Z"],
        }
    )
    assert stats.censored_latencies(frame)[stats.DURATION_S].tolist() == [3.0, 60.0]


@pytest.mark.parametrize(
    ("drop", "outcome", "named"),
    [
        (col.FAILED_AT, "failed", col.FAILED_AT),
        ((col.SENT_AT, col.REQUESTED_AT, col.FIRST_EVENT_AT), "failed", col.SENT_AT),
        (col.LATENCY_S, "delivered", col.LATENCY_S),
    ],
)
def test_missing_needed_column_is_named(drop, outcome, named):
    frame = pd.DataFrame(
        {
            col.OUTCOME: [outcome],
            col.SENT_AT: [_at(0)],
            col.REQUESTED_AT: [_at(0)],
            col.FIRST_EVENT_AT: [_at(0)],
            col.FAILED_AT: [_at(5)],
            col.LATENCY_S: [4.0],
        }
    ).drop(columns=list(np.atleast_1d(drop)))
    with pytest.raises(SkycoreValidationError) as info:
        stats.censored_latencies(frame)
    assert info.value.field == named
    assert named in str(info.value)


def test_pending_without_any_time_asks_for_as_of():
    frame = pd.DataFrame({col.OUTCOME: ["pending"], col.SENT_AT: [pd.NaT]})
    with pytest.raises(SkycoreValidationError) as info:
        stats.censored_latencies(frame)
    assert info.value.field == "as_of"
    with pytest.raises(SkycoreValidationError, match="as_of"):
        stats.censored_latencies(pd.DataFrame({col.OUTCOME: ["pending"], col.SENT_AT: [_at(0)]}), as_of="soon")


def test_unreadable_time_column_is_named():
    frame = pd.DataFrame({col.OUTCOME: ["failed"], col.SENT_AT: ["not a time"], col.FAILED_AT: [_at(1)]})
    with pytest.raises(SkycoreValidationError) as info:
        stats.censored_latencies(frame)
    assert info.value.field == col.SENT_AT


def test_non_numeric_latency_is_named():
    frame = pd.DataFrame({col.OUTCOME: ["delivered"], col.LATENCY_S: ["fast"]})
    with pytest.raises(SkycoreValidationError) as info:
        stats.censored_latencies(frame)
    assert info.value.field == col.LATENCY_S


def test_negative_clipped_and_unknown_dropped_with_one_warning():
    frame = pd.DataFrame(
        {
            col.OUTCOME: ["delivered", "delivered", "failed", "failed"],
            col.LATENCY_S: [-2.0, np.nan, np.nan, np.nan],
            col.SENT_AT: [_at(0), _at(0), _at(10), _at(0)],
            col.FAILED_AT: [None, None, _at(4), None],
        }
    )
    with pytest.warns(LatencyDataWarning) as record:
        censored = stats.censored_latencies(frame)
    assert len(record) == 1
    message = str(record[0].message)
    assert "left out 2 send(s)" in message and "negative" in message
    assert list(censored.index) == [0, 2]
    assert censored[stats.DURATION_S].tolist() == [0.0, 0.0]


def test_clean_data_does_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        stats.censored_latencies(_mixed())


def test_empty_frame():
    censored = stats.censored_latencies(pd.DataFrame())
    assert censored.empty and list(censored.columns) == [stats.DURATION_S, stats.OBSERVED]
