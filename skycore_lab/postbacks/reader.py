"""Read stored postbacks, in any format they were stored in, into one typed frame.

:func:`read_postbacks` reads the receiver's log (:mod:`.logformat`), files of
concatenated ``<POSTBACK>`` documents, directories of single-document
``.xml`` files and lines of form-encoded bodies (``xml=%3C…``), ``.gz`` or
not, and detects which is which. :func:`events_from_bodies` parses bodies
held in memory. (:class:`skycore_lab.PostbackTail`, in :mod:`.tail`, reads
what a live receiver log gained since the last call.)

How it is fast: every format goes buffer by buffer through the compiled
kernel (:mod:`.logs`, :mod:`.formats`, :mod:`.kernel`; without numba the
vectorised :mod:`.vectorscan`): receiver-log lines, documents cut out of a
file of documents at each ``</POSTBACK>``, documents decoded out of form
lines, and small files (directories of single documents) read many at a
time. The kernel proves the records that have the flat document shape
well-formed, finds their fields' text and reads their timestamps; Arrow
copies the fields out of the buffer into columns, without a Python object
per record. Everything else (entities, other field orders, unknown
elements, the legacy ``NOTIFICATION`` envelope, bundles, forms with other
fields, garbage) goes through the hardened lxml parser (:mod:`.documents`),
record by record in its place, and timestamps in other shapes through
Arrow's ISO-8601 cast (:mod:`.timestamps`). The parts are assembled into
one frame by :mod:`.assemble`, with the dedupe of :mod:`.dedupe`.
"""

from __future__ import annotations

import glob
import os
import re
import stat as stat_module
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Literal

import numpy as np
import pandas as pd

from ..provenance import attach_sources, source_files
from .assemble import Part, finish_frame, typed_part
from .documents import BadRecord, looks_form_encoded, parse_body
from .formats import SMALL_FILE_BYTES, document_buffers, document_part, files_batch, form_part
from .logs import HEAD_BYTES, MAX_RECORD_BYTES, READ_BUFFER_BYTES, GzipRecords, line_buffers, log_parts, oversized_reason, parts_of
from .memory import release_free_heap
from .records import BadLines, Batch, DataNotes, OnBadLines, Rows

__all__ = ["read_postbacks", "events_from_bodies"]


# --- format detection and sources ---------------------------------------------------------------
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
        if looks_form_encoded(line):
            return "form"
        return "xml"  # not a postback format: reported as bad records
    return "empty"


def _open(path: str):
    # .gz: a reader that stops at damage instead of raising (GzipRecords.damage says where)
    return GzipRecords(path) if path.endswith(".gz") else open(path, "rb")


def _file_parts(path: str, bad: BadLines, buffer_bytes: int, threads: int) -> Iterator[Part]:
    handle = _open(path)
    try:
        kind = _detect(handle.read(64 * 1024) or b"")
        damage = getattr(handle, "damage", None)
    finally:
        handle.close()
    if kind == "empty":
        if damage is not None:  # nothing readable at all (e.g. not gzip): still said
            bad(b"", path, 1, damage + "; every complete record before it was read")
        return
    handle = _open(path)  # from the start (a GzipRecords cannot seek back)
    try:
        if kind == "log":
            yield from log_parts(handle, path, bad, buffer_bytes, threads)
        elif kind == "form":
            yield from parts_of(line_buffers(handle, buffer_bytes), path, bad, threads, form_part)
        else:
            yield from parts_of(document_buffers(handle, buffer_bytes), path, bad, threads, document_part)
    finally:
        handle.close()


def _expand_sources(source) -> list[str]:
    items = [source] if isinstance(source, (str, os.PathLike)) else list(source)
    paths: list[str] = []
    for item in items:
        text = os.fspath(item)
        if os.path.isdir(text):
            # scandir knows which entries are plain files without a stat each (links are followed)
            with os.scandir(text) as entries:
                names = sorted(e.name for e in entries if not e.name.startswith(".") and e.is_file())
            folder = os.path.join(text, "")
            paths.extend(folder + name for name in names)
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


def _stat_sources(paths: list[str]) -> tuple[list[int], list[os.stat_result]]:
    """Each file's size (followed through links) and its ``lstat`` for the provenance: one system call per
    plain file, taken before reading (a live log may grow meanwhile: what is past the size is the next read's)."""
    stats = [os.lstat(path) for path in paths]
    sizes = [s.st_size if not stat_module.S_ISLNK(s.st_mode) else os.stat(p).st_size for p, s in zip(paths, stats)]
    return sizes, stats


# --- many small files at once (directories of single-document files) -----------------------------
def _small_group(paths: list[str], sizes: list[int], at: int, buffer_bytes: int) -> int:
    """How many files from ``at`` on are small plain files to read together (0: read ``paths[at]`` alone)."""
    count, total = 0, 0
    while at + count < len(paths) and total < buffer_bytes:
        path, size = paths[at + count], sizes[at + count]
        if path.endswith(".gz") or size > SMALL_FILE_BYTES:
            break
        count, total = count + 1, total + size
    return count if count >= 2 else 0


def _read_whole(path: str, size: int) -> bytes:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        # one read when the file is as big as its stat said (a short read of a plain file is its end)
        want = min(size, SMALL_FILE_BYTES) + 1
        piece = os.read(descriptor, want)
        if len(piece) < want:
            return piece
        pieces = [piece]
        while True:
            piece = os.read(descriptor, SMALL_FILE_BYTES + 1)
            if not piece:
                return b"".join(pieces)
            pieces.append(piece)
    finally:
        os.close(descriptor)


def _read_file(path: str, size: int, bad: BadLines, buffer_bytes: int, threads: int, parts: list,
               files: list) -> None:
    """One file's parts, and its line in ``files``: (path, size, records, bad records)."""
    skipped = bad.count
    found = [part for part in _file_parts(path, bad, buffer_bytes, threads) if part.length]
    parts.extend(found)
    files.append((path, size, sum(part.length for part in found), bad.count - skipped))


def _read_small_files(paths: list[str], sizes: list[int], bad: BadLines, buffer_bytes: int, threads: int,
                      parts: list, files: list) -> None:
    """Small files read into one buffer and proven one document each; the rest read one by one, in file order."""
    contents = [_read_whole(path, size) for path, size in zip(paths, sizes)]
    ends = np.cumsum([len(content) for content in contents], dtype=np.int64)
    starts = ends - np.array([len(content) for content in contents], dtype=np.int64)
    proven, batch = files_batch(b"".join(contents), starts, ends, paths[0])
    del contents
    row = 0
    at = 0
    while at < len(paths):
        if proven[at]:  # a run of proven files: one part, each row its file
            stop = at
            while stop < len(paths) and proven[stop]:
                stop += 1
            count = stop - at
            piece = Batch(
                paths[at], batch.table.slice(row, count), batch.lines[row : row + count], padded=False,
                received_at=batch.received_at.slice(row, count), nullified=True,
                timestamp=batch.timestamp.slice(row, count), timestamp_naive=batch.timestamp_naive[row : row + count],
                timestamp_offset=batch.timestamp_offset[row : row + count],
            )
            part = typed_part(piece)
            part.row_sources, part.source_rows = tuple(paths[at:stop]), np.arange(count, dtype=np.int64)
            parts.append(part)
            files.extend((path, size, 1, 0) for path, size in zip(paths[at:stop], sizes[at:stop]))
            row, at = row + count, stop
            continue
        _read_file(paths[at], sizes[at], bad, buffer_bytes, threads, parts, files)
        at += 1


# --- the public functions -----------------------------------------------------------------------
#: Reads of at least this many rows give the C heap's free pages back when done (a few ms, a walk of
#: every arena): what a smaller read leaves is a few MB, not worth a walk on every call of a poll loop.
_RELEASE_AFTER_ROWS = 100_000


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

        * the receiver log (:mod:`skycore_lab.postbacks.logformat`, header line optional);
        * concatenated ``<POSTBACK>``/``<NOTIFICATION>`` documents, with or
          without declarations, one per line or pretty-printed, LF or CRLF,
          with or without a BOM (also a single-document ``.xml`` file), and
          bundles (a ``<POSTBACK>`` holding ``<NOTIFICATION>`` elements);
        * lines holding form-encoded bodies (``xml=%3C…&other=…``).

        Log bodies may themselves be form-encoded. A missing path or a glob
        matching nothing raises :class:`FileNotFoundError`.
    on_bad_lines : {"warn", "error", "skip"} or callable, default "warn"
        What to do with a record that is not a postback (not well-formed XML
        beyond the narrow repair below, truncated, a DTD or entity, wrong
        root, a broken log line, a record longer than
        :data:`~skycore_lab.postbacks.logs.MAX_RECORD_BYTES` — its callback
        gets its first KiB —, damage in a ``.gz`` file — reported once with
        the compressed offset, after every complete record before it):
        ``"error"`` raises :class:`~skycore_lab.PostbackParseError` naming the
        file and 1-based line; ``"warn"`` emits one
        :class:`PostbackParseWarning` with the count and the first locations;
        ``"skip"`` is silent; a callable is called as ``f(raw, error)`` with
        the raw record bytes (the whole log line for logs, the document for
        XML files) and the :class:`~skycore_lab.PostbackParseError`. Good
        records around a bad one are always kept.
    drop_duplicates : bool, default True
        Collapse the platform's retries (:mod:`skycore_lab.postbacks.dedupe`):
        rows whose whole notification is equal — every field ``origin`` …
        ``status_details`` and ``extra``, ``timestamp`` as an instant — keep
        only the earliest ``received_at``. Two different notifications that
        share ``(tracking_id, code, timestamp)`` are both kept.
    buffer_bytes : int, default 4 MiB
        Size of the read buffer for receiver logs (memory/speed trade-off:
        a buffer's working arrays should stay in the CPU's caches; see
        ``benchmarks/README.md``).
    threads : int, optional
        Threads parsing log buffers concurrently (default: up to 2, or the
        number of cores if fewer; 1 parses in the calling thread only).

    Returns
    -------
    pandas.DataFrame
        One row per notification, in arrival order: sorted by ``received_at``
        (stable, so file order breaks ties and orders rows without one; rows
        without ``received_at`` come last). Columns, in
        :data:`skycore_lab.columns.EVENT_FRAME_COLUMNS` order (``columns.EVENT_COLUMNS`` plus ``line``):

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
        ``timestamp_inferred``    bool                    TIMESTAMP had no UTC offset: one was taken
                                                          (envelope's CREATED, else the send's) or UTC
                                                          assumed
        ``recovered``             bool                    the record was not well-formed XML and was
                                                          read after the narrow repair
        ``time_out_of_range``     bool                    ``timestamp`` or ``received_at`` lies outside
                                                          :data:`skycore_lab.frames.times.PLAUSIBLE_TIMES`
                                                          (kept as read; plots leave it out)
        ``line``                  int64                   1-based line where the record (a bundle's
                                                          notification, in document files) starts
        ``extra``                 object                  dict of anything else, or None (below)
        ========================= ======================= ===========================================

        ``frame.attrs["skycore_lab.sources"]`` records each file read (path,
        size, records, bad lines) for the provenance of reports
        (:mod:`skycore_lab.provenance`).

    Notes
    -----
    Decisions where the documentation is silent:

    * Absent and empty elements are both missing (NaN/NaT); text is
      stripped of surrounding XML whitespace; entities and character
      references are decoded.
    * ``timestamp`` accepts ``T`` or a space, fractions (kept to the
      microsecond) and offsets ``Z``, ``±HH:MM``, ``±HHMM``, ``±HH``. A
      timestamp *without* an offset (the 2011–2012 envelopes) takes the
      offset of its envelope's ``CREATED``, else the one most of its send's
      other notifications carry (same tracking id, in any file read),
      else is read as UTC; all are flagged ``timestamp_inferred`` and
      counted in one :class:`~skycore_lab.PostbackDataWarning`. An
      unparseable one becomes NaT and its raw text is kept as
      ``extra["TIMESTAMP"]``: the notification is still information, so the
      row is kept. Times outside ``PLAUSIBLE_TIMES`` (year 0001, 9999) are
      kept, flagged ``time_out_of_range`` and counted.
    * Every ``<NOTIFICATION>`` of a bundle is one row (elements beside them
      in the bundle make one more); a document that is not well-formed XML
      is given one narrow repair (:func:`skycore_lab.xmlsafe.repair_xml`: an
      unclosed leaf element closed at the next tag, a missing space between
      attributes — the documentation's own ``<FROM_MASK><FROM_MASK>``,
      ``<STATUSDETAILS>…<STATUSDETAILS>`` and ``CREATED="…"ID=``); its rows
      are flagged ``recovered`` and a warning names the file and line.
      Anything else malformed stays a bad record.
    * The legacy ``<STATUS …/>`` element fills ``status`` from its ``text``
      attribute, else its ``status`` attribute, else its ``celly`` gateway
      number (:data:`skycore_lab.reference.LEGACY_GATEWAY_STATUS`: ``10`` is
      :data:`~skycore_lab.reference.LINK_SENT`, the 2012 xHTML link went out).
    * ``received_at`` is NaT for every format but the receiver log: a file's
      mtime says when it was written, not when each postback arrived.
    * ``extra`` holds unknown elements (``MOBILE``, ``CAMPAIGNID``, …),
      repeats of a known element (the first non-empty one fills the
      column), elements nested in an unknown one under their path
      (``CONTENT/FILE``), attributes as ``<path>@<name>`` (the root's:
      ``<name>``, the schema ones left out), text standing outside any
      element as ``#text``; a key met again holds a list, in document
      order (``extra["CONTENT/FILE"] == [url1, url2, url3]``). The form
      fields next to ``xml`` go in as ``form:<name>`` (values of fields
      named like a secret — token, key, secret, pass, auth, sig — are
      masked); the legacy envelope's attributes as ``ID`` and ``CREATED``
      (either case in the page, upper case here) with ``HISTORYID``,
      ``SMSID`` …, and its STATUS attributes as ``STATUS_<NAME>``. One record
      adds at most ``MAX_EXTRA_VALUES`` values and ``MAX_EXTRA_BYTES`` bytes
      (:mod:`skycore_lab.postbacks.documents`); the rest is dropped, counted
      in ``extra["#dropped"]`` and warned. It is None, not ``{}``, when
      there is nothing.
    * A document whose root is neither POSTBACK nor NOTIFICATION is a bad
      record. DTDs are refused and entities never expanded (XXE and entity
      bombs become bad records), see :mod:`skycore_lab.xmlsafe`.

    * Duplicates compare ``timestamp`` as instants (``-05:00`` and ``-05``
      spellings of one time are the same) and every other field as read;
      two notifications equal in all of them (a timestamp missing in both)
      are one retry.

    Receiver logs are streamed ``buffer_bytes`` at a time (peak memory stays
    within a small multiple of the returned frame: ``benchmarks/bench_parser.py``
    prints it), a line longer than ``MAX_RECORD_BYTES`` is skipped without
    being held; files of documents and of form lines are streamed the same way
    (a document file is cut after each ``</POSTBACK>``; its records are bounded
    the same way). A ``.gz`` file is read up to any damage. A callable ``on_bad_lines`` is always called from
    the calling thread, in file order.
    """
    bad = BadLines(on_bad_lines)
    if threads is None:
        threads = min(2, os.cpu_count() or 1)
    parts, files = [], []
    paths = _expand_sources(source)
    sizes, stats = _stat_sources(paths)
    at = 0
    while at < len(paths):
        group = _small_group(paths, sizes, at, buffer_bytes)
        if group:
            _read_small_files(paths[at : at + group], sizes[at : at + group], bad, buffer_bytes, threads, parts, files)
            at += group
            continue
        _read_file(paths[at], sizes[at], bad, buffer_bytes, threads, parts, files)
        at += 1
    bad.finish()
    notes = DataNotes()
    frame = finish_frame(parts, drop_duplicates, notes)
    if len(frame) >= _RELEASE_AFTER_ROWS:  # the workers' freed temporaries: no later step could reuse them
        release_free_heap()
    notes.finish()
    attach_sources(frame, source_files(files, "postbacks", stats if len(files) == len(paths) else None))
    return frame


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
        the 1-based position of the body (every notification of a bundle
        shares its body's).

    Returns
    -------
    pandas.DataFrame
        As :func:`read_postbacks` (one row per notification; bodies longer
        than ``MAX_RECORD_BYTES`` are bad records).
    """
    name = source or "<memory>"
    bad = BadLines(on_bad_lines)
    rows = Rows(name)
    stamps = iter(received_at) if received_at is not None else None
    for number, body in enumerate(bodies, start=1):
        stamp = next(stamps, None) if stamps is not None else None
        data = body.encode("utf-8") if isinstance(body, str) else bytes(body)
        if len(data) > MAX_RECORD_BYTES:
            bad(data[:HEAD_BYTES], name, number, oversized_reason(len(data)))
            continue
        try:
            parsed = parse_body(data.strip())
        except BadRecord as exc:
            bad(data, name, number, str(exc))
            continue
        if isinstance(stamp, datetime):
            stamp = stamp.isoformat()  # naive: no offset, read as UTC
        rows.add_parsed(parsed, number, stamp or "")
    bad.finish()
    batch = rows.batch()
    notes = DataNotes()
    frame = finish_frame([typed_part(batch)] if len(batch) else [], drop_duplicates, notes)
    notes.finish()
    return frame


# --- public entries for readers of parts of files (skycore_lab.postbacks.ranges) --------------------
def postback_files(source) -> list[str]:
    """The files ``source`` names, in the order :func:`read_postbacks` reads them (same rules:
    files, globs, directories' non-hidden files sorted by name; FileNotFoundError if none)."""
    return _expand_sources(source)


def detect_format(head: bytes) -> Literal["log", "xml", "form", "empty"]:
    """The format :func:`read_postbacks` reads a file as, from its first bytes (up to 64 KiB):
    ``"log"``, ``"xml"`` (documents), ``"form"`` (form-encoded lines) or ``"empty"`` (nothing yet)."""
    return _detect(head)
