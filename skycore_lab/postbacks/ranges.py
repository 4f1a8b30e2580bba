"""Parts of files, read as :func:`~skycore_lab.read_postbacks` reads whole ones: what an incremental reader needs.

:func:`read_postback_ranges` parses the bytes ``[start, end)`` of each file,
numbering lines from ``first_line``, through the same code as
:func:`~skycore_lab.read_postbacks` (the receiver-log fast path on two
threads, the document and form-line readers, one :func:`.assemble.finish_frame`
over all of them, so the dedupe and the offset inference see every range
read together). :func:`complete_end` says how far a growing file holds
whole records. :func:`skycore_lab.ingest` is built on both.
"""

from __future__ import annotations

import io
import os
import re
from dataclasses import dataclass

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .. import columns as col
from .assemble import Part, finish_frame
from .documents import split_documents
from .formats import document_buffers, document_part, form_part
from .logs import READ_BUFFER_BYTES, GzipRecords, line_buffers, log_parts, parts_of
from .reader import detect_format
from .records import BadLines, DataNotes, OnBadLines

__all__ = ["FileRange", "RangeCount", "read_postback_ranges", "complete_end"]

_HEAD_BYTES = 64 * 1024  # what format detection looks at (as read_postbacks)


@dataclass(frozen=True)
class FileRange:
    """Bytes ``[start, end)`` of ``path`` (``end`` None: to the end), whose first line is ``first_line``.

    ``kind`` is the file's format (:func:`~skycore_lab.postbacks.reader.detect_format`),
    detected from the range's first bytes when None. A ``.gz`` file is always
    read whole (``start`` must be 0).
    """

    path: str
    start: int = 0
    end: int | None = None
    first_line: int = 1
    kind: str | None = None


@dataclass(frozen=True)
class RangeCount:
    """What one range gave: notifications parsed (before the dedupe) and bad records."""

    path: str
    records: int
    bad_records: int
    kind: str


class _Window(io.RawIOBase):
    """``[start, end)`` of an open file, as a readable stream."""

    def __init__(self, handle, start: int, end: int):
        super().__init__()
        self._handle, self._left = handle, end - start
        handle.seek(start)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        view = memoryview(buffer).cast("B")[: self._left]
        if not len(view):
            return 0
        count = self._handle.readinto(view) or 0
        self._left -= count
        return count


class _ShiftedBad:
    """The bad-record policy, with lines shifted to the file's and a count kept."""

    def __init__(self, bad: BadLines, shift: int):
        self.bad, self.shift, self.count = bad, shift, 0

    def __call__(self, raw: bytes, source: str, line: int | None, reason: str) -> None:
        self.count += 1
        self.bad(raw, source, None if line is None else line + self.shift, reason)


def _shift_lines(part: Part, shift: int) -> Part:
    if shift and part.length:
        part.columns[col.LINE] = pc.add(part.columns[col.LINE], pa.scalar(shift, pa.int64()))
    return part


def _range_parts(item: FileRange, bad: _ShiftedBad, threads: int) -> tuple[list[Part], str]:
    compressed = item.path.endswith(".gz")
    if compressed and item.start:
        raise ValueError(f"a .gz file is read whole, not from byte {item.start}: {item.path}")
    with open(item.path, "rb") as raw:
        end = os.fstat(raw.fileno()).st_size if item.end is None else item.end
        kind = item.kind
        if kind is None:
            with (GzipRecords(item.path) if compressed else _Window(raw, item.start, end)) as probe:
                kind = detect_format(probe.read(_HEAD_BYTES) or b"")
        handle = GzipRecords(item.path) if compressed else _Window(raw, item.start, end)
        try:
            if kind == "log":
                parts = log_parts(handle, item.path, bad, READ_BUFFER_BYTES, threads)
            elif kind == "form":
                parts = parts_of(line_buffers(handle, READ_BUFFER_BYTES), item.path, bad, threads, form_part)
            else:
                parts = parts_of(document_buffers(handle, READ_BUFFER_BYTES), item.path, bad, threads, document_part)
            return [_shift_lines(p, bad.shift) for p in parts if p.length], kind
        finally:
            handle.close()


def read_postback_ranges(
    ranges: list[FileRange], *, on_bad_lines: OnBadLines = "warn", drop_duplicates: bool = True,
    threads: int | None = None,
) -> tuple[pd.DataFrame, list[RangeCount]]:
    """Parse byte ranges of postback files into one events frame.

    Parameters
    ----------
    ranges : list of FileRange
        What to read; each range should end at a record boundary
        (:func:`complete_end`).
    on_bad_lines, drop_duplicates, threads
        As in :func:`skycore_lab.read_postbacks`; bad records are reported
        with their line in the file (``first_line`` onwards).

    Returns
    -------
    (pandas.DataFrame, list of RangeCount)
        The frame has the columns and order of :func:`skycore_lab.read_postbacks`
        (``line`` counts from each range's ``first_line``); one count per range.
    """
    bad = BadLines(on_bad_lines)
    if threads is None:
        threads = min(2, os.cpu_count() or 1)
    parts: list[Part] = []
    counts = []
    for item in ranges:
        shifted = _ShiftedBad(bad, item.first_line - 1)
        found, kind = _range_parts(item, shifted, threads)
        counts.append(RangeCount(item.path, sum(p.length for p in found), shifted.count, kind))
        parts.extend(found)
    bad.finish()
    notes = DataNotes()
    frame = finish_frame(parts, drop_duplicates, notes)
    notes.finish()
    return frame, counts


_ROOT = re.compile(rb"<(POSTBACK|NOTIFICATION)[\s/>]")
_LINE_END = re.compile(rb"[ \t\r]*\n")


def complete_end(data: bytes, kind: str) -> int:
    """How many leading bytes of ``data`` (a file's unread tail) hold only complete records.

    A record is complete once the newline after it was written: for line
    formats (``"log"``, ``"form"``) up to the last newline; for documents
    (``"xml"``), up to the newline after the last document whose root element
    is closed (a pretty-printed document torn after one of its lines waits,
    and so does a bundle torn between its notifications).
    """
    if kind != "xml":
        return data.rfind(b"\n") + 1
    pieces = list(split_documents(data))
    if not pieces:
        return 0
    # every document but the last is complete: another one started after it
    cut = pieces[-2][0] + len(pieces[-2][1]) if len(pieces) > 1 else 0
    offset, piece = pieces[-1]
    root = _ROOT.search(piece)
    body = piece.rstrip(b" \t\r\n")
    closed = root is not None and re.search(rb"</" + root.group(1) + rb"\s*>$", body) is not None
    declaration_only = root is None and body.lstrip(b" \t\r\n\xef\xbb\xbf").startswith(b"<?xml")
    newline = _LINE_END.match(data, offset + len(body))
    if newline is not None and (closed or (root is None and not declaration_only)):
        cut = newline.end()  # (text that is no document is a bad record once a newline ends it)
    elif len(pieces) > 1:
        cut = offset  # the last document waits from its start
    return cut
