"""Time in the frames: reading time columns, the time of an event, the latest known time.

Three definitions the rest of skycore-lab calls rather than re-derives:

* :func:`as_utc` — a time column as tz-aware UTC (microseconds);
* :func:`event_time` — when a notification happened: its TIMESTAMP, or the
  receiver's ``received_at`` when it has none (the documentation shows an
  E101 without TIMESTAMP);
* :func:`latest_time` — the last moment the data know about, the latest
  time in a deliveries frame's time columns (:data:`TIME_COLUMNS`) and in
  its events: pending sends are censored there, and the period of a report
  ends there (:func:`data_period`);
* :data:`PLAUSIBLE_TIMES`, :func:`implausible` and :func:`plottable_times` —
  the one range of times a notification can have: the parser flags others
  (``time_out_of_range``) at read time, and plots and report spans leave
  them out (a year 9999 or 0001 stamp is data to keep, not a date an axis
  can draw).
"""

from __future__ import annotations

import pandas as pd

from .. import columns as col
from ..exceptions import SkycoreValidationError

__all__ = [
    "TIME_COLUMNS",
    "EVENT_TIME_COLUMNS",
    "PLAUSIBLE_TIMES",
    "as_utc",
    "event_time",
    "implausible",
    "plottable_times",
    "latest_time",
    "data_period",
]

#: Time columns of a deliveries frame that say when something happened to a send.
TIME_COLUMNS: tuple[str, ...] = (col.REQUESTED_AT, col.FIRST_EVENT_AT, col.SENT_AT, col.DELIVERED_AT, col.FAILED_AT)
#: Time columns of an events frame.
EVENT_TIME_COLUMNS: tuple[str, ...] = (col.TIMESTAMP, col.RECEIVED_AT)
#: ``[start, end)`` of the times a notification can carry (UTC). Decision:
#: 2000–2099 covers every real MMS postback (API v1.3 and the documentation's
#: oldest example date from 2010) and the sandbox's clock with room to spare;
#: a time outside (year 0001, 9999, a zero clock) is a platform or clock
#: error. It is flagged, never dropped, and no time axis draws it (it would
#: stretch the axis over millennia, or past matplotlib's year-9999 limit).
PLAUSIBLE_TIMES: tuple[pd.Timestamp, pd.Timestamp] = (
    pd.Timestamp("2000-01-01", tz="UTC"),
    pd.Timestamp("2100-01-01", tz="UTC"),
)


def implausible(times: pd.Series) -> pd.Series:
    """Whether each time (tz-aware) lies outside :data:`PLAUSIBLE_TIMES`; missing → False.

    The rule the parser's ``time_out_of_range`` flag applies and that plots
    use to leave such times out.
    """
    values = times.dt.tz_convert("UTC").astype(col.DATETIME_DTYPE)
    start, end = PLAUSIBLE_TIMES
    return (values.notna() & ((values < start) | (values >= end))).astype(bool)


def as_utc(series: pd.Series, field: str, *, naive: str = "refuse") -> pd.Series:
    """A time column as tz-aware UTC datetimes (``datetime64[us, UTC]``).

    Parameters
    ----------
    series : pandas.Series
        Tz-aware datetimes, ISO-8601 text (text without an offset is UTC) or
        anything :func:`pandas.to_datetime` reads.
    field : str
        The column's name, for error messages.
    naive : {"refuse", "utc"}
        Naive datetimes: refused (their zone is unknown), or taken as UTC.

    Raises
    ------
    SkycoreValidationError
        Naive datetimes with ``naive="refuse"``, or values that are not times.
    """
    dtype = series.dtype
    if isinstance(dtype, pd.DatetimeTZDtype):
        return series.dt.tz_convert("UTC").astype(col.DATETIME_DTYPE)
    if pd.api.types.is_datetime64_dtype(dtype) and naive == "refuse":
        raise SkycoreValidationError(
            field, "holds naive datetimes; their time zone is unknown — localise them first (.dt.tz_localize('UTC'))"
        )
    if series.isna().all():
        return pd.Series(pd.NaT, index=series.index, dtype=col.DATETIME_DTYPE)
    try:
        if pd.api.types.is_string_dtype(dtype):
            parsed = pd.to_datetime(series, utc=True, format="ISO8601")
        else:
            parsed = pd.to_datetime(series, utc=True)
    except (ValueError, TypeError) as exc:
        raise SkycoreValidationError(field, f"cannot be read as datetimes: {exc}") from None
    return parsed.astype(col.DATETIME_DTYPE)


def event_time(events: pd.DataFrame, *, naive: str = "refuse") -> pd.Series:
    """When each notification happened: TIMESTAMP, else ``received_at`` (UTC).

    Either column may be absent; with neither the result is all NaT.
    """
    time = pd.Series(pd.NaT, index=events.index, dtype=col.DATETIME_DTYPE)
    for name in EVENT_TIME_COLUMNS:
        if name in events.columns:
            time = time.fillna(as_utc(events[name], f"events.{name}", naive=naive))
    return time


def _known_times(deliveries: pd.DataFrame | None, events: pd.DataFrame | None) -> list[pd.Series]:
    stamps = []
    for frame, names in ((deliveries, TIME_COLUMNS), (events, EVENT_TIME_COLUMNS)):
        if frame is None:
            continue
        for name in names:
            if name in frame.columns:
                values = as_utc(frame[name], name, naive="utc").dropna()
                if len(values):
                    stamps.append(values)
    return stamps


def latest_time(deliveries: pd.DataFrame | None, events: pd.DataFrame | None = None) -> pd.Timestamp | None:
    """The last moment the data know about, or None when they hold no time.

    The latest value among the deliveries' :data:`TIME_COLUMNS` and the
    events' TIMESTAMP and ``received_at`` (so a send stays pending for as
    long as the receiver kept hearing anything). Naive times are taken as UTC.
    """
    stamps = _known_times(deliveries, events)
    return max(values.max() for values in stamps) if stamps else None


def data_period(deliveries: pd.DataFrame | None, events: pd.DataFrame | None = None) -> tuple[pd.Timestamp | None, ...]:
    """First and last known time (UTC) of the deliveries and events, ``(None, None)`` without any."""
    stamps = _known_times(deliveries, events)
    if not stamps:
        return None, None
    return min(values.min() for values in stamps), max(values.max() for values in stamps)


def plottable_times(times: pd.Series) -> pd.Series:
    """Boolean mask: True where a UTC time (:func:`as_utc`) lies in :data:`PLAUSIBLE_TIMES`.

    Missing times are False. The times themselves are not changed.
    """
    start, end = PLAUSIBLE_TIMES
    return (times >= start) & (times < end)
