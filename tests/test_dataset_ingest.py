"""ingest: every format, incremental runs, torn lines, rotation, truncation, dedupe across files and runs."""

from __future__ import annotations

import contextlib
import gzip
import importlib
import os
import shutil
import warnings

import pandas as pd
import pytest
from dataset_support import START, append, assert_same_events, body, log_line, log_lines, write

import skycore_lab as sl
from skycore_lab.dataset.state import STATE_FILE
from skycore_lab.postbacks.logformat import encode_record

FIXTURES = os.path.join(os.path.dirname(__file__), "data", "postbacks")


@contextlib.contextmanager
def _quiet():
    """Repaired and inferred records are read and warned about: not what these tests look at."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sl.PostbackDataWarning)
        yield


def _events(dataset) -> pd.DataFrame:
    return sl.read_events(dataset)


@pytest.mark.parametrize("name", sorted(os.listdir(FIXTURES)))
def test_every_recorded_format_reads_back_as_read_postbacks(tmp_path, name):
    source = tmp_path / name
    if os.path.isdir(os.path.join(FIXTURES, name)):
        shutil.copytree(os.path.join(FIXTURES, name), source)
    else:
        shutil.copy(os.path.join(FIXTURES, name), source)
    with _quiet():
        result = sl.ingest(source, tmp_path / "ds", on_bad_lines="skip")
        expected = sl.read_postbacks(source, on_bad_lines="skip")
    assert result.new_records == len(expected)
    assert_same_events(_events(tmp_path / "ds"), expected)


def test_gzip_and_raw_bodies_and_form_lines(tmp_path):
    with gzip.open(tmp_path / "old.log.gz", "wb") as handle:
        handle.write(b"".join(log_lines(range(0, 20))))
    write(tmp_path / "raw.txt", b"".join(body(n, "N102") + b"\n" for n in range(20, 30)))
    write(tmp_path / "form.txt", b"".join(b"xml=" + body(n).replace(b" ", b"+").replace(b"<", b"%3C")
                                          .replace(b">", b"%3E").replace(b"\n", b"%0A") + b"\n" for n in range(30, 35)))
    result = sl.ingest(tmp_path / "*.*", tmp_path / "ds")
    expected = sl.read_postbacks(tmp_path / "*.*")
    assert (result.files, result.new_records, result.bad_records) == (3, 40 + 10 + 5, 0)
    assert result.summary.set_index("source")["format"].to_dict() == {
        str(tmp_path / "form.txt"): "form", str(tmp_path / "old.log.gz"): "log", str(tmp_path / "raw.txt"): "xml"}
    assert_same_events(_events(tmp_path / "ds"), expected)
    again = sl.ingest(tmp_path / "*.*", tmp_path / "ds")
    assert (again.new_records, list(again.summary["status"])) == (0, ["unchanged"] * 3)


def test_partitions_are_event_dates_and_the_state_file_is_committed(tmp_path):
    write(tmp_path / "a.log", b"".join(log_lines(range(0, 20))))
    sl.ingest(tmp_path / "a.log", tmp_path / "ds")
    # START is 23:50 UTC: the first ten sends' N101 fall on 2026-03-02, the rest on 03-03
    assert sorted(p for p in os.listdir(tmp_path / "ds") if p.startswith("event_date")) == [
        "event_date=2026-03-02", "event_date=2026-03-03"]
    assert (tmp_path / "ds" / STATE_FILE).is_file()
    dates = sl.read_events(tmp_path / "ds", columns=["timestamp", "event_date"])
    assert (dates["timestamp"].dt.strftime("%Y-%m-%d") == dates["event_date"]).all()


def test_a_rerun_reads_only_new_bytes_and_a_torn_line_waits(tmp_path):
    log, ds = tmp_path / "a.log", tmp_path / "ds"
    lines = log_lines(range(0, 30))
    write(log, b"".join(lines[:10]), header=True)
    assert sl.ingest(log, ds).new_records == 10
    torn = lines[10][:40]
    append(log, torn)  # the receiver is mid-write
    second = sl.ingest(log, ds)
    assert (second.new_records, second.summary.loc[0, "status"], second.summary.loc[0, "bytes_read"]) == (0, "waiting", 0)
    append(log, lines[10][40:] + b"".join(lines[11:]))
    third = sl.ingest(log, ds)
    assert third.new_records == 50
    assert third.summary.loc[0, "bytes_read"] == sum(map(len, lines[10:]))
    assert_same_events(_events(ds), sl.read_postbacks(log))


def test_a_document_file_waits_for_a_document_torn_between_its_lines(tmp_path):
    path, ds = tmp_path / "bodies.txt", tmp_path / "ds"
    pretty = body(1).replace(b"<CODE>", b"\n  <CODE>").replace(b"</POSTBACK>", b"\n</POSTBACK>") + b"\n"
    write(path, body(0) + b"\n" + pretty[:60])
    assert sl.ingest(path, ds).new_records == 1
    append(path, pretty[60:] + body(2) + b"\n")
    with _quiet():
        assert sl.ingest(path, ds).new_records == 2
    assert_same_events(_events(ds), sl.read_postbacks(path))


def test_rotation_completes_the_old_file_under_its_new_name(tmp_path):
    log, ds = tmp_path / "postbacks.log", tmp_path / "ds"
    lines = log_lines(range(0, 20))
    write(log, b"".join(lines[:10]))
    sl.ingest(tmp_path / "postbacks.log*", ds)
    append(log, b"".join(lines[10:20]))  # written before the rotation…
    os.rename(log, tmp_path / "postbacks.log.1")
    write(log, b"".join(lines[20:]))  # …and the new file
    result = sl.ingest(tmp_path / "postbacks.log*", ds)
    status = result.summary.set_index("source")["status"].to_dict()
    assert status == {str(log): "new", str(log) + ".1": "rotated"}
    assert result.new_records == 30
    events = _events(ds)
    assert len(events) == 40 and not events.duplicated(["tracking_id", "code"]).any()
    # rows keep the name their file had when read
    assert events["source"].astype(str).value_counts().to_dict() == {str(log): 10 + 20, str(log) + ".1": 10}


def test_truncation_and_replacement_are_read_from_the_start(tmp_path):
    log, ds = tmp_path / "a.log", tmp_path / "ds"
    write(log, b"".join(log_lines(range(0, 10))))
    sl.ingest(log, ds)
    with open(log, "r+b") as handle:  # truncated in place, then new records
        handle.truncate(0)
    write(log, b"".join(log_lines(range(100, 102))))
    result = sl.ingest(log, ds)
    assert (result.summary.loc[0, "status"], result.new_records) == ("restarted", 4)
    # same size, new content: the head's hash tells
    size = os.path.getsize(log)
    replacement = b"".join(log_lines(range(200, 202)))
    assert len(replacement) == size
    write(log, replacement)
    assert sl.ingest(log, ds).summary.loc[0, "status"] == "restarted"
    assert len(_events(ds)) == 20 + 4 + 4


def test_retries_in_other_files_and_runs_are_dropped_keeping_the_earliest_received(tmp_path):
    a, b, ds = tmp_path / "a.log", tmp_path / "b.log", tmp_path / "ds"
    write(a, b"".join(log_line(n, received_minute=5) for n in range(10)))  # retries, received late
    write(b, b"")
    first = sl.ingest([a, b], ds)
    assert first.new_records == 10
    # the original posts land in another file later: they were received earlier, so they are kept
    write(b, b"".join(log_line(n) for n in range(10)) + b"".join(log_line(n, "N102", minute=1) for n in range(5)))
    second = sl.ingest([a, b], ds)
    assert (second.new_records, second.duplicates_dropped) == (15, 0)
    events = _events(ds)
    assert len(events) == 15
    assert_same_events(events, sl.read_postbacks([a, b]))
    assert set(events["source"].astype(str)) == {str(b)}
    # a third copy, later still: dropped, counted
    append(a, log_line(3, received_minute=25))
    third = sl.ingest([a, b], ds)
    assert (third.new_records, third.duplicates_dropped) == (0, 1)
    assert_same_events(_events(ds), sl.read_postbacks([a, b]))


def test_two_notifications_sharing_the_key_but_not_equal_are_both_kept(tmp_path):
    a, ds = tmp_path / "a.log", tmp_path / "ds"
    write(a, log_line(1))
    sl.ingest(a, ds)
    append(a, encode_record(body(1, status="Message Sent again"), "198.51.100.7:443", START))
    assert sl.ingest(a, ds).new_records == 1
    assert len(_events(ds)) == 2


def test_bad_records_are_counted_and_the_policy_applies(tmp_path):
    a, ds = tmp_path / "a.log", tmp_path / "ds"
    write(a, log_line(1) + b"2026-03-02T00:00:00Z\t1.2.3.4:5\t<POSTBACK><CODE>\n" + log_line(2))
    with pytest.warns(sl.PostbackParseWarning, match="a.log:2"):
        result = sl.ingest(a, ds)
    assert (result.new_records, result.bad_records, result.summary.loc[0, "bad_records"]) == (2, 1, 1)
    append(a, b"not a record\n")
    with pytest.raises(sl.PostbackParseError, match="a.log:4"):  # lines are the file's, not the range's
        sl.ingest(a, ds, on_bad_lines="error")
    assert len(_events(ds)) == 2  # nothing of the failed run was committed
    with pytest.raises(ValueError, match="on_bad_lines"):
        sl.ingest(a, ds, on_bad_lines="ignore")


def test_missing_sources_and_a_second_ingest_at_once_are_refused(tmp_path):
    with pytest.raises(FileNotFoundError):
        sl.ingest(tmp_path / "nothing*.log", tmp_path / "ds")
    write(tmp_path / "a.log", log_line(1))
    from skycore_lab.dataset.state import DatasetLock

    os.makedirs(tmp_path / "ds")
    with DatasetLock(str(tmp_path / "ds")), pytest.raises(sl.DatasetError, match="another ingest"):
        sl.ingest(tmp_path / "a.log", tmp_path / "ds")
    assert sl.ingest(tmp_path / "a.log", tmp_path / "ds").new_records == 1


def test_result_is_a_frozen_dataclass_with_a_typed_summary(tmp_path):
    write(tmp_path / "a.log", log_line(1))
    result = sl.ingest(tmp_path / "a.log", tmp_path / "ds")
    with pytest.raises(AttributeError):
        result.files = 2  # type: ignore[misc]
    assert list(result.summary.columns) == ["source", "status", "format", "bytes_read", "records", "new_records",
                                            "duplicates", "bad_records"]
    assert str(result.summary["records"].dtype) == "int64"


def test_a_committed_part_removed_by_hand_is_named(tmp_path):
    write(tmp_path / "a.log", b"".join(log_lines(range(0, 3))))
    sl.ingest(tmp_path / "a.log", tmp_path / "ds")
    part = next((tmp_path / "ds").rglob("part-*.parquet"))
    part.unlink()
    with pytest.raises(sl.DatasetError, match="missing"):
        sl.read_events(tmp_path / "ds")
    with pytest.raises(sl.DatasetError, match="missing"):
        sl.ingest(tmp_path / "a.log", tmp_path / "ds")


def test_large_runs_are_committed_in_batches_of_files_and_equal_one_read(tmp_path, monkeypatch):
    ingest_module = importlib.import_module("skycore_lab.dataset.ingest")  # the package's ``ingest`` is the function

    paths = [tmp_path / f"p{i}.log" for i in range(4)]
    for i, path in enumerate(paths):  # each file repeats a retry of the previous one's first send, received later
        retry = log_line(10 * (i - 1), received_minute=30) if i else b""
        write(path, b"".join(log_line(10 * i + n) for n in range(10)) + retry)
    monkeypatch.setattr(ingest_module, "BATCH_BYTES", os.path.getsize(paths[0]) + 1)  # one file per batch
    assert [len(b) for b in ingest_module._batches([str(p) for p in paths], {"files": []})] == [1, 1, 1, 1]
    result = sl.ingest(paths, tmp_path / "ds")
    state_runs = sl.read_events(tmp_path / "ds")
    assert (result.files, result.new_records, result.duplicates_dropped) == (4, 40, 3)
    assert len(result.summary) == 4 and result.run_id
    assert_same_events(state_runs, sl.read_postbacks(paths))
    assert len({name.split("-")[1] for _, _, names in os.walk(tmp_path / "ds") for name in names
                if name.startswith("part-")}) == 4  # one commit (run id) per batch
