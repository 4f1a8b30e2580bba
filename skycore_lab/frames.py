"""From postback events to one row per send, and per-number handset profiles.

:func:`deliveries` turns the *events* frame of :func:`skycore_lab.read_postbacks`
(one row per notification, duplicated, out of order and late, as the platform
retries) into one row per MMS send, keyed by tracking id, optionally joined to
the send *manifest* of :meth:`skycore_lab.SkycoreClient.send_batch`.
:func:`handset_profiles` summarises what the postbacks say about each number's
handset. :func:`read_sending_report` (in :mod:`skycore_lab.sending_report`,
re-exported here) reads the platform's own sending-statistics report into the
same shape.

Everything is vectorised (sort once, then group by an integer send number), so
a million events take a few seconds. Code semantics come from
:mod:`skycore_lab._codes`, column names from :mod:`skycore_lab.columns`.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from typing import Literal

import numpy as np
import pandas as pd

from . import _codes
from . import columns as col
from .exceptions import SkycoreValidationError
from .reference import AMBIGUOUS_SPIDS, country_of_number, resolve_spid, spid_lookup

__all__ = ["deliveries", "handset_profiles", "read_sending_report", "ClockSkewWarning", "NegativeLatency"]

#: What to do with negative latencies (see :func:`deliveries`).
NegativeLatency = Literal["warn", "clip", "nan"]
_NEGATIVE_LATENCY_POLICIES = ("warn", "clip", "nan")

DATETIME_DTYPE = "datetime64[us, UTC]"
#: Delivery columns held as (unordered) categoricals: small vocabularies.
_CATEGORICAL_DELIVERY_COLUMNS = (col.CARRIER, col.COUNTRY, col.SENT_AS, col.FINAL_CODE)
_TEXT_DELIVERY_COLUMNS = (col.TRACKING_ID, col.TO, col.MMS_ID, col.SENDER, col.SPID, col.HANDSET)
_DATETIME_DELIVERY_COLUMNS = (col.REQUESTED_AT, col.FIRST_EVENT_AT, col.SENT_AT, col.DELIVERED_AT, col.FAILED_AT)
_LATENCY_COLUMNS = (col.LATENCY_S, col.TOTAL_LATENCY_S, col.DDM_LATENCY_S)

#: Codes that belong to a send (MMS, its SMS/xHTML fallback, its DDM). Others
#: a shared postback URL receives (MO, subscriptions, encoding) are not sends.
_SEND_CODES = _codes.MMS_CODES | _codes.SMS_CODES | _codes.DDM_CODES
#: Identity columns: first non-missing value among a send's events, in time order.
_IDENTITY_COLUMNS = (col.TO, col.MMS_ID, col.SENDER, col.SPID, col.CARRIER, col.COUNTRY)
#: STATUS suffixes (``…/Expired``) that announce a failure.
_FAILURE_SUFFIXES = frozenset(_codes._SUFFIX_OUTCOME)

# working columns, never returned
_G = "_send"  # integer send number (factorized tracking id)
_T = "_event_at"  # event time: TIMESTAMP, else received_at


class ClockSkewWarning(UserWarning):
    """Some latencies came out negative: the timestamps of two systems disagree."""


# --- input normalisation -------------------------------------------------------------------
def _require(frame, required: Iterable[str], what: str) -> pd.DataFrame:
    if not isinstance(frame, pd.DataFrame):
        raise SkycoreValidationError(what, f"expected a pandas DataFrame, got {type(frame).__name__}")
    missing = [name for name in required if name not in frame.columns]
    if missing:
        have = ", ".join(map(str, frame.columns)) or "no columns"
        raise SkycoreValidationError(what, f"missing required column(s): {', '.join(missing)} (the frame has: {have})")
    return frame


def _as_text(series: pd.Series) -> pd.Series:
    """Strings (pandas ``str`` dtype), stripped, with empty strings as missing.

    Works on categorical, object and string columns alike.
    """
    if isinstance(series.dtype, pd.CategoricalDtype):
        # Normalise the few categories, not the many rows.
        categories = pd.Series(series.cat.categories.astype("str")).str.strip()
        categories = categories.where(categories != "")
        values = categories.to_numpy(dtype=object, na_value=None)
        text = pd.Series(np.append(values, None)[series.cat.codes.to_numpy()], index=series.index, dtype="str")
        return text
    text = series.astype("str").str.strip()
    return text.where(text != "")


def _as_utc(series: pd.Series, field: str) -> pd.Series:
    """Tz-aware UTC datetimes (microseconds). Naive datetimes are refused: their zone is unknown."""
    dtype = series.dtype
    if isinstance(dtype, pd.DatetimeTZDtype):
        return series.dt.tz_convert("UTC").astype(DATETIME_DTYPE)
    if pd.api.types.is_datetime64_dtype(dtype):
        raise SkycoreValidationError(
            field, "holds naive datetimes; their time zone is unknown — localise them first (.dt.tz_localize('UTC'))"
        )
    if series.isna().all():
        return pd.Series(pd.NaT, index=series.index, dtype=DATETIME_DTYPE)
    try:
        if pd.api.types.is_string_dtype(dtype):
            parsed = pd.to_datetime(series, utc=True, format="ISO8601")
        else:
            parsed = pd.to_datetime(series, utc=True)
    except (ValueError, TypeError) as exc:
        raise SkycoreValidationError(field, f"cannot be read as datetimes: {exc}") from None
    return parsed.astype(DATETIME_DTYPE)


def _seconds(later: pd.Series, earlier: pd.Series) -> pd.Series:
    return (later - earlier).dt.total_seconds().astype("float64")


def _check_policy(negative_latency: str) -> None:
    if negative_latency not in _NEGATIVE_LATENCY_POLICIES:
        raise SkycoreValidationError(
            "negative_latency", f"must be one of {', '.join(_NEGATIVE_LATENCY_POLICIES)}, got {negative_latency!r}"
        )


def _handle_negative_latencies(frame: pd.DataFrame, policy: str, what: str = "sends") -> None:
    """Apply the negative-latency policy to the latency columns of ``frame`` in place."""
    negative = pd.Series(False, index=frame.index)
    for name in _LATENCY_COLUMNS:
        if name in frame.columns:
            negative |= frame[name] < 0
    count = int(negative.sum())
    if not count:
        return
    if policy == "warn":
        examples = ", ".join(frame.loc[negative, col.TRACKING_ID].astype("str").head(3))
        warnings.warn(
            f"{count} {what} have a negative latency (a later step stamped before an earlier one: clock skew "
            f"between systems), e.g. tracking id(s) {examples}; kept as is — pass negative_latency='clip' "
            "or 'nan' to change that",
            ClockSkewWarning,
            stacklevel=3,
        )
        return
    for name in _LATENCY_COLUMNS:
        if name in frame.columns:
            below = frame[name] < 0
            frame.loc[below, name] = 0.0 if policy == "clip" else np.nan


def _fill_place(frame: pd.DataFrame) -> None:
    """Fill missing carrier/country from the SPID, then missing country from the number (in place).

    A manifest row without events has no SPID, but its number still tells the
    country, so pending sends count in per-country statistics. Unambiguous
    SPIDs are looked up in one vectorised map; only the few ambiguous ones
    (``0001100`` Canada/United States, ...) need the number
    (:func:`skycore_lab.reference.resolve_spid`).
    """
    spid = frame[col.SPID].str.strip()
    spid = spid.where(~(spid.str.isdigit().fillna(False) & (spid.str.len() < 7)), spid.str.zfill(7))
    need = spid.notna() & (frame[col.CARRIER].isna() | frame[col.COUNTRY].isna())
    if need.any():
        known = spid_lookup()
        carrier = spid[need].map({key: carrier for key, (_country, carrier) in known.items()})
        country = spid[need].map({key: country for key, (country, _carrier) in known.items()})
        ambiguous = need & spid.isin(AMBIGUOUS_SPIDS)
        if ambiguous.any():
            pairs = pd.DataFrame({col.SPID: spid[ambiguous], col.TO: frame.loc[ambiguous, col.TO]})
            infos = {
                (key, to): resolve_spid(key, None if pd.isna(to) else to)
                for key, to in pairs.drop_duplicates().itertuples(index=False)
            }
            resolved = [infos[pair] for pair in pairs.itertuples(index=False, name=None)]
            carrier[ambiguous[need]] = [info.carrier for info in resolved]
            country[ambiguous[need]] = [info.country for info in resolved]
        frame.loc[need, col.CARRIER] = frame.loc[need, col.CARRIER].fillna(carrier)
        frame.loc[need, col.COUNTRY] = frame.loc[need, col.COUNTRY].fillna(country)
    need = frame[col.COUNTRY].isna() & frame[col.TO].notna()
    if need.any():
        numbers = frame.loc[need, col.TO]
        countries = {number: country_of_number(number) for number in numbers.unique()}
        frame.loc[need, col.COUNTRY] = numbers.map(countries)


def _finish_delivery_dtypes(frame: pd.DataFrame) -> pd.DataFrame:
    """Give the delivery columns of ``frame`` their documented dtypes."""
    for name in _TEXT_DELIVERY_COLUMNS:
        frame[name] = _as_text(frame[name])
    for name in _CATEGORICAL_DELIVERY_COLUMNS:
        text = _as_text(frame[name])
        frame[name] = pd.Categorical(text, categories=sorted(text.dropna().unique()))
    for name in _DATETIME_DELIVERY_COLUMNS:
        frame[name] = _as_utc(frame[name], name)
    for name in _LATENCY_COLUMNS:
        frame[name] = frame[name].astype("float64")
    frame[col.OUTCOME] = pd.Categorical(frame[col.OUTCOME], categories=col.OUTCOMES, ordered=True)
    frame[col.DDM] = pd.Categorical(frame[col.DDM], categories=col.DDM_STATES, ordered=True)
    return frame


# --- deliveries -------------------------------------------------------------------------------------
def _timed_events(events: pd.DataFrame, code: pd.Series, keep: np.ndarray, names) -> tuple[pd.DataFrame, pd.Series]:
    """The kept events' code, the named columns as text, and event time ``_T``; plus ``received_at``.

    Event time is the platform's TIMESTAMP, the receiver's clock only when it
    is missing (the documentation shows an E101 without TIMESTAMP).
    """
    frame = pd.DataFrame(index=pd.RangeIndex(int(keep.sum())))
    frame[col.CODE] = code[keep].array
    for name in names:
        if name in events.columns:
            frame[name] = _as_text(events[name][keep]).array
        else:
            frame[name] = pd.Series(pd.NA, index=frame.index, dtype="str")
    stamp = _as_utc(events[col.TIMESTAMP][keep], f"events.{col.TIMESTAMP}")
    if col.RECEIVED_AT in events.columns:
        received = _as_utc(events[col.RECEIVED_AT][keep], f"events.{col.RECEIVED_AT}")
        stamp = stamp.fillna(received)
    else:
        received = pd.Series(pd.NaT, index=stamp.index, dtype=DATETIME_DTYPE)
    frame[_T] = stamp.array
    return frame, received


def _send_events(events: pd.DataFrame) -> tuple[pd.DataFrame, pd.Index]:
    """The events that belong to sends, sorted by (send, time, code, received_at, other values).

    Returns the sorted events (with the integer send number ``_G`` and event
    time ``_T``) and the tracking ids, indexed by send number.
    """
    code = _as_text(events[col.CODE]).str.upper()
    tracking_id = _as_text(events[col.TRACKING_ID])
    keep = (tracking_id.notna() & code.isin(_SEND_CODES)).to_numpy()
    frame, received = _timed_events(events, code, keep, (col.STATUS, col.SENT_AS, col.HANDSET, *_IDENTITY_COLUMNS))

    send_number, tracking_ids = pd.factorize(tracking_id[keep], sort=False)
    # Sort once; every later "earliest"/"first non-missing" is then a
    # first-row-per-group. Missing times sort last; the extra keys make ties
    # (and so the result) independent of the events' order.
    # lexsort: the last key is the primary one.
    ties = [_rank(frame[name]) for name in (*reversed(_IDENTITY_COLUMNS), col.HANDSET, col.SENT_AS, col.STATUS)]
    order = np.lexsort((*ties, _sort_key(received), _rank(frame[col.CODE]), _sort_key(frame[_T]), send_number))
    frame[_G] = send_number
    frame = frame.take(order).reset_index(drop=True)
    return frame, pd.Index(tracking_ids, dtype="str")


def _rank(values: pd.Series) -> np.ndarray:
    """Integer sort key of text values (missing first): makes ties order-independent."""
    return pd.factorize(values, sort=True, use_na_sentinel=True)[0]


def _sort_key(times: pd.Series) -> np.ndarray:
    values = times.to_numpy(dtype="datetime64[us]").astype("int64")
    return np.where(pd.isna(times).to_numpy(), np.iinfo("int64").max, values)


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
    out[col.FIRST_EVENT_AT] = grouped[_T].min().reindex(out.index)

    # sent: N101, else the N201 of an SMS-only send.
    n101 = _first(ev, code == _codes.N101, [_T])[_T]
    n201 = _first(ev, code == _codes.N201, [_T])[_T]
    out[col.SENT_AT] = n101.reindex(out.index).fillna(n201.reindex(out.index))

    # sent_as: N101's SENTAS, else any event's, else SMS when only the SMS path spoke.
    has_sent_as = ev[col.SENT_AS].notna()
    sent_as = _first(ev, (code == _codes.N101) & has_sent_as, [col.SENT_AS])[col.SENT_AS].reindex(out.index)
    sent_as = sent_as.fillna(_first(ev, has_sent_as, [col.SENT_AS])[col.SENT_AS].reindex(out.index)).str.upper()
    sms_path = pd.Index(ev.loc[code.isin(_codes.SMS_CODES), _G].unique())
    out[col.SENT_AS] = sent_as.where(sent_as.notna() | ~out.index.isin(sms_path), col.SENT_AS_SMS)

    # Final notifications. Delivery wins over a failure notice for the same
    # send (a delivered MMS was delivered; the platform also reports failures
    # of retries and of the fallback path).
    delivered = _first(ev, code.isin(_codes.DELIVERED_CODES), [_T, col.CODE]).reindex(out.index)
    failed = _first(ev, code.isin(_codes.FAILED_CODES), [_T, col.CODE, col.STATUS]).reindex(out.index)
    out[col.DELIVERED_AT] = delivered[_T]
    out[col.FAILED_AT] = failed[_T]
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
    handset = _first(ev, (code == _codes.N102) & has_handset, [col.HANDSET])[col.HANDSET].reindex(out.index)
    ddm_handset = _first(ev, (code == _codes.N502) & has_handset, [col.HANDSET])[col.HANDSET].reindex(out.index)
    out[col.HANDSET] = handset.fillna(ddm_handset)

    # DDM: an N502 whose STATUS ends in a failure word reports a failed DDM.
    n502 = code == _codes.N502
    n502_failed = n502.copy()
    n502_failed[n502] = _status_suffix(ev.loc[n502, col.STATUS]).isin(_FAILURE_SUFFIXES)
    ddm_sent = _first(ev, code == _codes.N501, [_T])[_T].reindex(out.index)
    ddm_delivered = _first(ev, n502 & ~n502_failed, [_T, col.CODE]).reindex(out.index)
    ddm_failed = pd.Index(ev.loc[code.isin({_codes.E501, _codes.E502}) | n502_failed, _G].unique())
    ddm_any = pd.Index(ev.loc[code.isin(_codes.DDM_CODES), _G].unique())
    out[col.DDM] = np.select(
        [ddm_delivered[col.CODE].notna().to_numpy(), out.index.isin(ddm_failed), out.index.isin(ddm_any)],
        [col.DDM_DELIVERED, col.DDM_FAILED, col.DDM_SENT],
        default=col.DDM_NONE,
    )
    out[col.DDM_LATENCY_S] = _seconds(ddm_delivered[_T], ddm_sent)
    return out


def _status_suffix(status: pd.Series) -> pd.Series:
    """Lower-case last ``/`` part of each STATUS (``Message Sent/Expired`` → ``expired``).

    Computed on the few distinct texts, not on every row.
    """
    codes, texts = pd.factorize(status, use_na_sentinel=True)
    suffixes = pd.Series(texts, dtype="str").str.rsplit("/", n=1).str[-1].str.strip().str.lower()
    values = np.append(suffixes.to_numpy(dtype=object, na_value=None), None)
    return pd.Series(values[codes], index=status.index, dtype="str")


def _failure_outcomes(code: pd.Series, status: pd.Series) -> pd.Series:
    """Outcome of each failure notification, via :func:`_codes.outcome_of` on the distinct (code, status) pairs."""
    pairs = pd.DataFrame({col.CODE: code, col.STATUS: status})
    present = pairs[col.CODE].notna()
    distinct = pairs[present].drop_duplicates()
    distinct[col.OUTCOME] = [
        _codes.outcome_of(c, None if pd.isna(s) else s) for c, s in distinct.itertuples(index=False)
    ]
    result = pairs.merge(distinct, on=[col.CODE, col.STATUS], how="left")[col.OUTCOME]
    result.index = pairs.index
    return result


def _prepare_manifest(manifest: pd.DataFrame) -> pd.DataFrame:
    """Manifest rows of accepted sends, indexed by tracking id, in manifest order."""
    _require(manifest, (col.TRACKING_ID,), "manifest")
    frame = manifest.copy()
    frame[col.TRACKING_ID] = _as_text(frame[col.TRACKING_ID])
    for name in (col.TO, col.SENDER):
        if name in frame.columns:
            frame[name] = _as_text(frame[name])
    if col.REQUESTED_AT in frame.columns:
        frame[col.REQUESTED_AT] = _as_utc(frame[col.REQUESTED_AT], f"manifest.{col.REQUESTED_AT}")
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
        latency_s        delivered_at − sent_at, seconds (float)
        total_latency_s  delivered_at − requested_at, or − first_event_at without a
                         manifest time, seconds (float)
        handset          N102's HANDSET, else N502's (``str``)
        ddm              ordered ``category`` of ``columns.DDM_STATES``
        ddm_latency_s    first delivered N502 − first N501, seconds (float)
        ===============  ==================================================================

    Notes
    -----
    Rules, where the documentation leaves the choice to us:

    * Only events with a tracking id and an MMS, SMS (fallback) or DDM code
      are sends; MO, subscription and encoding notifications are ignored.
    * An event's time is its TIMESTAMP, or its ``received_at`` when the
      TIMESTAMP is missing (an E101 may come without one).
    * Outcome: ``delivered`` if any N102/N202 arrived — delivery wins over a
      failure notice for the same send, whichever came first. Else the earliest
      E101/E102/E201/E202 decides (E102/E202 by the STATUS suffix:
      ``…/Expired`` → ``expired``, via :func:`skycore_lab._codes.outcome_of`).
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
    _check_policy(negative_latency)
    if events is None:
        events = pd.DataFrame({name: pd.Series(dtype="str") for name in (col.TRACKING_ID, col.CODE)})
        events[col.TIMESTAMP] = pd.Series(dtype=DATETIME_DTYPE)
    _require(events, (col.TRACKING_ID, col.CODE, col.TIMESTAMP), "events")
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
        frame[col.REQUESTED_AT] = pd.Series(pd.NaT, index=frame.index, dtype=DATETIME_DTYPE)
    frame = frame.reset_index(drop=True)

    for name in (col.SENT_AT, col.DELIVERED_AT, col.FIRST_EVENT_AT):
        frame[name] = frame[name].astype(DATETIME_DTYPE)
    frame[col.LATENCY_S] = _seconds(frame[col.DELIVERED_AT], frame[col.SENT_AT])
    since = frame[col.REQUESTED_AT].astype(DATETIME_DTYPE).fillna(frame[col.FIRST_EVENT_AT])
    frame[col.TOTAL_LATENCY_S] = _seconds(frame[col.DELIVERED_AT], since)
    _fill_place(frame)
    frame = _finish_delivery_dtypes(frame[[*col.DELIVERY_COLUMNS, *extra_columns]].copy())
    _handle_negative_latencies(frame, negative_latency)
    return frame


# --- handset profiles ------------------------------------------------------------------------------
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
    _require(events, (col.TO, col.CODE, col.TIMESTAMP, col.TRACKING_ID), "events")
    events = events.reset_index(drop=True)  # positional alignment below
    code = _as_text(events[col.CODE]).str.upper()
    keep = code.isin(_SEND_CODES).to_numpy()
    frame, _ = _timed_events(events, code, keep,
                             (col.TO, col.TRACKING_ID, col.HANDSET, col.CARRIER, col.COUNTRY, col.SPID))

    # Time order; equal times are ordered by their values, so the result does
    # not depend on the events' order.
    ties = [_rank(frame[name]) for name in (col.SPID, col.COUNTRY, col.CARRIER, col.HANDSET, col.TO)]
    frame = frame.take(np.lexsort((*ties, _sort_key(frame[_T])))).reset_index(drop=True)
    # A notification without TO (an E101 may lack fields) belongs to the
    # number its send's earliest notification names.
    with_id = frame[col.TRACKING_ID].notna()
    if (frame[col.TO].isna() & with_id).any():
        first_number = frame.loc[with_id, col.TO].groupby(frame.loc[with_id, col.TRACKING_ID]).transform("first")
        frame[col.TO] = frame[col.TO].fillna(first_number)
    frame = frame[frame[col.TO].notna()]
    frame = frame.take(np.argsort(_rank(frame[col.TO]), kind="stable")).reset_index(drop=True)
    grouped = frame.groupby(col.TO, sort=True)
    out = pd.DataFrame(index=pd.Index(grouped.size().index, name=col.TO))
    last = grouped[[col.HANDSET, col.CARRIER, col.COUNTRY, col.SPID]].last()  # last non-missing, in time order
    for name in (col.HANDSET, col.CARRIER, col.COUNTRY, col.SPID):
        out[name] = last[name]
    out[col.FIRST_SEEN] = grouped[_T].min()
    out[col.LAST_SEEN] = grouped[_T].max()
    delivered = frame.loc[frame[col.CODE].isin(_codes.DELIVERED_CODES) & frame[col.TRACKING_ID].notna()]
    out[col.DELIVERIES] = delivered.groupby(col.TO)[col.TRACKING_ID].nunique().reindex(out.index, fill_value=0)
    reports = frame.loc[frame[col.HANDSET].notna(), [col.TO, col.HANDSET]]
    previous = reports.groupby(col.TO)[col.HANDSET].shift()
    changed = previous.notna() & (reports[col.HANDSET] != previous)
    out[col.HANDSET_CHANGES] = changed.groupby(reports[col.TO]).sum().reindex(out.index, fill_value=0)

    out = out.reset_index()
    for name in (col.TO, col.HANDSET, col.CARRIER, col.COUNTRY, col.SPID):
        out[name] = _as_text(out[name])
    _fill_place(out)
    for name in (col.CARRIER, col.COUNTRY):
        out[name] = pd.Categorical(out[name], categories=sorted(out[name].dropna().unique()))
    for name in (col.FIRST_SEEN, col.LAST_SEEN):
        out[name] = out[name].astype(DATETIME_DTYPE)
    for name in (col.DELIVERIES, col.HANDSET_CHANGES):
        out[name] = out[name].astype("int64")
    return out[list(col.PROFILE_COLUMNS)]


def __getattr__(name: str):
    # read_sending_report lives in skycore_lab.sending_report, which imports
    # this module's helpers; importing it lazily here (PEP 562) keeps
    # ``from skycore_lab.frames import read_sending_report`` working without a
    # circular import, whichever of the two modules is imported first.
    if name == "read_sending_report":
        from .sending_report import read_sending_report

        return read_sending_report
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
