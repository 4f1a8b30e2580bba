"""Giving the C heap's free pages back after a read (:func:`skycore_lab.postbacks.memory.release_free_heap`)."""

from __future__ import annotations

import os
import platform
import sys
import threading

import pytest

from skycore_lab.postbacks import memory

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
