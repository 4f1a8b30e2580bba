"""The pure path of the kernel: the same proof and cut, vectorised (numpy, Arrow's RE2).

Where numba is not installed (it is the optional ``fast`` extra) or
``SKYCORE_LAB_PURE=1`` is set, :func:`.kernel.scan_records` calls
:func:`scan` instead of the compiled kernel. It returns the same arrays:

1. **Proof, by skeletons.** RE2 is slow per byte (tens of MB/s here), so it
   is not run on every record but on the few distinct *skeletons*: a
   record's skeleton is the record with the text of each field element
   removed where that text is *plain* (only bytes of :data:`PLAIN`:
   printable ASCII but ``<``, ``>``, ``&``, backslash). The skeletons are
   dictionary-encoded (Arrow hashes them and compares equal ones byte for
   byte) and RE2 matches each distinct one against the grammar over bytes
   (:func:`.grammar.record_pattern_bytes`); a record is proven when its
   skeleton is. A log line's prefix ``received_at<TAB>remote<TAB>`` is
   checked positionally instead (it differs per line) and a fixed valid
   prefix stands in for it before RE2.

   *Why a record is proven exactly when its skeleton is (the lemma).* In the
   grammar ``<`` occurs only as the first byte of markup — ``<?xml``,
   ``<POSTBACK``, a field's ``<TAG>`` or an end tag ``</…>`` — never in text,
   an attribute value, the remote or whitespace. Take a ``<`` at ``p`` whose
   next two bytes begin a field's name (so it cannot be ``<?``, ``</`` or
   ``<PO…``), the first ``>`` after it at ``q``, and the first ``<`` after
   ``q`` at ``p'``, with only plain bytes between ``q`` and ``p'`` (a run
   ``R``) and ``p < q < p'`` in the same record. In *any* match of the record
   (or of the record with ``R`` removed: the bytes up to ``q`` are the same)
   the ``<`` at ``p`` can only be matched by a field's ``<TAG>``, which must
   end at the first ``>``, i.e. at ``q``; the text expression that follows
   cannot hold ``<`` and is followed by ``</TAG>``, so it matches exactly the
   bytes up to ``p'``: ``R`` in the record, nothing once ``R`` is removed.
   Regular expressions compose, so a match stays a match when the part one
   sub-expression matched is replaced by another string that sub-expression
   matches; the text expression matches the empty string and every string of
   plain bytes (plain bytes are its single-byte class). So the record
   matches exactly when it matches with ``R`` removed; if the ``<`` at ``p``
   is not a field's start tag after all, neither matches. The removals are
   disjoint and leave each other's ``<``, ``>`` and ``<`` in place, so they
   are made one after another, which gives the skeleton. Text *between*
   elements is never removed (the last ``<`` before it opens an end tag, the
   root's start tag or the declaration, not a field's start tag), nor text
   that holds any byte but plain ones. ``tests/test_postbacks_skeleton.py`` checks the lemma
   with hypothesis against RE2 on whole records, hostile texts included.
   RE2's verdicts are kept per distinct skeleton across buffers (a file's
   buffers share their few skeletons), so RE2 mostly runs on the first.
2. **Cut**: the removed texts *are* the fields of a proven record (each
   non-empty one lies after a field's start tag, told by its first two
   letters and length), so they are cut where the skeletons are made. A
   proven record whose skeleton still holds non-ASCII text is cut from its
   marks: in it ``<`` and ``>`` alternate, each ``<`` opening a tag whose
   ``>`` is the next mark, and a field's text runs from its start tag's ``>``
   to the next ``<``. Both come from one pass over the buffer that lists
   every non-plain byte (:func:`non_plain`), and each record's share of it
   from the records' ranges, found block by block (no search per mark).
3. **Times**: ``received_at`` is read positionally (its shape is proven),
   and TIMESTAMP in its common shapes exactly as the kernel's
   ``_notification_stamp`` reads it (:func:`notification_stamps`); other
   shapes are left to the general parser (:mod:`.timestamps`).

Records must be in order and disjoint (``starts[i + 1] >= ends[i]``), as
every caller cuts them. Form lines are percent-decoded by :func:`decode_forms`
(quoted-printable decoding at C speed where the buffer allows it). Large
temporaries are avoided on purpose (a byte pass in blocks with reused
scratch arrays, int32 offsets): freed buffer-sized arrays made glibc return
memory and fault it in again on every buffer. Slower than the kernel (more passes over the
buffer), the same results: ``tests/test_postbacks_formats_fast.py`` checks
the two agree record by record, ``tests/test_postbacks_engines.py`` that
they read the same frames, and ``tests/test_postbacks_proof.py`` (run with
``SKYCORE_LAB_PURE=1`` in CI) that this path proves exactly the log lines
the grammar's RE2 matches.
"""

from __future__ import annotations

import binascii

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .grammar import TEXT_PLAIN, record_pattern_bytes
from .schema import FIELD_TAGS
from .timestamps import NO_OFFSET, STAMP_NAIVE, STAMP_OTHER, STAMP_READ

__all__ = ["PATTERNS", "PLAIN", "HEX_VALUES", "scan", "skeletons", "notification_stamps", "fingerprints"]

_FIELDS = len(FIELD_TAGS)
_I_TIMESTAMP = FIELD_TAGS.index("TIMESTAMP")
#: The grammar per record mode (:data:`.kernel.MODE_LOG`, ``MODE_DOCUMENT``, ``MODE_BODY``: 0, 1, 2).
PATTERNS = (record_pattern_bytes("log"), record_pattern_bytes("document"), record_pattern_bytes("body"))
# a start tag's field from (first byte, second byte, name length); -1: not a field's start tag
_TAG_ID = np.full((256, 256, 16), -1, dtype=np.int8)
for _index, _tag in enumerate(FIELD_TAGS):
    _TAG_ID[ord(_tag[0]), ord(_tag[1]), len(_tag)] = _index
# The lemma needs a "<" that _TAG_ID takes for a field's to be matchable only as a field's start
# tag: not "<?xml", "</..." nor "<POSTBACK". Field names are letters; only "PO" could clash.
if not all(_tag[:2].isalpha() and _tag[:2] != "PO" for _tag in FIELD_TAGS):
    raise ImportError("a field name clashes with the skeleton proof's markup (see the module docstring)")
#: Plain bytes (:data:`.grammar.TEXT_PLAIN`): printable ASCII but ``<``, ``>``, ``&`` and backslash;
#: every string of them is element text to the grammar.
PLAIN = TEXT_PLAIN
#: A prefix the log grammar accepts, put before each distinct log skeleton for RE2.
_LOG_PREFIX = b"2000-01-01T00:00:00.000000Z\t-\t"


_BLOCK = 1 << 19  # bytes per step of the byte pass: its scratch arrays stay in cache and are reused


def _mark_non_plain(piece: np.ndarray, shifted: np.ndarray, mask: np.ndarray, other: np.ndarray) -> None:
    """``mask``: the bytes of ``piece`` outside :data:`PLAIN` (five compares a byte)."""
    np.subtract(piece, np.uint8(0x20), out=shifted)  # wraps: C0 controls land above 0xDF
    np.greater(shifted, np.uint8(0x5E), out=mask)  # below 0x20 or above 0x7E
    np.equal(shifted, np.uint8(0x26 - 0x20), out=other)  # &
    mask |= other
    np.equal(shifted, np.uint8(0x5C - 0x20), out=other)  # backslash
    mask |= other
    np.bitwise_or(shifted, np.uint8(2), out=shifted)
    np.equal(shifted, np.uint8(0x3C - 0x20 | 2), out=other)  # < and > (0x3C, 0x3E)
    mask |= other


def _mark_outside_form(piece: np.ndarray, shifted: np.ndarray, mask: np.ndarray, other: np.ndarray) -> None:
    """``mask``: the bytes of ``piece`` a form value may not hold (outside 0x21..0x7E, and ``&``)."""
    np.subtract(piece, np.uint8(0x21), out=shifted)  # wraps: below 0x21 lands above 0xDE
    np.greater(shifted, np.uint8(0x7E - 0x21), out=mask)
    np.equal(shifted, np.uint8(0x26 - 0x21), out=other)  # &
    mask |= other


def _block_hits(data: np.ndarray, mark, queries: tuple[np.ndarray, ...] = ()) -> tuple[np.ndarray, ...]:
    """The offsets of the bytes ``mark`` marks, ascending (int32 below 2 GiB), then for each
    (ascending) array of ``queries`` how many of them precede each query offset.

    Block by block into reused scratch arrays: without a buffer-sized
    temporary per operation (fresh ones cost more in page faults than the
    compares). The counts are searched within each block's few offsets,
    which stay in cache (a search of the whole array is several times slower).
    """
    size = min(len(data), _BLOCK)
    shifted, mask, other = np.empty(size, np.uint8), np.empty(size, bool), np.empty(size, bool)
    found, before = [], 0
    offset = np.int32 if len(data) < 2**31 - 1 else np.int64  # half the memory of what follows from them
    counts = [np.empty(len(query), dtype=np.int64) for query in queries]
    for at in range(0, max(len(data), 1), _BLOCK):
        piece = data[at : at + _BLOCK]
        m = mask[: len(piece)]
        mark(piece, shifted[: len(piece)], m, other[: len(piece)])
        hits = np.flatnonzero(m).astype(offset)
        if at:
            hits += at
        last = at + _BLOCK if at + _BLOCK < len(data) else np.iinfo(np.int64).max  # the last block takes the rest
        for query, count in zip(queries, counts):
            lo, hi = np.searchsorted(query, at), np.searchsorted(query, last)
            count[lo:hi] = before + np.searchsorted(hits, query[lo:hi])
        found.append(hits)
        before += len(hits)
    return (np.concatenate(found), *counts)


def non_plain(data: np.ndarray, *queries: np.ndarray) -> tuple[np.ndarray, ...]:
    """The offsets of the bytes of ``data`` outside :data:`PLAIN`, ascending (int32 below 2 GiB),
    then for each (ascending) array of ``queries`` how many of them precede each query offset.

    Five compares per byte, as fast as a 256-entry lookup is slow (:func:`_block_hits`).
    """
    return _block_hits(data, _mark_non_plain, queries)


def _ranges(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The indices ``lo[i] <= k < hi[i]`` of every range, in order, and the range of each."""
    counts = np.maximum(hi - lo, 0)
    before = np.cumsum(counts) - counts
    which = np.repeat(np.arange(len(lo)), counts)
    return np.arange(int(counts.sum())) + (lo - before)[which], which


def _rows(data: np.ndarray, at: np.ndarray, width: int) -> np.ndarray:
    """The ``width`` bytes from each offset ``at`` as rows (past the buffer's end: its last bytes, never read)."""
    if len(data) < width:
        data = np.concatenate([data, np.zeros(width - len(data), np.uint8)])
    windows = np.lib.stride_tricks.sliding_window_view(data, width)
    return windows[np.minimum(at, len(data) - width)]


# a log line's prefix: the stamp's bytes as (lowest, span) — a digit is 0x30 + 0..9, the rest exact
_PREFIX_LOW = np.frombuffer(b"0000-00-00T00:00:00.000000Z\t", dtype=np.uint8)
_PREFIX_SPAN = np.where(_PREFIX_LOW == 0x30, 9, 0).astype(np.uint8)


def _log_bodies(data, starts, ends, pos, kind, lo):
    """Where each log line's document starts (offset, index in ``pos``), whether its prefix is
    ``STAMP<TAB>[^<TAB>LF<>]*<TAB>``, and the prefix's first 28 bytes per line.

    Positional: the stamp's 28 bytes (plain but the TAB at 27, so that TAB is
    the line's first non-plain byte, at ``lo``); the remote runs to the next
    TAB (it cannot hold one), which must be in the line and be preceded by no
    LF, ``<`` or ``>`` (all non-plain: ``pos``/``kind``). Mostly the remote is
    plain and that TAB is the next non-plain byte; the others are searched.
    """
    head = _rows(data, starts, len(_PREFIX_LOW))
    ok = ((head - _PREFIX_LOW) <= _PREFIX_SPAN).all(axis=1) & (ends - starts >= 29)
    after = np.minimum(lo + 1, len(pos) - 1) if len(pos) else lo
    second = pos[after] if len(pos) else ends
    plain_remote = ok & (lo + 1 < len(pos)) & (kind[after] == 0x09) & (second < ends) if len(pos) else ok & False
    body = np.where(plain_remote, after + 1, 0)
    others = np.flatnonzero(ok & ~plain_remote)
    if len(others):  # a remote with non-plain bytes (or none of the TAB): search
        tabs = pos[kind == 0x09]
        stops = pos[(kind == 0x0A) | (kind == 0x3C) | (kind == 0x3E)]
        begin = starts[others] + 28
        tab = np.append(tabs, len(data))[np.searchsorted(tabs, begin)]
        good = (tab < ends[others]) & (np.append(stops, len(data))[np.searchsorted(stops, begin)] > tab)
        ok[others] = good
        second = second.copy()
        second[others] = tab
        body[others] = np.searchsorted(pos, tab) + 1
    first = np.where(ok, second + 1, ends)
    return first, np.where(ok, body, 0), ok, head


_TAG_FLAT = _TAG_ID.reshape(-1)


def _field_of(data: np.ndarray, opens: np.ndarray, closes: np.ndarray) -> np.ndarray:
    """:data:`_TAG_ID` of the tags ``data[opens[i]:closes[i] + 1]`` (-1: not a field's start tag)."""
    top = len(data) - 1
    code = data[np.minimum(opens + 1, top)].astype(np.int32) << 12
    code |= data[np.minimum(opens + 2, top)].astype(np.int32) << 4
    code |= np.minimum(closes - opens - 1, 15).astype(np.int32)
    return _TAG_FLAT[code]


def skeletons(data, first, ends, pos, kind, lo, hi):
    """Each record's skeleton: ``data[first[i]:ends[i]]`` without its plain field texts.

    ``pos`` are the offsets of the non-plain bytes of ``data``
    (:func:`non_plain`), ``kind`` those bytes, ``lo``/``hi`` each record's
    range in ``pos``; records in order and disjoint. Returns ``(skeleton,
    removed)``: a binary array of one skeleton per record (the module
    docstring says which texts go and why that keeps the proof), and the
    removed texts as ``(record, field, start, stop)`` arrays, in order. Empty
    texts are not removed (nothing to remove).
    """
    count = len(first)
    # candidates: "<", ">", "<" as consecutive non-plain bytes (so all between is plain) with a
    # text between the last two, the first a field's start tag
    gap = pos[1:] - pos[:-1] > 1
    opening = kind == 0x3C
    j = np.flatnonzero(opening[:-2] & (kind[1:-1] == 0x3E) & gap[1:] & opening[2:])
    close = pos[j + 1]
    field = _field_of(data, pos[j], close)
    keep = field >= 0
    j, close, field = j[keep], close[keep], field[keep]
    # the removals of each record: those inside its range (no search per text)
    j_lo, j_hi = np.searchsorted(j, lo), np.searchsorted(j, hi - 2)
    per_record = np.maximum(j_hi - j_lo, 0)
    if per_record.sum() == len(j):  # every candidate in a record (no comment line, no gap holds one)
        record = np.repeat(np.arange(count), per_record)
    else:
        index, record = _ranges(j_lo, j_hi)
        j, close, field = j[index], close[index], field[index]
    start, stop = close + 1, pos[j + 2]
    done = np.cumsum(per_record) - per_record  # removals in the records before
    # offsets: each record's first byte, each removal's two ends, its end; the strings between them
    # alternate kept (even) and dropped (odd: the removals and the gaps between records)
    small = len(data) < 2**31 - 1
    offsets = np.empty(2 * (len(record) + count), dtype=np.int32 if small else np.int64)
    head = 2 * (done + np.arange(count))
    offsets[head] = first
    offsets[head + 2 * per_record + 1] = ends
    slot = 2 * (record + np.arange(len(record))) + 1
    offsets[slot] = start
    offsets[slot + 1] = stop
    binary = pa.binary() if small else pa.large_binary()
    pieces = pa.Array.from_buffers(binary, len(offsets) - 1, [None, pa.py_buffer(offsets), pa.py_buffer(data)])
    kept = pc.take(pieces, pa.array(np.arange(0, len(offsets) - 1, 2)))  # the kept bytes, packed
    kept_offsets = np.frombuffer(kept.buffers()[1], dtype=offsets.dtype, count=len(kept) + 1)
    bounds = np.empty(count + 1, dtype=offsets.dtype)
    bounds[:-1] = kept_offsets[head // 2]
    bounds[-1] = kept_offsets[-1]
    packed = kept.buffers()[2] if kept.buffers()[2] is not None else pa.py_buffer(b"")
    skeleton = pa.Array.from_buffers(binary, count, [None, pa.py_buffer(bounds), packed])
    return skeleton, (record, field, start, stop)


# RE2's verdicts on skeletons already seen, per mode: Arrow compiles the grammar on every call, and a
# file's buffers share their few skeletons. Bounded; a race between threads only computes one twice.
_VERDICTS: tuple[dict, dict, dict] = ({}, {}, {})
_VERDICTS_KEPT = 4096  # skeletons per mode
_VERDICT_BYTES = 2048  # longest skeleton kept


def _prove(skeleton: pa.Array, mode: int) -> tuple[np.ndarray, np.ndarray]:
    """RE2's verdict on each skeleton, matching only the distinct ones; and whether it holds a non-ASCII byte."""
    encoded = pc.dictionary_encode(skeleton)
    distinct = encoded.dictionary.to_pylist()
    known = _VERDICTS[mode]
    verdicts = [known.get(text) for text in distinct]
    unseen = [i for i, verdict in enumerate(verdicts) if verdict is None]
    if unseen:
        texts = [distinct[i] for i in unseen]
        if mode == 0:
            texts = [_LOG_PREFIX + text for text in texts]
        matched = pc.match_substring_regex(pa.array(texts, pa.binary()), PATTERNS[mode]).to_pylist()
        for i, match in zip(unseen, matched):
            verdicts[i] = (bool(match), not distinct[i].isascii())
            if len(known) < _VERDICTS_KEPT and len(distinct[i]) <= _VERDICT_BYTES:
                known[distinct[i]] = verdicts[i]
    table = np.array(verdicts, dtype=bool).reshape(-1, 2)
    indices = encoded.indices.to_numpy()
    return table[indices, 0], table[indices, 1]


def _trim_spaces(data: np.ndarray, first: np.ndarray, last: np.ndarray) -> None:
    """Move ``first``/``last`` past leading/trailing spaces, in place (work linear in the spaces)."""
    active = np.flatnonzero((first < last) & (data[np.minimum(first, len(data) - 1)] == 0x20))
    while len(active):
        first[active] += 1
        active = active[(first[active] < last[active]) & (data[np.minimum(first[active], len(data) - 1)] == 0x20)]
    active = np.flatnonzero((last > first) & (data[np.maximum(last - 1, 0)] == 0x20))
    while len(active):
        last[active] -= 1
        active = active[(last[active] > first[active]) & (data[np.maximum(last[active] - 1, 0)] == 0x20)]


def _marked_fields(data, pos, kind, lo, hi):
    """The fields of proven records by their marks: ``(record, field, start, stop)`` (text untrimmed).

    ``lo``/``hi``: each record's range in ``pos``. In a proven record ``<``
    and ``>`` alternate from a ``<``, so consecutive marks pair into tags; a
    field's text runs from its start tag's ``>`` to the next ``<``. For the
    records whose texts are not all plain (the others are cut from their
    removed texts).
    """
    index, record = _ranges(lo, hi)
    marked = (kind[index] == 0x3C) | (kind[index] == 0x3E)
    marks, record = pos[index[marked]], record[marked]
    opens, closes, record = marks[0::2], marks[1::2], record[0::2]
    field = _field_of(data, opens, closes)
    at = np.flatnonzero(field >= 0)  # start tags of fields; the next < is their end tag
    return record[at], field[at], closes[at] + 1, opens[at + 1]


def _digits(block: np.ndarray, column: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    """The numbers the ``count`` bytes from ``column`` of each row spell, and whether they are all digits."""
    value = np.zeros(len(block), dtype=np.int64)
    digits = np.ones(len(block), dtype=bool)
    for k in range(column, column + count):
        digit = block[:, k] - np.uint8(0x30)
        digits &= digit <= np.uint8(9)
        value = value * 10 + digit
    return value, digits


def _civil(block: np.ndarray):
    """The kernel's ``_civil`` per row of ``block`` (each row's bytes from the stamp on): µs of
    ``YYYY-MM-DDTHH:MM:SS`` read as UTC (0 unless possible), whether the bytes have that shape,
    whether it is a possible date and time."""
    shaped = (block[:, [4, 7, 10, 13, 16]] == np.array([0x2D, 0x2D, 0x54, 0x3A, 0x3A], np.uint8)).all(axis=1)
    parts = [_digits(block, column, size) for column, size in ((0, 4), (5, 2), (8, 2), (11, 2), (14, 2), (17, 2))]
    for _, digits in parts:
        shaped &= digits
    year, month, day, hour, minute, second = (value for value, _ in parts)
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    longest = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])[np.clip(month, 0, 12)] + (leap & (month == 2))
    possible = shaped & (month >= 1) & (month <= 12) & (day >= 1) & (day <= longest) & (hour <= 23) & (minute <= 59) & (second <= 59)
    # days from the civil date (proleptic Gregorian; H. Hinnant's algorithm), as the kernel
    shifted = np.where(month <= 2, year - 1, year)
    era = shifted // 400
    year_of_era = shifted - era * 400
    day_of_year = (153 * (month + np.where(month > 2, -3, 9)) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    days = era * 146097 + day_of_era - 719468
    micros = ((days * 24 + hour) * 60 + minute) * 60_000_000 + second * 1_000_000
    return np.where(possible, micros, 0), shaped, possible


def _received(head: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """µs since the epoch of each proven ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (rows of ``head``), and whether possible."""
    micros, _, possible = _civil(head)
    fraction, _ = _digits(head, 20, 6)
    return np.where(possible, micros + fraction, 0), possible


def notification_stamps(data: np.ndarray, first: np.ndarray, last: np.ndarray):
    """The kernel's ``_notification_stamp`` for each TIMESTAMP text ``data[first[i]:last[i]]``, vectorised.

    Returns ``(stamp, kind, offset)``: µs, the kernel's verdict (0 for an
    empty text; read, naive — no offset, read as if UTC — or other: left to
    the general parser) and the offset in minutes (:data:`.timestamps.NO_OFFSET`
    unless read with one). The same values as the kernel, the µs of an
    "other" 20-byte text included (tests compare the two).
    """
    count = len(first)
    length = last - first
    stamp = np.zeros(count, dtype=np.int64)
    kind = np.where(length > 0, np.int8(STAMP_OTHER), np.int8(0)).astype(np.int8)
    offset = np.full(count, NO_OFFSET, dtype=np.int16)
    rows = np.flatnonzero((length == 19) | (length == 20) | (length == 22) | (length == 25))
    if not len(rows):
        return stamp, kind, offset
    size = length[rows]
    # the text's first 25 bytes: past a shorter text's end they are markup its length never lets
    # count, and a proven TIMESTAMP is followed by at least its end tag and the root's (23 bytes)
    block = _rows(data, first[rows], 25)
    micros, shaped, possible = _civil(block)
    good = shaped & possible
    # 20 bytes: "Z" is read, anything else is other (the kernel keeps the µs even then); 19: naive
    kept = good & ((size == 19) | (size == 20))
    zulu = good & (size == 20) & (block[:, 19] == 0x5A)
    # 22 or 25 bytes: +HH or -HH, then :MM for 25
    sign = block[:, 19]
    hours, hours_ok = _digits(block, 20, 2)
    minutes, minutes_ok = _digits(block, 23, 2)
    minutes = np.where(size == 25, minutes, 0)
    zoned = good & (size >= 22) & ((sign == 0x2B) | (sign == 0x2D)) & hours_ok & (hours <= 23)
    zoned &= (size == 22) | ((block[:, 22] == 0x3A) & minutes_ok & (minutes <= 59))
    east = np.where(sign == 0x2B, 1, -1) * (hours * 60 + minutes)
    stamp[rows] = np.where(kept, micros, np.where(zoned, micros - east * 60_000_000, 0))
    kind[rows] = np.select(
        [zulu | zoned, good & (size == 19)], [np.int8(STAMP_READ), np.int8(STAMP_NAIVE)], np.int8(STAMP_OTHER)
    )
    offset[rows] = np.where(zulu, 0, np.where(zoned, east, NO_OFFSET))
    return stamp, kind, offset


def scan(data: np.ndarray, starts: np.ndarray, ends: np.ndarray, mode: int):
    """What the compiled kernel's ``_scan`` returns, computed with numpy and RE2.

    Records must be in order and disjoint.
    """
    count = len(starts)
    if count == 0:
        empty = np.zeros(0, dtype=np.int64)
        return (np.zeros(0, bool), np.zeros((0, 2 * _FIELDS), np.int64), empty, np.zeros(0, bool), empty,
                np.zeros(0, np.int8), np.zeros(0, np.int16))
    if np.any(starts[1:] < ends[:-1]) or np.any(ends < starts):
        raise ValueError("records must be in order and disjoint")
    # every byte a skeleton or a cut turns on is non-plain: markup, TAB, LF, escapes, non-ASCII
    pos, lo, hi = non_plain(data, starts, ends)
    kind = data[pos]
    if mode == 0:
        first, lo, prefixed, head = _log_bodies(data, starts, ends, pos, kind, lo)
        lo = np.where(prefixed, lo, hi)  # a refused prefix: an empty range, an empty skeleton
    else:
        first, prefixed = starts, np.ones(count, dtype=bool)
    skeleton, (record, field, start, stop) = skeletons(data, first, ends, pos, kind, lo, hi)
    proven, wide = _prove(skeleton, mode)
    proven &= prefixed
    rows = int(proven.sum())
    row_of = np.cumsum(proven) - 1
    # the fields: a proven record's removed texts are all its non-empty ones, unless it holds
    # non-ASCII (text that stayed in the skeleton): those few records are cut by their marks
    wide &= proven
    if rows < count or wide.any():
        chosen = (proven & ~wide)[record]
        record, field, start, stop = record[chosen], field[chosen], start[chosen], stop[chosen]
    if wide.any():
        few = np.flatnonzero(wide)
        more = _marked_fields(data, pos, kind, lo[few], hi[few])
        record, field, start, stop = (np.concatenate([a, b]) for a, b in zip(
            (record, field, start, stop), (few[more[0]], *more[1:])
        ))
    _trim_spaces(data, start, stop)
    bounds = np.full((rows, 2 * _FIELDS), -1, dtype=np.int64)
    flat = bounds.reshape(-1)
    at = (row_of[record] if rows < count else record) * (2 * _FIELDS) + 2 * field.astype(np.int64)
    flat[at] = start
    flat[at + 1] = stop
    # an absent field: empty, at the previous end (the offsets never decrease)
    np.maximum.accumulate(flat, out=flat)
    np.maximum(flat, 0, out=flat)
    if mode == 0:
        received, received_ok = _received(head[proven])
    else:
        received, received_ok = np.zeros(rows, np.int64), np.zeros(rows, bool)
    stamp, stamp_kind, stamp_offset = notification_stamps(
        data, bounds[:, 2 * _I_TIMESTAMP], bounds[:, 2 * _I_TIMESTAMP + 1]
    )
    return proven, bounds, received, received_ok, stamp, stamp_kind, stamp_offset


_SAMPLED = 16  # bytes of each end of a string that go into its fingerprint


def fingerprints(offsets: np.ndarray, data: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """A 64-bit fingerprint of each string from its length and first and last 16 bytes (0 for null).

    Equal strings give equal fingerprints, which is all the dedupe needs (it
    compares the strings whose fingerprints collide); bounded work per
    string. Each end is gathered as one row of 16 bytes (bytes outside the
    string zeroed) and mixed in as two 64-bit words.
    """
    start = offsets[:-1].astype(np.int64)
    length = offsets[1:].astype(np.int64) - start
    value = length.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    if len(data) and len(length):
        # the data between 16 zero bytes on each side, so that every window of 16 is whole
        padded = np.zeros(len(data) + 2 * _SAMPLED, dtype=np.uint8)
        padded[_SAMPLED : _SAMPLED + len(data)] = data
        windows = np.lib.stride_tricks.sliding_window_view(padded, _SAMPLED)
        column = np.arange(_SAMPLED)
        head = windows[start + _SAMPLED] * (column < length[:, None])  # the first 16 bytes (fewer: zeros)
        tail = windows[start + length] * (column >= _SAMPLED - length[:, None])  # the last 16
        words = np.concatenate([head, tail], axis=1).astype(np.uint8).view(np.uint64)
        prime = np.uint64(0x100000001B3)
        for k in range(words.shape[1]):
            value = (value ^ words[:, k]) * prime
            value ^= value >> np.uint64(29)
    value ^= value >> np.uint64(33)
    value *= np.uint64(0xFF51AFD7ED558CCD)
    value ^= value >> np.uint64(33)
    return np.where(valid, value | np.uint64(1), np.uint64(0))


#: Each byte's value as a hex digit, -1 for none (both paths' form decoding).
HEX_VALUES = np.full(256, -1, dtype=np.int16)
for _digit in b"0123456789":
    HEX_VALUES[_digit] = _digit - 0x30
for _digit in b"abcdef":
    HEX_VALUES[_digit] = HEX_VALUES[_digit - 0x20] = _digit - 0x61 + 10


def _outside_form(data: np.ndarray) -> np.ndarray:
    """Offsets of the bytes a form value may not hold: outside printable ASCII (0x21..0x7E), and ``&``."""
    return _block_hits(data, _mark_outside_form)[0]


# "%" to "=" (a2b_qp's escape), "=" to "&" and "+" to a space; each line's LF to NUL, which then
# marks where each line's document ends in the output
_FORM_SWAP = bytes.maketrans(b"%=+\n", b"=& \x00")
_MAX_HEAD = 16  # bytes before a value ("xml=") looked at for escapes
# bytes of whole lines translated and decoded at a time: the piece and its two copies stay in
# cache, and the copies come from the heap rather than fresh pages (a 4 MiB buffer at once:
# 6.3 ms, against 4.3 ms in pieces; all of it holds the GIL either way)
_DECODE_PIECE = 1 << 18


def _decode_clean(data: np.ndarray, value: np.ndarray, stop: np.ndarray, candidate: np.ndarray,
                  piece_bytes: int = _DECODE_PIECE):
    """:func:`decode_forms` by quoted-printable decoding at C speed, or None where that could differ.

    The buffer is translated (``%`` to ``=``, ``=`` to ``&``, ``+`` to a
    space, LF to NUL) and decoded by ``binascii.a2b_qp``, which turns
    ``=XX`` into the byte XX and copies every other byte, except after an
    ``=`` that starts no ``=XX``. Taken only where that is exactly the
    percent-decoding of every candidate's value:

    * every escape is whole. a2b_qp shortens the text by two bytes at each
      whole escape and by less at any other ``=`` (one for ``==``, one for a
      last byte, none otherwise), except before a CR, where it would drop
      up to the next LF: so with no ``%`` before a CR, the output is
      ``2 × count(%)`` shorter exactly when every escape is whole;
    * the only ``=`` are the candidates' heads (one per candidate), so no
      value holds an ``=`` that the translation would change;
    * no NUL in the buffer, and as many NULs in the output as lines (so no
      ``%00``: with no ``%`` before a CR nothing is skipped, and each
      ``%00`` would add one): then the output's NULs are the line ends, and
      line ``i``'s document lies between the NUL of line ``i - 1`` and its
      own, less the bytes before its value (no ``%`` among them) and its CR.

    The buffer is decoded in pieces of whole lines (about ``piece_bytes``
    each), and the pieces' outputs are joined: that is the output of one
    call, as a2b_qp looks ahead only after an ``=``, and a piece ends with
    its last line's LF, now a NUL.

    (The checks are numpy passes: ``bytes.count`` and ``in`` slow down on
    a byte as frequent as ``%`` is here.)
    """
    count = len(value)
    if not count or not data.all():  # a NUL in the buffer
        return None
    if np.count_nonzero(data == 0x3D) != np.count_nonzero(candidate):
        return None
    returns = np.flatnonzero(data == 0x0D)
    if np.any(data[returns[returns > 0] - 1] == 0x25):
        return None  # a "%" before a CR
    # each line's LF: right at its stop, or after its CR
    line_end = stop + (data[np.minimum(stop, len(data) - 1)] == 0x0D)
    if line_end[-1] >= len(data) or np.any(data[line_end] != 0x0A) or np.any(line_end[1:] <= line_end[:-1]):
        return None
    line_start = np.empty_like(line_end)
    line_start[0] = 0
    line_start[1:] = line_end[:-1] + 1
    head = value - line_start
    if np.any(candidate & ((head < 0) | (head > _MAX_HEAD) | (value > stop))):
        return None
    for k in range(int(head[candidate].max()) if candidate.any() else 0):  # no "%" before any value
        inside = candidate & (k < head)
        if np.any(data[line_start[inside] + k] == 0x25):
            return None
    # each piece ends just after a line's LF: the first at or after each multiple of piece_bytes
    after = np.unique(np.searchsorted(line_end, np.arange(piece_bytes, len(data), piece_bytes)))
    cuts = line_end[after[after < len(line_end)]] + 1
    bounds = [0, *cuts[cuts < len(data)].tolist(), len(data)]
    view = memoryview(data)
    documents = b"".join(
        binascii.a2b_qp(bytes(view[start:end]).translate(_FORM_SWAP)) for start, end in zip(bounds, bounds[1:])
    )
    if len(documents) != len(data) - 2 * np.count_nonzero(data == 0x25):
        return None  # an escape that is not whole
    decoded = np.frombuffer(documents, dtype=np.uint8)
    ends = np.flatnonzero(decoded == 0)
    if len(ends) != count:
        return None  # a %00
    starts = np.empty_like(ends)
    starts[0] = 0
    starts[1:] = ends[:-1] + 1
    last = ends - (line_end - stop)
    first = np.where(candidate, starts + head, last)
    return decoded, first, np.maximum(last, first)


def decode_forms(data: np.ndarray, value: np.ndarray, stop: np.ndarray, candidate: np.ndarray):
    """The form values ``data[value[i]:stop[i]]`` (lines, in order) percent-decoded, vectorised.

    Returns ``(documents, first, last, decoded)``: document ``i`` is
    ``documents[first[i]:last[i]]`` where ``decoded[i]`` (a candidate whose
    bytes are all printable ASCII but ``&`` and whose escapes are complete);
    ``+`` is a space, ``%XX`` the byte XX, as :func:`urllib.parse.parse_qsl`.
    ``stop[i]`` must be followed by the line's CR or LF (or the buffer's end).
    A buffer whose escapes are all whole is decoded by :func:`_decode_clean`.
    """
    candidate = _printable_values(data, value, stop, candidate)
    clean = _decode_clean(data, value, stop, candidate)
    if clean is not None:
        return (*clean, candidate)
    return _decode_by_positions(data, value, stop, candidate)


def _printable_values(data: np.ndarray, value: np.ndarray, stop: np.ndarray, candidate: np.ndarray) -> np.ndarray:
    """``candidate`` (a copy) without the lines whose value holds a byte outside printable ASCII, or ``&``."""
    candidate = candidate.copy()
    outside = _outside_form(data)
    owner = np.minimum(np.searchsorted(stop, outside), len(stop) - 1)
    candidate[owner[(outside >= value[owner]) & (outside < stop[owner])]] = False
    return candidate


def _decode_by_positions(data: np.ndarray, value: np.ndarray, stop: np.ndarray, candidate: np.ndarray):
    """:func:`decode_forms` for any buffer, from the offsets of its escapes (``candidate``: printable values)."""
    top = len(data) - 1
    # The escapes, each "%" and its two digits. A "%" among the two digits of the one before
    # belongs to a broken escape (it is no hex digit): it is dropped, so the escapes kept never
    # overlap and each takes exactly its two digits out of the documents.
    percent = np.flatnonzero(data == 0x25)
    if len(percent) > 1:
        percent = percent[np.concatenate(([True], percent[1:] - percent[:-1] > 2))]
    high = HEX_VALUES[data[np.minimum(percent + 1, top)]]
    low = HEX_VALUES[data[np.minimum(percent + 2, top)]]
    # An escape cut by its line's end meets the CR or LF after ``stop`` (no hex digit), so it is
    # broken without knowing its line: only the broken escapes are looked up.
    broken = percent[(high < 0) | (low < 0) | (percent + 2 > top)]
    owner = np.minimum(np.searchsorted(stop, broken), len(stop) - 1)
    candidate[owner[(broken >= value[owner]) & (broken < stop[owner])]] = False
    # decode in place (+ is a space, before %2B is decoded), then drop each escape's two digits;
    # bytes of other lines stay in between, outside every document
    decoded = data.copy()
    decoded[np.flatnonzero(data == 0x2B)] = 0x20
    decoded[percent] = (high * 16 + low).astype(np.uint8)
    keep = np.ones(len(data), dtype=bool)
    keep[np.minimum(percent + 1, top)] = False
    keep[np.minimum(percent + 2, top)] = False
    first = value - 2 * np.searchsorted(percent, value)
    last = stop - 2 * np.searchsorted(percent, stop)
    return decoded[keep], first, np.maximum(last, first), candidate


_DOCUMENT_END = b"</POSTBACK>"


def document_ends(data: np.ndarray) -> np.ndarray:
    """Offsets just past each ``</POSTBACK>`` in ``data`` (vectorised byte search).

    Searched by its ``B``, a rarer byte than ``<`` (a few a document instead
    of one a tag), then the other ten bytes are compared; the pattern cannot
    overlap itself, so every occurrence is one end.
    """
    pivot = _DOCUMENT_END.index(b"B")
    tail = len(_DOCUMENT_END) - pivot - 1
    at = np.flatnonzero(data[pivot : max(len(data) - tail, pivot)] == 0x42)  # offsets of the candidates' "<"
    for k, byte in enumerate(_DOCUMENT_END):
        if k != pivot:
            at = at[data[at + k] == byte]
    return at + len(_DOCUMENT_END)


_SPACE = np.zeros(256, dtype=bool)
_SPACE[[0x20, 0x0A, 0x0D, 0x09]] = True  # XML whitespace
_STEPS = 16  # whitespace bytes stepped over, all records at once, before a record is searched alone


def first_markup(data: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Where each record's first byte that is not XML whitespace is (its end if none).

    Steps over the leading whitespace of all records at once (work linear in
    it; documents mostly begin with a newline at most); a record still in
    whitespace after :data:`_STEPS` bytes is searched on its own.
    """
    at = np.asarray(starts, dtype=np.int64).copy()
    ends = np.asarray(ends, dtype=np.int64)
    top = max(len(data) - 1, 0)
    active = np.flatnonzero(at < ends)
    for _ in range(_STEPS):
        if not len(active):
            return at
        active = active[_SPACE[data[np.minimum(at[active], top)]]]
        at[active] += 1
        active = active[at[active] < ends[active]]
    for record in active.tolist():
        solid = np.flatnonzero(~_SPACE[data[at[record] : ends[record]]])
        at[record] = at[record] + solid[0] if len(solid) else ends[record]
    return at
