"""The receiver when the disk fails: 503 while it does, 200 again once it recovers, nothing acked is lost.

Two ways to make the disk fail:

* for real, on a small tmpfs mounted for the test (needs root and a kernel
  that lets this process mount; the test is skipped, with the reason, where
  it cannot);
* through the writer's documented seams (``os.write`` and
  ``skycore_lab.postbacks.logwriter.fdatasync``, see that module's
  docstring), which work everywhere.
"""

from __future__ import annotations

import errno
import glob
import logging
import os
import shutil
import subprocess
import time

import pytest
import requests

from skycore_lab.postbacks import logwriter
from skycore_lab.postbacks.logformat import HEADER, decode_line, encode_record
from skycore_lab.postbacks.logwriter import LogWriter
from skycore_lab.postbacks.receiver import PostbackReceiver

pytestmark = pytest.mark.timeout(60)


def postback(n: int) -> bytes:
    return b"<POSTBACK><CODE>N102</CODE><TRACKINGID>disk-%d</TRACKINGID></POSTBACK>" % n


def stored_ids(*files: str) -> list[str]:
    """Tracking ids in these files, in order (each must start with the header)."""
    ids = []
    for name in files:
        with open(name, "rb") as handle:
            data = handle.read()
        assert data.startswith(HEADER), name
        for line in data[len(HEADER) :].split(b"\n"):
            try:
                body = decode_line(line)[2]
            except ValueError:
                continue  # a torn fragment of a write the disk refused (never acknowledged)
            ids.append(body.split(b"<TRACKINGID>")[1].split(b"<")[0].decode())
    return ids


def wait_for(predicate, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


# -- a real full disk --------------------------------------------------------------------------
@pytest.fixture
def small_disk(tmp_path):
    """A 256 KiB tmpfs, unmounted afterwards; skipped where mounting is not permitted."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    if shutil.which("mount") is None or shutil.which("umount") is None:
        pytest.skip("mount/umount are not installed")
    where = tmp_path / "disk"
    where.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k,mode=0755", "tmpfs", str(where)], capture_output=True, text=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip() or done.returncode}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def fill(path) -> int:
    """Write to ``path`` until the disk is full; the bytes written."""
    written = 0
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        while True:
            try:
                n = os.write(fd, b"\0" * 4096)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
                return written
            written += n
    finally:
        os.close(fd)


def test_disk_full_during_rotation_answers_503_then_recovers_by_itself(small_disk):
    log = str(small_disk / "postbacks.log")
    acked, n = [], 0
    with PostbackReceiver(log, rotate="size", max_bytes=3000, sync_interval=0.01) as rx, requests.Session() as http:

        def post() -> int:
            nonlocal n
            n += 1
            status = http.post(rx.url, data=postback(n), timeout=5).status_code
            if status == 200:
                acked.append(f"disk-{n}")
            return status

        assert post() == 200
        filler = small_disk / "filler"
        assert fill(filler) > 0
        statuses = [post() for _ in range(40)]  # fills the live file's page, then rotation needs a new one
        assert statuses[0] == 200 and 503 in statuses, statuses
        first_503 = statuses.index(503)
        assert set(statuses[first_503:]) == {503}  # while the disk is full, nothing is acknowledged
        assert rx.rotated_files and os.path.getsize(log) == 0  # the rename worked, the new file's header did not
        health = http.get(rx.base_url + "/health", timeout=5)
        assert health.status_code == 503
        report = health.json()
        assert report["status"] == "failing" and report["write_failures"] >= 1
        assert report["last_error"].startswith("ENOSPC")

        filler.unlink()  # space returns: no restart, no call, the next postback is stored
        assert [post() for _ in range(30)] == [200] * 30
        assert len(rx.rotated_files) >= 2  # and rotation goes on
        health = http.get(rx.base_url + "/health", timeout=5)
        assert health.status_code == 200 and health.json()["status"] == "ok"
        assert health.json()["last_error"].startswith("ENOSPC")  # kept for whoever looks later
    stored = stored_ids(*sorted(glob.glob(log + "*")))
    assert set(acked) <= set(stored)
    assert len(stored) == len(set(stored))


# -- the same through the seam, everywhere -------------------------------------------------------
class FullDisk:
    """``os.write`` that refuses with ENOSPC while ``full`` is set."""

    def __init__(self, monkeypatch):
        self.full = False
        real = os.write

        def write(fd, data):
            if self.full:
                raise OSError(errno.ENOSPC, "No space left on device")
            return real(fd, data)

        monkeypatch.setattr(os, "write", write)


def _record(n: int) -> bytes:
    return encode_record(postback(n), "127.0.0.1:1", "2026-11-25T10:00:00.000000Z")


def test_writer_recovers_after_a_rotation_whose_header_failed(tmp_path, monkeypatch):
    path = str(tmp_path / "p.log")
    disk = FullDisk(monkeypatch)
    with LogWriter(path, rotate="size", max_bytes=200) as writer:
        writer.write([_record(1)])
        disk.full = True
        for _ in range(2):
            with pytest.raises(OSError, match="No space"):
                writer.write([_record(2), _record(3)])  # rotation due: rename works, header fails
        assert writer.failing and writer.failures == 2 and writer.last_error.errno == errno.ENOSPC
        assert writer.rotated_files == [path + ".1"] and os.path.getsize(path) == 0
        disk.full = False
        writer.write([_record(4)])
        assert not writer.failing and writer.records_written == 2
    assert stored_ids(path + ".1") == ["disk-1"]
    assert stored_ids(path) == ["disk-4"]


def test_writer_rewrites_a_header_cut_short_by_a_full_disk(tmp_path, monkeypatch):
    path = str(tmp_path / "p.log")
    real = os.write
    cut = {"on": False}

    def short(fd, data):
        if cut["on"] and bytes(data[: len(HEADER)]) == HEADER:
            real(fd, bytes(data[:7]))  # the disk takes 7 bytes of the header, then refuses
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd, data)

    monkeypatch.setattr(os, "write", short)
    with LogWriter(path, rotate="size", max_bytes=200) as writer:
        writer.write([_record(1)])
        cut["on"] = True
        with pytest.raises(OSError):
            writer.write([_record(2), _record(3)])
        assert os.path.getsize(path) == 7
        cut["on"] = False
        writer.write([_record(4)])
    with open(path, "rb") as handle:
        assert handle.read() == HEADER + _record(4)  # whole header, then the record: readers recognise it


def test_http_answers_200_200_503_then_200_again_and_health_says_so(tmp_path, monkeypatch):
    log = str(tmp_path / "postbacks.log")
    disk = FullDisk(monkeypatch)
    with PostbackReceiver(log, rotate="size", max_bytes=len(HEADER) + 2 * len(_record(10))) as rx:
        post = lambda n: requests.post(rx.url, data=postback(n), timeout=5).status_code  # noqa: E731
        assert [post(1), post(2)] == [200, 200]
        disk.full = True
        assert [post(3), post(4)] == [503, 503]
        assert rx.failed == 2
        health = requests.get(rx.base_url + "/health", timeout=5)
        assert health.status_code == 503 and health.json()["status"] == "failing"
        disk.full = False
        assert [post(5), post(6), post(7)] == [200, 200, 200]
        assert requests.get(rx.base_url + "/health", timeout=5).json()["status"] == "ok"
    assert sorted(stored_ids(*glob.glob(log + "*"))) == ["disk-1", "disk-2", "disk-5", "disk-6", "disk-7"]


def test_fdatasync_errors_are_logged_reported_and_recovered_from(tmp_path, monkeypatch, caplog):
    log = str(tmp_path / "postbacks.log")
    real = logwriter.fdatasync
    broken = {"on": True}

    def sync(fd):
        if broken["on"]:
            raise OSError(errno.EIO, "Input/output error")
        return real(fd)

    monkeypatch.setattr(logwriter, "fdatasync", sync)
    with caplog.at_level(logging.WARNING, logger="skycore_lab.postbacks.logwriter"):
        with PostbackReceiver(log, sync_interval=0.01) as rx:
            assert requests.post(rx.url, data=postback(1), timeout=5).status_code == 200
            assert wait_for(lambda: rx.health["sync_failures"] >= 1)
            health = requests.get(rx.base_url + "/health", timeout=5)
            assert health.status_code == 503
            assert health.json()["status"] == "failing" and health.json()["sync_error"] == "EIO: Input/output error"
            broken["on"] = False
            assert requests.post(rx.url, data=postback(2), timeout=5).status_code == 200
            assert wait_for(lambda: rx.health["status"] == "ok")
            assert rx.health["sync_error"] == "EIO: Input/output error"  # the last error stays visible
    messages = [record.getMessage() for record in caplog.records]
    assert any("fdatasync of the log" in m and "failed" in m and "Input/output error" in m for m in messages)
    assert any("fdatasync of the log" in m and "works again" in m for m in messages)
    assert stored_ids(log) == ["disk-1", "disk-2"]


# -- the log moved or deleted while the receiver runs -----------------------------------------------
@pytest.mark.parametrize("how", ["moved", "deleted"])
def test_log_moved_or_deleted_is_detected_and_a_new_file_opened(tmp_path, caplog, how):
    log = str(tmp_path / "postbacks.log")
    with caplog.at_level(logging.WARNING, logger="skycore_lab.postbacks.logwriter"):
        with PostbackReceiver(log) as rx:
            assert requests.post(rx.url, data=postback(1), timeout=5).status_code == 200
            if how == "moved":
                os.rename(log, log + ".elsewhere")
            else:
                os.unlink(log)
            assert requests.post(rx.url, data=postback(2), timeout=5).status_code == 200
            assert requests.post(rx.url, data=postback(3), timeout=5).status_code == 200
            assert rx.health["reopened"] == 1
    assert stored_ids(log) == ["disk-2", "disk-3"]  # acknowledged into a file that exists at the path
    if how == "moved":
        assert stored_ids(log + ".elsewhere") == ["disk-1"]
    assert "moved or deleted while being written" in caplog.text
