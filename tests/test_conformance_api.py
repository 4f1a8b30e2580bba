"""The client and the sandbox against every documented sendSavedMMS request and response (issue 12).

The corpus (``tests/data/conformance/api/``, see its README) holds each example
as published and its reading written from the documentation's text. Here:

* the client writes each documented request exactly (same elements and
  texts; same GET pairs, byte for byte once URL-encoded), in the element
  order of the documented templates;
* the client reads each documented answer to its documented reading
  (one result per number, refusals, the tracking id, STATUSDETAILS, errors);
* the sandbox, given each documented request as published (typos included),
  answers in the documented shapes, with Appendix B's texts as transcribed in
  the corpus (not from the package's own table).
"""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path
from types import MappingProxyType
from urllib.parse import urlencode

import pytest
import requests
from lxml import etree

from skycore_lab.client import DDM, SendRequest, SkycoreClient
from skycore_lab.exceptions import SendOptionWarning, SkycoreAPIError
from skycore_lab.reference import api_error_meaning
from skycore_lab.sandbox import Account, Sandbox

CORPUS = Path(__file__).parent / "data" / "conformance" / "api"
DOC_KEY = "qTFkykO9JTfahCOqJ0V2Wf5Cg1t8iWlZ"  # the documentation's example key


def load(kind: str) -> list[dict]:
    docs = [json.loads(path.read_text(encoding="utf-8")) for path in sorted(CORPUS.glob("*.json"))]
    return [doc for doc in docs if doc["kind"] == kind]


def ids(docs: list[dict]) -> list[str]:
    return [doc["file"] for doc in docs]


def published(doc: dict) -> str:
    return (CORPUS / doc["file"]).read_text(encoding="utf-8")


ERRORS = json.loads((CORPUS / "errors-appendix-b.json").read_text(encoding="utf-8"))
ERROR_TEXT = {code: entry["text"] for code, entry in ERRORS["expect"]["codes"].items()}
REQUESTS_XML, REQUESTS_GET = load("request-xml"), load("request-get")
TEMPLATES, RESPONSES = load("request-template"), load("response")
BY_NAME = {doc["file"].rsplit(".", 1)[0]: doc for doc in REQUESTS_XML + REQUESTS_GET + TEMPLATES + RESPONSES}


def send_args(send: dict) -> dict:
    """The documented reading's ``send`` as ``send_saved_mms`` arguments."""
    args = dict(send)
    if "ddm" in args:
        args["ddm"] = DDM(**args["ddm"])
    if "custom_text" in args:
        args["custom_text"] = {int(slide): text for slide, text in args["custom_text"].items()}
    return args


def create(send: dict) -> SendRequest:
    args = send_args(send)
    return SendRequest.create(args.pop("mms_id"), args.pop("to"), args.pop("sender"), **args)


# --- the corpus is what it says ----------------------------------------------------------------
def test_the_corpus_holds_every_kind_of_documented_example():
    assert len(REQUESTS_XML) == 6 and len(REQUESTS_GET) == 4 and len(TEMPLATES) == 11 and len(RESPONSES) == 5
    for doc in REQUESTS_XML + REQUESTS_GET + TEMPLATES + RESPONSES:
        source = doc["source"]
        assert re.fullmatch(r"[0-9a-f]{40}", source["commit"]) and source["date"] <= source["last_date"]
        assert (CORPUS / doc["file"]).exists()


@pytest.mark.parametrize("doc", REQUESTS_XML + TEMPLATES + RESPONSES, ids=ids(REQUESTS_XML + TEMPLATES + RESPONSES))
def test_well_formedness_is_as_recorded(doc):
    try:
        etree.fromstring(published(doc).encode())
    except etree.XMLSyntaxError:
        well_formed = False
    else:
        well_formed = True
    assert well_formed is doc["expect"].get("well_formed", True)


@pytest.mark.parametrize("doc", REQUESTS_GET, ids=ids(REQUESTS_GET))
def test_get_examples_are_their_recorded_pairs(doc):
    url = re.sub(r"\s+", "", published(doc))
    endpoint, _, query = url.partition("?")
    assert endpoint == doc["expect"]["endpoint"]
    assert [pair.split("=", 1) for pair in query.split("&")] == doc["expect"]["query"]


# --- the client writes the documented requests ---------------------------------------------------
def elements_of(xml: bytes) -> list[list[str]]:
    root = etree.fromstring(xml)
    found = []
    for child in root:
        if len(child):
            found += [[f"{child.tag}/{item.tag}", (item.text or "").strip()] for item in child]
        else:
            found.append([child.tag, (child.text or "").strip()])
    return found


@pytest.mark.parametrize("doc", REQUESTS_XML, ids=ids(REQUESTS_XML))
def test_client_writes_the_documented_xml_request(doc):
    expect = doc["expect"]
    documented = expect.get("elements") or expect["intended_elements"]
    documented = [[path, text.strip()] for path, text in documented if path not in expect.get("not_in_client", [])]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        request = create(expect["send"])
    ours = elements_of(request.to_xml(DOC_KEY))
    # The 2014 RELAX NG schema makes REQUEST an interleave: same elements and texts, any order.
    assert sorted(ours) == sorted(documented)


@pytest.mark.parametrize("doc", REQUESTS_GET, ids=ids(REQUESTS_GET))
def test_client_writes_the_documented_get_query_byte_for_byte(doc):
    expect = doc["expect"]
    typos = expect.get("typos", {})
    skipped = set(expect.get("not_in_client", []))
    documented = [f"{typos.get(key, key)}={value}" for key, value in expect["query"] if key not in skipped]
    ours = urlencode(create(expect["send"]).to_query(DOC_KEY)).split("&")
    assert sorted(ours) == sorted(documented)


def client_order() -> list[str]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SendOptionWarning)
        request = SendRequest.create(
            1, "447624805892", 2, campaign_ref="c", ddm=DDM("t", title="T", timeout_min=1), custom_text={1: "v"},
            custom_subject="s", data={"first_name": "a", "last_name": "b", "gender": "c"}, from_mask="m",
            operator_id="0001470", fallback_sms_text="f")
    root = etree.fromstring(request.to_xml(DOC_KEY))
    order = []
    for child in root:
        order.append(child.tag)
        order += [f"{child.tag}/{item.tag}" for item in child]
    return order


@pytest.mark.parametrize("doc", TEMPLATES, ids=ids(TEMPLATES))
def test_client_follows_each_templates_element_order(doc):
    template = doc["expect"]["element_order"]
    ours = [path for path in client_order() if path in template]
    assert ours == [path for path in template if path in ours]
    assert len(ours) >= len(template) - 1  # only DEVICE / SPID, dropped from the page, are not sent


def test_client_writes_the_current_template_order_exactly():
    current = BY_NAME["request-template-2015-05-07"]["expect"]["element_order"]
    assert [path for path in client_order() if path != "DDMFORCE"] == current


# --- the client reads the documented answers -------------------------------------------------------
RESULT_FIELDS = ("status", "to", "tracking_id", "sender", "mms_id", "error_code", "error_info", "status_details")


def reading(result) -> dict:
    return {name: getattr(result, name) for name in RESULT_FIELDS}


@pytest.mark.parametrize("doc", RESPONSES, ids=ids(RESPONSES))
@pytest.mark.parametrize("method", ["post", "get"])
def test_client_reads_the_documented_answer(fake, doc, method):
    fake.replies = [(200, published(doc).encode())]
    send = send_args(BY_NAME[doc["expect"]["answers"]]["expect"]["send"])
    client = SkycoreClient(DOC_KEY, fake.url, method=method, max_retries=0)
    expected = doc["expect"]["client"]
    numbers = send["to"] if isinstance(send["to"], list) else [send["to"]]
    forms = [numbers] + ([numbers[0]] if len(numbers) == 1 else [])  # as a list, and as one number
    for to in forms:
        args = dict(send, to=to)
        if "raises" in expected:
            with pytest.raises(SkycoreAPIError) as info:
                client.send_saved_mms(args.pop("mms_id"), args.pop("to"), args.pop("sender"), **args)
            raised = expected["raises"]
            assert type(info.value).__name__ == raised["type"]
            assert (info.value.code, info.value.info, list(info.value.numbers)) == (
                raised["code"], raised["info"], raised["numbers"])
            continue
        got = client.send_saved_mms(args.pop("mms_id"), args.pop("to"), args.pop("sender"), **args)
        got = got if isinstance(got, list) else [got]
        assert [reading(result) for result in got] == expected["results"]
        assert all(result.raw == published(doc) for result in got)


def test_a_refused_number_never_costs_the_tracking_id_of_a_sent_one(fake):
    doc = BY_NAME["response-2013-07-03-sending"]
    fake.replies = [(200, published(doc).encode())]
    results = SkycoreClient(DOC_KEY, fake.url).send_saved_mms(35674, ["16501234124", "16501234123"], 60856)
    # request order, whatever the answer's order
    assert [(r.to, r.status, r.tracking_id) for r in results] == [
        ("16501234124", "Failure", None), ("16501234123", "Success", "MMS_12346")]


# --- the sandbox reads the documented requests and answers in the documented shapes ------------
DOC_ACCOUNT = Account(
    api_key=DOC_KEY, billing_problem_key="billing-problem-key-000000000000", no_rights_key="no-rights-key-0000000000000",
    shortcodes=("60856",), mms_ids=("35674",),
    campaigns=MappingProxyType({"12333": frozenset({"16501234123"})}),  # 16501234124 is not subscribed: E715
)


@pytest.fixture(scope="module")
def doc_sandbox():
    with Sandbox(seed=1, time_scale=3600, account=DOC_ACCOUNT) as sandbox:
        yield sandbox


def shape_of(root) -> list:
    shape = []
    for child in root:
        shape.append([child.tag, [item.tag for item in child]] if len(child) else child.tag)
    return shape


def answer_to(sandbox, doc) -> etree._Element:
    if doc["kind"] == "request-get":
        query = re.sub(r"\s+", "", published(doc)).partition("?")[2]
        response = requests.get(f"{sandbox.url}?{query}", timeout=10)
    else:  # as documented: the XML document in the form field "xml"
        response = requests.post(sandbox.url, data={"xml": published(doc)}, timeout=10)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/xml")
    return etree.fromstring(response.content)


@pytest.mark.parametrize("doc", REQUESTS_XML + REQUESTS_GET, ids=ids(REQUESTS_XML + REQUESTS_GET))
def test_sandbox_answers_each_documented_request_in_a_documented_shape(doc_sandbox, doc):
    expect = doc["expect"]
    before = len(doc_sandbox.truth())
    root = answer_to(doc_sandbox, doc)
    if not expect.get("well_formed", True):
        assert shape_of(root) == ["STATUS", "ERRORCODE", "ERRORINFO"]
        assert root.findtext("ERRORCODE") == expect["server_answer"]["error_code"] == "E108"
        assert root.findtext("ERRORINFO").startswith(ERROR_TEXT["E108"].split("$error")[0])
        assert len(doc_sandbox.truth()) == before
        return
    send = expect["send"]
    numbers = send["to"] if isinstance(send["to"], list) else [send["to"]]
    campaign = send.get("campaign_ref")
    refused = {n for n in numbers if campaign and n not in DOC_ACCOUNT.campaigns[campaign]}
    if len(numbers) == 1:
        documented = BY_NAME["response-2014-10-28-success-statusdetails"]["expect"]["shape"]
        assert shape_of(root) == documented
        assert root.findtext("STATUSDETAILS") == "MMS request accepted and queued for delivery"
        assert (root.findtext("TO"), root.findtext("FROM")) == (numbers[0], "60856")
    else:
        sent_block, refused_block = BY_NAME["response-2013-07-03-sending"]["expect"]["shape"][2:]
        expected_shape = ["STATUS", "MMSID"] + [refused_block if n in refused else sent_block for n in numbers]
        assert shape_of(root) == expected_shape
        blocks = root.findall("SENDING")
        assert [b.findtext("TO") for b in blocks] == numbers
        for number, block in zip(numbers, blocks, strict=True):
            if number in refused:
                assert block.findtext("ERRORCODE") == "E715"
                assert block.findtext("ERRORINFO") == ERROR_TEXT["E715"]
            else:
                assert block.findtext("TRACKINGID")
    assert (root.findtext("STATUS"), root.findtext("MMSID")) == ("Success", "35674")
    truth = doc_sandbox.truth().iloc[before:]
    assert truth["to"].tolist() == [n for n in numbers if n not in refused]
    ddm = send["ddm"]
    assert (truth["ddm_timeout_min"] == ddm["timeout_min"]).all() and truth["ddm_requested"].all()


def test_sandbox_whole_call_failure_has_the_documented_shape():
    account = Account(api_key="billing-problem-key-000000000000", billing_problem_key=DOC_KEY,
                      no_rights_key="no-rights-key-0000000000000", shortcodes=("60856",), mms_ids=("35674",),
                      campaigns=DOC_ACCOUNT.campaigns)
    doc = BY_NAME["request-xml-2013-07-03-multi-ddm"]
    with Sandbox(seed=1, time_scale=3600, account=account) as sandbox:  # the documented key has a billing problem
        root = answer_to(sandbox, doc)
    assert shape_of(root) == BY_NAME["response-2013-07-03-failure-two-numbers"]["expect"]["shape"]
    assert root.findtext("TO") == "16501234123,16501234124"
    assert root.findtext("ERRORCODE") == "E713" and root.findtext("ERRORINFO") == ERROR_TEXT["E713"]


def test_the_client_reads_the_sandboxs_answers_as_documented(doc_sandbox):
    client = SkycoreClient(DOC_KEY, doc_sandbox.url)
    doc = BY_NAME["request-xml-2013-07-03-multi-ddm"]
    results = client.send_saved_mms(**{"mms_id": 35674, **send_args(doc["expect"]["send"])})
    assert [(r.to, r.status, r.error_code) for r in results] == [
        ("16501234123", "Success", None), ("16501234124", "Failure", "E715")]
    assert results[0].tracking_id and results[1].tracking_id is None
    one = client.send_saved_mms(35674, "16501234123", 60856)
    assert one.status_details == "MMS request accepted and queued for delivery"


# --- Appendix B texts ----------------------------------------------------------------------------------
def test_the_package_knows_appendix_b_as_transcribed_in_the_corpus():
    for code, text in ERROR_TEXT.items():
        assert api_error_meaning(code) == text, code
