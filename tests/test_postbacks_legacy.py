"""Issue 12, item 2: reading what the platform really sends — bundles, legacy envelopes, offsets, SPIDs.

Every shape here is built from the documentation's own examples
(``../shared/skycore-api/docs``); the conformance corpus holds them as
published, these tests the rules one at a time, on every path.
"""

from __future__ import annotations

import warnings

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from skycore_lab import columns as col
from skycore_lab import reference as ref
from skycore_lab.exceptions import PostbackDataWarning
from skycore_lab.postbacks import events_from_bodies, read_postbacks
from skycore_lab.postbacks.kernel import documented_order, scan_log_buffer
from skycore_lab.postbacks.logformat import HEADER, encode_record
from skycore_lab.postbacks.schema import FIELD_TAGS

# POSTBACK_NOTIFICATION_SYSTEM (2013): two notifications, the second an MMS_MT N101, bundled as the page says
BUNDLE = b"""<POSTBACK>
<NOTIFICATION id="521395" created="2012-06-07 04:52:07.563447-04">
<ORIGIN>SMS_MT</ORIGIN>
<CODE>N201</CODE>
<BODY>
<HISTORYID>455795</HISTORYID>
<TO>16501112222</TO>
<TRACKINGID>SMS_45695</TRACKINGID>
<TIMESTAMP>2012-06-07 04:52:07.374174-04</TIMESTAMP>
</BODY>
</NOTIFICATION>
<NOTIFICATION id="521495" created="2012-06-07 07:27:29.954258-04">
<ORIGIN>MMS_MT</ORIGIN>
<CODE>N101</CODE>
<BODY>
<HISTORYID>455811</HISTORYID>
<MMSID>39597</MMSID>
<TO>16501112222</TO>
<TRACKINGID>MMS_389076</TRACKINGID>
<SPID>000157</SPID>
<TIMESTAMP>2012-06-07 07:27:29</TIMESTAMP>
</BODY>
</NOTIFICATION>
</POSTBACK>
"""


def _log(tmp_path, *bodies: bytes):
    log = tmp_path / "postbacks.log"
    log.write_bytes(HEADER + b"".join(
        encode_record(body, "-", f"2026-03-02T14:00:{i:02d}.000000Z") for i, body in enumerate(bodies)
    ))
    return log


@pytest.mark.parametrize("path", ["file", "log", "bodies"])
def test_every_notification_of_a_bundle_is_one_event(tmp_path, path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PostbackDataWarning)
        if path == "file":
            (tmp_path / "bundle.xml").write_bytes(BUNDLE)
            frame = read_postbacks(tmp_path / "bundle.xml")
        elif path == "log":
            frame = read_postbacks(_log(tmp_path, BUNDLE))
        else:
            frame = events_from_bodies([BUNDLE])
    assert frame[col.CODE].tolist() == ["N201", "N101"]
    assert frame[col.ORIGIN].tolist() == ["SMS_MT", "MMS_MT"]
    assert frame[col.TRACKING_ID].tolist() == ["SMS_45695", "MMS_389076"]
    assert frame[col.EXTRA].iloc[1]["ID"] == "521495" and "NOTIFICATION" not in frame[col.EXTRA].iloc[1]
    assert frame[col.CARRIER].iloc[1] == "T-Mobile"  # 000157: Appendix E's 0001570
    if path == "file":
        assert frame[col.LINE].tolist() == [2, 12]  # where each notification starts
    else:
        assert frame[col.LINE].nunique() == 1  # one record, one line


def test_the_mo_bundle_as_its_page_means_it():
    """INCOMING_SMS+MMS_POSTBACK (2013) with its typographic quotes turned back to ASCII (the published
    page itself is a bad record: see the corpus): three notifications, the third only '…'."""
    text = (
        '<POSTBACK>\n<NOTIFICATION id="263" created="2011-09-28 16:30:01.835577-04">\n<ORIGIN>MMS_MO</ORIGIN>\n'
        "<CODE>N401</CODE>\n<BODY>\n<FROM>15552312102</FROM>\n<TO>86717</TO>\n<KEYWORD>testoffer</KEYWORD>\n"
        "<TRACKINGID>MMS_MO_815</TRACKINGID>\n<SPID>000165</SPID>\n<TIMESTAMP>2011-09-28 15:25:30.222581-04</TIMESTAMP>\n"
        "<CONTENT>\n<FILE>…URL of Content Here…</FILE>\n<FILE>…URL of Content Here…</FILE>\n"
        "<FILE>…URL of Content Here…</FILE>\n</CONTENT>\n</BODY>\n</NOTIFICATION>\n"
        '<NOTIFICATION id="265" created="2011-09-28 16:38:02.299301-04">\n…\n</NOTIFICATION>\n</POSTBACK>'
    ).encode()
    frame = events_from_bodies([text])
    assert len(frame) == 2
    first, second = frame.iloc[0], frame.iloc[1]
    assert first[col.CARRIER] == "Sprint" and first[col.SPID] == "0001650"  # the page: "000165 … Sprint"
    assert first[col.EXTRA]["CONTENT/FILE"] == ["…URL of Content Here…"] * 3  # a list, not run together
    assert first[col.TIMESTAMP] == pd.Timestamp("2011-09-28T19:25:30.222581Z")
    assert second[col.EXTRA] == {"ID": "265", "CREATED": "2011-09-28 16:38:02.299301-04", "#text": "…"}
    assert pd.isna(second[col.CODE])  # nothing dropped, nothing invented


def test_repeated_unknown_elements_are_lists_and_repeated_fields_kept():
    body = (b"<POSTBACK><CODE>N401</CODE><TO>1</TO><TO>2</TO><TO>3</TO><KEYWORD>a</KEYWORD><KEYWORD>b</KEYWORD>"
            b"<TIMESTAMP>2014-02-03T11:19:49-05:00</TIMESTAMP><TIMESTAMP>2014-02-03T11:19:50-05:00</TIMESTAMP></POSTBACK>")
    row = events_from_bodies([body]).iloc[0]
    assert row[col.TO] == "1"  # the first fills the column
    assert row[col.EXTRA] == {"TO": ["2", "3"], "KEYWORD": ["a", "b"], "TIMESTAMP": "2014-02-03T11:19:50-05:00"}


# --- offset-less legacy TIMESTAMPs ----------------------------------------------------------------------
def test_an_offsetless_stamp_takes_its_envelopes_created_offset():
    """The issue's example: the 2012 N101 at 07:27:29 (created -04), the N102 at 07:27:34-04: 5 s, not 14405."""
    n101 = ('<NOTIFICATION id="521495" created="2012-06-07 07:27:29.954258-04"><ORIGIN>MMS_MT</ORIGIN>'
            "<CODE>N101</CODE><BODY><TRACKINGID>MMS_389076</TRACKINGID><TIMESTAMP>2012-06-07 07:27:29</TIMESTAMP>"
            "</BODY></NOTIFICATION>")
    n102 = ('<NOTIFICATION id="521495" created="2012-06-07 07:27:34.398593-04"><ORIGIN>MMS_MT</ORIGIN>'
            "<CODE>N102</CODE><BODY><TRACKINGID>MMS_389076</TRACKINGID><TIMESTAMP>2012-06-07 07:27:34-04</TIMESTAMP>"
            "</BODY></NOTIFICATION>")
    with pytest.warns(PostbackDataWarning, match=r"1 TIMESTAMP\(s\) had no UTC offset: took their envelope's CREATED"):
        frame = events_from_bodies([n101, n102])
    assert frame[col.TIMESTAMP].tolist() == [pd.Timestamp("2012-06-07T11:27:29Z"), pd.Timestamp("2012-06-07T11:27:34Z")]
    assert frame[col.TIMESTAMP_INFERRED].tolist() == [True, False]
    from skycore_lab import deliveries

    assert deliveries(frame)[col.LATENCY_S].tolist() == [5.0]


def test_else_the_offset_of_the_sends_other_notifications_else_utc_said(tmp_path):
    def body(tracking: str, code: str, stamp: str) -> bytes:
        return f"<POSTBACK><CODE>{code}</CODE><TRACKINGID>{tracking}</TRACKINGID><TIMESTAMP>{stamp}</TIMESTAMP></POSTBACK>".encode()

    log = _log(tmp_path, body("S", "N101", "2012-06-07T07:27:29"), body("U", "N101", "2012-06-07T07:27:29"))
    other = tmp_path / "later.xml"  # the send's other notification, in another file
    other.write_bytes(body("S", "N102", "2012-06-07T07:27:34-05:00"))
    with pytest.warns(PostbackDataWarning) as caught:
        frame = read_postbacks([log, other]).set_index(col.TRACKING_ID)
    said = " ".join(str(w.message) for w in caught)
    assert "1 TIMESTAMP(s) had no UTC offset: took their envelope's CREATED offset or their send's" in said
    assert "1 TIMESTAMP(s) had no UTC offset and nothing to take one from: read as UTC" in said
    s = frame.loc["S"].set_index(col.CODE)
    assert s.loc["N101", col.TIMESTAMP] == pd.Timestamp("2012-06-07T12:27:29Z")  # -05:00, from its N102
    assert s[col.TIMESTAMP_INFERRED].tolist() == [True, False]
    assert frame.loc["U", col.TIMESTAMP] == pd.Timestamp("2012-06-07T07:27:29Z")  # nothing known: UTC, flagged
    assert bool(frame.loc["U", col.TIMESTAMP_INFERRED])


# --- legacy STATUS attributes ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "element, status, extra",
    [
        ('<STATUS celly="20" provider="1000" text="Retrieved" description="" />', "Retrieved",
         {"STATUS_CELLY": "20", "STATUS_PROVIDER": "1000", "STATUS_DESCRIPTION": ""}),
        ('<STATUS celly="10" provider="1000" />', ref.LINK_SENT, {"STATUS_CELLY": "10", "STATUS_PROVIDER": "1000"}),
        ('<STATUS protocole="3" status="1"/>', "1", {"STATUS_PROTOCOLE": "3"}),
        ('<STATUS PROTOCOL="SMPP" STATUS="DELIVRD"/>', "DELIVRD", {"STATUS_PROTOCOL": "SMPP"}),
    ],
)
def test_legacy_status_attributes_fill_status(element, status, extra):
    body = f"<NOTIFICATION><ORIGIN>MMS_MT</ORIGIN><CODE>N102</CODE><BODY>{element}</BODY></NOTIFICATION>"
    row = events_from_bodies([body]).iloc[0]
    assert row[col.STATUS] == status and row[col.EXTRA] == extra


# --- SPIDs ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "written, spid, carrier",
    [
        ("000189", "0001890", "Verizon Wireless"),  # 6 digits: the last one dropped, not a leading zero
        ("000165", "0001650", "Sprint"),
        ("000157", "0001570", "T-Mobile"),
        ("000114", "0001140", "Alltel-Verizon"),  # the xHTML examples' id: the MM7 operator list
        ("0001140", "0001140", "Alltel-Verizon"),
        ("1570", "0001570", "T-Mobile"),  # a spreadsheet ate the zeros
        ("93110", "0093110", "Roshan"),
        ("0001942", "0001942", "Aio Wireless"),
        ("9999999", "9999999", None),
    ],
)
def test_spids_one_rule_two_tables(written, spid, carrier):
    assert ref.normalize_spid(written) == spid
    assert ref.resolve_spid(written).carrier == carrier
    frame = events_from_bodies([f"<POSTBACK><TO>17743199144</TO><SPID>{written}</SPID></POSTBACK>"])
    assert frame[col.SPID].iloc[0] == spid and (frame[col.CARRIER].iloc[0] if carrier else None) == carrier


def test_every_spid_has_a_recorded_source():
    sources = ref.spid_sources()
    assert sources["0001890"].startswith("1.3/CONTENTS/APPENDIX/APPENDIX_E.md")
    assert "MM7/OPERATOR-IDS/skycoreOperatorIds.md at ee0b69d" in sources["0001140"]
    assert "xHTML examples" in sources["0001140"]
    assert len([s for s in sources.values() if "MM7" in s]) == 59
    assert not {sid for sid in sources if len(sid) != 7}


# --- the documented element order, and the old one --------------------------------------------------------
def test_the_fast_path_proves_the_documented_order_and_the_old_order_reads_the_same(tmp_path):
    assert FIELD_TAGS[:4] == ("ORIGIN", "CODE", "SENTAS", "STATUS")
    fields = {"ORIGIN": "MMS_MT", "CODE": "N101", "SENTAS": "MMS", "STATUS": "Message Sent", "TRACKINGID": "O1",
              "TIMESTAMP": "2012-06-07T07:27:29-05:00"}

    def body(order):
        return ("<POSTBACK>" + "".join(f"<{t}>{fields[t]}</{t}>" for t in order) + "</POSTBACK>").encode()

    documented = body(["ORIGIN", "CODE", "SENTAS", "STATUS", "TRACKINGID", "TIMESTAMP"])
    old = body(["ORIGIN", "CODE", "STATUS", "SENTAS", "TRACKINGID", "TIMESTAMP"])
    buffer = HEADER + encode_record(documented, "-", None) + encode_record(old, "-", None)
    scan = scan_log_buffer(buffer)
    assert scan.proven.tolist() == [False, True, True]  # old logs stay on the fast path
    assert scan.table.column("STATUS").to_pylist()[1] == "Message Sent"
    assert scan.table.column("SENTAS").to_pylist()[1] == "MMS"
    assert documented_order(buffer) != buffer and documented_order(HEADER) is HEADER  # no copy when nothing to swap
    frame = read_postbacks(_log(tmp_path, documented, old), drop_duplicates=False)
    names = [c for c in col.EVENT_COLUMNS if c not in (col.RECEIVED_AT, col.EXTRA)]
    assert frame[names].iloc[0].equals(frame[names].iloc[1])


_OLD_TEXT = st.sampled_from(["", " ", "MMS", "Message Sent", "a&amp;b", "&lt;", "&#233;", "x\ny", "<", "&", "]]>",
                             "<X/>", "</SENTAS>", "</STATUS>", "\t"])


@settings(max_examples=150, deadline=None)
@given(status=_OLD_TEXT, sent_as=_OLD_TEXT, between=st.sampled_from(["", " ", "<X/>", "\n", "\r\n  ", "<!--c-->"]),
       after=st.sampled_from(["", "<STATUS>again</STATUS>", "<SENTAS>again</SENTAS>"]))
def test_the_swapped_old_order_is_proven_only_when_lxml_reads_the_original_the_same(status, sent_as, between, after):
    body = (f"<POSTBACK><ORIGIN>MMS_MT</ORIGIN><CODE>N101</CODE><STATUS>{status}</STATUS>{between}"
            f"<SENTAS>{sent_as}</SENTAS>{after}<TRACKINGID>T1</TRACKINGID></POSTBACK>").encode()
    scan = scan_log_buffer(encode_record(body, "-", None))
    try:
        root = etree.fromstring(body)
    except etree.XMLSyntaxError:
        root = None
    if not scan.proven[0]:
        return
    assert root is not None, f"fast path accepted what lxml rejects: {body!r}"
    for tag in ("STATUS", "SENTAS"):
        found = root.findall(tag)
        assert len(found) == 1, body
        assert scan.table.column(tag)[0].as_py() == ((found[0].text or "").strip() or None)


# --- the narrow repair stays narrow ---------------------------------------------------------------------
@pytest.mark.parametrize(
    "body",
    [
        b"<POSTBACK><TO>1</FROM></POSTBACK>",  # an end tag of another element
        b"<POSTBACK><CODE>N101</CODE><TO>1",  # truncated
        b"<POSTBACK><BODY><TO>1</TO></POSTBACK>",  # an unclosed container
        b'<POSTBACK a="1" "b"><TO>1</TO></POSTBACK>',  # an attribute without a name
        b"<POSTBACK><TO>1</TO></POSTBACK><POSTBACK>",  # two roots, the second unclosed
    ],
)
def test_other_malformations_stay_bad_records(body):
    errors = []
    frame = events_from_bodies([body], on_bad_lines=lambda raw, err: errors.append(err))
    assert len(frame) == 0 and len(errors) == 1 and "not well-formed" in errors[0].reason


def test_a_repaired_record_is_marked_and_named(tmp_path):
    path = tmp_path / "e101.xml"
    path.write_bytes(b"<POSTBACK>\n<CODE>E101</CODE>\n<TRACKINGID>R</TRACKINGID>\n"
                     b"<STATUSDETAILS>Error fetching dynamic content<STATUSDETAILS>\n</POSTBACK>\n")
    with pytest.warns(PostbackDataWarning, match=rf"{path}:1 \(line 4: unclosed element <STATUSDETAILS>\)"):
        frame = read_postbacks(path)
    assert frame[col.RECOVERED].tolist() == [True]
    assert frame[col.STATUS_DETAILS].tolist() == ["Error fetching dynamic content"]
