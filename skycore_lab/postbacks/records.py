"""Collecting parsed records before they are typed: batches, rows, and the bad-record policy.

A :class:`Batch` is the records of one buffer or file as an Arrow table of
field texts ('' = absent) with their line numbers; :class:`Rows` builds one
row by row for the general path (one row per notification: a bundle gives
several). :class:`BadLines` applies the caller's ``on_bad_lines`` policy to
records that are not postbacks; :class:`DataNotes` counts what was read but
needed care (repairs, inferred offsets, implausible times, capped extras)
and says so in one :class:`~skycore_lab.PostbackDataWarning`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Union

import numpy as np
import pyarrow as pa

from ..exceptions import PostbackDataWarning, PostbackParseError, PostbackParseWarning
from .documents import Parsed
from .schema import BATCH_SCHEMA

__all__ = ["OnBadLines", "Batch", "Rows", "rows_table", "BadLines", "BadCollector", "DataNotes", "Note"]

#: What ``on_bad_lines`` may be (see :func:`skycore_lab.read_postbacks`).
OnBadLines = Union[Literal["error", "warn", "skip"], Callable[[bytes, PostbackParseError], None]]
_FIRST_BAD_SHOWN = 5


@dataclass
class Batch:
    """Records of one buffer: an Arrow table of texts ('' = absent) plus their lines."""

    source: str
    table: pa.Table  # BATCH_SCHEMA
    lines: np.ndarray  # int64, 1-based line of each record
    extras: dict[int, dict] = field(default_factory=dict)  # row → extra
    padded: bool = True  # element text may carry spaces to strip
    received_at: pa.Array | None = None  # already typed (fast path); else parsed from the table
    timestamp: pa.Array | None = None  # likewise for TIMESTAMP (all records, or None)
    nullified: bool = False  # absent/empty texts are already null (fast path), not ''
    line_count: int = 0  # lines in the buffer (receiver logs)
    recovered: np.ndarray | None = None  # int64 rows read from a repaired document (None: none)
    notes: list = field(default_factory=list)  # Note(kind, line, detail) of the general path
    timestamp_naive: np.ndarray | None = None  # bool per row: TIMESTAMP read without a UTC offset
    timestamp_offset: np.ndarray | None = None  # int16 minutes per row of TIMESTAMP's offset (NO_OFFSET)

    def __len__(self) -> int:
        return len(self.lines)


def rows_table(rows: list[tuple[str, ...]]) -> pa.Table:
    """Table from ``(received, *13 fields)`` tuples."""
    if not rows:
        return BATCH_SCHEMA.empty_table()
    columns = list(zip(*rows))
    return pa.table([pa.array(c, pa.string()) for c in columns], schema=BATCH_SCHEMA)


class Rows:
    """Row-wise collector for the slow formats, turned into a :class:`Batch`."""

    def __init__(self, source: str):
        self.source = source
        self.rows: list[tuple[str, ...]] = []
        self.lines: list[int] = []
        self.extras: dict[int, dict] = {}
        self.recovered: list[int] = []
        self.notes: list[Note] = []

    def add(self, fields: tuple[str, ...], extra: dict | None, line: int, received: str = "") -> None:
        if extra:
            self.extras[len(self.rows)] = extra
        self.rows.append((received, *fields))
        self.lines.append(line)

    def add_parsed(self, parsed: Parsed, line: int, received: str = "", *, inner_lines: bool = False) -> None:
        """Every notification of a parsed record, at ``line`` (or, with
        ``inner_lines``, at ``line`` plus its own line within the document)."""
        for notification in parsed.notifications:
            at = line + notification.line - 1 if inner_lines else line
            if notification.recovered:
                self.recovered.append(len(self.rows))
            if notification.dropped:
                self.notes.append(Note("dropped", at, str(notification.dropped)))
            self.add(notification.fields, notification.extra, at, received)
        if parsed.repairs:
            self.notes.append(Note("repaired", line, "; ".join(parsed.repairs)))

    def batch(self) -> Batch:
        return Batch(
            self.source, rows_table(self.rows), np.asarray(self.lines, dtype=np.int64), self.extras,
            recovered=np.asarray(self.recovered, dtype=np.int64) if self.recovered else None, notes=self.notes,
        )


class BadLines:
    """Applies the ``on_bad_lines`` policy; remembers what it skipped."""

    def __init__(self, policy: OnBadLines):
        if not (callable(policy) or policy in ("error", "warn", "skip")):
            raise ValueError(f"on_bad_lines must be 'error', 'warn', 'skip' or a callable, not {policy!r}")
        self.policy = policy
        self.count = 0
        self.first: list[PostbackParseError] = []

    def __call__(self, raw: bytes, source: str, line: int | None, reason: str) -> None:
        error = PostbackParseError(source, line, reason)
        if self.policy == "error":
            raise error
        self.count += 1
        if len(self.first) < _FIRST_BAD_SHOWN:
            self.first.append(error)
        if callable(self.policy):
            self.policy(raw, error)

    def finish(self) -> None:
        if self.policy == "warn" and self.count:
            where = "; ".join(str(e) for e in self.first)
            more = f" (first {len(self.first)} shown)" if self.count > len(self.first) else ""
            warnings.warn(
                f"skipped {self.count} malformed postback record(s){more}: {where}",
                PostbackParseWarning,
                stacklevel=3,
            )


class BadCollector:
    """Stands in for :class:`BadLines` in a worker process: records, decides nothing."""

    def __init__(self):
        self.records: list[tuple[bytes, int | None, str]] = []

    def __call__(self, raw: bytes, source: str, line: int | None, reason: str) -> None:
        self.records.append((raw, line, reason))


@dataclass(frozen=True)
class Note:
    """Something read that needed care: its kind, the 1-based line, a detail."""

    kind: str  # "repaired", "dropped", "inferred", "assumed", "implausible"
    line: int | None
    detail: str = ""
    count: int = 1  # how many rows the note stands for (its line: the first of them)


_NOTE_TEXT = {
    "repaired": "record(s) were not well-formed XML and were repaired (recovered=True)",
    "dropped": "record(s) had more extra elements than kept (MAX_EXTRA_VALUES/BYTES); the rest were dropped",
    "inferred": "TIMESTAMP(s) had no UTC offset: took their envelope's CREATED offset or their send's "
    "(timestamp_inferred=True)",
    "assumed": "TIMESTAMP(s) had no UTC offset and nothing to take one from: read as UTC (timestamp_inferred=True)",
    "implausible": "time(s) lie outside frames.times.PLAUSIBLE_TIMES (time_out_of_range=True; values kept)",
}


class DataNotes:
    """Counts :class:`Note` s by kind, remembering the first places; warns once at the end."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.first: dict[str, list[str]] = {}

    def add(self, source: str, note: Note, count: int = 1) -> None:
        self.counts[note.kind] = self.counts.get(note.kind, 0) + count
        shown = self.first.setdefault(note.kind, [])
        if len(shown) < _FIRST_BAD_SHOWN:
            where = f"{source}:{note.line}" if note.line is not None else source
            shown.append(f"{where} ({note.detail})" if note.detail else where)

    def take(self, source: str, notes: list) -> None:
        for note in notes:
            self.add(source, note, note.count)

    def finish(self, stacklevel: int = 3) -> None:
        if not self.counts:
            return
        parts = []
        for kind, count in self.counts.items():
            parts.append(f"{count} {_NOTE_TEXT[kind]}: {'; '.join(self.first[kind])}")
        warnings.warn("; ".join(parts), PostbackDataWarning, stacklevel=stacklevel)
