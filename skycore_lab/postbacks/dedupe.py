"""The one rule for the platform's retries: which notifications are duplicates.

The platform re-posts a notification it thinks was not received (five
minutes later, at most five times), so a log holds copies. The rule, used
by :func:`skycore_lab.read_postbacks`, :class:`skycore_lab.PostbackTail`
readers such as the live dashboard, and the timeline plot:

* rows are put in arrival order (stable sort by ``received_at``, missing
  last), so the earliest received copy is the one kept;
* two rows are duplicates when the whole normalised notification is equal:
  every notification field (``origin`` … ``status_details``, the columns
  of ``columns.EVENT_COLUMNS`` before ``received_at``) and ``extra``, with
  ``timestamp`` compared as an instant (``-05:00`` and ``-05`` spellings of
  one time are one time). A retry is the same document posted again, so it
  is equal in all of them; two different notifications that share
  ``(tracking_id, code, timestamp)`` — a different STATUS, or two different
  unparseable TIMESTAMPs (their texts are in ``extra``) — are both kept.
  Arrival (``received_at``), ``source``, ``line`` and the parser's flags
  are not part of a notification.

:func:`keep_index` works on the parser's Arrow columns with 64-bit keys;
:func:`drop_duplicate_events` applies the same function to a frame.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .. import columns as col
from .kernel import string_fingerprints
from .memory import pool, take_rows

__all__ = ["keep_index", "drop_duplicate_events"]


def keep_index(
    columns: dict[str, pa.ChunkedArray], extras: np.ndarray, drop_duplicates: bool, codes: np.ndarray,
    fingerprints: np.ndarray, encoded: dict[str, Callable[[], np.ndarray]] | None = None,
) -> np.ndarray | None:
    """Rows to keep, in output order (None: all, as they are).

    Arrival order: stable sort by ``received_at`` (missing last), so input
    order breaks ties. Then the first of each whole notification is kept,
    i.e. the earliest received. Only 64-bit keys of ``(tracking_id, code,
    timestamp)`` (``codes`` of ``code``, tracking-id ``fingerprints``) are
    hashed for all rows; every field is compared only where those keys
    collide (and for rows without a tracking id), never a second copy of
    the frame. ``encoded`` may give columns already as integer codes (equal
    values, equal codes), as functions called only when they are needed:
    they are compared as such.
    """
    count = len(columns[col.RECEIVED_AT])
    received = columns[col.RECEIVED_AT].to_numpy().astype("datetime64[us]").view(np.int64)
    missing = received == np.iinfo(np.int64).min
    if missing.any():
        received = np.where(missing, np.iinfo(np.int64).max, received)
    del missing
    order = None
    if count > 1 and np.any(received[1:] < received[:-1]):
        order = np.argsort(received, kind="stable")
    del received
    if not drop_duplicates or count < 2:
        return order

    def arrival(values: np.ndarray) -> np.ndarray:
        return values if order is None else values[order]

    fingerprint = arrival(fingerprints)
    code = arrival(codes).astype(np.uint64)
    stamp = arrival(columns[col.TIMESTAMP].to_numpy().astype("datetime64[us]").view(np.uint64))
    has_id = fingerprint != 0
    # one 64-bit key per row, hashed (not sorted): rows whose keys collide are the
    # candidates, compared exactly below; the rest are unique
    key = fingerprint * np.uint64(0xFF51AFD7ED558CCD)
    key ^= (code + np.uint64(1)) * np.uint64(0xC4CEB9FE1A85EC53)
    key ^= stamp * np.uint64(0x9E3779B97F4A7C15)
    del fingerprint, code
    # rows without a tracking id are all compared exactly: their key says little
    candidate = pd.Series(key.view(np.int64), copy=False).duplicated(keep=False).to_numpy(copy=True) | ~has_id
    del key, stamp
    duplicate = np.zeros(count, dtype=bool)
    if candidate.any():
        # exact: the first of each whole notification, in arrival order, is the earliest received
        rows = np.flatnonzero(candidate)
        source_rows = rows if order is None else order[rows]
        duplicate[rows] = _notifications(columns, extras, source_rows, encoded or {}).duplicated(keep="first").to_numpy()
    if not duplicate.any():
        return order
    return np.flatnonzero(~duplicate) if order is None else order[~duplicate]


def _notifications(
    columns: dict[str, pa.ChunkedArray], extras: np.ndarray, rows: np.ndarray,
    encoded: dict[str, Callable[[], np.ndarray]],
) -> pd.DataFrame:
    """Every notification field of ``rows`` as integer codes (equal values, equal codes; missing -1;
    timestamps as µs; ``extra`` as sorted JSON), for an exact comparison without Python strings."""
    memory = pool()  # the parser's pool: what this allocates goes back at once
    fields = [c for c in col.EVENT_COLUMNS[: col.EVENT_COLUMNS.index(col.RECEIVED_AT)] if c in columns]
    data = {}
    for name in fields:
        if name in encoded:
            data[name] = encoded[name]()[rows]
            continue
        values = take_rows(columns[name], rows)
        if pa.types.is_timestamp(values.type):  # as integers: year 0000 is no Python datetime
            values = pc.fill_null(pc.cast(values, pa.int64(), memory_pool=memory), np.iinfo(np.int64).min)
        else:
            # one array, so one dictionary whose indices are the codes (encoding the chunked column
            # gives each chunk the whole dictionary, and unifying 120 of them took 30 ms per column of ids)
            values = pc.dictionary_encode(values.combine_chunks(memory_pool=memory), memory_pool=memory)
            values = pc.fill_null(values.indices, -1)
        data[name] = values.to_numpy()
    data[col.EXTRA] = pd.factorize(
        np.array([json.dumps(e, sort_keys=True, default=str) if e else "" for e in extras[rows]], dtype=object)
    )[0]
    return pd.DataFrame(data, copy=False)


def drop_duplicate_events(events: pd.DataFrame) -> pd.DataFrame:
    """``events`` in arrival order without the platform's retries (the rule above).

    Works on any events frame (:func:`skycore_lab.read_postbacks`, several
    of them concatenated, or one built by hand): a missing ``received_at``
    column keeps the frame's order, a missing ``tracking_id`` column makes
    every row anonymous. The index is reset.
    """
    count = len(events)
    if count < 2:
        return events.reset_index(drop=True)

    def arrow(name: str, kind: pa.DataType) -> pa.ChunkedArray:
        if name not in events.columns:
            return pa.chunked_array([pa.nulls(count, kind)])
        values = events[name]
        if kind == pa.string():
            values = values.astype(object).where(values.notna(), None).map(lambda v: v if v is None else str(v))
        elif isinstance(values.dtype, pd.DatetimeTZDtype):
            values = values.dt.tz_convert("UTC")
        return pa.chunked_array([pa.array(values, kind, from_pandas=True)])

    stamp = pa.timestamp("us", tz="UTC")
    columns = {name: arrow(name, pa.string()) for name in col.EVENT_COLUMNS[: col.EVENT_COLUMNS.index(col.RECEIVED_AT)]
               if name in events.columns or name == col.TRACKING_ID}
    for name in (col.TIMESTAMP, col.RECEIVED_AT):
        columns[name] = arrow(name, stamp) if name not in events.columns else pa.chunked_array(
            [pa.array(pd.to_datetime(events[name], utc=True).astype("datetime64[us, UTC]"), stamp, from_pandas=True)])
    extras = events[col.EXTRA].to_numpy(dtype=object) if col.EXTRA in events.columns else np.full(count, None, object)
    codes = pd.factorize(events[col.CODE].astype(object) if col.CODE in events.columns else pd.Series([None] * count))[0]
    fingerprints = string_fingerprints(columns[col.TRACKING_ID].combine_chunks())
    index = keep_index(columns, extras, True, codes.astype(np.int64), fingerprints)
    return events.reset_index(drop=True) if index is None else events.iloc[index].reset_index(drop=True)
