"""SkycoreClient against a scripted fake endpoint: wire forms, errors, retries, secrets."""

from __future__ import annotations

import logging
from urllib.parse import parse_qsl

import pytest
from fake_api import SUCCESS, failure, fake_client

from skycore_lab import columns as col
from skycore_lab.client import DDM, SendRequest, SkycoreClient
from skycore_lab.exceptions import (
    SendOptionWarning,
    SkycoreAPIError,
    SkycoreRateLimitError,
    SkycoreTimeoutError,
    SkycoreTransportError,
    SkycoreValidationError,
)

KEY = "k3y-Secret-0123456789abcdef"
TO = "17743199144"

EVERY_OPTION = dict(
    campaign_ref="camp&1",
    ddm=DDM("Hi <there> & Zoë", title="Device Discovery", timeout_min=10, force=True),
    custom_text={2: "Slide two", 1: "Ünïcode & <tags>"},
    custom_subject="Subject: 50% off & more",
    data={"first_name": "Zoë", "city": "São Paulo"},
    from_mask="Acme",
    operator_id=7,
    fallback_sms_text="See it here",
)

EXPECTED_XML = (
    "<?xml version='1.0' encoding='UTF-8'?>\n"
    "<REQUEST><ACTION>sendSavedMMS</ACTION><API_KEY>" + KEY + "</API_KEY>"
    "<MMSID>1001</MMSID><TO>17743199144</TO><FROM>60856</FROM>"
    "<FROM_MASK>Acme</FROM_MASK><OPERATORID>7</OPERATORID>"
    "<CAMPAIGNREF>camp&amp;1</CAMPAIGNREF>"
    "<DDMTITLE>Device Discovery</DDMTITLE><DDMTEXT>Hi &lt;there&gt; &amp; Zoë</DDMTEXT>"
    "<DDMTIMEOUT>10</DDMTIMEOUT><DDMFORCE>true</DDMFORCE>"
    "<CUSTOMTEXT><VALUE>Ünïcode &amp; &lt;tags&gt;</VALUE><SLIDE>1</SLIDE></CUSTOMTEXT>"
    "<CUSTOMTEXT><VALUE>Slide two</VALUE><SLIDE>2</SLIDE></CUSTOMTEXT>"
    "<CUSTOMSUBJECT>Subject: 50% off &amp; more</CUSTOMSUBJECT>"
    "<DATA><FIRST_NAME>Zoë</FIRST_NAME><CITY>São Paulo</CITY></DATA>"
    "<FALLBACKSMSTEXT>See it here</FALLBACKSMSTEXT></REQUEST>"
)

EXPECTED_QUERY = (
    "action=sendsavedmms&api_key=" + KEY + "&mmsid=1001&to=17743199144&from=60856&from_mask=Acme&operatorid=7"
    "&campaignref=camp%261"
    "&ddmtitle=Device+Discovery&ddmtext=Hi+%3Cthere%3E+%26+Zo%C3%AB&ddmtimeout=10&ddmforce=true"
    "&customtext_1=%C3%9Cn%C3%AFcode+%26+%3Ctags%3E&customtext_2=Slide+two"
    "&customsubject=Subject%3A+50%25+off+%26+more&data_first_name=Zo%C3%AB&data_city=S%C3%A3o+Paulo"
    "&fallbacksmstext=See+it+here"
)


def client_for(api, **kwargs) -> SkycoreClient:
    return fake_client(api, KEY, **kwargs)


def test_post_wire_form_carries_every_option_exactly(fake):
    with pytest.warns(SendOptionWarning, match="United States"):  # FROM_MASK to a US number
        result = client_for(fake).send_saved_mms(1001, TO, "60856", **EVERY_OPTION)
    (request,) = fake.requests
    assert request.method == "POST"
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert list(request.form) == ["xml"]
    assert request.form["xml"] == EXPECTED_XML
    assert result.tracking_id == "TU1TXzU5Nzg3OQ==" and result.to == TO and result.sender == "60856"
    assert result.requested_at.tzinfo is not None and result.requested_at.utcoffset().total_seconds() == 0


def test_get_wire_form_carries_every_option_exactly(fake):
    with pytest.warns(SendOptionWarning):
        client_for(fake, method="get").send_saved_mms("1001", int(TO), 60856, **EVERY_OPTION)
    (request,) = fake.requests
    assert request.method == "GET" and request.body == b""
    assert request.query == EXPECTED_QUERY


def test_several_numbers_give_results_in_order(fake):
    fake.replies = [(200, b"<RESPONSE><STATUS>Success</STATUS><MMSID>5</MMSID>"
                          b"<TO>17743199144</TO><TRACKINGID>A</TRACKINGID><FROM>1</FROM>"
                          b"<TO>447624805892</TO><TRACKINGID>B</TRACKINGID><FROM>2</FROM></RESPONSE>")]
    results = client_for(fake).send_saved_mms(5, ["17743199144", "447624805892"], 1)
    assert [(r.to, r.tracking_id, r.sender) for r in results] == [("17743199144", "A", "1"), ("447624805892", "B", "2")]
    xml = fake.requests[0].form["xml"]
    assert "<TO>17743199144,447624805892</TO>" in xml


def test_failure_answer_raises_api_error_with_code_info_and_meaning(fake):
    fake.replies = [(200, failure("E110", "Invalid receiver number."))]
    with pytest.raises(SkycoreAPIError) as info:
        client_for(fake).send_saved_mms(1, TO, 1)
    assert (info.value.code, info.value.info, info.value.to) == ("E110", "Invalid receiver number.", TO)
    assert info.value.meaning == "Invalid receiver number."
    assert not isinstance(info.value, SkycoreRateLimitError)
    assert len(fake.requests) == 1  # API errors other than throttling are final


@pytest.mark.parametrize("code", ["E106", "E113", "E120"])
def test_throttling_is_retried_then_succeeds(fake, code):
    fake.replies = [(200, failure(code, "slow down")), (200, failure(code, "slow down")), (200, SUCCESS)]
    result = client_for(fake, max_retries=3).send_saved_mms(1, TO, 1)
    assert result.tracking_id and len(fake.requests) == 3


def test_throttling_gives_up_after_max_retries(fake):
    fake.replies = [(200, failure("E113", "Set throughput exceeded"))]
    with pytest.raises(SkycoreRateLimitError) as info:
        client_for(fake, max_retries=2).send_saved_mms(1, TO, 1)
    assert info.value.code == "E113" and len(fake.requests) == 3


@pytest.mark.parametrize("status", [502, 503, 504])
def test_gateway_errors_are_not_retried(fake, status):
    # once the request was written the MMS may have gone out (tests/test_client_hardening.py)
    fake.replies = [(status, b"bad gateway"), (200, SUCCESS)]
    with pytest.raises(SkycoreTransportError) as info:
        client_for(fake).send_saved_mms(1, TO, 1)
    assert info.value.may_have_sent and len(fake.requests) == 1


def test_other_http_errors_are_not_retried_and_carry_status_and_body(fake):
    fake.replies = [(500, b"<html>internal error</html>")]
    with pytest.raises(SkycoreTransportError) as info:
        client_for(fake).send_saved_mms(1, TO, 1)
    assert info.value.status == 500 and "internal error" in info.value.body_head
    assert len(fake.requests) == 1


def test_non_xml_answer_is_a_transport_error(fake):
    fake.replies = [(200, b"Service temporarily unavailable, try later")]
    with pytest.raises(SkycoreTransportError) as info:
        client_for(fake).send_saved_mms(1, TO, 1)
    assert info.value.status == 200 and info.value.body_head.startswith("Service temporarily")


def test_read_timeout_is_never_retried(fake):
    fake.replies = [("sleep", 1.0, (200, SUCCESS))]
    client = client_for(fake, timeout=0.2, max_retries=5)
    with pytest.raises(SkycoreTimeoutError) as info:
        client.send_saved_mms(1, TO, 1)
    assert info.value.may_have_sent is True
    assert "may or may not have gone out" in str(info.value)
    assert len(fake.requests) == 1


def test_connection_refused_is_retried(caplog):
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = SkycoreClient(KEY, f"http://127.0.0.1:{port}/", max_retries=2, backoff=0.001)
    with caplog.at_level(logging.INFO, logger="skycore_lab.client"), pytest.raises(SkycoreTransportError) as info:
        client.send_saved_mms(1, TO, 1)
    assert info.value.may_have_sent is False
    assert sum("retrying" in r.getMessage() for r in caplog.records) == 2


def test_invalid_input_makes_no_request(fake):
    client = client_for(fake)
    with pytest.raises(SkycoreValidationError) as info:
        client.send_saved_mms(1, "+17743199144", 1)
    assert info.value.field == "to"
    with pytest.raises(SkycoreValidationError, match="ddm.text"):
        client.send_saved_mms(1, TO, 1, ddm=DDM(" ", timeout_min=3))
    assert fake.requests == []


def test_api_key_never_shown(fake, caplog):
    fake.replies = [(200, failure("E104", f"User Authentication Failed for {KEY}"))]
    client = client_for(fake, method="get")
    assert KEY not in repr(client) and KEY not in str(vars(client))
    with caplog.at_level(logging.DEBUG), pytest.raises(SkycoreAPIError) as info:
        client.send_saved_mms(1, TO, 1)
    assert KEY not in str(info.value) and KEY not in info.value.info
    assert fake.requests and KEY in fake.requests[0].query  # it did go on the wire (GET)...
    assert KEY not in caplog.text  # ...but not into any log record


def test_missing_api_key_is_a_validation_error(fake):
    client = SkycoreClient(None, fake.url)
    with pytest.raises(SkycoreValidationError, match="SKYCORE_API_KEY"):
        client.send_saved_mms(1, TO, 1)
    assert fake.requests == []


def test_environment_supplies_key_and_url(fake, monkeypatch):
    monkeypatch.setenv("SKYCORE_API_KEY", KEY)
    monkeypatch.setenv("SKYCORE_API_URL", fake.url)
    SkycoreClient().send_saved_mms(1, TO, 1)
    assert KEY in fake.requests[0].form["xml"]


def test_send_batch_keeps_order_and_survives_failures(fake):
    fake.replies = [(200, SUCCESS)]
    numbers = ["17743199144", "bad-number", "447624805892", "14165550100"]
    manifest = client_for(fake).send_batch(numbers, 1001, "60856", concurrency=3, progress=False)
    assert list(manifest.columns) == list(col.MANIFEST_COLUMNS)
    assert manifest[col.TO].tolist() == numbers
    assert manifest[col.STATUS].tolist() == ["Success", "Invalid", "Success", "Success"]
    assert "bad-number" in manifest.loc[1, col.ERROR_INFO]
    assert manifest.loc[1, col.TRACKING_ID] is None or manifest[col.TRACKING_ID].isna()[1]
    assert str(manifest[col.REQUESTED_AT].dtype).startswith("datetime64") and manifest[col.REQUESTED_AT].dt.tz is not None
    assert len(fake.requests) == 3


def test_send_batch_records_api_failures(fake):
    fake.replies = [(200, SUCCESS), (200, failure("E714", "Missing/Invalid 'campaignid'."))]
    manifest = client_for(fake).send_batch(["17743199144", "17743199145"], 1, 1, concurrency=1, progress=False)
    assert manifest[col.STATUS].tolist() == ["Success", "Failure"]
    assert manifest.loc[1, col.ERROR_CODE] == "E714"


def test_send_batch_checks_shared_arguments_before_sending(fake):
    with pytest.raises(SkycoreValidationError, match="mms_id"):
        client_for(fake).send_batch([TO], "abc", 1, progress=False)
    assert fake.requests == []


def test_send_batch_rate_cap_spaces_requests(fake):
    import time

    started = time.monotonic()
    client_for(fake).send_batch([TO] * 6, 1, 1, max_rate_per_s=20, concurrency=4, progress=False)
    # Six starts at most 20/s apart need at least 5 intervals of 50 ms.
    assert time.monotonic() - started >= 5 / 20 * 0.95


def test_send_request_is_reusable_for_both_forms():
    with pytest.warns(SendOptionWarning):
        request = SendRequest.create(1001, TO, 60856, **EVERY_OPTION)
    assert request.to_xml(KEY).decode("utf-8") == EXPECTED_XML
    from urllib.parse import urlencode

    assert urlencode(request.to_query(KEY)) == EXPECTED_QUERY
    assert dict(parse_qsl(EXPECTED_QUERY))["ddmforce"] == "true"
