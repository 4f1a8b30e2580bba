"""Properties of deliveries() and handset_profiles(): order and duplicates never matter."""

from __future__ import annotations

import warnings

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st
from test_frames_support import at, event, make_events

from skycore_lab import reference as ref
from skycore_lab import columns as col
from skycore_lab.frames import deliveries, handset_profiles

CODES = sorted(ref.MMS_CODES | ref.SMS_CODES | ref.DDM_CODES | {"N211", "N003"})
STATUSES = [None, "Message Sent/Failed", "Message Sent/Expired", "Message Sent/Rejected", "DDM Sent/Failed",
            "Message Sent/Delivered"]


def maybe(values):
    return st.none() | st.sampled_from(values)


@st.composite
def events_rows(draw):
    """Up to 25 notifications of up to 4 sends (and some without tracking id)."""
    rows = []
    for _ in range(draw(st.integers(0, 25))):
        t = draw(st.none() | st.integers(-100, 100))
        rows.append(event(
            draw(st.sampled_from(CODES)),
            tracking_id=draw(st.none() | st.sampled_from(["T1", "T2", "T3", "T4"])),
            t=t,
            received_at=at(draw(st.integers(0, 400))),
            status=draw(maybe(STATUSES)),
            handset=draw(maybe(["Apple iPhone 15", "Pixel 8", "Default"])),
            sent_as=draw(maybe([col.SENT_AS_MMS, col.SENT_AS_SMS])),
            to=draw(maybe(["17743199144", "447911123456"])),
            spid=draw(maybe(["0001100", "0001650", "0044170"])),
            carrier=None,
            country=None,
        ))
    return rows


def quiet(function, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # clock-skew warnings are expected here
        return function(*args, **kwargs)


@settings(max_examples=60)
@given(rows=events_rows(), seed=st.integers(0, 2**32 - 1), duplicate=st.lists(st.integers(0, 24), max_size=6))
def test_shuffling_and_duplicating_events_never_changes_deliveries(rows, seed, duplicate):
    events = make_events(rows)
    expected = quiet(deliveries, events)
    changed = pd.concat([events, events.iloc[[i for i in duplicate if i < len(events)]]])
    changed = changed.sample(frac=1.0, random_state=seed)  # new order, old index labels
    pd.testing.assert_frame_equal(quiet(deliveries, changed), expected)


@settings(max_examples=50)
@given(rows=events_rows(), seed=st.integers(0, 2**32 - 1))
def test_shuffling_events_never_changes_handset_profiles(rows, seed):
    events = make_events(rows)
    expected = handset_profiles(events)
    shuffled = pd.concat([events, events.head(3)]).sample(frac=1.0, random_state=seed)
    pd.testing.assert_frame_equal(handset_profiles(shuffled), expected)


@settings(max_examples=40)
@given(rows=events_rows())
def test_deliveries_invariants(rows):
    frame = quiet(deliveries, make_events(rows), negative_latency="clip")
    send_codes = ref.MMS_CODES | ref.SMS_CODES | ref.DDM_CODES
    sends = {r[col.TRACKING_ID] for r in rows if r[col.TRACKING_ID] and r[col.CODE] in send_codes}
    assert set(frame[col.TRACKING_ID]) == sends and frame[col.TRACKING_ID].is_unique
    delivered = frame[col.OUTCOME] == col.OUTCOME_DELIVERED
    assert frame.loc[delivered, col.DELIVERED_AT].notna().all()
    assert frame.loc[~delivered, col.LATENCY_S].isna().all()
    assert (frame[col.LATENCY_S].dropna() >= 0).all()  # clipped
    pending = frame[col.OUTCOME] == col.OUTCOME_PENDING
    assert frame.loc[pending, col.FINAL_CODE].isna().all() and frame.loc[~pending, col.FINAL_CODE].notna().all()
    failed = frame[col.OUTCOME].isin(col.FAILURE_OUTCOMES)
    assert frame.loc[failed, col.FAILED_AT].notna().all()
