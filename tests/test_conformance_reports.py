"""The conformance corpus: every sending-statistics report example of Appendix C reads as documented.

Each ``tests/data/conformance/reports/<name>.xml`` is one Appendix C example as
published (unclosed steps, ``</BATCH>`` after a self-closed ``<BATCH/>``,
``carrier="AT&T"``…), or all of one revision's examples inside the
``<RESPONSE>`` the page says holds them; ``<name>.expected.json`` lists each
message's documented outcome (see ``tests/data/conformance/postbacks/README.md``).
Strict reading refuses what is not well-formed; ``recover=True`` reads every
message, repaired one by one, and says so.
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import pandas as pd
import pytest

from skycore_lab import columns as col
from skycore_lab.exceptions import PostbackParseError, SendingReportWarning
from skycore_lab.frames.sending_report import GROUP_ID, MESSAGE_TYPE, SECTION, read_sending_report

CORPUS = Path(__file__).parent / "data" / "conformance" / "reports"
FILES = sorted(CORPUS.glob("*.xml"))
TIMES = (col.SENT_AT, col.DELIVERED_AT)


def _expected(path: Path) -> dict:
    return json.loads(path.with_suffix(".expected.json").read_text(encoding="utf-8"))


def _value(value):
    if value is None or value is pd.NaT or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if hasattr(value, "item"):
        return value.item()
    return value


FIELDS = {
    "tracking_id": col.TRACKING_ID, "message_type": MESSAGE_TYPE, "sent_as": col.SENT_AS, "to": col.TO,
    "sender": col.SENDER, "carrier": col.CARRIER, "mms_id": col.MMS_ID, "section": SECTION, "group_id": GROUP_ID,
    "sent_at": col.SENT_AT, "delivered_at": col.DELIVERED_AT, "final_code": col.FINAL_CODE, "outcome": col.OUTCOME,
    "handset": col.HANDSET, "error_info": col.ERROR_INFO, "recovered": col.RECOVERED,
}


def test_the_corpus_is_whole():
    assert len(FILES) >= 20
    for path in FILES:
        expected = _expected(path)
        assert len(expected["source"]["commit"]) == 40 and expected["source"]["page"], path.name
        assert expected["messages"], path.name


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_every_report_example_reads_as_documented(path):
    expected = _expected(path)
    if not expected["well_formed"]:
        with pytest.raises(PostbackParseError, match="not well-formed XML.*recover=True"):
            read_sending_report(path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        frame = read_sending_report(path, recover=True)
    said = [str(w.message) for w in caught if w.category is SendingReportWarning]
    assert len(frame) == len(expected["messages"])
    for (_, row), wanted in zip(frame.iterrows(), expected["messages"]):
        for key, column in FIELDS.items():
            assert _value(row[column]) == wanted[key], (path.name, wanted["tracking_id"], key)
        if wanted["latency_s"] is None:
            assert pd.isna(row[col.LATENCY_S])
        else:
            assert row[col.LATENCY_S] == pytest.approx(wanted["latency_s"], abs=1e-6)
    if any(m["recovered"] for m in expected["messages"]):
        # what was repaired is said, with the count of messages
        recovered = sum(m["recovered"] for m in expected["messages"])
        assert any(f"{recovered} of {len(frame)} message(s) repaired" in message for message in said), said


def test_consecutive_texts_with_unclosed_steps_keep_every_dlr():
    """Issue 12, item 9: two <TEXT>s whose ACK/DLR are never closed — each keeps its own DLR."""
    path = CORPUS / "2015-06-23_APPENDIX_C_all_examples_in_RESPONSE.xml"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frame = read_sending_report(path, recover=True).set_index(col.TRACKING_ID)
    texts = frame[frame[MESSAGE_TYPE] == col.SENT_AS_SMS]
    assert (texts[col.OUTCOME] == col.OUTCOME_DELIVERED).all() and texts[col.DELIVERED_AT].notna().all()
    assert len(frame) == 14 and (frame[col.OUTCOME] != col.OUTCOME_PENDING).sum() == 13  # 455112: ACK, no DLR
