"""The receiver's pure checks (token, body rule) and its log writer (rotation, fsync, torn tails)."""

from __future__ import annotations

import glob
import os
import time
from datetime import datetime, timedelta, timezone
from urllib.parse import quote, urlencode

import pytest

from skycore_lab.exceptions import SkycoreStateError
import requests
from hypothesis import given
from hypothesis import strategies as st

from skycore_lab.postbacks.logformat import HEADER, decode_line, encode_record
from skycore_lab.postbacks.logwriter import LogWriter
from skycore_lab.postbacks.receiver import PostbackReceiver, is_postback_body, token_matches

TOKEN = "Zx9-k2_QpL7mN4vR8sT1"


def records(path: str) -> list[tuple[str, str, bytes]]:
    with open(path, "rb") as handle:
        data = handle.read()
    assert data.startswith(HEADER), path
    return [decode_line(line) for line in data[len(HEADER) :].splitlines()]


# -- token_matches ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "path, query, expected",
    [
        (f"/postbacks/{TOKEN}", b"", True),
        (f"/postbacks/{TOKEN}/", b"", True),
        ("/postbacks", f"token={TOKEN}".encode(), True),
        ("/", f"a=1&token={TOKEN}", True),
        ("/postbacks", f"token={quote(TOKEN)}".encode(), True),
        ("/postbacks", b"", False),
        ("/", b"", False),
        ("/postbacks/", b"", False),
        (f"/postbacks/{TOKEN.upper()}", b"", False),
        (f"/postbacks/{TOKEN}/x", b"", False),
        ("/postbacks", b"token=", False),
        ("/postbacks", f"tokens={TOKEN}".encode(), False),
        (f"/health/{TOKEN}", b"", False),
        (f"/other?token={TOKEN}", b"", False),
    ],
)
def test_token_matches(path, query, expected):
    assert token_matches(TOKEN, path, query) is expected


def test_without_token_only_postback_paths_match():
    assert token_matches(None, "/postbacks", b"")
    assert token_matches(None, "/", b"token=anything")
    assert not token_matches(None, "/postbacks/x", b"")
    assert not token_matches(None, "/health", b"")


@given(guess=st.text(min_size=1, max_size=30).filter(lambda g: g != TOKEN and "/" not in g))
def test_no_other_token_matches(guess):
    assert not token_matches(TOKEN, f"/postbacks/{guess}", b"")
    assert not token_matches(TOKEN, "/postbacks", urlencode({"token": guess}))


# -- is_postback_body -----------------------------------------------------------------------
PROLOG_PARTS = st.sampled_from(
    [b" ", b"\n", b"\r\n", b"\t", b"<?xml version='1.0' encoding='UTF-8'?>", b'<?xml version="1.0"?>',
     b"<!-- a comment with <POSTBACK> and > inside -->", b"<?pi data?>"]
)  # fmt: skip
ROOT_END = st.sampled_from([b">", b" ", b"/>", b"\n", b" xmlns:xsi='http://www.w3.org/2001/XMLSchema-instance'>"])


@given(
    bom=st.booleans(),
    prolog=st.lists(PROLOG_PARTS, max_size=5),
    root=st.sampled_from([b"POSTBACK", b"NOTIFICATION"]),
    end=ROOT_END,
    rest=st.binary(max_size=200),
)
def test_postback_documents_pass_raw_and_as_form_field(bom, prolog, root, end, rest):
    body = (b"\xef\xbb\xbf" if bom else b"") + b"".join(prolog) + b"<" + root + end + rest
    assert is_postback_body(body)
    assert is_postback_body(b"xml=" + quote(body).encode())
    assert is_postback_body(urlencode({"mode": "x", "xml": body}).encode())


@given(
    prolog=st.lists(PROLOG_PARTS, max_size=3),
    root=st.sampled_from([b"RESPONSE", b"REQUEST", b"postback", b"POSTBACKS", b"x:POSTBACK", b"!DOCTYPE POSTBACK"]),
    rest=st.binary(max_size=100),
)
def test_other_documents_fail_raw_and_as_form_field(prolog, root, rest):
    body = b"".join(prolog) + b"<" + root + b">" + rest
    assert not is_postback_body(body)
    assert not is_postback_body(urlencode({"xml": body}).encode())


@given(st.binary(max_size=200))
def test_body_check_never_raises(body):
    assert is_postback_body(body) in (True, False)


@pytest.mark.parametrize(
    "body, expected",
    [
        (b"xml=", False),
        (b"other=%3CPOSTBACK%3E", False),
        (b"<POSTBACK", False),  # no character after the name: cannot be the root
        (b"text <POSTBACK>", False),
        ("<POSTBACK/>".encode("utf-16"), False),
        (b"<!-- unclosed comment <POSTBACK>", False),
        (b"<POSTBACK><unclosed>", True),
    ],
)
def test_body_rule_edge_cases(body, expected):
    assert is_postback_body(body) is expected


@pytest.mark.timeout(20)  # a hang guard, not a timing assertion: a backtracking rule never finishes
@pytest.mark.parametrize(
    "body",
    [b" " * 60_000 + b"x", b"\r\n" * 30_000 + b"<RESPONSE>", b"<?a?>" * 12_000 + b"x", b"<!--" * 16_000,
     b"xml=" + b"+" * 60_000 + b"x"],
)  # fmt: skip
def test_body_rule_is_linear_on_hostile_prologs(body):
    assert not is_postback_body(body)


# -- LogWriter: rotation, torn tails, sync ----------------------------------------------------
def _record(n: int, day: str = "2026-11-25", size: int = 0) -> bytes:
    return encode_record(b"<POSTBACK>%d</POSTBACK>" % n + b"x" * size, "127.0.0.1:1", f"{day}T10:00:00.000000Z")


def test_size_rotation_never_splits_a_record_and_each_file_has_the_header(tmp_path):
    path = str(tmp_path / "p.log")
    with LogWriter(path, rotate="size", max_bytes=400) as writer:
        for start in range(0, 40, 4):
            writer.write([_record(n) for n in range(start, start + 4)])
        writer.write([_record(99, size=1000)])  # larger than a file: a file of its own
        writer.write([_record(100)])
        rotated = list(writer.rotated_files)
    files = sorted(glob.glob(path + ".*"), key=lambda name: int(name.rsplit(".", 1)[1])) + [path]
    assert rotated == files[:-1] and len(files) > 5
    for name in files:
        assert os.path.getsize(name) <= 400 or len(records(name)) == 1
    bodies = [body for name in files for _, _, body in records(name)]
    assert [int(body[10 : body.index(b"<", 10)]) for body in bodies] == [*range(40), 99, 100]


def test_size_rotation_continues_numbering_after_existing_files(tmp_path):
    path = str(tmp_path / "p.log")
    (tmp_path / "p.log.7").write_bytes(HEADER)
    with LogWriter(path, rotate="size", max_bytes=200) as writer:
        writer.write([_record(1, size=100), _record(2, size=100)])
        assert writer.rotated_files == [path + ".8"]


def test_daily_rotation_by_received_at_with_an_injected_clock(tmp_path):
    path = str(tmp_path / "postbacks.log")
    now = [datetime(2026, 11, 24, 23, 59, 59, 500000, tzinfo=timezone.utc)]
    with PostbackReceiver(path, rotate="daily", clock=lambda: now[0]) as receiver:
        for _ in range(3):
            assert requests.post(receiver.url, data=b"<POSTBACK/>", timeout=5).ok
            now[0] += timedelta(seconds=0.25)  # crosses midnight after the 2nd post
        now[0] += timedelta(days=1)
        assert requests.post(receiver.url, data=b"<POSTBACK/>", timeout=5).ok
        assert receiver.rotated_files == [path + ".20261124", path + ".20261125"]
    assert [r[0] for r in records(path + ".20261124")] == ["2026-11-24T23:59:59.500000Z", "2026-11-24T23:59:59.750000Z"]
    assert [r[0] for r in records(path + ".20261125")] == ["2026-11-25T00:00:00.000000Z"]
    assert [r[0] for r in records(path)] == ["2026-11-26T00:00:00.250000Z"]
    assert sorted(glob.glob(path + "*")) == [path, path + ".20261124", path + ".20261125"]


def test_daily_rotation_of_an_existing_log_uses_its_last_write_date(tmp_path):
    path = str(tmp_path / "p.log")
    (tmp_path / "p.log").write_bytes(HEADER + _record(1, "2026-11-20"))
    old = datetime(2026, 11, 20, 12, tzinfo=timezone.utc).timestamp()
    os.utime(path, (old, old))
    (tmp_path / "p.log.20261120").write_bytes(HEADER)  # already taken: gets a .1
    with LogWriter(path, rotate="daily") as writer:
        writer.write([_record(2, "2026-11-25")])
        assert writer.rotated_files == [path + ".20261120.1"]
    assert len(records(path + ".20261120.1")) == 1 and len(records(path)) == 1


def test_a_torn_last_line_is_isolated_not_glued_to_the_next_record(tmp_path):
    path = str(tmp_path / "p.log")
    torn = _record(1)[:25]  # as if killed in the middle of write()
    (tmp_path / "p.log").write_bytes(HEADER + _record(0) + torn)
    with LogWriter(path) as writer:
        writer.write([_record(2)])
    lines = (tmp_path / "p.log").read_bytes()[len(HEADER) :].splitlines()
    assert lines[1] == torn
    with pytest.raises(ValueError):
        decode_line(lines[1])  # the reader skips it ...
    assert decode_line(lines[2])[2] == b"<POSTBACK>2</POSTBACK>"  # ... and the next record is intact


def test_failed_write_raises_and_the_next_write_starts_on_a_new_line(tmp_path, monkeypatch):
    path = str(tmp_path / "p.log")
    with LogWriter(path) as writer:
        real_write = os.write
        calls = []

        def short_then_full(fd, data):
            calls.append(1)
            if len(calls) == 1:
                real_write(fd, bytes(data[:10]))
                raise OSError(28, "No space left on device")
            return real_write(fd, data)

        monkeypatch.setattr(os, "write", short_then_full)
        with pytest.raises(OSError):
            writer.write([_record(1)])
        writer.write([_record(2)])
        monkeypatch.undo()
        assert writer.records_written == 1
    lines = (tmp_path / "p.log").read_bytes()[len(HEADER) :].splitlines()
    assert len(lines) == 2 and decode_line(lines[1])[2] == b"<POSTBACK>2</POSTBACK>"


def test_fsync_runs_after_sync_every_records_without_waiting_for_the_interval(tmp_path):
    with LogWriter(str(tmp_path / "p.log"), sync_interval=60, sync_every=10) as writer:
        writer.write([_record(n) for n in range(9)])
        time.sleep(0.2)
        assert writer.syncs == 0  # 9 < 10 records and 60 s not elapsed
        writer.write([_record(9)])
        deadline = time.monotonic() + 5
        while writer.syncs == 0 and time.monotonic() < deadline:
            time.sleep(0.005)
        assert writer.syncs == 1 and writer.sync_error is None


def test_fsync_runs_after_the_interval_for_a_single_record(tmp_path):
    with LogWriter(str(tmp_path / "p.log"), sync_interval=0.05, sync_every=100) as writer:
        writer.write([_record(1)])
        deadline = time.monotonic() + 5
        while writer.syncs == 0 and time.monotonic() < deadline:
            time.sleep(0.005)
        assert writer.syncs == 1
        time.sleep(0.15)
        assert writer.syncs == 1  # nothing new written: no more syncs


def test_closed_writer_refuses_to_write(tmp_path):
    writer = LogWriter(str(tmp_path / "p.log"))
    writer.close()
    writer.close()
    assert writer.closed
    with pytest.raises(SkycoreStateError, match="closed"):
        writer.write([_record(1)])
