"""The real client against the sandbox over loopback HTTP, in both POST and GET forms."""

from __future__ import annotations

import collections

import pytest
from lxml import etree

from skycore_lab import reference as ref
from skycore_lab import columns as col
from skycore_lab.server import ServerThread, read_body
from skycore_lab.client import DDM, SkycoreClient
from skycore_lab.exceptions import SkycoreAPIError, SkycoreRateLimitError, SkycoreValidationError
from skycore_lab.sandbox import Sandbox

US = "17743199144"
CA = "14165550100"


@pytest.fixture(scope="module")
def sb():
    with Sandbox(seed=11, time_scale=3600) as sandbox:
        yield sandbox


@pytest.fixture(params=["post", "get"])
def client(request, sb):
    with SkycoreClient(sb.api_key, sb.url, method=request.param, max_retries=0) as c:
        yield c


def test_send_succeeds_and_is_in_the_truth(client, sb):
    result = client.send_saved_mms(sb.mms_ids[0], US, sb.shortcodes[0], ddm=DDM("Hi", timeout_min=2))
    row = sb.truth().set_index(col.TRACKING_ID).loc[result.tracking_id]
    assert row[col.TO] == US and row[col.DDM_REQUESTED] and row[col.DDM_TIMEOUT_MIN] == 2
    assert abs((row[col.REQUESTED_AT] - result.requested_at).total_seconds()) < 2


def test_several_numbers_and_the_country_default_shortcode(client, sb):
    results = client.send_saved_mms(sb.mms_ids[1], [US, CA], sb.shortcodes[0])
    assert [(r.to, r.status) for r in results] == [(US, "Success"), (CA, "Success")]
    assert len({r.tracking_id for r in results}) == 2
    # The multi-number answer has no FROM (as documented): the result keeps the requested
    # shortcode, and the truth (like the postbacks' FROM) has the one used.
    truth = sb.truth().set_index(col.TRACKING_ID)
    assert [truth.loc[r.tracking_id, col.SENDER] for r in results] == [
        sb.shortcodes[0], sb.account.country_shortcodes["Canada"]]


def test_a_refused_number_among_several_is_a_failure_result(client, sb):
    results = client.send_saved_mms(sb.mms_ids[0], [US, "17745550100", CA], sb.shortcodes[0])  # 2nd: blacklisted
    assert [(r.to, r.status, r.error_code) for r in results] == [
        (US, "Success", None), ("17745550100", "Failure", "E114"), (CA, "Success", None)]
    assert results[1].tracking_id is None and results[1].error_info
    truth = sb.truth().set_index(col.TRACKING_ID)
    assert truth.loc[results[0].tracking_id, col.TO] == US and truth.loc[results[2].tracking_id, col.TO] == CA


CASES = {
    "E104": dict(key="wrong-key-0000000000"),
    "E105": dict(key="no_rights"),
    "E110": dict(to="1774319914"),
    "E111": dict(sender="11111"),
    "E114": dict(to="17745550100"),
    "E241": dict(mms_id="424242"),
    "E626": dict(mms_id="2001"),
    "E628": dict(operator_id="0001610"),  # documented, "Out of Business"
    "E629": dict(mms_id="3001"),
    "E651": dict(operator_id="12345"),  # not a documented operator id
    "E713": dict(key="billing"),
    "E714": dict(campaign_ref="nope"),
    "E715": dict(campaign_ref="5001"),
}


@pytest.mark.parametrize("code", sorted(CASES))
def test_every_api_error_reaches_the_caller(client, sb, code):
    case = dict(CASES[code])
    raw_key = case.pop("key", None)
    key = {"no_rights": sb.account.no_rights_key, "billing": sb.account.billing_problem_key}.get(raw_key, raw_key)
    mms_id, to, sender = case.pop("mms_id", sb.mms_ids[0]), case.pop("to", US), case.pop("sender", sb.shortcodes[0])
    other = SkycoreClient(key, sb.url, method=client.method, max_retries=0) if key else client
    before = len(sb.truth())
    with pytest.raises(SkycoreAPIError) as info:
        other.send_saved_mms(mms_id, to, sender, **case)
    assert info.value.code == code
    assert sb.api_key not in str(info.value)
    assert len(sb.truth()) == before


@pytest.mark.parametrize(("kwargs", "field"), [({"mms_id": ""}, "mms_id"), ({"to": []}, "to"),
                                                ({"to": [US] * 101}, "to"), ({"mms_id": "abc"}, "mms_id")])
def test_codes_the_client_prevents_are_refused_before_sending(client, sb, kwargs, field):
    # E620/E621/E623/E625 are tested with raw requests in test_sandbox_http.py
    args = {"mms_id": sb.mms_ids[0], "to": US, "sender": sb.shortcodes[0], **kwargs}
    with pytest.raises(SkycoreValidationError) as info:
        client.send_saved_mms(args.pop("mms_id"), args.pop("to"), args.pop("sender"))
    assert info.value.field == field


@pytest.mark.parametrize("method", ["post", "get"])
def test_throttling_raises_rate_limit_errors(method):
    with Sandbox(seed=2, time_scale=3600, scenario={"rate_limit": {"min_interval_s": 60}}) as sb:
        with SkycoreClient(sb.api_key, sb.url, method=method, max_retries=0) as client:
            client.send_saved_mms(sb.mms_ids[0], US, sb.shortcodes[0])
            with pytest.raises(SkycoreRateLimitError) as info:
                client.send_saved_mms(sb.mms_ids[0], US, sb.shortcodes[0])
    assert info.value.code == "E106" and "60" in info.value.info


class Sink:
    def __init__(self):
        self.bodies: list[bytes] = []

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return
        self.bodies.append(await read_body(receive))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})


def test_three_arm_ddm_batch():
    arms = {"none": None, "1min": DDM("Hi", timeout_min=1), "10min": DDM("Hi", timeout_min=10)}
    sink = Sink()
    with ServerThread(sink, name="ddm-sink") as server:
        with Sandbox(seed=5, time_scale=3600, postback_url=server.base_url + "/pb",
                     scenario={"countries": {"United States": 1.0}}) as sb:
            numbers = sb.world.sample_numbers(450)
            manifests = {}
            with SkycoreClient(sb.api_key, sb.url) as client:
                for i, (arm, ddm) in enumerate(arms.items()):
                    chunk = numbers[i::3]
                    manifests[arm] = client.send_batch(chunk, sb.mms_ids[0], sb.shortcodes[0], ddm=ddm, progress=False)
            assert sb.wait_idle(timeout=60)
            truth = sb.truth().set_index(col.TRACKING_ID)
    codes = collections.defaultdict(set)
    for body in sink.bodies:
        doc = etree.fromstring(body)
        codes[doc.findtext("TRACKINGID")].add(doc.findtext("CODE"))
    transcoded = {}
    for arm, manifest in manifests.items():
        assert (manifest[col.STATUS] == "Success").all()
        ids = list(manifest[col.TRACKING_ID])
        ddm_codes = [codes[t] & ref.DDM_CODES for t in ids]
        if arms[arm] is None:
            assert not any(ddm_codes)
        else:
            assert sum(bool(c) for c in ddm_codes) > 0.95 * len(ids)
            for tracking_id, seen in zip(ids, ddm_codes, strict=True):
                assert (ref.N502 in seen) == (truth.loc[tracking_id, col.DDM] == col.DDM_DELIVERED)
        rows = truth.loc[ids]
        assert (rows[col.DDM_REQUESTED] == (arms[arm] is not None)).all()
        transcoded[arm] = rows[col.TRANSCODED].mean()
    assert transcoded["none"] == 0
    assert transcoded["1min"] + 0.25 < transcoded["10min"]
