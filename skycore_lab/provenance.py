"""Where a result came from: source files, counts, version, parameters, experiment design.

A report read a year later must say which data it was made from. The readers
record their files in the frames they return, and every export writes the
record out (:mod:`skycore_lab.report.provenance` renders it per format).

How the record travels
----------------------
* :func:`skycore_lab.read_postbacks`, :func:`skycore_lab.read_manifest` and
  :func:`skycore_lab.read_sending_report` put the files they read into
  ``frame.attrs[SOURCES_ATTR]``: path, role, size and modification time *at
  read time*, records read and bad lines skipped.
* :meth:`DdmExperiment.run` / :meth:`~DdmExperiment.load` (and
  :func:`~skycore_lab.read_manifest` of an experiment file) put the design into
  the manifest's ``attrs[DESIGN_ATTR]``.
* :func:`skycore_lab.deliveries` carries both from its events and manifest,
  so ``export_report(sl.deliveries(events, manifest), path)`` knows them.
* :func:`collect_provenance` (called by :func:`skycore_lab.export_report`
  unless given ``provenance=``) gathers them, hashes the files and adds the
  version and the analysis parameters.

The attrs hold plain dicts and lists (so ``DataFrame.to_parquet``, which
stores ``attrs`` as JSON, keeps working); their containers are shared rather
than deep-copied by pandas operations, so carrying them costs nothing.

Hashes
------
A file is hashed when the provenance is collected (not while parsing, which
stays as fast as before): the SHA-256 of its first ``size`` bytes, the bytes
that were read. For a file unchanged since, that is the hash of the whole
file (``sha256sum`` prints the same); for a receiver log that grew since (it
is append-only), it is still the hash of exactly the data analysed, and
``status`` says ``grew since read``. A file that shrank, vanished or changed
its modification time without growing is flagged, never hashed silently.
"""

from __future__ import annotations

import gc
import os
import stat as stat_module
from collections.abc import Iterable, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

__all__ = [
    "SOURCES_ATTR",
    "DESIGN_ATTR",
    "Provenance",
    "source_file",
    "source_files",
    "attach_sources",
    "sources_of",
    "attach_design",
    "design_of",
    "collect_provenance",
]

#: ``DataFrame.attrs`` key: list of source-file records (dicts, see :func:`source_file`).
SOURCES_ATTR = "skycore_lab.sources"
#: ``DataFrame.attrs`` key: the experiment design (dict: arms, seed, allocation…).
DESIGN_ATTR = "skycore_lab.design"

STATUS_UNCHANGED = "unchanged"
STATUS_GREW = "grew since read (hash covers the bytes read)"


class _SharedList(list):
    """A list pandas carries by reference: ``deepcopy`` (every pandas op copies attrs) returns it as is."""

    def __deepcopy__(self, memo):
        return self


class _SharedDict(dict):
    """A dict pandas carries by reference (see :class:`_SharedList`)."""

    def __deepcopy__(self, memo):
        return self


def _iso(when: datetime) -> str:
    return when.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


@contextmanager
def _collector_paused():
    """No garbage collection while a record per file is built: for a directory of many files the
    collector's passes over every live object cost more than building the records."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _mtimes_iso(mtimes_ns: list[int]) -> list[str]:
    """Modification times (ns since the epoch) as ISO-8601 UTC to the microsecond, all at once
    (a directory of a million files: one numpy call instead of a datetime per file)."""
    stamps = np.array(mtimes_ns, dtype=np.int64).astype("datetime64[ns]").astype("datetime64[us]")
    return [text + "Z" for text in np.datetime_as_string(stamps, unit="us").tolist()]


def _same_instant(recorded: str, mtime_ns: int) -> bool:
    """Whether a recorded ``modified_at`` (any ISO-8601 spelling) is the modification time ``mtime_ns``, to the µs."""
    try:
        when = datetime.fromisoformat(str(recorded).replace("Z", "+00:00"))
    except ValueError:
        return False
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    micros = (when - datetime(1970, 1, 1, tzinfo=timezone.utc)) // timedelta(microseconds=1)
    return abs(micros - mtime_ns // 1000) <= 1  # older records kept float seconds: ±1 µs of rounding


# --- recording sources ---------------------------------------------------------------------------
def source_file(path: str | os.PathLike, role: str, *, records: int | None = None, bad_lines: int | None = None,
                size: int | None = None) -> dict:
    """A record of one file a reader consumed (call it right after reading).

    Parameters
    ----------
    path : path
        The file (stored absolute).
    role : str
        ``"postbacks"``, ``"manifest"``, ``"experiment"``, ``"sending_report"``…
    records, bad_lines : int, optional
        Records read from it and bad records skipped.
    size : int, optional
        Bytes read; default the file's size now.

    Returns
    -------
    dict
        ``path, role, size, modified_at, records, bad_lines``.
    """
    stat = os.stat(path)
    return _SharedDict(path=str(Path(path).resolve()), role=role, size=int(stat.st_size if size is None else size),
                       modified_at=_mtimes_iso([stat.st_mtime_ns])[0], records=records, bad_lines=bad_lines)


def source_files(files, role: str, stats: list[os.stat_result] | None = None) -> list[dict]:
    """:func:`source_file` for many files at once: ``files`` holds ``(path, size, records, bad_lines)``.

    The same records, cheaper for a directory of a million small files: each
    directory is resolved once, and a file only when it is itself a link.
    ``stats`` may give each file's ``os.lstat`` taken by the caller when it
    read the file (then nothing is asked of the file system again).
    """
    with _collector_paused():
        return _source_records(files, role, stats)


def _source_records(files, role: str, stats: list[os.stat_result] | None) -> list[dict]:
    directories: dict[str, str] = {}
    rows = []
    for at, (path, size, records, bad_lines) in enumerate(files):
        text = os.fspath(path)
        stat = stats[at] if stats is not None else os.lstat(text)
        if stat_module.S_ISLNK(stat.st_mode):
            rows.append(source_file(text, role, records=records, bad_lines=bad_lines, size=size))
            continue
        folder, _, name = (text if text.startswith(os.sep) else os.path.abspath(text)).rpartition(os.sep)
        real = directories.get(folder)
        if real is None:
            real = directories[folder] = os.path.join(str(Path(folder or os.sep).resolve()), "")
        rows.append((real + name, stat, size, records, bad_lines))
    modified = iter(_mtimes_iso([row[1].st_mtime_ns for row in rows if not isinstance(row, dict)]))
    keys = ("path", "role", "size", "modified_at", "records", "bad_lines")
    return [
        row if isinstance(row, dict) else _SharedDict(zip(keys, (
            row[0], role, int(row[1].st_size if row[2] is None else row[2]), next(modified), row[3], row[4],
        )))
        for row in rows
    ]


def sources_of(*frames) -> list[dict]:
    """The source records of the given frames (None skipped), each file once (the last record wins)."""
    found: dict[tuple[str, str], dict] = {}
    for frame in frames:
        attrs = getattr(frame, "attrs", None) or {}
        for record in attrs.get(SOURCES_ATTR) or ():
            if isinstance(record, Mapping) and "path" in record:
                found[(str(record["path"]), str(record.get("role")))] = dict(record)
    return list(found.values())


def attach_sources(frame, sources: Iterable[Mapping]) -> None:
    """Add source records to ``frame.attrs`` (in place), keeping those already there."""
    with _collector_paused():
        merged = {(str(r["path"]), str(r.get("role"))): _SharedDict(r) for r in sources_of(frame)}
        for record in sources:  # one copy each (a directory read may bring a million)
            merged[(str(record["path"]), str(record.get("role")))] = (
                record if isinstance(record, _SharedDict) else _SharedDict(record)
            )
    if merged:
        frame.attrs[SOURCES_ATTR] = _SharedList(merged.values())


def attach_design(frame, design: Mapping | None) -> None:
    """Put an experiment design into ``frame.attrs`` (in place); None leaves it as it is."""
    if design is not None:
        frame.attrs[DESIGN_ATTR] = _SharedDict(design)


def design_of(*frames) -> dict | None:
    """The first experiment design found in the frames' attrs, or None."""
    for frame in frames:
        design = (getattr(frame, "attrs", None) or {}).get(DESIGN_ATTR)
        if design:
            return dict(design)
    return None


# --- collecting -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Provenance:
    """What a report was made from; :meth:`to_dict` is its JSON form.

    Attributes
    ----------
    generated_at : str
        ISO-8601 UTC time the provenance was collected (the export's time).
    version : str
        skycore-lab's version.
    sources : tuple of dict
        One per file: ``path, role, size, modified_at, records, bad_lines,
        sha256, status`` (see the module's docstring for ``sha256`` and ``status``).
    counts : dict
        ``records`` and ``bad_lines`` summed over the postback files, ``events``
        (rows after dedupe) and ``sends`` (rows of the deliveries), when known.
    parameters : dict
        The analysis parameters: ``as_of`` (ISO or None: the latest time in
        the data), ``within_s``, ``alpha``.
    design : dict or None
        The experiment design: ``arms`` (name → DDM settings or None),
        ``control``, ``seed``, ``mms_id``, ``sender``, ``allocation`` (the
        method, and ``assigned``: sends per arm).
    """

    generated_at: str
    version: str
    sources: tuple = ()
    counts: dict = field(default_factory=dict)
    parameters: dict = field(default_factory=dict)
    design: dict | None = None

    def to_dict(self) -> dict:
        """JSON-ready dict: ``format, generated_at, skycore_lab_version, sources, counts, parameters, design``."""
        return {"format": "skycore-lab provenance v1", "generated_at": self.generated_at,
                "skycore_lab_version": self.version, "sources": [dict(s) for s in self.sources],
                "counts": dict(self.counts), "parameters": dict(self.parameters), "design": self.design}

    def rows(self) -> list[tuple[str, str]]:
        """``(item, value)`` text pairs, one fact each: the provenance sheet and the HTML footer."""
        rows = [("generated at (UTC)", self.generated_at), ("skycore-lab version", self.version)]
        for index, source in enumerate(self.sources, start=1):
            prefix = f"source {index}"
            rows.append((f"{prefix}: {source.get('role')}", str(source.get("path"))))
            rows.append((f"{prefix}: size (bytes)", str(source.get("size"))))
            rows.append((f"{prefix}: sha256", str(source.get("sha256"))))
            rows.append((f"{prefix}: status", str(source.get("status"))))
            for name in ("records", "bad_lines"):
                if source.get(name) is not None:
                    rows.append((f"{prefix}: {name.replace('_', ' ')}", str(source[name])))
        if not self.sources:
            rows.append(("sources", "none recorded (frames built in memory, or read without skycore-lab's readers)"))
        rows.extend((f"count: {name.replace('_', ' ')}", str(value)) for name, value in self.counts.items())
        rows.extend((f"parameter: {name}", "latest time in the data" if value is None and name == "as_of"
                     else str(value)) for name, value in self.parameters.items())
        if self.design:
            for name, value in self.design.items():
                if name == "arms" and isinstance(value, Mapping):
                    for arm, setting in value.items():
                        rows.append((f"design: arm {arm}", "no DDM" if setting is None else _compact(setting)))
                else:
                    rows.append((f"design: {name}", _compact(value)))
        return rows


def _compact(value) -> str:
    import json

    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, ensure_ascii=False, sort_keys=False, default=str)
    return str(value)


def _hashed(record: Mapping) -> dict:
    from .files import sha256_of

    out = dict(record)
    path, size = str(out["path"]), int(out.get("size") or 0)
    try:
        stat = os.stat(path)
    except OSError as exc:
        return {**out, "sha256": None, "status": f"missing now ({type(exc).__name__})"}
    if stat.st_size < size:
        return {**out, "sha256": None, "status": f"changed since read: now {stat.st_size:,} bytes, read {size:,}"}
    try:
        out["sha256"] = sha256_of(path, size)
    except OSError as exc:
        return {**out, "sha256": None, "status": f"unreadable now: {exc}"}
    if stat.st_size > size:
        out["status"] = STATUS_GREW
    elif out.get("modified_at") and not _same_instant(out["modified_at"], stat.st_mtime_ns):
        out["status"] = "modified since read (same size; the hash is of the file now)"
    else:
        out["status"] = STATUS_UNCHANGED
    return out


def _design_dict(design) -> dict | None:
    if design is None:
        return None
    if isinstance(design, Mapping):
        return dict(design)
    describe = getattr(design, "design_record", None)  # a DdmExperiment
    if callable(describe):
        return describe()
    raise TypeError(f"design must be a DdmExperiment or a dict, got {type(design).__name__}")


def collect_provenance(deliveries=None, *, events=None, manifest=None, sources: Iterable = (),
                       as_of=None, within_s: float | None = None, alpha: float | None = None,
                       design=None) -> Provenance:
    """Gather the provenance of an analysis: the files in the frames' attrs (hashed now), counts, parameters.

    Parameters
    ----------
    deliveries, events, manifest : DataFrame, optional
        The frames analysed; their ``attrs`` name the files they came from
        and the experiment design.
    sources : iterable of path or dict
        More files to record (a path is recorded with role ``"input"``).
    as_of, within_s, alpha
        The analysis parameters, recorded as given (``as_of`` as ISO-8601 UTC).
    design : DdmExperiment or dict, optional
        The experiment design; default the one in the frames' attrs.

    Returns
    -------
    Provenance
    """
    import pandas as pd

    from . import __version__

    records = sources_of(events, manifest, deliveries)
    for item in sources:
        records.append(dict(item) if isinstance(item, Mapping) else source_file(item, "input"))
    unique = {(str(r["path"]), str(r.get("role"))): r for r in records}
    hashed = tuple(_hashed(record) for record in unique.values())

    counts: dict = {}
    postbacks = [s for s in hashed if s.get("role") == "postbacks"]
    if postbacks:
        counts["postback_records"] = sum(int(s.get("records") or 0) for s in postbacks)
        counts["bad_lines"] = sum(int(s.get("bad_lines") or 0) for s in postbacks)
    if events is not None:
        counts["events"] = len(events)
    if deliveries is not None:
        counts["sends"] = len(deliveries)
    if manifest is not None:
        counts["manifest_rows"] = len(manifest)

    when = None
    if as_of is not None:
        stamp = pd.Timestamp(as_of)
        when = (stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")).isoformat()
    parameters = {"as_of": when, "within_s": within_s, "alpha": alpha}

    found = _design_dict(design) or design_of(manifest, deliveries, events)
    if found is not None and deliveries is not None and "arm" in getattr(deliveries, "columns", ()):
        allocation = dict(found.get("allocation") or {})
        allocation.setdefault("assigned", {str(k): int(v) for k, v in
                                           deliveries["arm"].astype("str").value_counts(sort=False).items()})
        found = {**found, "allocation": allocation}
    return Provenance(generated_at=_iso(datetime.now(timezone.utc)), version=__version__, sources=hashed,
                      counts=counts, parameters=parameters, design=found)
