"""Under concurrent load, every 200 is matched by a stored record, also across ``kill -9``.

Clients run in separate processes (a single Python client cannot load the
server enough); each posts POSTBACKs with a unique TRACKINGID and writes the
ids that got a 200 to a file. The wrk-based throughput proof is
``benchmarks/bench_receiver.py``.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from skycore_lab.postbacks.logformat import HEADER, decode_line
from skycore_lab.postbacks.receiver import PostbackReceiver

pytestmark = pytest.mark.timeout(120)

CLIENT = r"""
import http.client, sys, urllib.parse
url, prefix, n, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
parts = urllib.parse.urlsplit(url)
template = ("<?xml version='1.0' encoding='UTF-8'?>\n<POSTBACK><ORIGIN>MMS_MT</ORIGIN><CODE>N102</CODE>"
            "<STATUS>Message Sent/Delivered</STATUS><TRACKINGID>%s</TRACKINGID><SPID>0001100</SPID>"
            "<TIMESTAMP>2026-11-25T10:22:25-05:00</TIMESTAMP></POSTBACK>")
conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
acked, errors = [], 0
for i in range(n):
    tracking_id = f"{prefix}-{i}"
    try:
        conn.request("POST", parts.path, template % tracking_id, {"Content-Type": "text/xml"})
        response = conn.getresponse()
        response.read()
    except (OSError, http.client.HTTPException):
        errors += 1
        if errors >= 3:  # the receiver is gone
            break
        conn.close()
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        continue
    if response.status == 200:
        acked.append(tracking_id)
with open(out, "w") as handle:
    handle.write("\n".join(acked))
"""

_ID = re.compile(rb"<TRACKINGID>([^<]+)</TRACKINGID>")


def _start_clients(tmp_path, url: str, processes: int, posts: int) -> list[tuple[subprocess.Popen, str]]:
    script = tmp_path / "client.py"
    script.write_text(CLIENT)
    clients = []
    for number in range(processes):
        out = str(tmp_path / f"acked{number}.txt")
        cmd = [sys.executable, str(script), url, f"c{number}", str(posts), out]
        clients.append((subprocess.Popen(cmd, stderr=subprocess.PIPE), out))
    return clients


def _acked_ids(clients) -> list[str]:
    acked = []
    for proc, out in clients:
        _, errors = proc.communicate(timeout=60)
        assert proc.returncode == 0, errors.decode()
        with open(out) as handle:
            acked += [line for line in handle.read().splitlines() if line]
    return acked


def _read_log(path: str) -> tuple[list[str], bytes]:
    """Stored tracking ids (every complete line must decode) and the torn tail (b"" if none)."""
    with open(path, "rb") as handle:
        data = handle.read()
    assert data.startswith(HEADER)
    lines = data[len(HEADER) :].split(b"\n")
    tail = lines.pop()
    stored = []
    for line in lines:
        _, _, body = decode_line(line)  # raises on a broken record
        stored.append(_ID.search(body).group(1).decode())
    return stored, tail


def test_parallel_posts_from_threads_all_stored(tmp_path):
    path = str(tmp_path / "p.log")
    with PostbackReceiver(path) as rx:

        def post(n: int) -> int:
            body = b"<POSTBACK><TRACKINGID>t-%d</TRACKINGID></POSTBACK>" % n
            return requests.post(rx.url, data=body, timeout=10).status_code

        with ThreadPoolExecutor(16) as pool:
            statuses = list(pool.map(post, range(300)))
        assert statuses == [200] * 300
        assert rx.count == 300
    stored, tail = _read_log(path)
    assert tail == b""
    assert sorted(stored) == sorted(f"t-{n}" for n in range(300))


@pytest.mark.parametrize("group_commit", [True, False], ids=["group-commit", "write-per-request"])
def test_every_200_from_three_client_processes_is_stored_once(tmp_path, group_commit):
    path = str(tmp_path / "p.log")
    with PostbackReceiver(path, group_commit=group_commit) as rx:
        clients = _start_clients(tmp_path, rx.url, processes=3, posts=1000)
        acked = _acked_ids(clients)
        assert rx.count == 3000
    stored, tail = _read_log(path)
    assert len(acked) == 3000 and tail == b""
    assert sorted(stored) == sorted(acked)  # each acked id stored, exactly once


def _start_receiver_process(tmp_path, log: str) -> tuple[subprocess.Popen, str]:
    url_file = str(tmp_path / "url.txt")
    cmd = [sys.executable, "-m", "skycore_lab.cli", "listen", "--quiet", "--log", log, "--url-file", url_file]
    with open(tmp_path / "receiver.stderr", "wb") as errors:
        proc = subprocess.Popen(cmd, stderr=errors)
    deadline = time.monotonic() + 30
    while not os.path.exists(url_file):
        assert proc.poll() is None, (tmp_path / "receiver.stderr").read_text()
        assert time.monotonic() < deadline, "receiver did not start"
        time.sleep(0.02)
    with open(url_file) as handle:
        return proc, handle.read()


def _records_in(path: str) -> int:
    with open(path, "rb") as handle:
        return handle.read().count(b"\n") - 1


def test_kill_9_mid_load_loses_no_acknowledged_postback(tmp_path):
    log = str(tmp_path / "p.log")
    receiver, url = _start_receiver_process(tmp_path, log)
    try:
        clients = _start_clients(tmp_path, url, processes=3, posts=1_000_000)
        deadline = time.monotonic() + 20
        while _records_in(log) < 3000 and time.monotonic() < deadline:  # well into the load
            time.sleep(0.02)
        os.kill(receiver.pid, signal.SIGKILL)
        receiver.wait(10)
    finally:
        if receiver.poll() is None:
            receiver.kill()
    assert receiver.returncode == -signal.SIGKILL
    acked = _acked_ids(clients)
    stored, tail = _read_log(log)
    assert len(acked) >= 2000
    missing = set(acked) - set(stored)
    assert not missing, f"{len(missing)} acknowledged postbacks not in the log, e.g. {sorted(missing)[:3]}"
    assert len(stored) == len(set(stored))
    if tail:  # a torn last line is acceptable only for a record that was never acknowledged
        torn_id = _ID.search(tail)
        assert torn_id is None or torn_id.group(1).decode() not in acked
    # Every client stopped because the receiver died, not because it ran out of work.
    assert len(acked) < 3_000_000


def test_sigterm_closes_cleanly_and_keeps_everything(tmp_path):
    log = str(tmp_path / "p.log")
    receiver, url = _start_receiver_process(tmp_path, log)
    try:
        assert requests.post(url, data=b"<POSTBACK><TRACKINGID>only</TRACKINGID></POSTBACK>", timeout=5).ok
        receiver.send_signal(signal.SIGTERM)
        assert receiver.wait(15) == 0
    finally:
        if receiver.poll() is None:
            receiver.kill()
    assert _read_log(log) == (["only"], b"")
