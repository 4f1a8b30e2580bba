"""Read Skycore postbacks, in any format they were stored in, into one typed frame.

:func:`read_postbacks` reads the receiver's log (:mod:`skycore_lab._logformat`),
files of concatenated ``<POSTBACK>`` documents, directories of single-document
``.xml`` files and lines of form-encoded bodies (``xml=%3C…``), ``.gz`` or not,
and detects which is which. :class:`PostbackTail` reads what a live receiver
log gained since the last call. :func:`events_from_bodies` parses bodies held
in memory.

How it is fast: in a receiver-log buffer (4 MiB of whole lines), one
compiled pass (:func:`skycore_lab._fastparse.scan_log_buffer`, numba)
proves the lines that have the flat document shape well-formed, finds
their fields' text and reads their timestamps; Arrow copies the fields out
of the buffer into columns, without a Python object per record, and the
tracking ids are fingerprinted for the dedupe; two threads do this for two
buffers at once (the kernel, Arrow and numpy release the GIL). Everything
else (entities, other field orders, unknown elements, the legacy
``NOTIFICATION`` envelope, form-encoded bodies, other files) goes through
the hardened lxml parser (:mod:`skycore_lab._xml`), and timestamps in
other shapes through Arrow's ISO-8601 cast. Carriers are looked up once
per distinct SPID, and the frame is assembled one column at a time.
"""

from __future__ import annotations

import ctypes
import glob
import gzip
import json
import os
import re
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Union
from urllib.parse import parse_qsl

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from . import columns as col
from ._fastparse import BATCH_SCHEMA as _BATCH_SCHEMA
from ._fastparse import FIELD_TAGS, NO_FIELDS, document_fields
from ._fastparse import RECEIVED as _RECEIVED
from ._fastparse import TS_TYPE as _TS_TYPE
from ._fastparse import scan_log_buffer as _scan_log_buffer
from ._fastparse import string_fingerprints as _string_fingerprints
from ._logformat import unescape_body
from ._secrets import mask_secret
from ._xml import XMLSyntaxError, parse_xml
from .exceptions import PostbackParseError
from .reference import AMBIGUOUS_SPIDS, country_of_number, spid_lookup

__all__ = [
    "read_postbacks",
    "events_from_bodies",
    "PostbackTail",
    "PostbackParseWarning",
    "LINE",
    "EVENT_FRAME_COLUMNS",
]

#: Name of the extra column holding the 1-based line where a record starts.
LINE = col.LINE
#: Columns of every frame this module returns: EVENT_COLUMNS with ``line``
#: inserted after ``source``.
EVENT_FRAME_COLUMNS: tuple[str, ...] = (*col.EVENT_COLUMNS[:-1], LINE, col.EXTRA)

#: Element → column, for the documented POSTBACK children.
TAG_COLUMNS: dict[str, str] = dict(
    zip(
        FIELD_TAGS,
        (
            col.ORIGIN,
            col.CODE,
            col.STATUS,
            col.SENT_AS,
            col.MMS_ID,
            col.SENDER,
            col.TO,
            col.TRACKING_ID,
            col.SPID,
            col.TIMESTAMP,
            col.HANDSET,
            col.AGGREGATOR_ID,
            col.STATUS_DETAILS,
        ),
    )
)
_FIELD_INDEX = {tag: i for i, tag in enumerate(FIELD_TAGS)}
_STRING_COLUMNS = (
    col.MMS_ID,
    col.SENDER,
    col.TO,
    col.TRACKING_ID,
    col.SPID,
    col.HANDSET,
    col.AGGREGATOR_ID,
    col.STATUS_DETAILS,
)
_CATEGORICAL_FIELDS = (col.ORIGIN, col.CODE, col.STATUS, col.SENT_AS)
_DEDUPE_KEY = (col.TRACKING_ID, col.CODE, col.TIMESTAMP)
STRING_DTYPE = pd.StringDtype("pyarrow", na_value=np.nan)  # pandas' default ``str``
DATETIME_DTYPE = "datetime64[us, UTC]"

# Timestamps Arrow's cast reads once normalised: ``T`` or space, fraction,
# ``Z``/``±HH:MM``/``±HHMM``/``±HH`` or no offset at all (taken as UTC).
_TIMESTAMP_SHAPE = r"^\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d(?::?\d\d)?)?$"
_HAS_OFFSET = r"(?:Z|[+-]\d\d(?::?\d\d)?)$"

#: How many bytes of a receiver log are parsed at a time (whole lines).
READ_BUFFER_BYTES = 4 * 1024 * 1024
_FIRST_BAD_SHOWN = 5
_SCHEMA_ATTRS = frozenset(
    {
        "{http://www.w3.org/2001/XMLSchema-instance}noNamespaceSchemaLocation",
        "{http://www.w3.org/2001/XMLSchema-instance}schemaLocation",
    }
)

OnBadLines = Union[Literal["error", "warn", "skip"], Callable[[bytes, PostbackParseError], None]]


class PostbackParseWarning(UserWarning):
    """Some postback records were malformed and skipped (``on_bad_lines="warn"``)."""


class _BadRecord(Exception):
    """A record that is not a postback; the message is the reason."""


# --- one document ------------------------------------------------------------------------
def _text(element) -> str:
    # itertext: text split by a (removed) comment or nested markup is kept whole
    return "".join(element.itertext()).strip(" \t\r\n")


def _local(tag) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _put(values: list[str], extra: dict, tag: str, text: str) -> None:
    index = _FIELD_INDEX.get(tag)
    if index is not None and not values[index]:
        values[index] = text
    elif index is None or text:
        # unknown element, or a repeated known one: keep it, don't drop it
        key = tag
        while key in extra:
            key += "_"
        extra[key] = text


def _parse_xml_document(data: bytes) -> tuple[tuple[str, ...], dict | None]:
    """Fields and extras of one document via lxml (the slow, general path)."""
    try:
        root = parse_xml(data)
    except XMLSyntaxError as exc:
        raise _BadRecord(f"not well-formed XML: {exc}") from None
    except ValueError as exc:  # e.g. unicode strings with an encoding declaration
        raise _BadRecord(f"not well-formed XML: {exc}") from None
    values = list(NO_FIELDS)
    extra: dict[str, str] = {}
    name = _local(root.tag)
    for attr, value in root.attrib.items():
        if attr not in _SCHEMA_ATTRS:
            extra[_local(attr)] = value
    if name == "POSTBACK":
        for child in root:
            _put(values, extra, _local(child.tag), _text(child))
    elif name == "NOTIFICATION":
        # 2011 envelope: ORIGIN/CODE at the top, the rest inside BODY,
        # STATUS as attributes; ID/CREATED (attributes) and HISTORYID go to extra.
        for child in root:
            tag = _local(child.tag)
            if tag != "BODY":
                _put(values, extra, tag, _text(child))
                continue
            for item in child:
                item_tag = _local(item.tag)
                if item_tag == "STATUS" and item.attrib:
                    status = item.get("STATUS") or _text(item)
                    _put(values, extra, "STATUS", status)
                    for attr, value in item.attrib.items():
                        if attr != "STATUS":
                            extra[f"STATUS_{_local(attr)}"] = value
                else:
                    _put(values, extra, item_tag, _text(item))
    else:
        raise _BadRecord(f"wrong root element <{name}> (expected POSTBACK or NOTIFICATION)")
    return tuple(values), (extra or None)


def _parse_document(data: bytes) -> tuple[tuple[str, ...], dict | None]:
    """One XML document: the fast path if it provably applies, else lxml."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None:
        fields = document_fields(text)
        if fields is not None:
            return fields, None
    return _parse_xml_document(data)


_SECRET_NAME = re.compile(r"(?i)secret|token|key|pass|auth|sig")


def _looks_form_encoded(body: bytes) -> bool:
    head = body.lstrip()[:64]
    return not head.startswith(b"<") and re.match(rb"[A-Za-z_][\w.\-]*=", head) is not None


def _parse_body(body: bytes) -> tuple[tuple[str, ...], dict | None]:
    """A request body: an XML document, or a form with the document in ``xml``."""
    if not _looks_form_encoded(body):
        return _parse_document(body)
    try:
        pairs = parse_qsl(body.decode("utf-8").strip(), keep_blank_values=True, strict_parsing=True)
    except (UnicodeDecodeError, ValueError) as exc:
        raise _BadRecord(f"malformed form-encoded body: {exc}") from None
    documents = [value for key, value in pairs if key.lower() == "xml"]
    if not documents:
        raise _BadRecord("form-encoded body without an 'xml' field")
    fields, extra = _parse_document(documents[0].encode("utf-8"))
    # a receiver's shared secret may ride along as a form field: keep the
    # field, never its value
    others = {
        f"form:{key}": mask_secret(value) if _SECRET_NAME.search(key) else value
        for key, value in pairs
        if key.lower() != "xml"
    }
    if others:
        extra = {**(extra or {}), **others}
    return fields, extra


# --- collecting records ---------------------------------------------------------------------


@dataclass
class _Batch:
    """Records of one buffer: an Arrow table of texts ('' = absent) plus their lines."""

    source: str
    table: pa.Table  # _BATCH_SCHEMA
    lines: np.ndarray  # int64, 1-based line of each record
    extras: dict[int, dict] = field(default_factory=dict)  # row → extra
    padded: bool = True  # element text may carry spaces to strip
    received_at: pa.Array | None = None  # already typed (fast path); else parsed from the table
    timestamp: pa.Array | None = None  # likewise for TIMESTAMP (all records, or None)
    nullified: bool = False  # absent/empty texts are already null (fast path), not ''
    line_count: int = 0  # lines in the buffer (receiver logs)

    def __len__(self) -> int:
        return len(self.lines)


def _rows_table(rows: list[tuple[str, ...]]) -> pa.Table:
    """Table from ``(received, *13 fields)`` tuples."""
    if not rows:
        return _BATCH_SCHEMA.empty_table()
    columns = list(zip(*rows))
    return pa.table([pa.array(c, pa.string()) for c in columns], schema=_BATCH_SCHEMA)


class _Rows:
    """Row-wise collector for the slow formats, turned into a :class:`_Batch`."""

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

    def batch(self) -> _Batch:
        return _Batch(self.source, _rows_table(self.rows), np.asarray(self.lines, dtype=np.int64), self.extras)


class _BadLines:
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


class _BadCollector:
    """Stands in for :class:`_BadLines` in a worker process: records, decides nothing."""

    def __init__(self):
        self.records: list[tuple[bytes, int | None, str]] = []

    def __call__(self, raw: bytes, source: str, line: int | None, reason: str) -> None:
        self.records.append((raw, line, reason))


# --- receiver log -----------------------------------------------------------------------------
def _slow_log_line(raw: bytes) -> tuple[str, tuple[str, ...], dict | None] | None:
    """A log line the fast path did not take: None for blank/comment lines."""
    line = raw.rstrip(b"\r\n")
    if not line.strip() or line.startswith(b"#"):
        return None
    parts = line.split(b"\t", 2)
    if len(parts) != 3:
        raise _BadRecord("not a receiver log record (expected received_at<TAB>remote<TAB>body)")
    stamp = parts[0].decode("ascii", "replace").strip()
    try:
        body = unescape_body(parts[2])
    except ValueError as exc:
        raise _BadRecord(f"broken escape in log body: {exc}") from None
    if not body.strip():
        raise _BadRecord("empty body")
    fields, extra = _parse_body(body)
    return stamp, fields, extra


def _log_batch(buffer, source: str, first_line: int, bad) -> _Batch:
    """Parse a buffer of whole receiver-log lines (the hot path).

    The compiled kernel (:func:`skycore_lab._fastparse.scan_log_buffer`)
    proves which lines have the flat shape and cuts their fields out of the
    buffer, with no Python object per line. The other lines (header, blank,
    other shapes, bad records) are parsed one by one and merged back in line
    order. ``buffer`` is bytes-like (bytes, or a memoryview of the reader's
    bytearray).
    """
    if len(buffer) and buffer[-1] != 10:  # an unterminated last line
        buffer = bytes(buffer) + b"\n"
    scan = _scan_log_buffer(buffer)
    fast = scan.proven
    table, received_at, extras = scan.table, scan.received_at, {}
    timestamp = _with_other_stamps(scan.timestamp, scan.other_stamps, scan.other_stamp_texts, extras)
    lines = np.flatnonzero(fast).astype(np.int64) + first_line
    slow = _Rows(source)
    for i in np.flatnonzero(~fast).tolist():
        raw = bytes(buffer[scan.line_starts[i] : scan.line_ends[i]])
        try:
            parsed = _slow_log_line(raw)
        except _BadRecord as exc:
            bad(raw.rstrip(b"\r"), source, first_line + i, str(exc))
            continue
        if parsed is not None:
            stamp, fields, extra = parsed
            slow.add(fields, extra, first_line + i, stamp)
    if not slow.rows:
        return _Batch(
            source, table, lines, extras, padded=False, received_at=received_at, nullified=True,
            line_count=len(scan.line_ends), timestamp=timestamp,
        )
    # merge the slow rows in, typed the general way, in line order
    slow_table = _rows_table(slow.rows)
    slow_received = _parse_timestamps(slow_table.column(_RECEIVED).combine_chunks())[0]
    slow_stamps = _stamps_keeping_bad(pc.utf8_trim(slow_table.column("TIMESTAMP").combine_chunks(), " "), slow.extras)
    merged_lines = np.concatenate([lines, np.asarray(slow.lines, dtype=np.int64)])
    order = np.argsort(merged_lines, kind="stable")
    position = np.empty(len(order), dtype=np.int64)
    position[order] = np.arange(len(order))
    # extras are keyed by row: fast rows first, then slow rows, as concatenated
    extras = {int(position[i]): e for i, e in extras.items()}
    extras.update((int(position[len(lines) + i]), e) for i, e in slow.extras.items())
    take = pa.array(order)
    return _Batch(
        source,
        pa.concat_tables([table, slow_table]).take(take),
        merged_lines[order],
        extras,
        padded=True,
        received_at=pa.concat_arrays([received_at, slow_received]).take(take),
        line_count=len(scan.line_ends),
        timestamp=pa.concat_arrays([timestamp, slow_stamps]).take(take),
    )


def _with_other_stamps(timestamp: pa.Array, rows: np.ndarray, texts: pa.Array, extras: dict[int, dict]) -> pa.Array:
    """The kernel's TIMESTAMP column with the rows it left to the general parser filled in."""
    if len(rows) == 0:
        return timestamp
    values = timestamp.cast(pa.int64()).fill_null(0).to_numpy().copy()
    missing = timestamp.is_null().to_numpy(zero_copy_only=False).copy()
    other: dict[int, dict] = {}
    parsed = _stamps_keeping_bad(texts, other)
    values[rows] = parsed.cast(pa.int64()).fill_null(0).to_numpy(zero_copy_only=False)
    missing[rows] = parsed.is_null().to_numpy(zero_copy_only=False)
    for i, extra in other.items():
        extras[int(rows[i])] = extra
    return pa.array(values, type=pa.int64(), mask=missing).cast(_TS_TYPE)


def _iter_log_buffers(handle, buffer_bytes: int) -> Iterator[memoryview]:
    """Whole lines of a log, about ``buffer_bytes`` at a time, without copying them.

    Each buffer is read straight into its own bytearray (after the previous
    one's partial last line), so the worker that parses it owns it.
    """
    carry = b""
    while True:
        block = bytearray(len(carry) + buffer_bytes)
        block[: len(carry)] = carry
        size = len(carry) + (handle.readinto(memoryview(block)[len(carry) :]) or 0)
        if size == len(carry):
            break
        cut = block.rfind(b"\n", 0, size)
        if cut < 0:
            carry = bytes(block[:size])
            continue
        carry = bytes(block[cut + 1 : size])
        yield memoryview(block)[: cut + 1]
    if carry:
        yield memoryview(carry)


def _log_part(buffer, source: str) -> tuple[_Part, list, int]:
    """Worker: one log buffer to a typed part, bad records collected, not judged.

    Lines are numbered from 1 within the buffer; :func:`_log_parts` shifts them
    (it knows the buffer's first line only once the earlier ones are parsed).
    """
    bad = _BadCollector()
    batch = _log_batch(buffer, source, 1, bad)
    return _typed_part(batch), bad.records, batch.line_count


def _log_parts(handle, source: str, bad: _BadLines, buffer_bytes: int, threads: int) -> Iterator[_Part]:
    """Typed parts of a log, in order; buffers parsed on ``threads`` threads.

    Arrow and numpy release the GIL, so two threads use two cores without
    the copies a process pool would need. Bad records are judged here, in
    file order, so ``"error"`` raises for the first one and a callable is
    always called from the caller's thread.
    """
    done_lines = 0

    def judged(result) -> _Part:
        nonlocal done_lines
        part, records, line_count = result
        for raw, line, reason in records:
            bad(raw, source, line + done_lines, reason)
        if done_lines and part.length:
            part.columns[LINE] = pc.add(part.columns[LINE], pa.scalar(done_lines, pa.int64()))
        done_lines += line_count
        return part

    if threads <= 1:
        for buffer in _iter_log_buffers(handle, buffer_bytes):
            yield judged(_log_part(buffer, source))
        return
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="skycore-postbacks") as pool:
        pending: deque = deque()
        try:
            for buffer in _iter_log_buffers(handle, buffer_bytes):
                pending.append(pool.submit(_log_part, buffer, source))
                del buffer
                while len(pending) >= threads:  # bound memory: one buffer per thread in flight
                    yield judged(pending.popleft().result())
            while pending:
                yield judged(pending.popleft().result())
        finally:
            for future in pending:
                future.cancel()


# --- XML documents and form lines -------------------------------------------------------------
# Where a document starts: a declaration, or a root start tag not preceded by one.
_DOC_START = re.compile(rb"<\?xml[\s?]|<(?:POSTBACK|NOTIFICATION)[\s>/]")
_ROOT_END = re.compile(rb"</(?:POSTBACK|NOTIFICATION)\s*>")
# a declaration, then whitespace, comments, PIs, a DOCTYPE (with internal subset)
_PROLOG = re.compile(rb"<\?xml.*?\?>(?:\s+|<!--.*?-->|<\?.*?\?>|<!DOCTYPE(?:[^\[>]|\[.*?\])*>)*", re.S)


def _split_documents(data: bytes) -> Iterator[tuple[int, bytes]]:
    """``(offset, document bytes)`` for each document of a concatenation.

    A declaration always starts a new document; a POSTBACK/NOTIFICATION start
    tag does too unless it directly follows a declaration. Text after a
    document's root end tag is its own (bad) record, so garbage between two
    documents never spoils either of them.
    """
    starts = []
    for match in _DOC_START.finditer(data):
        start = match.start()
        if data.startswith(b"<?xml", start):
            starts.append(start)
            continue
        if starts and data.startswith(b"<?xml", starts[-1]):
            prolog = _PROLOG.match(data, starts[-1])
            if prolog.end() == start:
                continue  # the root of the document whose declaration we just saw
        starts.append(start)
    bounds = [*starts, len(data)]
    if not starts or data[: starts[0]].strip(b" \t\r\n\xef\xbb\xbf"):
        bounds.insert(0, 0)
    for begin, end in zip(bounds, bounds[1:]):
        piece = data[begin:end]
        ends = list(_ROOT_END.finditer(piece))
        if ends and piece[ends[-1].end() :].strip(b" \t\r\n\xef\xbb\xbf"):
            cut = ends[-1].end()
            yield begin, piece[:cut]
            tail_start = cut + len(piece[cut:]) - len(piece[cut:].lstrip())
            yield begin + tail_start, piece[tail_start:]
        elif piece.strip(b" \t\r\n\xef\xbb\xbf"):
            yield begin, piece


def _document_batch(data: bytes, source: str, bad: _BadLines) -> _Batch:
    rows = _Rows(source)
    line, seen = 1, 0
    for offset, piece in _split_documents(data):
        lead = len(piece) - len(piece.lstrip(b" \t\r\n"))
        line += data.count(b"\n", seen, offset + lead)
        seen = offset + lead
        piece = piece.strip(b" \t\r\n")
        if piece.startswith(b"\xef\xbb\xbf"):
            piece = piece[3:]
        try:
            fields, extra = _parse_document(piece)
        except _BadRecord as exc:
            bad(piece, source, line, str(exc))
            continue
        rows.add(fields, extra, line)
    return rows.batch()


def _form_lines_batch(data: bytes, source: str, bad: _BadLines) -> _Batch:
    rows = _Rows(source)
    for number, raw in enumerate(data.split(b"\n"), start=1):
        line = raw.strip(b" \t\r\n")
        if number == 1 and line.startswith(b"\xef\xbb\xbf"):
            line = line[3:]
        if not line or line.startswith(b"#"):
            continue
        try:
            fields, extra = _parse_body(line)
        except _BadRecord as exc:
            bad(line, source, number, str(exc))
            continue
        rows.add(fields, extra, number)
    return rows.batch()


_LOG_FIRST_LINE = re.compile(rb"(?:#skycore-lab postback log|\d{4}-\d\d-\d\d[T ][^\t\n]*\t[^\t\n]*\t)")


def _detect(head: bytes) -> Literal["log", "xml", "form", "empty"]:
    """Format of a file from its first bytes (never asks the user)."""
    text = head[3:] if head.startswith(b"\xef\xbb\xbf") else head
    for raw in text.split(b"\n"):
        line = raw.strip(b" \t\r")
        if not line:
            continue
        if _LOG_FIRST_LINE.match(raw):
            return "log"
        if line.startswith(b"#"):
            continue  # a comment (logs and form-line files may carry them)
        if line.startswith(b"<"):
            return "xml"
        if _looks_form_encoded(line):
            return "form"
        return "xml"  # not a postback format: reported as bad records
    return "empty"


def _open(path: str):
    return gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb")


def _file_parts(path: str, bad: _BadLines, buffer_bytes: int, threads: int) -> Iterator[_Part]:
    with _open(path) as handle:
        head = handle.read(64 * 1024)
        kind = _detect(head)
        if kind == "empty":
            return
        if kind == "log":
            handle.seek(0)
            yield from _log_parts(handle, path, bad, buffer_bytes, threads)
            return
        # document and form files are read whole (they are the small formats)
        data = head + handle.read()
    batch = _form_lines_batch(data, path, bad) if kind == "form" else _document_batch(data, path, bad)
    yield _typed_part(batch)


def _expand_sources(source) -> list[str]:
    items = [source] if isinstance(source, (str, os.PathLike)) else list(source)
    paths: list[str] = []
    for item in items:
        text = os.fspath(item)
        if os.path.isdir(text):
            names = sorted(n for n in os.listdir(text) if not n.startswith("."))
            paths.extend(p for p in (os.path.join(text, n) for n in names) if os.path.isfile(p))
        elif os.path.exists(text):
            paths.append(text)
        elif glob.has_magic(text):
            matched = sorted(p for p in glob.glob(text, recursive=True) if os.path.isfile(p))
            if not matched:
                raise FileNotFoundError(f"no postback files match {text!r}")
            paths.extend(matched)
        else:
            raise FileNotFoundError(f"postback source not found: {text!r}")
    return paths


# --- columns --------------------------------------------------------------------------------------
def _nullify_empty(array: pa.Array) -> pa.Array:
    if len(array) == 0:
        return array
    return pc.if_else(pc.equal(array, ""), pa.scalar(None, array.type), array)


def _parse_timestamps(raw: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """Arrow timestamps (UTC) of normalised ISO-8601 texts; indices of unparseable ones."""
    raw = _nullify_empty(raw)
    if len(raw) == 0:
        return pa.array([], _TS_TYPE), np.array([], dtype=np.int64)
    valid = pc.match_substring_regex(raw, _TIMESTAMP_SHAPE)
    text = pc.if_else(valid, raw, pa.scalar(None, pa.string()))
    if pc.any(pc.match_substring_regex(text, r"\.\d{7}")).as_py():
        text = pc.replace_substring_regex(text, r"(\.\d{6})\d+", r"\1")  # keep µs
    without_offset = pc.invert(pc.match_substring_regex(text, _HAS_OFFSET))
    if pc.any(without_offset).as_py():
        text = pc.if_else(without_offset, pc.binary_join_element_wise(text, "Z", ""), text)
    try:
        stamps = pc.cast(text, _TS_TYPE)
    except pa.ArrowInvalid:
        # out-of-range dates and the like: per value, keeping the good ones
        # (as integers: year 0000 is a valid timestamp but no Python datetime)
        values = []
        for item in text.to_pylist():
            try:
                values.append(pc.cast(pa.array([item]), _TS_TYPE).cast(pa.int64())[0].as_py())
            except pa.ArrowInvalid:
                values.append(None)
        stamps = pa.array(values, pa.int64()).cast(_TS_TYPE)
    bad = pc.and_(pc.is_valid(raw), pc.is_null(stamps))
    return stamps, np.flatnonzero(bad.to_numpy(zero_copy_only=False))


def _stamps_keeping_bad(raw: pa.Array, extras: dict[int, dict]) -> pa.Array:
    """TIMESTAMP texts parsed; an unparseable text is kept in its row's ``extra``."""
    stamps, bad_stamps = _parse_timestamps(raw)
    for i in bad_stamps.tolist():
        extras[i] = {**extras.get(i, {}), "TIMESTAMP": raw[i].as_py()}
    return stamps


@dataclass
class _Part:
    """One batch's typed Arrow columns."""

    columns: dict[str, pa.Array]
    extras: dict[int, dict]
    source: str
    length: int
    tracking_fingerprints: np.ndarray  # uint64 per row (0: no tracking id), for the dedupe


def _typed_part(batch: _Batch) -> _Part:
    extras = dict(batch.extras)
    columns: dict[str, pa.Array] = {}
    table = batch.table.combine_chunks()
    for tag in FIELD_TAGS:
        array = table.column(tag).chunk(0) if table.num_rows else pa.array([], pa.string())
        if batch.padded:
            array = pc.utf8_trim(array, " ")
        columns[TAG_COLUMNS[tag]] = array
    if batch.timestamp is not None:
        columns[col.TIMESTAMP] = batch.timestamp
    else:
        columns[col.TIMESTAMP] = _stamps_keeping_bad(columns[col.TIMESTAMP], extras)
    if batch.received_at is not None:
        columns[col.RECEIVED_AT] = batch.received_at
    else:
        received = table.column(_RECEIVED).chunk(0) if table.num_rows else pa.array([], pa.string())
        columns[col.RECEIVED_AT] = _parse_timestamps(received)[0]
    if not batch.nullified or batch.padded:  # trimming may have emptied a text
        for name in (*_STRING_COLUMNS, *_CATEGORICAL_FIELDS):
            columns[name] = _nullify_empty(columns[name])
    for name in (col.TO, col.SENDER):  # the rules forbid "+", reports show it anyway
        if len(columns[name]) and pc.any(pc.starts_with(columns[name], "+")).as_py():
            columns[name] = pc.utf8_ltrim(columns[name], "+")
    columns[LINE] = pa.array(batch.lines, pa.int64())
    # computed here, on the worker thread, while the part is in cache
    fingerprints = _string_fingerprints(columns[col.TRACKING_ID])
    return _Part(columns, extras, batch.source, len(batch), fingerprints)


def _encode(values: pa.ChunkedArray) -> tuple[np.ndarray, pa.Array]:
    """Integer codes (missing → -1) and the dictionary of strings, via Arrow's hash
    kernel over the chunks as they are: no Python objects, no combined copy."""
    if values.num_chunks == 0:
        return np.zeros(0, dtype=np.int32), pa.array([], pa.string())
    encoded = pc.dictionary_encode(values)
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


def _pad_spid(spid: str) -> str:
    # a SPID that lost its leading zeros in a spreadsheet: 4-6 digits → 7
    return spid.zfill(7) if spid.isdigit() and 4 <= len(spid) < 7 else spid


def _carrier_country(spid: pd.Categorical, to: pa.ChunkedArray) -> tuple[pd.Categorical, pd.Categorical]:
    """Carrier and country per row: once per distinct SPID; for the ambiguous
    SPIDs once per distinct calling prefix of the recipients."""
    lookup = spid_lookup()
    carriers: dict[str | None, int] = {}
    countries: dict[str | None, int] = {}

    def code_of(table: dict, value: str | None) -> int:
        return -1 if value is None else table.setdefault(value, len(table))

    categories = list(spid.categories)
    spid_codes = spid.codes
    carrier_of = np.array([code_of(carriers, lookup.get(c, (None, None))[1]) for c in categories] + [-1])
    country_of = np.array([code_of(countries, lookup.get(c, (None, None))[0]) for c in categories] + [-1])
    carrier = carrier_of[spid_codes]
    country = country_of[spid_codes]
    for code, name in enumerate(categories):
        entries = AMBIGUOUS_SPIDS.get(name)
        if not entries:
            continue
        rows = np.flatnonzero(spid_codes == code)
        by_country = dict(entries)
        # country_of_number reads the calling code and at most 6 digits
        # (after a "00" prefix): resolve once per such prefix, not per row
        numbers = to.take(pa.array(rows)).combine_chunks()
        digits = pc.fill_null(pc.match_substring_regex(numbers, "^[0-9]+$"), False)
        prefix = pc.if_else(
            pc.starts_with(numbers, "00"), pc.utf8_slice_codeunits(numbers, 0, 8), pc.utf8_slice_codeunits(numbers, 0, 6)
        )
        encoded = pc.dictionary_encode(pc.if_else(digits, prefix, ""))
        inverse = encoded.indices.to_numpy(zero_copy_only=False)
        resolved = []
        for number in encoded.dictionary.to_pylist():
            found = country_of_number(number) if number else None
            if found not in by_country:
                found = entries[0][0]  # no usable number: the first listed (reference's rule)
            resolved.append(found)
        country[rows] = np.array([code_of(countries, c) for c in resolved])[inverse]
        carrier[rows] = np.array([code_of(carriers, by_country[c]) for c in resolved])[inverse]

    def categorical(codes: np.ndarray, table: dict) -> pd.Categorical:
        return pd.Categorical.from_codes(codes, categories=pd.Index(list(table), dtype=STRING_DTYPE))

    return categorical(carrier, carriers), categorical(country, countries)


def _keep_index(
    columns: dict[str, pa.ChunkedArray], extras: np.ndarray, drop_duplicates: bool, codes: np.ndarray,
    fingerprints: np.ndarray,
) -> np.ndarray | None:
    """Rows to keep, in output order (None: all, as they are).

    Arrival order: stable sort by ``received_at`` (missing last), so input
    order breaks ties. Then the first of each ``(tracking_id, code,
    timestamp)`` is kept, i.e. the earliest received. Only 64-bit keys
    (``codes`` of ``code``, tracking-id ``fingerprints``) are hashed for all
    rows; the strings are compared only where keys collide, never a second
    copy of the frame.
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
    candidate = pd.Series(key.view(np.int64), copy=False).duplicated(keep=False).to_numpy(copy=True) & has_id
    del key
    duplicate = np.zeros(count, dtype=bool)
    if candidate.any():
        # exact: the first of each (tracking_id, code, timestamp) in arrival order is the earliest received
        rows = np.flatnonzero(candidate)
        source_rows = pa.array(rows if order is None else order[rows])
        exact = pd.DataFrame(
            {
                "tracking_id": columns[col.TRACKING_ID].take(source_rows).to_numpy(zero_copy_only=False),
                "code": arrival(codes)[rows],
                "timestamp": stamp[rows],
            },
            copy=False,
        )
        duplicate[rows] = exact.duplicated(keep="first").to_numpy()
    del stamp
    if not has_id.all():
        # no tracking id: only an exact repeat (every notification field) is a duplicate
        anonymous = np.flatnonzero(~has_id) if order is None else order[~has_id]
        fields = [c for c in col.EVENT_COLUMNS[: col.EVENT_COLUMNS.index(col.RECEIVED_AT)] if c in columns]
        values = [columns[c].take(pa.array(anonymous)).to_pylist() for c in fields]
        values.append([json.dumps(e, sort_keys=True) if e else "" for e in extras[anonymous]])
        seen: set = set()
        repeat = []
        for row in zip(*values):
            repeat.append(row in seen)
            seen.add(row)
        duplicate[~has_id] = repeat
    if not duplicate.any():
        return order
    return np.flatnonzero(~duplicate) if order is None else order[~duplicate]


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc: nothing to do
        return None


_MALLOC_TRIM = _malloc_trim()


def _release_freed_memory() -> None:
    """Hand freed memory back to the OS between phases.

    numpy (glibc malloc) and Arrow (its own pool) do not reuse each other's
    freed pages, and glibc keeps freed heap pages (its mmap threshold grows
    to the size of the arrays freed), so without this the peak adds every
    phase's garbage.
    """
    pa.default_memory_pool().release_unused()
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


@contextmanager
def _returning_pool() -> Iterator[None]:
    """Arrow allocates from a pool that returns freed pages to the OS at once.

    The default pool (mimalloc) keeps what the parse frees for reuse, which
    the assembly phase, allocating other sizes, hardly reuses: peak RSS grew
    to ~3x the frame. Arrow's jemalloc pool with zero decay (or, without
    jemalloc, the system allocator, trimmed between phases) keeps the peak
    near the data alive. Arrays made here keep their pool; the process's
    default pool is restored on exit.
    """
    previous = pa.default_memory_pool()
    if "jemalloc" in pa.supported_memory_backends():
        pool = pa.jemalloc_memory_pool()
        pa.jemalloc_set_decay_ms(0)  # only Arrow's own jemalloc arenas
    else:
        pool = pa.system_memory_pool()
    pa.set_memory_pool(pool)
    try:
        yield
    finally:
        pa.set_memory_pool(previous)


class _Selector:
    """The rows :func:`_keep_index` chose, of one column's chunks at a time.

    When the rows are only filtered, not reordered (a receiver log is written
    in arrival order), each chunk is filtered and dropped in turn, so a column
    never exists twice in full; a reordering takes the rows, as Arrow does.
    """

    def __init__(self, index: np.ndarray | None, count: int):
        self.index = index
        self.keep = None
        if index is not None and (len(index) < 2 or bool(np.all(index[1:] > index[:-1]))):
            self.keep = np.zeros(count, dtype=bool)
            self.keep[index] = True

    def pop(self, columns: dict[str, pa.ChunkedArray], name: str) -> pa.ChunkedArray:
        """The selected rows of ``columns[name]``, which is removed from ``columns``."""
        chunks = columns[name].chunks  # the list is the only reference left
        kind = columns.pop(name).type
        if self.index is None:
            return pa.chunked_array(chunks, type=kind)
        if self.keep is None:
            return pa.chunked_array(chunks, type=kind).take(pa.array(self.index))
        kept, start = [], 0
        for i, chunk in enumerate(chunks):
            chunks[i] = None
            mask = self.keep[start : start + len(chunk)]
            start += len(chunk)
            kept.append(chunk if mask.all() else chunk.filter(pa.array(mask)))
            del chunk
        chunks.clear()
        return pa.chunked_array(kept, type=kind)


def _finish(parts: list[_Part], drop_duplicates: bool) -> pd.DataFrame:
    """One frame from typed parts: arrival order, deduped, final dtypes.

    Columns are taken one at a time and released from the parts as they
    are converted, so peak memory stays near one copy of the data.
    """
    # filtered in place: the caller's list must not keep the parts (and their
    # columns) alive while the frame is assembled
    parts[:] = [p for p in parts if p.length]
    lengths = [p.length for p in parts]
    kinds = {name: pa.string() for name in (*_STRING_COLUMNS, *_CATEGORICAL_FIELDS)}
    kinds.update({col.TIMESTAMP: _TS_TYPE, col.RECEIVED_AT: _TS_TYPE, LINE: pa.int64()})
    columns = {name: pa.chunked_array([p.columns[name] for p in parts], type=kind) for name, kind in kinds.items()}
    extras = np.full(sum(lengths), None, dtype=object)
    base = 0
    for part in parts:
        for i, value in part.extras.items():
            extras[base + i] = value
        base += part.length
    fingerprints = np.concatenate([p.tracking_fingerprints for p in parts]) if parts else np.zeros(0, np.uint64)
    names = list(dict.fromkeys(p.source for p in parts))
    position = {name: i for i, name in enumerate(names)}
    source_codes = np.repeat(np.array([position[p.source] for p in parts], dtype=np.int64), lengths)
    parts.clear()  # from here on the chunked arrays hold the only references
    part = None  # nor the loop's last one
    if len(extras) > 100_000:
        _release_freed_memory()

    # dictionary-encode the categories before ordering: only integer codes are
    # taken, on two threads (Arrow releases the GIL)
    encoded = (*_CATEGORICAL_FIELDS, col.SPID)
    with ThreadPoolExecutor(max_workers=min(2, os.cpu_count() or 1)) as pool:
        # the dedupe needs only CODE's: it runs while the others are encoded
        futures = {name: pool.submit(_encode, columns[name]) for name in dict.fromkeys((col.CODE, *encoded))}
        index = _keep_index(columns, extras, drop_duplicates, futures[col.CODE].result()[0], fingerprints)
        del fingerprints
        dictionaries = {name: futures[name].result() for name in encoded}
        del futures
        if len(extras) > 100_000:
            _release_freed_memory()  # the dedupe's hash tables and sort keys
        select = _Selector(index, len(extras))

        def strings(name: str) -> tuple[pd.api.extensions.ExtensionArray, pa.ChunkedArray]:
            values = select.pop(columns, name)
            return pd.array(values, dtype=STRING_DTYPE), values

        data: dict[str, object] = {}
        converted = pool.map(strings, [name for name in _STRING_COLUMNS if name != col.SPID])
        for name in _CATEGORICAL_FIELDS:
            columns.pop(name)
            values, dictionary = dictionaries.pop(name)
            data[name] = _categorical(values[index] if index is not None else values, dictionary)
        columns.pop(col.SPID)
        values, dictionary = dictionaries.pop(col.SPID)
        spid = _categorical(values[index] if index is not None else values, dictionary)
        for name, (values, arrow) in zip([name for name in _STRING_COLUMNS if name != col.SPID], converted):
            data[name] = values
            if name == col.TO:
                to = arrow  # Arrow, for the ambiguous-SPID look-up (no Python strings)
            del values, arrow
    padded = [_pad_spid(c) for c in spid.categories]
    if padded != list(spid.categories):
        spid = spid.rename_categories(padded) if len(set(padded)) == len(padded) else pd.Categorical(
            [_pad_spid(v) if isinstance(v, str) else v for v in spid]
        )
    spid_codes = pa.array(spid.codes.astype(np.int32), mask=spid.codes < 0)
    data[col.SPID] = pd.array(pa.array(list(spid.categories), pa.string()).take(spid_codes), dtype=STRING_DTYPE)
    data[col.CARRIER], data[col.COUNTRY] = _carrier_country(spid, to)

    def pop(name: str) -> pa.ChunkedArray:
        return select.pop(columns, name)

    for name in (col.TIMESTAMP, col.RECEIVED_AT):
        values = pop(name).to_numpy().astype("datetime64[us]")
        data[name] = pd.DatetimeIndex(values).tz_localize("UTC")
    data[LINE] = pop(LINE).to_numpy().astype(np.int64)
    data[col.SOURCE] = pd.Categorical.from_codes(
        source_codes[index] if index is not None else source_codes, categories=pd.Index(names, dtype=STRING_DTYPE)
    )
    # a Series of dtype object: pandas would otherwise scan a million Nones for datetimes
    data[col.EXTRA] = pd.Series(extras[index] if index is not None else extras, dtype=object, copy=False)
    return pd.DataFrame({name: data[name] for name in EVENT_FRAME_COLUMNS}, copy=False)


# --- public API ------------------------------------------------------------------------------------
def read_postbacks(
    source,
    *,
    on_bad_lines: OnBadLines = "warn",
    drop_duplicates: bool = True,
    buffer_bytes: int = READ_BUFFER_BYTES,
    threads: int | None = None,
) -> pd.DataFrame:
    """Read stored postbacks into one row per notification.

    Parameters
    ----------
    source : str, os.PathLike or list of them
        A file, a glob (``"logs/*.log*"``, ``**`` allowed), a directory (its
        non-hidden files, not recursive, sorted by name) or a list of these.
        ``.gz`` files are decompressed on the fly. Each file's format is
        detected from its first bytes:

        * the receiver log (:mod:`skycore_lab._logformat`, header line optional);
        * concatenated ``<POSTBACK>``/``<NOTIFICATION>`` documents, with or
          without declarations, one per line or pretty-printed, LF or CRLF,
          with or without a BOM (also a single-document ``.xml`` file);
        * lines holding form-encoded bodies (``xml=%3C…&other=…``).

        Log bodies may themselves be form-encoded. A missing path or a glob
        matching nothing raises :class:`FileNotFoundError`.
    on_bad_lines : {"warn", "error", "skip"} or callable, default "warn"
        What to do with a record that is not a postback (not well-formed XML,
        truncated, a DTD or entity, wrong root, a broken log line):
        ``"error"`` raises :class:`~skycore_lab.PostbackParseError` naming the
        file and 1-based line; ``"warn"`` emits one
        :class:`PostbackParseWarning` with the count and the first locations;
        ``"skip"`` is silent; a callable is called as ``f(raw, error)`` with
        the raw record bytes (the whole log line for logs, the document for
        XML files) and the :class:`~skycore_lab.PostbackParseError`. Good
        records around a bad one are always kept.
    drop_duplicates : bool, default True
        Collapse the platform's retries: rows with the same
        ``(tracking_id, code, timestamp)`` keep only the earliest
        ``received_at``. Rows without a tracking id are collapsed only when
        every notification field (``origin`` … ``status_details`` and
        ``extra``) is identical.
    buffer_bytes : int, default 4 MiB
        Size of the read buffer for receiver logs (memory/speed trade-off;
        4 MiB keeps a buffer's working arrays in this machine's caches:
        8 MiB cost ~8 % more CPU, 1 MiB more per-buffer overhead).
    threads : int, optional
        Threads parsing log buffers concurrently (default: up to 2, the
        cores of the lab machine; 1 parses in the calling thread only).

    Returns
    -------
    pandas.DataFrame
        One row per notification, in arrival order: sorted by ``received_at``
        (stable, so file order breaks ties and orders rows without one; rows
        without ``received_at`` come last). Columns, in
        :data:`EVENT_FRAME_COLUMNS` order (``columns.EVENT_COLUMNS`` plus ``line``):

        ========================= ======================= ===========================================
        column                    dtype                   content
        ========================= ======================= ===========================================
        ``origin``                category                ORIGIN (``MMS_MT``, ``SMS_MT``, ``SUB``, …)
        ``code``                  category                CODE (``N101``, ``E102``, …)
        ``status``                category                STATUS text
        ``sent_as``               category                SENTAS (``MMS``/``SMS``)
        ``mms_id``                str                     MMSID
        ``sender``                str                     FROM (leading ``+`` removed)
        ``to``                    str                     TO (leading ``+`` removed)
        ``tracking_id``           str                     TRACKINGID (opaque)
        ``spid``                  str                     SPID, 7 digits (4-6 digits are zero-padded)
        ``carrier``               category                carrier of the SPID (Appendix E)
        ``country``               category                its country; for SPIDs listed under two
                                                          countries, the recipient's country
        ``timestamp``             datetime64[us, UTC]     TIMESTAMP
        ``handset``               str                     HANDSET
        ``aggregator_id``         str                     AGGREGATORID
        ``status_details``        str                     STATUSDETAILS
        ``received_at``           datetime64[us, UTC]     when the receiver got it (logs only, else NaT)
        ``source``                category                the file the record came from
        ``line``                  int64                   1-based line where the record starts
        ``extra``                 object                  dict ``{TAG: text}`` of anything else, or None
        ========================= ======================= ===========================================

    Notes
    -----
    Decisions where the documentation is silent:

    * Absent and empty elements are both missing (NaN/NaT); text is
      stripped of surrounding XML whitespace; entities and character
      references are decoded.
    * ``timestamp`` accepts ``T`` or a space, fractions (kept to the
      microsecond) and offsets ``Z``, ``±HH:MM``, ``±HHMM``, ``±HH``; a
      timestamp *without* an offset is taken as UTC. An unparseable one
      becomes NaT and its raw text is kept as ``extra["TIMESTAMP"]``: the
      notification is still information, so the row is kept.
    * ``received_at`` is NaT for every format but the receiver log: a file's
      mtime says when it was written, not when each postback arrived.
    * ``extra`` holds unknown elements (``MOBILE``, ``CAMPAIGNID``, …),
      attributes of the root other than the schema ones, repeats of a known
      element (key suffixed ``_``), the form fields next to ``xml`` (as
      ``form:<name>``; values of fields named like a secret — token, key,
      secret, pass, auth, sig — are masked) and, for the 2011
      ``<NOTIFICATION>`` envelope, ``ID``, ``CREATED``, ``HISTORYID`` and
      ``STATUS_PROTOCOL`` (its status is the
      ``STATUS`` attribute). It is None, not ``{}``, when there is nothing.
    * A document whose root is neither POSTBACK nor NOTIFICATION is a bad
      record. DTDs are refused and entities never expanded (XXE and entity
      bombs become bad records), see :mod:`skycore_lab._xml`.

    * Duplicates compare ``timestamp`` as instants (``-05:00`` and ``-05``
      spellings of one time are the same); two notifications of one
      tracking id and code that both lack a timestamp are one retry.

    Receiver logs are streamed ``buffer_bytes`` at a time (peak memory is
    about 1.8x the returned frame on a million records); document and form
    files are read whole. A callable ``on_bad_lines`` is always called from
    the calling thread, in file order.
    """
    bad = _BadLines(on_bad_lines)
    if threads is None:
        threads = min(2, os.cpu_count() or 1)
    parts = []
    with _returning_pool():
        for path in _expand_sources(source):
            parts.extend(part for part in _file_parts(path, bad, buffer_bytes, threads) if part.length)
        bad.finish()
        return _finish(parts, drop_duplicates)


def events_from_bodies(
    bodies: Iterable[bytes | str],
    *,
    received_at: Iterable[datetime | str | None] | None = None,
    source: str | None = None,
    on_bad_lines: OnBadLines = "warn",
    drop_duplicates: bool = True,
) -> pd.DataFrame:
    """Parse postback bodies held in memory (XML documents or form-encoded).

    Parameters
    ----------
    bodies : iterable of bytes or str
        One request body each.
    received_at : iterable of datetime or ISO-8601 str, optional
        Arrival time of each body (naive datetimes are taken as UTC).
    source : str, optional
        Value of the ``source`` column (default ``"<memory>"``); ``line`` is
        the 1-based position of the body.

    Returns
    -------
    pandas.DataFrame
        As :func:`read_postbacks`.
    """
    name = source or "<memory>"
    bad = _BadLines(on_bad_lines)
    rows = _Rows(name)
    stamps = iter(received_at) if received_at is not None else None
    for number, body in enumerate(bodies, start=1):
        stamp = next(stamps, None) if stamps is not None else None
        data = body.encode("utf-8") if isinstance(body, str) else bytes(body)
        try:
            fields, extra = _parse_body(data.strip())
        except _BadRecord as exc:
            bad(data, name, number, str(exc))
            continue
        if isinstance(stamp, datetime):
            stamp = stamp.isoformat()  # naive: no offset, read as UTC
        rows.add(fields, extra, number, stamp or "")
    bad.finish()
    batch = rows.batch()
    return _finish([_typed_part(batch)] if len(batch) else [], drop_duplicates)


class PostbackTail:
    """Incremental reader of a live receiver log: only what was appended.

    Parameters
    ----------
    path : str or os.PathLike
        The receiver log the :class:`~skycore_lab.PostbackReceiver` writes.
    on_bad_lines : as in :func:`read_postbacks`, default "warn"

    Attributes
    ----------
    offset : int
        Byte offset in the current file up to which lines were consumed.
    records_read : int
        Notifications returned so far (after per-batch dedupe).

    Notes
    -----
    A partial last line (the receiver is mid-write) is held back until its
    newline arrives. Rotation is followed: when ``path`` now names another
    file (new inode) or a shorter one (truncated), the rest of the old file
    is read first if it is still beside ``path`` under a suffixed name
    (``path.1``, ``path.2026…``), then the new file from its beginning.
    Duplicates are collapsed within each returned batch only.
    """

    def __init__(self, path, *, on_bad_lines: OnBadLines = "warn"):
        self.path = os.fspath(path)
        self.on_bad_lines = on_bad_lines
        _BadLines(on_bad_lines)  # validate now, not at the first read
        self.offset = 0
        self.records_read = 0
        self._line = 1
        self._inode: int | None = None

    def __repr__(self) -> str:
        return f"PostbackTail({self.path!r}, offset={self.offset}, records_read={self.records_read})"

    def _read_from(self, path: str, offset: int, line: int, bad: _BadLines, parts: list) -> tuple[int, int]:
        """Parse the complete lines of ``path`` after ``offset``; the new (offset, line)."""
        carry = b""
        with open(path, "rb") as handle:
            handle.seek(offset)
            while True:
                block = handle.read(READ_BUFFER_BYTES)
                if not block:
                    break
                block = carry + block
                cut = block.rfind(b"\n")
                if cut < 0:
                    carry = block
                    continue
                whole, carry = block[: cut + 1], block[cut + 1 :]
                batch = _log_batch(whole, path, line, bad)
                if len(batch):
                    parts.append(_typed_part(batch))
                offset += len(whole)
                line += whole.count(b"\n")
        return offset, line  # an unterminated last line stays for the next call

    def _rotated_remainder(self, bad: _BadLines, parts: list) -> None:
        for candidate in sorted(glob.glob(glob.escape(self.path) + "*")):
            if candidate == self.path:
                continue
            try:
                if os.stat(candidate).st_ino == self._inode:
                    self._read_from(candidate, self.offset, self._line, bad, parts)
                    return
            except OSError:
                continue

    def read_new(self) -> pd.DataFrame:
        """Notifications appended since the previous call (columns as :func:`read_postbacks`)."""
        bad = _BadLines(self.on_bad_lines)
        parts: list[_Part] = []
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            stat = None  # between rotation and the new file: nothing new yet
        if stat is not None:
            if self._inode is not None and (stat.st_ino != self._inode or stat.st_size < self.offset):
                if stat.st_ino != self._inode:
                    self._rotated_remainder(bad, parts)
                self.offset, self._line = 0, 1
            self._inode = stat.st_ino
            if stat.st_size > self.offset:
                self.offset, self._line = self._read_from(self.path, self.offset, self._line, bad, parts)
        bad.finish()
        frame = _finish(parts, drop_duplicates=True)
        self.records_read += len(frame)
        return frame
