"""read_postbacks: malformed and hostile records, and the on_bad_lines policies."""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import pytest

from skycore_lab import columns as col
from skycore_lab.postbacks.logformat import HEADER, encode_record
from skycore_lab.exceptions import PostbackDataWarning, PostbackParseError
from skycore_lab.postbacks import PostbackParseWarning, events_from_bodies, read_postbacks

DATA = Path(__file__).parent / "data" / "postbacks"
BAD = DATA / "with_bad_records.xml"


def test_warn_is_default_once_with_count_and_locations():
    with pytest.warns(PostbackParseWarning) as caught:
        frame = read_postbacks(BAD)
    skipped = [w for w in caught if w.category is PostbackParseWarning]
    assert len(skipped) == 1
    message = str(skipped[0].message)
    assert "skipped 2" in message
    assert f"{BAD}:3:" in message and f"{BAD}:4:" in message
    assert "wrong root element <RESPONSE>" in message
    # the good records around the bad ones survive; the documentation's own
    # unclosed element (line 2) is repaired, flagged and named, not dropped
    assert frame[col.TRACKING_ID].tolist() == ["A1", "A2", "A4"]
    assert frame[col.RECOVERED].tolist() == [False, True, False]
    repaired = [str(w.message) for w in caught if w.category is PostbackDataWarning]
    assert len(repaired) == 1 and f"{BAD}:2 (line 1: unclosed element <FROM_MASK>)" in repaired[0]


def test_error_names_file_and_line():
    with pytest.raises(PostbackParseError) as info:
        read_postbacks(BAD, on_bad_lines="error")
    assert info.value.source == str(BAD) and info.value.line == 3
    assert "not well-formed" in info.value.reason  # truncated: no repair guesses at it


def test_skip_is_silent():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        frame = read_postbacks(BAD, on_bad_lines="skip")
    assert len(frame) == 3
    assert [w.category for w in caught] == [PostbackDataWarning]  # the repair is still said


def test_callable_gets_raw_record_and_error():
    seen = []
    frame = read_postbacks(DATA / "receiver.log", on_bad_lines=lambda raw, err: seen.append((raw, err)))
    assert [err.line for _, err in seen] == [7, 8, 10]
    assert seen[0][0] == b"this is not a log record"
    assert all(isinstance(err, PostbackParseError) for _, err in seen)
    assert seen[1][0].endswith(b"<CODE>N10")  # the whole log line
    assert len(frame) == 6


def test_invalid_policy_rejected():
    with pytest.raises(ValueError, match="on_bad_lines"):
        read_postbacks(BAD, on_bad_lines="ignore")


def test_xxe_is_a_bad_record_and_reads_no_file():
    errors = []
    frame = read_postbacks(DATA / "xxe.xml", on_bad_lines=lambda raw, err: errors.append(err))
    assert frame[col.TRACKING_ID].tolist() == ["GOOD"]
    assert len(errors) == 1 and "DTD" in errors[0].reason
    assert not frame.astype(str).apply(lambda c: c.str.contains("root:")).any().any()


def test_billion_laughs_is_a_bad_record_quickly():
    start = time.perf_counter()
    errors = []
    frame = read_postbacks(DATA / "billion_laughs.xml", on_bad_lines=lambda raw, err: errors.append(err))
    assert time.perf_counter() - start < 30  # generous: it must not expand (seconds would mean it did)
    assert frame[col.TRACKING_ID].tolist() == ["AFTER"]
    assert len(errors) == 1 and errors[0].line == 1


@pytest.mark.parametrize(
    "body, reason",
    [
        (b"<POSTBACK><CODE>N101</CODE>", "not well-formed"),  # truncated
        (b"<RESPONSE><STATUS>Success</STATUS></RESPONSE>", "wrong root"),
        (b"<POSTBACK><TO>&xxe;</TO></POSTBACK>", "not well-formed"),  # undefined entity
        (b"<?xml version='1.0'?><!DOCTYPE x [<!ENTITY a 'b'>]><POSTBACK><TO>&a;</TO></POSTBACK>", "DTD"),
        (b"\xff\xfe<POSTBACK/>", "not well-formed"),
        (b"xml=", "not well-formed"),
        (b"foo=bar", "without an 'xml' field"),
        (b"", "not well-formed"),
    ],
)
def test_bad_bodies(body, reason):
    errors = []
    frame = events_from_bodies([body], on_bad_lines=lambda raw, err: errors.append(err))
    assert len(frame) == 0
    assert len(errors) == 1 and reason in errors[0].reason


def test_bad_log_lines_never_hide_neighbours(tmp_path):
    good = b"<POSTBACK><CODE>N101</CODE><TRACKINGID>%d</TRACKINGID></POSTBACK>"
    lines = [HEADER]
    for i in range(20):
        lines.append(encode_record(good % i, "-", "2026-03-02T14:00:%02d.000000Z" % i))
        if i % 5 == 0:
            lines.append(b"2026-03-02T14:00:00.000000Z\t-\t<POSTBACK><CODE>\\x</CODE></POSTBACK>\n")  # broken escape
            lines.append(b"2026-03-02T14:00:00.000000Z\t-\t\n")  # empty body
    log = tmp_path / "mixed.log"
    log.write_bytes(b"".join(lines) + encode_record(good % 99, "-", "2026-03-02T15:00:00.000000Z").rstrip(b"\n"))
    errors = []
    frame = read_postbacks(log, on_bad_lines=lambda raw, err: errors.append(err))
    assert frame[col.TRACKING_ID].tolist() == [str(i) for i in range(20)] + ["99"]  # unterminated last line read too
    assert len(errors) == 8
    assert {e.reason.split(":")[0] for e in errors} == {"broken escape in log body", "empty body"}


def test_garbage_between_documents_is_its_own_record(tmp_path):
    path = tmp_path / "docs.xml"
    path.write_bytes(
        b"<POSTBACK><TRACKINGID>G1</TRACKINGID></POSTBACK>\nnot xml at all\n"
        b"<POSTBACK><TRACKINGID>G2</TRACKINGID></POSTBACK>\n"
    )
    seen = []
    frame = read_postbacks(path, on_bad_lines=lambda raw, err: seen.append((raw, err.line)))
    assert frame[col.TRACKING_ID].tolist() == ["G1", "G2"]
    assert seen == [(b"not xml at all", 2)]
