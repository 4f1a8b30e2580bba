"""handset_profiles(): what the postbacks say about each number's handset."""

from __future__ import annotations

import pandas as pd
import pytest
from test_frames_support import at, event, make_events

from skycore_lab import reference as ref
from skycore_lab import columns as col
from skycore_lab.exceptions import SkycoreValidationError
from skycore_lab.frames import handset_profiles

US, UK = "17743199144", "447911123456"


def profile(rows, number=US):
    frame = handset_profiles(make_events(rows))
    return frame.set_index(col.TO).loc[number]


def test_one_row_per_number_sorted_with_profile_columns():
    rows = [event(ref.N101, tracking_id="B", to=UK, spid="0044170", carrier="O2", country="United Kingdom"),
            event(ref.N101, tracking_id="A")]
    frame = handset_profiles(make_events(rows))
    assert list(frame.columns) == list(col.PROFILE_COLUMNS)
    assert frame[col.TO].tolist() == sorted([US, UK])
    assert frame[col.DELIVERIES].dtype == "int64" and frame[col.HANDSET_CHANGES].dtype == "int64"
    assert str(frame[col.FIRST_SEEN].dtype) == "datetime64[us, UTC]"


def test_most_recent_handset_and_changes_over_time():
    rows = [
        event(ref.N102, tracking_id="A", t=0, handset="Apple iPhone 12"),
        event(ref.N502, tracking_id="B", t=100, handset="Apple iPhone 12"),  # same again: no change
        event(ref.N102, tracking_id="B", t=200, handset="Apple iPhone 15"),  # new phone: 1
        event(ref.N101, tracking_id="C", t=300),  # no handset reported: no change
        event(ref.N102, tracking_id="C", t=400, handset="Apple iPhone 12"),  # back: 2
    ]
    row = profile(rows[::-1])  # arrival order must not matter
    assert row[col.HANDSET] == "Apple iPhone 12"
    assert row[col.HANDSET_CHANGES] == 2
    assert row[col.FIRST_SEEN] == at(0) and row[col.LAST_SEEN] == at(400)


def test_deliveries_counts_distinct_delivered_sends():
    rows = [event(ref.N101, tracking_id="A"), event(ref.N102, tracking_id="A", t=5),
            event(ref.N102, tracking_id="A", t=5),  # retried duplicate
            event(ref.N101, tracking_id="B", t=10), event(ref.N202, tracking_id="B", t=12),
            event(ref.N101, tracking_id="C", t=20), event(ref.E102, tracking_id="C", t=25)]
    assert profile(rows)[col.DELIVERIES] == 2


def test_number_never_reporting_a_handset():
    row = profile([event(ref.N101), event(ref.E102, t=5, status="Message Sent/Expired")])
    assert pd.isna(row[col.HANDSET]) and row[col.HANDSET_CHANGES] == 0 and row[col.DELIVERIES] == 0


def test_carrier_is_the_most_recent_non_missing_one():
    # The number moved carriers (ported); a later event without carrier does not erase it.
    rows = [event(ref.N101, tracking_id="A", t=0, spid="0001650", carrier="Sprint"),
            event(ref.N101, tracking_id="B", t=50, spid="0001770", carrier="Metro PCS"),
            event(ref.N101, tracking_id="C", t=90, spid=None, carrier=None, country=None)]
    row = profile(rows)
    assert row[col.CARRIER] == "Metro PCS" and row[col.COUNTRY] == "United States"


def test_carrier_and_country_filled_from_spid_and_number():
    rows = [event(ref.N101, tracking_id="A", spid="0001100", carrier=None, country=None, to="14165550100"),
            event(ref.N101, tracking_id="B", spid=None, carrier=None, country=None, to=UK)]
    frame = handset_profiles(make_events(rows)).set_index(col.TO)
    assert frame.loc["14165550100", col.COUNTRY] == "Canada"
    assert frame.loc["14165550100", col.CARRIER] == "All Carriers"
    assert frame.loc[UK, col.COUNTRY] == "United Kingdom" and pd.isna(frame.loc[UK, col.CARRIER])


def test_notification_without_to_belongs_to_its_sends_number():
    rows = [event(ref.N101, tracking_id="A", t=0), event(ref.N102, tracking_id="A", t=60, to=None, handset="X")]
    row = profile(rows)
    assert row[col.HANDSET] == "X" and row[col.LAST_SEEN] == at(60) and row[col.DELIVERIES] == 1


def test_mo_and_subscription_notifications_do_not_count():
    rows = [event(ref.N101, tracking_id="A"), event("N211", tracking_id=None, to="60856", t=99),
            event("N301", tracking_id=None, to=US, t=500)]
    frame = handset_profiles(make_events(rows))
    assert frame[col.TO].tolist() == [US] and frame.loc[0, col.LAST_SEEN] == at(0)


def test_missing_required_column_is_named_and_empty_input_works():
    events = make_events([event(ref.N101)])
    with pytest.raises(SkycoreValidationError, match="missing required column\\(s\\): to"):
        handset_profiles(events.drop(columns=[col.TO]))
    empty = handset_profiles(events.iloc[:0])
    assert empty.empty and list(empty.columns) == list(col.PROFILE_COLUMNS)
