"""Timestamps in the general shapes, typed by Arrow: TIMESTAMP texts and log stamps.

The compiled kernel reads the common shapes itself (:mod:`.kernel`); every
other text comes here: ``T`` or a space between date and time, a fraction
(kept to the microsecond), an offset ``Z``, ``±HH:MM``, ``±HHMM``, ``±HH``
or none (taken as UTC). An unparseable text becomes null, and
:func:`stamps_keeping_bad` keeps it in its row's ``extra`` instead of
losing it.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .memory import pool
from .schema import TS_TYPE

__all__ = ["nullify_empty", "parse_timestamps", "stamps_keeping_bad"]

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


def stamps_keeping_bad(raw: pa.Array, extras: dict[int, dict]) -> pa.Array:
    """TIMESTAMP texts parsed; an unparseable text is kept in its row's ``extra``."""
    stamps, bad_stamps = parse_timestamps(raw)
    for i in bad_stamps.tolist():
        extras[i] = {**extras.get(i, {}), "TIMESTAMP": raw[i].as_py()}
    return stamps
