"""Postbacks from the sandbox to a real loopback sink: shape, timing truth, retries, duplicates, cache."""

from __future__ import annotations

import collections
from datetime import datetime
from urllib.parse import parse_qsl

import pytest
import requests
from lxml import etree

from skycore_lab import reference as ref
from skycore_lab import columns as col
from skycore_lab.server import ServerThread, read_body
from skycore_lab.sandbox import Sandbox

# the documented examples' order (POSTBACK_DELIVERY_REPORTS.md: SENTAS before STATUS)
ORDER = ["ORIGIN", "CODE", "SENTAS", "STATUS", "MMSID", "FROM", "TO", "TRACKINGID", "SPID", "TIMESTAMP", "HANDSET",
         "AGGREGATORID", "STATUSDETAILS"]
FAST = 3600.0  # one simulated hour per real second: a message's whole life takes ~2 s


class Sink:
    """Records postbacks; answers ``fail_first`` non-200s to each distinct body first (or always, with -1)."""

    def __init__(self, fail_first: int = 0):
        self.fail_first = fail_first
        self.seen: collections.Counter[bytes] = collections.Counter()
        self.accepted: list[tuple[str, bytes]] = []

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return
        body = await read_body(receive)
        self.seen[body] += 1
        refuse = self.fail_first < 0 or self.seen[body] <= self.fail_first
        if not refuse:
            self.accepted.append((dict(scope["headers"]).get(b"content-type", b"").decode(), body))
        await send({"type": "http.response.start", "status": 500 if refuse else 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    def documents(self) -> list[etree._Element]:
        docs = []
        for content_type, body in self.accepted:
            if content_type.startswith("application/x-www-form-urlencoded"):
                body = dict(parse_qsl(body.decode()))["xml"].encode()
            docs.append(etree.fromstring(body))
        return docs


def run(numbers, *, sink=None, scenario=None, ddm=True, seed=0, repeat=1):
    sink = sink or Sink()
    with ServerThread(sink, name="test-sink") as server:
        with Sandbox(seed=seed, time_scale=FAST, postback_url=server.base_url + "/pb", scenario=scenario) as sb:
            for _ in range(repeat):
                for number in numbers:
                    params = {"action": "sendSavedMMS", "api_key": sb.api_key, "to": number, "from": sb.shortcodes[0],
                              "mmsid": sb.mms_ids[0]}
                    if ddm:
                        params.update(ddmtext="Hello", ddmtimeout="10")
                    assert "Success" in requests.get(sb.url, params=params, timeout=10).text
                assert sb.wait_idle(timeout=30)
            counts = dict(scheduled=sb._dispatcher.scheduled, posted=sb.postbacks_posted, failed=sb.postbacks_failed,
                          retries=sb.postback_retries, pending=sb.pending_postbacks)
            return sink, sb.truth(), counts, sb.handset_cache


@pytest.fixture(scope="module")
def numbers():
    return Sandbox(seed=0).world.sample_numbers(40)


def parse_stamp(text: str) -> datetime:
    return datetime.fromisoformat(text + ":00" if len(text) == 22 else text)


def test_postbacks_have_the_documented_shape_and_match_the_truth(numbers):
    sink, truth, counts, _ = run(numbers)
    docs = sink.documents()
    assert counts["posted"] == counts["scheduled"] == len(docs) and counts["failed"] == 0
    assert sink.accepted[0][1].startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    assert all(b"\n" not in body.split(b"?>", 1)[1].strip() for _, body in sink.accepted)  # one line
    by_id = truth.set_index(col.TRACKING_ID)
    seen_codes = collections.defaultdict(dict)
    for doc in docs:
        assert doc.tag == "POSTBACK"
        tags = [child.tag for child in doc]
        assert tags == [t for t in ORDER if t in tags]
        fields = {child.tag: child.text for child in doc}
        assert fields["TRACKINGID"] in by_id.index
        seen_codes[fields["TRACKINGID"]][fields["CODE"]] = fields
    for tracking_id, codes in seen_codes.items():
        row = by_id.loc[tracking_id]
        if ref.N101 in codes:
            assert parse_stamp(codes[ref.N101]["TIMESTAMP"]) == row[col.SENT_AT]
            assert codes[ref.N101]["SENTAS"] == row[col.SENT_AS]
        for code in (ref.N102, ref.N202):
            if code in codes:
                assert parse_stamp(codes[code]["TIMESTAMP"]) == row[col.DELIVERED_AT]
        assert (ref.N502 in codes) == (row[col.DDM] == col.DDM_DELIVERED)
        assert (ref.N501 in codes) == (row[col.DDM] in (col.DDM_SENT, col.DDM_DELIVERED)
                                          or (row[col.DDM] == col.DDM_FAILED and ref.E502 in codes))
        if ref.N102 in codes:
            assert codes[ref.N102]["HANDSET"] == row[col.HANDSET] == row[col.TRUE_HANDSET]
    assert set(seen_codes) == set(truth[col.TRACKING_ID])
    assert (truth[col.REQUESTED_AT] <= truth[col.SENT_AT].fillna(truth[col.FAILED_AT])).all()


def test_failed_posts_are_retried_with_the_same_document(numbers):
    sink, _, counts, _ = run(numbers[:10], sink=Sink(fail_first=2), ddm=False)
    assert counts["retries"] == 2 * counts["scheduled"]
    assert counts["posted"] == counts["scheduled"] == len(sink.accepted)
    assert all(times == 3 for times in sink.seen.values())  # same bytes, so the TIMESTAMP did not change


def test_posts_are_given_up_after_max_retries(numbers):
    _, _, counts, _ = run(numbers[:5], sink=Sink(fail_first=-1), ddm=False,
                          scenario={"postback": {"max_retries": 2}})
    assert counts["posted"] == 0 and counts["failed"] == counts["scheduled"] > 0
    assert counts["retries"] == 2 * counts["scheduled"] and counts["pending"] == 0


def test_form_format_duplicates_and_pretty_print(numbers):
    scenario = {"postback": {"format": "form", "duplicate_rate": 1.0, "pretty": True, "declaration": False}}
    sink, truth, counts, _ = run(numbers[:10], scenario=scenario, ddm=False)
    assert all(ct.startswith("application/x-www-form-urlencoded") for ct, _ in sink.accepted)
    docs = sink.documents()
    assert len(docs) == counts["scheduled"]
    keys = collections.Counter((d.findtext("TRACKINGID"), d.findtext("CODE")) for d in docs)
    assert set(keys.values()) == {2}
    assert b"<?xml" not in sink.accepted[0][1] and b"%0A" in sink.accepted[0][1]


def test_the_cache_learns_from_the_first_send(numbers):
    _, truth, _, cache = run(numbers[:20], repeat=2, scenario={"ddm": {"p_no_report": 0.0}})
    first, second = truth.iloc[:20], truth.iloc[20:]
    assert not first[col.CACHED_BEFORE].any()
    learnt = first[first[col.HANDSET].notna()]
    assert len(learnt) > 10
    assert set(learnt[col.TO]) <= set(cache)
    again = second[second[col.TO].isin(learnt[col.TO])]
    assert again[col.CACHED_BEFORE].all()
    assert (again[col.DDM] == col.DDM_NONE).all()  # cached: no DDM unless forced
