"""The send form follows its message: each history row changes as the postbacks arrive.

Headless, on loopback: a real PostbackReceiver, a Sandbox posting to it, and
the form following the receiver's log. What the form says is checked against
the sandbox's ground truth (what its postbacks report), a reference written
apart from the form's code; failure wording against documented postbacks
posted by hand over HTTP.
"""

from __future__ import annotations

import re
import threading
import time

import pandas as pd
import pytest
import requests

import skycore_lab as sl
from skycore_lab import columns as col
from skycore_lab.livestatus import DELIVERY, SendFollower, describe_seconds
from skycore_lab.exceptions import SkycoreValidationError

NUMBERS = ("17743199144", "17743199145", "447911123456", "14165550123", "17743199146", "17743199147")


def _wait(predicate, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def _form(client, sandbox, **kwargs):
    form = sl.SendWidget(client, **kwargs)
    form.mms_id.value, form.sender.value = str(sandbox.mms_ids[0]), str(sandbox.shortcodes[0])
    return form


def test_history_rows_follow_the_postbacks_to_what_the_sandbox_reports(tmp_path):
    with sl.PostbackReceiver(tmp_path / "postbacks.log") as rx, \
            sl.Sandbox(seed=7, time_scale=3600, postback_url=rx.url) as sandbox, \
            sl.SkycoreClient(sandbox.api_key, sandbox.url) as client:
        form = _form(client, sandbox, receiver=rx, refresh_s=0.1)
        try:
            for number in NUMBERS:
                form.recipient.value = number
                form.send_button.click()
            assert form.history[col.STATUS].eq("Success").all(), form.result.value
            assert form.history[DELIVERY].eq("sent").all()  # at once, before any postback
            assert sandbox.wait_idle(timeout=30)
            truth = sandbox.truth().set_index(col.TRACKING_ID)
            final = set(col.FAILURE_OUTCOMES) | {col.OUTCOME_DELIVERED}
            expected = truth[col.OUTCOME].astype(str)
            # the thread (not this test) updates the rows
            assert _wait(lambda: (form.history.set_index(col.TRACKING_ID)[col.OUTCOME] == expected
                                  .reindex(form.history[col.TRACKING_ID])).all()), form.history
            history = form.history.set_index(col.TRACKING_ID)
            for tracking_id, row in history.iterrows():
                words, reported = row[DELIVERY], truth.loc[tracking_id]
                if reported[col.OUTCOME] == col.OUTCOME_DELIVERED:
                    seconds = (reported[col.DELIVERED_AT] - row[col.REQUESTED_AT]).total_seconds()
                    assert re.search(rf"delivered in {re.escape(describe_seconds(seconds))}", words), (words, seconds)
                    if pd.notna(reported[col.HANDSET]):
                        assert words.endswith(f" on {reported[col.HANDSET]}")
                elif reported[col.OUTCOME] in final:
                    assert words.split(" → ")[-1].startswith(f"{reported[col.OUTCOME]}: E"), words
                else:
                    assert words.split(" → ")[-1] == "sent", words  # no receipt, and less than a minute old
            assert set(expected) & final, "the seed should give at least one final outcome"
            assert "delivered in" in form._history_html.value  # what the notebook shows
            assert form.status_error is None
        finally:
            form.close()
    assert not any(t.name == "skycore-send-status" and t.is_alive() for t in threading.enumerate())


def test_the_ddm_step_comes_first(tmp_path):
    with sl.PostbackReceiver(tmp_path / "postbacks.log") as rx, \
            sl.Sandbox(seed=8, time_scale=3600, postback_url=rx.url) as sandbox, \
            sl.SkycoreClient(sandbox.api_key, sandbox.url) as client:
        form = _form(client, sandbox, log=rx.log_path, refresh_s=0.1)
        try:
            form.ddm_enabled.value = True
            form.ddm_text.value = "Checking your phone"
            form.ddm_force.value = True  # a DDM even for a cached handset
            form.recipient.value = "17743199150"
            form.send_button.click()
            assert sandbox.wait_idle(timeout=30)
            tracking_id = form.history[col.TRACKING_ID].iloc[0]
            ddm = str(sandbox.truth().set_index(col.TRACKING_ID).loc[tracking_id, col.DDM])
            assert ddm != col.DDM_NONE
            prefix = {col.DDM_DELIVERED: "DDM delivered", col.DDM_FAILED: "DDM failed", col.DDM_SENT: "DDM sent"}[ddm]
            assert _wait(lambda: str(form.history[DELIVERY].iloc[0]).startswith(prefix + " ")), form.history[DELIVERY]
            assert " → " in form.history[DELIVERY].iloc[0]
        finally:
            form.close()


# --- the words, from documented postbacks posted by hand ----------------------------------------
def _postback(code: str, status: str, tracking_id: str, timestamp: str, extra: str = "") -> bytes:
    return (f"<POSTBACK><ORIGIN>MMS_MT</ORIGIN><CODE>{code}</CODE><SENTAS>MMS</SENTAS><STATUS>{status}</STATUS>"
            f"<MMSID>1001</MMSID><FROM>60856</FROM><TO>17743199144</TO><TRACKINGID>{tracking_id}</TRACKINGID>"
            f"<SPID>0001890</SPID><TIMESTAMP>{timestamp}</TIMESTAMP>{extra}</POSTBACK>").encode()


def test_failure_shows_code_status_and_details(tmp_path):
    with sl.PostbackReceiver(tmp_path / "postbacks.log") as rx:
        rx_log = rx.log_path
        assert requests.post(rx.url, data=_postback("N101", "Message Sent", "OLD", "2024-05-01T08:00:00-04"),
                             timeout=5).ok
        follower = SendFollower(rx)  # from the end: OLD is skipped
        for body in (_postback("N101", "Message Sent", "T1", "2024-05-01T08:00:01-04"),
                     _postback("E102", "Message Sent/Failed", "T1", "2024-05-01T08:00:09-04",
                               "<STATUSDETAILS>Recipient blocked by mobile operator</STATUSDETAILS>"),
                     _postback("N101", "Message Sent", "T2", "2024-05-01T08:00:02-04"),
                     _postback("N102", "Message Sent/Delivered", "T2", "2024-05-01T08:00:07.5-04",
                               "<HANDSET>Apple iPhone 15</HANDSET>"),
                     _postback("N102", "Message Sent/Delivered", "T2", "2024-05-01T08:00:07.5-04",
                               "<HANDSET>Apple iPhone 15</HANDSET>")):  # a retry: changes nothing
            assert requests.post(rx.url, data=body, timeout=5).ok
    assert follower.read(["T1", "T2", "T3", "OLD"]) == 4  # the retry collapsed
    assert set(follower.events[col.TRACKING_ID]) == {"T1", "T2"} and str(rx_log) == follower.path
    requested = pd.Timestamp("2024-05-01 12:00:00", tz="UTC")
    sends = pd.DataFrame({col.TRACKING_ID: ["T1", "T2", "T3", "OLD"], col.REQUESTED_AT: [requested] * 4})
    at = requested + pd.Timedelta(minutes=3, seconds=10)
    statuses = follower.statuses(sends, now=at).set_index(col.TRACKING_ID)
    assert statuses.loc["T1", DELIVERY] == "failed: E102 Message Sent/Failed — Recipient blocked by mobile operator"
    assert statuses.loc["T2", DELIVERY] == "delivered in 8 s on Apple iPhone 15"
    assert statuses.loc["T3", DELIVERY] == "pending after 3 min"  # accepted, no postback in 3 minutes
    assert statuses.loc["OLD", DELIVERY] == "pending after 3 min"  # written before the follower started
    assert statuses[col.OUTCOME].to_dict() == {"T1": "failed", "T2": "delivered", "T3": "pending", "OLD": "pending"}
    early = follower.statuses(sends, now=requested + pd.Timedelta(seconds=20)).set_index(col.TRACKING_ID)
    assert early.loc["T3", DELIVERY] == "sent"


def test_untracked_notifications_are_dropped_after_a_while(tmp_path, monkeypatch):
    from skycore_lab import livestatus

    with sl.PostbackReceiver(tmp_path / "postbacks.log") as rx:
        follower = SendFollower(rx.log_path)
        assert requests.post(rx.url, data=_postback("N101", "Message Sent", "X", "2024-05-01T08:00:01-04"),
                             timeout=5).ok
    follower.read([])
    assert list(follower.events[col.TRACKING_ID]) == ["X"]  # may belong to a send not yet returned
    monkeypatch.setattr(livestatus, "UNTRACKED_KEEP_S", -1.0)
    follower.read([])
    assert len(follower.events) == 0


def test_describe_seconds():
    assert [describe_seconds(s) for s in (0.4, 4.6, 59.4, 60, 75, 3600, 7260)] == [
        "0 s", "5 s", "59 s", "1 min", "1 min 15 s", "1 h", "2 h 1 min"]


# --- the thread never raises into the kernel ---------------------------------------------------------
def test_a_failing_refresh_is_shown_not_raised(tmp_path):
    with sl.PostbackReceiver(tmp_path / "postbacks.log") as rx, \
            sl.Sandbox(seed=9, time_scale=3600, postback_url=rx.url) as sandbox, \
            sl.SkycoreClient(sandbox.api_key, sandbox.url) as client:
        form = _form(client, sandbox, receiver=rx, refresh_s=0.05)
        try:
            def broken(*_args, **_kwargs):
                raise OSError("disk on fire")

            form._follower.read = broken
            form.recipient.value = NUMBERS[0]
            form.send_button.click()
            assert _wait(lambda: form.status_error is not None, 10)
            assert "disk on fire" in form.status_line.value and form._thread.is_alive()
            with pytest.raises(OSError, match="disk on fire"):
                form.refresh_status()
            assert form.history[col.STATUS].iloc[0] == "Success"
        finally:
            form.close()


def test_without_a_receiver_nothing_is_followed(tmp_path):
    form = sl.SendWidget()
    try:
        assert form._thread is None and "delivery" not in form._history_html.value
        with pytest.raises(SkycoreValidationError, match="follows no receiver"):
            form.refresh_status()
        assert list(form.history.columns)[-1] == DELIVERY
    finally:
        form.close()
    with pytest.raises(SkycoreValidationError, match="not both"):
        sl.SendWidget(receiver=object(), log="x.log")


def test_a_form_that_starts_its_own_sandbox_posts_to_the_receiver(tmp_path):
    with sl.PostbackReceiver(tmp_path / "postbacks.log") as rx:
        form = sl.SendWidget(receiver=rx, refresh_s=0.1)
        try:
            form.use_sandbox.value = True
            form.recipient.value = NUMBERS[1]
            form.send_button.click()
            assert form.history[col.STATUS].iloc[0] == "Success", form.result.value
            assert form._sandbox.wait_idle(timeout=30) and rx.count > 0, "the form's sandbox posted nothing"
            tracking_id = form.history[col.TRACKING_ID].iloc[0]
            reported = str(form._sandbox.truth().set_index(col.TRACKING_ID).loc[tracking_id, col.OUTCOME])
            assert _wait(lambda: form.history[col.OUTCOME].iloc[0] == reported), (form.history, reported)
        finally:
            form.close()
