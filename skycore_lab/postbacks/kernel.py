"""The compiled kernel of the fast path: one pass over a buffer of receiver-log lines.

Per-record lxml costs ~6-10 µs; a million records need less. A buffer of
receiver-log lines is *proven* well-formed line by line by one compiled pass
(:func:`scan_log_buffer`, a numba kernel that releases the GIL): it checks
each line against the grammar of :mod:`.grammar`, records where each field's
text starts and ends (spaces trimmed) and reads both timestamps in their
common shapes. Arrow then copies each field's texts out of the buffer into
its column, without a Python object per record. Lines the kernel does not
prove go one by one through the general path (:mod:`.documents`).

The same kernel proves the other formats' records (:func:`scan_records`):
documents cut out of a file of concatenated documents (whitespace between
the markup, around the document, after the declaration), and the documents
decoded out of form lines (:mod:`.formats`).

Why numba: the same proof in vectorised numpy takes a dozen whole-buffer
passes, and one compiled pass is several times cheaper per byte (figures in
``benchmarks/README.md``). The kernel is compiled on first use and cached
next to this file (``cache=True``).

numba is optional (the ``fast`` extra): without it, or with the environment
variable ``SKYCORE_LAB_PURE=1``, :data:`ENGINE` is ``"numpy"`` and the same
functions run the vectorised path of :mod:`.vectorscan` (the grammar as one
RE2 expression over bytes, fields cut with numpy): slower, same results.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import vectorscan
from .grammar import TEXT_PLAIN, XSI_ATTRIBUTE
from .memory import pool
from .schema import BATCH_SCHEMA, FIELD_TAGS, RECEIVED, TS_TYPE
from .timestamps import NO_OFFSET, STAMP_NAIVE, STAMP_OTHER, STAMP_READ

__all__ = [
    "LogScan", "scan_log_buffer", "scan_records", "documented_order", "decode_forms", "first_markup", "string_fingerprints", "load_kernels", "STAMP_READ", "STAMP_OTHER",
    "STAMP_NAIVE", "ENGINE", "PURE_ENV", "MODE_LOG", "MODE_DOCUMENT", "MODE_BODY",
]

#: Set this environment variable to ``1`` to force the pure numpy path even where numba is installed.
PURE_ENV = "SKYCORE_LAB_PURE"


def _load_numba():
    if os.environ.get(PURE_ENV, "").strip() not in ("", "0"):
        return None
    try:
        import numba
    except ImportError:  # numba is the optional ``fast`` extra
        return None
    return numba


_numba = _load_numba()
#: Which path proves records: ``"numba"`` (compiled kernel) or ``"numpy"`` (:mod:`.vectorscan`).
ENGINE = "numba" if _numba is not None else "numpy"


def _jit(**options):
    """numba's njit when numba is in use; otherwise the plain function (never called on the hot path)."""
    if _numba is None:
        return lambda function: function
    return _numba.njit(**options)


#: What a record is: a receiver-log line (``received_at<TAB>remote<TAB>escaped body``, its LF
#: excluded); one document of a file of documents (whitespace around it and between the markup,
#: a declaration after leading whitespace too: the file's reader strips it); a request body (one
#: document as lxml gets it: whitespace before the root only without a declaration).
MODE_LOG, MODE_DOCUMENT, MODE_BODY = 0, 1, 2

_FIELDS = len(FIELD_TAGS)
_I_TIMESTAMP = FIELD_TAGS.index("TIMESTAMP")


def _literal(text: bytes) -> np.ndarray:
    return np.frombuffer(text, dtype=np.uint8).copy()


_TAG_BYTES = np.zeros((_FIELDS, max(map(len, FIELD_TAGS))), dtype=np.uint8)
_TAG_LENGTHS = np.array([len(tag) for tag in FIELD_TAGS], dtype=np.int64)
for _index, _tag in enumerate(FIELD_TAGS):
    _TAG_BYTES[_index, : len(_tag)] = _literal(_tag.encode())
_ROOT = _literal(b"<POSTBACK")
_ROOT_ATTRS = _literal(b" " + XSI_ATTRIBUTE.encode() + b'"')
_ROOT_END = _literal(b"</POSTBACK>")
_DECL_HEAD = _literal(b"<?xml version=")
_VERSION, _ENCODING, _STANDALONE = _literal(b"1.0"), _literal(b" encoding="), _literal(b" standalone=")
_YES, _NO = _literal(b"yes"), _literal(b"no")
# the ASCII bytes element text and attribute values may hold: printable, but not < > & \ (nor " in a value)
_TEXT_PLAIN = TEXT_PLAIN
_ATTRIBUTE_PLAIN = TEXT_PLAIN.copy()
_ATTRIBUTE_PLAIN[0x22] = False



@_jit(cache=True)
def _has(data, at, end, literal):
    """Whether ``literal`` is at ``at`` (and ends before ``end``)."""
    if at + len(literal) > end:
        return False
    for k in range(len(literal)):
        if data[at + k] != literal[k]:
            return False
    return True


@_jit(cache=True)
def _same(data, at, tags, tag, size):
    """Whether the ``size`` bytes at ``at`` (known to be in the line) spell field ``tag``'s name.

    :func:`_has` on ``tags[tag, :size]`` would do, but numba makes (and
    reference-counts) a view per call: this is the inner loop of every field."""
    for k in range(size):
        if data[at + k] != tags[tag, k]:
            return False
    return True


@_jit(cache=True)
def _text_end(data, at, end, stop, plain):
    """Where the text from ``at`` ends (at the byte ``stop``), or -1 if it holds a
    character the grammar excludes, is not valid UTF-8, or reaches ``end``.
    ``plain`` marks the ASCII bytes text may hold (``stop`` is not one)."""
    while at < end:
        byte = data[at]
        if plain[byte]:
            at += 1
            continue
        if byte == stop:
            return at
        if byte < 0x80:
            return -1
        # UTF-8: the shortest form only, no surrogates, nothing past U+10FFFF
        if 0xC2 <= byte <= 0xDF:
            size, code = 2, byte & 0x1F
        elif 0xE0 <= byte <= 0xEF:
            size, code = 3, byte & 0x0F
        elif 0xF0 <= byte <= 0xF4:
            size, code = 4, byte & 0x07
        else:
            return -1
        if at + size > end:
            return -1
        for k in range(1, size):
            follow = data[at + k]
            if follow & 0xC0 != 0x80:
                return -1
            code = (code << 6) | (follow & 0x3F)
        if (size == 3 and (code < 0x800 or 0xD800 <= code <= 0xDFFF)) or (size == 4 and not 0x10000 <= code <= 0x10FFFF):
            return -1
        if code <= 0x9F or 0xFFFD <= code <= 0xFFFF:  # C1 controls, U+FFFD..U+FFFF
            return -1
        at += size
    return -1


@_jit(cache=True)
def _quoted(data, at, end, value):
    """Past ``"value"`` or ``'value'`` at ``at``, else -1."""
    close = at + 1 + len(value)
    if close >= end or (data[at] != 0x22 and data[at] != 0x27) or data[close] != data[at]:
        return -1
    return close + 1 if _has(data, at + 1, end, value) else -1


@_jit(cache=True)
def _declaration(data, at, end, head, version, encoding, standalone, yes, no):
    """Past a declaration the grammar allows at ``at`` (``<?xml version=`` matched), else -1."""
    at = _quoted(data, at + len(head), end, version)
    if at < 0:
        return -1
    if _has(data, at, end, encoding):
        at += len(encoding)
        if at + 7 > end or (data[at] != 0x22 and data[at] != 0x27) or data[at + 6] != data[at]:
            return -1
        if (data[at + 1] | 0x20) != 0x75 or (data[at + 2] | 0x20) != 0x74 or (data[at + 3] | 0x20) != 0x66:  # utf
            return -1
        if data[at + 4] != 0x2D or data[at + 5] != 0x38:  # -8
            return -1
        at += 7
    if _has(data, at, end, standalone):
        at += len(standalone)
        at = max(_quoted(data, at, end, yes), _quoted(data, at, end, no))
        if at < 0:
            return -1
    if at < end and data[at] == 0x20:
        at += 1
    if at + 2 > end or data[at] != 0x3F or data[at + 1] != 0x3E:  # ?>
        return -1
    return at + 2


@_jit(cache=True)
def _escaped_newline(data, at, end):
    """Past the escaped newline lxml writes after the declaration in a log line (\\n or \\r\\n), if there."""
    if at + 2 <= end and data[at] == 0x5C and data[at + 1] == 0x6E:
        return at + 2
    if at + 4 <= end and data[at] == 0x5C and data[at + 1] == 0x72 and data[at + 2] == 0x5C and data[at + 3] == 0x6E:
        return at + 4
    return at


@_jit(cache=True)
def _space(data, at, end):
    """Past XML whitespace (space, TAB, LF, CR) at ``at``."""
    while at < end and (data[at] == 0x20 or data[at] == 0x0A or data[at] == 0x09 or data[at] == 0x0D):
        at += 1
    return at


@_jit(cache=True)
def _digits(data, at, count):
    """The number the ``count`` bytes at ``at`` spell, or -1 if one is not a digit."""
    value = 0
    for k in range(count):
        digit = data[at + k] - 0x30
        if digit < 0 or digit > 9:
            return -1
        value = value * 10 + digit
    return value


@_jit(cache=True)
def _civil(data, at):
    """``YYYY-MM-DDTHH:MM:SS`` at ``at`` read as UTC: µs since the epoch, whether the
    bytes have that shape, and whether it is a possible date and time (not month
    13, 31 April, 24 h or second 60 — as Arrow's ISO-8601 cast, the general
    parser, decides)."""
    if data[at + 4] != 0x2D or data[at + 7] != 0x2D or data[at + 10] != 0x54 or data[at + 13] != 0x3A or data[at + 16] != 0x3A:
        return 0, False, False
    year, month, day = _digits(data, at, 4), _digits(data, at + 5, 2), _digits(data, at + 8, 2)
    hour, minute, second = _digits(data, at + 11, 2), _digits(data, at + 14, 2), _digits(data, at + 17, 2)
    if min(year, month, day, hour, minute, second) < 0:  # not all digits
        return 0, False, False
    if not 1 <= month <= 12 or day < 1 or hour > 23 or minute > 59 or second > 59:
        return 0, True, False
    if month == 2:
        longest = 29 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 28
    else:
        longest = 30 if month == 4 or month == 6 or month == 9 or month == 11 else 31
    if day > longest:
        return 0, True, False
    # days from the civil date (proleptic Gregorian; H. Hinnant's algorithm)
    shifted = year - 1 if month <= 2 else year
    era = shifted // 400
    year_of_era = shifted - era * 400
    day_of_year = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    days = era * 146097 + day_of_era - 719468
    return ((days * 24 + hour) * 60 + minute) * 60_000_000 + second * 1_000_000, True, True


@_jit(cache=True)
def _notification_stamp(data, start, stop):
    """A TIMESTAMP text's µs in its common shapes, its kind and its offset (minutes).

    ``Z``, ``±HH`` and ``±HH:MM`` are read (:data:`STAMP_READ`, µs in UTC);
    no offset at all is read as if UTC and marked :data:`STAMP_NAIVE` (the
    assembly gives it an offset); others go to the general parser (:data:`STAMP_OTHER`).
    """
    length = stop - start
    if length != 19 and length != 20 and length != 22 and length != 25:
        return 0, STAMP_OTHER, 0
    micros, shaped, possible = _civil(data, start)
    if not (shaped and possible):
        return 0, STAMP_OTHER, 0
    if length == 20:
        return micros, (STAMP_READ if data[start + 19] == 0x5A else STAMP_OTHER), 0
    if length == 19:
        return micros, STAMP_NAIVE, 0
    sign = data[start + 19]
    hours = _digits(data, start + 20, 2)
    minutes = 0
    if length == 25:
        if data[start + 22] != 0x3A:
            return 0, STAMP_OTHER, 0
        minutes = _digits(data, start + 23, 2)
    if (sign != 0x2B and sign != 0x2D) or not 0 <= hours <= 23 or not 0 <= minutes <= 59:
        return 0, STAMP_OTHER, 0
    offset = hours * 60 + minutes
    if sign == 0x2B:
        return micros - offset * 60_000_000, STAMP_READ, offset
    return micros + offset * 60_000_000, STAMP_READ, -offset


@_jit(cache=True, nogil=True)
def _scan(
    data, starts, ends, mode, tags, tag_lengths, root, root_attrs, root_end, head, version, encoding, standalone, yes,
    no, text_plain, attribute_plain,
):
    """Prove each record; for proven records, the text bounds and both timestamps.

    Record ``i`` is ``data[starts[i]:ends[i]]`` (a log line without its LF),
    read as ``mode`` says (:data:`MODE_LOG`, :data:`MODE_DOCUMENT`,
    :data:`MODE_BODY`). Returns ``proven`` (per record), ``bounds`` (per
    proven row, 26 offsets: start and end of each field's space-trimmed text,
    an absent field empty at the previous end, so the offsets never
    decrease), ``received`` (µs) and ``received_ok`` (a possible time; never
    outside logs), ``stamp`` (µs), ``stamp_kind`` and ``stamp_offset``
    (minutes, :data:`NO_OFFSET` unless read with one).
    """
    lines = len(starts)
    fields = len(tag_lengths)
    spaced = mode != MODE_LOG
    proven = np.zeros(lines, dtype=np.bool_)
    bounds = np.empty((lines, 2 * fields), dtype=np.int64)
    received = np.zeros(lines, dtype=np.int64)
    received_ok = np.zeros(lines, dtype=np.bool_)
    stamp = np.zeros(lines, dtype=np.int64)
    stamp_kind = np.zeros(lines, dtype=np.int8)
    stamp_offset = np.full(lines, NO_OFFSET, dtype=np.int16)
    rows = 0
    for line in range(lines):
        begin, end = starts[line], ends[line]
        micros, fraction, possible = 0, 0, False
        if mode == MODE_LOG:
            # received_at<TAB>remote<TAB>
            if end - begin < 29 or data[begin + 19] != 0x2E or data[begin + 26] != 0x5A or data[begin + 27] != 0x09:
                continue
            micros, shaped, possible = _civil(data, begin)
            fraction = _digits(data, begin + 20, 6)
            if not shaped or fraction < 0:
                continue
            at = begin + 28
            while at < end and data[at] != 0x09:
                if data[at] == 0x3C or data[at] == 0x3E:
                    break
                at += 1
            if at >= end or data[at] != 0x09:
                continue
            at += 1
        else:
            at = _space(data, begin, end)
        # the document
        if _has(data, at, end, head):
            if mode == MODE_BODY and at != begin:  # lxml: nothing may precede the declaration
                continue
            at = _declaration(data, at, end, head, version, encoding, standalone, yes, no)
            if at < 0:
                continue
            at = _space(data, at, end) if spaced else _escaped_newline(data, at, end)
        if not _has(data, at, end, root):
            continue
        at += len(root)
        if _has(data, at, end, root_attrs):
            value = at + len(root_attrs)
            at = _text_end(data, value, end, 0x22, attribute_plain)
            if at <= value:  # at least one character
                continue
            at += 1
        if at >= end or data[at] != 0x3E:
            continue
        at += 1
        if spaced:
            at = _space(data, at, end)
        previous = at
        tag = 0
        good = True
        while True:
            if at + 1 >= end or data[at] != 0x3C:
                good = False
                break
            if data[at + 1] == 0x2F:  # the root's end tag, checked below
                break
            while tag < fields:
                size = tag_lengths[tag]
                if at + 1 + size < end and data[at + 1 + size] == 0x3E and _same(data, at + 1, tags, tag, size):
                    break
                bounds[rows, 2 * tag] = previous
                bounds[rows, 2 * tag + 1] = previous
                tag += 1
            if tag == fields:
                good = False
                break
            size = tag_lengths[tag]
            text = at + size + 2
            close = _text_end(data, text, end, 0x3C, text_plain)
            if close < 0 or close + size + 3 > end or data[close + 1] != 0x2F or data[close + size + 2] != 0x3E:
                good = False
                break
            if not _same(data, close + 2, tags, tag, size):
                good = False
                break
            first, last = text, close
            while first < last and data[first] == 0x20:
                first += 1
            while last > first and data[last - 1] == 0x20:
                last -= 1
            bounds[rows, 2 * tag] = first
            bounds[rows, 2 * tag + 1] = last
            previous = last
            at = close + size + 3
            if spaced:
                at = _space(data, at, end)
            tag += 1
        if not good or not _has(data, at, end, root_end):
            continue
        at += len(root_end)
        if spaced:
            at = _space(data, at, end)
        if at != end:
            continue
        for rest in range(tag, fields):
            bounds[rows, 2 * rest] = previous
            bounds[rows, 2 * rest + 1] = previous
        proven[line] = True
        received[rows] = micros + fraction
        received_ok[rows] = possible
        first, last = bounds[rows, 2 * _I_TIMESTAMP], bounds[rows, 2 * _I_TIMESTAMP + 1]
        if last > first:
            value, kind, offset = _notification_stamp(data, first, last)
            stamp[rows] = value
            stamp_kind[rows] = kind
            if kind == STAMP_READ:
                stamp_offset[rows] = offset
        rows += 1
    return (
        proven, bounds[:rows], received[:rows], received_ok[:rows], stamp[:rows], stamp_kind[:rows],
        stamp_offset[:rows],
    )


@dataclass(frozen=True, slots=True)
class LogScan:
    """What :func:`scan_log_buffer` found in a buffer of whole log lines.

    Attributes
    ----------
    line_starts, line_ends : numpy.ndarray
        int64 offsets of each line and of its LF.
    proven : numpy.ndarray
        bool per line: the line has the grammar's shape; its fields are in ``table``.
    table : pyarrow.Table
        :data:`BATCH_SCHEMA` columns of the proven lines, in line order; empty
        texts are null; ``received`` and ``TIMESTAMP`` are null (read below).
    received_at : pyarrow.TimestampArray
        The lines' received times (null where not a possible time).
    timestamp : pyarrow.TimestampArray
        TIMESTAMP where it had a common shape (:data:`STAMP_READ`, or
        :data:`STAMP_NAIVE`: no offset, read as if UTC), else null.
    timestamp_naive : numpy.ndarray
        bool per row: TIMESTAMP had no offset.
    timestamp_offset : numpy.ndarray
        int16 minutes of each read TIMESTAMP's offset, :data:`NO_OFFSET` otherwise.
    other_stamps : numpy.ndarray
        Rows whose TIMESTAMP has another shape or is impossible, for the
        general parser.
    other_stamp_texts : pyarrow.StringArray
        Their texts.
    """

    line_starts: np.ndarray
    line_ends: np.ndarray
    proven: np.ndarray
    table: pa.Table
    received_at: pa.Array
    timestamp: pa.Array
    timestamp_naive: np.ndarray
    timestamp_offset: np.ndarray
    other_stamps: np.ndarray
    other_stamp_texts: pa.Array


_KERNEL_TABLES = (
    _TAG_BYTES, _TAG_LENGTHS, _ROOT, _ROOT_ATTRS, _ROOT_END, _DECL_HEAD, _VERSION, _ENCODING, _STANDALONE, _YES, _NO,
    _TEXT_PLAIN, _ATTRIBUTE_PLAIN,
)


# The order the sandbox wrote until 2026 (STATUS before SENTAS, :data:`.grammar.OLD_ORDER`): the two
# adjacent elements are swapped back in a copy of the buffer before the proof. The swap keeps every
# length, so every offset and line end still holds; the swapped record is well-formed exactly when
# the original is (two whole elements with no markup inside trade places) and holds the same fields.
_OLD_PAIR = re.compile(rb"(<STATUS>[^<\n]*</STATUS>)([ \t\r\n]*)(<SENTAS>[^<\n]*</SENTAS>)")


def documented_order(buffer):
    """``buffer`` with each ``<STATUS>…</STATUS><SENTAS>…</SENTAS>`` pair in the documented order (same length).

    Old logs reach the compiled proof instead of the general path; a buffer
    without such a pair is returned as it is (no copy).
    """
    if _OLD_PAIR.search(buffer) is None:
        return buffer
    return _OLD_PAIR.sub(rb"\3\2\1", bytes(buffer))  # bytes: re's templates cannot join memoryviews


def scan_log_buffer(buffer) -> LogScan:
    """Prove the lines of ``buffer`` (bytes-like, whole LF-terminated lines) and cut their fields.

    :func:`scan_records` with each line a record (:data:`MODE_LOG`).
    """
    data = np.frombuffer(buffer, dtype=np.uint8)
    line_ends = np.flatnonzero(data == 10)
    line_starts = np.zeros(len(line_ends), dtype=np.int64)
    line_starts[1:] = line_ends[:-1] + 1
    return scan_records(buffer, line_starts, line_ends, MODE_LOG)


def scan_records(buffer, starts: np.ndarray, ends: np.ndarray, mode: int, engine: str | None = None) -> LogScan:
    """Prove the records ``buffer[starts[i]:ends[i]]`` and cut their fields.

    One compiled pass (:func:`_scan`; :func:`.vectorscan.scan` on the pure
    path) proves the records and finds the text bounds; the bounds,
    interleaved with the markup between texts, are the offsets of one
    zero-copy Arrow string array over the buffer, and a ``take`` per field
    copies its texts out into the field's column. ``line_starts`` and
    ``line_ends`` of the result are ``starts`` and ``ends``. ``engine``
    (default :data:`ENGINE`) may force ``"numpy"`` where numba is loaded (the
    tests compare the two paths). Records in the old element order are
    proven too: when an unproven record holds the old pair, the buffer is
    proven again after :func:`documented_order` (the caller's buffer is not
    changed).
    """
    starts = np.asarray(starts, dtype=np.int64)
    ends = np.asarray(ends, dtype=np.int64)
    compiled = _numba is not None and (engine or ENGINE) == "numba"

    def prove(data):
        if compiled:
            return _scan(data, starts, ends, mode, *_KERNEL_TABLES)
        return vectorscan.scan(data, starts, ends, mode)

    data = np.frombuffer(buffer, dtype=np.uint8)
    scanned = prove(data)
    # Only where a record was not proven can the old element order be why: looked for there (no
    # cost on documented-order logs), then the buffer is swapped back and proven once more.
    if any(_OLD_PAIR.search(buffer, int(starts[i]), int(ends[i])) for i in np.flatnonzero(~scanned[0]).tolist()):
        buffer = documented_order(buffer)
        data = np.frombuffer(buffer, dtype=np.uint8)
        scanned = prove(data)
    proven, bounds, received, received_ok, stamp, stamp_kind, stamp_offset = scanned
    rows = len(received)
    small = len(data) < 2**31 - 1  # int32 offsets: Arrow's plain string type
    offsets = np.empty(2 * _FIELDS * rows + 1, dtype=np.int32 if small else np.int64)
    offsets[:-1] = bounds.reshape(-1)
    offsets[-1] = offsets[-2] if rows else 0
    del bounds
    # string 2k is a field's text, string 2k+1 the markup up to the next text
    texts = pa.Array.from_buffers(
        pa.string() if small else pa.large_string(),
        len(offsets) - 1,
        [pa.py_buffer(np.packbits(offsets[1:] > offsets[:-1], bitorder="little")), pa.py_buffer(offsets), pa.py_buffer(buffer)],
    )
    first = np.arange(0, len(offsets) - 1, 2 * _FIELDS, dtype=np.int64)
    memory = pool()
    columns = {RECEIVED: pa.nulls(rows, pa.string())}
    for index, name in enumerate(FIELD_TAGS):
        if index == _I_TIMESTAMP:
            columns[name] = pa.nulls(rows, pa.string())  # read positionally
            continue
        values = pc.take(texts, pa.array(first + 2 * index), memory_pool=memory)
        columns[name] = values if small else pc.cast(values, pa.string(), memory_pool=memory)
    other = np.flatnonzero(stamp_kind == STAMP_OTHER)
    other_texts = pc.take(texts, pa.array(first[other] + 2 * _I_TIMESTAMP), memory_pool=memory)
    return LogScan(
        line_starts=starts,
        line_ends=ends,
        proven=proven,
        table=pa.table(columns, schema=BATCH_SCHEMA),
        received_at=pa.array(received, type=pa.int64(), mask=~received_ok).cast(TS_TYPE),
        timestamp=pa.array(stamp, type=pa.int64(), mask=(stamp_kind != STAMP_READ) & (stamp_kind != STAMP_NAIVE)).cast(
            TS_TYPE
        ),
        timestamp_naive=stamp_kind == STAMP_NAIVE,
        timestamp_offset=stamp_offset,
        other_stamps=other,
        other_stamp_texts=other_texts if small else pc.cast(other_texts, pa.string(), memory_pool=memory),
    )


# --- files of documents: where each starts (where each ends: vectorscan.document_ends) ----------
@_jit(cache=True, nogil=True)
def _first_markup(data, starts, ends):
    out = np.empty(len(starts), dtype=np.int64)
    for record in range(len(starts)):
        out[record] = _space(data, starts[record], ends[record])
    return out


def first_markup(data: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Where each record's first non-whitespace byte is (its end if none): a document's first line."""
    if _numba is None:
        return vectorscan.first_markup(data, starts, ends)
    return _first_markup(data, starts.astype(np.int64), ends.astype(np.int64))


# --- form lines: percent-decoding ------------------------------------------------------------------
# What each byte of a value decodes to: itself (printable ASCII), a space (+), _ESCAPE (%) or
# _REFUSED (outside printable ASCII, and &: a second field); and each pair of bytes after a "%",
# indexed high << 8 | low: the byte they spell, or -1. One look-up per byte and one per escape.
_ESCAPE, _REFUSED = -2, -1
_PLAIN = np.arange(256, dtype=np.int16)
_PLAIN[:0x21] = _PLAIN[0x7F:] = _PLAIN[0x26] = _REFUSED
_PLAIN[0x2B], _PLAIN[0x25] = 0x20, _ESCAPE
_HIGH, _LOW = vectorscan.HEX_VALUES[:, None], vectorscan.HEX_VALUES[None, :]
_PAIRS = np.where((_HIGH >= 0) & (_LOW >= 0), _HIGH * 16 + _LOW, -1).astype(np.int16).reshape(-1)


@_jit(cache=True, nogil=True)
def _decode_forms(data, value, stop, candidate, plain, pairs):
    out = np.empty(len(data), dtype=np.uint8)
    first = np.zeros(len(value), dtype=np.int64)
    last = np.zeros(len(value), dtype=np.int64)
    decoded = np.zeros(len(value), dtype=np.bool_)
    size = 0
    for line in range(len(value)):
        if not candidate[line]:
            continue
        mark, at, end, good = size, value[line], stop[line], True
        while at < end:
            byte = plain[data[at]]
            if byte >= 0:
                out[size] = byte
                at += 1
            elif byte == _ESCAPE and at + 2 < end:
                byte = pairs[(np.int64(data[at + 1]) << 8) | data[at + 2]]
                if byte < 0:
                    good = False
                    break
                out[size] = byte
                at += 3
            else:  # a refused byte, or an escape cut by the line's end
                good = False
                break
            size += 1
        if good:
            first[line], last[line], decoded[line] = mark, size, True
        else:
            size = mark
    return out[:size], first, last, decoded


def decode_forms(data: np.ndarray, value: np.ndarray, stop: np.ndarray, candidate: np.ndarray):
    """Percent-decode the form values ``data[value[i]:stop[i]]`` of the ``candidate`` lines.

    Returns ``(documents, first, last, decoded)``: line ``i``'s document is
    ``documents[first[i]:last[i]]`` where ``decoded[i]`` — its value was
    printable ASCII but ``&`` (one field) with complete escapes. ``+`` is a
    space and ``%XX`` the byte XX, as :func:`urllib.parse.parse_qsl` decodes.
    """
    if _numba is None or not len(value):
        return vectorscan.decode_forms(data, value, stop, candidate)
    return _decode_forms(data, value.astype(np.int64), stop.astype(np.int64), candidate, _PLAIN, _PAIRS)


# --- tracking-id fingerprints for the dedupe -------------------------------------------------------
@_jit(cache=True, nogil=True)
def _fingerprints(offsets, data, valid):
    out = np.zeros(len(offsets) - 1, dtype=np.uint64)
    for row in range(len(out)):
        if not valid[row]:
            continue
        start, stop = offsets[row], offsets[row + 1]
        value = np.uint64(0xCBF29CE484222325) ^ np.uint64(stop - start)
        for at in range(start, stop):  # FNV-1a
            value = (value ^ np.uint64(data[at])) * np.uint64(0x100000001B3)
        value ^= value >> np.uint64(33)
        value *= np.uint64(0xFF51AFD7ED558CCD)
        value ^= value >> np.uint64(33)
        out[row] = value | np.uint64(1)  # never 0: that is null
    return out


def string_fingerprints(values: pa.Array) -> np.ndarray:
    """A 64-bit fingerprint of each string (0 for null, odd otherwise).

    Equal strings give equal fingerprints; different strings almost always
    differ, so a caller that must be exact compares the strings whose
    fingerprints collide. Used by the dedupe: hashing a million tracking ids
    in one Arrow table costs ~5x what this costs per buffer, while the buffer
    is still in cache.
    """
    count = len(values)
    if count == 0:
        return np.zeros(0, dtype=np.uint64)
    offset_type = np.int64 if values.type == pa.large_string() else np.int32
    _, offsets_buffer, data_buffer = values.buffers()
    offsets = np.frombuffer(offsets_buffer, dtype=offset_type, count=count + 1, offset=values.offset * np.dtype(offset_type).itemsize)
    data = np.frombuffer(data_buffer, dtype=np.uint8) if data_buffer is not None else np.zeros(0, dtype=np.uint8)
    valid = np.asarray(values.is_valid().to_numpy(zero_copy_only=False), dtype=np.bool_)
    if _numba is None:
        return vectorscan.fingerprints(offsets, data, valid)
    return _fingerprints(offsets, data, valid)


def load_kernels() -> None:
    """Load (the first time after install: compile) the compiled kernels now.

    numba does it on first use anyway; this moves the fixed cost (~0.5 s
    from its on-disk cache) to a moment of the caller's choosing.
    """
    scan_log_buffer(b"2026-03-02T14:00:00.000000Z\t-\t<POSTBACK></POSTBACK>\n")
    for mode in (MODE_DOCUMENT, MODE_BODY):
        scan_records(b"<POSTBACK></POSTBACK>", np.zeros(1, np.int64), np.full(1, 21, np.int64), mode)
    first_markup(np.frombuffer(b" <", dtype=np.uint8), np.zeros(1, dtype=np.int64), np.full(1, 2, dtype=np.int64))
    one = np.ones(1, dtype=np.int64)
    decode_forms(np.frombuffer(b"xml=%3C", dtype=np.uint8), one * 4, one * 7, np.ones(1, dtype=bool))
    string_fingerprints(pa.array(["x"], pa.string()))
