"""Timestamps in the general shapes, typed by Arrow: TIMESTAMP texts and log stamps.

The compiled kernel reads the common shapes itself (:mod:`.kernel`); every
other text comes here: ``T`` or a space between date and time, a fraction
(kept to the microsecond), an offset ``Z``, ``±HH:MM``, ``±HHMM``, ``±HH``
or none. An unparseable text becomes null, and :func:`stamps_keeping_bad`
keeps it in its row's ``extra`` instead of losing it.

A TIMESTAMP without an offset is read as if UTC *and marked naive*, with
each other stamp's offset in minutes beside it (:data:`NO_OFFSET` where
none): the assembly (:mod:`.assemble`) then gives a naive stamp the offset
of its envelope's ``CREATED`` (:func:`created_offset`), else of its send's
other notifications, and flags the row.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .memory import pool
from .schema import TS_TYPE

__all__ = [
    "NO_OFFSET",
    "STAMP_READ",
    "STAMP_OTHER",
    "STAMP_NAIVE",
    "EventStamps",
    "nullify_empty",
    "parse_timestamps",
    "event_stamps",
    "stamps_keeping_bad",
    "created_offset",
]

#: The offset (int16 minutes) of a row whose TIMESTAMP carried none, or had none at all.
NO_OFFSET = -32768
#: The fast paths' verdict on a row's TIMESTAMP (0: absent): read; left to the general parser
#: (:func:`event_stamps`); read without an offset (as if UTC: the assembly decides its offset).
STAMP_READ, STAMP_OTHER, STAMP_NAIVE = 1, 2, 3
_OFFSET = r"(?P<sign>[+-])(?P<hours>\d\d):?(?P<minutes>\d\d)?$"
_CREATED_OFFSET = re.compile(r"\d\d:\d\d(?::\d\d(?:\.\d+)?)?\s*(Z|[+-]\d\d(?::?\d\d)?)\s*$")

# Timestamps Arrow's cast reads once normalised: ``T`` or space, fraction,
# ``Z``/``±HH:MM``/``±HHMM``/``±HH`` or no offset at all (taken as UTC).
_TIMESTAMP_SHAPE = r"^\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d(?::?\d\d)?)?$"
_HAS_OFFSET = r"(?:Z|[+-]\d\d(?::?\d\d)?)$"

def nullify_empty(array: pa.Array) -> pa.Array:
    if len(array) == 0:
        return array
    return pc.if_else(pc.equal(array, ""), pa.scalar(None, array.type), array, memory_pool=pool())


def parse_timestamps(raw: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """Arrow timestamps (UTC) of normalised ISO-8601 texts; indices of unparseable ones."""
    raw = nullify_empty(raw)
    if len(raw) == 0:
        return pa.array([], TS_TYPE), np.array([], dtype=np.int64)
    valid = pc.match_substring_regex(raw, _TIMESTAMP_SHAPE)
    text = pc.if_else(valid, raw, pa.scalar(None, pa.string()))
    if pc.any(pc.match_substring_regex(text, r"\.\d{7}")).as_py():
        text = pc.replace_substring_regex(text, r"(\.\d{6})\d+", r"\1")  # keep µs
    without_offset = pc.invert(pc.match_substring_regex(text, _HAS_OFFSET))
    if pc.any(without_offset).as_py():
        text = pc.if_else(without_offset, pc.binary_join_element_wise(text, "Z", ""), text)
    try:
        stamps = pc.cast(text, TS_TYPE)
    except pa.ArrowInvalid:
        # out-of-range dates and the like: per value, keeping the good ones
        # (as integers: year 0000 is a valid timestamp but no Python datetime)
        values = []
        for item in text.to_pylist():
            try:
                values.append(pc.cast(pa.array([item]), TS_TYPE).cast(pa.int64())[0].as_py())
            except pa.ArrowInvalid:
                values.append(None)
        stamps = pa.array(values, pa.int64()).cast(TS_TYPE)
    bad = pc.and_(pc.is_valid(raw), pc.is_null(stamps))
    return stamps, np.flatnonzero(bad.to_numpy(zero_copy_only=False))


@dataclass(frozen=True)
class EventStamps:
    """TIMESTAMP texts read: instants (naive ones as if UTC), which were naive, their offsets."""

    stamps: pa.Array  # TS_TYPE
    naive: np.ndarray  # bool: read without an offset
    offset: np.ndarray  # int16 minutes east of UTC; NO_OFFSET where naive or missing


def _offsets(text: pa.Array, stamps: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Naive mask and int16 offsets of validated timestamp texts."""
    count = len(text)
    read = stamps.is_valid().to_numpy(zero_copy_only=False)
    found = pc.extract_regex(pc.fill_null(text, ""), _OFFSET)
    has_offset = found.is_valid().to_numpy(zero_copy_only=False)
    zulu = pc.fill_null(pc.ends_with(text, "Z"), False).to_numpy(zero_copy_only=False)
    offset = np.full(count, NO_OFFSET, dtype=np.int16)
    offset[zulu & read] = 0
    rows = np.flatnonzero(has_offset & read)
    if len(rows):
        picked = found.take(pa.array(rows))
        hours = np.asarray(picked.field("hours").to_pylist(), dtype=object)
        minutes = np.asarray([m or "0" for m in picked.field("minutes").to_pylist()], dtype=object)
        sign = np.where(np.asarray(picked.field("sign").to_pylist(), dtype=object) == "-", -1, 1)
        offset[rows] = sign * (hours.astype(np.int64) * 60 + minutes.astype(np.int64))
    naive = read & ~has_offset & ~zulu
    return naive, offset


def event_stamps(raw: pa.Array) -> tuple[EventStamps, np.ndarray]:
    """TIMESTAMP texts read (:class:`EventStamps`) and the indices of unparseable ones."""
    stamps, bad = parse_timestamps(raw)
    if len(raw) == 0:
        return EventStamps(stamps, np.zeros(0, bool), np.zeros(0, np.int16)), bad
    naive, offset = _offsets(nullify_empty(raw), stamps)
    return EventStamps(stamps, naive, offset), bad


def stamps_keeping_bad(raw: pa.Array, extras: dict[int, dict]) -> EventStamps:
    """TIMESTAMP texts read; an unparseable text is kept in its row's ``extra``
    (beside a repeated TIMESTAMP already there, as a list)."""
    read, bad_stamps = event_stamps(raw)
    for i in bad_stamps.tolist():
        extra = dict(extras.get(i) or {})
        text, held = raw[i].as_py(), extra.get("TIMESTAMP")
        extra["TIMESTAMP"] = text if held is None else [text, *(held if isinstance(held, list) else [held])]
        extras[i] = extra
    return read


def created_offset(created: object) -> int | None:
    """Minutes east of UTC of an envelope's ``CREATED`` text (``…-04``, ``…+05:30``, ``…Z``), or None."""
    if not isinstance(created, str):
        return None
    match = _CREATED_OFFSET.search(created)
    if match is None:
        return None
    text = match.group(1)
    if text == "Z":
        return 0
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    return sign * (int(digits[:2]) * 60 + int(digits[2:4] or 0))
