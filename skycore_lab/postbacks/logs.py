"""Receiver logs, buffer by buffer: the parser's hot path.

A log (:mod:`.logformat`) is read :data:`READ_BUFFER_BYTES` of whole lines
at a time; each buffer is proven and cut by the compiled kernel
(:func:`.kernel.scan_log_buffer`), the lines it does not prove are parsed
one by one (:mod:`.documents`), and the buffer becomes a typed part
(:func:`.assemble.typed_part`). Two threads parse two buffers at once: the
kernel, Arrow and numpy release the GIL.

Two bounds keep one bad file from costing more than its good records:

* a line longer than :data:`MAX_RECORD_BYTES` is a bad record, reported
  with its first KiB and never held whole in memory (the receiver stores
  bodies of at most 64 KiB);
* a ``.gz`` file is decompressed by :class:`GzipRecords`, which stops at
  damage (truncation, a corrupt block, a bad CRC) instead of raising: every
  complete line before it is read, and the damage is a bad record naming
  the file and the offset. It inflates with zlib-ng where the ``fast``
  extra installed it (the same format, about twice as fast as zlib here),
  else with the standard library's zlib (also when ``SKYCORE_LAB_PURE=1``).
"""

from __future__ import annotations

import io
import os
import zlib
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .. import columns as col
from .assemble import Part, typed_part
from .documents import BadRecord, Parsed, parse_body
from .kernel import PURE_ENV, scan_log_buffer
from .logformat import unescape_body
from .memory import pool
from .records import Batch, BadCollector, BadLines, Note, Rows, rows_table
from .schema import RECEIVED, TS_TYPE


def _inflater():
    """The deflate implementation: zlib-ng (the ``fast`` extra) if installed and allowed, else zlib."""
    if os.environ.get(PURE_ENV, "").strip() not in ("", "0"):
        return zlib
    try:
        from zlib_ng import zlib_ng
    except ImportError:
        return zlib
    return zlib_ng


#: The module :class:`GzipRecords` inflates with (``zlib`` or ``zlib_ng.zlib_ng``: same API).
INFLATE = _inflater()
from .timestamps import parse_timestamps, stamps_keeping_bad

__all__ = [
    "READ_BUFFER_BYTES", "MAX_RECORD_BYTES", "HEAD_BYTES", "GzipRecords", "Damage", "log_batch", "log_parts", "parts_of",
    "line_buffers", "merge_slow_rows", "scan_timestamps", "oversized_reason",
]

#: How many bytes of a receiver log are parsed at a time (whole lines).
READ_BUFFER_BYTES = 4 * 1024 * 1024
#: A record (log line, document, form line) longer than this is a bad record, not read:
#: 16 times the receiver's 64 KiB body cap, room for its escaping and for other writers.
MAX_RECORD_BYTES = 1024 * 1024
HEAD_BYTES = 1024  # what a bad-record callback gets of an oversized record


def oversized_reason(size: int | str) -> str:
    return f"record longer than MAX_RECORD_BYTES ({MAX_RECORD_BYTES} bytes): {size} bytes, not read"


def _slow_log_line(raw: bytes) -> tuple[str, Parsed] | None:
    """A log line the fast path did not take: None for blank/comment lines."""
    line = raw.rstrip(b"\r\n")
    if not line.strip() or line.startswith(b"#"):
        return None
    parts = line.split(b"\t", 2)
    if len(parts) != 3:
        raise BadRecord("not a receiver log record (expected received_at<TAB>remote<TAB>body)")
    stamp = parts[0].decode("ascii", "replace").strip()
    try:
        body = unescape_body(parts[2])
    except ValueError as exc:
        raise BadRecord(f"broken escape in log body: {exc}") from None
    if not body.strip():
        raise BadRecord("empty body")
    return stamp, parse_body(body)


def log_batch(buffer, source: str, first_line: int, bad) -> Batch:
    """Parse a buffer of whole receiver-log lines (the hot path).

    The compiled kernel (:func:`.kernel.scan_log_buffer`)
    proves which lines have the flat shape and cuts their fields out of the
    buffer, with no Python object per line. The other lines (header, blank,
    other shapes, bundles, bad records) are parsed one by one and merged back
    in line order (a bundle's notifications share their line). ``buffer`` is
    bytes-like (bytes, or a memoryview of the reader's bytearray).
    """
    if len(buffer) and buffer[-1] != 10:  # an unterminated last line
        buffer = bytes(buffer) + b"\n"
    scan = scan_log_buffer(buffer)
    fast = scan.proven
    table, received_at, extras = scan.table, scan.received_at, {}
    naive, offset = scan.timestamp_naive, scan.timestamp_offset
    timestamp = scan_timestamps(scan, naive, offset, extras)
    too_long = np.flatnonzero(scan.line_ends - scan.line_starts > MAX_RECORD_BYTES)
    if len(too_long):
        keep = np.ones(len(scan.received_at), dtype=bool)
        keep[np.cumsum(fast)[too_long[fast[too_long]]] - 1] = False  # their fast rows
        fast = fast.copy()
        fast[too_long] = False
        if not keep.all():
            rows = pa.array(np.flatnonzero(keep))
            table, received_at, timestamp = table.take(rows), received_at.take(rows), timestamp.take(rows)
            naive, offset = naive[keep], offset[keep]
            renumber = np.cumsum(keep) - 1
            extras = {int(renumber[i]): e for i, e in extras.items() if keep[i]}
    lines = np.flatnonzero(fast).astype(np.int64) + first_line
    slow = Rows(source)
    for i in np.flatnonzero(~fast).tolist():
        start, end = int(scan.line_starts[i]), int(scan.line_ends[i])
        if end - start > MAX_RECORD_BYTES:
            bad(bytes(buffer[start : start + HEAD_BYTES]), source, first_line + i, oversized_reason(end - start))
            continue
        raw = bytes(buffer[start:end])
        try:
            parsed = _slow_log_line(raw)
        except BadRecord as exc:
            bad(raw.rstrip(b"\r"), source, first_line + i, str(exc))
            continue
        if parsed is not None:
            stamp, record = parsed
            slow.add_parsed(record, first_line + i, stamp)
    if not slow.rows:
        return Batch(
            source, table, lines, extras, padded=False, received_at=received_at, nullified=True,
            line_count=len(scan.line_ends), timestamp=timestamp, notes=slow.notes,
            timestamp_naive=naive, timestamp_offset=offset,
        )
    return merge_slow_rows(
        source, table, lines, extras, received_at, timestamp, naive, offset, slow, len(scan.line_ends),
        lines, np.asarray(slow.lines, dtype=np.int64),
    )


def merge_slow_rows(
    source: str, table: pa.Table, lines: np.ndarray, extras: dict, received_at: pa.Array, timestamp: pa.Array,
    naive: np.ndarray, offset: np.ndarray, slow: Rows, line_count: int, fast_keys: np.ndarray, slow_keys: np.ndarray,
) -> Batch:
    """The fast path's rows and the general path's (``slow``) in one batch, ordered by their keys.

    ``fast_keys``/``slow_keys`` order the rows (a stable sort: equal keys
    keep fast rows first, then slow rows in their order); the slow rows are
    typed the general way.
    """
    slow_table = rows_table(slow.rows)
    slow_received = parse_timestamps(slow_table.column(RECEIVED).combine_chunks())[0]
    slow_stamps = stamps_keeping_bad(pc.utf8_trim(slow_table.column("TIMESTAMP").combine_chunks(), " "), slow.extras)
    merged_lines = np.concatenate([lines, np.asarray(slow.lines, dtype=np.int64)])
    order = np.argsort(np.concatenate([fast_keys, slow_keys]), kind="stable")
    position = np.empty(len(order), dtype=np.int64)
    position[order] = np.arange(len(order))
    # extras are keyed by row: fast rows first, then slow rows, as concatenated
    extras = {int(position[i]): e for i, e in extras.items()}
    extras.update((int(position[len(lines) + i]), e) for i, e in slow.extras.items())
    recovered = position[len(lines) + np.asarray(slow.recovered, dtype=np.int64)] if slow.recovered else None
    take = pa.array(order)
    memory = pool()
    return Batch(
        source,
        pc.take(pa.concat_tables([table, slow_table]), take, memory_pool=memory),
        merged_lines[order],
        extras,
        padded=True,
        received_at=pc.take(pa.concat_arrays([received_at, slow_received]), take, memory_pool=memory),
        line_count=line_count,
        timestamp=pc.take(pa.concat_arrays([timestamp, slow_stamps.stamps]), take, memory_pool=memory),
        timestamp_naive=np.concatenate([naive, slow_stamps.naive])[order],
        timestamp_offset=np.concatenate([offset, slow_stamps.offset])[order],
        recovered=None if recovered is None else np.sort(recovered),
        notes=slow.notes,
    )


def scan_timestamps(scan, naive: np.ndarray, offset: np.ndarray, extras: dict[int, dict]) -> pa.Array:
    """The kernel's TIMESTAMP column with the rows it left to the general parser filled in
    (their naive flags and offsets written into ``naive`` and ``offset``)."""
    timestamp, rows = scan.timestamp, scan.other_stamps
    if len(rows) == 0:
        return timestamp
    values = timestamp.cast(pa.int64()).fill_null(0).to_numpy().copy()
    missing = timestamp.is_null().to_numpy(zero_copy_only=False).copy()
    other: dict[int, dict] = {}
    parsed = stamps_keeping_bad(scan.other_stamp_texts, other)
    values[rows] = parsed.stamps.cast(pa.int64()).fill_null(0).to_numpy(zero_copy_only=False)
    missing[rows] = parsed.stamps.is_null().to_numpy(zero_copy_only=False)
    naive[rows] = parsed.naive
    offset[rows] = parsed.offset
    for i, extra in other.items():
        extras[int(rows[i])] = extra
    return pa.array(values, type=pa.int64(), mask=missing).cast(TS_TYPE)


# --- reading a file: whole lines, bounded, through damage ------------------------------------------
class GzipRecords(io.RawIOBase):
    """A ``.gz`` file's decompressed bytes that stop at damage instead of raising.

    Members are read one after the other (as :mod:`gzip` does; zero padding
    after the last is ignored). On a truncated stream, a corrupt block, a bad
    CRC or trailing garbage, reading ends: :attr:`damage` says what and at
    which compressed offset, and everything that decompresses before it is
    delivered (the chunk holding the damage is fed again byte by byte).
    """

    _CHUNK = 64 * 1024

    def __init__(self, path: str):
        super().__init__()
        self._raw = open(path, "rb")
        self._inflate = INFLATE.decompressobj(31)
        self._started = False  # the current member has had input
        self._pending = memoryview(b"")
        self._done = False
        self.compressed_offset = 0  # compressed bytes consumed
        self.delivered = 0  # decompressed bytes handed out
        self.damage: str | None = None

    def readable(self) -> bool:
        return True

    def _stop(self, reason: str) -> None:
        delivered = self.delivered + len(self._pending)
        self.damage = f"{reason} at compressed byte {self.compressed_offset} (after {delivered} bytes of records)"
        self._done = True

    def _inflate_chunk(self, chunk: bytes) -> bytes:
        """Decompress ``chunk`` (members one after the other); raises ``INFLATE.error`` at damage."""
        out = self._inflate.decompress(chunk)
        self._started = True
        while self._inflate.eof:
            rest = self._inflate.unused_data
            self._inflate = INFLATE.decompressobj(31)
            if not rest.strip(b"\0"):
                self._started = False  # zero padding after the last member
                break
            out += self._inflate.decompress(rest)  # the next member
        return out

    def _fill(self) -> None:
        while not len(self._pending) and not self._done:
            chunk = self._raw.read(self._CHUNK)
            if not chunk:
                if self._started and not self._inflate.eof:
                    self._stop("compressed file ended before the end-of-stream marker (truncated)")
                self._done = True
                return
            saved, started = self._inflate.copy(), self._started
            try:
                out = self._inflate_chunk(chunk)
            except INFLATE.error as exc:
                # again byte by byte from the chunk's start: everything before the damage is delivered
                self._inflate, self._started, out = saved, started, bytearray()
                for at in range(len(chunk)):
                    try:
                        out += self._inflate_chunk(chunk[at : at + 1])
                    except INFLATE.error:
                        break
                    self.compressed_offset += 1
                self._pending = memoryview(bytes(out))
                self._stop(f"corrupt compressed data ({exc})")
                return
            self.compressed_offset += len(chunk)
            self._pending = memoryview(out)

    def readinto(self, buffer) -> int:
        """Fill ``buffer`` as far as the data go (a short count means the end, or damage)."""
        view, filled = memoryview(buffer).cast("B"), 0
        while filled < len(view):
            self._fill()
            count = min(len(view) - filled, len(self._pending))
            if not count:
                break
            view[filled : filled + count] = self._pending[:count]
            self._pending = self._pending[count:]
            filled += count
        self.delivered += filled
        return filled

    def close(self) -> None:
        self._raw.close()
        super().close()


class _Oversized:
    """A line longer than :data:`MAX_RECORD_BYTES`: its head and size (the rest was skipped)."""

    def __init__(self, head: bytes, size: int, complete: bool):
        self.head, self.size, self.complete = head, size, complete


class Damage:
    """Where a compressed file stopped being readable; ``tail`` is the partial line before it."""

    def __init__(self, reason: str, tail: bytes):
        self.reason, self.tail = reason, tail


def line_buffers(handle, buffer_bytes: int) -> Iterator[object]:
    """Whole lines of a log, about ``buffer_bytes`` at a time, without copying them.

    Each buffer is read straight into its own bytearray (after the previous
    one's partial last line), so the worker that parses it owns it. A line
    longer than :data:`MAX_RECORD_BYTES` comes as an :class:`_Oversized`
    (skipped up to its newline, never held); damage in a compressed file as a
    last :class:`Damage`.
    """
    carry = b""
    skipping: _Oversized | None = None
    while True:
        block = bytearray(len(carry) + buffer_bytes)
        block[: len(carry)] = carry
        size = len(carry) + (handle.readinto(memoryview(block)[len(carry) :]) or 0)
        if size == len(carry):
            break
        start = 0
        if skipping is not None:
            cut = block.find(b"\n", 0, size)
            if cut < 0:
                skipping.size += size
                carry = b""
                continue
            skipping.size += cut + 1
            skipping.complete = True
            yield skipping
            skipping, start = None, cut + 1
        cut = block.rfind(b"\n", start, size)
        if cut < 0:
            carry = bytes(block[start:size])
            if len(carry) > MAX_RECORD_BYTES:
                skipping, carry = _Oversized(carry[:HEAD_BYTES], len(carry), False), b""
            continue
        carry = bytes(block[cut + 1 : size])
        yield memoryview(block)[start : cut + 1]
        if len(carry) > MAX_RECORD_BYTES:
            skipping, carry = _Oversized(carry[:HEAD_BYTES], len(carry), False), b""
    damage = getattr(handle, "damage", None)
    if skipping is not None:
        yield skipping
    elif carry and damage is None:
        yield memoryview(carry)
    if damage is not None:
        yield Damage(damage, carry)


def _log_part(buffer, source: str, first: bool = False) -> tuple[Part, list, int]:
    """Worker: one log buffer to a typed part, bad records collected, not judged.

    Lines are numbered from 1 within the buffer; :func:`parts_of` shifts them
    (it knows the buffer's first line only once the earlier ones are parsed).
    """
    bad = BadCollector()
    batch = log_batch(buffer, source, 1, bad)
    return typed_part(batch), bad.records, batch.line_count


def log_parts(handle, source: str, bad: BadLines, buffer_bytes: int, threads: int) -> Iterator[Part]:
    """Typed parts of a receiver log, in order; buffers parsed on ``threads`` threads (:func:`parts_of`)."""
    return parts_of(line_buffers(handle, buffer_bytes), source, bad, threads, _log_part)


def parts_of(buffers: Iterator[object], source: str, bad: BadLines, threads: int, worker) -> Iterator[Part]:
    """Typed parts of a file's buffers, in order; buffers parsed on ``threads`` threads.

    ``worker(buffer, source, first)`` turns one buffer (``first``: the file's
    first) into ``(part, bad records, line count)``, lines numbered from 1
    within the buffer. Arrow and numpy release the GIL, so two threads use
    two cores without the copies a process pool would need. Bad records are
    judged here, in file order, so ``"error"`` raises for the first one and a
    callable is always called from the caller's thread.
    """
    done_lines = 0

    def judged(item) -> Part | None:
        nonlocal done_lines
        if isinstance(item, _Oversized):
            size = item.size if item.complete else f"more than {item.size}"
            bad(item.head, source, done_lines + 1, oversized_reason(size))
            done_lines += 1
            return None
        if isinstance(item, Damage):
            if item.tail:
                bad(item.tail[:HEAD_BYTES], source, done_lines + 1, "record cut short by the damage below")
            bad(b"", source, done_lines + 1, item.reason + "; every complete record before it was read")
            return None
        part, records, line_count = item.result() if hasattr(item, "result") else item
        for raw, line, reason in records:
            bad(raw, source, line + done_lines, reason)
        if done_lines and part.length:
            part.columns[col.LINE] = pc.add(part.columns[col.LINE], pa.scalar(done_lines, pa.int64()))
        if done_lines and part.notes:
            part.notes = [Note(n.kind, None if n.line is None else n.line + done_lines, n.detail) for n in part.notes]
        done_lines += line_count
        return part

    first = True
    if threads <= 1:
        for buffer in buffers:
            item = buffer if isinstance(buffer, (_Oversized, Damage)) else worker(buffer, source, first)
            first = False
            part = judged(item)
            if part is not None:
                yield part
        return
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="skycore-postbacks") as executor:
        pending: deque = deque()
        try:
            for buffer in buffers:
                if isinstance(buffer, (_Oversized, Damage)):
                    pending.append(buffer)
                else:
                    pending.append(executor.submit(worker, buffer, source, first))
                first = False
                del buffer
                while len(pending) > threads:  # bound memory: one buffer per thread in flight, one read ahead
                    part = judged(pending.popleft())
                    if part is not None:
                        yield part
            while pending:
                part = judged(pending.popleft())
                if part is not None:
                    yield part
        finally:
            for future in pending:
                if hasattr(future, "cancel"):
                    future.cancel()
