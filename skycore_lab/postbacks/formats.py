"""Files of documents and of form lines, on the validated fast path.

The receiver log is not the only thing users bring: files of concatenated
``<POSTBACK>`` documents (one per line, raw bodies with the declaration's
newline, pretty-printed over many lines, CRLF, a BOM), lines of form-encoded
bodies (``xml=%3C…``), directories of single-document files, and ``.gz`` of
each. They are read buffer by buffer like logs (:func:`.logs.parts_of`) and
their records proven by the same kernel (:func:`.kernel.scan_records`):

* **documents** (:func:`document_batch`): a buffer is cut after each
  ``</POSTBACK>`` with a vectorised byte search; each piece (whitespace,
  an optional declaration, one document) is a record the kernel proves in
  :data:`~.kernel.MODE_DOCUMENT` (whitespace allowed around the document,
  after the declaration and between the markup; CR too, since lxml drops
  whitespace-only text between elements with the rest).
* **form lines** (:func:`form_batch`): a line ``xml=<percent-encoded
  document>`` of printable ASCII with no other field is decoded with numpy
  (``+`` and ``%XX``, as :func:`urllib.parse.parse_qsl` does), and the
  decoded document is proven in :data:`~.kernel.MODE_BODY` (as lxml would
  be given it: nothing before a declaration).

Whatever the kernel cannot prove — other shapes, entities, comments,
bundles, ``<NOTIFICATION>`` roots, garbage, forms with other fields or
broken escapes — goes to the general path of :mod:`.documents` (lxml), one
record at a time and in its place: a run of unproven pieces is split and
parsed exactly as before this fast path existed. Decisions: a document file
is cut at ``</POSTBACK>``; a ``</POSTBACK>`` inside a comment or CDATA makes
both halves unproven, so they go to lxml. A piece the kernel proves is
well-formed on its own, so the fast path never accepts a document lxml would
refuse (``tests/test_postbacks_formats_fast.py`` checks it per format).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pyarrow as pa

from .assemble import Part, typed_part
from .documents import BadRecord, parse_body, parse_document, split_documents
from .kernel import MODE_BODY, MODE_DOCUMENT, decode_forms, first_markup, scan_records
from .logs import HEAD_BYTES, MAX_RECORD_BYTES, Damage, merge_slow_rows, oversized_reason, scan_timestamps
from .records import BadCollector, Batch, Rows
from .vectorscan import document_ends

__all__ = [
    "ROOT_END", "BOM", "SMALL_FILE_BYTES", "files_batch", "document_batch", "form_batch", "document_buffers", "document_part", "form_part",
]

#: Where a file of documents is cut into records: after each root end tag.
ROOT_END = b"</POSTBACK>"
BOM = b"\xef\xbb\xbf"
def _drop_rows(scan, proven: np.ndarray, unproven_now: np.ndarray):
    """The scan's table and typed columns without the rows of records in ``unproven_now`` (proven ones)."""
    rows = np.cumsum(proven) - 1
    keep = np.ones(int(proven.sum()), dtype=bool)
    keep[rows[unproven_now & proven]] = False
    proven = proven & ~unproven_now
    return proven, keep


def _fast_columns(scan, too_long: np.ndarray):
    """Proven rows of a scan with typed times, minus the records in ``too_long`` (left to the general path)."""
    extras: dict[int, dict] = {}
    naive, offset = scan.timestamp_naive, scan.timestamp_offset
    timestamp = scan_timestamps(scan, naive, offset, extras)
    table, received_at, proven = scan.table, scan.received_at, scan.proven
    if too_long.any() and (too_long & proven).any():
        proven, keep = _drop_rows(scan, proven, too_long)
        rows = pa.array(np.flatnonzero(keep))
        table, received_at, timestamp = table.take(rows), received_at.take(rows), timestamp.take(rows)
        naive, offset = naive[keep], offset[keep]
        renumber = np.cumsum(keep) - 1
        extras = {int(renumber[i]): e for i, e in extras.items() if keep[i]}
    return proven, table, received_at, timestamp, naive, offset, extras


def _slow_documents(data: bytes, source: str, bad, rows: Rows, line: int) -> None:
    """The general path over ``data`` (starting at ``line``): split, then lxml per document."""
    seen = 0
    for offset, piece in split_documents(data):
        lead = len(piece) - len(piece.lstrip(b" \t\r\n"))
        line += data.count(b"\n", seen, offset + lead)
        seen = offset + lead
        piece = piece.strip(b" \t\r\n")
        if piece.startswith(BOM):
            piece = piece[3:]
        if len(piece) > MAX_RECORD_BYTES:
            bad(piece[:HEAD_BYTES], source, line, oversized_reason(len(piece)))
            continue
        try:
            parsed = parse_document(piece)
        except BadRecord as exc:
            bad(piece, source, line, str(exc))
            continue
        rows.add_parsed(parsed, line, inner_lines=True)


def document_batch(buffer, source: str, first_line: int, bad, file_start: bool = False) -> Batch:
    """A buffer of concatenated documents (cut after a ``</POSTBACK>``, or a file's end) as one batch.

    Lines are numbered from ``first_line``; ``file_start``: the buffer opens
    the file (a BOM there is skipped).
    """
    data = np.frombuffer(buffer, dtype=np.uint8)
    skip = 3 if file_start and bytes(buffer[:3]) == BOM else 0
    ends = document_ends(data)
    ends = ends[ends > skip]
    starts = np.empty_like(ends)
    if len(ends):
        starts[0] = skip
        starts[1:] = ends[:-1]
    newlines = np.flatnonzero(data == 10)
    scan = scan_records(buffer, starts, ends, MODE_DOCUMENT)
    proven, table, received_at, timestamp, naive, offset, extras = _fast_columns(
        scan, ends - starts > MAX_RECORD_BYTES
    )
    fast_records = np.flatnonzero(proven)
    first_tag = first_markup(data, starts[fast_records], ends[fast_records])
    lines = first_line + np.searchsorted(newlines, first_tag).astype(np.int64)
    # the general path, over each run of unproven records (and what follows the last </POSTBACK>)
    slow = Rows(source)
    slow_keys: list[int] = []
    tail = int(ends[-1]) if len(ends) else skip
    runs: list[list[int]] = []  # [first record, last record, start, end]
    for record in np.flatnonzero(~proven).tolist():
        if runs and runs[-1][1] == record - 1:
            runs[-1][1], runs[-1][3] = record, int(ends[record])
        else:
            runs.append([record, record, int(starts[record]), int(ends[record])])
    if tail < len(data) and bytes(buffer[tail:]).strip(b" \t\r\n"):
        if runs and runs[-1][3] == tail:
            runs[-1][3] = len(data)
        else:
            runs.append([len(ends), len(ends), tail, len(data)])
    for record, _, start, end in runs:
        before = len(slow.rows)
        _slow_documents(bytes(buffer[start:end]), source, bad, slow,
                        first_line + int(np.searchsorted(newlines, start)))
        slow_keys.extend([record] * (len(slow.rows) - before))
    if not slow.rows:
        return Batch(
            source, table, lines, extras, padded=False, received_at=received_at, nullified=True,
            line_count=len(newlines), timestamp=timestamp, notes=slow.notes,
            timestamp_naive=naive, timestamp_offset=offset,
        )
    return merge_slow_rows(
        source, table, lines, extras, received_at, timestamp, naive, offset, slow, len(newlines),
        fast_records.astype(np.int64), np.asarray(slow_keys, dtype=np.int64),
    )


def _slow_form_line(raw: bytes, number: int, source: str, bad, rows: Rows, file_line_one: bool) -> None:
    line = raw.strip(b" \t\r\n")
    if file_line_one and line.startswith(BOM):
        line = line[3:]
    if not line or line.startswith(b"#"):
        return
    if len(line) > MAX_RECORD_BYTES:
        bad(line[:HEAD_BYTES], source, number, oversized_reason(len(line)))
        return
    try:
        parsed = parse_body(line)
    except BadRecord as exc:
        bad(line, source, number, str(exc))
        return
    rows.add_parsed(parsed, number)


def form_batch(buffer, source: str, first_line: int, bad, file_start: bool = False) -> Batch:
    """A buffer of whole lines of form-encoded bodies as one batch (lines from ``first_line``)."""
    if len(buffer) and buffer[-1] != 10:  # an unterminated last line
        buffer = bytes(buffer) + b"\n"
    data = np.frombuffer(buffer, dtype=np.uint8)
    ends = np.flatnonzero(data == 10)
    starts = np.zeros(len(ends), dtype=np.int64)
    starts[1:] = ends[:-1] + 1
    stop = ends.copy()
    stop[(stop > starts) & (data[np.maximum(stop - 1, 0)] == 0x0D)] -= 1  # CRLF
    value = starts + 4
    # candidates: "xml=" then printable ASCII without "&" (one field), bounded
    head = stop - starts >= 5
    for k, byte in enumerate(b"xml="):
        head &= data[np.minimum(starts + k, len(data) - 1)] == byte
    candidate = head & (stop - starts <= MAX_RECORD_BYTES)
    documents, first, last, decoded = decode_forms(data, value, stop, candidate)
    chosen = np.flatnonzero(decoded)
    scan = scan_records(documents, first[chosen], last[chosen], MODE_BODY)
    proven, table, received_at, timestamp, naive, offset, extras = _fast_columns(scan, np.zeros(len(chosen), bool))
    fast_lines = chosen[proven]
    lines = first_line + fast_lines.astype(np.int64)
    slow = Rows(source)
    done = np.zeros(len(ends), dtype=bool)
    done[fast_lines] = True
    for i in np.flatnonzero(~done).tolist():
        _slow_form_line(bytes(buffer[starts[i] : ends[i]]), first_line + i, source, bad, slow, file_start and i == 0)
    if not slow.rows:
        return Batch(
            source, table, lines, extras, padded=False, received_at=received_at, nullified=True,
            line_count=len(ends), timestamp=timestamp, notes=slow.notes,
            timestamp_naive=naive, timestamp_offset=offset,
        )
    slow_lines = np.asarray(slow.lines, dtype=np.int64)
    return merge_slow_rows(
        source, table, lines, extras, received_at, timestamp, naive, offset, slow, len(ends), lines, slow_lines,
    )


#: Files up to this size are read together, many at a time (directories of single-document files).
SMALL_FILE_BYTES = 64 * 1024


def files_batch(buffer, starts: np.ndarray, ends: np.ndarray, source: str) -> tuple[np.ndarray, Batch]:
    """Small files read into one buffer (file ``i`` is ``buffer[starts[i]:ends[i]]``), each proven as one document.

    Returns which files the kernel proved (exactly one flat document,
    whitespace around it) and their rows, in file order; the caller reads
    the others through the general path. Lines are each document's first
    line in its file.
    """
    data = np.frombuffer(buffer, dtype=np.uint8)
    scan = scan_records(buffer, starts, ends, MODE_DOCUMENT)
    proven, table, received_at, timestamp, naive, offset, extras = _fast_columns(scan, ends - starts > MAX_RECORD_BYTES)
    newlines = np.flatnonzero(data == 10)
    begin = starts[proven]
    first_tag = first_markup(data, begin, ends[proven])
    lines = 1 + np.searchsorted(newlines, first_tag) - np.searchsorted(newlines, begin)
    return proven, Batch(
        source, table, lines.astype(np.int64), extras, padded=False, received_at=received_at, nullified=True,
        timestamp=timestamp, timestamp_naive=naive, timestamp_offset=offset,
    )


def document_buffers(handle, buffer_bytes: int) -> Iterator[object]:
    """A file of documents about ``buffer_bytes`` at a time, each buffer cut just after a ``</POSTBACK>``.

    What follows the last one waits for the next read (the whole rest of the
    file if no ``</POSTBACK>`` comes: documents with another root are read
    whole, as before). After damage in a compressed file, what was read is
    parsed and a last :class:`.logs.Damage` says where it stopped.
    """
    carry = b""
    while True:
        # read straight in after the carried tail (no joined copy of each buffer)
        block = bytearray(len(carry) + buffer_bytes)
        block[: len(carry)] = carry
        size = len(carry) + (handle.readinto(memoryview(block)[len(carry) :]) or 0)
        if size == len(carry):
            break
        cut = block.rfind(ROOT_END, max(0, len(carry) - len(ROOT_END)), size)
        if cut < 0:
            carry = bytes(block[:size])
            continue
        cut += len(ROOT_END)
        carry = bytes(block[cut:size])
        yield memoryview(block)[:cut]
    if carry.strip(b" \t\r\n"):
        yield memoryview(carry)
    damage = getattr(handle, "damage", None)
    if damage is not None:
        yield Damage(damage, b"")


def document_part(buffer, source: str, first: bool = False) -> tuple[Part, list, int]:
    """Worker for :func:`.logs.parts_of`: one buffer of documents to a typed part."""
    bad = BadCollector()
    batch = document_batch(buffer, source, 1, bad, first)
    return typed_part(batch), bad.records, batch.line_count


def form_part(buffer, source: str, first: bool = False) -> tuple[Part, list, int]:
    """Worker for :func:`.logs.parts_of`: one buffer of form lines to a typed part."""
    bad = BadCollector()
    batch = form_batch(buffer, source, 1, bad, first)
    return typed_part(batch), bad.records, batch.line_count
