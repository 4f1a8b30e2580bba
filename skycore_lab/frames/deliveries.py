"""From postback events to one row per send (:func:`deliveries`).

:func:`deliveries` turns the *events* frame of :func:`skycore_lab.read_postbacks`
(one row per notification, duplicated, out of order and late, as the platform
retries) into one row per MMS send, keyed by tracking id, optionally joined to
the send *manifest* of :meth:`skycore_lab.SkycoreClient.send_batch`.

Everything is vectorised on integer codes (:mod:`.grouped`): sort once by
(send, time), then take a first row per send for each rule.
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
from .grouped import LazyText, SortedGroups, group_time_order, lookup, take_codes, text_codes, text_from_codes, time_key
from .latency import latency_seconds
from .normalize import (
    NegativeLatency,
    as_text,
    check_negative_latency,
    fill_place,
    finish_delivery_dtypes,
    handle_negative_latencies,
)
from .times import as_utc, event_time

__all__ = ["deliveries"]

#: Identity columns: first non-missing value among a send's events, in time order.
_IDENTITY_COLUMNS = (col.TO, col.MMS_ID, col.SENDER, col.SPID, col.CARRIER, col.COUNTRY)


# --- deliveries -------------------------------------------------------------------------------------
def _codes(events: pd.DataFrame, name: str, *, upper: bool = False) -> tuple[np.ndarray, pd.Index]:
    """Column ``name`` as text codes (:func:`.grouped.text_codes`); all missing when absent."""
    if name in events.columns:
        return text_codes(events[name], upper=upper)
    return np.full(len(events), -1, dtype=np.int32), pd.Index([], dtype="str")


def _member(categories: pd.Index, values) -> np.ndarray:
    """Whether each category is one of ``values``."""
    return np.array([category in values for category in categories], dtype=bool)


def _utc(values: np.ndarray) -> pd.Series:
    """``datetime64[us]`` values (UTC) as a tz-aware series."""
    return pd.Series(values.astype("datetime64[us]")).dt.tz_localize("UTC").astype(col.DATETIME_DTYPE)


def _times(events: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Each event's time (:func:`.times.event_time`) and ``received_at``, as ``datetime64[us]`` (UTC)."""
    at = event_time(events).to_numpy(dtype="datetime64[us]")  # reads only the time columns
    if col.RECEIVED_AT in events.columns:
        received = as_utc(events[col.RECEIVED_AT], f"events.{col.RECEIVED_AT}").to_numpy(dtype="datetime64[us]")
    else:
        received = np.full(len(events), np.datetime64("NaT", "us"))
    return at, received


def _link_tracking_ids(events, code, codes, status, statuses, tracking, tracking_ids) -> np.ndarray:
    """Tracking-id codes with each SMS_MT notification of a legacy xHTML link re-keyed to its MMS.

    The 2012 xHTML N102 (link sent) carries ``SMSID``, the tracking id of the
    SMS that took the link; that SMS's N202 is the MMS's delivery. Needs the
    ``extra`` column (where the parser keeps SMSID); without it nothing is
    linked. When several link-sent N102s name the same SMSID, the last one in
    the events' order wins.
    """
    if col.EXTRA not in events.columns or col.STATUS not in events.columns:
        return tracking
    link = lookup(_member(codes, {ref.N102}) , code) & lookup(_link_statuses(statuses), status)
    if not link.any():
        return tracking
    rows = np.flatnonzero(link)
    mapping: dict[str, int] = {}
    for extra, mms in zip(events[col.EXTRA].to_numpy()[rows], tracking[rows]):
        sms = extra.get("SMSID") if isinstance(extra, dict) else None
        if isinstance(sms, str) and mms >= 0:
            mapping[sms] = int(mms)
    if not mapping:
        return tracking
    position = tracking_ids.get_indexer(pd.Index(list(mapping), dtype=object))
    found = position >= 0
    is_sms_id = np.zeros(len(tracking_ids), dtype=bool)
    is_sms_id[position[found]] = True
    remap = np.arange(len(tracking_ids), dtype=np.int64)
    remap[position[found]] = np.fromiter(mapping.values(), dtype=np.int64, count=len(mapping))[found]
    linked = lookup(is_sms_id, tracking) & lookup(_member(codes, ref.SMS_CODES), code)
    if col.ORIGIN in events.columns:
        origin, origins = text_codes(events[col.ORIGIN], upper=True)
        linked &= lookup(_member(origins, {ref.ORIGIN_SMS}), origin, missing=True)
    return np.where(linked, remap[tracking], tracking)


def _link_statuses(statuses: pd.Index) -> np.ndarray:
    """Whether each STATUS text makes an N102 the legacy link-sent one (:func:`ref.is_link_sent`)."""
    return np.array([ref.is_link_sent(ref.N102, status) for status in statuses], dtype=bool)


def _send_order(rows, send, at, received, codes, texts) -> np.ndarray:
    """The order of the send events ``rows``: by send, time, code, ``received_at``, STATUS, SENTAS, then
    the ``texts`` (:class:`.grouped.LazyText`); ``codes`` are the code, STATUS and SENTAS codes of all events."""
    received_key = time_key(received)
    code, status, sent_as = codes
    ties = [lambda tied: code[rows[tied]], lambda tied: received_key[tied], lambda tied: status[rows[tied]],
            lambda tied: sent_as[rows[tied]]]
    ties += [lambda tied, column=column: column.ranks(rows[tied]) for column in texts]
    return group_time_order(send, time_key(at), ties)


def _sends(events: pd.DataFrame, *, by_first_event: bool) -> pd.DataFrame:
    """One row per send (RangeIndex), before the manifest and the final dtypes.

    In tracking-id order, or by first event time (missing last) then
    tracking id when ``by_first_event``.

    Every column is read once as integer codes; the send events are sorted
    once by (send, time, code, received_at, values) and each rule below is a
    first row per send among a mask of that order.
    """
    code, codes = _codes(events, col.CODE, upper=True)
    tracking, tracking_ids = _codes(events, col.TRACKING_ID)
    status, statuses = _codes(events, col.STATUS)
    tracking = _link_tracking_ids(events, code, codes, status, statuses, tracking, tracking_ids)
    rows = np.flatnonzero((tracking >= 0) & lookup(_member(codes, ref.SEND_CODES), code)).astype(
        np.int32 if len(events) < 2**31 else np.int64)

    # Sends are numbered in tracking-id order (codes are sorted texts).
    seen = np.zeros(len(tracking_ids), dtype=bool)
    seen[tracking[rows]] = True
    send = (np.cumsum(seen, dtype=np.int64) - 1).astype(rows.dtype)[tracking[rows]]
    n = int(seen.sum())
    # Sort once. Missing times sort last; the extra keys make ties (and so the
    # result) independent of the events' order.
    sent_as_codes, sent_as_texts = _codes(events, col.SENT_AS)
    text = {name: LazyText(events[name] if name in events.columns else None, len(events))
            for name in (col.HANDSET, *_IDENTITY_COLUMNS)}
    at, received = _times(events)
    order = _send_order(rows, send, at[rows], received[rows], (code, status, sent_as_codes), text.values())
    del received, tracking  # a million rows each: keep the peak low
    rows, send = rows[order], send[order]
    at, code, status, sent_as_codes = at[rows], code[rows], status[rows], sent_as_codes[rows]
    del order

    groups = SortedGroups(send)
    first_event = at[groups.starts]
    # Every per-send array below is built in the returned order.
    in_order = np.lexsort((np.arange(n), time_key(first_event))) if by_first_event else np.arange(n)

    def first(mask) -> np.ndarray:
        return groups.first(mask)[in_order]

    def any_of(mask) -> np.ndarray:
        return first(mask) >= 0

    def time_of(position) -> np.ndarray:
        return np.where(position >= 0, at[np.maximum(position, 0)], np.datetime64("NaT", "us"))

    def is_code(*values) -> np.ndarray:
        return lookup(_member(codes, values), code)

    out = pd.DataFrame(index=pd.RangeIndex(n))
    out[col.TRACKING_ID] = text_from_codes(np.flatnonzero(seen)[in_order], tracking_ids).array
    for name in _IDENTITY_COLUMNS:
        known = first(~text[name].missing()[rows])
        out[name] = text[name].text_at(np.where(known >= 0, rows[np.maximum(known, 0)], -1)).array
    out[col.FIRST_EVENT_AT] = _utc(first_event[in_order]).array
    # below, each array is dropped after its last use: they would all be alive at the end
    del first_event, known

    # sent: N101, else the N201 of an SMS-only send.
    sent_at = time_of(first(is_code(ref.N101)))
    out[col.SENT_AT] = _utc(np.where(np.isnat(sent_at), time_of(first(is_code(ref.N201))), sent_at)).array

    # sent_as: N101's SENTAS, else any event's, else SMS when only the SMS path
    # spoke or the MMS went out as an SMS link (the legacy link-sent N102).
    link_sent = is_code(ref.N102) & lookup(_link_statuses(statuses), status)
    has_sent_as = sent_as_codes >= 0
    sent_as = take_codes(sent_as_codes, first(is_code(ref.N101) & has_sent_as))
    sent_as = np.where(sent_as >= 0, sent_as, take_codes(sent_as_codes, first(has_sent_as)))
    sms_path = any_of(is_code(*ref.SMS_CODES) | link_sent)
    out[col.SENT_AS] = text_from_codes(sent_as, sent_as_texts).str.upper().where(
        (sent_as >= 0) | ~sms_path, col.SENT_AS_SMS).array
    del sent_as_codes, has_sent_as, sent_as, sms_path

    # Final notifications. Delivery wins over a failure notice for the same
    # send (a delivered MMS was delivered; the platform also reports failures
    # of retries and of the fallback path). A link-sent N102 delivers nothing.
    delivered = first(is_code(*ref.DELIVERED_CODES) & ~link_sent)
    failed = first(is_code(*ref.FAILED_CODES))
    del link_sent
    out[col.DELIVERED_AT] = _utc(time_of(delivered)).array
    out[col.FAILED_AT] = _utc(time_of(failed)).array
    is_delivered = delivered >= 0
    final_code = np.where(is_delivered, take_codes(code, delivered), take_codes(code, failed))
    out[col.FINAL_CODE] = text_from_codes(final_code, codes).array
    failure = _failure_outcomes(take_codes(code, failed), codes, take_codes(status, failed), statuses)
    outcome = np.where(is_delivered, col.OUTCOMES.index(col.OUTCOME_DELIVERED),
                       np.where(failure >= 0, failure, col.OUTCOMES.index(col.OUTCOME_PENDING)))
    out[col.OUTCOME] = pd.Categorical.from_codes(outcome, dtype=pd.CategoricalDtype(col.OUTCOMES, ordered=True))
    del delivered, failed, is_delivered, final_code, failure, outcome

    # Handset: the delivery report's, else the DDM report's.
    has_handset = ~text[col.HANDSET].missing()[rows]
    handset = first(is_code(ref.N102) & has_handset)
    handset = np.where(handset >= 0, handset, first(is_code(ref.N502) & has_handset))
    out[col.HANDSET] = text[col.HANDSET].text_at(np.where(handset >= 0, rows[np.maximum(handset, 0)], -1)).array
    del text, has_handset, handset

    # DDM: an N502 whose STATUS ends in a failure word reports a failed DDM.
    n502 = is_code(ref.N502)
    n502_failed = n502 & lookup([ref.status_outcome(text) is not None for text in statuses], status)
    ddm_delivered = first(n502 & ~n502_failed)
    state = np.select(
        [ddm_delivered >= 0, any_of(is_code(ref.E501, ref.E502) | n502_failed), any_of(is_code(*ref.DDM_CODES))],
        [col.DDM_STATES.index(state) for state in (col.DDM_DELIVERED, col.DDM_FAILED, col.DDM_SENT)],
        default=col.DDM_STATES.index(col.DDM_NONE),
    )
    out[col.DDM] = pd.Categorical.from_codes(state, dtype=pd.CategoricalDtype(col.DDM_STATES, ordered=True))
    ddm_times = pd.DataFrame({col.DDM_SENT_AT: _utc(time_of(first(is_code(ref.N501)))),
                              col.DDM_DELIVERED_AT: _utc(time_of(ddm_delivered))})
    out[col.DDM_LATENCY_S] = latency_seconds(ddm_times, col.DDM_LATENCY_S).array
    return out


def _failure_outcomes(code: np.ndarray, codes: pd.Index, status: np.ndarray, statuses: pd.Index) -> np.ndarray:
    """Outcome of each failure notification as a position in ``columns.OUTCOMES`` (-1: none), via
    :func:`ref.outcome_of` on the distinct (code, status) pairs."""
    width = len(statuses) + 1  # status -1 (missing) → 0
    table = np.full(len(codes) * width + 1, -1, dtype=np.int64)
    pairs = np.where(code >= 0, code * width + status + 1, len(table) - 1)
    for pair in np.unique(pairs[code >= 0]):
        found = ref.outcome_of(codes[pair // width], statuses[pair % width - 1] if pair % width else None)
        table[pair] = col.OUTCOMES.index(found) if found is not None else -1
    return table[pairs]


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
    sends = _sends(events.reset_index(drop=True), by_first_event=manifest is None)

    extra_columns: list[str] = []
    if manifest is not None:
        listed = _prepare_manifest(manifest)
        sends = sends.set_index(col.TRACKING_ID, drop=False).rename_axis(None)
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
        frame = sends  # by first event time, then tracking id
    if col.REQUESTED_AT not in frame.columns:
        frame[col.REQUESTED_AT] = pd.Series(pd.NaT, index=frame.index, dtype=col.DATETIME_DTYPE)
    frame = frame.reset_index(drop=True)

    for name in (col.SENT_AT, col.DELIVERED_AT, col.FIRST_EVENT_AT):
        frame[name] = frame[name].astype(col.DATETIME_DTYPE)
    frame[col.REQUESTED_AT] = frame[col.REQUESTED_AT].astype(col.DATETIME_DTYPE)
    for name in (col.LATENCY_S, col.TOTAL_LATENCY_S):
        frame[name] = latency_seconds(frame, name)
    fill_place(frame)
    # Without a manifest every text column was built from as_text's values already.
    frame = finish_delivery_dtypes(frame[[*col.DELIVERY_COLUMNS, *extra_columns]], text_ready=manifest is None)
    handle_negative_latencies(frame, negative_latency)
    frame.attrs.clear()  # pandas may have carried some of the inputs' attrs; set them once, below
    attach_sources(frame, sources_of(events, manifest))
    attach_design(frame, design_of(manifest))
    return frame
