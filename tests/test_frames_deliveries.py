"""deliveries(): one row per send from postback events — one test per rule."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from test_frames_support import at, event, make_events, one

from skycore_lab import reference as ref
from skycore_lab import columns as col
from skycore_lab.exceptions import SkycoreValidationError
from skycore_lab.frames import ClockSkewWarning, deliveries


def row_of(rows, tracking_id="T1", **kwargs):
    return one(deliveries(make_events(rows), **kwargs), tracking_id)


# --- outcomes ------------------------------------------------------------------------------------
def test_delivered_mms_has_times_latency_and_handset():
    row = row_of([event(ref.N101, t=0), event(ref.N102, t=7.5, handset="Apple iPhone 15")])
    assert row[col.OUTCOME] == col.OUTCOME_DELIVERED
    assert row[col.FINAL_CODE] == ref.N102
    assert row[col.SENT_AT] == at(0) and row[col.DELIVERED_AT] == at(7.5)
    assert pd.isna(row[col.FAILED_AT])
    assert row[col.LATENCY_S] == 7.5 and row[col.TOTAL_LATENCY_S] == 7.5
    assert row[col.HANDSET] == "Apple iPhone 15"
    assert row[col.SENT_AS] == col.SENT_AS_MMS


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        ("Message Sent/Failed", col.OUTCOME_FAILED),
        ("Message Sent/Expired", col.OUTCOME_EXPIRED),
        ("Message Sent/Rejected", col.OUTCOME_REJECTED),
        ("Message Sent/NotSupported", col.OUTCOME_NOT_SUPPORTED),
        ("Something unheard of", col.OUTCOME_FAILED),
    ],
)
def test_e102_outcome_follows_status_suffix(status, outcome):
    row = row_of([event(ref.N101), event(ref.E102, t=60, status=status)])
    assert row[col.OUTCOME] == outcome
    assert row[col.FINAL_CODE] == ref.E102
    assert row[col.FAILED_AT] == at(60)
    assert np.isnan(row[col.LATENCY_S]) and pd.isna(row[col.DELIVERED_AT])


def test_e101_without_timestamp_uses_received_at():
    # The documentation shows an E101 without TIMESTAMP.
    row = row_of([event(ref.E101, t=None, received_at=at(3))])
    assert row[col.OUTCOME] == col.OUTCOME_FAILED
    assert row[col.FAILED_AT] == at(3)
    assert pd.isna(row[col.SENT_AT])


def test_sent_without_receipt_is_pending_not_failed():
    row = row_of([event(ref.N101)])
    assert row[col.OUTCOME] == col.OUTCOME_PENDING
    assert pd.isna(row[col.FINAL_CODE])
    assert row[col.SENT_AT] == at(0)


@pytest.mark.parametrize("failure_first", [True, False])
def test_delivery_wins_over_a_failure_notice(failure_first):
    failure = event(ref.E102, t=5 if failure_first else 50, status="Message Sent/Failed")
    row = row_of([event(ref.N101), failure, event(ref.N102, t=20)])
    assert row[col.OUTCOME] == col.OUTCOME_DELIVERED
    assert row[col.FINAL_CODE] == ref.N102
    assert row[col.FAILED_AT] == failure[col.TIMESTAMP]  # kept, for the record


def test_earliest_failure_decides_between_failures():
    row = row_of([event(ref.N101), event(ref.E102, t=90, status="Message Sent/Rejected"),
                  event(ref.E102, t=30, status="Message Sent/Expired")])
    assert row[col.OUTCOME] == col.OUTCOME_EXPIRED and row[col.FAILED_AT] == at(30)


def test_earliest_delivery_report_gives_delivered_at():
    row = row_of([event(ref.N101), event(ref.N102, t=40), event(ref.N102, t=10)])
    assert row[col.DELIVERED_AT] == at(10) and row[col.LATENCY_S] == 10


# --- SMS fallback --------------------------------------------------------------------------------
def test_sms_fallback_delivered_by_n202_keeps_n101_sent_at():
    rows = [event(ref.N101, sent_as=col.SENT_AS_SMS, status_details="Sent as SMS/xHTML"),
            event(ref.N201, t=2), event(ref.N202, t=9)]
    row = row_of(rows)
    assert row[col.OUTCOME] == col.OUTCOME_DELIVERED and row[col.FINAL_CODE] == ref.N202
    assert row[col.SENT_AS] == col.SENT_AS_SMS
    assert row[col.SENT_AT] == at(0) and row[col.LATENCY_S] == 9


def test_sms_path_only_uses_n201_and_says_sms():
    row = row_of([event(ref.N201, t=1), event(ref.E202, t=4, status="Message Sent/Expired")])
    assert row[col.SENT_AT] == at(1)
    assert row[col.SENT_AS] == col.SENT_AS_SMS
    assert row[col.OUTCOME] == col.OUTCOME_EXPIRED


def test_n202_under_mms_origin_counts_as_delivered():
    # A documented xHTML delivery notification: CODE N202, ORIGIN MMS_MT, no MMSID.
    rows = [event(ref.N101, sent_as=col.SENT_AS_SMS), event(ref.N202, t=3, origin=ref.ORIGIN_MMS, mms_id=None)]
    row = row_of(rows)
    assert row[col.OUTCOME] == col.OUTCOME_DELIVERED and row[col.MMS_ID] == "4711"


# --- DDM -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("ddm_events", "state"),
    [
        ([], col.DDM_NONE),
        ([event(ref.N501, t=-60)], col.DDM_SENT),
        ([event(ref.N501, t=-60), event(ref.N502, t=-40, handset="Pixel 8")], col.DDM_DELIVERED),
        ([event(ref.E501, t=-60)], col.DDM_FAILED),
        ([event(ref.N501, t=-60), event(ref.E502, t=-30)], col.DDM_FAILED),
        ([event(ref.N501, t=-60), event(ref.N502, t=-30, status="DDM Sent/Failed")], col.DDM_FAILED),
    ],
)
def test_ddm_states(ddm_events, state):
    row = row_of([*ddm_events, event(ref.N101)])
    assert row[col.DDM] == state
    if state == col.DDM_DELIVERED:
        assert row[col.DDM_LATENCY_S] == 20
        assert row[col.HANDSET] == "Pixel 8"  # N502's handset when N102 gives none
    else:
        assert np.isnan(row[col.DDM_LATENCY_S])
    assert row[col.FIRST_EVENT_AT] == (ddm_events[0][col.TIMESTAMP] if ddm_events else at(0))


def test_delivery_report_handset_beats_ddm_handset():
    rows = [event(ref.N501, t=-60), event(ref.N502, t=-50, handset="Generic"),
            event(ref.N101), event(ref.N102, t=5, handset="Apple iPhone 15")]
    assert row_of(rows)[col.HANDSET] == "Apple iPhone 15"


def test_total_latency_without_manifest_counts_from_first_event():
    rows = [event(ref.N501, t=-60), event(ref.N502, t=-40), event(ref.N101), event(ref.N102, t=5)]
    row = row_of(rows)
    assert row[col.TOTAL_LATENCY_S] == 65 and row[col.LATENCY_S] == 5


# --- identity ------------------------------------------------------------------------------------
def test_identity_is_first_non_missing_value_in_time_order():
    rows = [event(ref.N102, t=5, to=None, spid="0001770", carrier=None, country=None),
            event(ref.N101, t=0, mms_id=None, spid=None, carrier=None, country=None)]
    row = row_of(rows)
    assert row[col.TO] == "17743199144" and row[col.MMS_ID] == "4711" and row[col.SPID] == "0001770"
    # carrier and country missing from every event: resolved from the SPID
    assert row[col.CARRIER] == "Metro PCS" and row[col.COUNTRY] == "United States"


def test_ambiguous_spid_is_resolved_by_the_number():
    rows = [event(ref.N101, tracking_id="CA", to="14165550100", spid="0001100", carrier=None, country=None),
            event(ref.N101, tracking_id="US", to="17743199144", spid="0001100", carrier=None, country=None)]
    frame = deliveries(make_events(rows))
    assert one(frame, "CA")[col.COUNTRY] == "Canada"
    assert one(frame, "US")[col.COUNTRY] == "United States"


def test_events_without_tracking_id_or_of_other_kinds_are_not_sends():
    rows = [event(ref.N101), event(ref.N101, tracking_id=None),
            event("N211", tracking_id="MO1"), event("N301", tracking_id="SUB1"), event("N003", tracking_id="ENC1")]
    frame = deliveries(make_events(rows))
    assert frame[col.TRACKING_ID].tolist() == ["T1"]


def test_rows_sorted_by_first_event_then_tracking_id():
    rows = [event(ref.N101, tracking_id="B", t=10), event(ref.N101, tracking_id="A", t=10),
            event(ref.N101, tracking_id="C", t=0)]
    assert deliveries(make_events(rows))[col.TRACKING_ID].tolist() == ["C", "A", "B"]


# --- order and duplicates ------------------------------------------------------------------------
def test_out_of_order_arrival_gives_the_identical_row():
    in_order = [event(ref.N101), event(ref.N102, t=5, handset="H")]
    expected = deliveries(make_events(in_order))
    got = deliveries(make_events(in_order[::-1]))
    pd.testing.assert_frame_equal(got, expected)
    assert got.loc[0, col.SENT_AT] == at(0) and got.loc[0, col.LATENCY_S] == 5


def test_duplicates_change_nothing():
    rows = [event(ref.N501, t=-9), event(ref.N101), event(ref.N102, t=5, handset="H")]
    expected = deliveries(make_events(rows))
    retried = [*rows, rows[2], rows[1], {**rows[2], col.RECEIVED_AT: at(305)}]
    pd.testing.assert_frame_equal(deliveries(make_events(retried)), expected)


# --- input shapes --------------------------------------------------------------------------------
def test_categorical_and_string_inputs_give_the_same_frame():
    rows = [event(ref.N101), event(ref.E102, t=5, status="Message Sent/Rejected"),
            event(ref.N101, tracking_id="T2", to="447911123456", spid="0044170", carrier="O2",
                  country="United Kingdom")]
    as_categories = deliveries(make_events(rows, categorical=True))
    as_strings = deliveries(make_events(rows, categorical=False))
    as_objects = deliveries(make_events(rows).astype({col.CODE: object, col.TRACKING_ID: object}))
    pd.testing.assert_frame_equal(as_categories, as_strings)
    pd.testing.assert_frame_equal(as_categories, as_objects)


def test_only_the_required_columns_are_needed():
    events = make_events([event(ref.N101), event(ref.N102, t=5)])
    minimal = events[[col.TRACKING_ID, col.CODE, col.TIMESTAMP]].assign(surplus=1)
    row = one(deliveries(minimal))
    assert row[col.OUTCOME] == col.OUTCOME_DELIVERED and row[col.LATENCY_S] == 5
    assert pd.isna(row[col.TO]) and pd.isna(row[col.HANDSET])


@pytest.mark.parametrize("dropped", [col.TRACKING_ID, col.CODE, col.TIMESTAMP])
def test_missing_required_column_is_named(dropped):
    events = make_events([event(ref.N101)]).drop(columns=[dropped])
    with pytest.raises(SkycoreValidationError, match=f"missing required column\\(s\\): {dropped}") as info:
        deliveries(events)
    assert info.value.field == "events"


def test_not_a_frame_and_naive_times_are_refused():
    with pytest.raises(SkycoreValidationError, match="DataFrame"):
        deliveries([event(ref.N101)])
    events = make_events([event(ref.N101)])
    events[col.TIMESTAMP] = events[col.TIMESTAMP].dt.tz_localize(None)
    with pytest.raises(SkycoreValidationError, match="naive"):
        deliveries(events)


def test_iso_text_timestamps_with_offsets_are_read():
    events = make_events([event(ref.N101), event(ref.N102)])
    events[col.TIMESTAMP] = pd.Series(["2024-03-01T09:00:00-05:00", "2024-03-01T10:00:10-04:00"], dtype="str")
    assert one(deliveries(events))[col.LATENCY_S] == 10


def test_empty_and_none_events_give_empty_typed_frame():
    for events in (None, make_events([event(ref.N101)]).iloc[:0]):
        frame = deliveries(events)
        assert frame.empty and list(frame.columns) == list(col.DELIVERY_COLUMNS)
        assert str(frame[col.DELIVERED_AT].dtype) == "datetime64[us, UTC]"
        assert list(frame[col.OUTCOME].cat.categories) == list(col.OUTCOMES)


def test_dtypes_and_column_order():
    frame = deliveries(make_events([event(ref.N101), event(ref.N102, t=1)]))
    assert list(frame.columns) == list(col.DELIVERY_COLUMNS)
    assert frame[col.OUTCOME].cat.ordered and list(frame[col.OUTCOME].cat.categories) == list(col.OUTCOMES)
    assert frame[col.DDM].cat.ordered and list(frame[col.DDM].cat.categories) == list(col.DDM_STATES)
    for name in (col.REQUESTED_AT, col.FIRST_EVENT_AT, col.SENT_AT, col.DELIVERED_AT, col.FAILED_AT):
        assert str(frame[name].dtype) == "datetime64[us, UTC]", name
    for name in (col.LATENCY_S, col.TOTAL_LATENCY_S, col.DDM_LATENCY_S):
        assert frame[name].dtype == np.float64, name
    for name in (col.TRACKING_ID, col.TO, col.MMS_ID, col.SENDER, col.SPID, col.HANDSET):
        assert pd.api.types.is_string_dtype(frame[name].dtype), name
    assert isinstance(frame.index, pd.RangeIndex)


# --- clock skew ----------------------------------------------------------------------------------
SKEWED = [event(ref.N101, t=10), event(ref.N102, t=4), event(ref.N101, tracking_id="OK"),
          event(ref.N102, tracking_id="OK", t=3)]


def test_negative_latency_is_kept_with_one_warning_counting_it():
    with pytest.warns(ClockSkewWarning, match="1 sends have a negative latency.*T1") as record:
        frame = deliveries(make_events(SKEWED))
    assert len(record) == 1
    assert one(frame)[col.LATENCY_S] == -6 and one(frame, "OK")[col.LATENCY_S] == 3


@pytest.mark.parametrize(("policy", "expected"), [("clip", 0.0), ("nan", np.nan)])
def test_negative_latency_clip_or_nan_without_warning(policy, expected):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        frame = deliveries(make_events(SKEWED), negative_latency=policy)
    np.testing.assert_equal(one(frame)[col.LATENCY_S], expected)
    assert one(frame)[col.OUTCOME] == col.OUTCOME_DELIVERED  # outcomes never change
    assert one(frame, "OK")[col.LATENCY_S] == 3


def test_unknown_negative_latency_policy_is_refused():
    with pytest.raises(SkycoreValidationError, match="negative_latency"):
        deliveries(make_events(SKEWED), negative_latency="ignore")
