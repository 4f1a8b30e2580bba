"""Receiver logs, buffer by buffer: the parser's hot path.

A log (:mod:`.logformat`) is read :data:`READ_BUFFER_BYTES` of whole lines
at a time; each buffer is proven and cut by the compiled kernel
(:func:`.kernel.scan_log_buffer`), the lines it does not prove are parsed
one by one (:mod:`.documents`), and the buffer becomes a typed part
(:func:`.assemble.typed_part`). Two threads parse two buffers at once: the
kernel, Arrow and numpy release the GIL.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .. import columns as col
from .assemble import Part, typed_part
from .documents import BadRecord, parse_body
from .kernel import scan_log_buffer
from .logformat import unescape_body
from .memory import pool
from .records import Batch, BadCollector, BadLines, Rows, rows_table
from .schema import RECEIVED, TS_TYPE
from .timestamps import parse_timestamps, stamps_keeping_bad

__all__ = ["READ_BUFFER_BYTES", "log_batch", "log_parts"]

#: How many bytes of a receiver log are parsed at a time (whole lines).
READ_BUFFER_BYTES = 4 * 1024 * 1024


def _slow_log_line(raw: bytes) -> tuple[str, tuple[str, ...], dict | None] | None:
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
    fields, extra = parse_body(body)
    return stamp, fields, extra


def log_batch(buffer, source: str, first_line: int, bad) -> Batch:
    """Parse a buffer of whole receiver-log lines (the hot path).

    The compiled kernel (:func:`.kernel.scan_log_buffer`)
    proves which lines have the flat shape and cuts their fields out of the
    buffer, with no Python object per line. The other lines (header, blank,
    other shapes, bad records) are parsed one by one and merged back in line
    order. ``buffer`` is bytes-like (bytes, or a memoryview of the reader's
    bytearray).
    """
    if len(buffer) and buffer[-1] != 10:  # an unterminated last line
        buffer = bytes(buffer) + b"\n"
    scan = scan_log_buffer(buffer)
    fast = scan.proven
    table, received_at, extras = scan.table, scan.received_at, {}
    timestamp = _with_other_stamps(scan.timestamp, scan.other_stamps, scan.other_stamp_texts, extras)
    lines = np.flatnonzero(fast).astype(np.int64) + first_line
    slow = Rows(source)
    for i in np.flatnonzero(~fast).tolist():
        raw = bytes(buffer[scan.line_starts[i] : scan.line_ends[i]])
        try:
            parsed = _slow_log_line(raw)
        except BadRecord as exc:
            bad(raw.rstrip(b"\r"), source, first_line + i, str(exc))
            continue
        if parsed is not None:
            stamp, fields, extra = parsed
            slow.add(fields, extra, first_line + i, stamp)
    if not slow.rows:
        return Batch(
            source, table, lines, extras, padded=False, received_at=received_at, nullified=True,
            line_count=len(scan.line_ends), timestamp=timestamp,
        )
    # merge the slow rows in, typed the general way, in line order
    slow_table = rows_table(slow.rows)
    slow_received = parse_timestamps(slow_table.column(RECEIVED).combine_chunks())[0]
    slow_stamps = stamps_keeping_bad(pc.utf8_trim(slow_table.column("TIMESTAMP").combine_chunks(), " "), slow.extras)
    merged_lines = np.concatenate([lines, np.asarray(slow.lines, dtype=np.int64)])
    order = np.argsort(merged_lines, kind="stable")
    position = np.empty(len(order), dtype=np.int64)
    position[order] = np.arange(len(order))
    # extras are keyed by row: fast rows first, then slow rows, as concatenated
    extras = {int(position[i]): e for i, e in extras.items()}
    extras.update((int(position[len(lines) + i]), e) for i, e in slow.extras.items())
    take = pa.array(order)
    memory = pool()
    return Batch(
        source,
        pc.take(pa.concat_tables([table, slow_table]), take, memory_pool=memory),
        merged_lines[order],
        extras,
        padded=True,
        received_at=pc.take(pa.concat_arrays([received_at, slow_received]), take, memory_pool=memory),
        line_count=len(scan.line_ends),
        timestamp=pc.take(pa.concat_arrays([timestamp, slow_stamps]), take, memory_pool=memory),
    )


def _with_other_stamps(timestamp: pa.Array, rows: np.ndarray, texts: pa.Array, extras: dict[int, dict]) -> pa.Array:
    """The kernel's TIMESTAMP column with the rows it left to the general parser filled in."""
    if len(rows) == 0:
        return timestamp
    values = timestamp.cast(pa.int64()).fill_null(0).to_numpy().copy()
    missing = timestamp.is_null().to_numpy(zero_copy_only=False).copy()
    other: dict[int, dict] = {}
    parsed = stamps_keeping_bad(texts, other)
    values[rows] = parsed.cast(pa.int64()).fill_null(0).to_numpy(zero_copy_only=False)
    missing[rows] = parsed.is_null().to_numpy(zero_copy_only=False)
    for i, extra in other.items():
        extras[int(rows[i])] = extra
    return pa.array(values, type=pa.int64(), mask=missing).cast(TS_TYPE)


def _iter_log_buffers(handle, buffer_bytes: int) -> Iterator[memoryview]:
    """Whole lines of a log, about ``buffer_bytes`` at a time, without copying them.

    Each buffer is read straight into its own bytearray (after the previous
    one's partial last line), so the worker that parses it owns it.
    """
    carry = b""
    while True:
        block = bytearray(len(carry) + buffer_bytes)
        block[: len(carry)] = carry
        size = len(carry) + (handle.readinto(memoryview(block)[len(carry) :]) or 0)
        if size == len(carry):
            break
        cut = block.rfind(b"\n", 0, size)
        if cut < 0:
            carry = bytes(block[:size])
            continue
        carry = bytes(block[cut + 1 : size])
        yield memoryview(block)[: cut + 1]
    if carry:
        yield memoryview(carry)


def _log_part(buffer, source: str) -> tuple[Part, list, int]:
    """Worker: one log buffer to a typed part, bad records collected, not judged.

    Lines are numbered from 1 within the buffer; :func:`log_parts` shifts them
    (it knows the buffer's first line only once the earlier ones are parsed).
    """
    bad = BadCollector()
    batch = log_batch(buffer, source, 1, bad)
    return typed_part(batch), bad.records, batch.line_count


def log_parts(handle, source: str, bad: BadLines, buffer_bytes: int, threads: int) -> Iterator[Part]:
    """Typed parts of a log, in order; buffers parsed on ``threads`` threads.

    Arrow and numpy release the GIL, so two threads use two cores without
    the copies a process pool would need. Bad records are judged here, in
    file order, so ``"error"`` raises for the first one and a callable is
    always called from the caller's thread.
    """
    done_lines = 0

    def judged(result) -> Part:
        nonlocal done_lines
        part, records, line_count = result
        for raw, line, reason in records:
            bad(raw, source, line + done_lines, reason)
        if done_lines and part.length:
            part.columns[col.LINE] = pc.add(part.columns[col.LINE], pa.scalar(done_lines, pa.int64()))
        done_lines += line_count
        return part

    if threads <= 1:
        for buffer in _iter_log_buffers(handle, buffer_bytes):
            yield judged(_log_part(buffer, source))
        return
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="skycore-postbacks") as pool:
        pending: deque = deque()
        try:
            for buffer in _iter_log_buffers(handle, buffer_bytes):
                pending.append(pool.submit(_log_part, buffer, source))
                del buffer
                while len(pending) >= threads:  # bound memory: one buffer per thread in flight
                    yield judged(pending.popleft().result())
            while pending:
                yield judged(pending.popleft().result())
        finally:
            for future in pending:
                future.cancel()
