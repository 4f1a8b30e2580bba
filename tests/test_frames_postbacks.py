"""deliveries() and handset_profiles() on recorded-style postback documents (tests/data/frames/postbacks).

The documents are read here by a deliberately small reader (hardened
``parse_xml``, one field per upper-case element), so these tests do not depend
on :func:`skycore_lab.read_postbacks`.
"""

from __future__ import annotations

import os
import re

import pandas as pd
import pytest
from test_frames_support import T0, make_events

from skycore_lab import reference as ref
from skycore_lab import columns as col
from skycore_lab.xmlsafe import element_text, parse_xml
from skycore_lab.frames import deliveries, handset_profiles

FOLDER = os.path.join(os.path.dirname(__file__), "data", "frames", "postbacks")
FIELDS = {"ORIGIN": col.ORIGIN, "CODE": col.CODE, "STATUS": col.STATUS, "SENTAS": col.SENT_AS,
          "MMSID": col.MMS_ID, "FROM": col.SENDER, "TO": col.TO, "TRACKINGID": col.TRACKING_ID, "SPID": col.SPID,
          "TIMESTAMP": col.TIMESTAMP, "HANDSET": col.HANDSET, "AGGREGATORID": col.AGGREGATOR_ID,
          "STATUSDETAILS": col.STATUS_DETAILS}
BARE_OFFSET = re.compile(r"([+-]\d\d)$")  # "…-04" → "…-04:00"


def read_folder() -> pd.DataFrame:
    rows = []
    for arrival, name in enumerate(sorted(n for n in os.listdir(FOLDER) if n.endswith(".xml"))):
        with open(os.path.join(FOLDER, name), "rb") as handle:
            root = parse_xml(handle.read())
        row = {column: element_text(root, tag) for tag, column in FIELDS.items()}
        if row[col.TIMESTAMP]:
            row[col.TIMESTAMP] = pd.Timestamp(BARE_OFFSET.sub(r"\1:00", row[col.TIMESTAMP]))
        row[col.RECEIVED_AT] = T0 + pd.Timedelta(minutes=arrival)
        row[col.SOURCE] = name
        rows.append(row)
    return make_events(rows)


@pytest.fixture(scope="module")
def sends() -> pd.DataFrame:
    return deliveries(read_folder()).set_index(col.TRACKING_ID)


def test_one_row_per_send_mo_ignored(sends):
    assert len(sends) == 4 and sends.index.is_unique


def test_ddm_then_delivered_mms_out_of_order_and_retried(sends):
    row = sends.loc["TU1TXzU5Nzg3OQ=="]
    assert row[col.OUTCOME] == col.OUTCOME_DELIVERED and row[col.FINAL_CODE] == ref.N102
    assert row[col.SENT_AT] == pd.Timestamp("2024-03-01T14:00:22Z")
    assert row[col.DELIVERED_AT] == pd.Timestamp("2024-03-01T14:00:52Z")  # from a bare "-04" offset
    assert row[col.LATENCY_S] == 30 and row[col.TOTAL_LATENCY_S] == 51
    assert row[col.DDM] == col.DDM_DELIVERED and row[col.DDM_LATENCY_S] == 20
    assert row[col.HANDSET] == "Apple iPhone 15" and row[col.CARRIER] == "Sprint"


def test_sms_fallback(sends):
    row = sends.loc["TU1TXzU5Nzg4MA=="]
    assert row[col.SENT_AS] == col.SENT_AS_SMS and row[col.OUTCOME] == col.OUTCOME_DELIVERED
    assert row[col.LATENCY_S] == 4 and row[col.MMS_ID] == "4711" and row[col.CARRIER] == "Metro PCS"


def test_failures(sends):
    e101 = sends.loc["TU1TXzU5Nzg4MQ=="]
    assert e101[col.OUTCOME] == col.OUTCOME_FAILED
    assert e101[col.FAILED_AT] == T0 + pd.Timedelta(minutes=7)  # no TIMESTAMP: received_at
    assert e101[col.COUNTRY] == "United Kingdom" and e101[col.CARRIER] == "O2"
    assert sends.loc["TU1TXzU5Nzg4Mg==", col.OUTCOME] == col.OUTCOME_REJECTED


def test_profiles_from_the_same_documents():
    profiles = handset_profiles(read_folder()).set_index(col.TO)
    assert "60856" not in profiles.index  # the MO's TO is the shortcode
    assert profiles.loc["17743199144", col.HANDSET] == "Apple iPhone 15"
    assert profiles.loc["17743199144", col.DELIVERIES] == 1 and profiles.loc["17743199144", col.HANDSET_CHANGES] == 0
    assert profiles.loc["17743199145", col.DELIVERIES] == 1
