"""Following a live receiver log: only what was appended since the last read, across rotations."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

import pandas as pd

from .assemble import Part, finish_frame, typed_part
from .logs import MAX_RECORD_BYTES, READ_BUFFER_BYTES, log_batch, oversized_reason
from .records import BadLines, DataNotes, OnBadLines

__all__ = ["PostbackTail"]

# rotated copies a tail never reads: compressed ones are other files (new inodes) with the same records
_COMPRESSED = re.compile(r"\.(?:gz|bz2|xz|zst|lz4|zip)$")


_SIGNATURE_BYTES = 64  # a file's first bytes: tell a reused inode from the file we read


@dataclass
class _Progress:
    """How far one file (by identity) was read: bytes consumed, the next line, its first bytes."""

    offset: int = 0
    line: int = 1
    signature: bytes = b""
    seen: int = 0  # the call that last saw it


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
    Files are followed by identity (device and inode), not by name. Each
    call looks at ``path`` and at its rotated copies beside it (``path.1``,
    ``path.20260302``…, any ``path.<suffix>`` that is not compressed) and
    reads every file it knows from where it stopped, and every file it has
    not seen from its beginning — so any number of rotations between two
    calls, or before the first, loses nothing and reads nothing twice. The
    files already rotated when the tail is created are history and are not
    read; the current file is read from its start. A known file that got
    shorter (truncated in place, or its inode reused) is read again from its
    start. Rotated copies are read before the current file, oldest first.

    A known file is recognised by its inode *and* its first bytes, so an
    inode the system reused for a new file is read as new. Files not seen
    for three calls are forgotten.

    A partial last line of the current file (the receiver is mid-write) is
    held back until its newline arrives; in a rotated file it can never be
    completed and is reported as a bad record. Lines longer than
    :data:`~skycore_lab.postbacks.logs.MAX_RECORD_BYTES` are bad records,
    never held. Duplicates are collapsed within each returned batch only.
    """

    def __init__(self, path, *, on_bad_lines: OnBadLines = "warn", from_end: bool = False):
        self.path = os.fspath(path)
        self.on_bad_lines = on_bad_lines
        BadLines(on_bad_lines)  # validate now, not at the first read
        self.records_read = 0
        self._files: dict[tuple[int, int], _Progress] = {}
        self._current: tuple[int, int] | None = None
        self._calls = 0
        # rotated copies already there are history: known, taken as fully read
        for _name, stat in self._rotated():
            self._files[(stat.st_dev, stat.st_ino)] = _Progress(stat.st_size, 1, b"", 0)
        if from_end:
            self._skip_to_end()

    def _skip_to_end(self) -> None:
        """Take the current file as read up to its last newline (nothing if it does not exist yet)."""
        try:
            handle = open(self.path, "rb")
        except FileNotFoundError:
            return
        with handle:
            stat = os.fstat(handle.fileno())
            position, offset = stat.st_size, 0
            while position > 0:  # back, block by block, to the last newline
                start = max(0, position - READ_BUFFER_BYTES)
                handle.seek(start)
                cut = handle.read(position - start).rfind(b"\n")
                if cut >= 0:
                    offset = start + cut + 1
                    break
                position = start
            identity = (stat.st_dev, stat.st_ino)
            signature = os.pread(handle.fileno(), _SIGNATURE_BYTES, 0)
            self._files[identity] = _Progress(offset, 1, signature, 0)
            self._current = identity

    def __repr__(self) -> str:
        return f"PostbackTail({self.path!r}, offset={self.offset}, records_read={self.records_read})"

    @property
    def offset(self) -> int:
        progress = self._files.get(self._current) if self._current is not None else None
        return progress.offset if progress is not None else 0

    def _rotated(self) -> list[tuple[str, os.stat_result]]:
        directory, base = os.path.split(os.path.abspath(self.path))
        found = []
        try:
            names = os.listdir(directory or ".")
        except FileNotFoundError:
            return found
        for name in names:
            if not name.startswith(base + ".") or _COMPRESSED.search(name):
                continue
            candidate = os.path.join(directory, name)
            try:
                stat = os.stat(candidate)
            except OSError:
                continue
            if os.path.isfile(candidate):
                found.append((candidate, stat))
        return found

    def _read(self, handle, name: str, progress: _Progress, final: bool, bad: BadLines, parts: list) -> None:
        """Parse the complete lines after ``progress.offset``; a final file's partial tail is a bad record."""
        handle.seek(progress.offset)
        carry = b""
        skipping = 0  # bytes of an oversized line being skipped
        while True:
            block = handle.read(READ_BUFFER_BYTES)
            if not block:
                break
            if skipping:
                cut = block.find(b"\n")
                if cut < 0:
                    skipping += len(block)
                    progress.offset += len(block)
                    continue
                bad(b"", name, progress.line, oversized_reason(skipping + cut + 1))
                progress.offset += cut + 1
                progress.line += 1
                skipping, block = 0, block[cut + 1 :]
            block = carry + block
            cut = block.rfind(b"\n")
            if cut < 0:
                carry = block
                if len(carry) > MAX_RECORD_BYTES:  # never held: skipped up to its newline
                    skipping, carry = len(carry), b""
                    progress.offset += skipping
                continue
            whole, carry = block[: cut + 1], block[cut + 1 :]
            batch = log_batch(whole, name, progress.line, bad)
            if len(batch):
                parts.append(typed_part(batch))
            progress.offset += len(whole)
            progress.line += whole.count(b"\n")
            if len(carry) > MAX_RECORD_BYTES:
                skipping, carry = len(carry), b""
                progress.offset += skipping
        if final and (carry or skipping):
            reason = oversized_reason(skipping) if skipping else "partial last line of a rotated file (torn write)"
            bad(carry[:1024], name, progress.line, reason)
            progress.offset += len(carry)
            progress.line += 1
        # else: an unterminated last line stays for the next call

    def read_new(self) -> pd.DataFrame:
        """Notifications appended since the previous call (columns as :func:`read_postbacks`)."""
        bad = BadLines(self.on_bad_lines)
        parts: list[Part] = []
        self._calls += 1
        done: set[tuple[int, int]] = set()
        for name, stat in sorted(self._rotated(), key=lambda item: (item[1].st_mtime_ns, item[0])):
            progress = self._files.get((stat.st_dev, stat.st_ino))
            if progress is not None:
                progress.seen = self._calls
                if stat.st_size == progress.offset:
                    continue  # fully read: not even opened
            self._follow(name, final=True, bad=bad, parts=parts, done=done)
        self._follow(self.path, final=False, bad=bad, parts=parts, done=done)
        for identity in [key for key, p in self._files.items() if p.seen < self._calls - 2]:
            del self._files[identity]  # gone for three calls: its inode may be reused
        bad.finish()
        notes = DataNotes()
        frame = finish_frame(parts, drop_duplicates=True, notes=notes)
        notes.finish()
        self.records_read += len(frame)
        return frame

    def _follow(self, name: str, *, final: bool, bad: BadLines, parts: list, done: set) -> None:
        try:
            handle = open(name, "rb")
        except OSError:
            return  # between rotation and the new file, or removed: nothing to read here
        with handle:
            stat = os.fstat(handle.fileno())
            identity = (stat.st_dev, stat.st_ino)
            if identity in done:
                return
            done.add(identity)
            if not final:
                self._current = identity
            progress = self._files.get(identity)
            if progress is not None and progress.signature:
                head = os.pread(handle.fileno(), len(progress.signature), 0)
                if head != progress.signature:
                    progress = None  # the inode now holds another file
            if progress is None or stat.st_size < progress.offset:
                progress = self._files[identity] = _Progress()  # new to us, or truncated in place
            progress.seen = self._calls
            if not progress.signature or len(progress.signature) < _SIGNATURE_BYTES:
                progress.signature = os.pread(handle.fileno(), _SIGNATURE_BYTES, 0)
            if stat.st_size > progress.offset:
                self._read(handle, name, progress, final, bad, parts)
