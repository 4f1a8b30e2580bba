"""Delivery reports for people who never open a notebook: HTML, Excel, CSV, Parquet.

* :func:`export_report` (:mod:`.export`) — one call, the file's suffix picks
  the format; the writers of the workbook, CSV and Parquet files live there;
* :mod:`.content` — what a report shows (tables, notes, definitions),
  computed once for every format;
* :mod:`.htmlpage` — the self-contained HTML page and its figures.
"""

from __future__ import annotations

from .export import EXCEL_MAX_ROWS, REPORT_FORMATS, export_report

__all__ = ["export_report", "REPORT_FORMATS", "EXCEL_MAX_ROWS"]
