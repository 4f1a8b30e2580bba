"""deliveries(events, manifest): the join with the send manifest."""

from __future__ import annotations

import pandas as pd
import pytest
from test_frames_support import T0, at, event, make_events, make_manifest, one

from skycore_lab import reference as ref
from skycore_lab import columns as col
from skycore_lab.exceptions import SkycoreValidationError
from skycore_lab.frames import deliveries

MANIFEST_ROWS = [
    {col.TO: "17743199144", col.TRACKING_ID: "T1"},
    {col.TO: "447911123456", col.TRACKING_ID: "T2"},  # accepted, no postback yet
    {col.TO: "1774", col.STATUS: "Failure", col.TRACKING_ID: None, col.ERROR_CODE: "E110",
     col.ERROR_INFO: "invalid receiver number"},  # never a send
]
ARMS = ["ddm-5", "ddm-1", "ddm-5"]


@pytest.fixture
def joined():
    events = make_events([event(ref.N101), event(ref.N102, t=5),
                          event(ref.N101, tracking_id="T9", t=30, to="17743199160")])
    return deliveries(events, make_manifest(MANIFEST_ROWS, arm=ARMS))


def test_columns_are_delivery_columns_then_the_manifests_others(joined):
    extra = [col.STATUS, col.ERROR_CODE, col.ERROR_INFO, col.ARM]
    assert list(joined.columns) == [*col.DELIVERY_COLUMNS, *extra]


def test_manifest_sends_first_in_manifest_order_then_event_only_sends(joined):
    assert joined[col.TRACKING_ID].tolist() == ["T1", "T2", "T9"]


def test_requested_at_gives_total_latency(joined):
    row = one(joined)
    assert row[col.REQUESTED_AT] == T0 - pd.Timedelta(seconds=2)
    assert row[col.TOTAL_LATENCY_S] == 7 and row[col.LATENCY_S] == 5
    assert row[col.ARM] == "ddm-5" and row[col.STATUS] == "Success"


def test_manifest_send_without_postbacks_is_pending_with_manifest_data(joined):
    row = one(joined, "T2")
    assert row[col.OUTCOME] == col.OUTCOME_PENDING and row[col.DDM] == col.DDM_NONE
    assert row[col.TO] == "447911123456" and row[col.SENDER] == "60856" and row[col.ARM] == "ddm-1"
    assert row[col.COUNTRY] == "United Kingdom"  # from the number: pending sends count per country
    assert pd.isna(row[col.FIRST_EVENT_AT]) and pd.isna(row[col.TOTAL_LATENCY_S])


def test_failed_api_calls_are_not_sends(joined):
    assert "1774" not in set(joined[col.TO])
    assert len(joined) == 3


def test_event_only_sends_are_kept_with_missing_manifest_columns(joined):
    row = one(joined, "T9")
    assert row[col.OUTCOME] == col.OUTCOME_PENDING and row[col.TO] == "17743199160"
    assert pd.isna(row[col.ARM]) and pd.isna(row[col.REQUESTED_AT])
    assert row[col.TOTAL_LATENCY_S] != row[col.TOTAL_LATENCY_S]  # NaN: not delivered


def test_event_values_win_over_the_manifest():
    manifest = make_manifest([{col.TO: "17743199999", col.TRACKING_ID: "T1", col.SENDER: "11111"}])
    row = one(deliveries(make_events([event(ref.N101)]), manifest))
    assert row[col.TO] == "17743199144" and row[col.SENDER] == "60856"


def test_manifest_only():
    frame = deliveries(None, make_manifest(MANIFEST_ROWS, arm=ARMS))
    assert frame[col.TRACKING_ID].tolist() == ["T1", "T2"]
    assert (frame[col.OUTCOME] == col.OUTCOME_PENDING).all()


def test_manifest_concatenated_twice_is_harmless_but_a_clash_is_not():
    manifest = make_manifest(MANIFEST_ROWS[:2])
    doubled = pd.concat([manifest, manifest], ignore_index=True)
    events = make_events([event(ref.N101)])
    pd.testing.assert_frame_equal(deliveries(events, doubled), deliveries(events, manifest))
    clash = make_manifest([{col.TO: "1", col.TRACKING_ID: "T1"}, {col.TO: "2", col.TRACKING_ID: "T1"}])
    with pytest.raises(SkycoreValidationError, match="1 tracking id.*T1"):
        deliveries(events, clash)


def test_manifest_without_tracking_id_column_is_refused_by_name():
    manifest = make_manifest(MANIFEST_ROWS).drop(columns=[col.TRACKING_ID])
    with pytest.raises(SkycoreValidationError, match="manifest: missing required column\\(s\\): tracking_id"):
        deliveries(make_events([event(ref.N101)]), manifest)


def test_naive_requested_at_is_refused():
    manifest = make_manifest(MANIFEST_ROWS)
    manifest[col.REQUESTED_AT] = manifest[col.REQUESTED_AT].dt.tz_localize(None)
    with pytest.raises(SkycoreValidationError, match="requested_at"):
        deliveries(make_events([event(ref.N101)]), manifest)


def test_requested_after_delivery_is_clock_skew(recwarn):
    manifest = make_manifest([{col.TO: "17743199144", col.TRACKING_ID: "T1", col.REQUESTED_AT: at(60)}])
    frame = deliveries(make_events([event(ref.N101), event(ref.N102, t=5)]), manifest, negative_latency="nan")
    assert pd.isna(one(frame)[col.TOTAL_LATENCY_S]) and one(frame)[col.LATENCY_S] == 5
    assert not recwarn.list
