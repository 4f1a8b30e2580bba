"""read_sending_report(): the getSendingStatistics XML report as a deliveries-like frame."""

from __future__ import annotations

import gzip
import io
import os
import shutil
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skycore_lab import columns as col
from skycore_lab import stats
from skycore_lab.exceptions import PostbackParseError
from skycore_lab.frames import ClockSkewWarning
from skycore_lab.frames import read_sending_report as reexported
from skycore_lab.frames.sending_report import (
    ACK_AT,
    DDM_FAILED_AT,
    DELIVERY_TYPE,
    OPENED_AT,
    REPORT_COLUMNS,
    SECTION,
    SendingReportWarning,
    read_sending_report,
)

FIXTURE = os.path.join(os.path.dirname(__file__), "data", "sending_report", "report.xml")


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text)


@pytest.fixture(scope="module")
def report() -> pd.DataFrame:
    with pytest.warns(ClockSkewWarning, match="1 messages have a negative latency.*9000007"):
        frame = read_sending_report(FIXTURE)
    return frame.set_index(col.TRACKING_ID, drop=False)


def test_one_row_per_message_in_document_order(report):
    assert report[col.TRACKING_ID].tolist() == [f"900000{i}" for i in range(1, 10)] + ["7000001", "7000002"]
    assert list(report.columns) == list(REPORT_COLUMNS)
    assert reexported is read_sending_report


def test_dtypes_match_deliveries(report):
    assert list(report[col.OUTCOME].cat.categories) == list(col.OUTCOMES) and report[col.OUTCOME].cat.ordered
    assert list(report[col.DDM].cat.categories) == list(col.DDM_STATES)
    for name in (col.SENT_AT, col.DELIVERED_AT, col.FAILED_AT, col.FIRST_EVENT_AT, ACK_AT, OPENED_AT):
        assert str(report[name].dtype) == "datetime64[us, UTC]", name
    assert report[col.LATENCY_S].dtype == np.float64


@pytest.mark.parametrize(
    ("tracking_id", "outcome", "final_code"),
    [
        ("9000001", col.OUTCOME_DELIVERED, "DLR"),
        ("9000002", col.OUTCOME_DELIVERED, "DLR"),
        ("9000003", col.OUTCOME_DELIVERED, "DLR"),
        ("9000004", col.OUTCOME_FAILED, "ERROR"),
        ("9000005", col.OUTCOME_EXPIRED, "EXPIRED"),
        ("9000006", col.OUTCOME_REJECTED, "REJECTED"),
        ("9000008", col.OUTCOME_PENDING, None),
        ("9000009", col.OUTCOME_DELIVERED, "DLR"),  # its DDM failed, not the content
        ("7000001", col.OUTCOME_DELIVERED, "DLR"),
        ("7000002", col.OUTCOME_FAILED, "ERROR"),
    ],
)
def test_outcomes(report, tracking_id, outcome, final_code):
    row = report.loc[tracking_id]
    assert row[col.OUTCOME] == outcome
    assert (pd.isna(row[col.FINAL_CODE]) and final_code is None) or row[col.FINAL_CODE] == final_code


def test_binary_mms_times_latency_and_handset(report):
    row = report.loc["9000001"]
    assert row[col.SENT_AT] == ts("2024-03-01T14:00:02.5Z")  # ACK gw 9
    assert row[col.DELIVERED_AT] == ts("2024-03-01T14:00:12.75Z")  # DLR gw 20
    assert row[col.FIRST_EVENT_AT] == ts("2024-03-01T14:00:00.000120Z")  # INQUE, microseconds kept
    assert row[col.LATENCY_S] == pytest.approx(10.25)
    assert row[col.TOTAL_LATENCY_S] == pytest.approx(12.74988)
    assert row[col.HANDSET] == "Apple iPhone 15" and row[col.SENT_AS] == col.SENT_AS_MMS
    assert row[col.MMS_ID] == "4711" and row[col.SENDER] == "60856" and row[col.CARRIER] == "Verizon Wireless"
    assert row[col.COUNTRY] == "United States" and pd.isna(row[col.SPID]) and pd.isna(row[col.REQUESTED_AT])
    assert row[SECTION] == "BATCHES" and row["campaign_name"] == "Spring promo" and row["group_id"] == "5521"


def test_ddm_steps(report):
    discovered = report.loc["9000002"]
    assert discovered[col.DDM] == col.DDM_DELIVERED and discovered[col.DDM_LATENCY_S] == 20
    assert discovered[col.SENT_AT] == ts("2024-03-01T14:01:22Z")  # the content's ACK, not the DDM's
    assert report.loc["9000008", col.DDM] == col.DDM_SENT
    failed = report.loc["9000009"]
    assert failed[col.DDM] == col.DDM_FAILED and failed[DDM_FAILED_AT] == ts("2024-03-01T15:02:03Z")
    assert pd.isna(failed[col.FAILED_AT]) and pd.isna(failed[col.ERROR_INFO])
    assert report.loc["9000001", col.DDM] == col.DDM_NONE


def test_xhtml_is_sent_as_sms_with_user_agent_collapsed(report):
    row = report.loc["9000003"]
    assert row[col.SENT_AS] == col.SENT_AS_SMS and row[DELIVERY_TYPE] == "xhtml"
    assert row[OPENED_AT] == ts("2024-03-01T14:10:00Z")
    assert row[col.HANDSET] == ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 "
                                "(KHTML, like Gecko) Mobile Safari/537.36")


def test_failures_keep_their_time_and_error_text(report):
    assert report.loc["9000004", col.ERROR_INFO] == "Error fetching dynamic content"
    assert pd.isna(report.loc["9000004", col.SENT_AT])
    assert report.loc["9000005", col.FAILED_AT] == ts("2024-03-02T14:04:01Z")
    assert report.loc["7000002", col.ERROR_INFO] == "Invalid destination"


def test_plus_sender_normalised_and_clock_skew_kept(report):
    row = report.loc["9000007"]
    assert row[col.SENDER] == "447624805892" and row[col.COUNTRY] == "United Kingdom"
    assert row[col.LATENCY_S] == pytest.approx(-1.6)  # DLR stamped before ACK: kept, warned


def test_sms_text_rows(report):
    row = report.loc["7000001"]
    assert row[col.SENT_AS] == col.SENT_AS_SMS and row["message_type"] == col.SENT_AS_SMS
    assert row["body"] == "Your code is 1234" and row[col.LATENCY_S] == 2.5 and pd.isna(row[DELIVERY_TYPE])


def test_statistics_work_on_the_report_unchanged(report):
    rates = stats.delivery_rates(report, by=(col.SENT_AS,)).set_index(col.SENT_AS)
    assert rates.loc[col.SENT_AS_MMS, col.SENT] == 9 - 1  # 8 binary; the xhtml one is SMS
    assert rates.loc[col.SENT_AS_SMS, col.DELIVERED] == 2 and rates.loc[col.SENT_AS_MMS, col.PENDING] == 1
    with pytest.warns(Warning, match="negative"):  # the skewed message, flagged again by the statistics
        summary = stats.latency_summary(report.reset_index(drop=True))
    assert summary[col.DELIVERED].iloc[0] == 6


def test_clip_policy_and_sources(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        clipped = read_sending_report(FIXTURE, negative_latency="clip")
        gz = tmp_path / "report.xml.gz"
        with open(FIXTURE, "rb") as src, gzip.open(gz, "wb") as dst:
            shutil.copyfileobj(src, dst)
        from_gz = read_sending_report(gz, negative_latency="clip")
        with open(FIXTURE, "rb") as handle:
            data = handle.read()
        from_bytes = read_sending_report(data, negative_latency="clip")
        from_handle = read_sending_report(io.BytesIO(data), negative_latency="clip")
    assert clipped.set_index(col.TRACKING_ID).loc["9000007", col.LATENCY_S] == 0
    for other in (from_gz, from_bytes, from_handle):
        pd.testing.assert_frame_equal(other, clipped)


# --- lenient reading and hostile input ---------------------------------------------------------------
LENIENT = b"""<?xml version="1.0"?>
<response><batches>
  <batch id="77" from="+60856" carrier="Sprint" contentid="4711"/>
  <content id="1" delivery="BINARY">
    <to>17743199144</to>
    <msg_status>
      <ack><gw>9</gw><time>2024-03-01T14:00:00Z</time></ack>
      <dlr gw="20">2024-03-01T14:00:30.5Z</dlr>
    </msg_status>
    <MM7_HANDSETID>  Apple   iPhone 15 </MM7_HANDSETID>
    <FUTURE_FIELD>x</FUTURE_FIELD>
  </content>
</batches></response>"""


def test_lenient_forms_group_inheritance_and_unknown_elements_warned():
    with pytest.warns(SendingReportWarning, match="FUTURE_FIELD"):
        frame = read_sending_report(LENIENT)
    row = frame.iloc[0]
    assert row[col.TO] == "17743199144" and row[col.SENDER] == "60856" and row[col.CARRIER] == "Sprint"
    assert row[col.MMS_ID] == "4711" and row["group_id"] == "77" and row[col.SENT_AS] == col.SENT_AS_MMS
    assert row[col.LATENCY_S] == 30.5 and row[col.HANDSET] == "Apple iPhone 15"


BROKEN = b"""<RESPONSE><SENDING_LIST>
<CONTENT id="1" to="17743199144" carrier="Sprint" delivery="binary" from="60856"><MSG_STATUS>
<ACK gw="9" time="2024-03-01T14:00:00Z"><DLR gw="20" time="2024-03-01T14:00:04Z">
</MSG_STATUS></CONTENT>
</SENDING_LIST></RESPONSE>"""


def test_malformed_report_raises_with_line_unless_recovering(tmp_path):
    path = tmp_path / "broken.xml"
    path.write_bytes(BROKEN)
    with pytest.raises(PostbackParseError, match="broken.xml:\\d+: not well-formed XML.*recover=True") as info:
        read_sending_report(path)
    assert info.value.line is not None
    with pytest.warns(SendingReportWarning, match="recovery mode"):
        frame = read_sending_report(path, recover=True)
    assert frame.loc[0, col.OUTCOME] == col.OUTCOME_DELIVERED and frame.loc[0, col.LATENCY_S] == 4


def test_entities_and_dtds_are_refused(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    xxe = (f'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file://{secret}">]>'
           '<RESPONSE><TEXT id="1" to="17743199144" body="&x;"/></RESPONSE>').encode()
    with pytest.raises(PostbackParseError, match="DTD"):
        read_sending_report(xxe)
    with pytest.raises(PostbackParseError):
        read_sending_report(xxe, recover=True)


def test_unreadable_time_is_warned_and_empty_report_is_typed():
    bad = b'<RESPONSE><TEXT id="1" to="17743199144"><ACK gw="10" time="yesterday"/></TEXT></RESPONSE>'
    with pytest.warns(SendingReportWarning, match="1 step time"):
        frame = read_sending_report(bad)
    assert pd.isna(frame.loc[0, col.SENT_AT]) and frame.loc[0, col.OUTCOME] == col.OUTCOME_PENDING
    empty = read_sending_report(b"<RESPONSE><STATUS>Success</STATUS></RESPONSE>")
    assert empty.empty and list(empty.columns) == list(REPORT_COLUMNS)


# --- property: whatever the step path, times and outcome come back ------------------------------
STEP_PATHS = st.sampled_from([
    (("ACK", 9), ("DLR", 20)), (("ACK", 9), ("EXPIRED", 30)), (("ACK", 9), ("REJECTED", 35)),
    (("ERROR", 9),), (("ACK", 9),), (("ACK", 80), ("DLR", 81), ("ACK", 9), ("DLR", 20)),
])
EXPECTED = {"DLR": col.OUTCOME_DELIVERED, "EXPIRED": col.OUTCOME_EXPIRED, "REJECTED": col.OUTCOME_REJECTED,
            "ERROR": col.OUTCOME_FAILED}


@settings(max_examples=30)
@given(st.lists(st.tuples(STEP_PATHS, st.integers(0, 10**6), st.integers(0, 999_999)), min_size=1, max_size=8))
def test_generated_reports_round_trip(messages):
    parts = ["<RESPONSE><SENDING_LIST>"]
    for i, (path, seconds, micros) in enumerate(messages):
        parts.append(f'<CONTENT id="{i}" to="1774319{i:04d}" carrier="Sprint" delivery="binary"><MSG_STATUS>')
        for k, (step, gw) in enumerate(path):
            stamp = pd.Timestamp("2024-03-01T00:00:00Z") + pd.Timedelta(seconds=seconds + k, microseconds=micros)
            parts.append(f'<{step} gw="{gw}" time="{stamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ")}"/>')
        parts.append("</MSG_STATUS></CONTENT>")
    parts.append("</SENDING_LIST></RESPONSE>")
    frame = read_sending_report("".join(parts).encode())
    assert frame[col.TRACKING_ID].tolist() == [str(i) for i in range(len(messages))]
    for (path, seconds, micros), (_, row) in zip(messages, frame.iterrows()):
        final = path[-1][0]
        assert row[col.OUTCOME] == EXPECTED.get(final, col.OUTCOME_PENDING)
        assert row[col.DDM] == (col.DDM_DELIVERED if path[0][1] == 80 else col.DDM_NONE)
        if final == "DLR":
            assert row[col.LATENCY_S] == 1.0
        assert row[col.FIRST_EVENT_AT] == pd.Timestamp("2024-03-01T00:00:00Z") + pd.Timedelta(
            seconds=seconds, microseconds=micros)
