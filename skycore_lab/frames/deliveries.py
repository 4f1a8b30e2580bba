"""From postback events to one row per send (:func:`deliveries`).

:func:`deliveries` turns the *events* frame of :func:`skycore_lab.read_postbacks`
(one row per notification, duplicated, out of order and late, as the platform
retries) into one row per MMS send, keyed by tracking id, optionally joined to
the send *manifest* of :meth:`skycore_lab.SkycoreClient.send_batch`.

Everything is vectorised (sort once, then group by an integer send number).
Code semantics come from :mod:`skycore_lab.reference`, latencies from
:mod:`.latency`, column names from :mod:`skycore_lab.columns`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .. import columns as col
from .. import reference as ref
from ..checks import require_columns
from ..distributed.engine import is_dask
from ..exceptions import SkycoreValidationError
from ..provenance import attach_design, attach_sources, design_of, sources_of
from .latency import latency_seconds
from .normalize import (
    EVENT_AT,
    NegativeLatency,
    as_text,
    check_negative_latency,
    fill_place,
    finish_delivery_dtypes,
    handle_negative_latencies,
    rank_key,
    time_key,
    timed_events,
)
from .times import as_utc

__all__ = ["deliveries"]

#: Identity columns: first non-missing value among a send's events, in time order.
_IDENTITY_COLUMNS = (col.TO, col.MMS_ID, col.SENDER, col.SPID, col.CARRIER, col.COUNTRY)

# working columns, never returned
_G = "_send"  # integer send number (factorized tracking id)


# --- deliveries -------------------------------------------------------------------------------------
def _send_events(events: pd.DataFrame) -> tuple[pd.DataFrame, pd.Index]:
    """The events that belong to sends, sorted by (send, time, code, received_at, other values).

    Returns the sorted events (with the integer send number ``_G`` and event
    time ``EVENT_AT``) and the tracking ids, indexed by send number.
    """
    code = as_text(events[col.CODE]).str.upper()
    tracking_id = _linked_tracking_ids(events, code, as_text(events[col.TRACKING_ID]))
    keep = (tracking_id.notna() & code.isin(ref.SEND_CODES)).to_numpy()
    frame, received = timed_events(events, code, keep, (col.STATUS, col.SENT_AS, col.HANDSET, *_IDENTITY_COLUMNS))

    send_number, tracking_ids = pd.factorize(tracking_id[keep], sort=False)
    # Sort once; every later "earliest"/"first non-missing" is then a
    # first-row-per-group. Missing times sort last; the extra keys make ties
    # (and so the result) independent of the events' order.
    # lexsort: the last key is the primary one.
    ties = [rank_key(frame[name]) for name in (*reversed(_IDENTITY_COLUMNS), col.HANDSET, col.SENT_AS, col.STATUS)]
    order = np.lexsort((*ties, time_key(received), rank_key(frame[col.CODE]), time_key(frame[EVENT_AT]), send_number))
    frame[_G] = send_number
    frame = frame.take(order).reset_index(drop=True)
    return frame, pd.Index(tracking_ids, dtype="str")


def _link_sent(code: pd.Series, status: pd.Series) -> pd.Series:
    """The legacy xHTML link-sent N102s (:func:`skycore_lab.reference.is_link_sent`)."""
    n102 = code == ref.N102
    marked = n102.copy()
    if n102.any():
        marked[n102] = status[n102].map(lambda s: ref.is_link_sent(ref.N102, s if isinstance(s, str) else None))
    return marked.astype(bool)


def _linked_tracking_ids(events: pd.DataFrame, code: pd.Series, tracking_id: pd.Series) -> pd.Series:
    """Tracking ids with each SMS_MT notification of a legacy xHTML link re-keyed to its MMS.

    The 2012 xHTML N102 (link sent) carries ``SMSID``, the tracking id of the
    SMS that took the link; that SMS's N202 is the MMS's delivery. Needs the
    ``extra`` column (where the parser keeps SMSID); without it nothing is linked.
    """
    if col.EXTRA not in events.columns or col.STATUS not in events.columns:
        return tracking_id
    link = _link_sent(code, as_text(events[col.STATUS])).to_numpy()
    if not link.any():
        return tracking_id
    sms_ids = [e.get("SMSID") if isinstance(e, dict) else None for e in events[col.EXTRA].to_numpy()[link]]
    mapping = {sms: mms for sms, mms in zip(sms_ids, tracking_id[link]) if isinstance(sms, str) and isinstance(mms, str)}
    if not mapping:
        return tracking_id
    linked = tracking_id.isin(mapping.keys()) & code.isin(ref.SMS_CODES)
    if col.ORIGIN in events.columns:
        linked &= as_text(events[col.ORIGIN]).str.upper().fillna(ref.ORIGIN_SMS) == ref.ORIGIN_SMS
    return tracking_id.where(~linked, tracking_id.map(mapping))


def _first(frame: pd.DataFrame, mask, columns: list[str]) -> pd.DataFrame:
    """The first row per send among ``frame[mask]`` (frame is sorted), indexed by send number."""
    return frame.loc[mask, [_G, *columns]].drop_duplicates(_G).set_index(_G)


def _aggregate(ev: pd.DataFrame, tracking_ids: pd.Index) -> pd.DataFrame:
    """One row per send (indexed by send number) from the sorted send events."""
    n = len(tracking_ids)
    out = pd.DataFrame(index=pd.RangeIndex(n, name=_G))
    out[col.TRACKING_ID] = tracking_ids.array
    code = ev[col.CODE]
    grouped = ev.groupby(_G, sort=True)

    identity = grouped[list(_IDENTITY_COLUMNS)].first()
    for name in _IDENTITY_COLUMNS:
        out[name] = identity[name].reindex(out.index)
    out[col.FIRST_EVENT_AT] = grouped[EVENT_AT].min().reindex(out.index)

    # sent: N101, else the N201 of an SMS-only send.
    n101 = _first(ev, code == ref.N101, [EVENT_AT])[EVENT_AT]
    n201 = _first(ev, code == ref.N201, [EVENT_AT])[EVENT_AT]
    out[col.SENT_AT] = n101.reindex(out.index).fillna(n201.reindex(out.index))

    # sent_as: N101's SENTAS, else any event's, else SMS when only the SMS path
    # spoke or the MMS went out as an SMS link (the legacy link-sent N102).
    link_sent = _link_sent(code, ev[col.STATUS])
    has_sent_as = ev[col.SENT_AS].notna()
    sent_as = _first(ev, (code == ref.N101) & has_sent_as, [col.SENT_AS])[col.SENT_AS].reindex(out.index)
    sent_as = sent_as.fillna(_first(ev, has_sent_as, [col.SENT_AS])[col.SENT_AS].reindex(out.index)).str.upper()
    sms_path = pd.Index(ev.loc[code.isin(ref.SMS_CODES) | link_sent, _G].unique())
    out[col.SENT_AS] = sent_as.where(sent_as.notna() | ~out.index.isin(sms_path), col.SENT_AS_SMS)

    # Final notifications. Delivery wins over a failure notice for the same
    # send (a delivered MMS was delivered; the platform also reports failures
    # of retries and of the fallback path). A link-sent N102 delivers nothing.
    delivered = _first(ev, code.isin(ref.DELIVERED_CODES) & ~link_sent, [EVENT_AT, col.CODE]).reindex(out.index)
    failed = _first(ev, code.isin(ref.FAILED_CODES), [EVENT_AT, col.CODE, col.STATUS]).reindex(out.index)
    out[col.DELIVERED_AT] = delivered[EVENT_AT]
    out[col.FAILED_AT] = failed[EVENT_AT]
    failure_outcome = _failure_outcomes(failed[col.CODE], failed[col.STATUS])
    is_delivered = delivered[col.CODE].notna()
    out[col.FINAL_CODE] = delivered[col.CODE].where(is_delivered, failed[col.CODE])
    out[col.OUTCOME] = np.select(
        [is_delivered.to_numpy(), failure_outcome.notna().to_numpy()],
        [col.OUTCOME_DELIVERED, failure_outcome.to_numpy(dtype=object)],
        default=col.OUTCOME_PENDING,
    )

    # Handset: the delivery report's, else the DDM report's.
    has_handset = ev[col.HANDSET].notna()
    handset = _first(ev, (code == ref.N102) & has_handset, [col.HANDSET])[col.HANDSET].reindex(out.index)
    ddm_handset = _first(ev, (code == ref.N502) & has_handset, [col.HANDSET])[col.HANDSET].reindex(out.index)
    out[col.HANDSET] = handset.fillna(ddm_handset)

    # DDM: an N502 whose STATUS ends in a failure word reports a failed DDM.
    n502 = code == ref.N502
    n502_failed = n502.copy()
    n502_failed[n502] = _announces_failure(ev.loc[n502, col.STATUS])
    ddm_sent = _first(ev, code == ref.N501, [EVENT_AT])[EVENT_AT].reindex(out.index)
    ddm_delivered = _first(ev, n502 & ~n502_failed, [EVENT_AT, col.CODE]).reindex(out.index)
    ddm_failed = pd.Index(ev.loc[code.isin({ref.E501, ref.E502}) | n502_failed, _G].unique())
    ddm_any = pd.Index(ev.loc[code.isin(ref.DDM_CODES), _G].unique())
    out[col.DDM] = np.select(
        [ddm_delivered[col.CODE].notna().to_numpy(), out.index.isin(ddm_failed), out.index.isin(ddm_any)],
        [col.DDM_DELIVERED, col.DDM_FAILED, col.DDM_SENT],
        default=col.DDM_NONE,
    )
    ddm_times = pd.DataFrame({col.DDM_SENT_AT: ddm_sent, col.DDM_DELIVERED_AT: ddm_delivered[EVENT_AT]})
    out[col.DDM_LATENCY_S] = latency_seconds(ddm_times, col.DDM_LATENCY_S)
    return out


def _announces_failure(status: pd.Series) -> np.ndarray:
    """Whether each STATUS announces a failure (:func:`skycore_lab.reference.status_outcome`),
    decided once per distinct text."""
    codes, texts = pd.factorize(status, use_na_sentinel=True)
    failed = np.array([ref.status_outcome(text) is not None for text in texts] + [False])
    return failed[codes]


def _failure_outcomes(code: pd.Series, status: pd.Series) -> pd.Series:
    """Outcome of each failure notification, via :func:`ref.outcome_of` on the distinct (code, status) pairs."""
    pairs = pd.DataFrame({col.CODE: code, col.STATUS: status})
    present = pairs[col.CODE].notna()
    distinct = pairs[present].drop_duplicates()
    distinct[col.OUTCOME] = [
        ref.outcome_of(c, None if pd.isna(s) else s) for c, s in distinct.itertuples(index=False)
    ]
    result = pairs.merge(distinct, on=[col.CODE, col.STATUS], how="left")[col.OUTCOME]
    result.index = pairs.index
    return result


def _prepare_manifest(manifest: pd.DataFrame) -> pd.DataFrame:
    """Manifest rows of accepted sends, indexed by tracking id, in manifest order."""
    require_columns(manifest, (col.TRACKING_ID,), "manifest")
    frame = manifest.copy()
    frame[col.TRACKING_ID] = as_text(frame[col.TRACKING_ID])
    for name in (col.TO, col.SENDER):
        if name in frame.columns:
            frame[name] = as_text(frame[name])
    if col.REQUESTED_AT in frame.columns:
        frame[col.REQUESTED_AT] = as_utc(frame[col.REQUESTED_AT], f"manifest.{col.REQUESTED_AT}")
    frame = frame[frame[col.TRACKING_ID].notna()]
    try:
        frame = frame.drop_duplicates()  # the same manifest concatenated twice
    except TypeError:  # unhashable cells (lists, dicts): compare their text
        frame = frame[~frame.astype("str").duplicated()]
    clash = frame[col.TRACKING_ID][frame[col.TRACKING_ID].duplicated()].unique()
    if len(clash):
        shown = ", ".join(map(str, clash[:5]))
        raise SkycoreValidationError(
            "manifest", f"{len(clash)} tracking id(s) appear in several rows with different data, e.g. {shown}"
        )
    return frame.set_index(col.TRACKING_ID, drop=False).rename_axis(None)


def deliveries(
    events: pd.DataFrame | None,
    manifest: pd.DataFrame | None = None,
    *,
    negative_latency: NegativeLatency = "warn",
) -> pd.DataFrame:
    """One row per MMS send (tracking id), from postback events and an optional send manifest.

    Parameters
    ----------
    events : pandas.DataFrame or None
        Postback events as made by :func:`skycore_lab.read_postbacks`.
        Required columns: ``tracking_id``, ``code``, ``timestamp``. Used when
        present: ``status, sent_as, to, mms_id, sender, spid, carrier, country,
        handset, received_at``; any other column is ignored. Categorical,
        object and string columns are all accepted; ``timestamp`` and
        ``received_at`` must be tz-aware datetimes (or ISO-8601 text; text
        without an offset is read as UTC). ``None`` means no events yet.
    manifest : pandas.DataFrame, optional
        Send manifest (:meth:`skycore_lab.SkycoreClient.send_batch`), joined on
        ``tracking_id``; needs that column, uses ``to``, ``sender`` and
        ``requested_at`` when present, and carries every other column (``status``,
        ``error_code``, ``error_info``, an experiment's ``arm``, ...).
    negative_latency : {"warn", "clip", "nan"}
        Latencies below zero (clock skew between the platform, the carrier and
        this machine): ``"warn"`` keeps them and emits one
        :class:`ClockSkewWarning` with their count; ``"clip"`` sets them to 0;
        ``"nan"`` drops them to missing. Outcomes and timestamps never change.

    Returns
    -------
    pandas.DataFrame
        One row per send, with ``columns.DELIVERY_COLUMNS`` then the manifest's
        other columns (in manifest order). Manifest sends come first, in
        manifest order, then sends seen only in events, by first event time
        and tracking id. RangeIndex.

        ===============  ==================================================================
        tracking_id      the platform's tracking id (``str``)
        to               recipient (``str``): first one among the send's events, else the
                         manifest's
        mms_id           saved MMS id (``str``)
        sender           shortcode, the events' FROM, else the manifest's (``str``)
        carrier          carrier (``category``); from the SPID when events lack it
        country          country (``category``); from the SPID, else the number
        spid             carrier id, 7 digits (``str``)
        sent_as          ``MMS`` or ``SMS`` (``category``): N101's SENTAS, else any
                         event's, else ``SMS`` when only SMS_MT codes were seen
        requested_at     when the API request was sent (manifest; NaT without one)
        first_event_at   earliest notification of the send (any code, DDM included)
        sent_at          earliest N101, else earliest N201
        delivered_at     earliest N102/N202
        failed_at        earliest E101/E102/E201/E202 (kept even when delivered)
        final_code       the code that decided the outcome (``category``), missing
                         when pending
        outcome          ordered ``category`` of ``columns.OUTCOMES``
        latency_s        seconds from N101 to delivery (float; every latency is defined in
                         :data:`skycore_lab.frames.latency.LATENCIES`)
        total_latency_s  seconds from the API request (manifest), else the first
                         notification, to delivery (float)
        handset          N102's HANDSET, else N502's (``str``)
        ddm              ordered ``category`` of ``columns.DDM_STATES``
        ddm_latency_s    seconds from the first N501 to the first delivered N502 (float)
        ===============  ==================================================================

        ``frame.attrs`` carries the source files and experiment design recorded
        in the attrs of ``events`` and ``manifest`` (:mod:`skycore_lab.provenance`).

    Notes
    -----
    Rules, where the documentation leaves the choice to us:

    * Only events with a tracking id and an MMS, SMS (fallback) or DDM code
      are sends; MO, subscription and encoding notifications are ignored.
    * The 2012 xHTML path (N101, then an N102 whose STATUS is
      :data:`skycore_lab.reference.LINK_SENT` — the SMS with the link went
      out — carrying ``SMSID``, then that SMS's SMS_MT N202): one send, under
      the MMS's tracking id, sent as SMS, delivered when the SMS was. The
      link-sent N102 is not a delivery; the SMS_MT notifications of that
      SMSID are the MMS's (the link is read from ``extra["SMSID"]``).
    * An event's time is its TIMESTAMP, or its ``received_at`` when the
      TIMESTAMP is missing (an E101 may come without one).
    * Outcome: ``delivered`` if any N102/N202 arrived — delivery wins over a
      failure notice for the same send, whichever came first. Else the earliest
      E101/E102/E201/E202 decides (E102/E202 by the STATUS suffix:
      ``…/Expired`` → ``expired``, via :func:`skycore_lab.reference.outcome_of`).
      Else ``pending``: many carriers send no receipts, so no final
      notification means *unknown*, never *failed*.
    * DDM: ``delivered`` if an N502 arrived (unless its STATUS ends in a
      failure word such as ``…/Failed``), else ``failed`` on E501/E502, else
      ``sent`` on N501 alone, else ``none``.
    * The result never depends on the order of the events, and duplicated
      events change nothing: ties in time are broken by code, ``received_at``
      and then the values themselves.
    * Negative latencies (a DLR stamped before its N101, a request logged
      after its delivery: clock skew between systems) never pass silently;
      see ``negative_latency``.
    * Manifest rows without a tracking id (API ``Failure``, ``Invalid``,
      ``Error``, ``Unknown``, ``Cancelled``) are left out: the platform never
      accepted them as sends, so they are neither delivered nor failed
      deliveries. Count them in the manifest itself. Manifest sends without
      any event are ``pending`` rows carrying the manifest's data. Events of
      tracking ids missing from the manifest are kept (they are sends we saw);
      their manifest columns are missing. A tracking id in two manifest rows
      with different data raises :class:`SkycoreValidationError`.

    Raises
    ------
    SkycoreValidationError
        A required column is missing (the message names it), a time column
        holds naive datetimes or unreadable values, or the manifest is
        inconsistent.
    """
    check_negative_latency(negative_latency)
    if is_dask(events):  # shuffled by send on the cluster, then this function per partition
        from ..distributed.frames import deliveries_on_dask  # here: that module reads frames' helpers

        return deliveries_on_dask(deliveries, events, manifest, negative_latency=negative_latency)
    if events is None:
        events = pd.DataFrame({name: pd.Series(dtype="str") for name in (col.TRACKING_ID, col.CODE)})
        events[col.TIMESTAMP] = pd.Series(dtype=col.DATETIME_DTYPE)
    require_columns(events, (col.TRACKING_ID, col.CODE, col.TIMESTAMP), "events")
    ev, tracking_ids = _send_events(events.reset_index(drop=True))
    sends = _aggregate(ev, tracking_ids).set_index(col.TRACKING_ID, drop=False).rename_axis(None)

    extra_columns: list[str] = []
    if manifest is not None:
        listed = _prepare_manifest(manifest)
        unseen = sends.index.difference(listed.index)
        event_only = sends.loc[unseen].sort_values([col.FIRST_EVENT_AT, col.TRACKING_ID], na_position="last")
        frame = sends.reindex(listed.index.append(event_only.index))
        frame[col.TRACKING_ID] = frame.index.array
        for name in (col.TO, col.SENDER):
            if name in listed.columns:
                frame[name] = frame[name].fillna(listed[name].reindex(frame.index))
        if col.REQUESTED_AT in listed.columns:
            frame[col.REQUESTED_AT] = listed[col.REQUESTED_AT].reindex(frame.index)
        extra_columns = [name for name in listed.columns if name not in col.DELIVERY_COLUMNS]
        for name in extra_columns:
            frame[name] = listed[name].reindex(frame.index)
        frame[col.OUTCOME] = frame[col.OUTCOME].fillna(col.OUTCOME_PENDING)
        frame[col.DDM] = frame[col.DDM].fillna(col.DDM_NONE)
    else:
        frame = sends.sort_values([col.FIRST_EVENT_AT, col.TRACKING_ID], na_position="last")
    if col.REQUESTED_AT not in frame.columns:
        frame[col.REQUESTED_AT] = pd.Series(pd.NaT, index=frame.index, dtype=col.DATETIME_DTYPE)
    frame = frame.reset_index(drop=True)

    for name in (col.SENT_AT, col.DELIVERED_AT, col.FIRST_EVENT_AT):
        frame[name] = frame[name].astype(col.DATETIME_DTYPE)
    frame[col.REQUESTED_AT] = frame[col.REQUESTED_AT].astype(col.DATETIME_DTYPE)
    for name in (col.LATENCY_S, col.TOTAL_LATENCY_S):
        frame[name] = latency_seconds(frame, name)
    fill_place(frame)
    frame = finish_delivery_dtypes(frame[[*col.DELIVERY_COLUMNS, *extra_columns]].copy())
    handle_negative_latencies(frame, negative_latency)
    frame.attrs.clear()  # pandas may have carried some of the inputs' attrs; set them once, below
    attach_sources(frame, sources_of(events, manifest))
    attach_design(frame, design_of(manifest))
    return frame
