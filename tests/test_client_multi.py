"""Multi-number answers, per-number refusals in manifests, and the documented option rules (issue 12, item 3)."""

from __future__ import annotations

import warnings

import pytest
from fake_api import fake_client
from hypothesis import given
from hypothesis import strategies as st

from skycore_lab import DdmExperiment
from skycore_lab import columns as col
from skycore_lab.client import DDM, SendRequest, SkycoreClient
from skycore_lab.exceptions import SendOptionWarning, SkycoreAPIError
from skycore_lab.sandbox import Sandbox

KEY = "k3y-Secret-0123456789abcdef"
US, US2, UK = "17743199144", "17743199145", "447624805892"


def client_for(api, **kwargs) -> SkycoreClient:
    return fake_client(api, KEY, **kwargs)


def sending(*blocks: str, mms: str = "1") -> bytes:
    return (f"<RESPONSE><STATUS>Success</STATUS><MMSID>{mms}</MMSID>"
            + "".join(f"<SENDING>{b}</SENDING>" for b in blocks) + "</RESPONSE>").encode()


def sent(tracking: str, to: str) -> str:
    return f"<TRACKINGID>{tracking}</TRACKINGID><TO>{to}</TO>"


def refused(code: str, to: str, info: str = "refused") -> str:
    return f"<ERRORCODE>{code}</ERRORCODE><TO>{to}</TO><ERRORINFO>{info}</ERRORINFO>"


# --- the answer: one result per number, in request order ---------------------------------------
def test_a_number_the_answer_does_not_mention_is_unknown(fake):
    fake.replies = [(200, sending(sent("A", US)))]
    results = client_for(fake).send_saved_mms(1, [US, US2], 60856)
    assert [(r.to, r.status, r.tracking_id) for r in results] == [(US, "Success", "A"), (US2, "Unknown", None)]
    assert "does not mention" in results[1].error_info


def test_a_tracking_id_for_a_number_not_asked_is_kept_last(fake):
    fake.replies = [(200, sending(sent("A", US), sent("Z", "19995550000")))]
    results = client_for(fake).send_saved_mms(1, [US], 60856)
    assert [(r.to, r.tracking_id) for r in results] == [(US, "A"), ("19995550000", "Z")]


def test_blocks_without_to_are_paired_by_position(fake):
    fake.replies = [(200, sending("<TRACKINGID>A</TRACKINGID>", "<TRACKINGID>B</TRACKINGID>"))]
    results = client_for(fake).send_saved_mms(1, [US, UK], 60856)
    assert [(r.to, r.tracking_id) for r in results] == [(US, "A"), (UK, "B")]


def test_numbers_echoed_with_a_plus_are_still_matched(fake):
    fake.replies = [(200, sending(sent("B", "+" + UK), sent("A", US)))]
    results = client_for(fake).send_saved_mms(1, [US, UK], 60856)
    assert [r.tracking_id for r in results] == ["A", "B"]


def test_a_throttling_code_for_one_number_is_that_numbers_failure_not_a_retry(fake):
    fake.replies = [(200, sending(sent("A", US), refused("E113", US2)))]
    results = client_for(fake, max_retries=3).send_saved_mms(1, [US, US2], 60856)
    assert [r.status for r in results] == ["Success", "Failure"] and len(fake.requests) == 1


def test_a_whole_call_failure_raises_naming_every_number(fake):
    fake.replies = [(200, b"<RESPONSE><STATUS>Failure</STATUS><ERRORCODE>E713</ERRORCODE><TO>17743199144,"
                          b"447624805892</TO><ERRORINFO>There is billing problem on your account</ERRORINFO></RESPONSE>")]
    with pytest.raises(SkycoreAPIError) as info:
        client_for(fake).send_saved_mms(1, [US, UK], 60856)
    assert info.value.numbers == (US, UK) and f"{US},{UK}" in str(info.value)


def test_a_whole_call_failure_without_to_names_the_requested_numbers(fake):
    fake.replies = [(200, b"<RESPONSE><STATUS>Failure</STATUS><ERRORCODE>E104</ERRORCODE>"
                          b"<ERRORINFO>User Authentication Failed.</ERRORINFO></RESPONSE>")]
    with pytest.raises(SkycoreAPIError) as info:
        client_for(fake).send_saved_mms(1, [US, UK], 60856)
    assert info.value.numbers == (US, UK)


@pytest.mark.parametrize("block", [refused("E715", US, "Number is not subscribed"), "<TO>17743199144</TO>"])
def test_a_single_number_refused_or_unknown_in_a_sending_block_raises(fake, block):
    fake.replies = [(200, sending(block))]
    with pytest.raises(Exception) as info:
        client_for(fake).send_saved_mms(1, US, 60856)
    if "ERRORCODE" in block:
        assert isinstance(info.value, SkycoreAPIError) and info.value.code == "E715"
    else:
        assert info.value.may_have_sent is True


OUTCOME = st.sampled_from(["sent", "refused", "missing", "empty"])


@given(st.lists(OUTCOME, min_size=1, max_size=12), st.randoms(use_true_random=False))
def test_any_answer_gives_one_result_per_number_in_order_and_keeps_every_tracking_id(outcomes, rnd):
    from skycore_lab.client import _match  # the pairing rule itself, without HTTP

    numbers = tuple(f"1774319{i:04d}" for i in range(len(outcomes)))
    blocks = []
    for i, (number, outcome) in enumerate(zip(numbers, outcomes, strict=True)):
        if outcome == "sent":
            blocks.append({"TRACKINGID": f"T{i}", "TO": number})
        elif outcome == "refused":
            blocks.append({"ERRORCODE": "E110", "TO": number, "ERRORINFO": "x"})
        elif outcome == "empty":
            blocks.append({"TRACKINGID": None, "TO": number})
    rnd.shuffle(blocks)
    paired = _match(numbers, blocks)
    assert [number for number, _ in paired] == list(numbers)
    for (number, block), outcome in zip(paired, outcomes, strict=True):
        assert (block is None) == (outcome == "missing")
        if block is not None:
            assert block["TO"] == number
    tracking = {b["TRACKINGID"] for _, b in paired if b and b.get("TRACKINGID")}
    assert tracking == {f"T{i}" for i, o in enumerate(outcomes) if o == "sent"}


# --- manifests record per-number refusals ------------------------------------------------------------
def test_a_sending_refusal_in_a_batch_is_a_failure_row_with_its_code(fake):
    fake.replies = [(200, sending(sent("A", US))), (200, sending(refused("E715", US2, "Number is not subscribed")))]
    manifest = client_for(fake).send_batch([US, US2], 1, 60856, concurrency=1, progress=False)
    assert manifest[col.STATUS].tolist() == ["Success", "Failure"]
    assert manifest[col.TRACKING_ID].tolist()[0] == "A" and manifest[col.TRACKING_ID].isna().tolist()[1]
    assert manifest.loc[1, col.ERROR_CODE] == "E715" and manifest.loc[1, col.ERROR_INFO] == "Number is not subscribed"


def test_experiment_manifest_records_per_number_refusals():
    with Sandbox(seed=6, time_scale=3600) as sb:
        subscribed = sorted(sb.account.campaigns["5001"])[:3]
        others = ["17743199144", "17743199145", "17745550100"]  # the last is blacklisted too: E114 wins
        experiment = DdmExperiment({"none": None, "ddm": DDM("Hi", timeout_min=2)}, sb.mms_ids[0], sb.shortcodes[0],
                                   seed=1, campaign_ref="5001")
        with SkycoreClient(sb.api_key, sb.url) as client:
            manifest = experiment.run(client, subscribed + others, progress=False)
    rows = manifest.set_index(col.TO)
    assert (rows.loc[subscribed, col.STATUS] == "Success").all() and rows.loc[subscribed, col.TRACKING_ID].notna().all()
    assert rows.loc[others, col.STATUS].tolist() == ["Failure"] * 3
    assert rows.loc[others, col.ERROR_CODE].tolist() == ["E715", "E715", "E114"]
    assert rows.loc[others, col.TRACKING_ID].isna().all()


# --- FROM_MASK and OPERATORID follow the documentation ------------------------------------------------
def test_a_long_from_mask_is_sent_as_given_with_a_warning():
    with pytest.warns(SendOptionWarning, match="cuts it off after 11"):
        request = SendRequest.create(1, UK, 2, from_mask="Acme Pharmacy Ltd")
    assert request.from_mask == "Acme Pharmacy Ltd"  # the platform cuts it off; we do not


def test_from_mask_to_the_us_warns_and_is_still_sent():
    with pytest.warns(SendOptionWarning, match="United States"):
        request = SendRequest.create(1, [UK, US], 2, from_mask="Acme")
    assert b"<FROM_MASK>Acme</FROM_MASK>" in request.to_xml("k")


@pytest.mark.parametrize("mask", ["Acme", "Acme & Co.", "Zoë-Shop", "12345678901"])
def test_from_masks_the_documentation_does_not_forbid_are_accepted_silently(mask):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert SendRequest.create(1, UK, 2, from_mask=mask).from_mask == mask


@pytest.mark.parametrize("operator", ["0001470", "1001000", 1470])
def test_documented_operator_ids_are_sent_as_written(operator):
    assert SendRequest.create(1, UK, 2, operator_id=operator).operator_id == str(operator)


def test_a_batch_warns_once_per_recipient_country_not_for_its_stand_in(fake):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        client_for(fake).send_batch([UK], 1, 60856, from_mask="Acme", progress=False)
    assert not [w for w in caught if issubclass(w.category, SendOptionWarning)]
