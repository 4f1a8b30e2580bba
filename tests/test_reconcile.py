"""sl.reconcile: the postbacks against the platform's sending report, send by send.

The recorded case (tests/data/reconcile/) is written from the documentation's
shapes, not from the code: an Appendix C report of one hour, the postbacks of
the same hour in the documented element order with local UTC offsets, and
the send manifest. Every category appears there once, with the reason in
the report's comments. The hand-made frames probe each rule on its own.
"""

from __future__ import annotations

import warnings

import pandas as pd
import pytest

import skycore_lab as sl
from skycore_lab import columns as col
from skycore_lab.exceptions import MissingPostbacksWarning, SkycoreValidationError, SkycoreWarning



@pytest.fixture(scope="module")
def recorded():
    import os

    root = os.path.join(os.path.dirname(__file__), "data", "reconcile")
    events = sl.read_postbacks(os.path.join(root, "postbacks.xml"), on_bad_lines="error")
    manifest = sl.read_manifest(os.path.join(root, "manifest.csv"))
    report = sl.read_sending_report(os.path.join(root, "report.xml"))
    return sl.deliveries(events, manifest), report


def _by_number(result) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for number, category in zip(result.sends[col.TO], result.sends[col.CATEGORY].astype(str), strict=True):
        grouped.setdefault(number, []).append(category)
    return grouped


def test_recorded_hour_finds_each_category_where_the_report_says(recorded):
    frame, report = recorded
    with pytest.warns(MissingPostbacksWarning, match=r"2 of 9 send\(s\) have postbacks missing.*14:01:00.*14:02:00"):
        result = sl.reconcile(frame, report)
    assert _by_number(result) == {
        "17745550001": [col.AGREES],
        "17745550002": [col.POSTBACK_MISSING],  # no postback at all: the manifest row still matches its message
        "17745550003": [col.POSTBACK_MISSING],  # N101 arrived, N102 lost
        "17745550004": [col.REPORT_MISSING],
        "17745550005": [col.OUTCOME_DIFFERS],
        "17745550006": [col.TIME_DIFFERS],
        "17745550007": [col.AGREES],
        "17745550008": [col.AGREES, col.AGREES],  # two sends to one number, paired by time
    }
    sends = result.sends.set_index(col.TRACKING_ID)
    assert sends.loc["600007", col.MATCHED_BY] == col.MATCHED_BY_ID
    assert sends.loc["TU1TXzkwMDAwMQ==", col.MATCHED_BY] == col.MATCHED_BY_NUMBER_AND_TIME
    # the later send to 17745550008 is the report's 600009, though the report lists it first
    assert sends.loc["TU1TXzkwMDAwOQ==", col.REPORT_ID] == "600009"
    assert sends.loc["TU1TXzkwMDAwOA==", col.REPORT_ID] == "600008"
    # -05:00 and -04 postback times against the report's Z times: same instants
    assert sends.loc["TU1TXzkwMDAwMQ==", col.TIME_DIFF_S] == 0.0
    assert sends.loc["TU1TXzkwMDAwNg==", col.TIME_DIFF_S] == 300.0
    assert list(result.sends.columns) == list(col.RECONCILE_COLUMNS)


def test_counts_per_category_and_per_carrier_add_up(recorded):
    frame, report = recorded
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MissingPostbacksWarning)
        result = sl.reconcile(frame, report)
    counts = result.counts.set_index(col.CATEGORY)[col.N]
    assert list(counts.index) == list(col.RECONCILE_CATEGORIES)
    assert counts.to_dict() == {col.AGREES: 4, col.POSTBACK_MISSING: 2, col.REPORT_MISSING: 1,
                                col.OUTCOME_DIFFERS: 1, col.TIME_DIFFERS: 1}
    assert result.counts["share"].sum() == pytest.approx(1.0)
    by_carrier = result.by_carrier.groupby(col.CARRIER)[col.N].sum().to_dict()
    assert by_carrier == {"T-Mobile": 5, "Verizon Wireless": 4}  # SPIDs 0001570 and 0001890 (Appendix E)
    table = result.carrier_table()
    assert table.loc["Verizon Wireless", col.POSTBACK_MISSING] == 1 and table.loc["T-Mobile", col.POSTBACK_MISSING] == 1
    assert table["total"].sum() == len(result.sends) == 9
    assert result.missing_postbacks == 2 and not result.agrees
    summary = result.summary()
    assert "postback missing: 2 (22.2%)" in summary and "receiver outage" in summary
    assert "<table" in result._repr_html_() and "outcome differs" in result._repr_html_()


def test_period_restricts_both_sides(recorded):
    frame, report = recorded
    result = sl.reconcile(frame, report, period=("2024-05-01 14:03:30", "2024-05-01 14:15"), warn=False)
    assert sorted(result.sends[col.TO]) == ["17745550005", "17745550006", "17745550007"]


def test_tolerance_is_a_parameter(recorded):
    frame, report = recorded
    result = sl.reconcile(frame, report, tolerance_s=300, warn=False)
    assert result.count(col.TIME_DIFFERS) == 0 and result.count(col.AGREES) == 5


# --- hand-made frames: one rule each ---------------------------------------------------------------
T0 = pd.Timestamp("2024-05-01 12:00", tz="UTC")


def _frame(rows: list[dict]) -> pd.DataFrame:
    base = {col.TRACKING_ID: None, col.TO: "15550000001", col.MMS_ID: "1", col.CARRIER: None,
            col.OUTCOME: col.OUTCOME_PENDING, col.FIRST_EVENT_AT: T0, col.DELIVERED_AT: pd.NaT,
            col.FAILED_AT: pd.NaT}
    frame = pd.DataFrame([{**base, **row} for row in rows])
    for name in (col.FIRST_EVENT_AT, col.DELIVERED_AT, col.FAILED_AT):
        frame[name] = pd.to_datetime(frame[name], utc=True)
    return frame


def _seconds(s: float) -> pd.Timestamp:
    return T0 + pd.Timedelta(seconds=s)


def test_tolerance_boundary_is_inclusive():
    post = _frame([{col.TRACKING_ID: "a", col.OUTCOME: "delivered", col.DELIVERED_AT: _seconds(10)}])
    report = _frame([{col.TRACKING_ID: "1", col.OUTCOME: "delivered", col.DELIVERED_AT: _seconds(70)}])
    assert sl.reconcile(post, report, tolerance_s=60).count(col.AGREES) == 1
    assert sl.reconcile(post, report, tolerance_s=59.9).count(col.TIME_DIFFERS) == 1


def test_failure_times_are_compared_too():
    post = _frame([{col.TRACKING_ID: "a", col.OUTCOME: "expired", col.FAILED_AT: _seconds(0)}])
    report = _frame([{col.TRACKING_ID: "1", col.OUTCOME: "expired", col.FAILED_AT: _seconds(3600)}])
    result = sl.reconcile(post, report)
    assert result.count(col.TIME_DIFFERS) == 1 and result.sends[col.TIME_DIFF_S].iloc[0] == 3600


def test_final_in_postbacks_but_pending_in_report_is_an_outcome_difference():
    post = _frame([{col.TRACKING_ID: "a", col.OUTCOME: "delivered", col.DELIVERED_AT: _seconds(5)}])
    report = _frame([{col.TRACKING_ID: "1"}])
    assert sl.reconcile(post, report).count(col.OUTCOME_DIFFERS) == 1


def test_pending_on_both_sides_agrees():
    result = sl.reconcile(_frame([{col.TRACKING_ID: "a"}]), _frame([{col.TRACKING_ID: "1"}]))
    assert result.agrees and result.missing_postbacks == 0


def test_outside_the_match_window_two_unmatched_sends():
    post = _frame([{col.TRACKING_ID: "a", col.FIRST_EVENT_AT: _seconds(0)}])
    report = _frame([{col.TRACKING_ID: "1", col.FIRST_EVENT_AT: _seconds(7200)}])
    with pytest.warns(MissingPostbacksWarning):
        result = sl.reconcile(post, report, match_window_s=3600)
    assert result.count(col.REPORT_MISSING) == 1 and result.count(col.POSTBACK_MISSING) == 1
    assert sl.reconcile(post, report, match_window_s=7200).count(col.AGREES) == 1


def test_mms_ids_must_agree_when_both_sides_know_them():
    post = _frame([{col.TRACKING_ID: "a", col.MMS_ID: "1"}, {col.TRACKING_ID: "b", col.MMS_ID: None,
                                                             col.TO: "15550000002"}])
    report = _frame([{col.TRACKING_ID: "1", col.MMS_ID: "2"}, {col.TRACKING_ID: "2", col.MMS_ID: "9",
                                                               col.TO: "15550000002"}])
    result = sl.reconcile(post, report, warn=False)
    assert result.count(col.REPORT_MISSING) == 1  # a: MMS 1 is not MMS 2
    assert result.sends.set_index(col.TRACKING_ID).loc["b", col.REPORT_ID] == "2"  # b: no MMS id, a wildcard


def test_each_message_matches_at_most_one_send():
    # three sends, one message: the nearest send takes it, the others are report_missing
    post = _frame([{col.TRACKING_ID: t, col.FIRST_EVENT_AT: _seconds(s)} for t, s in (("a", 0), ("b", 50), ("c", 90))])
    report = _frame([{col.TRACKING_ID: "1", col.FIRST_EVENT_AT: _seconds(60)}])
    result = sl.reconcile(post, report)
    sends = result.sends.set_index(col.TRACKING_ID)
    assert sends.loc["b", col.REPORT_ID] == "1"
    assert sends[col.REPORT_ID].notna().sum() == 1 and result.count(col.REPORT_MISSING) == 2


def test_id_match_wins_over_a_nearer_number_match():
    post = _frame([{col.TRACKING_ID: "7", col.FIRST_EVENT_AT: _seconds(0)},
                   {col.TRACKING_ID: "x", col.FIRST_EVENT_AT: _seconds(100)}])
    report = _frame([{col.TRACKING_ID: "7", col.FIRST_EVENT_AT: _seconds(100)},
                     {col.TRACKING_ID: "8", col.FIRST_EVENT_AT: _seconds(0)}])
    sends = sl.reconcile(post, report).sends.set_index(col.TRACKING_ID)
    assert sends.loc["7", col.REPORT_ID] == "7" and sends.loc["7", col.MATCHED_BY] == col.MATCHED_BY_ID
    assert sends.loc["x", col.REPORT_ID] == "8"


def test_carrier_from_the_postbacks_else_the_report_else_unknown():
    post = _frame([{col.TRACKING_ID: "a", col.CARRIER: "AT&T"}, {col.TRACKING_ID: "b", col.TO: "15550000002"}])
    report = _frame([{col.TRACKING_ID: "1", col.CARRIER: "All Carriers"},
                     {col.TRACKING_ID: "2", col.TO: "15550000002", col.CARRIER: "Sprint"},
                     {col.TRACKING_ID: "3", col.TO: "15550000003"}])
    with pytest.warns(MissingPostbacksWarning):
        sends = sl.reconcile(post, report).sends.set_index(col.REPORT_ID)
    assert sends[col.CARRIER].to_dict() == {"1": "AT&T", "2": "Sprint", "3": "unknown"}


def test_a_plus_on_the_report_number_still_matches():
    report = _frame([{col.TRACKING_ID: "1", col.TO: "+15550000001"}])
    assert sl.reconcile(_frame([{col.TRACKING_ID: "a"}]), report).agrees


def test_empty_inputs_give_empty_counts():
    result = sl.reconcile(_frame([{}]).iloc[0:0], _frame([{}]).iloc[0:0])
    assert len(result.sends) == 0 and result.counts[col.N].sum() == 0
    assert "0 send(s)" in result.summary()


@pytest.mark.parametrize("bad", [
    dict(tolerance_s=-1), dict(match_window_s=float("nan")), dict(period="yesterday"),
])
def test_bad_parameters_are_refused(bad):
    with pytest.raises(SkycoreValidationError):
        sl.reconcile(_frame([{col.TRACKING_ID: "a"}]), _frame([{col.TRACKING_ID: "1"}]), **bad)


def test_missing_column_and_unknown_outcome_are_named():
    with pytest.raises(SkycoreValidationError, match="outcome"):
        sl.reconcile(_frame([{}]).drop(columns=[col.OUTCOME]), _frame([{}]))
    with pytest.raises(SkycoreValidationError, match="unknown outcome"):
        sl.reconcile(_frame([{col.OUTCOME: "lost"}]), _frame([{}]))


def test_the_warning_is_a_skycore_warning():
    assert issubclass(MissingPostbacksWarning, SkycoreWarning)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sl.reconcile(_frame([{col.TRACKING_ID: "a"}]), _frame([{col.TRACKING_ID: "1"}]))  # nothing missing: silent
