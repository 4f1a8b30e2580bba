"""The pure path of the kernel: the same proof and cut, vectorised (numpy, Arrow's RE2).

Where numba is not installed (it is the optional ``fast`` extra) or
``SKYCORE_LAB_PURE=1`` is set, :func:`.kernel.scan_records` calls
:func:`scan` instead of the compiled kernel. It returns the same arrays:

1. **Proof**: every record is matched whole against the grammar written
   over bytes (:func:`.grammar.record_pattern_bytes`) by Arrow's RE2, on a
   zero-copy binary array over the buffer. RE2 runs a DFA for a yes/no
   match, so this is one pass in C++ per record.
2. **Cut**: in a proven record ``<`` and ``>`` occur only as markup, so each
   ``<`` opens a tag whose ``>`` is the next one; a start tag of a field is
   told by its first two letters and length, and its text runs from that
   ``>`` to the next ``<``. All of it is numpy over the positions of ``<``
   and ``>``.
3. **Times**: ``received_at`` is read positionally (its shape is proven);
   TIMESTAMP is left to the general parser (:mod:`.timestamps`).

Slower than the kernel (more passes over the buffer), the same results:
``tests/test_postbacks_formats_fast.py`` checks the two agree record by
record, ``tests/test_postbacks_engines.py`` that they read the same frames,
and ``tests/test_postbacks_proof.py`` (run with ``SKYCORE_LAB_PURE=1`` in CI)
that this path proves exactly the log lines the grammar's RE2 matches.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .grammar import record_pattern_bytes
from .schema import FIELD_TAGS
from .timestamps import NO_OFFSET

__all__ = ["PATTERNS", "scan", "fingerprints"]

_FIELDS = len(FIELD_TAGS)
_I_TIMESTAMP = FIELD_TAGS.index("TIMESTAMP")
#: The grammar per record mode (:data:`.kernel.MODE_LOG`, ``MODE_DOCUMENT``, ``MODE_BODY``: 0, 1, 2).
PATTERNS = (record_pattern_bytes("log"), record_pattern_bytes("document"), record_pattern_bytes("body"))
# a start tag's field from (first byte, second byte, name length); -1: not a field's start tag
_TAG_ID = np.full((256, 256, 16), -1, dtype=np.int8)
for _index, _tag in enumerate(FIELD_TAGS):
    _TAG_ID[ord(_tag[0]), ord(_tag[1]), len(_tag)] = _index


def _records(data: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> pa.Array:
    """A zero-copy binary array whose even strings are the records, odd ones the gaps between."""
    count = len(starts)
    small = len(data) < 2**31 - 1
    offsets = np.empty(2 * count + 1, dtype=np.int32 if small else np.int64)
    offsets[0:-1:2] = starts
    offsets[1::2] = ends
    offsets[-1] = ends[-1]
    return pa.Array.from_buffers(
        pa.binary() if small else pa.large_binary(), 2 * count, [None, pa.py_buffer(offsets), pa.py_buffer(data)]
    )


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


def _received(data: np.ndarray, at: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """µs since the epoch of the proven ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` at ``at``, and whether possible."""

    def number(offset: int, count: int) -> np.ndarray:
        value = np.zeros(len(at), dtype=np.int64)
        for k in range(count):
            value = value * 10 + (data[at + offset + k].astype(np.int64) - 0x30)
        return value

    year, month, day = number(0, 4), number(5, 2), number(8, 2)
    hour, minute, second, fraction = number(11, 2), number(14, 2), number(17, 2), number(20, 6)
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    longest = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])[np.clip(month, 0, 12)] + (leap & (month == 2))
    possible = (month >= 1) & (month <= 12) & (day >= 1) & (day <= longest) & (hour <= 23) & (minute <= 59) & (second <= 59)
    # days from the civil date (proleptic Gregorian; H. Hinnant's algorithm), as the kernel
    shifted = np.where(month <= 2, year - 1, year)
    era = shifted // 400
    year_of_era = shifted - era * 400
    day_of_year = (153 * (month + np.where(month > 2, -3, 9)) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    days = era * 146097 + day_of_era - 719468
    micros = ((days * 24 + hour) * 60 + minute) * 60_000_000 + second * 1_000_000 + fraction
    return np.where(possible, micros, 0), possible


def scan(data: np.ndarray, starts: np.ndarray, ends: np.ndarray, mode: int, other_kind: int):
    """What the compiled kernel's ``_scan`` returns, computed with numpy and RE2.

    TIMESTAMP is never read here: each non-empty one is marked ``other_kind``
    (the kernel's "left to the general parser").
    """
    count = len(starts)
    if count == 0:
        empty = np.zeros(0, dtype=np.int64)
        return (np.zeros(0, bool), np.zeros((0, 2 * _FIELDS), np.int64), empty, np.zeros(0, bool), empty,
                np.zeros(0, np.int8), np.zeros(0, np.int16))
    matched = pc.match_substring_regex(_records(data, starts, ends), PATTERNS[mode])
    proven = np.asarray(matched.to_numpy(zero_copy_only=False)[0::2], dtype=bool)
    rows = int(proven.sum())
    row_of = np.cumsum(proven) - 1
    # every < of a proven record opens a tag; its > is the next one
    opens = np.flatnonzero(data == 0x3C)
    owner = np.searchsorted(starts, opens, side="right") - 1
    inside = owner >= 0
    owner = np.maximum(owner, 0)
    inside &= (opens < ends[owner]) & proven[owner]
    opens, owner = opens[inside], owner[inside]
    closes = np.flatnonzero(data == 0x3E)
    closes = closes[np.searchsorted(closes, opens)]
    field = _TAG_ID[data[opens + 1], data[opens + 2], np.minimum(closes - opens - 1, 15)]
    starts_of = np.flatnonzero(field >= 0)  # start tags of fields; the next < is their end tag
    row = row_of[owner[starts_of]]
    first = closes[starts_of] + 1
    last = opens[starts_of + 1]
    _trim_spaces(data, first, last)
    bounds = np.full((rows, 2 * _FIELDS), -1, dtype=np.int64)
    column = 2 * field[starts_of].astype(np.int64)
    bounds[row, column] = first
    bounds[row, column + 1] = last
    # an absent field: empty, at the previous end (the offsets never decrease)
    flat = bounds.reshape(-1)
    np.maximum.accumulate(flat, out=flat)
    np.maximum(flat, 0, out=flat)
    proven_rows = np.flatnonzero(proven)
    if mode == 0:
        received, received_ok = _received(data, starts[proven_rows])
    else:
        received, received_ok = np.zeros(rows, np.int64), np.zeros(rows, bool)
    stamp_kind = np.where(
        bounds[:, 2 * _I_TIMESTAMP + 1] > bounds[:, 2 * _I_TIMESTAMP], np.int8(other_kind), np.int8(0)
    ).astype(np.int8)
    return (proven, bounds, received, received_ok, np.zeros(rows, np.int64), stamp_kind,
            np.full(rows, NO_OFFSET, dtype=np.int16))


_SAMPLED = 16  # bytes of each end of a string that go into its fingerprint


def fingerprints(offsets: np.ndarray, data: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """A 64-bit fingerprint of each string from its length and first and last 16 bytes (0 for null).

    Equal strings give equal fingerprints, which is all the dedupe needs (it
    compares the strings whose fingerprints collide); bounded work per string.
    """
    start = offsets[:-1].astype(np.int64)
    length = offsets[1:].astype(np.int64) - start
    value = np.full(len(length), 0xCBF29CE484222325, dtype=np.uint64) ^ length.astype(np.uint64)
    if len(data):
        top = len(data) - 1
        prime = np.uint64(0x100000001B3)
        for k in range(_SAMPLED):
            for at in (start + k, start + length - 1 - k):
                byte = np.where(k < length, data[np.clip(at, 0, top)], 0).astype(np.uint64)
                value = (value ^ byte) * prime
    value ^= value >> np.uint64(33)
    value *= np.uint64(0xFF51AFD7ED558CCD)
    value ^= value >> np.uint64(33)
    return np.where(valid, value | np.uint64(1), np.uint64(0))


_HEX = np.full(256, -1, dtype=np.int16)
for _digit in b"0123456789":
    _HEX[_digit] = _digit - 0x30
for _digit in b"abcdef":
    _HEX[_digit] = _HEX[_digit - 0x20] = _digit - 0x61 + 10


def decode_forms(data: np.ndarray, value: np.ndarray, stop: np.ndarray, candidate: np.ndarray):
    """The form values ``data[value[i]:stop[i]]`` (lines, in order) percent-decoded, vectorised.

    Returns ``(documents, first, last, decoded)``: document ``i`` is
    ``documents[first[i]:last[i]]`` where ``decoded[i]`` (a candidate whose
    bytes are all printable ASCII but ``&`` and whose escapes are complete);
    ``+`` is a space, ``%XX`` the byte XX, as :func:`urllib.parse.parse_qsl`.
    """
    candidate = candidate.copy()
    outside = np.flatnonzero((data < 0x21) | (data > 0x7E) | (data == 0x26))
    owner = np.minimum(np.searchsorted(stop, outside), len(stop) - 1)
    candidate[owner[(outside >= value[owner]) & (outside < stop[owner])]] = False
    percent = np.flatnonzero(data == 0x25)
    owner = np.minimum(np.searchsorted(stop, percent), len(stop) - 1)
    inside = candidate[owner] & (percent >= value[owner]) & (percent < stop[owner])
    percent, owner = percent[inside], owner[inside]
    high = _HEX[data[np.minimum(percent + 1, len(data) - 1)]]
    low = _HEX[data[np.minimum(percent + 2, len(data) - 1)]]
    broken = (percent + 2 >= stop[owner]) | (high < 0) | (low < 0)
    candidate[owner[broken]] = False
    whole = candidate[owner]
    percent, high, low = percent[whole], high[whole], low[whole]
    # decode in place (+ is a space, before %2B is decoded), then drop each escape's two digits;
    # bytes of other lines stay in between, outside every document
    decoded = np.where(data == 0x2B, np.uint8(0x20), data)
    decoded[percent] = (high * 16 + low).astype(np.uint8)
    keep = np.ones(len(data), dtype=bool)
    keep[percent + 1] = False
    keep[percent + 2] = False
    first = value - 2 * np.searchsorted(percent, value)
    last = stop - 2 * np.searchsorted(percent, stop)
    return decoded[keep], first, np.maximum(last, first), candidate


_DOCUMENT_END = b"</POSTBACK>"


def document_ends(data: np.ndarray) -> np.ndarray:
    """Offsets just past each ``</POSTBACK>`` in ``data`` (vectorised byte search)."""
    at = np.flatnonzero(data[: max(len(data) - len(_DOCUMENT_END) + 1, 0)] == 0x3C)
    for k in range(1, len(_DOCUMENT_END)):
        at = at[data[at + k] == _DOCUMENT_END[k]]
    return at + len(_DOCUMENT_END)


def first_markup(data: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Where each record's first byte that is not XML whitespace is (its end if none)."""
    solid = np.flatnonzero((data != 0x20) & (data != 0x0A) & (data != 0x0D) & (data != 0x09))
    if not len(solid):
        return ends.copy()
    found = solid[np.minimum(np.searchsorted(solid, starts), len(solid) - 1)]
    return np.where((found >= starts) & (found < ends), found, ends)
