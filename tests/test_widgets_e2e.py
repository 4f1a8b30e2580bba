"""End to end on loopback: SendWidget → Sandbox → PostbackReceiver → LiveDashboard."""

from __future__ import annotations

import threading
import time

import pytest

from skycore_lab import columns as col
from skycore_lab.dashboard import LiveDashboard
from skycore_lab.postbacks.receiver import PostbackReceiver
from skycore_lab.widgets import SendWidget


def _live(name: str) -> bool:
    return any(t.name == name and t.is_alive() for t in threading.enumerate())


def test_form_sends_through_sandbox_and_dashboard_sees_postbacks(tmp_path):
    pytest.importorskip("skycore_lab.sandbox")
    receiver = PostbackReceiver(tmp_path / "postbacks.log", token="e2e-token-123").start()
    form = SendWidget(postback_url=receiver.url)
    dash = LiveDashboard(receiver, refresh_s=0.1)
    try:
        form.use_sandbox.value = True
        assert form._sandbox is not None, form.result.value
        assert _live("skycore-sandbox")
        for number in ("17743199144", "17743199145"):
            form.recipient.value = number
            form.send_button.click()
        history = form.history
        assert list(history[col.STATUS]) == ["Success", "Success"], form.result.value
        deadline = time.monotonic() + 10
        while dash.counters[col.SENT] < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert dash.counters[col.SENT] == 2, (dash.counters, dash.last_error)
        assert set(dash.deliveries[col.TRACKING_ID]) == set(history[col.TRACKING_ID])
        assert dash.errors == 0
    finally:
        dash.close()
        form.close()
        receiver.close()
    assert not _live("skycore-sandbox"), "closing the form stops the sandbox it started"
    assert not _live("skycore-dashboard")
