"""read_postbacks: every stored format, the documented quirks, dtypes and columns."""

from __future__ import annotations

import gzip
import shutil
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from skycore_lab import columns as col
from skycore_lab.postbacks.logformat import HEADER, encode_record
from skycore_lab.postbacks import EVENT_FRAME_COLUMNS, LINE, events_from_bodies, read_postbacks

DATA = Path(__file__).parent / "data" / "postbacks"
UTC_US = "datetime64[us, UTC]"


def _ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text).tz_convert("UTC")


def _check_dtypes(frame: pd.DataFrame) -> None:
    assert tuple(frame.columns) == EVENT_FRAME_COLUMNS
    assert tuple(frame.columns[:-2]) == col.EVENT_COLUMNS[:-1] and frame.columns[-1] == col.EXTRA
    for name in col.EVENT_CATEGORICAL:
        assert isinstance(frame[name].dtype, pd.CategoricalDtype), name
    for name in (col.MMS_ID, col.SENDER, col.TO, col.TRACKING_ID, col.SPID, col.HANDSET):
        assert frame[name].dtype == pd.StringDtype("pyarrow", na_value=np.nan), name
    assert str(frame[col.TIMESTAMP].dtype) == UTC_US
    assert str(frame[col.RECEIVED_AT].dtype) == UTC_US
    assert isinstance(frame[col.SOURCE].dtype, pd.CategoricalDtype)
    assert frame[LINE].dtype == np.int64


def test_concatenated_one_per_line_with_offsets_and_plus():
    frame = read_postbacks(DATA / "concatenated_oneline.xml")
    _check_dtypes(frame)
    assert frame[col.CODE].tolist() == ["N101", "N102", "E102"]
    # "-05:00", bare "-05", space separator with microseconds and Z
    assert frame[col.TIMESTAMP].tolist() == [
        _ts("2026-03-02T14:00:00Z"),
        _ts("2026-03-02T14:00:42Z"),
        _ts("2026-03-02T14:05:00.262743Z"),
    ]
    assert frame[col.TO].iloc[2] == "447624805892"  # leading "+" removed
    assert frame[col.SPID].tolist() == ["0001950", "0001950", "0044640"]  # zeros kept
    assert frame[col.CARRIER].tolist() == ["Nextel", "Nextel", "Vodafone"]
    assert frame[col.COUNTRY].tolist() == ["United States", "United States", "United Kingdom"]
    assert frame[col.RECEIVED_AT].isna().all()  # only the receiver log knows arrival times
    assert frame[LINE].tolist() == [1, 2, 3]
    assert frame[col.HANDSET].iloc[1] == "Apple iPhone 15" and pd.isna(frame[col.HANDSET].iloc[0])


def test_pretty_printed_crlf_bom_entities_and_padding():
    frame = read_postbacks(DATA / "pretty_crlf_bom.xml")
    assert len(frame) == 2
    first = frame.iloc[0]
    assert first[col.HANDSET] == "Samsung & Sons <SM-A536U> café été"  # entities, char refs, UTF-8
    assert first[col.TIMESTAMP] == _ts("2026-03-02T14:01:00Z")  # "-0500"
    assert first[col.SPID] == "0001100"  # "1100" lost its zeros: padded to 7
    # ambiguous SPID 0001100: Canada for a Toronto number, United States otherwise
    assert (first[col.COUNTRY], first[col.CARRIER]) == ("Canada", "All Carriers")
    second = frame.iloc[1]
    assert second[col.COUNTRY] == "United States"
    assert second[col.TIMESTAMP] == _ts("2026-03-02T09:02:00Z")  # no offset: taken as UTC
    assert frame[LINE].tolist() == [1, 12]


def test_legacy_notification_envelope_is_read_not_dropped():
    frame = read_postbacks(DATA / "legacy_notification.xml")
    assert len(frame) == 1
    row = frame.iloc[0]
    assert (row[col.ORIGIN], row[col.CODE], row[col.TO], row[col.TRACKING_ID]) == (
        "SMS_MT",
        "N202",
        "17745550123",
        "SMS_12345",
    )
    assert row[col.STATUS] == "DELIVRD"
    assert row[col.TIMESTAMP] == _ts("2011-07-26T14:22:25.262743Z")  # "-04", space, µs
    assert row[col.EXTRA] == {
        "ID": "4711",
        "CREATED": "2011-07-26 10:22:26.975911-04",
        "HISTORYID": "998877",
        "STATUS_PROTOCOL": "SMPP",
    }


def test_schema_attributes_on_root_are_accepted():
    frame = read_postbacks(DATA / "schema_attrs.xml")
    assert frame[col.SENT_AS].tolist() == ["SMS"]
    assert frame[col.COUNTRY].tolist() == ["Mexico"]
    assert frame[col.EXTRA].tolist() == [None]  # schema attributes are not data


def test_non_mms_notifications_and_unknown_elements_go_to_extra():
    frame = read_postbacks(DATA / "non_mms.xml")
    assert frame[col.ORIGIN].tolist() == ["SUB", "MO", "MMS_MT"]
    assert frame[col.EXTRA].iloc[0] == {"MOBILE": "17743199144", "CAMPAIGNID": "42", "KEYWORD": "JOIN"}
    assert frame[col.EXTRA].iloc[1] == {"MESSAGE": "STOP"}
    assert frame[col.SENDER].iloc[1] == "17743199144"
    assert pd.isna(frame[col.TIMESTAMP].iloc[2])  # the documented E101 without TIMESTAMP
    assert frame[col.EXTRA].iloc[2] is None


def test_form_encoded_lines():
    frame = read_postbacks(DATA / "form_lines.txt")
    assert frame[col.TRACKING_ID].tolist() == ["F1", "F1"]
    assert frame[col.CODE].tolist() == ["N101", "N102"]
    assert frame[col.EXTRA].iloc[1] == {"form:token": "…"}  # a secret-looking field is masked
    assert frame[col.TIMESTAMP].iloc[1] == _ts("2026-03-02T14:01:00Z")


def test_directory_glob_list_and_gzip(tmp_path):
    directory = read_postbacks(DATA / "single")
    assert directory[col.TRACKING_ID].tolist() == ["D1", "D2", "D3"]
    assert directory[col.SOURCE].astype(str).str.endswith(".xml").all()
    assert set(directory[col.SOURCE].cat.categories) == {str(p) for p in (DATA / "single").glob("*.xml")}
    globbed = read_postbacks(str(DATA / "single" / "postback_[12].xml"))
    assert globbed[col.TRACKING_ID].tolist() == ["D1", "D2"]
    listed = read_postbacks([DATA / "single" / "postback_3.xml", DATA / "schema_attrs.xml"])
    assert len(listed) == 2
    for name in ("receiver.log", "pretty_crlf_bom.xml", "form_lines.txt"):
        with open(DATA / name, "rb") as src, gzip.open(tmp_path / f"{name}.gz", "wb") as dst:
            shutil.copyfileobj(src, dst)
        plain = read_postbacks(DATA / name, on_bad_lines="skip")
        packed = read_postbacks(tmp_path / f"{name}.gz", on_bad_lines="skip")
        pd.testing.assert_frame_equal(plain.drop(columns=[col.SOURCE]), packed.drop(columns=[col.SOURCE]))


def test_missing_sources_raise():
    with pytest.raises(FileNotFoundError, match="nope"):
        read_postbacks(DATA / "nope.log")
    with pytest.raises(FileNotFoundError, match="no postback files"):
        read_postbacks(str(DATA / "*.nothing"))


def test_receiver_log_all_quirks():
    frame = read_postbacks(DATA / "receiver.log", on_bad_lines="skip")
    # arrival order (received_at), not file order; the retry (line 9) collapsed
    assert frame[col.TRACKING_ID].tolist() == ["L1", "L2", "L3", "L4", "L2", "L1"]
    assert frame[LINE].tolist() == [2, 4, 5, 6, 11, 3]
    assert frame[col.RECEIVED_AT].is_monotonic_increasing
    assert frame[col.RECEIVED_AT].iloc[0] == _ts("2026-03-02T14:00:00.123456Z")
    assert frame[col.HANDSET].iloc[4] == "AT&T été café"  # entities through the slow path
    assert frame[col.EXTRA].iloc[3] == {"form:secret": "…"}  # form-encoded body inside the log
    assert frame[col.TIMESTAMP].iloc[2] == _ts("2026-03-02T14:00:06Z")  # CRLF pretty body


def test_empty_inputs(tmp_path):
    (tmp_path / "empty.log").write_bytes(b"")
    (tmp_path / "header.log").write_bytes(HEADER)
    for name in ("empty.log", "header.log"):
        frame = read_postbacks(tmp_path / name)
        assert len(frame) == 0
        _check_dtypes(frame)


def test_unparseable_timestamp_keeps_row_and_raw_text():
    frame = events_from_bodies([b"<POSTBACK><CODE>N101</CODE><TRACKINGID>T</TRACKINGID><TIMESTAMP>yesterday</TIMESTAMP></POSTBACK>"])
    assert len(frame) == 1 and pd.isna(frame[col.TIMESTAMP].iloc[0])
    assert frame[col.EXTRA].iloc[0] == {"TIMESTAMP": "yesterday"}


def test_log_timestamps_in_every_shape_keep_their_rows(tmp_path):
    """Fast-path rows whose TIMESTAMP needs the general parser, impossible ones and
    year 0000 (a valid Arrow time that no Python datetime holds) in one buffer."""
    stamps = ["2026-03-02T09:00:00-05", "2026-03-02 09:00:00.5-0500", "2026-02-30T09:00:00Z", "0000-01-01T00:00:00Z", "soon"]
    log = tmp_path / "r.log"
    log.write_bytes(HEADER + b"".join(
        encode_record(f"<POSTBACK><TRACKINGID>T{i}</TRACKINGID><TIMESTAMP>{t}</TIMESTAMP></POSTBACK>".encode(), "-",
                      f"2026-03-02T14:00:0{i}.000000Z")
        for i, t in enumerate(stamps)
    ))
    frame = read_postbacks(log)
    assert frame[col.TRACKING_ID].tolist() == ["T0", "T1", "T2", "T3", "T4"]
    assert frame[col.TIMESTAMP].iloc[0] == _ts("2026-03-02T14:00:00Z")
    assert frame[col.TIMESTAMP].iloc[1] == _ts("2026-03-02T14:00:00.5Z")
    assert frame[col.TIMESTAMP].dt.tz_convert(None).to_numpy()[3] == np.datetime64("0000-01-01T00:00:00", "us")
    assert pd.isna(frame[col.TIMESTAMP].iloc[2]) and pd.isna(frame[col.TIMESTAMP].iloc[4])
    assert frame[col.EXTRA].tolist() == [None, None, {"TIMESTAMP": "2026-02-30T09:00:00Z"}, None, {"TIMESTAMP": "soon"}]


def test_events_from_bodies_received_at_and_source():
    when = datetime(2026, 3, 2, 14, 0, tzinfo=timezone.utc)
    body = "<POSTBACK><CODE>N101</CODE><TRACKINGID>M1</TRACKINGID><TO>+17743199144</TO></POSTBACK>"
    frame = events_from_bodies([body, "xml=" + body.replace("<", "%3C").replace(">", "%3E")], received_at=[when, when], source="mem")
    assert frame[col.RECEIVED_AT].tolist() == [pd.Timestamp(when)] * 1  # identical: collapsed
    both = events_from_bodies([body, body], received_at=[when, when], drop_duplicates=False)
    assert len(both) == 2 and both[col.TO].tolist() == ["17743199144"] * 2
    assert frame[col.SOURCE].tolist() == ["mem"]


def test_log_written_by_encode_record_round_trips(tmp_path):
    bodies = [
        f"<?xml version='1.0' encoding='UTF-8'?>\n<POSTBACK><CODE>N10{i % 2 + 1}</CODE><TRACKINGID>T{i}</TRACKINGID>"
        f"<TIMESTAMP>2026-03-02T09:00:{i:02d}-05:00</TIMESTAMP></POSTBACK>".encode()
        for i in range(50)
    ]
    start = datetime(2026, 3, 2, 14, 0, tzinfo=timezone.utc)
    log = tmp_path / "r.log"
    log.write_bytes(HEADER + b"".join(encode_record(b, "127.0.0.1:1", start.replace(second=i)) for i, b in enumerate(bodies)))
    for buffer_bytes in (64, 1000, 1 << 20):  # tiny buffers split lines across reads
        for threads in (1, 2):
            frame = read_postbacks(log, buffer_bytes=buffer_bytes, threads=threads)
            assert frame[col.TRACKING_ID].tolist() == [f"T{i}" for i in range(50)]
            assert frame[LINE].tolist() == list(range(2, 52))
