"""The dataset's files: the events frame as Parquet and back, partitions, the retries' keys.

A part file holds events rows in the columns of
:data:`skycore_lab.columns.EVENT_FRAME_COLUMNS` (categories as Arrow
dictionaries, text as strings, times as ``timestamp[us, UTC]``, ``extra`` as
JSON text) plus two columns readers leave out: ``_key``, the 64-bit key of
the dedupe rule (:mod:`skycore_lab.postbacks.dedupe`: tracking id, code and
timestamp as an instant), and ``_sub``, a notification's place within its
record (a bundle's notifications share one line). Parts live in hive
partitions ``event_date=YYYY-MM-DD`` (UTC date of
:func:`skycore_lab.frames.times.event_time`; ``event_date=unknown`` when a
row has no time at all).
"""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .. import columns as col
from ..frames.times import event_time
from ..postbacks.schema import CATEGORY_COLUMNS, STRING_DTYPE, TEXT_COLUMNS, TS_TYPE

__all__ = [
    "PARTITION", "UNKNOWN_DATE", "KEY", "SUB", "CATEGORIES", "STORED_SCHEMA", "to_table", "to_frame",
    "event_dates", "retry_keys", "write_part", "fsync_directory",
]

#: The hive partition column.
PARTITION = "event_date"
#: Its value for rows with neither TIMESTAMP nor received_at.
UNKNOWN_DATE = "unknown"
KEY = "_key"
SUB = "_sub"
#: Categorical columns of the events frame.
CATEGORIES: tuple[str, ...] = (*CATEGORY_COLUMNS, col.CARRIER, col.COUNTRY, col.SOURCE)
#: Rows per Parquet row group (what one dask task reads at most).
ROW_GROUP = 256 * 1024
_FLAGS = (col.TIMESTAMP_INFERRED, col.RECOVERED, col.TIME_OUT_OF_RANGE)


def _arrow_type(name: str) -> pa.DataType:
    if name in CATEGORIES:
        return pa.dictionary(pa.int32(), pa.string())
    if name in (col.TIMESTAMP, col.RECEIVED_AT):
        return TS_TYPE
    if name in _FLAGS:
        return pa.bool_()
    if name == col.LINE:
        return pa.int64()
    return pa.string()  # text columns and extra (JSON)


#: The schema of every part file.
STORED_SCHEMA = pa.schema(
    [(name, _arrow_type(name)) for name in col.EVENT_FRAME_COLUMNS] + [(KEY, pa.uint64()), (SUB, pa.int32())]
)


def retry_keys(frame: pd.DataFrame) -> np.ndarray:
    """uint64 per row: the dedupe rule's key — equal for two copies of one notification.

    Built from ``tracking_id``, ``code`` and ``timestamp`` (as µs since the
    epoch), each hashed by value (:func:`pandas.util.hash_pandas_object`, a
    fixed key: the same in every run), so rows with different keys are never
    duplicates; rows with equal keys are compared field by field by
    :func:`skycore_lab.postbacks.drop_duplicate_events` before one is dropped.
    """
    if not len(frame):
        return np.zeros(0, np.uint64)
    tracking = pd.util.hash_pandas_object(frame[col.TRACKING_ID], index=False).to_numpy()
    code = pd.util.hash_pandas_object(frame[col.CODE], index=False).to_numpy()
    stamp = frame[col.TIMESTAMP].to_numpy(dtype="datetime64[us]").view(np.int64)
    stamp = pd.util.hash_array(stamp)
    with np.errstate(over="ignore"):
        return tracking * np.uint64(0xFF51AFD7ED558CCD) ^ code * np.uint64(0xC4CEB9FE1A85EC53) ^ stamp


def event_dates(frame: pd.DataFrame) -> np.ndarray:
    """The partition value of each row: UTC date of its event time, else :data:`UNKNOWN_DATE`."""
    days = event_time(frame, naive="utc").to_numpy(dtype="datetime64[us]").astype("datetime64[D]")
    codes, uniques = pd.factorize(days.view(np.int64))  # a few distinct days: format each once
    labels = np.array([UNKNOWN_DATE if v == np.iinfo(np.int64).min else str(np.datetime64(int(v), "D"))
                       for v in uniques] + [UNKNOWN_DATE], dtype=object)
    return labels[codes]


def _extra_json(values: pd.Series) -> pa.Array:
    texts = [None if not v else json.dumps(v, sort_keys=False, default=str) for v in values.tolist()]
    return pa.array(texts, pa.string())


def to_table(frame: pd.DataFrame, keys: np.ndarray, subs: np.ndarray) -> pa.Table:
    """Events rows (read_postbacks' columns) as a part file's table (:data:`STORED_SCHEMA`)."""
    arrays = []
    for field in STORED_SCHEMA:
        name = field.name
        if name == KEY:
            arrays.append(pa.array(keys, pa.uint64()))
        elif name == SUB:
            arrays.append(pa.array(subs, pa.int32()))
        elif name == col.EXTRA:
            arrays.append(_extra_json(frame[name]))
        elif name in CATEGORIES:
            values = pa.array(frame[name].array, from_pandas=True)  # Categorical → dictionary, codes kept
            arrays.append(values.cast(field.type) if pa.types.is_dictionary(values.type)
                          else values.cast(pa.string()).dictionary_encode().cast(field.type))
        elif name in (col.TIMESTAMP, col.RECEIVED_AT):
            arrays.append(pa.array(frame[name].to_numpy(dtype="datetime64[us]"), pa.timestamp("us"),
                                   from_pandas=True).cast(TS_TYPE))
        else:
            arrays.append(pa.array(frame[name], field.type, from_pandas=True))
    return pa.Table.from_arrays(arrays, schema=STORED_SCHEMA)


def _categorical(values: pa.ChunkedArray) -> pd.Categorical:
    """Categories sorted, only those present (what read_postbacks keeps: the used ones)."""
    if pa.types.is_dictionary(values.type):
        values = values.cast(pa.string())
    strings = pd.array(values, dtype=STRING_DTYPE)
    categories = pd.Index(pd.unique(strings[~pd.isna(strings)]), dtype=STRING_DTYPE).sort_values()
    return pd.Categorical(strings, categories=categories)


def _extra_objects(values: pa.ChunkedArray) -> pd.Series:
    texts = values.to_numpy(zero_copy_only=False)
    out = np.full(len(texts), None, dtype=object)
    for i in np.flatnonzero(pd.notna(texts)):
        out[i] = json.loads(texts[i])
    return pd.Series(out, dtype=object, copy=False)


def to_frame(table: pa.Table, columns: list[str] | None = None) -> pd.DataFrame:
    """A part table (or several concatenated) as read_postbacks' frame: same dtypes, categories
    sorted; ``columns`` picks some (hidden ``_key``/``_sub`` come back only if named)."""
    names = list(columns) if columns is not None else list(col.EVENT_FRAME_COLUMNS)
    data = {}
    for name in names:
        values = table.column(name)
        if name in CATEGORIES:
            data[name] = _categorical(values)
        elif name in TEXT_COLUMNS:
            data[name] = pd.array(values.cast(pa.string()), dtype=STRING_DTYPE)
        elif name in (col.TIMESTAMP, col.RECEIVED_AT):
            stamps = pc.cast(values, pa.timestamp("us")).to_numpy(zero_copy_only=False).astype("datetime64[us]")
            data[name] = pd.DatetimeIndex(stamps).tz_localize("UTC")
        elif name == col.EXTRA:
            data[name] = _extra_objects(values)
        elif name == PARTITION:
            data[name] = pd.array(values.cast(pa.string()), dtype=STRING_DTYPE)
        else:
            data[name] = values.to_numpy(zero_copy_only=False)
    return pd.DataFrame(data, copy=False)


def write_part(table: pa.Table, path: str) -> None:
    """Write ``table`` to ``path`` and make it durable (fsync) before anyone renames it into place."""
    pq.write_table(table, path, compression="zstd", row_group_size=ROW_GROUP)
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def fsync_directory(path: str) -> None:
    """Make the names in directory ``path`` durable (renames, creations, removals)."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
