"""Append-only writer of the receiver's log (format v1, see :mod:`.logformat`).

Durability policy
-----------------
* :meth:`LogWriter.write` hands a batch of complete records to the kernel
  with ``os.write`` on a file opened ``O_APPEND`` and returns only when every
  byte was accepted. From then on the records survive the death of the
  process (``kill -9``, an exception, OOM): they sit in the OS page cache,
  which belongs to the kernel. The receiver acknowledges (HTTP 200) only after
  :meth:`write` returned.
* For power loss / kernel crash, a background thread ``fdatasync``\\ s the log
  in batches: at the latest 100 ms (``sync_interval``) after the first
  unsynced write, or as soon as 100 records (``sync_every``) are unsynced,
  whichever comes first. An fsync can take seconds on a busy disk, so it
  never runs on the event loop. A record acknowledged less than
  ~100 ms before a power cut may be lost; nothing else.
* Writes are *not* pushed to a thread: a ``write()`` of a few records to the
  page cache costs far less than a thread hop (figures: ``benchmarks/README.md``).
* ``kill -9`` in the middle of a ``write()`` can leave a partial last line.
  Its request was never acknowledged (the ack waits for ``write()`` to
  return), so the platform will retry it; readers skip the fragment (it does
  not decode, or lacks its LF), and the next writer to open the file starts
  on a new line (below).
* A failed or short write (disk full) raises :class:`OSError`; the caller
  answers 503 so the platform retries. The writer remembers that the file
  may end in a partial line and starts its next write with a newline, so a
  torn fragment is a line of its own that readers skip, never glued to the
  next record.

Failures and recovery
---------------------
No failure is final: every :meth:`LogWriter.write` starts from whatever
state the last one left. A rotation whose new file could not be created or
given its header (the disk filled up between the rename and the header)
leaves the writer without a file; the next write opens one again, so the
receiver answers 200 again as soon as space returns, without a restart. A
header cut short by a full disk is truncated and written again (a file
always starts with the whole header or nothing). :attr:`LogWriter.failures`,
:attr:`LogWriter.last_error` and :attr:`LogWriter.failing` say what happened;
the receiver's ``/health`` shows them.

fdatasync errors are logged (the first one, then at most one line a minute
with a count, and the recovery) and kept in :attr:`LogWriter.sync_error` and
:attr:`LogWriter.sync_failures`. What such an error means: the disk did not
take some of the records written since the last good sync; Linux then
marks their pages clean, so a later sync succeeds without them and they
survive only while the pages stay cached. Records already acknowledged
cannot be taken back; the error is there for an operator to see (``/health``
answers 503 while syncing fails) and to check the disk.

The log file moved or deleted under a running writer
-----------------------------------------------------
Before each write the writer compares the file at ``path`` with the one it
holds open (device and inode: one ``stat``, about a microsecond). When the
path is gone or names another file (``mv``, ``rm``, logrotate without
``copytruncate``) it logs a warning and opens a new file at ``path``, so no
record is ever written, and acknowledged, into a file nobody can find.
Records written before the move stay in the moved file (or, if it was
deleted, are gone with it: the writer cannot undo an ``rm``).

Test seams: the writer calls ``os.write`` and this module's
:data:`fdatasync` through their module attributes, so a test can replace
either (``monkeypatch.setattr``) to inject ``OSError(ENOSPC)`` or ``EIO``.

Rotation
--------
``rotate="size"``: before a record would take the file past ``max_bytes``
the file is renamed ``<log>.<n>`` (``n`` = 1 + the highest number in use, so
a larger number is newer and an already rotated file is never renamed
again). A record larger than ``max_bytes`` gets a file of its own.
``rotate="daily"``: when a record's UTC date (its ``received_at``) differs
from the file's, the file is renamed ``<log>.<YYYYMMDD>`` (the date of the
records it holds; ``<log>.<YYYYMMDD>.<n>`` if that exists already). Either
way a record is never split across files, each new file starts with the
header line, and ``<log>*`` matches every file.

One writer per log: the live file is ``flock``-ed, so a second receiver on
the same path fails loudly instead of interleaving rotations.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import threading
import time
from datetime import datetime, timezone

from ..exceptions import SkycoreStateError, SkycoreValidationError
from .logformat import HEADER

__all__ = ["LogWriter", "ROTATE_MODES", "fdatasync"]

logger = logging.getLogger(__name__)

ROTATE_MODES = (None, "size", "daily")

#: The sync call (``os.fdatasync``, ``os.fsync`` where it is missing); a test seam.
fdatasync = getattr(os, "fdatasync", os.fsync)

# Seconds between two log lines about the same ongoing failure.
_REPEAT_LOG_S = 60.0


class _FailureLog:
    """Log the first failure of a kind, then a line at most every ``_REPEAT_LOG_S`` with a count, then the recovery."""

    def __init__(self, what: str):
        self.what = what
        self.failing = False
        self.unlogged = 0
        self.logged_at = 0.0

    def failed(self, exc: BaseException) -> None:
        now = time.monotonic()
        if not self.failing or now - self.logged_at >= _REPEAT_LOG_S:
            more = f" ({self.unlogged} more since the last report)" if self.failing and self.unlogged else ""
            logger.error("%s failed: %s%s", self.what, exc, more)
            self.logged_at, self.unlogged = now, 0
        else:
            self.unlogged += 1
        self.failing = True

    def succeeded(self) -> None:
        if self.failing:
            logger.warning("%s works again (%d failures not logged one by one)", self.what, self.unlogged)
            self.failing, self.unlogged = False, 0


class _Syncer(threading.Thread):
    """Background thread that fdatasyncs the log in batches (see module docstring)."""

    def __init__(self, interval: float, every: int):
        super().__init__(name="skycore-log-sync", daemon=True)
        self.interval = interval
        self.every = every
        self.cond = threading.Condition()
        self.fd: int | None = None  # current file, owned by the writer
        self.retired: list[int] = []  # rotated-away fds: sync then close here
        self.sync_dir: str | None = None  # directory to fsync after a rename
        self.dirty = 0
        self.dirty_since = 0.0
        self.stopping = False
        self.syncs = 0
        self.error: OSError | None = None  # the last fdatasync error, kept after a recovery
        self.failures = 0
        self.failure_log: _FailureLog | None = None  # set by the writer (it knows the path)

    def mark(self, n: int) -> None:
        """Called by the writer after each successful write of ``n`` records."""
        with self.cond:
            if self.dirty == 0:
                self.dirty_since = time.monotonic()
                self.dirty = n
                self.cond.notify()
            else:
                self.dirty += n
                if self.dirty >= self.every:
                    self.cond.notify()

    def run(self) -> None:
        while True:
            with self.cond:
                while not self.stopping and not self.dirty and not self.retired:
                    self.cond.wait()
                while not self.stopping and not self.retired and self.dirty < self.every:
                    remaining = self.dirty_since + self.interval - time.monotonic()
                    if remaining <= 0:
                        break
                    self.cond.wait(remaining)
                fd, retired, sync_dir = self.fd, self.retired, self.sync_dir
                self.retired, self.sync_dir, self.dirty = [], None, 0
                stopping = self.stopping
            self._sync(fd, retired, sync_dir)
            if stopping:
                return

    def _failed(self, exc: OSError) -> None:
        self.error = exc
        self.failures += 1
        if self.failure_log is not None:
            self.failure_log.failed(exc)

    def _sync(self, fd: int | None, retired: list[int], sync_dir: str | None) -> None:
        # ``fd`` stays open while we sync it: the writer never closes the
        # current fd itself, it retires it to us (or closes it after join()).
        ok = True
        for old in retired:
            try:
                fdatasync(old)
            except OSError as exc:
                self._failed(exc)
                ok = False
            finally:
                os.close(old)
        if fd is not None:
            try:
                fdatasync(fd)
            except OSError as exc:  # logged, and reported via LogWriter.sync_error
                self._failed(exc)
                ok = False
        if ok and self.failure_log is not None:
            self.failure_log.succeeded()
        if sync_dir is not None:
            with contextlib.suppress(OSError):
                dir_fd = os.open(sync_dir, os.O_RDONLY)
                try:
                    os.fsync(dir_fd)
                finally:
                    os.close(dir_fd)
        self.syncs += 1

    def stop(self) -> None:
        with self.cond:
            self.stopping = True
            self.cond.notify()
        self.join()


class LogWriter:
    """Append records to a v1 log, with batched fsync and optional rotation.

    Not thread-safe for writers: call :meth:`write` from one thread (the
    receiver's event loop). The background sync thread is internal.

    Parameters
    ----------
    path : str or os.PathLike
        The live log file. Created (with the header line) if missing; appended
        to if it exists.
    rotate : {None, "size", "daily"}
        Rotation policy (see module docstring).
    max_bytes : int
        Size limit of one file for ``rotate="size"``.
    sync_interval : float
        Longest time, in seconds, a written record waits for its fdatasync.
    sync_every : int
        Number of unsynced records that triggers an fdatasync at once.

    Attributes
    ----------
    records_written : int
        Records handed to the kernel since the writer was created.
    rotated_files : list of str
        Files rotated away, oldest first.
    failures : int
        Calls of :meth:`write` that raised OSError (disk full, failed rotation …).
    last_error : OSError or None
        The most recent of those errors (kept after a recovery; see :attr:`failing`).
    reopened : int
        Times the file at ``path`` was found moved or deleted and a new one opened.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        rotate: str | None = None,
        max_bytes: int = 100 * 1024 * 1024,
        sync_interval: float = 0.1,
        sync_every: int = 100,
    ):
        if rotate not in ROTATE_MODES:
            raise SkycoreValidationError("rotate", f"must be one of {ROTATE_MODES}, not {rotate!r}")
        if rotate == "size" and max_bytes <= len(HEADER):
            raise SkycoreValidationError("max_bytes", f"must be more than the header's {len(HEADER)} bytes, not {max_bytes}")
        self.path = os.fspath(path)
        self.rotate = rotate
        self.max_bytes = int(max_bytes)
        self.records_written = 0
        self.rotated_files: list[str] = []
        self.failures = 0
        self.last_error: OSError | None = None
        self.failing = False
        self.reopened = 0
        self._closed = False
        self._torn = False
        self._fd: int | None = None
        self._identity: tuple[int, int] | None = None  # (st_dev, st_ino) of the open file
        self._size = 0
        self._day: str | None = None  # "YYYY-MM-DD" of the live file's records
        self._write_log = _FailureLog(f"writing the log {self.path}")
        self._syncer = _Syncer(sync_interval, sync_every)
        self._syncer.failure_log = _FailureLog(f"fdatasync of the log {self.path}")
        self._open()
        self._syncer.start()

    # -- opening and rotating -----------------------------------------------------
    def _open(self) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise SkycoreStateError(f"{self.path} is already being written by another receiver") from None
        try:
            stat = os.fstat(fd)
            self._size = stat.st_size
            self._torn = False
            self._day = None
            if 0 < self._size < len(HEADER) and HEADER.startswith(self._read_all()):
                # A header cut short by a full disk: start the file again.
                os.ftruncate(fd, 0)
                self._size = 0
            if self._size == 0:
                self._write_all(fd, HEADER)
                self._size = len(HEADER)
            else:
                # An existing log: its date is its last write's; a torn last
                # line (killed mid-write) must not swallow our first record.
                self._day = datetime.fromtimestamp(stat.st_mtime, timezone.utc).strftime("%Y-%m-%d")
                with open(self.path, "rb") as existing:
                    existing.seek(-1, os.SEEK_END)
                    self._torn = existing.read(1) != b"\n"
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        self._identity = (stat.st_dev, stat.st_ino)
        with self._syncer.cond:
            self._syncer.fd = fd

    def _read_all(self) -> bytes:
        with open(self.path, "rb") as existing:
            return existing.read(len(HEADER))

    def _rotated_name(self) -> str:
        directory, base = os.path.split(os.path.abspath(self.path))
        if self.rotate == "daily":
            stem = f"{self.path}.{(self._day or '').replace('-', '')}"
            if not os.path.exists(stem):
                return stem
            prefix, pattern = stem, re.compile(re.escape(os.path.basename(stem)) + r"\.(\d+)$")
        else:
            prefix, pattern = self.path, re.compile(re.escape(base) + r"\.(\d+)$")
        numbers = [int(m.group(1)) for name in os.listdir(directory or ".") if (m := pattern.match(name))]
        return f"{prefix}.{max(numbers, default=0) + 1}"

    def _retire(self) -> None:
        """Hand the open file to the sync thread (synced and closed off the loop); no file is open after."""
        old_fd, self._fd, self._identity = self._fd, None, None
        with self._syncer.cond:
            self._syncer.fd = None
            self._syncer.retired.append(old_fd)
            self._syncer.sync_dir = os.path.dirname(os.path.abspath(self.path))
            self._syncer.cond.notify()

    def _rotate(self) -> None:
        target = self._rotated_name()
        os.rename(self.path, target)
        self.rotated_files.append(target)
        self._retire()
        self._open()  # may fail (disk full): the next write() opens again

    def _ensure_file(self) -> None:
        """Open a file at ``path`` when none is open, or when the open one was moved or deleted."""
        if self._fd is not None:
            try:
                stat = os.stat(self.path)
                if (stat.st_dev, stat.st_ino) == self._identity:
                    return
                what = "replaced by another file"
            except FileNotFoundError:
                what = "moved or deleted"
            logger.warning("the log %s was %s while being written: opening a new one at that path", self.path, what)
            self._retire()
            self.reopened += 1
        self._open()

    # -- writing --------------------------------------------------------------
    @staticmethod
    def _write_all(fd: int, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            if written <= 0:  # pragma: no cover - regular files do not do this
                raise OSError(f"write() accepted {written} bytes")
            view = view[written:]

    def _append(self, chunk: bytes, n_records: int) -> None:
        if self._torn:
            chunk = b"\n" + chunk
        try:
            self._write_all(self._fd, chunk)
        except OSError:
            self._torn = True
            with contextlib.suppress(OSError):
                self._size = os.fstat(self._fd).st_size
            raise
        self._torn = False
        self._size += len(chunk)
        self.records_written += n_records
        self._syncer.mark(n_records)

    def write(self, records: list[bytes]) -> None:
        """Append complete records (each one line ending in LF, from ``encode_record``).

        Returns only once every byte is in the kernel's hands. Raises OSError
        (nothing of the failing chunk counts as written) when the disk refuses;
        the next call tries again from scratch (see "Failures and recovery").
        """
        if self._closed:
            raise SkycoreStateError(f"log writer for {self.path} is closed")
        try:
            self._ensure_file()
            self._write(records)
        except OSError as exc:
            self.failures += 1
            self.last_error = exc
            self.failing = True
            self._write_log.failed(exc)
            raise
        if self.failing:
            self.failing = False
            self._write_log.succeeded()

    def _write(self, records: list[bytes]) -> None:
        if self.rotate is None:
            self._append(b"".join(records) if len(records) > 1 else records[0], len(records))
            return
        pending: list[bytes] = []
        pending_size = 0
        for record in records:
            if self.rotate == "daily":
                day = record[:10].decode("ascii")
                due = self._day is not None and day != self._day
            else:
                day = None
                due = self._size + pending_size + len(record) > self.max_bytes and (
                    self._size + pending_size > len(HEADER)
                )
            if due:
                if pending:
                    self._append(b"".join(pending), len(pending))
                    pending, pending_size = [], 0
                self._rotate()
            if day is not None:
                self._day = day
            pending.append(record)
            pending_size += len(record)
        if pending:
            self._append(b"".join(pending), len(pending))

    # -- syncing and closing ------------------------------------------------------
    @property
    def syncs(self) -> int:
        """Number of background sync rounds run so far."""
        return self._syncer.syncs

    @property
    def sync_error(self) -> OSError | None:
        """The last error an fdatasync reported (None when all went well); kept after a recovery."""
        return self._syncer.error

    @property
    def sync_failures(self) -> int:
        """Number of fdatasync calls that failed."""
        return self._syncer.failures

    @property
    def sync_failing(self) -> bool:
        """Whether the latest sync round failed."""
        return bool(self._syncer.failure_log and self._syncer.failure_log.failing)

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Stop the sync thread, fdatasync and close the file. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._syncer.stop()
        fd, self._fd = self._fd, None
        if fd is None:  # a failed rotation left no file open
            return
        try:
            fdatasync(fd)
        finally:
            os.close(fd)

    def __enter__(self) -> LogWriter:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
