"""The dataset's state file: which part files are committed, how far each log was read.

``_ingest_state.json`` at the dataset's root is the commit record. It is
replaced whole and atomically (written to a temporary name, fsynced,
``os.replace``, the directory fsynced), so it always describes one finished
run. It holds:

* ``parts`` — every committed part file (relative path → rows, rows without
  a TIMESTAMP); a part file not listed is a leftover of a run that did not
  commit (or one a later run replaced) and is removed at the next start;
* ``files`` — one entry per file followed (by identity: device, inode, and
  the SHA-256 of its first 4 KiB): its last name, format, bytes and lines
  consumed;
* ``sources`` — the file names in the order they were first read (the
  order rows are returned in, after ``received_at``);
* ``runs`` — how many runs committed, and the last run's id.

A lock file (``_ingest.lock``, ``flock``) keeps two ingests from running on
one dataset at once.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from dataclasses import asdict, dataclass

from ..exceptions import DatasetError

__all__ = ["STATE_FILE", "LOCK_FILE", "STAGING", "HEAD_BYTES", "FileProgress", "read_state", "write_state",
           "head_digest", "DatasetLock"]

STATE_FILE = "_ingest_state.json"
LOCK_FILE = "_ingest.lock"
STAGING = "_staging"
#: How much of a file's head identifies it (with device and inode).
HEAD_BYTES = 4096
_FORMAT = 1


@dataclass
class FileProgress:
    """One followed file: identity, format, and how far it was consumed."""

    path: str
    device: int
    inode: int
    head_bytes: int  # how many leading bytes ``head`` hashes (fewer than HEAD_BYTES while the file is small)
    head: str  # SHA-256 hex of them
    kind: str | None  # "log", "xml", "form"; None: not known yet (nothing but blanks or comments)
    whole: bool  # .gz and .xml files: taken whole, again only when their size or head changes
    size: int  # the size when last read
    offset: int = 0  # bytes consumed
    line: int = 1  # the line at ``offset``


def head_digest(path_or_fd, size: int) -> tuple[int, str]:
    """``(n, sha256 of the first n bytes)`` with ``n = min(size, HEAD_BYTES)``."""
    count = min(size, HEAD_BYTES)
    if isinstance(path_or_fd, int):
        data = os.pread(path_or_fd, count, 0)
    else:
        with open(path_or_fd, "rb") as handle:
            data = handle.read(count)
    return len(data), hashlib.sha256(data).hexdigest()


def empty_state() -> dict:
    return {"format": _FORMAT, "runs": 0, "last_run": None, "parts": {}, "files": [], "sources": []}


def read_state(dataset: str) -> dict:
    """The committed state (an empty one for a new dataset)."""
    path = os.path.join(dataset, STATE_FILE)
    try:
        with open(path, encoding="utf-8") as handle:
            state = json.load(handle)
    except FileNotFoundError:
        return empty_state()
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{path}: the dataset's state file cannot be read ({exc})") from None
    if not isinstance(state, dict) or state.get("format") != _FORMAT:
        raise DatasetError(f"{path}: not a skycore-lab dataset state (format {_FORMAT})")
    state["files"] = [FileProgress(**entry) for entry in state["files"]]
    return state


def write_state(dataset: str, state: dict, run_id: str) -> None:
    """Replace the state file atomically and durably."""
    path = os.path.join(dataset, STATE_FILE)
    tmp = os.path.join(dataset, f".{STATE_FILE}.{run_id}.tmp")
    data = dict(state, files=[asdict(entry) for entry in state["files"]])
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(data, handle, separators=(",", ":"))
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    descriptor = os.open(dataset, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


class DatasetLock:
    """An exclusive ``flock`` on the dataset's lock file (released on exit, and by the OS if killed)."""

    def __init__(self, dataset: str):
        self.path = os.path.join(dataset, LOCK_FILE)
        self._fd: int | None = None

    def __enter__(self) -> DatasetLock:
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._fd)
            self._fd = None
            raise DatasetError(f"another ingest is running on {os.path.dirname(self.path)}") from None
        return self

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
