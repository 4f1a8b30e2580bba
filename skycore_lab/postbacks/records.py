"""Collecting parsed records before they are typed: batches, rows, and the bad-record policy.

A :class:`Batch` is the records of one buffer or file as an Arrow table of
field texts ('' = absent) with their line numbers; :class:`Rows` builds one
row by row for the general path. :class:`BadLines` applies the caller's
``on_bad_lines`` policy to records that are not postbacks.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Union

import numpy as np
import pyarrow as pa

from ..exceptions import PostbackParseError, PostbackParseWarning
from .schema import BATCH_SCHEMA

__all__ = ["OnBadLines", "Batch", "Rows", "rows_table", "BadLines", "BadCollector"]

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

    def add(self, fields: tuple[str, ...], extra: dict | None, line: int, received: str = "") -> None:
        if extra:
            self.extras[len(self.rows)] = extra
        self.rows.append((received, *fields))
        self.lines.append(line)

    def batch(self) -> Batch:
        return Batch(self.source, rows_table(self.rows), np.asarray(self.lines, dtype=np.int64), self.extras)


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
