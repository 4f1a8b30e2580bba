"""Delivery reports: one call writes an HTML page, an Excel workbook, a CSV or a Parquet file.

:func:`export_report` picks the format from the file's suffix. The HTML page
and the workbook hold the same tables (computed once, by
:mod:`skycore_lab.stats`); the HTML page adds the figures
(:mod:`skycore_lab.plots`) and the definitions of every metric. CSV and
Parquet hold the deliveries frame itself, for other tools.

Spreadsheet formula injection
-----------------------------
Report cells hold text that came from outside (handset names, carrier names,
arm names, column names of a manifest …), and a spreadsheet runs a cell that
looks like a formula (``=HYPERLINK("http://evil.example","x")``, ``=cmd|…``).
So:

* **Excel**: every text is written as a text cell (``t="inlineStr"``),
  never as a formula, whatever it starts with; no report cell is a formula.
* **CSV**: by default the OWASP CSV-injection rule applies
  (https://owasp.org/www-community/attacks/CSV_Injection): a text cell (or
  column name) starting with ``=``, ``+``, ``-``, ``@``, TAB or CR gets a
  ``'`` in front, which a spreadsheet shows as text and does not display;
  fields with separators, quotes or line breaks (CR or LF) are quoted and
  embedded quotes doubled, lines end in CRLF (RFC 4180), so a CR inside a
  cell never splits a row. Only text cells change: numbers (``-3.5``)
  and timestamps are written as they are. Programs that read the CSV back
  want the exact values: pass ``csv_escape=False`` (``skycore-lab report
  --csv-raw``). Parquet holds typed values and needs no escaping.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path

import pandas as pd

from .. import columns as col
from ..files import atomic_write as _atomic_write
from ..optional import require
from .content import (
    COMPARISONS_KEY,
    DEFINITIONS,
    DELIVERIES_KEY,
    ITEM,
    SUMMARY_KEY,
    VALUE,
    ReportContent,
    build_content,
)
from ..exceptions import SkycoreValidationError
from ..stats.compare import DEFAULT_WITHIN_S
from .provenance import PROVENANCE_SHEET, provenance_frame, report_provenance, write_parquet, write_sidecar

__all__ = [
    "export_report",
    "REPORT_FORMATS",
    "EXCEL_MAX_ROWS",
    "REPORT_DEPENDENCIES",
    "check_report_path",
    "CSV_FORMULA_PREFIXES",
]

#: Supported suffixes (case-insensitive) and what each writes.
REPORT_FORMATS: dict[str, str] = {
    ".html": "self-contained HTML report (figures inline, opens offline)",
    ".xlsx": "Excel workbook: summary, rates by …, latency, [comparisons,] deliveries, provenance",
    ".csv": "the deliveries frame, timestamps as ISO-8601 UTC",
    ".parquet": "the deliveries frame, dtypes (categories, UTC timestamps) preserved",
}
#: Suffix → (module, extra, purpose) of the package a format needs, for :func:`skycore_lab.optional.require`.
REPORT_DEPENDENCIES: dict[str, tuple[str, str, str]] = {
    ".xlsx": ("openpyxl", "excel", "writing .xlsx reports"),
    ".parquet": ("pyarrow", "parquet", "writing .parquet reports"),
}
#: Rows an Excel sheet can hold, header included.
EXCEL_MAX_ROWS = 1_048_576

#: First characters that make a spreadsheet read a CSV cell as a formula (OWASP), escaped with a ``'``.
CSV_FORMULA_PREFIXES: tuple[str, ...] = ("=", "+", "-", "@", "\t", "\r")

_CSV_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
_EXCEL_TIME_NOTE = (
    "All timestamps are UTC. Excel cannot store a time zone: the cells hold UTC times without one."
)


def export_report(
    deliveries,
    path: str | os.PathLike,
    *,
    events: pd.DataFrame | None = None,
    title: str | None = None,
    by: Sequence[str] | str = (col.CARRIER, col.ARM),
    within_s: float | None = None,
    as_of=None,
    provenance=None,
    csv_escape: bool = True,
) -> Path:
    """Write a delivery report; the suffix of ``path`` picks the format.

    Give an experiment's :class:`~skycore_lab.ExperimentResult` (from
    :meth:`DdmExperiment.analyze <skycore_lab.DdmExperiment.analyze>`) or a
    deliveries frame. With a result, the report states its **verdict**: the
    HTML page opens with the decision — the primary metric's verdict, the
    sample-ratio check, power and the minimum detectable effect, the latency
    cost (:mod:`skycore_lab.report.verdict`) — before the tables; the
    workbook's summary sheet starts with the same rows; the comparisons are
    the result's own (one adjusted family); ``within_s``, ``as_of`` and the
    provenance's ``alpha`` and design are the result's unless given.

    ``.html``
        One self-contained HTML5 file: title, generation time (UTC), data
        period, counts, delivery rates with Wilson intervals per ``by``
        column (and across them), latency summary (naive and Kaplan–Meier
        quantiles with bounds), arm comparisons when there is an ``arm``
        column with two or more arms, figures (delivery rates, outcomes,
        latency KM curve, postback timeline when ``events`` are given) as
        inline PNG images, and the definition of every metric. No script and
        nothing external: it opens offline. Every user-provided string
        (title, carrier and arm names…) is HTML-escaped.
    ``.xlsx`` (openpyxl, a core dependency)
        Sheets ``summary`` (counts, period, the UTC note, definitions),
        ``rates by <column>`` for each ``by`` column (plus one across them
        when there are two or more), ``latency``, ``comparisons`` (only with
        arms), ``deliveries`` (every row of ``deliveries``) and ``provenance``. Excel cannot
        store tz-aware times, so timestamps are written as naive UTC, as the
        summary sheet says. Every text is a text cell, never a formula.
    ``.csv``
        The deliveries frame, one row per send (RFC 4180: CRLF line ends,
        quoted fields where needed); timestamps as ISO-8601 UTC
        (``2024-05-01T12:00:03.250000Z``), missing values empty; text cells
        that a spreadsheet would run as a formula prefixed with ``'`` unless
        ``csv_escape=False`` (see "Spreadsheet formula injection" in the
        module docstring).
    ``.parquet`` (pyarrow, a core dependency)
        The deliveries frame with its dtypes preserved (categories, UTC
        timestamps, nullable strings).

    Decisions: ``rates by arm`` is always present when ``"arm"`` is in
    ``by``; without an arm column it holds one row over every send, its arm
    labelled ``all sends (no arm column)``, so a workbook always has the
    same sheets. A section that cannot be computed from the data (e.g. no
    time columns for the latency summary) becomes a note in the report, not
    a failed export. Warnings raised while computing (e.g.
    :class:`~skycore_lab.stats.LatencyDataWarning`) are listed in the report
    and re-emitted once each. The file is written to a temporary name and
    renamed, so a failed export never leaves a half-written file or
    clobbers an earlier report.

    Parameters
    ----------
    deliveries : ExperimentResult or DataFrame
        An experiment's result (its ``deliveries`` are the rows); or one row
        per send (:func:`skycore_lab.deliveries`), ``outcome`` needed for
        the HTML and Excel reports; an ``arm`` column (from an experiment's
        manifest) adds the arm tables and comparisons.
    path : str or path-like
        Output file; its suffix (``.html``, ``.xlsx``, ``.csv``,
        ``.parquet``, any case) picks the format. Its folder must exist.
    events : DataFrame, optional
        Postback events (:func:`skycore_lab.read_postbacks`): add the
        timeline figure and widen the data period.
    title : str, optional
        Report title; default ``"MMS delivery report"``.
    by : str or sequence of str, default ``("carrier", "arm")``
        Columns to break delivery rates and latency down by. A missing
        column is an error, except ``"arm"`` (see above).
    within_s : float, optional
        Deadline of the ``delivered_within`` arm comparison, seconds: the
        result's, else :data:`skycore_lab.stats.compare.DEFAULT_WITHIN_S` (600).
    as_of : timestamp-like, optional
        When pending sends were last known pending (censoring time); default
        the latest time in the data (see
        :func:`skycore_lab.stats.censored_latencies`).
    provenance : Provenance or dict, optional
        What the report was made from, recorded in every format (HTML
        footer, ``provenance`` sheet, ``<name>.csv.provenance.json`` sidecar,
        Parquet metadata ``skycore_lab.provenance``; see
        :mod:`skycore_lab.report.provenance`): the source files with size and
        SHA-256, record and bad-line counts, the skycore-lab version, the
        parameters (``as_of``, ``within_s``, ``alpha``: always this export's)
        and the experiment design. Default: collected from the attrs that
        :func:`~skycore_lab.read_postbacks`, :func:`~skycore_lab.read_manifest`
        and :func:`~skycore_lab.deliveries` leave on ``deliveries`` and
        ``events``; a dict holds more
        :func:`skycore_lab.provenance.collect_provenance` arguments
        (``sources=[...]``, ``design=experiment``…); a
        :class:`~skycore_lab.provenance.Provenance` is used as it is.
    csv_escape : bool, default True
        ``.csv`` only: prefix text cells starting with one of
        :data:`CSV_FORMULA_PREFIXES` with ``'`` (OWASP). False writes the
        exact values, for programs rather than spreadsheets.

    Returns
    -------
    Path
        The file written.

    Raises
    ------
    SkycoreValidationError
        Unknown suffix (the message lists the supported ones), a ``by``
        column missing, or unusable data (e.g. unknown outcomes); also a
        ValueError.
    ImportError
        ``.xlsx`` without openpyxl or ``.parquet`` without pyarrow; the
        message names the extra to install.

    Examples
    --------
    >>> export_report(frame, "ddm-test.html", events=events, title="DDM timeout A/B")  # doctest: +SKIP
    PosixPath('ddm-test.html')
    """
    from ..experiment import ExperimentResult

    path = Path(path)
    suffix = check_report_path(path)
    result, alpha = None, None
    if isinstance(deliveries, ExperimentResult):
        result, deliveries = deliveries, deliveries.deliveries
        within_s = result.within_s if within_s is None else within_s
        as_of = result.as_of if as_of is None else as_of
        alpha = result.alpha
        if provenance is None:
            provenance = {"manifest": result.manifest, "design": result.design}
    elif not isinstance(deliveries, pd.DataFrame):
        raise SkycoreValidationError(
            "deliveries", f"expected an ExperimentResult or a pandas DataFrame, got {type(deliveries).__name__}")
    within_s = DEFAULT_WITHIN_S if within_s is None else within_s
    record = report_provenance(provenance, deliveries, events, within_s=within_s, as_of=as_of, alpha=alpha)
    if suffix == ".csv":
        frame = _csv_frame(deliveries)
        if csv_escape:
            frame = _escape_csv_formulas(frame)
        # CRLF line ends (RFC 4180): the csv module then quotes any field holding a CR or LF
        written = _atomic_write(path, lambda tmp: frame.to_csv(tmp, index=False, lineterminator="\r\n"))
        write_sidecar(written, record)
        return written
    if suffix == ".parquet":
        return _atomic_write(path, lambda tmp: write_parquet(deliveries, tmp, record))
    if suffix == ".xlsx":
        if len(deliveries) + 1 > EXCEL_MAX_ROWS:
            raise SkycoreValidationError(
                "deliveries",
                f"{len(deliveries):,} rows do not fit an Excel sheet ({EXCEL_MAX_ROWS - 1:,} at most): "
                "write .parquet or .csv instead",
            )

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        content = build_content(deliveries, events=events, title=title, by=by, within_s=within_s, as_of=as_of,
                                result=result)
        figures = None
        if suffix == ".html":
            from .htmlpage import draw_figures

            figures = draw_figures(content, deliveries, events, as_of=as_of)
    unique = list(dict.fromkeys((w.category, str(w.message)) for w in caught))
    content = replace(content, notes=(*content.notes, *(message for _category, message in unique)))

    if suffix == ".html":
        from .htmlpage import render_html

        text = render_html(content, figures or [], provenance=record)
        written = _atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    else:
        written = _atomic_write(path, lambda tmp: _write_xlsx(content, deliveries, tmp, record))
    for category, message in unique:
        warnings.warn(message, category, stacklevel=2)
    return written


def check_report_path(path: str | os.PathLike) -> str:
    """The format suffix of ``path`` (lower case), once its writer's packages are importable.

    Commands call this before any work (``skycore-lab report --out x.parquet``
    fails at once, not after reading the logs); :func:`export_report` calls it
    first too.

    Raises
    ------
    SkycoreValidationError
        Unknown suffix; the message lists the supported ones.
    ImportError
        The format's package is missing; the message names the extra to install.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in REPORT_FORMATS:
        raise SkycoreValidationError(
            "path",
            f"unknown report format {path.suffix or '(no suffix)'!r} in {str(path)!r}; "
            f"supported suffixes: {', '.join(REPORT_FORMATS)}",
        )
    if suffix in REPORT_DEPENDENCIES:
        require(*REPORT_DEPENDENCIES[suffix])
    return suffix


# --- writers ---------------------------------------------------------------------------------------
def _utc_naive(frame: pd.DataFrame) -> pd.DataFrame:
    """tz-aware datetime columns → naive UTC (Excel cannot store a time zone)."""
    out = frame.copy()
    for name in out.columns:
        if isinstance(out[name].dtype, pd.DatetimeTZDtype):
            out[name] = out[name].dt.tz_convert("UTC").dt.tz_localize(None)
    return out


# Characters XML 1.0 (so .xlsx) cannot hold: C0 controls other than tab, newline, carriage return.
_XML_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def _visible_control(match: re.Match) -> str:
    return f"\\x{ord(match.group()):02x}"


def _xlsx_text(frame: pd.DataFrame) -> pd.DataFrame:
    """Text cells and column names with XML-illegal control characters written as ``\\xNN``.

    Decision: a handset or status text from a postback can carry a control
    byte; openpyxl refuses the whole workbook for one. Writing it visibly
    (``\\x01``) keeps the row and shows what the platform sent, where
    dropping or blanking the character would silently change the data.
    """
    out = frame.copy()
    for index in range(out.shape[1]):
        values = out.iloc[:, index]
        if pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_datetime64_any_dtype(values.dtype):
            continue
        text = values.astype(object)
        bad = text.map(lambda v: isinstance(v, str) and _XML_ILLEGAL.search(v) is not None).astype(bool)
        if bad.any():
            out.isetitem(index, text.map(lambda v: _XML_ILLEGAL.sub(_visible_control, v) if isinstance(v, str) else v))
    out.columns = [_XML_ILLEGAL.sub(_visible_control, n) if isinstance(n, str) else n for n in frame.columns]
    return out


def _csv_frame(deliveries: pd.DataFrame) -> pd.DataFrame:
    """Datetime columns as ISO-8601 UTC text (naive ones taken as UTC)."""
    out = deliveries.copy()
    for name in out.columns:
        dtype = out[name].dtype
        if isinstance(dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(dtype):
            stamps = pd.to_datetime(out[name], utc=True)
            out[name] = stamps.dt.strftime(_CSV_TIME_FORMAT).where(stamps.notna(), None)
    return out


def _escape_formula_text(value):
    if isinstance(value, str) and value.startswith(CSV_FORMULA_PREFIXES):
        return "'" + value
    return value


def _escape_csv_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """Text cells and column names that start like a formula, prefixed with ``'`` (OWASP)."""
    out = frame.copy()
    for index, name in enumerate(frame.columns):
        values = out.iloc[:, index]
        if pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_bool_dtype(values.dtype):
            continue
        if pd.api.types.is_datetime64_any_dtype(values.dtype) or pd.api.types.is_timedelta64_dtype(values.dtype):
            continue
        text = values.astype(object)
        risky = text.map(lambda v: isinstance(v, str) and v.startswith(CSV_FORMULA_PREFIXES)).astype(bool)
        if risky.any():
            out.isetitem(index, text.map(_escape_formula_text))
    out.columns = [_escape_formula_text(name) if isinstance(name, str) else name for name in frame.columns]
    return out


def _formula_like_cells(frame: pd.DataFrame) -> Iterator[tuple[int, int]]:
    """(row, column), 1-based as in a sheet with a header row, of cells openpyxl would write as formulas.

    openpyxl makes a formula of any text starting with ``=``; pandas writes
    values it does not know as ``str(value)``.
    """
    for column, name in enumerate(frame.columns, start=1):
        if str(name).startswith("="):
            yield 1, column
        values = frame.iloc[:, column - 1]
        if pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_datetime64_any_dtype(values.dtype):
            continue
        text = values.astype(object)
        risky = text.map(lambda v: not isinstance(v, (int, float)) and str(v).startswith("="), na_action="ignore")
        for row in risky.eq(True).to_numpy().nonzero()[0]:  # missing values (skipped by map) are not
            yield int(row) + 2, column


def _summary_sheet(content: ReportContent) -> pd.DataFrame:
    rows = list(content.verdict.rows()) if content.verdict is not None else []
    rows += list(content.summary.itertuples(index=False, name=None))
    rows.append(("timestamps", _EXCEL_TIME_NOTE))
    rows.extend(("note", note) for note in content.notes)
    rows.extend((f"definition: {term}", text) for term, text in DEFINITIONS.items())
    return pd.DataFrame(rows, columns=[ITEM, VALUE])


def _sheet_name(key: str) -> str:
    for char in "[]:*?/\\":
        key = key.replace(char, "_")
    return key[:31]


def _write_xlsx(content: ReportContent, deliveries: pd.DataFrame, tmp: str, provenance=None) -> None:
    sheets: list[tuple[str, pd.DataFrame]] = [(SUMMARY_KEY, _summary_sheet(content))]
    sheets.extend((table.key, table.frame) for table in content.rates)
    sheets.append((content.latency.key, content.latency.frame))
    if content.comparisons is not None:
        sheets.append((COMPARISONS_KEY, content.comparisons.frame))
    sheets.append((DELIVERIES_KEY, deliveries))
    if provenance is not None:
        sheets.append((PROVENANCE_SHEET, provenance_frame(provenance)))
    with pd.ExcelWriter(tmp, engine="openpyxl") as writer:
        for key, frame in sheets:
            name = _sheet_name(key)
            frame = _xlsx_text(frame)
            _utc_naive(frame).to_excel(writer, sheet_name=name, index=False)
            sheet = writer.sheets[name]
            for row, column in _formula_like_cells(frame):
                sheet.cell(row=row, column=column).data_type = "s"  # text, never a formula
            sheet.freeze_panes = "A2"
            for index, column in enumerate(frame.columns, start=1):
                letter = sheet.cell(row=1, column=index).column_letter
                width = 60 if key == SUMMARY_KEY and column == VALUE else min(max(len(str(column)) + 2, 12), 40)
                sheet.column_dimensions[letter].width = width
