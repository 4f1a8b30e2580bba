"""The sandbox endpoint over real loopback HTTP with raw ``requests``: forms, shapes, every error code."""

from __future__ import annotations

import base64

import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from skycore_lab.reference import api_error_codes
from skycore_lab.sandbox import Sandbox
from skycore_lab.sandbox.app import ApiFailure, parse_request

US = "17743199144"
CA = "14165550100"


@pytest.fixture(scope="module")
def sb():
    with Sandbox(seed=3, time_scale=3600) as sandbox:
        yield sandbox


def xml_request(**fields) -> str:
    root = etree.Element("REQUEST")
    for tag, value in fields.items():
        etree.SubElement(root, tag.upper()).text = value
    return etree.tostring(root, encoding="unicode")


def base(sb, **extra):
    fields = {"action": "sendSavedMMS", "api_key": sb.api_key, "mmsid": sb.mms_ids[0], "to": US, "from": sb.shortcodes[0]}
    fields.update(extra)
    return {k: v for k, v in fields.items() if v is not None}


def answer(response: requests.Response) -> etree._Element:
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/xml")
    return etree.fromstring(response.content)


def error_of(response) -> tuple[str, str]:
    root = answer(response)
    assert root.findtext("STATUS") == "Failure"
    assert root.find("TRACKINGID") is None
    return root.findtext("ERRORCODE"), root.findtext("ERRORINFO")


def post_xml(sb, **extra):
    return requests.post(sb.url, data={"xml": xml_request(**base(sb, **extra))}, timeout=10)


def get(sb, **extra):
    return requests.get(sb.url, params=base(sb, **extra), timeout=10)


def test_url_is_the_production_path_on_loopback(sb):
    assert sb.url.startswith("http://127.0.0.1:")
    assert sb.url.endswith("/API/wxml/1.3/index.php")
    assert sb.api_key not in repr(sb) and sb.api_key not in repr(sb.account)


@pytest.mark.parametrize("form", ["get", "xml_field", "raw_body", "post_fields"])
def test_every_request_form_succeeds_with_the_documented_shape(sb, form):
    if form == "get":
        response = requests.get(sb.url, params=base(sb, action="SENDSAVEDMMS"), timeout=10)
    elif form == "xml_field":
        response = post_xml(sb)
    elif form == "raw_body":
        response = requests.post(sb.url, data=xml_request(**base(sb)).encode(), headers={"Content-Type": "text/xml"})
    else:
        response = requests.post(sb.url, data=base(sb), timeout=10)
    root = answer(response)
    assert [child.tag for child in root] == ["STATUS", "MMSID", "TRACKINGID", "TO", "FROM", "STATUSDETAILS"]
    assert root.findtext("STATUS") == "Success"
    assert root.findtext("TO") == US and root.findtext("FROM") == sb.shortcodes[0]
    assert base64.b64decode(root.findtext("TRACKINGID")).decode().startswith("MMS_")


def test_several_numbers_get_one_sending_each_and_country_default_shortcode(sb):
    root = answer(post_xml(sb, to=f"{US},{CA}"))
    assert [child.tag for child in root] == ["STATUS", "MMSID", "SENDING", "SENDING"]
    blocks = root.findall("SENDING")
    assert [[item.tag for item in block] for block in blocks] == [["TRACKINGID", "TO"]] * 2  # no FROM, as documented
    assert [b.findtext("TO") for b in blocks] == [US, CA]
    ids = [b.findtext("TRACKINGID") for b in blocks]
    assert len(set(ids)) == 2
    truth = sb.truth().set_index("tracking_id")
    assert truth.loc[ids[1], "sender"] == sb.account.country_shortcodes["Canada"]
    assert truth.loc[ids[1], "country"] == "Canada"


def test_error_info_texts_come_from_appendix_b(sb):
    code, info = error_of(get(sb, to="123"))
    assert code == "E110" and info == api_error_codes()["E110"]


ERROR_CASES = {
    "E100": lambda sb: requests.get(sb.url, timeout=10),
    "E101": lambda sb: get(sb, action=""),
    "E102": lambda sb: get(sb, api_key=None),
    "E103": lambda sb: get(sb, api_key=None, user="someone"),
    "E104": lambda sb: get(sb, api_key="not-the-key"),
    "E105": lambda sb: get(sb, api_key=sb.account.no_rights_key),
    "E107": lambda sb: get(sb, action="sendSMS"),
    "E108": lambda sb: requests.post(sb.url, data={"xml": "<REQUEST><ACTION>sendSavedMMS</REQUEST>"}, timeout=10),
    "E110": lambda sb: get(sb, to="999123"),
    "E111": lambda sb: get(sb, **{"from": "11111"}),
    "E114": lambda sb: get(sb, to=sorted(sb.account.blacklisted)[0]),
    "E241": lambda sb: get(sb, mmsid="424242"),
    "E620": lambda sb: get(sb, mmsid=None),
    "E621": lambda sb: get(sb, to=None),
    "E623": lambda sb: get(sb, to=",".join([US] * 101)),
    "E625": lambda sb: get(sb, mmsid="abc"),
    "E626": lambda sb: get(sb, mmsid=sb.account.encoding_mms_ids[0]),
    "E628": lambda sb: get(sb, operatorid=sb.account.unsupported_operator_ids[0]),
    "E629": lambda sb: get(sb, mmsid=sb.account.unsupported_mms_ids[0]),
    "E651": lambda sb: get(sb, operatorid="12345"),
    "E713": lambda sb: get(sb, api_key=sb.account.billing_problem_key),
    "E714": lambda sb: get(sb, campaignref="no-such-campaign"),
    "E715": lambda sb: get(sb, campaignref="5001"),
}


@pytest.mark.parametrize("code", sorted(ERROR_CASES))
def test_every_error_code_is_reachable(sb, code):
    before = len(sb.truth())
    got, info = error_of(ERROR_CASES[code](sb))
    assert got == code
    assert info
    assert len(sb.truth()) == before  # nothing was sent


def test_error_texts_are_appendix_b_as_transcribed_in_the_conformance_corpus(sb):
    import json
    import os

    corpus = os.path.join(os.path.dirname(__file__), "data", "conformance", "api", "errors-appendix-b.json")
    with open(corpus, encoding="utf-8") as handle:
        documented = {code: entry["text"] for code, entry in json.load(handle)["expect"]["codes"].items()}
    for code, make in ERROR_CASES.items():
        got, info = error_of(make(sb))
        if code == "E108":
            assert info.startswith(documented[code].split("$error")[0]) and info.endswith(".")
        else:
            assert (got, info) == (code, documented[code])


@pytest.mark.parametrize(("action", "code"), [("sendEverything", "E101"), ("getMmsIds", "E107"),
                                              ("SENDSMS", "E107"), ("sendsavedmms", None),
                                              ("getSendingStatistics", "E506"), ("getsendingstatus", "E506")])
def test_undocumented_actions_are_e101_other_documented_ones_e107(sb, action, code):
    root = answer(get(sb, action=action))
    assert root.findtext("ERRORCODE") == code


def test_e108_names_the_parser_error_and_e110_names_the_number(sb):
    _, info = error_of(ERROR_CASES["E108"](sb))
    assert info.startswith("XML Parse error: ") and "$error" not in info
    root = answer(get(sb, to="12345"))
    assert root.findtext("ERRORCODE") == "E110" and root.findtext("TO") == "12345"
    assert [child.tag for child in root] == ["STATUS", "ERRORCODE", "TO", "ERRORINFO"]  # TO before ERRORINFO


def test_one_bad_number_among_several_is_refused_alone(sb):
    before = len(sb.truth())
    root = answer(get(sb, to=f"{US},1774319914,{CA}"))  # 10 digits: wrong length for +1
    assert root.findtext("STATUS") == "Success"
    blocks = root.findall("SENDING")
    assert [b.findtext("TO") for b in blocks] == [US, "1774319914", CA]
    assert [b.findtext("ERRORCODE") for b in blocks] == [None, "E110", None]
    assert blocks[1].findtext("ERRORINFO") == api_error_codes()["E110"] and blocks[1].find("TRACKINGID") is None
    sent = sb.truth().iloc[before:]
    assert sent["to"].tolist() == [US, CA]
    assert sent["tracking_id"].tolist() == [blocks[0].findtext("TRACKINGID"), blocks[2].findtext("TRACKINGID")]


def test_a_whole_call_failure_names_every_number(sb):
    root = answer(get(sb, to=f"{US},{CA}", mmsid="424242"))
    assert [child.tag for child in root] == ["STATUS", "ERRORCODE", "TO", "ERRORINFO"]
    assert root.findtext("ERRORCODE") == "E241" and root.findtext("TO") == f"{US},{CA}"


def test_subscribed_number_passes_the_campaign_check(sb):
    subscriber = sorted(sb.account.campaigns["5001"])[0]
    assert answer(get(sb, to=subscriber, campaignref="5001")).findtext("STATUS") == "Success"
    assert answer(get(sb, campaignref="5002")).findtext("STATUS") == "Success"


def test_external_entities_are_never_resolved(sb, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOPSECRET")
    doc = (f'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file://{secret}">]>'
           f"<REQUEST><ACTION>&x;</ACTION></REQUEST>")
    response = requests.post(sb.url, data={"xml": doc}, timeout=10)
    assert "TOPSECRET" not in response.text
    assert error_of(response)[0] in {"E108", "E101", "E107"}


def test_unknown_path_is_404(sb):
    assert requests.get(sb.url.replace("index.php", "other.php"), timeout=10).status_code == 404


@pytest.mark.parametrize(("limit", "code"), [({"per_second": 3}, "E113"), ({"min_interval_s": 30}, "E106"),
                                             ({"per_day": 2}, "E120")])
def test_rate_limits_answer_throttling_codes(limit, code):
    with Sandbox(seed=1, time_scale=3600, scenario={"rate_limit": limit}) as sb:
        codes = []
        for _ in range(5):
            root = answer(get(sb))
            codes.append(root.findtext("ERRORCODE") or root.findtext("STATUS"))
    assert codes[0] == "Success"
    assert code in codes
    if code == "E106":
        assert codes[1:] == ["E106"] * 4


@given(st.binary(max_size=300), st.sampled_from(["GET", "POST", "PUT"]), st.binary(max_size=100))
def test_parse_request_only_ever_raises_api_failures(body, method, query):
    try:
        params = parse_request(method, query, body)
    except ApiFailure as failure:
        assert failure.code in {"E100", "E108"}
    else:
        assert isinstance(params, dict)
