"""What the postbacks say about each recipient's handset (:func:`handset_profiles`)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .. import columns as col
from .. import reference as ref
from ..checks import require_columns
from ..distributed.engine import is_dask
from .normalize import EVENT_AT, as_text, fill_place, rank_key, time_key, timed_events

__all__ = ["handset_profiles"]


def handset_profiles(events: pd.DataFrame) -> pd.DataFrame:
    """What the postbacks say about each recipient's handset: one row per number.

    Parameters
    ----------
    events : pandas.DataFrame
        Postback events (:func:`skycore_lab.read_postbacks`). Required columns:
        ``to``, ``code``, ``timestamp``, ``tracking_id``; ``handset``,
        ``carrier``, ``country``, ``spid`` and ``received_at`` are used when
        present.

    Returns
    -------
    pandas.DataFrame
        ``columns.PROFILE_COLUMNS``, one row per number, sorted by number:

        ===============  ==========================================================
        to               the number (``str``)
        handset          the most recently reported handset (N102 or N502), or
                         missing when none was ever reported (``str``)
        carrier          most recent non-missing carrier (``category``)
        country          most recent non-missing country (``category``)
        first_seen       earliest event time of the number (UTC)
        last_seen        latest event time of the number (UTC)
        deliveries       distinct tracking ids with an N102/N202 (int64)
        handset_changes  times the reported handset differed from the one
                         reported before it, in time order (int64)
        ===============  ==========================================================

    Notes
    -----
    Only notifications of sends to the number count (MMS, SMS fallback and
    DDM codes): MO and subscription notifications name the shortcode as TO.
    A notification without TO takes the number of its send's earliest
    notification that names one (same tracking id). Carrier and country missing from the
    events are filled from the most recent SPID, then from the number, as in
    :func:`deliveries`. Event times are TIMESTAMP, else ``received_at``; ties
    in time are broken by the values themselves, so the result does not
    depend on the events' order, and duplicated reports change nothing (a
    handset reported again is not a change).
    """
    if is_dask(events):  # shuffled by number on the cluster, then this function per partition
        from ..distributed.frames import profiles_on_dask  # here: that module reads frames' helpers

        return profiles_on_dask(handset_profiles, events)
    require_columns(events, (col.TO, col.CODE, col.TIMESTAMP, col.TRACKING_ID), "events")
    events = events.reset_index(drop=True)  # positional alignment below
    code = as_text(events[col.CODE]).str.upper()
    keep = code.isin(ref.SEND_CODES).to_numpy()
    frame, _ = timed_events(events, code, keep,
                             (col.TO, col.TRACKING_ID, col.HANDSET, col.CARRIER, col.COUNTRY, col.SPID))

    # Time order; equal times are ordered by their values, so the result does
    # not depend on the events' order.
    ties = [rank_key(frame[name]) for name in (col.SPID, col.COUNTRY, col.CARRIER, col.HANDSET, col.TO)]
    frame = frame.take(np.lexsort((*ties, time_key(frame[EVENT_AT])))).reset_index(drop=True)
    # A notification without TO (an E101 may lack fields) belongs to the
    # number its send's earliest notification names.
    with_id = frame[col.TRACKING_ID].notna()
    if (frame[col.TO].isna() & with_id).any():
        first_number = frame.loc[with_id, col.TO].groupby(frame.loc[with_id, col.TRACKING_ID]).transform("first")
        frame[col.TO] = frame[col.TO].fillna(first_number)
    frame = frame[frame[col.TO].notna()]
    frame = frame.take(np.argsort(rank_key(frame[col.TO]), kind="stable")).reset_index(drop=True)
    grouped = frame.groupby(col.TO, sort=True)
    out = pd.DataFrame(index=pd.Index(grouped.size().index, name=col.TO))
    last = grouped[[col.HANDSET, col.CARRIER, col.COUNTRY, col.SPID]].last()  # last non-missing, in time order
    for name in (col.HANDSET, col.CARRIER, col.COUNTRY, col.SPID):
        out[name] = last[name]
    out[col.FIRST_SEEN] = grouped[EVENT_AT].min()
    out[col.LAST_SEEN] = grouped[EVENT_AT].max()
    delivered = frame.loc[frame[col.CODE].isin(ref.DELIVERED_CODES) & frame[col.TRACKING_ID].notna()]
    out[col.DELIVERIES] = delivered.groupby(col.TO)[col.TRACKING_ID].nunique().reindex(out.index, fill_value=0)
    reports = frame.loc[frame[col.HANDSET].notna(), [col.TO, col.HANDSET]]
    previous = reports.groupby(col.TO)[col.HANDSET].shift()
    changed = previous.notna() & (reports[col.HANDSET] != previous)
    out[col.HANDSET_CHANGES] = changed.groupby(reports[col.TO]).sum().reindex(out.index, fill_value=0)

    out = out.reset_index()
    for name in (col.TO, col.HANDSET, col.CARRIER, col.COUNTRY, col.SPID):
        out[name] = as_text(out[name])
    fill_place(out)
    for name in (col.CARRIER, col.COUNTRY):
        out[name] = pd.Categorical(out[name], categories=sorted(out[name].dropna().unique()))
    for name in (col.FIRST_SEEN, col.LAST_SEEN):
        out[name] = out[name].astype(col.DATETIME_DTYPE)
    for name in (col.DELIVERIES, col.HANDSET_CHANGES):
        out[name] = out[name].astype("int64")
    return out[list(col.PROFILE_COLUMNS)]
