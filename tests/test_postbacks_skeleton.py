"""The pure path proves skeletons, not records: it must decide exactly as RE2 on whole records.

:func:`skycore_lab.postbacks.vectorscan.scan` removes each field's plain
text (the lemma in the module docstring of :mod:`.vectorscan`), matches the
distinct skeletons with RE2 and checks a log line's prefix positionally.
Hypothesis builds records from the grammar's pieces and hostile ones —
entities, ``<``, ``]]>``, non-ASCII, controls, text between elements,
broken tags, prefixes — and compares the pure proof with RE2 run on each
whole record (:data:`.vectorscan.PATTERNS`), record by record, several
records per buffer and with bytes outside every record. The positional
TIMESTAMP reading is held to the compiled kernel's where numba is loaded.
"""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from skycore_lab.postbacks import kernel, vectorscan
from skycore_lab.postbacks.kernel import MODE_BODY, MODE_DOCUMENT, MODE_LOG
from skycore_lab.postbacks.schema import FIELD_TAGS
from skycore_lab.postbacks.timestamps import NO_OFFSET

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SEED = 20260302
PREFIX = b"2026-03-02T14:00:00.000000Z\t198.51.100.7:443\t"

# Pieces of records: each first list is the grammar's, each second one hostile (entities, "<",
# "]]>", non-ASCII valid and not, controls, comments, CDATA, text between elements, near-miss tags).
TEXTS = ([b"", b"MMS_MT", b"  Message Sent ", b"a=b;c/d", b"caf\xc3\xa9 \xf0\x9f\x93\xb1", b"'", b'"', b"?"],
         [b"&", b"&amp;", b"<", b">", b"]]>", b"\\", b"\\n", b"\t", b"\r", b"\n", b"\x00", b"\x7f", b"\xc2\x85",
          b"\xef\xbf\xbe", b"\xed\xa0\x80", b"\xff", b"\xc3", b"<!--x-->", b"<![CDATA[x]]>", b"</TO>", b"<TO>"])
BETWEEN = ([b""], [b" ", b"\n", b"\r\n\t", b"x", b"&", b"\xc3\xa9", b"<!--c-->", b"\\n"])
HEADS = ([b"", b"<?xml version='1.0' encoding='UTF-8'?>", b"<?xml version='1.0' encoding='UTF-8'?>\\n",
          b'<?xml version="1.0" standalone="yes"?>'],
         [b"<?xml version='1.1'?>", b" ", b"\xef\xbb\xbf", b"<?xml version='1.0'?>\n", b"<?XML version='1.0'?>"])
ROOTS = ([b"<POSTBACK>", b'<POSTBACK xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:noNamespaceSchemaLocation="x.xsd">',
          b'<POSTBACK xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:noNamespaceSchemaLocation="\xc3\xa9">'],
         [b"<POSTBACK >", b"<NOTIFICATION>", b"<POSTBACK"])
TAGS = (list(FIELD_TAGS), ["ORIGIX", "TOO", "T", "To", "STATUS ", "/TO", "?xml", "POSTBACK", "CO<E"])
PREFIXES = ([PREFIX, b"2026-03-02T14:00:00.000000Z\t-\t", b"2026-03-02T14:00:00.000000Z\t\t",
             b"2026-03-02T14:00:00.000000Z\tcaf\xc3\xa9\xff&\\ \t"],
            [b"2026-03-02T14:00:00.000000Z\t<\t", b"2026-03-02T14:00:00.000000Z\ta>\t", b"2026-03-02T14:00:0A.000000Z\t-\t",
             b"2026-03-02 14:00:00.000000Z\t-\t", b"\t-\t", b"2026-03-02T14:00:00.000000Z\t-"])
SPACES = [b"", b" ", b"\n", b"\r\n\t"]  # between the elements of a document


@st.composite
def records(draw, log: bool):
    """One record from the grammar's pieces, each now and then a hostile one, maybe mutated at a byte."""

    def pick(pieces):
        good, bad = pieces
        return draw(st.sampled_from(bad if draw(st.integers(0, 9)) == 0 else good))

    def between():
        return pick(BETWEEN) if log or draw(st.booleans()) else draw(st.sampled_from(SPACES))

    tags = draw(st.lists(st.sampled_from(FIELD_TAGS), unique=True, max_size=5))
    if draw(st.integers(0, 3)):
        tags.sort(key=FIELD_TAGS.index)  # mostly in order
    tags = [tag if draw(st.integers(0, 9)) else draw(st.sampled_from(TAGS[1])) for tag in tags]  # a near miss
    fields = b""
    for tag in tags:
        text = b"".join(pick(TEXTS) for _ in range(draw(st.integers(0, 3))))
        end = tag if draw(st.integers(0, 9)) else pick(TAGS)  # now and then a mismatched end tag
        fields += b"<%s>%s</%s>%s" % (tag.encode(), text, end.encode(), between())
    record = pick(HEADS) + between() + pick(ROOTS) + between() + fields + b"</POSTBACK>" + between()
    if log:
        record = pick(PREFIXES) + record.replace(b"\n", b"")
    if draw(st.integers(0, 5)) == 0 and record:
        at = draw(st.integers(0, len(record) - 1))
        record = record[:at] + draw(st.sampled_from([b"<", b">", b"&", b"\t", b" ", b"x", b"\xc3\xa9", b""])) + record[at + 1 :]
    return record


def re2_verdicts(pieces: list[bytes], mode: int) -> list[bool]:
    """RE2 on each whole record: the specification the skeleton proof must meet."""
    return pc.match_substring_regex(pa.array(pieces, pa.binary()), vectorscan.PATTERNS[mode]).to_pylist()


def pure_verdicts(buffer: bytes, starts: list[int], ends: list[int], mode: int) -> list[bool]:
    scanned = vectorscan.scan(np.frombuffer(buffer, np.uint8), np.array(starts, np.int64), np.array(ends, np.int64), mode)
    return scanned[0].tolist()


def _layout(pieces: list[bytes], gaps: list[bytes]) -> tuple[bytes, list[int], list[int]]:
    buffer, starts, ends = b"", [], []
    for piece, gap in zip(pieces, gaps):
        buffer += gap
        starts.append(len(buffer))
        buffer += piece
        ends.append(len(buffer))
    return buffer, starts, ends


@pytest.mark.parametrize("mode", [MODE_LOG, MODE_DOCUMENT, MODE_BODY], ids=["log", "document", "body"])
@seed(SEED)
@SETTINGS
@given(data=st.data())
def test_the_skeleton_proof_is_re2_on_whole_records(mode, data):
    pieces = data.draw(st.lists(records(log=mode == MODE_LOG), min_size=1, max_size=6))
    # between records: nothing, a log line's LF, or bytes outside every record (comment-like, with markup)
    gaps = data.draw(st.lists(st.sampled_from([b"", b"\n", b"#<TO>x<TO>y</TO>\n", b"<CODE>a<"]),
                              min_size=len(pieces), max_size=len(pieces)))
    buffer, starts, ends = _layout(pieces, gaps)
    assert pure_verdicts(buffer, starts, ends, mode) == re2_verdicts(pieces, mode)


def test_plain_bytes_are_the_grammars_text_bytes():
    """A byte is plain exactly when the grammar takes it alone as element text, and non_plain finds the others."""
    for mode in (MODE_DOCUMENT, MODE_BODY):
        pieces = [b"<POSTBACK><TO>a%sb</TO></POSTBACK>" % bytes([byte]) for byte in range(256)]
        assert re2_verdicts(pieces, mode) == vectorscan.PLAIN.tolist()
    every = np.arange(256, dtype=np.uint8)
    assert vectorscan.non_plain(every)[0].tolist() == np.flatnonzero(~vectorscan.PLAIN).tolist()
    spread = np.tile(every, 3000)  # more than one block of the byte pass
    assert vectorscan.non_plain(spread)[0].tolist() == np.flatnonzero(~vectorscan.PLAIN[spread]).tolist()


def test_which_texts_leave_the_skeleton():
    """Only a field's plain text goes; markup, text between elements and non-plain text stay."""
    record = (b"<?xml version='1.0'?>\n<POSTBACK> <ORIGIN>MMS_MT</ORIGIN>x<CODE></CODE><STATUS>caf\xc3\xa9</STATUS>"
              b"<TO>1&amp;2</TO><TOO>text</TOO><SPID> 11 </SPID></POSTBACK>")
    data = np.frombuffer(record, np.uint8)
    pos, lo, hi = vectorscan.non_plain(data, np.array([0]), np.array([len(record)]))
    skeleton, (_, field, start, stop) = vectorscan.skeletons(
        data, np.array([0]), np.array([len(record)]), pos, data[pos], lo, hi
    )
    assert skeleton.to_pylist() == [
        b"<?xml version='1.0'?>\n<POSTBACK> <ORIGIN></ORIGIN>x<CODE></CODE><STATUS>caf\xc3\xa9</STATUS>"
        b"<TO>1&amp;2</TO><TOO>text</TOO><SPID></SPID></POSTBACK>"
    ]
    assert [FIELD_TAGS[f] for f in field] == ["ORIGIN", "SPID"]
    assert [record[a:b] for a, b in zip(start, stop)] == [b"MMS_MT", b" 11 "]


def test_non_ascii_text_is_cut_by_its_marks():
    """Records whose text stays in the skeleton (non-ASCII) get their fields from their marks."""
    body = "<POSTBACK><ORIGIN>MMS_MT</ORIGIN><STATUS> caf\u00e9 \U0001f4f1 </STATUS><TO>1</TO></POSTBACK>".encode()
    buffer = b"".join(PREFIX + b + b"\n" for b in (body, body.replace(b"1</TO>", b"2</TO>"), b"<TO>3</TO>"))
    data = np.frombuffer(buffer, np.uint8)
    ends = np.flatnonzero(data == 10)
    scan = kernel.scan_records(buffer, np.r_[0, ends[:-1] + 1], ends, MODE_LOG, engine="numpy")
    assert scan.proven.tolist() == [True, True, False]
    assert scan.table.column("STATUS").to_pylist() == ["caf\u00e9 \U0001f4f1"] * 2
    assert scan.table.column("TO").to_pylist() == ["1", "2"]


def test_records_must_be_in_order_and_disjoint():
    data = np.frombuffer(b"<POSTBACK></POSTBACK>" * 2, np.uint8)
    with pytest.raises(ValueError, match="in order"):
        vectorscan.scan(data, np.array([21, 0]), np.array([42, 21]), MODE_DOCUMENT)


# --- TIMESTAMP read positionally, as the kernel reads it -----------------------------------------
def _stamps(texts: list[bytes]):
    buffer = b"".join(b"<T>%s</T>" % t for t in texts) + b" " * 30
    first = np.cumsum([0] + [len(t) + 7 for t in texts[:-1]]).astype(np.int64) + 3
    return vectorscan.notification_stamps(np.frombuffer(buffer, np.uint8), first, first + [len(t) for t in texts])


def test_common_stamp_shapes_are_read():
    stamp, kind, offset = _stamps([b"2026-03-02T09:00:00-05:00", b"2026-03-02T09:00:00+0530", b"2026-03-02T14:00:00Z",
                                   b"2026-03-02T14:00:00", b"2026-03-02T19:30:00+05:30", b"2026-02-30T09:00:00Z", b""])
    utc = int(datetime(2026, 3, 2, 14, tzinfo=timezone.utc).timestamp()) * 1_000_000
    assert kind.tolist() == [kernel.STAMP_READ, kernel.STAMP_OTHER, kernel.STAMP_READ, kernel.STAMP_NAIVE,
                             kernel.STAMP_READ, kernel.STAMP_OTHER, 0]
    assert stamp.tolist() == [utc, 0, utc, utc, utc, 0, 0]
    assert offset.tolist() == [-300, NO_OFFSET, 0, NO_OFFSET, 330, NO_OFFSET, NO_OFFSET]


STAMP_TEXTS = st.builds(
    lambda date, sep, time, tail, junk: (date + sep + time + tail)[: len(date + sep + time + tail) - junk],
    st.sampled_from([b"2026-03-02", b"2024-02-29", b"2023-02-29", b"0000-01-01", b"9999-12-31", b"2026-13-01",
                     b"2026-04-31", b"2026-00-10", b"20260302", b"2026-0A-02"]),
    st.sampled_from([b"T", b" ", b"t"]),
    st.sampled_from([b"09:00:00", b"23:59:59", b"24:00:00", b"12:60:00", b"12:00:60", b"1:00:00", b"09:00:00.123"]),
    st.sampled_from([b"", b"Z", b"z", b"-05", b"+05:30", b"-05:00", b"+0530", b"+24:00", b"-05:60", b"+5", b"X05",
                     b"-05-00", b"+AB", b"Z ", b"+05:3x"]),
    st.integers(0, 2),
)


@pytest.mark.skipif(kernel.ENGINE != "numba", reason="numba is not loaded: nothing to compare with")
@seed(SEED)
@SETTINGS
@given(texts=st.lists(STAMP_TEXTS, min_size=1, max_size=8))
def test_stamps_are_read_as_the_kernel_reads_them(texts):
    buffer = b"".join(b"<T>%s</T>" % t for t in texts) + b" " * 30
    data = np.frombuffer(buffer, np.uint8)
    first = np.cumsum([0] + [len(t) + 7 for t in texts[:-1]]).astype(np.int64) + 3
    last = first + np.array([len(t) for t in texts])
    pure = vectorscan.notification_stamps(data, first, last)
    for i, text in enumerate(texts):
        expected = kernel._notification_stamp(data, first[i], last[i]) if len(text) else (0, 0, 0)
        value, verdict, minutes = expected
        got = (int(pure[0][i]), int(pure[1][i]), int(pure[2][i]))
        want = (value, verdict, minutes if verdict == kernel.STAMP_READ else NO_OFFSET)
        assert got == want, text
