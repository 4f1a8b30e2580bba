"""Send manifests as files: one definition of their columns and dtypes, written and read alike.

A *manifest* says what was sent: one row per attempted send, with the
columns of :data:`skycore_lab.columns.MANIFEST_COLUMNS` (``to, status,
tracking_id, sender, requested_at, error_code, error_info``) and, depending
on who made it, more: an experiment's ``arm`` and ``stratum``, the send
form's ``mms_id``, ``method`` and ``error_meaning``. It is made by
:meth:`SkycoreClient.send_batch` / :meth:`~SkycoreClient.send_each`,
:meth:`DdmExperiment.run` and :class:`SendWidget` (its ``history``), and
written by :func:`write_manifest` (CSV, JSON, Parquet), by
:meth:`DdmExperiment.save` (JSON, with the design), the CLI's
``send --out`` and the demo. :func:`read_manifest` reads every one of them
back with the same dtypes.

The dtypes (:func:`manifest_frame` gives any manifest them)
------------------------------------------------------------
* ``requested_at`` — tz-aware UTC (``datetime64[us, UTC]``). Text without an
  offset is read as UTC.
* ``arm`` — ``category``, in the experiment's design order (JSON of an
  experiment, Parquet), else in order of first appearance.
* every other column — text (pandas ``str``), missing as missing. Phone
  numbers, tracking ids, shortcodes and MMS ids are identifiers, never
  numbers: ``"0012345"`` keeps its zeros and a 15-digit number all its
  digits. An empty string is the same as missing (a CSV cannot tell them
  apart, so no format does).

Files
-----
``.csv``
    UTF-8, CRLF line ends (RFC 4180), a header line, times as ISO-8601 UTC (``2024-05-01T12:00:03.250000Z``),
    missing values as empty fields.
``.json``
    ``{"format": "skycore-lab manifest v1", "columns": [...], "arms": [...] or
    null, "data": [[...], ...]}``: every value a JSON string or null. An
    experiment file of :meth:`DdmExperiment.save` (``"format": "skycore-lab
    experiment v1"``) is read too (its ``manifest``), as is a bare JSON list
    of row objects.
``.parquet``
    The frame with its dtypes (pyarrow, a core dependency).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd

from . import columns as col
from .exceptions import SkycoreValidationError
from .files import atomic_write
from .optional import require

__all__ = [
    "MANIFEST_FORMATS",
    "MANIFEST_FORMAT",
    "EXPERIMENT_FORMAT",
    "MANIFEST_TIME_COLUMNS",
    "MANIFEST_REQUIRED_COLUMNS",
    "manifest_frame",
    "manifest_to_json",
    "manifest_from_json",
    "check_manifest_path",
    "read_manifest",
    "write_manifest",
]

#: Supported suffixes (any case) and what each holds.
MANIFEST_FORMATS: dict[str, str] = {
    ".csv": "UTF-8 CSV, times as ISO-8601 UTC, missing values empty",
    ".json": "skycore-lab manifest (or experiment) JSON, every value a string or null",
    ".parquet": "Parquet with the dtypes preserved",
}
_DEPENDENCIES = {".parquet": ("pyarrow", "parquet", "reading and writing .parquet manifests")}
#: ``format`` of a manifest JSON file written by :func:`write_manifest`.
MANIFEST_FORMAT = "skycore-lab manifest v1"
#: ``format`` of an experiment JSON file (:meth:`skycore_lab.DdmExperiment.save`).
EXPERIMENT_FORMAT = "skycore-lab experiment v1"
#: Manifest columns holding times (UTC); every other column but ``arm`` is text.
MANIFEST_TIME_COLUMNS: tuple[str, ...] = (col.REQUESTED_AT,)
#: Columns without which a table is not a manifest.
MANIFEST_REQUIRED_COLUMNS: tuple[str, ...] = (col.TO, col.TRACKING_ID)
_IDENTIFIERS = (col.TO, col.TRACKING_ID, col.SENDER, col.MMS_ID)
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


# --- dtypes ----------------------------------------------------------------------------------------
def _text(series: pd.Series, name: str) -> pd.Series:
    """Text with missing as missing; an identifier held as whole floats (a CSV read naively) loses its ``.0``."""
    if isinstance(series.dtype, pd.CategoricalDtype):
        series = series.astype(object)
    if name in _IDENTIFIERS and pd.api.types.is_float_dtype(series.dtype):
        whole = series.dropna()
        if len(whole) and bool(np.all(np.isfinite(whole)) and np.all(whole == np.floor(whole))):
            series = series.map(lambda v: None if pd.isna(v) else str(int(v)), na_action=None)
    text = series.astype("str")
    return text.where(series.notna() & (text != ""))


def manifest_frame(frame: pd.DataFrame, *, arms=None) -> pd.DataFrame:
    """``frame`` with the manifest dtypes (see the module's docstring); columns keep their order.

    Parameters
    ----------
    frame : DataFrame
        A manifest: needs ``to`` and ``tracking_id``; every other column is kept.
    arms : sequence of str, optional
        The categories of ``arm``, in design order; default: its categories if
        it is categorical, else its values in order of first appearance.

    Returns
    -------
    DataFrame
        A new frame with a RangeIndex: ``requested_at`` as ``datetime64[us, UTC]``,
        ``arm`` as ``category``, every other column as ``str``.

    Raises
    ------
    SkycoreValidationError
        A required column is missing, or ``requested_at`` holds something that is not a time.
    """
    if not isinstance(frame, pd.DataFrame):
        raise SkycoreValidationError("manifest", f"expected a pandas DataFrame, got {type(frame).__name__}")
    missing = [name for name in MANIFEST_REQUIRED_COLUMNS if name not in frame.columns]
    if missing:
        have = ", ".join(map(str, frame.columns)) or "no columns"
        raise SkycoreValidationError("manifest", f"not a send manifest: no column(s) {', '.join(missing)} "
                                                 f"(it has: {have})")
    from .frames.times import as_utc  # deferred: the frames package is heavier than this module

    out = pd.DataFrame(index=pd.RangeIndex(len(frame)))
    for name in frame.columns:
        values = frame[name].reset_index(drop=True)
        if name in MANIFEST_TIME_COLUMNS:
            out[name] = as_utc(values, f"manifest.{name}", naive="utc")
        elif name == col.ARM:
            text = _text(values, name)
            if arms is None:
                arms = (list(values.cat.categories.astype("str")) if isinstance(values.dtype, pd.CategoricalDtype)
                        else list(dict.fromkeys(text.dropna())))
            out[name] = pd.Categorical(text, categories=list(arms))
        else:
            out[name] = _text(values, str(name))
    out.attrs.update(frame.attrs)
    return out


# --- JSON ---------------------------------------------------------------------------------------
def _json_value(value) -> str | None:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if isinstance(value, pd.Timestamp):
        return value.tz_convert("UTC").strftime(_TIME_FORMAT)
    return str(value)


def manifest_to_json(frame: pd.DataFrame) -> dict:
    """The manifest as a JSON-ready ``{"columns", "arms", "data"}`` dict (values: strings or None)."""
    frame = manifest_frame(frame)
    arms = list(frame[col.ARM].cat.categories) if col.ARM in frame.columns else None
    data = [[_json_value(value) for value in row] for row in frame.itertuples(index=False, name=None)]
    return {"columns": [str(name) for name in frame.columns], "arms": arms, "data": data}


def manifest_from_json(document, source: str = "<json>") -> pd.DataFrame:
    """A manifest frame from :func:`manifest_to_json`'s dict, a pandas ``split`` dict or a list of row objects."""
    try:
        if isinstance(document, list):
            if not all(isinstance(row, dict) for row in document):
                raise ValueError("a JSON list must hold one object per row")
            frame = pd.DataFrame(document, dtype=object) if document else pd.DataFrame(columns=[col.TO, col.TRACKING_ID])
            arms = None
        elif isinstance(document, dict) and "columns" in document and "data" in document:
            columns, data = document["columns"], document["data"]
            if not isinstance(columns, list) or not isinstance(data, list):
                raise ValueError("'columns' and 'data' must be lists")
            if any(not isinstance(row, list) or len(row) != len(columns) for row in data):
                raise ValueError(f"every row of 'data' must be a list of {len(columns)} values")
            frame = pd.DataFrame(data, columns=columns, dtype=object)
            arms = document.get("arms")
        else:
            raise ValueError("expected a manifest document ('columns' and 'data') or a list of rows")
    except ValueError as exc:
        raise SkycoreValidationError("path", f"{source}: not a manifest: {exc}") from None
    for name in frame.columns:  # JSON numbers: identifiers are text, never floats
        frame[name] = frame[name].map(lambda v: v if v is None or isinstance(v, str) else _json_scalar(v))
    return manifest_frame(frame, arms=arms)


def _json_scalar(value) -> str | None:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


# --- files -----------------------------------------------------------------------------------------
def check_manifest_path(path: str | os.PathLike) -> str:
    """The format suffix of ``path`` (lower case), once the packages it needs are importable.

    Raises
    ------
    SkycoreValidationError
        Unknown suffix (the message lists the supported ones).
    ImportError
        A format's package is missing; the message names the extra to install.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in MANIFEST_FORMATS:
        raise SkycoreValidationError(
            "path", f"unknown manifest format {path.suffix or '(no suffix)'!r} in {str(path)!r}; "
                    f"supported suffixes: {', '.join(MANIFEST_FORMATS)}")
    if suffix in _DEPENDENCIES:
        require(*_DEPENDENCIES[suffix])
    return suffix


def write_manifest(manifest: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write a send manifest; the suffix of ``path`` (``.csv``, ``.json``, ``.parquet``) picks the format.

    The file is written under a temporary name and renamed, so an interrupted
    write never leaves half a manifest (or clobbers an earlier one).
    :func:`read_manifest` reads it back with the same values and dtypes.

    Parameters
    ----------
    manifest : DataFrame
        A manifest (see the module's docstring); given the manifest dtypes first.
    path : str or path-like
        Output file; its folder must exist.

    Returns
    -------
    Path
        The file written.

    Raises
    ------
    SkycoreValidationError
        Unknown suffix, or not a manifest (``to`` or ``tracking_id`` missing).
    """
    path = Path(path)
    suffix = check_manifest_path(path)
    frame = manifest_frame(manifest)
    if suffix == ".csv":
        text = frame.copy()
        for name in text.columns:
            if isinstance(text[name].dtype, pd.DatetimeTZDtype):
                text[name] = text[name].dt.strftime(_TIME_FORMAT).where(text[name].notna(), None)
        # CRLF (RFC 4180): then a lone "\r" inside a value is quoted too, and reads back as itself
        write = lambda tmp: text.to_csv(tmp, index=False, encoding="utf-8", lineterminator="\r\n")  # noqa: E731
    elif suffix == ".json":
        body = json.dumps({"format": MANIFEST_FORMAT, **manifest_to_json(frame)}, indent=1, allow_nan=False)
        write = lambda tmp: Path(tmp).write_text(body + "\n", encoding="utf-8")  # noqa: E731
    else:
        frame.attrs.clear()  # attrs (provenance objects) are not Parquet metadata
        write = lambda tmp: frame.to_parquet(tmp, index=False, engine="pyarrow")  # noqa: E731
    return atomic_write(path, write)


def read_manifest(path: str | os.PathLike) -> pd.DataFrame:
    """Read a send manifest from CSV, JSON or Parquet, with the manifest dtypes.

    Reads what :func:`write_manifest`, :meth:`DdmExperiment.save` (the
    experiment's manifest), the CLI's ``send --out`` and the demo write, and
    CSV files such as ``data/sample_manifest.csv``. Pass the result to
    :func:`skycore_lab.deliveries` as its ``manifest``.

    Parameters
    ----------
    path : str or path-like
        ``.csv``, ``.json`` or ``.parquet`` (any case).

    Returns
    -------
    DataFrame
        One row per attempted send, columns in file order (see the module's
        docstring for the dtypes): at least ``to`` and ``tracking_id``, usually
        every column of :data:`skycore_lab.columns.MANIFEST_COLUMNS`:

        ============  ==========================================================
        to            recipient (``str``)
        status        ``Success``, ``Failure``, ``Invalid``, ``Error``, ``Unknown``,
                      ``Cancelled`` (``str``)
        tracking_id   the platform's tracking id, Success rows only (``str``)
        sender        shortcode (``str``)
        requested_at  UTC time of the request (``datetime64[us, UTC]``)
        error_code    API error code (``str``)
        error_info    error text (``str``)
        arm           an experiment's arm (``category``), when there is one
        ============  ==========================================================

        ``frame.attrs`` records the file, and an experiment file's design
        (see :mod:`skycore_lab.provenance`).

    Raises
    ------
    FileNotFoundError
        No such file (a :class:`~skycore_lab.PostbackSourceNotFound`).
    SkycoreValidationError
        Unknown suffix, a file that cannot be parsed, or a table that is not
        a manifest (no ``to`` or ``tracking_id`` column); the message names
        the file and what is wrong.

    Examples
    --------
    >>> manifest = sl.read_manifest("manifest.csv")          # doctest: +SKIP
    >>> frame = sl.deliveries(sl.read_postbacks("postbacks.log*"), manifest)  # doctest: +SKIP
    """
    from .exceptions import PostbackSourceNotFound
    from .provenance import attach_design, attach_sources, source_file

    path = Path(path)
    suffix = check_manifest_path(path)
    if not path.is_file():
        raise PostbackSourceNotFound(f"manifest not found: {str(path)!r}")
    name, role = str(path), "manifest"
    try:
        if suffix == ".csv":
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""], encoding="utf-8")
            frame = manifest_frame(frame)
        elif suffix == ".json":
            document = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(document, dict) and document.get("format") == EXPERIMENT_FORMAT:
                if document.get("manifest") is None:
                    raise SkycoreValidationError("path", f"{name}: an experiment that was never run has no manifest")
                design = document.get("design") or {}
                frame = manifest_from_json({**document["manifest"], "arms": list(design.get("arms") or []) or None},
                                           name)
                attach_design(frame, design or None)
                role = "experiment"
            elif isinstance(document, dict) and "format" in document and document["format"] != MANIFEST_FORMAT:
                raise SkycoreValidationError("path", f"{name}: unknown JSON format {document['format']!r} "
                                                     f"(expected {MANIFEST_FORMAT!r} or {EXPERIMENT_FORMAT!r})")
            else:
                frame = manifest_from_json(document, name)
        else:
            frame = manifest_frame(pd.read_parquet(path, engine="pyarrow"))
    except SkycoreValidationError as exc:
        if name in exc.message:
            raise
        raise SkycoreValidationError(exc.field, f"{name}: {exc.message}") from None
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError, OSError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise SkycoreValidationError("path", f"{name}: cannot be read as a {suffix} manifest: "
                                             f"{type(exc).__name__}: {exc}") from None
    except Exception as exc:  # pyarrow's own errors (ArrowInvalid…) are not ValueErrors everywhere
        if type(exc).__module__.startswith("pyarrow"):
            raise SkycoreValidationError("path", f"{name}: cannot be read as a .parquet manifest: {exc}") from None
        raise
    attach_sources(frame, [source_file(path, role, records=len(frame))])
    return frame
