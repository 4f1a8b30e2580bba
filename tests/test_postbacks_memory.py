"""Giving the C heap's free pages back after a read (:func:`skycore_lab.postbacks.memory.release_free_heap`)."""

from __future__ import annotations

import os
import platform
import sys
import threading
from datetime import datetime, timezone

import pytest

from skycore_lab.postbacks import memory, reader
from skycore_lab.postbacks.logformat import HEADER, encode_record

PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _resident() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * PAGE


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's"
)
def test_free_pages_a_finished_thread_left_in_the_heap_go_back():
    kept = []

    def churn():
        blocks = []
        for _ in range(1600):  # 100 MiB of blocks below the mmap threshold: they come from an arena
            block = bytearray(64 * 1024)
            block[:: PAGE] = b"x" * len(block[:: PAGE])  # every page written, so resident
            blocks.append(block)
        kept.extend(blocks[::16])  # live blocks all through the arena: it cannot shrink from its top
        blocks.clear()

    worker = threading.Thread(target=churn)
    worker.start()
    worker.join()
    before = _resident()
    memory.release_free_heap()
    after = _resident()
    assert before - after > 50 * 2**20, (before, after)
    assert all(block[0] == ord("x") for block in kept)  # live blocks untouched


def test_without_malloc_trim_nothing_happens(monkeypatch):
    def no_library(name):
        raise OSError(f"{name}: cannot open shared object file")

    monkeypatch.setattr(memory, "_trim", None)
    monkeypatch.setattr(memory.ctypes, "CDLL", no_library)
    assert memory.release_free_heap() is None
    assert memory._trim is False
    memory.release_free_heap()  # decided once: not looked up again
    assert memory._trim is False


def test_only_a_large_read_gives_the_heap_back(tmp_path, monkeypatch):
    stamp = datetime(2026, 3, 2, 14, 0, tzinfo=timezone.utc)
    bodies = [f"<POSTBACK><CODE>N101</CODE><TRACKINGID>T{i}</TRACKINGID></POSTBACK>".encode() for i in range(3)]
    path = tmp_path / "postbacks.log"
    path.write_bytes(HEADER + b"".join(encode_record(body, "-", stamp) for body in bodies))
    calls = []
    monkeypatch.setattr(reader, "release_free_heap", lambda: calls.append(1))
    monkeypatch.setattr(reader, "_RELEASE_AFTER_ROWS", 4)
    assert len(reader.read_postbacks(path)) == 3
    assert calls == []  # a small read (a poll loop's) does not walk the heap
    monkeypatch.setattr(reader, "_RELEASE_AFTER_ROWS", 3)
    reader.read_postbacks(path)
    assert calls == [1]
