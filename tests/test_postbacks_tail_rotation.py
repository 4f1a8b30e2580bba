"""Issue 13, defect 4: PostbackTail follows rotations by file identity and reads every record once.

Against a real receiver rotating under load (``rotate="size"`` with a small
``max_bytes``), with several rotations between two ``read_new()`` calls and
before the first one; and file by file, with hand-made rotations, inode reuse
and torn tails.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from skycore_lab import columns as col
from skycore_lab.postbacks import PostbackTail
from skycore_lab.postbacks.logformat import HEADER, encode_record
from skycore_lab.postbacks.receiver import PostbackReceiver

pytestmark = pytest.mark.timeout(120)

CLIENT = r"""
import http.client, sys, urllib.parse
url, prefix, n, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
parts = urllib.parse.urlsplit(url)
template = ("<?xml version='1.0' encoding='UTF-8'?>\n<POSTBACK><ORIGIN>MMS_MT</ORIGIN><CODE>N101</CODE>"
            "<SENTAS>MMS</SENTAS><STATUS>Message Sent</STATUS><TRACKINGID>%s</TRACKINGID><SPID>0001570</SPID>"
            "<TIMESTAMP>2026-11-25T10:22:25-05:00</TIMESTAMP></POSTBACK>")
conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
acked = []
for i in range(n):
    tracking_id = f"{prefix}-{i}"
    conn.request("POST", parts.path, template % tracking_id, {"Content-Type": "text/xml"})
    response = conn.getresponse()
    response.read()
    if response.status == 200:
        acked.append(tracking_id)
with open(out, "w") as handle:
    handle.write("\n".join(acked))
"""


def test_every_acknowledged_postback_reaches_the_tail_once_under_rotation(tmp_path):
    log = tmp_path / "postbacks.log"
    tail = PostbackTail(log)  # before the receiver even exists
    script = tmp_path / "client.py"
    script.write_text(CLIENT)
    seen: list[str] = []
    calls = 0
    with PostbackReceiver(log, rotate="size", max_bytes=16 * 1024) as rx:
        clients = []
        for number in range(3):
            out = tmp_path / f"acked{number}.txt"
            cmd = [sys.executable, str(script), rx.url, f"c{number}", "1500", str(out)]
            clients.append((subprocess.Popen(cmd, stderr=subprocess.PIPE), out))
        deadline = time.monotonic() + 60
        while len(rx.rotated_files) < 3:  # several rotations before the first read
            assert time.monotonic() < deadline, "the receiver did not rotate"
            time.sleep(0.01)
        rotations_between = []

        def running() -> bool:
            return any(proc.poll() is None for proc, _ in clients)

        before = 0
        while running():
            seen += tail.read_new()[col.TRACKING_ID].tolist()
            rotations_between.append(len(rx.rotated_files) - before)
            calls += 1
            before = len(rx.rotated_files)
            while len(rx.rotated_files) < before + 3 and running():  # several rotations before the next read
                time.sleep(0.005)
        acked = []
        for proc, out in clients:
            _, errors = proc.communicate(timeout=60)
            assert proc.returncode == 0, errors.decode()
            acked += [line for line in out.read_text().splitlines() if line]
        rotated = len(rx.rotated_files)
    seen += tail.read_new()[col.TRACKING_ID].tolist()
    assert len(acked) == 4500 and rotated > 50
    assert max(rotations_between) >= 2  # the case that lost files: two or more rotations between calls
    assert calls >= 2
    assert len(seen) == len(set(seen)), "a record was read twice"
    assert sorted(seen) == sorted(acked), f"{len(set(acked) - set(seen))} acknowledged postbacks never reached the tail"


def _record(tracking: str, second: int) -> bytes:
    body = f"<POSTBACK><CODE>N101</CODE><TRACKINGID>{tracking}</TRACKINGID></POSTBACK>".encode()
    return encode_record(body, "-", f"2026-03-02T14:00:{second:02d}.000000Z")


def test_many_rotations_before_the_first_read_and_between_reads(tmp_path):
    log = tmp_path / "postbacks.log"
    log.write_bytes(HEADER + _record("old", 0))
    os.rename(log, tmp_path / "postbacks.log.1")  # history, rotated before the tail existed
    log.write_bytes(HEADER + _record("A", 1))
    tail = PostbackTail(log)
    for n, name in enumerate(["B", "C", "D"], start=2):  # three rotations before the first read
        with open(log, "ab") as handle:
            handle.write(_record(name + "0", n))
        os.rename(log, tmp_path / f"postbacks.log.{n}")
        log.write_bytes(HEADER + _record(name + "1", n))
    assert sorted(tail.read_new()[col.TRACKING_ID]) == ["A", "B0", "B1", "C0", "C1", "D0", "D1"]
    assert len(tail.read_new()) == 0
    for n in range(5, 9):  # and four between two reads
        os.rename(log, tmp_path / f"postbacks.log.{n}")
        log.write_bytes(HEADER + _record(f"E{n}", n))
    assert sorted(tail.read_new()[col.TRACKING_ID]) == ["E5", "E6", "E7", "E8"]


def test_a_torn_tail_of_a_rotated_file_is_reported_and_a_reused_inode_read_anew(tmp_path):
    log = tmp_path / "postbacks.log"
    log.write_bytes(HEADER + _record("A", 1))
    errors = []
    tail = PostbackTail(log, on_bad_lines=lambda raw, err: errors.append(err))
    assert tail.read_new()[col.TRACKING_ID].tolist() == ["A"]
    with open(log, "ab") as handle:
        handle.write(_record("B", 2) + _record("C", 3)[:30])  # a torn write, then rotation
    os.rename(log, tmp_path / "postbacks.log.1")
    log.write_bytes(HEADER + _record("D", 4))
    assert sorted(tail.read_new()[col.TRACKING_ID]) == ["B", "D"]
    assert len(errors) == 1 and "torn write" in errors[0].reason and errors[0].source.endswith("postbacks.log.1")
    # the rotated files are deleted; a new file may get a freed inode: it is read from its start
    os.remove(tmp_path / "postbacks.log.1")
    os.remove(log)
    log.write_bytes(HEADER + _record("E", 5) + _record("F", 6) + _record("G", 7))
    assert tail.read_new()[col.TRACKING_ID].tolist() == ["E", "F", "G"]
