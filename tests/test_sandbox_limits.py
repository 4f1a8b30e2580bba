"""DDMTIMEOUT has a documented maximum in the client and the sandbox; wait_idle is bounded (issue 13, defect 8)."""

from __future__ import annotations

import threading
import time

import pytest
import requests
from lxml import etree

from skycore_lab.client import DDM
from skycore_lab.exceptions import SkycoreValidationError
from skycore_lab.reference import MAX_DDM_TIMEOUT_MIN
from skycore_lab.sandbox import Sandbox

US = "17743199144"


def test_the_documented_maximum_is_a_week():
    assert MAX_DDM_TIMEOUT_MIN == 7 * 24 * 60


@pytest.mark.parametrize("minutes", [MAX_DDM_TIMEOUT_MIN + 1, 10**9, 10**30, float(10**30)])
def test_client_refuses_a_ddm_timeout_beyond_the_maximum(minutes):
    with pytest.raises(SkycoreValidationError) as info:
        DDM("hi", timeout_min=minutes).validated()
    assert info.value.field == "ddm.timeout_min" and str(MAX_DDM_TIMEOUT_MIN) in info.value.message


@pytest.mark.parametrize("minutes", [0, 5, MAX_DDM_TIMEOUT_MIN])
def test_client_accepts_timeouts_up_to_the_maximum(minutes):
    assert DDM("hi", timeout_min=minutes).validated().timeout_min == minutes


@pytest.fixture(scope="module")
def sb():
    with Sandbox(seed=4, time_scale=3600) as sandbox:
        yield sandbox


def send(sb, timeout: str) -> requests.Response:
    return requests.get(sb.url, params={"action": "sendSavedMMS", "api_key": sb.api_key, "to": US,
                                        "from": sb.shortcodes[0], "mmsid": sb.mms_ids[0], "ddmtext": "hi",
                                        "ddmtimeout": timeout}, timeout=10)


@pytest.mark.parametrize("timeout", [str(10**30), str(10**9), str(MAX_DDM_TIMEOUT_MIN + 1), "1" + "0" * 5000])
def test_sandbox_answers_e100_for_a_timeout_beyond_the_maximum(sb, timeout):
    before = len(sb.truth())
    response = send(sb, timeout)
    assert response.status_code == 200  # 10**30 used to be an HTTP 500 (TypeError)
    root = etree.fromstring(response.content)
    assert (root.findtext("STATUS"), root.findtext("ERRORCODE")) == ("Failure", "E100")
    assert len(sb.truth()) == before


def test_wait_idle_returns_after_a_refused_huge_timeout():
    with Sandbox(seed=4, time_scale=60, scenario={"ddm": {"p_no_report": 1.0}}) as sandbox:
        send(sandbox, str(10**9))  # used to be accepted, its content scheduled for the year 3928
        done = threading.Event()
        threading.Thread(target=lambda: (sandbox.wait_idle(), done.set()), daemon=True).start()
        assert done.wait(10), "wait_idle() did not return"


def test_wait_idle_without_timeout_is_bounded_by_what_was_scheduled():
    # The longest documented wait: no DDM report, content at DDMTIMEOUT = a week of simulated time.
    with Sandbox(seed=4, time_scale=400_000, scenario={"ddm": {"p_no_report": 1.0}}) as sandbox:
        assert etree.fromstring(send(sandbox, str(MAX_DDM_TIMEOUT_MIN)).content).findtext("STATUS") == "Success"
        started = time.monotonic()
        assert sandbox.wait_idle() is True
        elapsed = time.monotonic() - started
        bound = sandbox.idle_deadline_s()
    assert elapsed < 15
    assert bound is not None and bound < 15


def test_wait_idle_gives_up_at_its_bound_when_posts_never_finish():
    with Sandbox(seed=4, time_scale=3600) as sandbox:
        sandbox._dispatcher.pending += 1  # a post that never settles (a wedged receiver, a lost callback)
        started = time.monotonic()
        assert sandbox.wait_idle() is False
        assert time.monotonic() - started < 10
        sandbox._dispatcher.pending -= 1
