"""LiveDashboard: incremental refreshes from a growing receiver log, counters, rates, thread life cycle."""

from __future__ import annotations

import threading
import time

import pandas as pd
import pytest
import requests

from skycore_lab import SkycoreValidationError
from skycore_lab import columns as col
from skycore_lab.postbacks.logformat import HEADER, encode_record
from skycore_lab.dashboard import LiveDashboard
from skycore_lab.postbacks import PostbackTail
from skycore_lab.postbacks.receiver import PostbackReceiver

SPRINT, VIRGIN = "0001650", "0001910"


def postback(code: str, tracking_id: str, to: str, stamp: str, spid: str = SPRINT, status: str | None = None) -> bytes:
    """A POSTBACK body shaped like the documented ones."""
    status = status or {"N101": "Message Sent", "N102": "Message Sent/Delivered", "E102": "Message Sent/Expired",
                        "N501": "DDM Sent"}[code]  # fmt: skip
    handset = "<HANDSET>Apple iPhone 15</HANDSET><AGGREGATORID>7</AGGREGATORID>" if code == "N102" else ""
    details = "<STATUSDETAILS>Message expired</STATUSDETAILS>" if code == "E102" else ""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<POSTBACK><ORIGIN>MMS_MT</ORIGIN>'
        f"<CODE>{code}</CODE><STATUS>{status}</STATUS><SENTAS>MMS</SENTAS><MMSID>1001</MMSID><FROM>60856</FROM>"
        f"<TO>{to}</TO><TRACKINGID>{tracking_id}</TRACKINGID><SPID>{spid}</SPID>"
        f"<TIMESTAMP>{stamp}</TIMESTAMP>{handset}{details}</POSTBACK>"
    ).encode()


def record(*args, **kwargs) -> bytes:
    return encode_record(postback(*args, **kwargs), "203.0.113.7:53122", "2026-11-25T16:05:00.000000Z")


FIRST = [
    record("N101", "TU1TXzE=", "17743199144", "2026-11-25T10:00:00-05:00"),
    record("N101", "TU1TXzI=", "17743199145", "2026-11-25T10:00:01-05:00", VIRGIN),
    record("N102", "TU1TXzE=", "17743199144", "2026-11-25T10:00:31-05:00"),
]
MORE = [
    record("N102", "TU1TXzE=", "17743199144", "2026-11-25T10:00:31-05:00"),  # a retried duplicate
    record("E102", "TU1TXzI=", "17743199145", "2026-11-25T11:30:01-04", VIRGIN),
]


class SpyTail:
    """Wraps a tail and records how many events each read returned."""

    def __init__(self, tail):
        self.tail, self.reads = tail, []

    def read_new(self):
        frame = self.tail.read_new()
        self.reads.append(len(frame))
        return frame


@pytest.fixture
def log(tmp_path):
    path = tmp_path / "postbacks.log"
    path.write_bytes(HEADER + b"".join(FIRST))
    return path


def append(path, *records: bytes) -> None:
    with open(path, "ab") as f:
        f.write(b"".join(records))


def test_refresh_reads_only_new_records_and_updates_counters(log):
    spy = SpyTail(PostbackTail(log))
    dash = LiveDashboard(spy, autostart=False)
    assert dash.refresh() == {"sent": 2, "delivered": 1, "failed": 0, "pending": 1}
    append(log, *MORE)
    assert dash.refresh() == {"sent": 2, "delivered": 1, "failed": 1, "pending": 0}
    assert spy.reads == [3, 2], "the second refresh must parse only the appended records"
    assert len(dash.events) == 4  # the retried N102 was dropped
    assert dash.refresh() == {"sent": 2, "delivered": 1, "failed": 1, "pending": 0}
    assert spy.reads[-1] == 0
    assert dash.ticks == 3 and dash.errors == 0
    if hasattr(spy.tail, "offset"):
        assert spy.tail.offset == log.stat().st_size


def test_partial_last_line_waits_for_its_end(log):
    dash = LiveDashboard(str(log), autostart=False)
    dash.refresh()
    line = MORE[1]
    append(log, line[:40])
    assert dash.refresh()["failed"] == 0
    append(log, line[40:])
    assert dash.refresh()["failed"] == 1


def test_widgets_show_counters_rates_latency_and_latest(log):
    dash = LiveDashboard(log, autostart=False)
    dash.refresh()
    assert "skycore-dashboard" in dash.widget._dom_classes
    assert "delivered" in dash.counters_html.value
    assert "Sprint" in dash.rates_html.value and "Virgin Mobile" in dash.rates_html.value
    assert "CI" in dash.rates_html.value
    assert dash.latency.outputs and "image/png" in dash.latency.outputs[0]["data"]
    latest = pd.read_html(pd.io.common.StringIO(dash.latest_html.value))[0]
    assert list(latest.columns) == ["time", col.CODE, col.TO, col.CARRIER]
    assert latest.iloc[0][col.CODE] == "N102"  # newest first
    assert "3 events" in dash.status_html.value
    assert "text/plain" in dash._repr_mimebundle_()


def test_latest_lists_at_most_the_configured_number(tmp_path):
    path = tmp_path / "many.log"
    path.write_bytes(HEADER + b"".join(
        record("N101", f"T{i}", "17743199144", f"2026-11-25T10:{i:02d}:00-05:00") for i in range(15)
    ))  # fmt: skip
    dash = LiveDashboard(path, autostart=False, latest=10)
    dash.refresh()
    latest = pd.read_html(pd.io.common.StringIO(dash.latest_html.value))[0]
    assert len(latest) == 10
    assert latest.iloc[0]["time"].startswith("2026-11-25 15:14")


def test_manifest_counts_its_sends_and_splits_by_arm(log):
    manifest = pd.DataFrame({
        col.TO: ["17743199144", "17743199145", "17743199146", "17743199147"],
        col.STATUS: ["Success", "Success", "Success", "Failure"],
        col.TRACKING_ID: ["TU1TXzE=", "TU1TXzI=", "TU1TXzM=", None],
        col.REQUESTED_AT: pd.to_datetime(["2026-11-25T14:59:59Z"] * 4),
        col.ARM: ["ddm_5", "ddm_10", "ddm_10", "ddm_5"],
    })  # fmt: skip
    append(log, record("N101", "OTHER", "17743199150", "2026-11-25T10:00:02-05:00"))
    dash = LiveDashboard(log, manifest=manifest, autostart=False)
    assert dash.refresh() == {"sent": 3, "delivered": 1, "failed": 0, "pending": 2}
    assert "ddm_5" in dash.rates_html.value and "ddm_10" in dash.rates_html.value
    assert "by arm" in dash.rates_html.value
    assert "1 other send" in dash.counters_html.value
    assert set(dash.deliveries[col.TRACKING_ID]) == {"TU1TXzE=", "TU1TXzI=", "TU1TXzM="}


def test_static_events_frame_is_shown_without_a_thread(log):
    events = PostbackTail(log).read_new()
    dash = LiveDashboard(events)
    assert not dash.running
    assert dash.counters["sent"] == 2
    dash.stop()


def test_clock_skew_is_noted_not_plotted(tmp_path):
    path = tmp_path / "skew.log"
    path.write_bytes(HEADER + record("N101", "S1", "17743199144", "2026-11-25T10:00:30-05:00")
                     + record("N102", "S1", "17743199144", "2026-11-25T10:00:00-05:00"))  # fmt: skip
    dash = LiveDashboard(path, autostart=False)
    assert dash.refresh()["delivered"] == 1
    assert "clock skew" in dash.counters_html.value
    assert dash.deliveries[col.LATENCY_S].isna().all()


class Broken:
    def read_new(self):
        raise OSError("disk on fire")


def test_error_in_refresh_is_shown_counted_and_raised():
    dash = LiveDashboard(Broken(), autostart=False)
    with pytest.raises(OSError, match="disk on fire"):
        dash.refresh()
    assert dash.errors == 1 and isinstance(dash.last_error, OSError)
    assert "disk on fire" in dash.error_html.value


def _dashboard_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "skycore-dashboard"]


def test_thread_errors_are_shown_never_raised_and_stop_is_clean():
    dash = LiveDashboard(Broken(), refresh_s=0.02)
    deadline = time.monotonic() + 5
    while dash.errors < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert dash.errors >= 2 and dash.running, "the thread keeps going after an error"
    dash.stop()
    assert not dash.running and not _dashboard_threads()


def test_start_then_stop_returns_quickly_and_leaves_no_thread(log):
    dash = LiveDashboard(log, refresh_s=30.0)  # a long wait: stop must interrupt it
    assert dash.running
    dash.start()  # idempotent: still one thread
    assert len(_dashboard_threads()) == 1
    started = time.monotonic()
    dash.stop()
    assert time.monotonic() - started < 2.0
    assert not _dashboard_threads()
    dash.stop()  # idempotent
    assert dash.counters["sent"] == 2  # the first tick ran


def test_background_refresh_follows_a_growing_log(log):
    dash = LiveDashboard(log, refresh_s=0.05)
    try:
        deadline = time.monotonic() + 5
        while dash.counters["sent"] != 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        append(log, *MORE)
        while dash.counters["failed"] != 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert dash.counters == {"sent": 2, "delivered": 1, "failed": 1, "pending": 0}
    finally:
        dash.close()
    assert not _dashboard_threads()


def test_receiver_source_follows_its_log(tmp_path):
    receiver = PostbackReceiver(tmp_path / "r.log", token="t0ken-for-tests").start()
    try:
        dash = LiveDashboard(receiver, autostart=False)
        assert dash.refresh()["sent"] == 0
        for code, stamp in (("N101", "2026-11-25T10:00:00-05:00"), ("N102", "2026-11-25T10:00:20-05:00")):
            reply = requests.post(receiver.url, data=postback(code, "TU1TXzk=", "17743199144", stamp), timeout=5)
            assert reply.status_code == 200
        deadline = time.monotonic() + 5
        while dash.refresh()["delivered"] != 1 and time.monotonic() < deadline:
            time.sleep(0.05)  # the receiver syncs its log in small batches
        assert dash.counters == {"sent": 1, "delivered": 1, "failed": 0, "pending": 0}
    finally:
        receiver.close()


@pytest.mark.parametrize(("source", "field"), [(42, "source"), (None, "source")])
def test_bad_arguments_are_named(source, field):
    with pytest.raises(SkycoreValidationError, match=field):
        LiveDashboard(source, autostart=False)
    with pytest.raises(SkycoreValidationError, match="refresh_s"):
        LiveDashboard(pd.DataFrame(), refresh_s=0)


def test_accumulated_events_keep_categorical_columns(log):
    dash = LiveDashboard(log, autostart=False)
    dash.refresh()
    append(log, *MORE)  # brings a new code (E102) and status: new categories
    dash.refresh()
    assert isinstance(dash.events[col.CODE].dtype, pd.CategoricalDtype)
    assert set(dash.events[col.CODE]) == {"N101", "N102", "E102"}


def test_rates_count_only_settled_sends_and_say_so(log):
    # the last known time is 16:05 (the records' received_at): a's send is an hour old, b's five minutes
    manifest = pd.DataFrame({
        col.TO: ["17743199144", "17743199145"],
        col.STATUS: ["Success", "Success"],
        col.TRACKING_ID: ["TU1TXzE=", "TU1TXzI="],
        col.REQUESTED_AT: pd.to_datetime(["2026-11-25T14:59:00Z", "2026-11-25T16:00:00Z"]),
        col.ARM: ["a", "b"],
    })  # fmt: skip
    dash = LiveDashboard(log, manifest=manifest, autostart=False, settle_s=1800)
    dash.refresh()
    rates = pd.read_html(pd.io.common.StringIO(dash.rates_html.value))[1]  # by arm
    rates = rates.set_index(col.ARM)
    assert rates.loc["a", "settled"] == 1 and rates.loc["a", col.RATE] == "100.0%"
    # b's send is pending because it is young: not counted as not delivered
    assert rates.loc["b", "settled"] == 0 and rates.loc["b", col.RATE] == "—"
    assert "30 min old" in dash.rates_html.value
    assert dash.srm is not None and not dash.srm.flagged


def test_a_sample_ratio_mismatch_is_shown_first(log):
    n = 400
    manifest = pd.DataFrame({
        col.TO: [str(17743190000 + i) for i in range(2 * n)],
        col.STATUS: ["Success"] * n + ["Failure"] * (n // 4) + ["Success"] * (n - n // 4),
        col.TRACKING_ID: [f"T{i}" for i in range(n)] + [None] * (n // 4) + [f"U{i}" for i in range(n - n // 4)],
        col.ERROR_CODE: [None] * n + ["E110"] * (n // 4) + [None] * (n - n // 4),
        col.REQUESTED_AT: pd.to_datetime(["2026-11-25T14:59:59Z"] * (2 * n)),
        col.ARM: ["a"] * n + ["b"] * n,
    })  # fmt: skip
    dash = LiveDashboard(log, manifest=manifest, autostart=False)
    dash.refresh()
    assert dash.srm.flagged
    html_text = dash.counters_html.value
    assert html_text.index("sample ratio mismatch") < html_text.index("delivered")
    assert "E110" in html_text
