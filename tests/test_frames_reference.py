"""deliveries() and handset_profiles() against slow, row-by-row references written from their docstrings.

The frames work on integer codes and one sort (issue 14); the references here
loop over plain Python dicts, one send (or number) at a time, applying the
rules the docstrings state — so they share none of the vectorised code's
assumptions. Hypothesis draws hostile events: duplicates, any order, missing
fields, blank and lower-case values, SMS fallback, the xHTML link-sent N102
(with SMSID) and DDM N501/N502, failures of every kind.
"""

from __future__ import annotations

import math
import sys
import warnings
from pathlib import Path

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_frames_support import at, event, make_events

from skycore_lab import columns as col
from skycore_lab import read_postbacks
from skycore_lab import reference as ref
from skycore_lab.frames import deliveries, handset_profiles

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import gen_postback_log  # noqa: E402  (benchmarks/ is not a package)

CODES = sorted(ref.SEND_CODES | {"N211", "N003"})
STATUSES = ["Message Sent/Failed", "Message Sent/Expired", "Message Sent/Rejected", "DDM Sent/Failed",
            "Message Sent/Delivered", "Link Sent", " link sent ", "", "Message Sent"]
TEXT = (col.TO, col.MMS_ID, col.SENDER, col.SPID, col.CARRIER, col.COUNTRY, col.HANDSET, col.SENT_AS, col.STATUS,
        col.TRACKING_ID, col.ORIGIN)


def maybe(values):
    return st.none() | st.sampled_from(values)


@st.composite
def hostile_rows(draw):
    """Up to 30 notifications of a few MMS sends (T*) and SMS (S*), some linked by an xHTML SMSID."""
    rows = []
    for _ in range(draw(st.integers(0, 30))):
        code = draw(st.sampled_from(CODES))
        code = draw(st.sampled_from([code, code.lower(), f" {code} "]))
        fields = {
            col.STATUS: draw(maybe(STATUSES)),
            col.RECEIVED_AT: draw(st.none() | st.integers(0, 60).map(at)),
            col.HANDSET: draw(maybe(["Apple iPhone 15", "Pixel 8", " Pixel 8", ""])),
            col.SENT_AS: draw(maybe([col.SENT_AS_MMS, col.SENT_AS_SMS, "sms"])),
            col.TO: draw(maybe(["17743199144", "447911123456", " 17743199144", ""])),
            col.SPID: draw(maybe(["0001100", "0044170", "9999999"])),
            col.CARRIER: draw(maybe(["Sprint", "O2"])),
            col.COUNTRY: draw(maybe(["United States", "United Kingdom"])),
            col.MMS_ID: draw(maybe(["4711", "12"])),
            col.SENDER: draw(maybe(["60856", " 1234 "])),
            col.ORIGIN: draw(maybe([ref.ORIGIN_SMS, ref.ORIGIN_MMS, "sms_mt"])),
            col.EXTRA: draw(st.none() | st.sampled_from(["S1", "S2", " S1", None]).map(lambda s: {"SMSID": s})),
        }
        rows.append(event(code, tracking_id=draw(maybe(["T1", "T2", "T3", "S1", "S2", " T1", ""])),
                          t=draw(st.none() | st.integers(-5, 20)), **fields))
    return rows


# --- the references -----------------------------------------------------------------------------
def _text(value):
    """The docstrings' text: stripped, blank → missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return None
    value = str(value).strip()
    return value or None


def _records(events: pd.DataFrame) -> list[dict]:
    records = []
    for row in events.to_dict("records"):
        record = {name: _text(row.get(name)) for name in TEXT}
        record[col.CODE] = (_text(row[col.CODE]) or "").upper() or None
        stamp, received = row.get(col.TIMESTAMP), row.get(col.RECEIVED_AT)
        record["received"] = None if pd.isna(received) else received
        record["time"] = record["received"] if pd.isna(stamp) else stamp  # TIMESTAMP, else received_at
        record[col.EXTRA] = row.get(col.EXTRA)
        records.append(record)
    return records


def _missing_last(value):
    return (value is None, value if value is not None else 0)


def _missing_first(value):
    return (value is not None, value if value is not None else "")


def _is_link_sent(record) -> bool:
    return record[col.CODE] == ref.N102 and (record[col.STATUS] or "").lower() == "link sent"


def reference_deliveries(events: pd.DataFrame) -> list[dict]:
    records = _records(events)
    link = {}  # SMSID → the MMS's tracking id (the last link-sent N102 naming it, in the events' order)
    for record in records:
        extra = record[col.EXTRA]
        sms = extra.get("SMSID") if isinstance(extra, dict) else None
        if _is_link_sent(record) and isinstance(sms, str) and record[col.TRACKING_ID]:
            link[sms] = record[col.TRACKING_ID]
    sends: dict[str, list[dict]] = {}
    for record in records:
        tracking_id = record[col.TRACKING_ID]
        origin = (record[col.ORIGIN] or ref.ORIGIN_SMS).upper()
        if tracking_id in link and record[col.CODE] in ref.SMS_CODES and origin == ref.ORIGIN_SMS:
            tracking_id = link[tracking_id]
        if tracking_id and record[col.CODE] in ref.SEND_CODES:
            sends.setdefault(tracking_id, []).append(record)

    def order(record):  # earliest first; ties by code, received_at, then the values
        return (_missing_last(record["time"]), record[col.CODE], _missing_last(record["received"]),
                *(_missing_first(record[name]) for name in (col.STATUS, col.SENT_AS, col.HANDSET, col.TO,
                                                             col.MMS_ID, col.SENDER, col.SPID, col.CARRIER,
                                                             col.COUNTRY)))

    def earliest(rows, test):
        found = [r for r in rows if test(r)]
        return found[0] if found else None

    result = []
    for tracking_id, rows in sends.items():
        rows = sorted(rows, key=order)
        out = {col.TRACKING_ID: tracking_id}
        for name in (col.TO, col.MMS_ID, col.SENDER, col.SPID, col.CARRIER, col.COUNTRY):
            out[name] = next((r[name] for r in rows if r[name]), None)
        times = [r["time"] for r in rows if r["time"] is not None]
        out[col.FIRST_EVENT_AT] = min(times) if times else None
        sent = [r["time"] for r in rows if r[col.CODE] == ref.N101 and r["time"] is not None]
        sms_sent = [r["time"] for r in rows if r[col.CODE] == ref.N201 and r["time"] is not None]
        out[col.SENT_AT] = min(sent) if sent else (min(sms_sent) if sms_sent else None)
        sent_as = earliest(rows, lambda r: r[col.CODE] == ref.N101 and r[col.SENT_AS]) or earliest(
            rows, lambda r: r[col.SENT_AS])
        sms_path = any(r[col.CODE] in ref.SMS_CODES or _is_link_sent(r) for r in rows)
        out[col.SENT_AS] = sent_as[col.SENT_AS].upper() if sent_as else (col.SENT_AS_SMS if sms_path else None)
        delivered = earliest(rows, lambda r: r[col.CODE] in ref.DELIVERED_CODES and not _is_link_sent(r))
        failed = earliest(rows, lambda r: r[col.CODE] in ref.FAILED_CODES)
        out[col.DELIVERED_AT] = delivered["time"] if delivered else None
        out[col.FAILED_AT] = failed["time"] if failed else None
        if delivered:
            out[col.OUTCOME], out[col.FINAL_CODE] = col.OUTCOME_DELIVERED, delivered[col.CODE]
        elif failed:
            out[col.OUTCOME] = ref.outcome_of(failed[col.CODE], failed[col.STATUS])
            out[col.FINAL_CODE] = failed[col.CODE]
        else:
            out[col.OUTCOME], out[col.FINAL_CODE] = col.OUTCOME_PENDING, None
        report = earliest(rows, lambda r: r[col.CODE] == ref.N102 and r[col.HANDSET]) or earliest(
            rows, lambda r: r[col.CODE] == ref.N502 and r[col.HANDSET])
        out[col.HANDSET] = report[col.HANDSET] if report else None
        ddm_failed_report = [r for r in rows if r[col.CODE] == ref.N502 and ref.status_outcome(r[col.STATUS])]
        ddm_delivered = earliest(rows, lambda r: r[col.CODE] == ref.N502 and not ref.status_outcome(r[col.STATUS]))
        if ddm_delivered:
            out[col.DDM] = col.DDM_DELIVERED
        elif ddm_failed_report or any(r[col.CODE] in (ref.E501, ref.E502) for r in rows):
            out[col.DDM] = col.DDM_FAILED
        elif any(r[col.CODE] in ref.DDM_CODES for r in rows):
            out[col.DDM] = col.DDM_SENT
        else:
            out[col.DDM] = col.DDM_NONE
        ddm_sent = earliest(rows, lambda r: r[col.CODE] == ref.N501)
        out[col.DDM_LATENCY_S] = _seconds(ddm_sent and ddm_sent["time"], ddm_delivered and ddm_delivered["time"])
        out[col.LATENCY_S] = _seconds(out[col.SENT_AT], out[col.DELIVERED_AT])
        out[col.TOTAL_LATENCY_S] = _seconds(out[col.FIRST_EVENT_AT], out[col.DELIVERED_AT])
        result.append(out)
    _place(result)
    return sorted(result, key=lambda r: (_missing_last(r[col.FIRST_EVENT_AT]), r[col.TRACKING_ID]))


def _seconds(start, end):
    if start is None or end is None or pd.isna(start) or pd.isna(end):
        return None
    return (end - start).total_seconds()


def _place(rows: list[dict]) -> None:
    """Carrier and country missing from the events: from the SPID, then the number (the one look-up)."""
    for row in rows:
        if row[col.CARRIER] is None or row[col.COUNTRY] is None:
            carrier, country = ref.carrier_and_country(pd.Series([row[col.SPID]], dtype=object),
                                                       pd.Series([row[col.TO]], dtype=object),
                                                       country_from_number=True)
            row[col.CARRIER] = row[col.CARRIER] or _text(carrier[0])
            row[col.COUNTRY] = row[col.COUNTRY] or _text(country[0])


def reference_profiles(events: pd.DataFrame) -> list[dict]:
    records = [r for r in _records(events) if r[col.CODE] in ref.SEND_CODES]

    def order(record):  # time order; equal times by the values
        return (_missing_last(record["time"]),
                *(_missing_first(record[name]) for name in (col.TO, col.HANDSET, col.CARRIER, col.COUNTRY,
                                                             col.SPID)))

    records.sort(key=order)
    number_of_send = {}
    for record in records:  # the earliest notification of the send that names a number
        if record[col.TRACKING_ID] and record[col.TO] and record[col.TRACKING_ID] not in number_of_send:
            number_of_send[record[col.TRACKING_ID]] = record[col.TO]
    numbers: dict[str, list[dict]] = {}
    for record in records:
        number = record[col.TO] or number_of_send.get(record[col.TRACKING_ID])
        if number:
            numbers.setdefault(number, []).append(record)
    result = []
    for number in sorted(numbers):
        rows = numbers[number]
        out = {col.TO: number}
        for name in (col.HANDSET, col.CARRIER, col.COUNTRY, col.SPID):
            out[name] = next((r[name] for r in reversed(rows) if r[name]), None)
        times = [r["time"] for r in rows if r["time"] is not None]
        out[col.FIRST_SEEN] = min(times) if times else None
        out[col.LAST_SEEN] = max(times) if times else None
        out[col.DELIVERIES] = len({r[col.TRACKING_ID] for r in rows
                                   if r[col.CODE] in ref.DELIVERED_CODES and r[col.TRACKING_ID]})
        reports = [r[col.HANDSET] for r in rows if r[col.HANDSET]]
        out[col.HANDSET_CHANGES] = sum(1 for before, now in zip(reports, reports[1:]) if now != before)
        result.append(out)
    _place(result)
    for out in result:
        del out[col.SPID]
    return result


# --- comparing -------------------------------------------------------------------------------------
def _plain(frame: pd.DataFrame, names) -> list[dict]:
    rows = []
    for row in frame[list(names)].astype(object).to_dict("records"):
        rows.append({name: None if (not isinstance(value, str) and pd.isna(value)) else value
                     for name, value in row.items()})
    return rows


def _same(got: list[dict], want: list[dict]) -> None:
    assert len(got) == len(want), (got, want)
    for mine, theirs in zip(got, want):
        for name, expected in theirs.items():
            value = mine[name]
            if isinstance(expected, float):
                assert value is not None and math.isclose(value, expected, abs_tol=1e-9), (name, mine, theirs)
            else:
                assert value == expected, (name, mine, theirs)


def _quiet(function, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # clock-skew warnings are expected here
        return function(*args, **kwargs)


@settings(max_examples=50, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(rows=hostile_rows(), categorical=st.booleans(), seed=st.integers(0, 2**16),
       duplicate=st.lists(st.integers(0, 29), max_size=5))
def test_deliveries_equal_the_row_by_row_reference(rows, categorical, seed, duplicate):
    events = make_events(rows, categorical=categorical)
    events = pd.concat([events, events.iloc[[i for i in duplicate if i < len(events)]]])
    events = events.sample(frac=1.0, random_state=seed)
    want = reference_deliveries(events)
    got = _plain(_quiet(deliveries, events), want[0].keys() if want else [col.TRACKING_ID])
    _same(got, want)


@settings(max_examples=50, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(rows=hostile_rows(), categorical=st.booleans(), seed=st.integers(0, 2**16))
def test_handset_profiles_equal_the_row_by_row_reference(rows, categorical, seed):
    events = make_events(rows, categorical=categorical).sample(frac=1.0, random_state=seed)
    want = reference_profiles(events)
    got = _plain(handset_profiles(events), want[0].keys() if want else [col.TO])
    _same(got, want)


def test_the_references_see_every_rule():
    """The hand-made case the hostile draws are built around: each rule once, checked field by field."""
    rows = [
        event(ref.N101, "T1", 0, to=" 17743199144"), event(ref.N102, "T1", 9, handset="Pixel 8"),
        event(ref.N102, "T1", 9, handset="Pixel 8"),  # a retried duplicate
        event(ref.N501, "T2", 0), event(ref.N502, "T2", 4, handset="Apple iPhone 15"),
        event(ref.N101, "T2", 5), event(ref.E102, "T2", 30, status="Message Sent/Expired"),
        event(ref.N101, "T3", 1, sent_as=col.SENT_AS_SMS),
        event(ref.N102, "T3", 2, status="Link Sent", extra={"SMSID": "S9"}),
        event(ref.N202, "S9", 7, origin=ref.ORIGIN_SMS), event("e101", "T4", None, received_at=at(3), to=None),
    ]
    events = make_events(rows).iloc[::-1]
    frame = _quiet(deliveries, events).set_index(col.TRACKING_ID)
    assert list(frame.index) == ["T1", "T2", "T3", "T4"]
    assert frame.loc["T1", col.OUTCOME] == col.OUTCOME_DELIVERED and frame.loc["T1", col.LATENCY_S] == 9
    assert frame.loc["T1", col.TO] == "17743199144"
    assert frame.loc["T2", col.OUTCOME] == "expired" and frame.loc["T2", col.DDM] == col.DDM_DELIVERED
    assert frame.loc["T2", col.DDM_LATENCY_S] == 4 and frame.loc["T2", col.HANDSET] == "Apple iPhone 15"
    assert frame.loc["T3", col.OUTCOME] == col.OUTCOME_DELIVERED and frame.loc["T3", col.DELIVERED_AT] == at(7)
    assert frame.loc["T3", col.SENT_AS] == col.SENT_AS_SMS and "S9" not in frame.index
    assert frame.loc["T4", col.OUTCOME] == col.OUTCOME_FAILED and frame.loc["T4", col.FIRST_EVENT_AT] == at(3)
    _same(_plain(frame.reset_index(), reference_deliveries(events)[0].keys()), reference_deliveries(events))
    _same(_plain(handset_profiles(events), reference_profiles(events)[0].keys()), reference_profiles(events))


def test_a_generated_receiver_log_gives_what_the_references_give(tmp_path):
    """The parser's real output (retries, arrivals out of order, DDM, SMS fallback, failures)."""
    path = tmp_path / "postbacks.log"
    gen_postback_log.generate(str(path), 3000, seed=5)
    events = read_postbacks(path)
    assert events[col.CODE].isin([ref.N501, ref.N202, ref.E102]).sum() > 100
    want = reference_deliveries(events)
    _same(_plain(_quiet(deliveries, events), want[0].keys()), want)
    want = reference_profiles(events)
    _same(_plain(handset_profiles(events), want[0].keys()), want)
