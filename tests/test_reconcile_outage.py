"""End to end: a receiver stopped for a simulated minute loses postbacks, and reconcile finds exactly those sends.

The sandbox runs at 60× (one real second is one simulated minute) and
gives up a postback at its first failure (``postback.max_retries`` 0: the
platform's own five retries five minutes apart would otherwise deliver
everything once the receiver is back). Sends go out before, during and
after the outage; the platform's report (``client.sending_statistics``,
served by the sandbox from its truth) still has every send.

The expected answer does not come from the receiver's log: the sandbox
records which notifications it gave up on (:attr:`Sandbox.lost_postbacks`),
and a send's outcome is lost when its final notification was, or when its
only one was.
"""

from __future__ import annotations

import time

import pandas as pd
import pytest

import skycore_lab as sl
from skycore_lab import columns as col
from skycore_lab.demo import demo_numbers
from skycore_lab.exceptions import MissingPostbacksWarning

SCALE = 60.0  # simulated seconds per real second
SCENARIO = {
    "countries": {"United States": 1.0},
    "expiry_s": 240.0,  # every message's life ends within 4 real seconds
    "postback": {"max_retries": 0},
    "sending_statistics": {"min_interval_s": 0},
}
#: The notifications that decide a send's outcome (no DDM here).
FINAL_CODES = {"E101", "N102", "E102", "N202", "E202"}


def _send(client, sb, numbers) -> pd.DataFrame:
    return client.send_batch(numbers, sb.mms_ids[0], sb.shortcodes[0], progress=False, concurrency=4)


def test_a_receiver_outage_is_reported_as_missing_postbacks_send_by_send(tmp_path):
    numbers = demo_numbers(75, seed=21)
    with sl.PostbackReceiver(tmp_path / "before.log") as first, \
            sl.Sandbox(seed=21, time_scale=SCALE, postback_url=first.url, scenario=SCENARIO) as sb:  # fmt: skip
        client = sb.client()
        start = pd.Timestamp.now(tz="UTC").floor("s")
        manifests = [_send(client, sb, numbers[:30])]
        time.sleep(0.5)  # their N101s and the early deliveries arrive
        port = first.port
        first.close()  # the receiver goes down for one simulated minute
        manifests.append(_send(client, sb, numbers[30:50]))
        time.sleep(1.0)
        with sl.PostbackReceiver(tmp_path / "after.log", port=port) as second:
            manifests.append(_send(client, sb, numbers[50:]))
            assert sb.wait_idle(timeout=40)
            time.sleep(0.2)
            report = client.sending_statistics(start, pd.Timestamp.now(tz="UTC") + pd.Timedelta(seconds=1))
            assert second.count > 0
        truth = sb.truth()
        lost = sb.lost_postbacks
    manifest = pd.concat(manifests, ignore_index=True)
    assert (manifest[col.STATUS] == "Success").all() and len(report) == len(truth) == 75

    lost_codes = lost.groupby(col.TRACKING_ID)[col.CODE].agg(set)
    pending = set(truth.loc[truth[col.OUTCOME] == col.OUTCOME_PENDING, col.TRACKING_ID])
    expected = {tracking_id for tracking_id, codes in lost_codes.items()
                if codes & FINAL_CODES or (tracking_id in pending and "N101" in codes)}
    assert len(lost) >= 10 and len(expected) >= 5, "the outage must have lost postbacks"
    assert len(expected) < 60, "and most sends kept theirs"

    events = sl.read_postbacks([tmp_path / "before.log", tmp_path / "after.log"])
    frame = sl.deliveries(events, manifest)
    with pytest.warns(MissingPostbacksWarning, match=rf"{len(expected)} of 75 send\(s\) have postbacks missing"):
        result = sl.reconcile(frame, report)
    missing = result.sends[result.sends[col.CATEGORY] == col.POSTBACK_MISSING]
    assert set(missing[col.TRACKING_ID]) == expected
    assert missing[col.REPORT_ID].notna().all()  # the report has every one of them
    counts = result.counts.set_index(col.CATEGORY)[col.N].to_dict()
    assert counts == {col.AGREES: 75 - len(expected), col.POSTBACK_MISSING: len(expected), col.REPORT_MISSING: 0,
                      col.OUTCOME_DIFFERS: 0, col.TIME_DIFFERS: 0}
    # the sends missing a final outcome are final in the report: what the postbacks would have said
    finals = missing[missing[col.POSTBACK_OUTCOME] == col.OUTCOME_PENDING]
    truth_outcome = truth.set_index(col.TRACKING_ID)[col.OUTCOME]
    reported = finals[col.REPORT_OUTCOME].astype(str).tolist()
    in_truth = truth_outcome.loc[finals[col.TRACKING_ID]].replace(col.OUTCOME_NOT_SUPPORTED, col.OUTCOME_REJECTED)
    assert reported == in_truth.tolist()
    assert "receiver outage" in result.summary()
    by_carrier = result.by_carrier[result.by_carrier[col.CATEGORY] == col.POSTBACK_MISSING][col.N].sum()
    assert by_carrier == len(expected)
