"""Following a live receiver log: only what was appended since the last read."""

from __future__ import annotations

import glob
import os

import pandas as pd

from .assemble import Part, finish_frame, typed_part
from .logs import READ_BUFFER_BYTES, log_batch
from .records import BadLines, OnBadLines

__all__ = ["PostbackTail"]


class PostbackTail:
    """Incremental reader of a live receiver log: only what was appended.

    Parameters
    ----------
    path : str or os.PathLike
        The receiver log the :class:`~skycore_lab.PostbackReceiver` writes.
    on_bad_lines : as in :func:`read_postbacks`, default "warn"
    from_end : bool, default False
        Start after the last complete line the file holds now (what is
        already there is skipped; line numbers then count from there), for
        readers that only care about what arrives from now on, such as the
        send form following its sends.

    Attributes
    ----------
    offset : int
        Byte offset in the current file up to which lines were consumed.
    records_read : int
        Notifications returned so far (after per-batch dedupe).

    Notes
    -----
    A partial last line (the receiver is mid-write) is held back until its
    newline arrives. Rotation is followed: when ``path`` now names another
    file (new inode) or a shorter one (truncated), the rest of the old file
    is read first if it is still beside ``path`` under a suffixed name
    (``path.1``, ``path.2026…``), then the new file from its beginning.
    Duplicates are collapsed within each returned batch only.
    """

    def __init__(self, path, *, on_bad_lines: OnBadLines = "warn", from_end: bool = False):
        self.path = os.fspath(path)
        self.on_bad_lines = on_bad_lines
        BadLines(on_bad_lines)  # validate now, not at the first read
        self.offset = 0
        self.records_read = 0
        self._line = 1
        self._inode: int | None = None
        if from_end:
            self._skip_to_end()

    def _skip_to_end(self) -> None:
        """Move past the last newline of the file as it is now (nothing if it does not exist yet)."""
        try:
            with open(self.path, "rb") as handle:
                size = os.fstat(handle.fileno()).st_size
                self._inode = os.fstat(handle.fileno()).st_ino
                position = size
                while position > 0:  # back, block by block, to the last newline
                    start = max(0, position - READ_BUFFER_BYTES)
                    handle.seek(start)
                    cut = handle.read(position - start).rfind(b"\n")
                    if cut >= 0:
                        self.offset = start + cut + 1
                        return
                    position = start
        except FileNotFoundError:
            pass

    def __repr__(self) -> str:
        return f"PostbackTail({self.path!r}, offset={self.offset}, records_read={self.records_read})"

    def _read_from(self, path: str, offset: int, line: int, bad: BadLines, parts: list) -> tuple[int, int]:
        """Parse the complete lines of ``path`` after ``offset``; the new (offset, line)."""
        carry = b""
        with open(path, "rb") as handle:
            handle.seek(offset)
            while True:
                block = handle.read(READ_BUFFER_BYTES)
                if not block:
                    break
                block = carry + block
                cut = block.rfind(b"\n")
                if cut < 0:
                    carry = block
                    continue
                whole, carry = block[: cut + 1], block[cut + 1 :]
                batch = log_batch(whole, path, line, bad)
                if len(batch):
                    parts.append(typed_part(batch))
                offset += len(whole)
                line += whole.count(b"\n")
        return offset, line  # an unterminated last line stays for the next call

    def _rotated_remainder(self, bad: BadLines, parts: list) -> None:
        for candidate in sorted(glob.glob(glob.escape(self.path) + "*")):
            if candidate == self.path:
                continue
            try:
                if os.stat(candidate).st_ino == self._inode:
                    self._read_from(candidate, self.offset, self._line, bad, parts)
                    return
            except OSError:
                continue

    def read_new(self) -> pd.DataFrame:
        """Notifications appended since the previous call (columns as :func:`read_postbacks`)."""
        bad = BadLines(self.on_bad_lines)
        parts: list[Part] = []
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            stat = None  # between rotation and the new file: nothing new yet
        if stat is not None:
            if self._inode is not None and (stat.st_ino != self._inode or stat.st_size < self.offset):
                if stat.st_ino != self._inode:
                    self._rotated_remainder(bad, parts)
                self.offset, self._line = 0, 1
            self._inode = stat.st_ino
            if stat.st_size > self.offset:
                self.offset, self._line = self._read_from(self.path, self.offset, self._line, bad, parts)
        bad.finish()
        frame = finish_frame(parts, drop_duplicates=True)
        self.records_read += len(frame)
        return frame
