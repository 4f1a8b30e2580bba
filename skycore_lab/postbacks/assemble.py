"""From typed parts to the events frame: arrival order, dedupe, carriers, final dtypes.

Each batch of records (:class:`.records.Batch`) becomes a typed
:class:`Part` of Arrow columns as soon as it is parsed (on the worker
thread, while it is in cache); :func:`finish_frame` then assembles the
parts into one frame. Categories are dictionary-encoded before any row is
moved, the dedupe (:mod:`.dedupe`) orders and filters row indices, carrier
and country are looked up once per distinct SPID (:mod:`skycore_lab.reference`),
and each column is converted and released in turn, so peak memory stays
near one copy of the data.

TIMESTAMPs without a UTC offset (the 2011–2012 envelopes) are resolved in
two steps: a part gives each its envelope's ``CREATED`` offset
(:func:`typed_part`); :func:`finish_frame` gives the rest the offset of
their send's other notifications (the same tracking id, across every file
read), else reads them as UTC — all flagged ``timestamp_inferred``.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .. import columns as col
from ..frames.times import PLAUSIBLE_TIMES
from ..reference import carrier_and_country, normalize_spid
from .dedupe import keep_index
from .kernel import string_fingerprints
from .memory import pool
from .records import Batch, DataNotes, Note
from .schema import CATEGORY_COLUMNS, FIELDS, RECEIVED, STRING_DTYPE, TEXT_COLUMNS, TS_TYPE
from .timestamps import NO_OFFSET, created_offset, nullify_empty, parse_timestamps, stamps_keeping_bad

__all__ = ["Part", "typed_part", "finish_frame"]


@dataclass
class Part:
    """One batch's typed Arrow columns, and what the flags need."""

    columns: dict[str, pa.Array]
    extras: dict[int, dict]
    source: str
    length: int
    tracking_fingerprints: np.ndarray  # uint64 per row (0: no tracking id), for the dedupe
    stamp_offset: np.ndarray  # int16 minutes of each TIMESTAMP's offset (NO_OFFSET: none/unknown)
    naive: np.ndarray | None = None  # bool: TIMESTAMP still without an offset (finish_frame decides)
    inferred: np.ndarray | None = None  # bool: TIMESTAMP's offset was taken from CREATED
    recovered: np.ndarray | None = None  # int64 rows read from a repaired document
    notes: list = field(default_factory=list)  # Note(kind, line, detail)
    # rows from several files (small single-document files read together): each row's file
    row_sources: tuple[str, ...] | None = None  # the files
    source_rows: np.ndarray | None = None  # int64 per row: index into row_sources


def _created_offsets(stamps: pa.Array, naive: np.ndarray, offset: np.ndarray, extras: dict[int, dict],
                     lines: np.ndarray, notes: list) -> tuple[pa.Array, np.ndarray | None, np.ndarray | None]:
    """Naive TIMESTAMPs given their envelope's CREATED offset; the rows still naive, those inferred."""
    rows = np.flatnonzero(naive)
    if not len(rows):
        return stamps, None, None
    values = stamps.cast(pa.int64()).to_numpy(zero_copy_only=False).copy()
    missing = stamps.is_null().to_numpy(zero_copy_only=False)
    inferred = np.zeros(len(naive), dtype=bool)
    for row in rows.tolist():
        minutes = created_offset((extras.get(row) or {}).get("CREATED"))
        if minutes is None:
            continue
        values[row] -= minutes * 60_000_000
        offset[row] = minutes
        naive[row], inferred[row] = False, True
    if not inferred.any():
        return stamps, naive, None
    first = int(lines[np.flatnonzero(inferred)[0]])
    notes.append(Note("inferred", first, "the envelope's CREATED offset", int(inferred.sum())))
    return pa.array(values, pa.int64(), mask=missing).cast(TS_TYPE), (naive if naive.any() else None), inferred


def typed_part(batch: Batch) -> Part:
    extras = dict(batch.extras)
    columns: dict[str, pa.Array] = {}
    table = batch.table.combine_chunks()
    for spec in FIELDS:
        array = table.column(spec.tag).chunk(0) if table.num_rows else pa.array([], pa.string())
        if batch.padded:
            array = pc.utf8_trim(array, " ", memory_pool=pool())
        columns[spec.column] = array
    if batch.timestamp is not None:
        stamps, naive, offset = batch.timestamp, batch.timestamp_naive, batch.timestamp_offset
    else:
        read = stamps_keeping_bad(columns[col.TIMESTAMP], extras)
        stamps, naive, offset = read.stamps, read.naive, read.offset
    if naive is None:  # a batch typed before offsets were tracked: nothing naive
        naive, offset = np.zeros(len(batch), bool), np.full(len(batch), NO_OFFSET, np.int16)
    notes = list(batch.notes)
    stamps, naive, inferred = _created_offsets(stamps, naive, offset, extras, batch.lines, notes)
    if naive is not None and not naive.any():
        naive = None
    columns[col.TIMESTAMP] = stamps
    if batch.received_at is not None:
        columns[col.RECEIVED_AT] = batch.received_at
    else:
        received = table.column(RECEIVED).chunk(0) if table.num_rows else pa.array([], pa.string())
        columns[col.RECEIVED_AT] = parse_timestamps(received)[0]
    if not batch.nullified or batch.padded:  # trimming may have emptied a text
        for name in (*TEXT_COLUMNS, *CATEGORY_COLUMNS):
            columns[name] = nullify_empty(columns[name])
    for name in (col.TO, col.SENDER):  # the rules forbid "+", reports show it anyway
        if len(columns[name]) and pc.any(pc.starts_with(columns[name], "+")).as_py():
            columns[name] = pc.utf8_ltrim(columns[name], "+", memory_pool=pool())
    columns[col.LINE] = pa.array(batch.lines, pa.int64())
    # computed here, on the worker thread, while the part is in cache
    fingerprints = string_fingerprints(columns[col.TRACKING_ID])
    return Part(columns, extras, batch.source, len(batch), fingerprints, offset, naive, inferred, batch.recovered, notes)


def _encode(values: pa.ChunkedArray) -> tuple[np.ndarray, pa.Array]:
    """Integer codes (missing → -1) and the dictionary of strings, via Arrow's hash
    kernel over the chunks as they are: no Python objects, no combined copy."""
    if values.num_chunks == 0:
        return np.zeros(0, dtype=np.int32), pa.array([], pa.string())
    encoded = pc.dictionary_encode(values, memory_pool=pool())
    dictionary = encoded.chunk(encoded.num_chunks - 1).dictionary
    if any(chunk.dictionary is not dictionary and not chunk.dictionary.equals(dictionary) for chunk in encoded.chunks):
        encoded = encoded.unify_dictionaries()  # not expected: one hash table serves all chunks
        dictionary = encoded.chunk(0).dictionary
    codes = np.concatenate([pc.fill_null(chunk.indices, -1).to_numpy(zero_copy_only=False) for chunk in encoded.chunks])
    return codes, dictionary


def _categorical(codes: np.ndarray, dictionary: pa.Array) -> pd.Categorical:
    """Categorical of codes into ``dictionary``, keeping only the categories used."""
    used = np.bincount(codes + 1, minlength=len(dictionary) + 1)[1:] > 0
    if not used.all():
        remap = np.full(len(dictionary) + 1, -1, dtype=codes.dtype)
        remap[1:][used] = np.arange(int(used.sum()), dtype=codes.dtype)
        codes = remap[codes + 1]
        dictionary = dictionary.filter(pa.array(used))
    return pd.Categorical.from_codes(codes, categories=pd.Index(dictionary.to_pylist(), dtype=STRING_DTYPE))


def _string_categories(values: pd.Categorical) -> pd.Categorical:
    """The same categorical with pandas' ``str`` categories (what the other categoricals have)."""
    return pd.Categorical.from_codes(values.codes, categories=pd.Index(values.categories, dtype=STRING_DTYPE))


def _take(columns: dict[str, pa.ChunkedArray], name: str, index: np.ndarray | None,
          kept: pa.Array | None = None) -> pa.ChunkedArray | pa.Array:
    """The kept rows of ``columns[name]``, which is removed from ``columns`` (its memory goes with it).

    ``kept``: the same rows as a mask, when ``index`` keeps the rows' order (arrival order is file
    order, or there are no arrival times; only retries dropped). The column is combined into one
    chunk first, which the frames (deliveries, profiles) need ~0.1x the frame less memory to work on
    than one chunk per buffer; then filtered, or taken from. Arrow's take of the chunked column
    does more (7 text columns of a 1M-record read, warm: ~120 ms, against ~70 ms filtered and
    ~90 ms combined then taken).
    """
    values = columns.pop(name)
    if index is None:
        return values
    values = values.combine_chunks(memory_pool=pool())
    if kept is not None:
        return pc.filter(values, kept, memory_pool=pool())
    return pc.take(values, pa.array(index), memory_pool=pool())


def _take_numpy(columns: dict[str, pa.ChunkedArray], name: str, index: np.ndarray | None) -> np.ndarray:
    """The kept rows of a fixed-width ``columns[name]`` as numpy (removed from ``columns``): one
    combined copy (to_numpy), then numpy's gather, instead of a take into Arrow and then to_numpy."""
    values = columns.pop(name).to_numpy()
    return values if index is None else values[index]


def _spid_carrier_country(
    codes: np.ndarray, dictionary: pa.Array, to: pa.ChunkedArray, index: np.ndarray | None,
) -> tuple[pd.api.extensions.ExtensionArray, pd.Categorical, pd.Categorical]:
    """The ``spid`` texts (normalised), ``carrier`` and ``country`` of the kept rows (``index``), from
    SPID's codes and every row's number (the look-up is the same for a retry as for its original)."""
    spid = _categorical(codes, dictionary)
    normalized = [normalize_spid(c) for c in spid.categories]
    if normalized != list(spid.categories):
        spid = spid.rename_categories(normalized) if len(set(normalized)) == len(normalized) else pd.Categorical(
            [normalize_spid(v) if isinstance(v, str) else v for v in spid]
        )
    carrier, country = carrier_and_country(
        pd.Series(spid, copy=False), pd.Series(pd.array(to, dtype=STRING_DTYPE), copy=False)
    )
    if index is not None:
        spid, carrier, country = (
            pd.Categorical.from_codes(values.codes[index], categories=values.categories)
            for values in (spid, carrier, country)
        )
    spid_codes = pa.array(spid.codes.astype(np.int32), mask=spid.codes < 0)
    text = pd.array(pc.take(pa.array(list(spid.categories), pa.string()), spid_codes, memory_pool=pool()), dtype=STRING_DTYPE)
    return text, _string_categories(carrier), _string_categories(country)


def _send_offsets(stamp: np.ndarray, naive: np.ndarray, offset: np.ndarray, tracking_id) -> tuple[int, int]:
    """Naive stamps (µs as if UTC) given the offset of their send's other notifications, in place.

    The offset is the one most of the send's notifications with an offset
    carry (ties: the smallest). Returns how many took one and how many stay
    read as UTC.
    """
    rows = np.flatnonzero(naive)
    ids = pd.Series(tracking_id, copy=False)
    wanted = ids.iloc[rows]
    known = (offset != NO_OFFSET) & ids.isin(set(wanted.dropna())).to_numpy()
    if known.any():
        table = pd.DataFrame({"id": ids[known].to_numpy(), "offset": offset[known]})
        counts = table.groupby(["id", "offset"]).size().reset_index(name="n")
        best = counts.sort_values(["id", "n", "offset"], ascending=[True, False, True]).drop_duplicates("id")
        by_send = dict(zip(best["id"], best["offset"]))
    else:
        by_send = {}
    taken = 0
    for row, key in zip(rows.tolist(), wanted.tolist()):
        minutes = by_send.get(key) if isinstance(key, str) else None
        if minutes is not None:
            stamp[row] -= int(minutes) * 60_000_000
            taken += 1
    return taken, len(rows) - taken


def _implausible(values: np.ndarray) -> np.ndarray | None:
    """µs since the epoch (NaT = int64 min) outside :data:`skycore_lab.frames.times.PLAUSIBLE_TIMES`,
    or None when none is; worked through in slices, so no full-length temporaries are made."""
    start, end = (int(t.value // 1000) for t in PLAUSIBLE_TIMES)
    marked = None
    step = 1 << 16
    for at in range(0, len(values), step):
        chunk = values[at : at + step]
        outside = (chunk != np.iinfo(np.int64).min) & ((chunk < start) | (chunk >= end))
        if outside.any():
            if marked is None:
                marked = np.zeros(len(values), dtype=bool)
            marked[at : at + step] = outside
    return marked


def finish_frame(parts: list[Part], drop_duplicates: bool, notes: DataNotes | None = None) -> pd.DataFrame:
    """One frame from typed parts: arrival order, deduped, final dtypes and flags.

    Columns are taken one at a time and released from the parts as they
    are converted, so peak memory stays near one copy of the data. What
    needed care (parts' notes, inferred offsets, implausible times) is
    counted into ``notes``.
    """
    # filtered in place: the caller's list must not keep the parts (and their
    # columns) alive while the frame is assembled
    parts[:] = [p for p in parts if p.length]
    notes = notes if notes is not None else DataNotes()
    for part in parts:
        notes.take(part.source, part.notes)
    lengths = [p.length for p in parts]
    kinds = {name: pa.string() for name in (*TEXT_COLUMNS, *CATEGORY_COLUMNS)}
    kinds.update({col.TIMESTAMP: TS_TYPE, col.RECEIVED_AT: TS_TYPE, col.LINE: pa.int64()})
    columns = {name: pa.chunked_array([p.columns[name] for p in parts], type=kind) for name, kind in kinds.items()}
    total = sum(lengths)
    extras = np.full(total, None, dtype=object)
    # the flags' rows, as indices: most reads have none, and then no array is made
    recovered, inferred, naive_rows = [], [], []
    base = 0
    for part in parts:
        for i, value in part.extras.items():
            extras[base + i] = value
        if part.recovered is not None:
            recovered.append(base + part.recovered)
        if part.inferred is not None:
            inferred.append(base + np.flatnonzero(part.inferred))
        if part.naive is not None and part.naive.any():
            naive_rows.append(base + np.flatnonzero(part.naive))
        base += part.length

    def mask(rows: list) -> np.ndarray | None:
        if not rows:
            return None
        marked = np.zeros(total, dtype=bool)
        marked[np.concatenate(rows)] = True
        return marked

    flags = {col.RECOVERED: mask(recovered), col.TIMESTAMP_INFERRED: mask(inferred)}
    naive = mask(naive_rows)
    any_naive = naive is not None
    offsets = np.concatenate([p.stamp_offset for p in parts]) if any_naive else None
    first_naive = None
    if any_naive:
        at = int(np.flatnonzero(naive)[0])
        owner = int(np.searchsorted(np.cumsum(lengths), at, side="right"))
        line_of = parts[owner].columns[col.LINE]
        first_naive = (parts[owner].source, int(line_of[at - sum(lengths[:owner])].as_py()))
    fingerprints = np.concatenate([p.tracking_fingerprints for p in parts]) if parts else np.zeros(0, np.uint64)
    names = list(dict.fromkeys(name for p in parts for name in (p.row_sources or (p.source,))))
    position = {name: i for i, name in enumerate(names)}
    source_codes = np.concatenate([
        np.full(p.length, position[p.source], dtype=np.int64) if p.row_sources is None
        else np.array([position[name] for name in p.row_sources], dtype=np.int64)[p.source_rows]
        for p in parts
    ]) if parts else np.zeros(0, dtype=np.int64)
    parts.clear()  # from here on the chunked arrays hold the only references
    part = None  # nor the loop's last one

    # dictionary-encode the categories before ordering: only integer codes are
    # taken, on two threads (Arrow releases the GIL)
    encoded = (*CATEGORY_COLUMNS, col.SPID)
    with ThreadPoolExecutor(max_workers=min(2, os.cpu_count() or 1)) as workers:
        # the dedupe needs CODE's codes to start, the other categories' only for its exact
        # comparison: it runs while they are encoded
        futures = {name: workers.submit(_encode, columns[name]) for name in dict.fromkeys((col.CODE, *encoded))}
        index = keep_index(
            columns, extras, drop_duplicates, futures[col.CODE].result()[0], fingerprints,
            {name: (lambda future=future: future.result()[0]) for name, future in futures.items()},
        )
        del fingerprints
        dictionaries = {name: futures[name].result() for name in encoded}
        del futures

        kept = None
        if index is not None and bool(np.all(index[1:] > index[:-1])):
            kept = np.zeros(total, dtype=bool)
            kept[index] = True
            kept = pa.array(kept)

        def strings(name: str) -> pd.api.extensions.ExtensionArray:
            return pd.array(_take(columns, name, index, kept), dtype=STRING_DTYPE)

        # carrier and country need only SPID's codes and the numbers: they are looked up over the
        # rows as read (a retry has its original's SPID and number) on a worker, while the other
        # worker takes the texts and this thread converts the rest
        spid_codes, spid_dictionary = dictionaries.pop(col.SPID)
        columns.pop(col.SPID)
        looked_up = workers.submit(_spid_carrier_country, spid_codes, spid_dictionary, columns[col.TO], index)
        del spid_codes, spid_dictionary
        texts = {name: workers.submit(strings, name) for name in TEXT_COLUMNS if name != col.SPID}
        data: dict[str, object] = {}
        for name in CATEGORY_COLUMNS:
            columns.pop(name)
            values, dictionary = dictionaries.pop(name)
            data[name] = _categorical(values[index] if index is not None else values, dictionary)

        if index is not None:
            flags = {name: None if values is None else values[index] for name, values in flags.items()}
            naive = naive[index] if naive is not None else None
            offsets = offsets[index] if offsets is not None else None
        implausible = None
        for name in (col.TIMESTAMP, col.RECEIVED_AT):
            values = _take_numpy(columns, name, index).astype("datetime64[us]", copy=False)
            micros = values.view(np.int64)
            if name == col.TIMESTAMP and naive is not None and naive.any():
                micros = micros.copy()
                taken, assumed = _send_offsets(micros, naive, offsets, texts[col.TRACKING_ID].result())
                inferred_now = flags[col.TIMESTAMP_INFERRED]
                flags[col.TIMESTAMP_INFERRED] = naive if inferred_now is None else inferred_now | naive
                source, line = first_naive
                if taken:
                    notes.add(source, Note("inferred", line, "their send's offset"), taken)
                if assumed:
                    notes.add(source, Note("assumed", line), assumed)
                values = micros.view("datetime64[us]")
            outside = _implausible(micros)
            if outside is not None:
                implausible = outside if implausible is None else implausible | outside
            data[name] = pd.DatetimeIndex(values).tz_localize("UTC")
        flags[col.TIME_OUT_OF_RANGE] = implausible
        data[col.LINE] = _take_numpy(columns, col.LINE, index).astype(np.int64, copy=False)
        data[col.SOURCE] = pd.Categorical.from_codes(
            source_codes[index] if index is not None else source_codes, categories=pd.Index(names, dtype=STRING_DTYPE)
        )
        for name, future in texts.items():
            data[name] = future.result()
        del texts
        data[col.SPID], data[col.CARRIER], data[col.COUNTRY] = looked_up.result()
        del looked_up
    if implausible is not None:
        first = int(np.flatnonzero(implausible)[0])
        notes.add(str(data[col.SOURCE][first]), Note("implausible", int(data[col.LINE][first])), int(implausible.sum()))
    for name, values in flags.items():
        data[name] = values if values is not None else np.zeros(len(data[col.LINE]), dtype=bool)
    # a Series of dtype object: pandas would otherwise scan a million Nones for datetimes
    data[col.EXTRA] = pd.Series(extras[index] if index is not None else extras, dtype=object, copy=False)
    return pd.DataFrame({name: data[name] for name in col.EVENT_FRAME_COLUMNS}, copy=False)
