"""The frames on a Dask cluster: events shuffled by send (or number), then the pandas function per partition.

:func:`deliveries_on_dask` and :func:`profiles_on_dask` are what
:func:`skycore_lab.deliveries` and :func:`skycore_lab.handset_profiles` do
when handed a dask DataFrame. They move every event of a send (or of a
number) into one partition, then run the pandas function, which the caller
passes in (so the rules stay in one place), on each partition. The result
is a lazy dask DataFrame; nothing is computed but the legacy xHTML links
(below).

Decisions, where the pandas functions are silent:

* Row order: each send (number) lives in one partition, so every row of
  the pandas result is there, but the order is per partition (pandas:
  manifest order, then first event time; profiles by number). Sort after
  ``compute()`` when order matters.
* The legacy xHTML link (an N102 whose STATUS says the link went out, with
  ``extra["SMSID"]``) makes another tracking id's SMS_MT notifications part
  of the MMS's send. The links are found first, in one pass over the
  events' ``code``, ``status``, ``tracking_id`` and ``extra`` columns on the
  cluster (a few rows come back), so that the shuffle brings those events to
  the MMS's partition; :func:`skycore_lab.deliveries` then applies its own
  rule there.
* A notification without TO belongs, for the profiles, to the number its
  send's earliest notification (by event time, then number) names: the
  events are shuffled by tracking id to find it, then by number.
* Warnings the pandas functions give on a worker (clock skew) go to that
  worker's log; the statistics that read the frame warn again, here.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from .. import columns as col
from .. import reference as ref
from ..checks import require_columns
from ..frames.normalize import as_text
from ..frames.times import event_time
from .engine import require_dask

__all__ = ["deliveries_on_dask", "profiles_on_dask"]

# working columns, dropped before the pandas function sees the partition
_KEY = "_shuffle_key"
_NUMBER = "_number"


def _hash(values: pd.Series) -> pd.Series:
    """A deterministic uint64 hash of text keys (the same in every process, for any text dtype)."""
    text = pd.Series(as_text(values).to_numpy(dtype=object, na_value=None), index=values.index, dtype=object)
    return pd.util.hash_pandas_object(text, index=False)


def _links(part: pd.DataFrame) -> pd.DataFrame:
    """(SMSID, MMS tracking id) of the legacy link-sent N102s in one partition."""
    code = as_text(part[col.CODE]).str.upper()
    candidates = part[(code == ref.N102).to_numpy()]
    rows = []
    for status, extra, tracking_id in zip(as_text(candidates[col.STATUS]), candidates[col.EXTRA],
                                          as_text(candidates[col.TRACKING_ID]), strict=True):  # fmt: skip
        if ref.is_link_sent(ref.N102, status if isinstance(status, str) else None) and isinstance(extra, dict):
            sms_id = extra.get("SMSID")
            if isinstance(sms_id, str) and isinstance(tracking_id, str):
                rows.append((sms_id, tracking_id))
    return pd.DataFrame(rows, columns=["sms_id", "mms_id"], dtype=object)


def _link_map(events) -> dict[str, str]:
    """SMSID → MMS tracking id over the whole dask frame, found on the cluster."""
    if col.EXTRA not in events.columns or col.STATUS not in events.columns:
        return {}
    import dask

    meta = pd.DataFrame({"sms_id": pd.Series(dtype=object), "mms_id": pd.Series(dtype=object)})
    found = events[[col.CODE, col.STATUS, col.EXTRA, col.TRACKING_ID]].map_partitions(_links, meta=meta)
    (links,) = dask.compute(found)
    return dict(zip(links["sms_id"], links["mms_id"], strict=True))


def _keyed_sends(part: pd.DataFrame, links: dict[str, str]) -> pd.DataFrame:
    """The partition's events of sends, with the hash of their send's key (the MMS's for a linked SMS)."""
    code = as_text(part[col.CODE]).str.upper()
    tracking_id = as_text(part[col.TRACKING_ID])
    keep = (tracking_id.notna() & code.isin(ref.SEND_CODES)).to_numpy()
    out = part[keep].copy()
    key = tracking_id[keep]
    if links:
        key = key.map(lambda value: links.get(value, value))
    out[_KEY] = _hash(key).to_numpy()
    return out


def _keyed_manifest(manifest: pd.DataFrame) -> pd.DataFrame:
    out = manifest.copy()
    out[_KEY] = _hash(out[col.TRACKING_ID]).to_numpy()
    return out[out[col.TRACKING_ID].notna().to_numpy()]


def _with_key_meta(meta: pd.DataFrame) -> pd.DataFrame:
    out = meta.copy()
    out[_KEY] = pd.Series(dtype="uint64")
    return out


def _deliveries_of(part: pd.DataFrame, manifest_part, function: Callable, negative_latency: str) -> pd.DataFrame:
    events = part.drop(columns=[_KEY])
    listed = None if manifest_part is None else manifest_part.drop(columns=[_KEY])
    return function(events, listed, negative_latency=negative_latency)


def deliveries_on_dask(function: Callable, events, manifest: pd.DataFrame | None = None, *,
                       negative_latency: str = "warn"):  # fmt: skip
    """:func:`skycore_lab.deliveries` of a dask events frame: shuffled by send, ``function`` per partition.

    Parameters
    ----------
    function : callable
        The pandas :func:`skycore_lab.deliveries`.
    events : dask.dataframe.DataFrame
        Postback events (:func:`skycore_lab.read_events` with ``engine="dask"``).
    manifest : pandas.DataFrame or dask.dataframe.DataFrame, optional
        The send manifest; split by the same key, so each partition gets the
        manifest rows of its sends (sends without any event included).
    negative_latency : {"warn", "clip", "nan"}
        As in :func:`skycore_lab.deliveries`.

    Returns
    -------
    dask.dataframe.DataFrame
        The columns of :func:`skycore_lab.deliveries`, one row per send,
        in per-partition order (module docstring).
    """
    dd = require_dask()
    from dask.dataframe.utils import make_meta

    event_meta = make_meta(events)
    require_columns(event_meta, (col.TRACKING_ID, col.CODE, col.TIMESTAMP), "events")
    links = _link_map(events)
    keyed = events.map_partitions(_keyed_sends, links, meta=_with_key_meta(event_meta))
    partitions = max(1, events.npartitions)
    shuffled = keyed.shuffle(on=_KEY, npartitions=partitions)
    if manifest is None:
        meta = function(event_meta, None, negative_latency=negative_latency)
        return shuffled.map_partitions(_deliveries_of, None, function, negative_latency, meta=meta)
    listed = manifest if hasattr(manifest, "npartitions") else dd.from_pandas(manifest, npartitions=1)
    listed_meta = make_meta(listed)
    require_columns(listed_meta, (col.TRACKING_ID,), "manifest")
    keyed_manifest = listed.map_partitions(_keyed_manifest, meta=_with_key_meta(listed_meta))
    shuffled_manifest = keyed_manifest.shuffle(on=_KEY, npartitions=partitions)
    meta = function(event_meta, listed_meta, negative_latency=negative_latency)
    return dd.map_partitions(_deliveries_of, shuffled, shuffled_manifest, function, negative_latency, meta=meta,
                             align_dataframes=False)  # fmt: skip


# --- handset profiles -----------------------------------------------------------------------------
def _profile_events(part: pd.DataFrame) -> pd.DataFrame:
    """The partition's send events, keyed by their tracking id (events without one: by their number)."""
    code = as_text(part[col.CODE]).str.upper()
    out = part[code.isin(ref.SEND_CODES).to_numpy()].copy()
    tracking_id = as_text(out[col.TRACKING_ID])
    out[_KEY] = _hash(tracking_id.fillna(as_text(out[col.TO]))).to_numpy()
    return out


def _numbered(part: pd.DataFrame) -> pd.DataFrame:
    """Events (all of each send here) with a number: their TO, else their send's earliest named one."""
    out = part.drop(columns=[_KEY])
    number = as_text(out[col.TO])
    tracking_id = as_text(out[col.TRACKING_ID])
    missing = (number.isna() & tracking_id.notna()).to_numpy()
    if missing.any():
        named = pd.DataFrame({"id": tracking_id.to_numpy(dtype=object), "to": number.to_numpy(dtype=object),
                              "at": event_time(out).to_numpy()})[number.notna().to_numpy()]  # fmt: skip
        first = named.sort_values(["at", "to"], kind="stable", na_position="last").drop_duplicates("id")
        fill = tracking_id.map(dict(zip(first["id"], first["to"], strict=True)))
        number = number.where(~pd.Series(missing, index=number.index), fill)
    out[col.TO] = number.to_numpy(dtype=object)
    out = out[number.notna().to_numpy()]
    out[_KEY] = _hash(out[col.TO]).to_numpy()
    return out


def _profiles_of(part: pd.DataFrame, function: Callable) -> pd.DataFrame:
    return function(part.drop(columns=[_KEY]))


def profiles_on_dask(function: Callable, events):
    """:func:`skycore_lab.handset_profiles` of a dask events frame: shuffled by number, ``function`` per partition.

    Returns
    -------
    dask.dataframe.DataFrame
        The columns of :func:`skycore_lab.handset_profiles`, one row per
        number, sorted by number within each partition.
    """
    require_dask()
    from dask.dataframe.utils import make_meta

    event_meta = make_meta(events)
    require_columns(event_meta, (col.TO, col.CODE, col.TIMESTAMP, col.TRACKING_ID), "events")
    partitions = max(1, events.npartitions)
    keyed_meta = _with_key_meta(event_meta)
    by_send = events.map_partitions(_profile_events, meta=keyed_meta).shuffle(on=_KEY, npartitions=partitions)
    numbered_meta = keyed_meta.copy()
    numbered_meta[col.TO] = numbered_meta[col.TO].astype(object)
    by_number = by_send.map_partitions(_numbered, meta=numbered_meta).shuffle(on=_KEY, npartitions=partitions)
    return by_number.map_partitions(_profiles_of, function, meta=function(event_meta))
