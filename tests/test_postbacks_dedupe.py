"""read_postbacks: retried duplicates, arrival order, out-of-order logs."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from skycore_lab import columns as col
from skycore_lab.postbacks.memory import take_rows
from skycore_lab.postbacks.logformat import HEADER, encode_record
from skycore_lab.postbacks import LINE, events_from_bodies, read_postbacks

T0 = datetime(2026, 3, 2, 14, 0, tzinfo=timezone.utc)


def _body(tracking: str | None, code: str, stamp: str, handset: str = "") -> bytes:
    tid = f"<TRACKINGID>{tracking}</TRACKINGID>" if tracking else ""
    extra = f"<HANDSET>{handset}</HANDSET>" if handset else ""
    return f"<POSTBACK><ORIGIN>MMS_MT</ORIGIN><CODE>{code}</CODE>{tid}<TIMESTAMP>{stamp}</TIMESTAMP>{extra}</POSTBACK>".encode()


def _log(tmp_path, records):
    path = tmp_path / "dupes.log"
    path.write_bytes(HEADER + b"".join(encode_record(body, "-", T0 + timedelta(seconds=s)) for body, s in records))
    return path


def test_retry_collapses_to_earliest_received(tmp_path):
    n101 = _body("A", "N101", "2026-03-02T09:00:00-05:00")
    n102 = _body("A", "N102", "2026-03-02T09:01:00-05:00")
    # the retry of N101 is written *before* the original in the file (out of order)
    path = _log(tmp_path, [(n101, 300), (n102, 61), (n101, 1), (n101, 600)])
    frame = read_postbacks(path)
    assert frame[col.CODE].tolist() == ["N101", "N102"]
    assert frame[col.RECEIVED_AT].tolist() == [pd.Timestamp(T0 + timedelta(seconds=1)), pd.Timestamp(T0 + timedelta(seconds=61))]
    assert frame[LINE].tolist() == [4, 3]
    everything = read_postbacks(path, drop_duplicates=False)
    assert len(everything) == 4
    assert everything[col.RECEIVED_AT].is_monotonic_increasing  # arrival order


def test_same_tracking_and_code_but_other_timestamp_is_kept(tmp_path):
    path = _log(
        tmp_path,
        [(_body("A", "N502", "2026-03-02T09:00:00-05:00"), 1), (_body("A", "N502", "2026-03-02T09:00:09-05:00"), 2)],
    )
    assert len(read_postbacks(path)) == 2


def test_offset_forms_of_the_same_instant_are_duplicates(tmp_path):
    path = _log(
        tmp_path,
        [(_body("A", "N101", "2026-03-02T09:00:00-05:00"), 1), (_body("A", "N101", "2026-03-02T09:00:00-05"), 2)],
    )
    frame = read_postbacks(path)
    assert len(frame) == 1 and frame[LINE].tolist() == [2]


def test_rows_without_tracking_id_collapse_only_when_identical():
    same = _body(None, "N301", "2026-03-02T09:00:00-05:00", "X")
    other = _body(None, "N301", "2026-03-02T09:00:00-05:00", "Y")
    frame = events_from_bodies([same, other, same])
    assert frame[col.HANDSET].tolist() == ["X", "Y"]
    sub_a = b"<POSTBACK><ORIGIN>SUB</ORIGIN><CODE>N301</CODE><MOBILE>1</MOBILE></POSTBACK>"
    sub_b = b"<POSTBACK><ORIGIN>SUB</ORIGIN><CODE>N301</CODE><MOBILE>2</MOBILE></POSTBACK>"
    assert len(events_from_bodies([sub_a, sub_b, sub_a])) == 2  # extra is compared too


def test_files_without_arrival_times_keep_file_order(tmp_path):
    a = tmp_path / "a.xml"
    a.write_bytes(_body("B", "N102", "2026-03-02T09:05:00-05:00") + b"\n" + _body("B", "N101", "2026-03-02T09:00:00-05:00"))
    log = _log(tmp_path, [(_body("C", "N101", "2026-03-02T09:00:00-05:00"), 5)])
    frame = read_postbacks([a, log])
    # logged rows (with received_at) first, then the rest in file order
    assert frame[col.TRACKING_ID].tolist() == ["C", "B", "B"]
    assert frame[col.CODE].tolist() == ["N101", "N102", "N101"]


def test_tracking_ids_that_share_a_fingerprint_are_compared_exactly(tmp_path):
    """Long ids are fingerprinted by their first 16 and last 8 bytes; ids that
    differ only in between collide by design and must still be told apart."""
    first, second = "A" * 16 + "x" + "B" * 8, "A" * 16 + "y" + "B" * 8
    stamp = "2026-03-02T09:00:00-05:00"
    path = _log(tmp_path, [(_body(first, "N101", stamp), 1), (_body(second, "N101", stamp), 2), (_body(first, "N101", stamp), 3)])
    frame = read_postbacks(path)
    assert frame[col.TRACKING_ID].tolist() == [first, second]
    assert frame[LINE].tolist() == [2, 3]


def test_string_fingerprints_are_equal_for_equal_strings_and_null_is_zero():
    import pyarrow as pa

    from skycore_lab.postbacks.kernel import string_fingerprints

    values = ["", "a", "ab", "a" * 8, "a" * 9, "a" * 16, "a" * 17, "a" * 40, "TU1TXzI=", None]
    got = string_fingerprints(pa.array(values + values, pa.string()))
    assert got[len(values) - 1] == 0 and (got[: len(values) - 1] % 2 == 1).all()
    assert (got[: len(values)] == got[len(values) :]).all()
    assert len(set(got[: len(values) - 1].tolist())) == len(values) - 1
    sliced = pa.array(["x", *values], pa.string()).slice(1)  # an offset into the buffers
    assert (string_fingerprints(sliced) == got[: len(values)]).all()


@settings(max_examples=200, deadline=None)
@given(
    lengths=st.lists(st.integers(0, 6), min_size=0, max_size=6),
    picks=st.lists(st.integers(0, 10**6), max_size=40),
    ascending=st.booleans(),
)
def test_take_rows_equals_taking_from_the_combined_column(lengths, picks, ascending):
    values = pa.chunked_array(
        [pa.array([None if (start + i) % 5 == 3 else f"v{start + i}" for i in range(n)], pa.string())
         for start, n in zip(np.cumsum([0, *lengths])[:-1].tolist(), lengths)],
        type=pa.string(),
    )
    total = len(values)
    rows = np.array(list(dict.fromkeys(p % total for p in picks)) if total else [], dtype=np.int64)
    if ascending:
        rows = np.sort(rows)
    taken = take_rows(values, rows)
    assert taken.type == pa.string()
    assert taken.to_pylist() == [values[int(row)].as_py() for row in rows]


def test_reads_in_many_buffers_equal_one_buffer_with_retries_out_of_order(tmp_path):
    # retries of sends spread over the file, some written before their original: the
    # kept rows come from many buffers, in an order that jumps between them
    records = []
    for send in range(300):
        body = _body(f"S{send}", "N101", f"2026-03-02T09:{send % 60:02d}:00-05:00", handset=f"H{send % 7}")
        records.append((body, 10 * send + 5))
        if send % 3 == 0:
            records.append((body, 10 * send + 3000))  # a retry, later
        if send % 11 == 0:
            records.append((body, 10 * send + 1))  # received earlier, written later
    path = _log(tmp_path, records)
    whole = read_postbacks(path)
    pieces = read_postbacks(path, buffer_bytes=4096)
    assert len(whole) == 300
    pd.testing.assert_frame_equal(pieces, whole)
    assert whole[col.RECEIVED_AT].is_monotonic_increasing
