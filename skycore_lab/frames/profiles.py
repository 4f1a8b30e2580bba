"""What the postbacks say about each recipient's handset (:func:`handset_profiles`)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .. import columns as col
from .. import reference as ref
from ..checks import require_columns
from ..distributed.engine import is_dask
from .grouped import LazyText, SortedGroups, first_positions, group_time_order, lookup, take_codes, text_codes, text_from_codes
from .grouped import time_key
from .normalize import fill_place, sorted_categorical
from .times import event_time

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
    # Row positions in int32 below 2**31 rows, and every per-event array dropped once used: a
    # million events make each of them 4-8 MB, and they would otherwise all live to the end.
    index_dtype = np.int32 if len(events) < 2**31 else np.int64
    code, codes = text_codes(events[col.CODE], upper=True)
    rows = np.flatnonzero(lookup([name in ref.SEND_CODES for name in codes], code)).astype(index_dtype)
    text = {}
    for name in (col.TO, col.HANDSET, col.CARRIER, col.COUNTRY, col.SPID):
        values, categories = text_codes(events[name]) if name in events.columns else (
            np.full(len(events), -1, dtype=np.int32), pd.Index([], dtype="str"))
        text[name] = values[rows], categories
    del values
    code = code[rows]
    at = event_time(events)  # reads only the time columns
    at = at.to_numpy(dtype="datetime64[us]")[rows]
    at_key = time_key(at)
    number, numbers = text[col.TO]
    # Tracking ids are many distinct texts: encoded only where needed.
    tracking_text = LazyText(events[col.TRACKING_ID], len(events))
    has_tracking = ~tracking_text.missing()[rows]

    # A notification without TO (an E101 may lack fields) belongs to the
    # number its send's earliest notification names (ties: the smallest number).
    orphan = (number < 0) & has_tracking
    if orphan.any():
        tracking, tracking_ids = tracking_text.codes()
        tracking = tracking[rows]
        named = np.flatnonzero((number >= 0) & (tracking >= 0))
        order = named[group_time_order(tracking[named], at_key[named], [lambda tied, number=number, named=named: number[named[tied]]])]
        first = first_positions(tracking[order], np.ones(len(order), dtype=bool), len(tracking_ids))
        first_number = take_codes(number[order], first)
        number = np.where(orphan, first_number[np.maximum(tracking, 0)], number)
        del tracking, named, order, first, first_number
    del orphan

    # Order by (number, time); equal times are ordered by their values, so the
    # result does not depend on the events' order.
    kept = np.flatnonzero(number >= 0).astype(index_dtype)
    ties = [lambda tied, values=text[name][0], kept=kept: values[kept[tied]]
            for name in (col.TO, col.HANDSET, col.CARRIER, col.COUNTRY, col.SPID)]
    kept = kept[group_time_order(number[kept], at_key[kept], ties)]
    del at_key, ties
    seen = np.zeros(len(numbers) + 1, dtype=bool)
    seen[number[kept]] = True
    seen = seen[:-1]
    group = (np.cumsum(seen, dtype=index_dtype) - 1)[number[kept]]
    del number
    n = int(seen.sum())
    at, code, has_tracking = at[kept], code[kept], has_tracking[kept]
    groups = SortedGroups(group)

    out = pd.DataFrame(index=pd.RangeIndex(n))
    out[col.TO] = text_from_codes(np.flatnonzero(seen), numbers).array
    handset = text[col.HANDSET][0][kept]  # for the changes, below
    for name in (col.HANDSET, col.CARRIER, col.COUNTRY, col.SPID):  # the last one reported, in time order
        values, categories = text.pop(name)
        values = values[kept]
        out[name] = text_from_codes(take_codes(values, groups.last(values >= 0)), categories).array
    del text, values
    known = ~np.isnat(at)
    out[col.FIRST_SEEN] = _at(at, groups.starts)
    out[col.LAST_SEEN] = _at(at, groups.last(known))
    del at, known, groups

    # Distinct tracking ids delivered to each number.
    delivered = np.flatnonzero(lookup([name in ref.DELIVERED_CODES for name in codes], code) & has_tracking)
    del code, has_tracking
    tracking = tracking_text.ranks(rows[kept[delivered]], sort=False)
    del rows, kept
    out[col.DELIVERIES] = _distinct_per_group(group[delivered], tracking, n)
    del delivered, tracking
    # A report differing from the number's previous report is a change.
    out[col.HANDSET_CHANGES] = _changes_per_group(group, handset, n)
    del group, handset

    fill_place(out)
    for name in (col.CARRIER, col.COUNTRY):
        out[name] = sorted_categorical(out[name])
    return out[list(col.PROFILE_COLUMNS)]


def _distinct_per_group(group: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """Per group ``0 .. n-1``, how many distinct ``values`` (non-negative integers) its rows hold."""
    width = int(values.max(initial=0)) + 1
    pairs = np.sort(group.astype(np.int64) * width + values)  # int64: n x width may pass 2**31
    distinct = np.ones(len(pairs), dtype=bool)
    distinct[1:] = pairs[1:] != pairs[:-1]
    return np.bincount(pairs[distinct] // width, minlength=n).astype("int64")


def _changes_per_group(group: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """Per group ``0 .. n-1`` (rows sorted by group, then time), how often a known value (``>= 0``)
    differs from the group's previous known one."""
    known = np.flatnonzero(values >= 0)
    owner, value = group[known], values[known]
    changed = (owner[1:] == owner[:-1]) & (value[1:] != value[:-1])
    return np.bincount(owner[1:][changed], minlength=n).astype("int64")


def _at(times: np.ndarray, positions: np.ndarray) -> pd.Series:
    """``times[position]`` (NaT where the position is -1) as tz-aware UTC."""
    values = np.where(positions >= 0, times[np.maximum(positions, 0)], np.datetime64("NaT", "us"))
    return pd.Series(values.astype("datetime64[us]")).dt.tz_localize("UTC").astype(col.DATETIME_DTYPE).array
