"""The sandbox's getSendingStatistics: its report reads back to its ground truth, and its errors.

The reference is the sandbox's truth (:meth:`Sandbox.truth`), one row per
send, and the reader is :func:`skycore_lab.read_sending_report`, written
from Appendix C: each outcome, DDM state, delivery path and time of the
report must be the truth's, send by send.
"""

from __future__ import annotations

import time

import pandas as pd
import pytest
import requests

import skycore_lab as sl
from skycore_lab import columns as col
from skycore_lab.demo import demo_numbers
from skycore_lab.sandbox.report import sending_id
from skycore_lab.xmlsafe import parse_xml

#: A world where every outcome, delivery path and DDM state happens often.
EVENTFUL = {
    "send_error_rate": 0.06,
    "warm_cache_share": 0.2,
    "expiry_s": 600.0,
    "content": {"transcoded": {"p_fallback": 0.2, "p_fail": 0.3}, "generic": {"p_fallback": 0.3, "p_fail": 0.3}},
    "ddm": {"p_send_fail": 0.08, "p_report_failed": 0.15},
    "sms": {"p_deliver": 0.8},
    "carriers": {"United States": [
        {"name": "Verizon Wireless", "spid": "0001890", "share": 0.5, "p_deliver": 0.7, "latency_median_s": 60.0,
         "latency_sigma": 1.5},
        {"name": "AT&T", "spid": "0001470", "share": 0.3, "p_deliver": 0.8, "latency_median_s": 30.0},
        {"name": "US Cellular", "spid": "0001840", "share": 0.2, "receipts": False},
    ]},
    "countries": {"United States": 1.0},
    "sending_statistics": {"min_interval_s": 0, "per_day": 50},
}
_UTC = "%Y-%m-%d %H:%M:%S"


@pytest.fixture(scope="module")
def finished():
    """(truth, report frame) of 400 sends, half with a DDM, once every event has happened."""
    with sl.Sandbox(seed=11, time_scale=7200, scenario=EVENTFUL) as sb:
        client = sb.client()
        start = pd.Timestamp.now(tz="UTC").floor("s")
        numbers = demo_numbers(400, seed=11)
        for i, number in enumerate(numbers):
            ddm = sl.DDM("Checking your phone", timeout_min=5) if i % 2 else None
            client.send_saved_mms(sb.mms_ids[0], number, sb.shortcodes[0], ddm=ddm)
        assert sb.wait_idle(timeout=60)
        time.sleep(0.3)  # the last events' scaled instants have passed too
        report = client.sending_statistics(start, pd.Timestamp.now(tz="UTC") + pd.Timedelta(seconds=1))
        truth = sb.truth()
    return truth, report


def _joined(truth: pd.DataFrame, report: pd.DataFrame) -> pd.DataFrame:
    keyed = truth.assign(report_id=truth[col.TRACKING_ID].map(sending_id))
    joined = keyed.merge(report, left_on="report_id", right_on=col.TRACKING_ID, suffixes=("", "_report"),
                         validate="one_to_one", how="outer", indicator=True)
    assert (joined["_merge"] == "both").all(), "every send once in the report, and nothing else"
    return joined


#: The report's word for each truth outcome: Appendix C has no NotSupported step (REJECTED, gw 35).
REPORTED_AS = {**{outcome: outcome for outcome in col.OUTCOMES}, col.OUTCOME_NOT_SUPPORTED: col.OUTCOME_REJECTED}


@pytest.mark.parametrize("outcome", col.OUTCOMES)
def test_each_outcome_reads_back_as_the_truth(finished, outcome):
    truth, report = finished
    joined = _joined(truth, report)
    mine = joined[joined[col.OUTCOME] == outcome]
    assert len(mine) >= 3, f"the eventful world should produce {outcome}"
    assert (mine[f"{col.OUTCOME}_report"].astype(str) == REPORTED_AS[outcome]).all()
    for name in (col.DELIVERED_AT, col.FAILED_AT, col.SENT_AT):
        assert mine[name].equals(mine[f"{name}_report"]), name


def test_every_send_reads_back_with_its_path_ddm_handset_and_place(finished):
    truth, report = finished
    joined = _joined(truth, report)
    assert len(report) == len(truth) == 400
    assert joined[col.SENT_AS].astype(object).fillna("-").equals(joined[f"{col.SENT_AS}_report"].astype(object)
                                                                  .fillna("-"))
    assert set(joined[col.SENT_AS].dropna()) == {col.SENT_AS_MMS, col.SENT_AS_SMS}
    assert (joined[col.DDM] == joined[f"{col.DDM}_report"].astype(str)).all()
    assert set(joined[col.DDM]) == {col.DDM_NONE, col.DDM_SENT, col.DDM_DELIVERED, col.DDM_FAILED}
    assert joined[col.DDM_DELIVERED_AT].notna().sum() > 0
    delivered_ddm = joined[joined[col.DDM] == col.DDM_DELIVERED]
    expected = (delivered_ddm[col.DDM_DELIVERED_AT] - delivered_ddm[col.DDM_SENT_AT]).dt.total_seconds()
    assert (delivered_ddm[col.DDM_LATENCY_S] == expected).all()
    assert joined[col.HANDSET].astype(object).fillna("-").equals(joined[f"{col.HANDSET}_report"].astype(object)
                                                                  .fillna("-"))
    for name in (col.TO, col.MMS_ID, col.CARRIER, col.SENDER):
        assert (joined[name].astype(str) == joined[f"{name}_report"].astype(str)).all(), name
    # INQUE is the request's arrival, to the microsecond
    assert (joined[col.REQUESTED_AT] == joined[col.FIRST_EVENT_AT]).all()


def test_a_report_mid_run_shows_only_what_has_happened():
    scenario = {"countries": {"United States": 1.0}, "sending_statistics": {"min_interval_s": 0}}
    with sl.Sandbox(seed=12, time_scale=30, scenario=scenario) as sb:
        client = sb.client()
        start = pd.Timestamp.now(tz="UTC").floor("s")
        for number in demo_numbers(30, seed=12):
            client.send_saved_mms(sb.mms_ids[0], number, sb.shortcodes[0],
                                  ddm=sl.DDM("Checking your phone", timeout_min=2))
        time.sleep(1.5)
        before = pd.Timestamp.now(tz="UTC")
        report = client.sending_statistics(start, before + pd.Timedelta(seconds=5))
        after = pd.Timestamp.now(tz="UTC")
        truth = sb.truth()
    joined = _joined(truth, report)

    def real_time(stamp: pd.Series) -> pd.Series:  # when an event stamped `stamp` happens on the sandbox's clock
        return joined[col.REQUESTED_AT] + (stamp - joined[col.REQUESTED_AT]) / 30

    checks = 0
    for truth_name, report_name in ((col.SENT_AT, f"{col.SENT_AT}_report"),
                                    (col.DELIVERED_AT, f"{col.DELIVERED_AT}_report"),
                                    (col.DDM_SENT_AT, "ddm_ack_at")):
        happens = real_time(joined[truth_name])
        surely_past, surely_future = happens < before, happens > after
        assert joined.loc[surely_past, report_name].notna().all(), truth_name
        assert joined.loc[surely_future, report_name].isna().all(), truth_name
        checks += int(surely_past.sum()) + int(surely_future.sum())
    assert checks > 30  # both sides of the clock were seen
    assert (joined[f"{col.OUTCOME}_report"] == col.OUTCOME_PENDING).sum() > 0


# --- the call's errors -------------------------------------------------------------------------------
def _call(sb, **dates) -> tuple[str | None, str | None]:
    fields = "".join(f"<{name.upper()}>{value}</{name.upper()}>" for name, value in dates.items())
    xml = f"<REQUEST><ACTION>getSendingStatus</ACTION><API_KEY>{sb.api_key}</API_KEY>{fields}</REQUEST>"
    root = parse_xml(requests.post(sb.url, data={"xml": xml}, timeout=10).content)
    return root.findtext("ERRORCODE"), root.findtext("URL")


def test_the_documented_errors_e506_to_e509():
    with sl.Sandbox(seed=13, scenario={"sending_statistics": {"min_interval_s": 0, "max_period_days": 2}}) as sb:
        good = {"start_date": "2024-05-01 00:00:00", "end_date": "2024-05-02 00:00:00"}
        assert _call(sb, start_date=good["start_date"]) == ("E506", None)
        assert _call(sb, end_date=good["end_date"]) == ("E506", None)
        assert _call(sb, start_date="2024-05-01T00:00:00", end_date=good["end_date"])[0] == "E507"
        assert _call(sb, start_date="2024-02-30 00:00:00", end_date=good["end_date"])[0] == "E507"
        assert _call(sb, start_date=good["start_date"], end_date="02/05/2024")[0] == "E508"
        assert _call(sb, start_date=good["start_date"], end_date="2024-04-30 00:00:00")[0] == "E508"  # before start
        assert _call(sb, start_date=good["start_date"], end_date="2024-05-03 00:00:01")[0] == "E509"
        code, link = _call(sb, **good)
        assert code is None and link.startswith(sb.url.split("/API")[0] + "/reports/") and link.endswith(".xml")
        report = requests.get(link, timeout=10)
        assert report.status_code == 200 and report.content.startswith(b"<?xml")
        assert sl.read_sending_report(report.content).empty  # nothing was sent in May 2024
        assert requests.get(link.replace(".xml", "x.xml"), timeout=10).status_code == 404


def test_lookups_too_frequent_are_e510_and_the_client_raises_the_documented_error():
    with sl.Sandbox(seed=14, scenario={"sending_statistics": {"min_interval_s": 3600}}) as sb:
        client = sb.client()
        start, end = "2024-05-01 00:00:00", "2024-05-01 01:00:00"
        assert client.sending_statistics(start, end).empty
        with pytest.raises(sl.SkycoreAPIError) as info:
            client.sending_statistics(start, end)
        assert info.value.code == "E510" and "Lookup too frequent" in str(info.value)
        with pytest.raises(sl.SkycoreAPIError, match="E509"):  # a bad period is refused before it counts
            client.sending_statistics(start, "2024-06-01 00:00:00")
    with sl.Sandbox(seed=15, scenario={"sending_statistics": {"min_interval_s": 0, "per_day": 2}}) as sb:
        client = sb.client(method="get")
        for _ in range(2):
            client.sending_statistics("2024-05-01", "2024-05-02")
        with pytest.raises(sl.SkycoreAPIError, match="E510"):
            client.sending_statistics("2024-05-01", "2024-05-02")


def test_a_bad_key_is_refused_as_for_any_call():
    with sl.Sandbox(seed=16) as sb:
        with pytest.raises(sl.SkycoreAPIError, match="E104"):
            sl.SkycoreClient("0" * 32, sb.url).sending_statistics("2024-05-01", "2024-05-02")
