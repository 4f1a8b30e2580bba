"""PostbackReceiver over real HTTP on 127.0.0.1: answers, what is stored where, counters."""

from __future__ import annotations

import logging
import os
import re
import socket
from urllib.parse import urlencode

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st

from skycore_lab.postbacks import receiver as receiver_module
from skycore_lab.postbacks.logformat import HEADER, decode_line
from skycore_lab.postbacks.receiver import PostbackReceiver, default_rejects_path as rejects_of

TOKEN = "tok-3f9a1c2b7d4e8f60a5b1"
N102 = (
    b"<?xml version='1.0' encoding='UTF-8'?>\n<POSTBACK><ORIGIN>MMS_MT</ORIGIN><CODE>N102</CODE>"
    b"<STATUS>Message Sent/Delivered</STATUS><TRACKINGID>TU1TXzU5Nzg3OQ==</TRACKINGID>"
    b"<SPID>0001100</SPID><TIMESTAMP>2026-11-25T10:22:25-05:00</TIMESTAMP></POSTBACK>"
)
LEGACY = (
    b'<NOTIFICATION ID="42" CREATED="2011-07-26 10:22:26.975911-04"><ORIGIN>SMS_MT</ORIGIN><CODE>N202</CODE>'
    b"<BODY><TRACKINGID>SMS_12345</TRACKINGID></BODY></NOTIFICATION>"
)


def records(path: str) -> list[tuple[str, str, bytes]]:
    """Every record of a v1 log, after checking its header line."""
    with open(path, "rb") as handle:
        data = handle.read()
    assert data.startswith(HEADER)
    return [decode_line(line) for line in data[len(HEADER) :].splitlines()]


@pytest.fixture
def log_path(tmp_path) -> str:
    return str(tmp_path / "postbacks.log")


@pytest.fixture
def rx(log_path):
    with PostbackReceiver(log_path) as receiver:
        yield receiver


@pytest.fixture
def rx_token(log_path):
    with PostbackReceiver(log_path, token=TOKEN) as receiver:
        yield receiver


# -- accepted bodies --------------------------------------------------------------------
def test_raw_body_is_stored_exactly_with_time_and_remote(rx, log_path):
    response = requests.post(rx.url, data=N102, headers={"Content-Type": "text/xml"}, timeout=5)
    assert response.status_code == 200
    assert rx.count == 1
    [(stamp, remote, body)] = records(log_path)
    assert body == N102
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", stamp)
    assert re.fullmatch(r"127\.0\.0\.1:\d+", remote)


def test_form_field_xml_is_accepted_and_stored_still_form_encoded(rx, log_path):
    response = requests.post(rx.url, data={"xml": N102.decode()}, timeout=5)
    assert response.status_code == 200
    [(_, _, body)] = records(log_path)
    assert body == urlencode({"xml": N102.decode()}).encode()
    assert body.startswith(b"xml=%3C%3Fxml")


def test_legacy_notification_and_post_on_root_path_are_accepted(rx, log_path):
    assert requests.post(rx.base_url + "/", data=LEGACY, timeout=5).status_code == 200
    assert [body for _, _, body in records(log_path)] == [LEGACY]


def test_not_well_formed_postback_is_stored_for_the_reader_to_report(rx, log_path):
    broken = b"<POSTBACK><CODE>N101</CODE><FROM_MASK>ACME</POSTBACK>"
    assert requests.post(rx.url, data=broken, timeout=5).status_code == 200
    assert records(log_path)[0][2] == broken


def test_any_bytes_inside_a_postback_round_trip_exactly(log_path):
    # CR, LF, CRLF, TAB, backslashes, NUL, invalid UTF-8: all stored byte for byte.
    sent = []
    with PostbackReceiver(log_path) as receiver, requests.Session() as session:

        @settings(max_examples=60)
        @given(payload=st.binary(max_size=300))
        def post(payload):
            body = b"<POSTBACK>" + payload + b"\r\n\t\\n\\\xff\xfe</POSTBACK>\r\n"
            assert session.post(receiver.url, data=body, timeout=5).status_code == 200
            sent.append(body)

        post()
        assert receiver.count == len(sent) > 1
    assert [record[2] for record in records(log_path)] == sent


def test_log_is_appended_to_across_restarts_with_one_header(log_path):
    for _ in range(2):
        with PostbackReceiver(log_path) as receiver:
            assert requests.post(receiver.url, data=N102, timeout=5).status_code == 200
            assert receiver.count == 1
    with open(log_path, "rb") as handle:
        assert handle.read().count(HEADER) == 1
    assert len(records(log_path)) == 2


# -- rejected bodies ------------------------------------------------------------------
@pytest.mark.parametrize(
    "body",
    [
        b"<RESPONSE><STATUS>Success</STATUS></RESPONSE>",
        b"hello",
        b"",
        b"xml=%3CRESPONSE%2F%3E",
        b'<!DOCTYPE POSTBACK [<!ENTITY x "y">]><POSTBACK/>',
        "<POSTBACK/>".encode("utf-16"),
    ],
)
def test_non_postback_is_400_and_kept_in_the_reject_log(rx, log_path, body):
    response = requests.post(rx.url, data=body, timeout=5)
    assert response.status_code == 400
    assert (rx.count, rx.rejected) == (0, 1)
    assert records(log_path) == []
    assert [record[2] for record in records(rejects_of(log_path))] == [body]


def test_body_over_limit_with_content_length_is_413_and_not_stored(tmp_path):
    path = str(tmp_path / "p.log")
    with PostbackReceiver(path, max_body=1024) as receiver:
        response = requests.post(receiver.url, data=b"<POSTBACK>" + b"x" * 2000 + b"</POSTBACK>", timeout=5)
        assert response.status_code == 413
        assert requests.post(receiver.url, data=b"<POSTBACK>" + b"x" * 1000 + b"</POSTBACK>", timeout=5).ok
        assert (receiver.too_large, receiver.count) == (1, 1)
    assert len(records(path)) == 1
    assert records(rejects_of(path)) == []


def test_default_limit_is_64_kib(rx, log_path):
    fits = b"<POSTBACK>" + b"x" * (64 * 1024 - 21) + b"</POSTBACK>"
    assert len(fits) == 64 * 1024
    assert requests.post(rx.url, data=fits, timeout=5).status_code == 200
    assert requests.post(rx.url, data=fits + b" ", timeout=5).status_code == 413
    assert (rx.count, rx.too_large) == (1, 1)


def test_chunked_body_is_cut_off_at_the_limit_without_reading_it_all(tmp_path):
    path = str(tmp_path / "p.log")

    def chunks():  # no Content-Length: the limit must hold while reading
        for _ in range(64):  # 64 × 8 KiB = 512 KiB, far past the 16 KiB limit
            yield b"<POSTBACK>" + b"x" * 8182

    with PostbackReceiver(path, max_body=16 * 1024) as receiver:
        try:
            status = requests.post(receiver.url, data=chunks(), timeout=5).status_code
        except requests.ConnectionError:
            status = None  # the server may close while the client is still sending
        assert status in (413, None)
        assert receiver.too_large == 1 and receiver.count == 0
    assert records(path) == [] and records(rejects_of(path)) == []


# -- tokens, paths, methods -------------------------------------------------------------
def test_token_in_path_and_in_query_are_accepted(rx_token, log_path):
    assert rx_token.url.endswith(f"/postbacks/{TOKEN}")
    assert requests.post(rx_token.url, data=N102, timeout=5).status_code == 200
    assert requests.post(rx_token.url + "/", data=N102, timeout=5).status_code == 200
    for path in ("/postbacks", "/"):
        url = f"{rx_token.base_url}{path}?token={TOKEN}"
        assert requests.post(url, data=N102, timeout=5).status_code == 200
    assert rx_token.count == 4 and len(records(log_path)) == 4


@pytest.mark.parametrize(
    "path",
    ["/postbacks", "/", "/postbacks/wrong", f"/postbacks/{TOKEN[:-1]}", f"/postbacks/{TOKEN}x",
     "/postbacks?token=wrong", "/postbacks?token=", f"/other?token={TOKEN}", f"/postbacks/{TOKEN}/extra"],
)  # fmt: skip
def test_wrong_or_missing_token_is_403_and_nothing_stored(rx_token, log_path, path):
    response = requests.post(rx_token.base_url + path, data=N102, timeout=5)
    assert response.status_code == 403
    assert TOKEN not in response.text
    assert (rx_token.forbidden, rx_token.count, rx_token.rejected) == (1, 0, 0)
    assert records(log_path) == [] and records(rejects_of(log_path)) == []


def test_without_token_unknown_path_is_404(rx, log_path):
    assert requests.post(rx.base_url + "/elsewhere", data=N102, timeout=5).status_code == 404
    assert records(log_path) == []


def test_wrong_method_is_405(rx_token):
    response = requests.get(rx_token.url, timeout=5)
    assert response.status_code == 405 and response.headers["allow"] == "POST"
    assert requests.put(rx_token.url, data=N102, timeout=5).status_code == 405
    assert requests.post(rx_token.base_url + "/health", timeout=5).status_code == 405
    assert rx_token.count == 0


def test_health_reports_counters_without_the_token(rx_token):
    requests.post(rx_token.url, data=N102, timeout=5)
    requests.post(rx_token.url, data=b"nope", timeout=5)
    requests.post(rx_token.base_url + "/postbacks", data=N102, timeout=5)
    health = requests.get(rx_token.base_url + "/health", timeout=5)
    assert health.status_code == 200
    report = health.json()
    counters = {name: report[name] for name in ("status", "count", "rejected", "too_large", "forbidden", "failed")}
    assert counters == {"status": "ok", "count": 1, "rejected": 1, "too_large": 0, "forbidden": 1, "failed": 0}
    assert (report["write_failures"], report["last_error"], report["sync_failures"], report["sync_error"]) == (
        0, None, 0, None
    )
    assert report["connections"]["refused_connections"] == 0 and report["connections"]["max_connections"] > 0
    assert TOKEN not in health.text and "postbacks.log" not in health.text


# -- secrets, binding, lifecycle ---------------------------------------------------------
def test_token_never_in_repr_or_logs(log_path, caplog, monkeypatch):
    monkeypatch.setattr(receiver_module, "is_loopback", lambda host: False)  # as if on 0.0.0.0
    with caplog.at_level(logging.DEBUG, logger="skycore_lab"):
        with PostbackReceiver(log_path, token=TOKEN) as receiver:
            requests.post(receiver.base_url + "/postbacks/bad", data=N102, timeout=5)
            assert TOKEN not in repr(receiver) and TOKEN not in repr(receiver._app)
            assert "count=0" in repr(receiver)
    assert TOKEN not in caplog.text


def test_non_loopback_without_token_warns(log_path, caplog, monkeypatch):
    monkeypatch.setattr(receiver_module, "is_loopback", lambda host: False)
    with caplog.at_level(logging.WARNING, logger="skycore_lab.postbacks.receiver"):
        with PostbackReceiver(log_path):
            pass
    assert "without a token" in caplog.text


def test_binds_loopback_by_default_and_stops_cleanly(log_path):
    receiver = PostbackReceiver(log_path).start()
    assert receiver.host == "127.0.0.1" and receiver.running
    port = receiver.port
    assert requests.post(receiver.url, data=N102, timeout=5).ok
    receiver.close()
    receiver.close()  # idempotent
    assert not receiver.running and "stopped" in repr(receiver)
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass
    assert len(records(log_path)) == 1


def test_a_second_receiver_on_the_same_log_fails_loudly(rx, log_path):
    with pytest.raises(RuntimeError, match="already being written"):
        PostbackReceiver(log_path).start()
    assert requests.post(rx.url, data=N102, timeout=5).ok  # the first one is unharmed


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"token": ""}, "token"),
        ({"token": "a/b"}, "token"),
        ({"token": "a?b"}, "token"),
        ({"token": "a#b"}, "token"),
        ({"token": "a%41"}, "token"),
        ({"token": ".."}, "token"),
        ({"token": "é"}, "token"),
        ({"token": "x" * 257}, "token"),
        ({"rotate": "weekly"}, "rotate"),
        ({"max_body": 0}, "max_body"),
        ({"max_body": -1}, "max_body"),
        ({"max_body": 1.5}, "max_body"),
    ],
)
def test_bad_options_are_refused_before_anything_starts(log_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        PostbackReceiver(log_path, **kwargs)
    assert not os.path.exists(log_path)


def test_reject_log_is_outside_the_log_glob(tmp_path):
    assert rejects_of(tmp_path / "postbacks.log") == str(tmp_path / "postbacks.rejects.log")
    assert rejects_of("data/pb") == "data/pb.rejects"
    other = tmp_path / "elsewhere.log"
    with PostbackReceiver(tmp_path / "postbacks.log", rejects_log=other) as receiver:
        assert requests.post(receiver.url, data=b"junk", timeout=5).status_code == 400
    assert [record[2] for record in records(str(other))] == [b"junk"]
    assert sorted(os.listdir(tmp_path)) == ["elsewhere.log", "postbacks.log"]


def test_plain_write_mode_stores_the_same(log_path):
    with PostbackReceiver(log_path, group_commit=False) as receiver:
        assert requests.post(receiver.url, data=N102, timeout=5).ok
        assert receiver.count == 1
    assert records(log_path)[0][2] == N102
