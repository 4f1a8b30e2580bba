"""Builders for events and manifest frames shaped like the real ones (no tests here).

The events frame mimics :func:`skycore_lab.read_postbacks`' output (categoricals
for ``columns.EVENT_CATEGORICAL``, ``str`` ids, tz-aware UTC times, an extra
``line`` column), so the frames tests do not depend on the parser.
"""

from __future__ import annotations

import pandas as pd

from skycore_lab import reference as ref
from skycore_lab import columns as col

T0 = pd.Timestamp("2024-03-01T14:00:00Z")
TEXT_COLUMNS = (col.MMS_ID, col.SENDER, col.TO, col.TRACKING_ID, col.SPID, col.HANDSET, col.AGGREGATOR_ID,
                col.STATUS_DETAILS, col.SOURCE)


def at(seconds: float) -> pd.Timestamp:
    """``T0`` plus ``seconds``."""
    return T0 + pd.Timedelta(seconds=seconds)


def event(code: str, tracking_id: str | None = "T1", t: float = 0.0, **fields) -> dict:
    """One notification as a dict: origin and STATUS text from the code, time ``at(t)``."""
    origin = ref.ORIGIN_SMS if code in ref.SMS_CODES else ref.ORIGIN_MMS
    row = {
        col.ORIGIN: origin,
        col.CODE: code,
        col.STATUS: ref.STATUS_TEXT.get(code),
        col.TRACKING_ID: tracking_id,
        col.TO: "17743199144",
        col.MMS_ID: "4711",
        col.SENDER: "60856",
        col.SPID: "0001650",
        col.CARRIER: "Sprint",
        col.COUNTRY: "United States",
        col.TIMESTAMP: at(t) if t is not None else None,
    }
    if code == ref.N101:
        row[col.SENT_AS] = col.SENT_AS_MMS
    row.update(fields)
    return row


def make_events(rows: list[dict], *, categorical: bool = True) -> pd.DataFrame:
    """An events frame from dicts: every ``EVENT_COLUMNS`` column plus ``line``."""
    frame = pd.DataFrame([{name: row.get(name) for name in col.EVENT_COLUMNS} for row in rows],
                         columns=list(col.EVENT_COLUMNS))
    for name in col.EVENT_COLUMNS:
        if name in (col.TIMESTAMP, col.RECEIVED_AT):
            frame[name] = pd.to_datetime(frame[name], utc=True).astype("datetime64[us, UTC]")
        elif name in col.EVENT_CATEGORICAL and categorical:
            frame[name] = frame[name].astype("category")
        elif name != col.EXTRA:
            frame[name] = frame[name].astype("str")
    frame["line"] = range(1, len(frame) + 1)
    return frame


def make_manifest(rows: list[dict], **extra_columns) -> pd.DataFrame:
    """A manifest frame (``MANIFEST_COLUMNS`` plus any ``extra_columns`` lists)."""
    base = {col.STATUS: "Success", col.SENDER: "60856", col.REQUESTED_AT: T0 - pd.Timedelta(seconds=2),
            col.ERROR_CODE: None, col.ERROR_INFO: None}
    frame = pd.DataFrame([{**base, **row} for row in rows])
    frame = frame.reindex(columns=list(col.MANIFEST_COLUMNS))
    frame[col.REQUESTED_AT] = pd.to_datetime(frame[col.REQUESTED_AT], utc=True)
    for name in (col.TO, col.STATUS, col.TRACKING_ID, col.SENDER, col.ERROR_CODE, col.ERROR_INFO):
        frame[name] = frame[name].astype("str")
    for name, values in extra_columns.items():
        frame[name] = values
    return frame


def one(frame: pd.DataFrame, tracking_id: str = "T1") -> pd.Series:
    """The single row of ``tracking_id``."""
    rows = frame[frame[col.TRACKING_ID] == tracking_id]
    assert len(rows) == 1, rows
    return rows.iloc[0]
