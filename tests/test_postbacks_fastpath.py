"""The validating fast path never accepts what lxml rejects, and agrees with it.

Property tests (hypothesis): generated notifications round-trip; mutated
documents accepted by a fast path parse with lxml to the same fields;
arbitrary bytes never crash the reader.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from skycore_lab import columns as col
from skycore_lab.postbacks.grammar import document_fields
from skycore_lab.postbacks.kernel import scan_log_buffer
from skycore_lab.postbacks.schema import FIELD_TAGS
from skycore_lab.postbacks.logformat import HEADER, encode_record
from skycore_lab.postbacks import events_from_bodies, read_postbacks
from skycore_lab.postbacks.documents import BadRecord, parse_xml_document
from skycore_lab.postbacks.grammar import OLD_ORDER
from skycore_lab.postbacks.schema import TAG_COLUMNS
from skycore_lab.postbacks.timestamps import parse_timestamps

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# Text columns read back verbatim (no normalisation besides stripping).
VERBATIM = ("STATUS", "MMSID", "TRACKINGID", "HANDSET", "AGGREGATORID", "STATUSDETAILS", "ORIGIN", "CODE", "SENTAS")

xml_char = st.characters(
    codec="utf-8",
    exclude_categories=("Cs",),
    exclude_characters="\ufffe\uffff",
).filter(lambda c: c in "\t\n\r" or ord(c) >= 0x20)
field_text = st.text(xml_char, max_size=12).map(lambda s: s.strip(" \t\r\n")).filter(lambda s: "\r" not in s)


@st.composite
def notifications(draw):
    present = draw(st.lists(st.sampled_from(VERBATIM), unique=True, min_size=1))
    fields = {tag: draw(field_text) for tag in present}
    shuffled = draw(st.booleans())
    order = draw(st.permutations(present)) if shuffled else [t for t in FIELD_TAGS if t in present]
    return fields, order


def _serialise(fields, order, declaration: bool) -> bytes:
    root = etree.Element("POSTBACK")
    for tag in order:
        etree.SubElement(root, tag).text = fields[tag]
    return etree.tostring(root, xml_declaration=declaration, encoding="UTF-8")


def _expected(fields):
    return {TAG_COLUMNS[t]: (v if v else None) for t, v in fields.items()}


def _values(frame, names):
    row = frame.iloc[0]
    return {name: (None if pd.isna(row[name]) else row[name]) for name in names}


@SETTINGS
@given(notifications(), st.booleans())
def test_generated_notifications_round_trip_through_bodies_and_logs(notification, declaration):
    fields, order = notification
    body = _serialise(fields, order, declaration)
    expected = _expected(fields)
    frame = events_from_bodies([body], on_bad_lines="error")
    assert _values(frame, expected) == expected
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "r.log"
        log.write_bytes(HEADER + encode_record(body, "-", "2026-03-02T14:00:00.000000Z"))
        logged = read_postbacks(log, on_bad_lines="error")
    assert _values(logged, expected) == expected
    assert logged["line"].tolist() == [2]


SEED = (
    b"<?xml version='1.0' encoding='UTF-8'?>\n<POSTBACK><ORIGIN>MMS_MT</ORIGIN><CODE>N102</CODE>"
    b"<STATUS>Message Sent/Delivered</STATUS><TO>17743199144</TO><TRACKINGID>TU1TXzE=</TRACKINGID>"
    b"<SPID>0001100</SPID><TIMESTAMP>2026-03-02T09:00:00-05</TIMESTAMP><HANDSET>Pixel 8</HANDSET></POSTBACK>"
)
NASTY = [b"<", b">", b"&", b"&amp;", b"&#233;", b"&#0;", b"]]>", b"/", b"'", b'"', b" ", b"\t", b"\n", b"\r",
         b"\x00", b"\x7f", b"\xc3\xa9", b"\xff", b"\xef\xbf\xbe", b"\xef\xbf\xbd", b"<!--x-->", b"<![CDATA[x]]>",
         b"<X>", b"</X>", b"<TO>", b"</TO>", b"?>", b"<?", b"\\", b"xmlns:xsi=\"u\" ", b"=", b"POSTBACK", b"encoding='latin-1'"]


BENIGN = st.text("abcXYZ09 -/.:+", min_size=1, max_size=4).map(str.encode)


@st.composite
def mutated_seeds(draw):
    """The sandbox's document with a few byte-level mutations."""
    data = bytearray(SEED)
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(data)))
        action = draw(st.sampled_from(["insert", "insert", "delete", "replace"]))
        piece = draw(st.sampled_from(NASTY) | BENIGN | st.binary(min_size=1, max_size=3))
        if action == "insert":
            data[at:at] = piece
        elif action == "delete":
            del data[at : at + draw(st.integers(1, 12))]
        else:
            data[at : at + len(piece)] = piece
    return bytes(data)


@st.composite
def raw_templates(draw):
    """Flat documents whose element text is raw (unescaped) bytes from a nasty alphabet."""
    tags = draw(st.lists(st.sampled_from(FIELD_TAGS), min_size=1, max_size=5))
    if draw(st.booleans()):  # the shapes the fast paths take: the documented order, or the old one
        order = draw(st.sampled_from([FIELD_TAGS, OLD_ORDER]))
        tags = sorted(set(tags), key=order.index)
    inner = b"".join(
        b"<%s>%s</%s>" % (t.encode(), b"".join(draw(st.lists(st.sampled_from(NASTY) | BENIGN, max_size=3))), t.encode())
        for t in tags
    )
    head = draw(st.sampled_from([b"", b"<?xml version='1.0' encoding='UTF-8'?>\n", b'<?xml version="1.0"?>',
                                 b"<?xml version='1.0' encoding='latin-1'?>", b"\xef\xbb\xbf"]))
    root = draw(st.sampled_from([b"<POSTBACK>", b'<POSTBACK xmlns:xsi="a" xsi:noNamespaceSchemaLocation="b">',
                                 b'<POSTBACK xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:noNamespaceSchemaLocation="x.xsd">',
                                 b"<POSTBACK >", b"<NOTIFICATION>"]))
    return head + root + inner + b"</POSTBACK>"


def mutated_documents():
    return st.one_of(mutated_seeds(), raw_templates())


def _lxml_fields(body: bytes):
    """lxml's reading of one document, or None when strict lxml rejects it (a
    document only the narrow repair reads counts as rejected: the fast path
    must never take it)."""
    try:
        parsed = parse_xml_document(body)
    except BadRecord:
        return None
    if parsed.repairs:
        return None
    if len(parsed.notifications) != 1:
        return parsed.notifications, "bundle"
    return parsed.notifications[0].fields, parsed.notifications[0].extra


@SETTINGS
@given(mutated_documents())
def test_document_fast_path_implies_lxml_accepts_and_agrees(body):
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return
    fast = document_fields(text)
    if fast is None:
        return
    slow = _lxml_fields(body)
    assert slow is not None, f"fast path accepted what lxml rejects: {body!r}"
    assert slow[1] is None and fast == slow[0]


@SETTINGS
@given(mutated_documents(), st.text(st.sampled_from("0123456789.:<>a "), max_size=8))
def test_log_fast_path_implies_lxml_accepts_and_agrees(body, remote):
    line = encode_record(body, remote, "2026-03-02T14:00:00.000000Z")
    scan = scan_log_buffer(HEADER + line)
    assert not scan.proven[0]  # the header is never a record
    if not scan.proven[1]:
        return
    slow = _lxml_fields(body)
    assert slow is not None, f"log fast path accepted what lxml rejects: {body!r}"
    assert scan.received_at.to_pylist()[0] == pd.Timestamp("2026-03-02T14:00:00Z")
    assert slow[1] is None and _fast_fields(scan, 0, slow[0]) == slow[0]


def _fast_fields(scan, row, lxml_fields):
    """A fast row's 13 texts; its TIMESTAMP (read positionally, or left to the
    general parser) must be lxml's text parsed."""
    texts = [scan.table.column(tag)[row].as_py() or "" for tag in FIELD_TAGS]
    lxml_text = lxml_fields[FIELD_TAGS.index("TIMESTAMP")]
    expected = parse_timestamps(pa.array([lxml_text or None], pa.string()))[0][0].as_py()
    if row in scan.other_stamps:
        other = scan.other_stamp_texts[int(np.flatnonzero(scan.other_stamps == row)[0])].as_py()
        assert other == lxml_text and scan.timestamp[row].as_py() is None
    else:
        assert scan.timestamp[row].as_py() == expected
    texts[FIELD_TAGS.index("TIMESTAMP")] = lxml_text
    return tuple(texts)


@SETTINGS
@given(st.lists(st.tuples(mutated_documents(), st.text(st.sampled_from("0123456789.:<>a "), max_size=4)), min_size=1, max_size=6))
def test_log_fast_path_on_mixed_buffers_agrees_line_by_line(records):
    """Several lines in one buffer: proven and unproven lines interleaved, each
    proven line's fields are its own, trimmed like lxml's."""
    lines = [encode_record(body, remote, "2026-03-02T14:00:00.000000Z") for body, remote in records]
    scan = scan_log_buffer(HEADER + b"".join(lines))
    assert scan.table.num_rows == len(scan.received_at) == len(scan.timestamp) == int(scan.proven.sum())
    row = 0
    for (body, _), proven in zip(records, scan.proven[1:]):
        if not proven:
            continue
        slow = _lxml_fields(body)
        assert slow is not None and slow[1] is None
        assert _fast_fields(scan, row, slow[0]) == slow[0]
        row += 1


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=600), st.sampled_from([b"", HEADER, b"<?xml version='1.0'?>", b"xml="]))
def test_arbitrary_bytes_never_crash(blob, prefix):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "blob.dat"
        path.write_bytes(prefix + blob)
        frame = read_postbacks(path, on_bad_lines="skip")
    assert list(frame.columns)[: len(col.EVENT_COLUMNS) - 1] == list(col.EVENT_COLUMNS[:-1])
    bodies = events_from_bodies([blob, prefix + blob], on_bad_lines="skip")
    assert len(bodies) <= 2


def _stamp_lines(received: list[str], stamps: list[str]) -> bytes:
    return b"".join(
        b"%s\t-\t<POSTBACK><TIMESTAMP>%s</TIMESTAMP></POSTBACK>\n" % (r.encode(), t.encode()) for r, t in zip(received, stamps)
    )


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 9999), st.integers(0, 13), st.integers(0, 32), st.integers(0, 25),
                  st.integers(0, 60), st.integers(0, 60), st.integers(0, 999_999)),
        min_size=1, max_size=20,
    )
)
def test_positional_received_at_matches_iso_parsing(parts):
    texts = [f"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}.{us:06d}Z" for y, mo, d, h, mi, s, us in parts]
    scan = scan_log_buffer(_stamp_lines(texts, ["x"] * len(texts)))
    assert scan.proven.all()
    # the slow path's parser (Arrow's ISO-8601 cast) is the reference
    expected = parse_timestamps(pa.array(texts, pa.string()))[0]
    assert scan.received_at.cast(pa.int64()).to_pylist() == expected.cast(pa.int64()).to_pylist()


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 9999), st.integers(0, 13), st.integers(0, 32), st.integers(0, 25),
                  st.integers(0, 60), st.integers(0, 60), st.sampled_from(["", "Z", "+", "-", "."]),
                  st.integers(0, 25), st.one_of(st.none(), st.integers(0, 61)), st.sampled_from("TT ")),
        min_size=1, max_size=20,
    )
)
def test_positional_timestamps_match_the_general_parser(parts):
    """TIMESTAMP texts the kernel reads are Arrow's values; the rest it leaves to the general parser."""
    texts = []
    for y, mo, d, h, mi, s, zone, zh, zm, sep in parts:
        text = f"{y:04d}-{mo:02d}-{d:02d}{sep}{h:02d}:{mi:02d}:{s:02d}{zone}"
        if zone in ("+", "-", "."):
            text += f"{zh:02d}" + (f":{zm:02d}" if zm is not None else "")
        texts.append(text)
    scan = scan_log_buffer(_stamp_lines(["2026-03-02T14:00:00.000000Z"] * len(texts), texts))
    assert scan.proven.all()
    expected, bad = parse_timestamps(pa.array(texts, pa.string()))
    expected = expected.cast(pa.int64()).to_pylist()
    read = scan.timestamp.cast(pa.int64()).to_pylist()
    others = set(scan.other_stamps.tolist())
    assert scan.other_stamp_texts.to_pylist() == [texts[i] for i in sorted(others)]
    for i, text in enumerate(texts):
        if i in others:
            assert read[i] is None
        else:
            assert read[i] == expected[i], text
            assert len(text) in (19, 20, 22, 25)
    assert set(bad.tolist()) <= others  # what Arrow cannot read, the kernel did not read either
