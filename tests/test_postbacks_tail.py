"""PostbackTail: incremental reading of a live receiver log."""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone

import pytest

from skycore_lab import columns as col
from skycore_lab.postbacks.logformat import HEADER, encode_record
from skycore_lab.postbacks import EVENT_FRAME_COLUMNS, PostbackParseWarning, PostbackTail, read_postbacks

T0 = datetime(2026, 3, 2, 14, 0, tzinfo=timezone.utc)


def _record(tracking: str, second: int = 0, code: str = "N101") -> bytes:
    body = (
        "<?xml version='1.0' encoding='UTF-8'?>\n<POSTBACK><ORIGIN>MMS_MT</ORIGIN>"
        f"<CODE>{code}</CODE><TRACKINGID>{tracking}</TRACKINGID>"
        f"<TIMESTAMP>2026-03-02T09:00:{second:02d}-05:00</TIMESTAMP></POSTBACK>"
    ).encode()
    return encode_record(body, "127.0.0.1:5000", T0 + timedelta(seconds=second))


def _append(path, data: bytes) -> None:
    with open(path, "ab") as handle:
        handle.write(data)


def test_reads_only_new_records_and_holds_back_partial_lines(tmp_path):
    log = tmp_path / "postbacks.log"
    log.write_bytes(HEADER + _record("A", 1) + _record("B", 2))
    tail = PostbackTail(log)
    first = tail.read_new()
    assert tuple(first.columns) == EVENT_FRAME_COLUMNS
    assert first[col.TRACKING_ID].tolist() == ["A", "B"]
    assert tail.offset == log.stat().st_size and tail.records_read == 2
    assert len(tail.read_new()) == 0  # nothing new

    line = _record("C", 3)
    _append(log, line[:40])  # the receiver is mid-write
    assert len(tail.read_new()) == 0
    assert tail.offset == log.stat().st_size - 40
    _append(log, line[40:] + _record("D", 4))
    new = tail.read_new()
    assert new[col.TRACKING_ID].tolist() == ["C", "D"]
    assert new[col.RECEIVED_AT].notna().all()
    assert new["line"].tolist() == [4, 5]  # line numbers continue across calls
    assert tail.records_read == 4


def test_same_dtypes_as_read_postbacks(tmp_path):
    log = tmp_path / "postbacks.log"
    log.write_bytes(HEADER + _record("A", 1) + _record("A", 1) + _record("A", 9, "N102"))
    batch = PostbackTail(log).read_new()
    whole = read_postbacks(log)
    assert batch.dtypes.astype(str).tolist() == whole.dtypes.astype(str).tolist()
    assert batch[col.CODE].tolist() == ["N101", "N102"]  # dedupe within the batch


def test_follows_rotation_by_rename(tmp_path):
    log = tmp_path / "postbacks.log"
    log.write_bytes(HEADER + _record("A", 1))
    tail = PostbackTail(log)
    assert tail.read_new()[col.TRACKING_ID].tolist() == ["A"]
    _append(log, _record("B", 2))  # written just before rotation, not yet read
    os.rename(log, tmp_path / "postbacks.log.20260302T140002")
    # between rename and the new file: the rotated file's rest, no error
    assert tail.read_new()[col.TRACKING_ID].tolist() == ["B"]
    log.write_bytes(HEADER + _record("C", 3))
    assert tail.read_new()[col.TRACKING_ID].tolist() == ["C"]
    assert tail.offset == log.stat().st_size
    assert len(tail.read_new()) == 0


def test_follows_truncation(tmp_path):
    log = tmp_path / "postbacks.log"
    log.write_bytes(HEADER + _record("A", 1) + _record("B", 2))
    tail = PostbackTail(log)
    assert len(tail.read_new()) == 2
    with open(log, "wb") as handle:  # truncated in place and restarted
        handle.write(HEADER + _record("Z", 5))
    assert tail.read_new()[col.TRACKING_ID].tolist() == ["Z"]


def test_missing_file_then_created(tmp_path):
    log = tmp_path / "later.log"
    tail = PostbackTail(log)
    assert len(tail.read_new()) == 0
    log.write_bytes(HEADER + _record("A", 1))
    assert tail.read_new()[col.TRACKING_ID].tolist() == ["A"]


def test_bad_lines_policy_and_repr(tmp_path):
    log = tmp_path / "postbacks.log"
    log.write_bytes(HEADER + b"garbage\n" + _record("A", 1))
    tail = PostbackTail(log)
    with pytest.warns(PostbackParseWarning, match="postbacks.log:2"):
        assert len(tail.read_new()) == 1
    assert "records_read=1" in repr(tail)
    with pytest.raises(ValueError):
        PostbackTail(log, on_bad_lines="nope")
