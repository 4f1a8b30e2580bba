"""ingest: the new complete records of postback files, appended to a Parquet dataset, once.

A run (under the dataset's lock):

1. **Recover.** The staging folder is emptied; part files the state file does
   not list (a run killed before its commit, or parts a committed run
   replaced) are removed. The dataset is then exactly its last commit.
2. **Plan.** Each source file is recognised by identity (device, inode, the
   SHA-256 of its first 4 KiB) and read from where the last run stopped, up to
   its last complete record (:func:`skycore_lab.postbacks.ranges.complete_end`:
   a torn last line, or a document not yet closed, waits for the next run). A
   file whose head changed or that got shorter than what was read was
   replaced or truncated: it is read again from its start. A file that moved
   (rotation: ``log`` → ``log.1``) keeps its identity and is completed under
   its new name; the new file under the old name is new. ``.gz`` and ``.xml``
   files (single documents, compressed logs) are taken whole, and again only
   when their size or head changes.
3. **Parse** the ranges a batch at a time (:func:`~skycore_lab.postbacks.ranges.read_postback_ranges`:
   read_postbacks' code, its dedupe across the batch). A batch is whole files
   holding about :data:`BATCH_BYTES` of new bytes (at least one file), and
   each batch is a run of its own (steps 3–5, one commit each), so memory is
   bounded by the batch, not by the logs: 20 million records do not have to
   fit in one frame. Retries that fall in different batches are found in
   step 4 as across runs.
4. **Dedupe against the dataset.** Each row's key under the one dedupe rule
   (:func:`skycore_lab.dataset.store.retry_keys`: tracking id, code,
   timestamp) is looked up among the keys stored in the part files that could
   hold a copy: those of the rows' event-date partitions (a retry has the same
   TIMESTAMP, so the same date) and, for rows without a TIMESTAMP, the parts
   that hold such rows (their count is in the state). Only rows whose key is
   found are compared in full, existing and new together, by
   :func:`skycore_lab.postbacks.drop_duplicate_events` — so the copy kept is
   the one :func:`skycore_lab.read_postbacks` would keep, the earliest
   received. When that is the new copy, the part holding the old one is
   rewritten without it (under the run's name; the old part retired).
5. **Commit.** The new parts are written under unique names (``part-<run>-…``)
   in ``_staging/<run>/``, fsynced, renamed into their partitions, and the
   state file is replaced atomically (listing the new parts, leaving out the
   retired ones, with each file's new offset). Then the retired parts are
   removed. A kill at any point leaves the last commit readable, and the next
   run redoes the rest: no duplicates, no gaps.
"""

from __future__ import annotations

import os
import secrets
import shutil
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .. import columns as col
from ..postbacks import drop_duplicate_events
from ..postbacks.logs import MAX_RECORD_BYTES
from ..postbacks.ranges import FileRange, complete_end, read_postback_ranges
from ..postbacks.reader import detect_format, postback_files
from ..postbacks.records import BadLines, OnBadLines
from .state import (
    HEAD_BYTES,
    STAGING,
    STATE_FILE,
    DatasetLock,
    FileProgress,
    head_digest,
    read_state,
    write_state,
)
from .store import KEY, PARTITION, SUB, event_dates, fsync_directory, retry_keys, to_frame, to_table, write_part

__all__ = ["ingest", "IngestResult", "PAUSE_ENV", "committed_parts"]

#: Test hook: ``"<point>:<marker file>"`` makes a run touch the marker and sleep at that point
#: (``parsed``, ``staged``, ``renamed`` — after the first rename —, ``committed``), so a test can kill it there.
PAUSE_ENV = "SKYCORE_LAB_INGEST_PAUSE"
_SCAN = 16 * 1024 * 1024


@dataclass(frozen=True)
class IngestResult:
    """What one :func:`ingest` run did.

    Attributes
    ----------
    files : int
        Source files looked at.
    new_records : int
        Notifications appended to the dataset.
    bad_records : int
        Records that were not postbacks (handled by ``on_bad_lines``).
    duplicates_dropped : int
        Notifications read but not appended: the platform's retries, within
        this run or of rows already in the dataset.
    summary : pandas.DataFrame
        One row per source file: ``source`` (str), ``status`` (str: ``new``,
        ``appended``, ``unchanged``, ``waiting`` — only an incomplete record
        was added —, ``rotated`` — read on under a new name —, ``restarted``
        — truncated or replaced, read from its start —, ``retaken`` — a
        whole-read file that changed), ``format`` (str), ``bytes_read``,
        ``records``, ``new_records``, ``duplicates``, ``bad_records`` (int64).
    run_id : str
        The id of the run's last committed batch (its part files are named after it); empty when
        nothing was written.
    """

    files: int
    new_records: int
    bad_records: int
    duplicates_dropped: int
    summary: pd.DataFrame = field(compare=False, repr=False)
    run_id: str = ""


def _pause(point: str) -> None:
    hook = os.environ.get(PAUSE_ENV)
    if not hook:
        return
    wanted, _, marker = hook.partition(":")
    if wanted == point:
        with open(marker, "w") as handle:
            handle.write(str(os.getpid()))
        time.sleep(600)


def _new_run_id() -> str:
    return f"{datetime.now(timezone.utc):%Y%m%dT%H%M%S%f}-{secrets.token_hex(4)}"


def committed_parts(dataset: str, state: dict) -> list[str]:
    """Absolute paths of the state's part files, in commit order."""
    return [os.path.join(dataset, relative) for relative in state["parts"]]


def _recover(dataset: str, state: dict) -> None:
    """Back to the last commit: staging emptied, unlisted part files and temporary states removed."""
    shutil.rmtree(os.path.join(dataset, STAGING), ignore_errors=True)
    listed = set(state["parts"])
    for name in os.listdir(dataset):
        path = os.path.join(dataset, name)
        if name.startswith(f".{STATE_FILE}.") and name.endswith(".tmp"):
            os.unlink(path)
        elif name.startswith(f"{PARTITION}=") and os.path.isdir(path):
            for part in os.listdir(path):
                if part.endswith(".parquet") and f"{name}/{part}" not in listed:
                    os.unlink(os.path.join(path, part))
            if not os.listdir(path):
                os.rmdir(path)
    missing = [relative for relative in listed if not os.path.exists(os.path.join(dataset, relative))]
    if missing:
        from ..exceptions import DatasetError

        raise DatasetError(f"{dataset}: {len(missing)} committed part file(s) are missing, e.g. {missing[0]}; "
                           "the dataset was changed by hand")


# --- planning: what to read of each file ------------------------------------------------------------
@dataclass
class _Plan:
    path: str
    status: str
    progress: FileProgress  # after this run
    range: FileRange | None = None


def _last_complete(handle, start: int, size: int, kind: str) -> tuple[int, int]:
    """``(end, newlines in [start, end))``: how far the file holds complete records."""
    if kind == "xml":  # document files are read whole by the parser anyway
        data = os.pread(handle.fileno(), size - start, start)
        end = start + complete_end(data, kind)
        return end, data.count(b"\n", 0, end - start)
    end, position = start, size
    while position > start:  # back to the last newline
        begin = max(start, position - _SCAN)
        cut = os.pread(handle.fileno(), position - begin, begin).rfind(b"\n")
        if cut >= 0:
            end = begin + cut + 1
            break
        position = begin
    lines, at = 0, start
    while at < end:
        block = os.pread(handle.fileno(), min(_SCAN, end - at), at)
        lines += block.count(b"\n")
        at += len(block)
    return end, lines


def _plan(path: str, known: dict[tuple[int, int], FileProgress]) -> _Plan:
    with open(path, "rb") as handle:
        stat = os.fstat(handle.fileno())
        size, fd = stat.st_size, handle.fileno()
        whole = path.endswith(".gz") or path.lower().endswith(".xml")
        entry = known.get((stat.st_dev, stat.st_ino))
        status = "appended"
        if entry is not None:
            count, digest = head_digest(fd, entry.head_bytes)
            if count < entry.head_bytes or digest != entry.head or size < entry.offset:
                entry, status = None, "restarted"
            elif entry.path != path:
                status = "rotated"
        if entry is None:
            count, digest = head_digest(fd, size)
            entry = FileProgress(path, stat.st_dev, stat.st_ino, count, digest, None, whole, size)
            status = "new" if status != "restarted" else status
        progress = replace(entry, path=path)
        if progress.head_bytes < HEAD_BYTES and size > progress.head_bytes:
            progress.head_bytes, progress.head = head_digest(fd, size)
        if whole:
            if status in ("appended", "rotated") and entry.size == size and entry.offset == size:
                return _Plan(path, "unchanged", progress)
            if status == "appended":
                status = "retaken"
            progress.offset, progress.size = size, size
            return _Plan(path, status, progress, FileRange(path, 0, None, 1, None))
        progress.size = size
        if size == progress.offset:
            return _Plan(path, "unchanged", progress)
        if progress.kind is None:
            head = os.pread(fd, 64 * 1024, 0)
            if b"\n" not in head:  # a long first line: up to a record's largest size
                head = os.pread(fd, MAX_RECORD_BYTES + 1, 0)
            # from whole lines only: a torn first line can look like another format
            kind = detect_format(head[: head.rfind(b"\n") + 1])
            if kind == "empty":
                return _Plan(path, "waiting", progress)
            progress.kind = kind
        end, lines = _last_complete(handle, progress.offset, size, progress.kind)
        if end == progress.offset:
            return _Plan(path, "waiting", progress)
        item = FileRange(path, progress.offset, end, progress.line, progress.kind)
        progress.offset, progress.line = end, progress.line + lines
        return _Plan(path, status, progress, item)


# --- dedupe against the dataset ---------------------------------------------------------------------
def _arrival_sorted(frame: pd.DataFrame, ranks: dict[str, int]) -> pd.DataFrame:
    """Rows in read_postbacks' order: received_at (missing last), then file order, line, place in record."""
    order = pd.DataFrame({
        "missing": frame[col.RECEIVED_AT].isna().to_numpy(),
        "received": frame[col.RECEIVED_AT].to_numpy(dtype="datetime64[us]").view(np.int64),
        "rank": frame[col.SOURCE].astype(object).map(ranks).fillna(len(ranks)).to_numpy(dtype=np.int64),
        "line": frame[col.LINE].to_numpy(),
        "sub": frame[SUB].to_numpy(),
    })
    index = order.sort_values(["missing", "received", "rank", "line", "sub"], kind="stable").index.to_numpy()
    return frame.iloc[index]


@dataclass
class _Against:
    keep: np.ndarray  # bool per new row
    superseded: dict[str, pd.DataFrame]  # relative part path → its rows to remove (source, line, _sub, _key)


def _against_dataset(dataset: str, state: dict, frame: pd.DataFrame, keys: np.ndarray, dates: np.ndarray,
                     ranks: dict[str, int]) -> _Against:
    keep = np.ones(len(frame), dtype=bool)
    stamped = frame[col.TIMESTAMP].notna().to_numpy()
    wanted = {f"{PARTITION}={d}" for d in pd.unique(dates[stamped])}
    unstamped = not stamped.all()
    parts = [relative for relative, info in state["parts"].items()
             if relative.split("/", 1)[0] in wanted or (unstamped and info.get("null_stamps", 0))]
    if not parts or not len(frame):
        return _Against(keep, {})
    stored = {relative: pq.read_table(os.path.join(dataset, relative), columns=[KEY]).column(KEY).to_numpy()
              for relative in parts}
    candidates = np.isin(keys, np.concatenate(list(stored.values())))
    if not candidates.any():
        return _Against(keep, {})
    wanted_keys = np.unique(keys[candidates])
    existing = []
    for relative, stored_keys in stored.items():
        if not np.isin(stored_keys, wanted_keys).any():
            continue
        table = pq.read_table(os.path.join(dataset, relative), filters=pc.field(KEY).isin(pa.array(wanted_keys)))
        rows = to_frame(table, [*col.EVENT_FRAME_COLUMNS, KEY, SUB])
        rows["_part"], rows["_new"] = relative, -1
        existing.append(rows)
    new = frame.loc[candidates, list(col.EVENT_FRAME_COLUMNS)].copy()
    new[KEY], new[SUB] = keys[candidates], frame[SUB].to_numpy()[candidates]
    new["_part"], new["_new"] = "", np.flatnonzero(candidates)
    both = pd.concat([*existing, new], ignore_index=True)
    for name in (col.SOURCE, *(c for c in col.EVENT_FRAME_COLUMNS if isinstance(both[c].dtype, pd.CategoricalDtype))):
        both[name] = both[name].astype(object)
    both["_id"] = np.arange(len(both))
    kept = drop_duplicate_events(_arrival_sorted(both, ranks))
    survivors = set(kept["_new"].tolist())
    for position in np.flatnonzero(candidates):
        keep[position] = int(position) in survivors
    gone = both.loc[(both["_new"] < 0) & ~both["_id"].isin(kept["_id"])]
    superseded = {relative: rows[[col.SOURCE, col.LINE, SUB, KEY]] for relative, rows in gone.groupby("_part")}
    return _Against(keep, superseded)


def _without(table: pa.Table, rows: pd.DataFrame) -> pa.Table:
    drop = set(zip(rows[col.SOURCE].astype(str), rows[col.LINE].astype(int), rows[SUB].astype(int),
                   rows[KEY].astype(np.uint64).tolist()))
    ident = zip(table.column(col.SOURCE).cast(pa.string()).to_pylist(), table.column(col.LINE).to_pylist(),
                table.column(SUB).to_pylist(), table.column(KEY).to_pylist())
    mask = pa.array([key not in drop for key in ident])
    return table.filter(mask)


# --- the run ----------------------------------------------------------------------------------------
def ingest(sources, dataset, *, on_bad_lines: OnBadLines = "warn") -> IngestResult:
    """Append the new complete records of postback files to a Parquet dataset.

    Parameters
    ----------
    sources : str, os.PathLike or list of them
        Files, globs, directories, as :func:`skycore_lab.read_postbacks`
        takes them, in any format it reads. Give the same sources in the same
        order each run: rows are returned in file order after arrival, and
        the order files were first ingested is the dataset's.
    dataset : str or os.PathLike
        The dataset's folder (created if missing; its parent must exist).
    on_bad_lines : {"warn", "error", "skip"} or callable, default "warn"
        As in :func:`skycore_lab.read_postbacks`. With ``"error"`` the first
        bad record raises and nothing of its batch is committed
        (earlier batches of the run, :data:`BATCH_BYTES` each, are; a re-run goes on from them).

    Returns
    -------
    IngestResult
        Counts, and a summary frame per file.

    Notes
    -----
    Layout: ``DIR/event_date=YYYY-MM-DD/part-<run>-<n>.parquet`` (hive
    partitions by the UTC date of each event's time, TIMESTAMP else
    ``received_at``; ``event_date=unknown`` without either), the state file
    ``DIR/_ingest_state.json`` and the lock ``DIR/_ingest.lock``. Read it
    with :func:`skycore_lab.read_events`, which reads only committed parts.
    Any Parquet reader can read the folder too (it skips ``_``-names), but
    may see a run's parts between their rename and the commit. How a run
    reads incrementally, stays crash-safe and dedupes across runs: see
    :mod:`skycore_lab.dataset.ingest`.

    Decisions where the issue is silent:

    * The retries' keys are not kept in a separate index: each part file
      stores its rows' 64-bit keys (``_key``), and a run reads the key column
      of the partitions its new rows fall in (the dates a retry can be in).
      That costs 8 bytes a row on disk and reads only today's keys in a daily
      routine; a global index would grow without bound in memory.
    * A torn last line of a file that was rotated away waits forever (the
      writer may still append to it); :func:`skycore_lab.read_postbacks`
      would report it as a bad record.
    * A truncated or replaced file is read again from its start; rows taken
      from its old content stay in the dataset (the dedupe drops what is
      the same).
    * Rows keep the name their file had when they were read (a rotated
      file's later rows carry its new name).
    * Offsets of naive TIMESTAMPs (2011–2012 envelopes) are inferred from the
      notifications read in the same batch, not from the whole dataset.
    """
    BadLines(on_bad_lines)  # a bad policy fails before anything is read
    dataset = os.fspath(dataset)
    paths = postback_files(sources)
    os.makedirs(dataset, exist_ok=True)
    with DatasetLock(dataset):
        state = read_state(dataset)
        _recover(dataset, state)
        results = []
        for batch in _batches(paths, state):
            results.append(_run(batch, dataset, state, on_bad_lines))
            state = read_state(dataset)  # the batch's commit is the next batch's starting point
        return _combined(results)


#: New bytes parsed per batch (whole files; a larger file is one batch of its own): bounds an
#: ingest's memory at a few times the frame of this many bytes of logs, whatever their total.
BATCH_BYTES = 1 << 30


def _batches(paths: list[str], state: dict) -> list[list[str]]:
    """Consecutive groups of files with about :data:`BATCH_BYTES` of unread bytes each (an estimate from ``stat``)."""
    read_up_to = {(entry.device, entry.inode): entry.offset for entry in state["files"]}
    batches: list[list[str]] = [[]]
    pending = 0
    for path in paths:
        try:
            stat = os.stat(path)
            new = max(stat.st_size - read_up_to.get((stat.st_dev, stat.st_ino), 0), 0)
        except OSError:
            new = 0  # gone since it was listed: its plan says so
        if batches[-1] and pending + new > BATCH_BYTES:
            batches.append([])
            pending = 0
        batches[-1].append(path)
        pending += new
    return batches


def _combined(results: list[IngestResult]) -> IngestResult:
    if len(results) == 1:
        return results[0]
    return IngestResult(
        files=sum(r.files for r in results), new_records=sum(r.new_records for r in results),
        bad_records=sum(r.bad_records for r in results),
        duplicates_dropped=sum(r.duplicates_dropped for r in results),
        summary=pd.concat([r.summary for r in results], ignore_index=True),
        run_id=next((r.run_id for r in reversed(results) if r.run_id), ""),
    )


def _run(paths: list[str], dataset: str, state: dict, on_bad_lines: OnBadLines) -> IngestResult:
    known = {(entry.device, entry.inode): entry for entry in state["files"]}
    plans = [_plan(path, known) for path in paths]
    ranges = [plan.range for plan in plans if plan.range is not None]
    frame, counts = read_postback_ranges(ranges, on_bad_lines=on_bad_lines) if ranges else (None, [])
    _pause("parsed")
    count_of = {count.path: count for count in counts}
    for plan in plans:
        if plan.range is not None and plan.progress.kind is None:
            plan.progress.kind = count_of[plan.path].kind
    sources = list(state["sources"])
    for path in paths:
        if path not in sources:
            sources.append(path)
    ranks = {name: i for i, name in enumerate(sources)}
    superseded: dict[str, pd.DataFrame] = {}
    read_rows = sum(count.records for count in counts)
    if frame is not None and len(frame):
        frame[SUB] = frame.groupby([col.SOURCE, col.LINE], observed=True, sort=False).cumcount().to_numpy(np.int32)
        keys, dates = retry_keys(frame), event_dates(frame)
        against = _against_dataset(dataset, state, frame, keys, dates, ranks)
        if not against.keep.all():
            frame, keys, dates = frame[against.keep], keys[against.keep], dates[against.keep]
        superseded = against.superseded
    else:
        frame, keys, dates = None, np.zeros(0, np.uint64), np.zeros(0, object)

    run_id = _new_run_id()
    new_parts, retired = _commit_parts(dataset, run_id, frame, keys, dates, superseded, state)
    files = {(entry.device, entry.inode): entry for entry in state["files"]}
    for plan in plans:
        files[(plan.progress.device, plan.progress.inode)] = plan.progress
    parts = {relative: info for relative, info in state["parts"].items() if relative not in retired}
    parts.update(new_parts)
    written = frame is not None and len(frame) > 0
    if written or superseded or plans:
        new_state = dict(state, parts=parts, files=list(files.values()), sources=sources,
                         runs=state["runs"] + 1, last_run=run_id)
        write_state(dataset, new_state, run_id)
        _pause("committed")
    for relative in retired:
        try:
            os.unlink(os.path.join(dataset, relative))
        except FileNotFoundError:
            pass
    shutil.rmtree(os.path.join(dataset, STAGING), ignore_errors=True)
    kept = frame[col.SOURCE].astype(object).value_counts().to_dict() if written else {}
    rows = []
    for plan in plans:
        count = count_of.get(plan.path)
        records = count.records if count else 0
        rows.append({
            "source": plan.path, "status": plan.status, "format": plan.progress.kind or "",
            "bytes_read": (plan.range.end if plan.range.end is not None else plan.progress.size) - plan.range.start
            if plan.range else 0,
            "records": records, "new_records": int(kept.get(plan.path, 0)),
            "duplicates": records - int(kept.get(plan.path, 0)), "bad_records": count.bad_records if count else 0,
        })
    summary = pd.DataFrame(rows, columns=["source", "status", "format", "bytes_read", "records", "new_records",
                                          "duplicates", "bad_records"])
    for name in ("source", "status", "format"):
        summary[name] = summary[name].astype("str")
    for name in ("bytes_read", "records", "new_records", "duplicates", "bad_records"):
        summary[name] = summary[name].astype(np.int64)
    new_records = len(frame) if written else 0
    return IngestResult(
        files=len(plans), new_records=new_records, bad_records=int(summary["bad_records"].sum()),
        duplicates_dropped=read_rows - new_records, summary=summary, run_id=run_id if written or superseded else "",
    )


def _commit_parts(dataset: str, run_id: str, frame: pd.DataFrame | None, keys: np.ndarray, dates: np.ndarray,
                  superseded: dict[str, pd.DataFrame], state: dict) -> tuple[dict[str, dict], set[str]]:
    """Stage the run's parts, rename them into their partitions; return them and the parts they retire."""
    staging = os.path.join(dataset, STAGING, run_id)
    staged: list[tuple[str, str, dict]] = []  # (staged path, relative final path, info)

    def stage(table: pa.Table, partition: str, name: str) -> None:
        folder = os.path.join(staging, partition)
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, name)
        write_part(table, path)
        null_stamps = int(table.column(col.TIMESTAMP).null_count)
        staged.append((path, f"{partition}/{name}", {"rows": table.num_rows, "null_stamps": null_stamps}))

    if frame is not None and len(frame):
        subs = frame[SUB].to_numpy()
        codes, labels = pd.factorize(dates, sort=True)
        for number, date in enumerate(labels):
            rows = np.flatnonzero(codes == number)
            table = to_table(frame.iloc[rows], keys[rows], subs[rows])
            stage(table, f"{PARTITION}={date}", f"part-{run_id}-{number}.parquet")
    for number, (relative, rows) in enumerate(sorted(superseded.items())):
        table = _without(pq.read_table(os.path.join(dataset, relative)), rows)
        if table.num_rows:
            stage(table, relative.split("/", 1)[0], f"part-{run_id}-r{number}.parquet")
    _pause("staged")
    for index, (path, relative, _info) in enumerate(staged):
        folder = os.path.join(dataset, os.path.dirname(relative))
        os.makedirs(folder, exist_ok=True)
        os.replace(path, os.path.join(dataset, relative))
        fsync_directory(folder)
        if index == 0:
            _pause("renamed")
    return {relative: info for _path, relative, info in staged}, set(superseded)

