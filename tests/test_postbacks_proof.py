"""The compiled proof of log lines is the grammar written as RE2, line for line.

:func:`skycore_lab.postbacks.kernel.scan_log_buffer` decides the lines of a
receiver log with a numba kernel; :data:`~skycore_lab.postbacks.grammar.LOG_LINE_RE2`
writes the same grammar down as one regular expression. Hypothesis mutates
whole lines — stamp, tabs, remote, declaration, markup and text — and
compares the two line by line: on valid UTF-8 they must agree exactly. (That
what the kernel proves, lxml reads to the same fields is checked in
``test_postbacks_fastpath.py``.)
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_postbacks_fastpath import BENIGN, NASTY, SEED, mutated_documents

from skycore_lab.postbacks.grammar import LOG_LINE_RE2
from skycore_lab.postbacks.kernel import scan_log_buffer
from skycore_lab.postbacks.schema import FIELD_TAGS
from skycore_lab.postbacks.logformat import HEADER, encode_record

STAMP = "2026-03-02T14:00:00.000000Z"
SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DECLARATIONS = (
    b"<?xml version='1.0' encoding='UTF-8'?>",
    b'<?xml version="1.0" encoding="UTF-8"?>',
    b'<?xml version="1.0"?>',
    b"<?xml version='1.0' encoding=\"utf-8\" standalone='yes' ?>",
)


def kernel_proof(buffer: bytes) -> list[bool]:
    return scan_log_buffer(buffer).proven.tolist()


def re2_proof(line: bytes) -> bool:
    """RE2's verdict on one valid UTF-8 line."""
    return bool(pc.match_substring_regex(pa.array([line.decode("utf-8")], pa.string()), LOG_LINE_RE2)[0].as_py())


def _valid_utf8(line: bytes) -> bool:
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


# text the grammar allows, and some it does not (controls, C1, U+FFFE, markup, escapes)
_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=6).filter(lambda t: "\n" not in t)


@st.composite
def grammar_documents(draw):
    """Documents from the grammar itself: declaration variants, schema attributes,
    fields in order, text from most of Unicode (so some must be refused)."""
    quote = draw(st.sampled_from("'\""))
    declaration = draw(st.sampled_from([b"", *DECLARATIONS, b"<?xml version=%s1.0%s ?>" % (quote.encode(), quote.encode())]))
    separator = draw(st.sampled_from([b"", b"\n", b"\r\n"])) if declaration else b""
    root = draw(st.sampled_from([b"<POSTBACK>", b'<POSTBACK xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
                                 b'xsi:noNamespaceSchemaLocation="%s">' % draw(_TEXT).encode()]))
    tags = draw(st.lists(st.sampled_from(FIELD_TAGS), unique=True, max_size=6))
    if draw(st.integers(0, 3)):
        tags.sort(key=FIELD_TAGS.index)  # mostly the documented order
    fields = b"".join(b"<%s>%s</%s>" % (t.encode(), draw(_TEXT).encode(), t.encode()) for t in tags)
    return declaration + separator + root + fields + b"</POSTBACK>"


@st.composite
def mutated_lines(draw):
    """A log line of a (possibly mutated) document, then mutated anywhere, stamp and tabs included."""
    remote = draw(st.sampled_from(["-", "198.51.100.7:443", "", "caf\u00e9"]))
    line = bytearray(encode_record(draw(mutated_documents() | grammar_documents()), remote, STAMP))
    for _ in range(draw(st.integers(0, 2))):
        at = draw(st.integers(0, len(line) - 1))  # keep the final LF: one line stays one line
        piece = draw(st.sampled_from([*NASTY, b"\t", b"9", b"Z", b"\\n", b"\\r\\n", b"\\", b"\xc2\x85", b"\xed\xa0\x80"]) | BENIGN)
        if draw(st.booleans()):
            line[at:at] = piece
        else:
            line[at : at + len(piece)] = piece
    return bytes(line).replace(b"\n", b" ")[:-1] + b"\n"


@SETTINGS
@given(st.lists(mutated_lines(), min_size=1, max_size=6))
def test_kernel_proves_exactly_what_re2_matches(lines):
    buffer = HEADER + b"".join(lines)
    proven = kernel_proof(buffer)
    assert not proven[0]  # the header
    assert len(proven) == len(lines) + 1
    for line, by_kernel in zip(lines, proven[1:]):
        if _valid_utf8(line):
            assert by_kernel == re2_proof(line), f"kernel and RE2 disagree on {line!r}"
        elif by_kernel:
            # only the remote, which is not parsed, may hold bytes that are not UTF-8
            stamp, _, body = line.split(b"\t", 2)
            assert re2_proof(b"%s\t-\t%s" % (stamp, body)), f"kernel proved {line!r}"


@pytest.mark.parametrize("declaration", [b"", *DECLARATIONS])
@pytest.mark.parametrize("separator", [b"", b"\n", b"\r\n"])
def test_kernel_proves_the_common_shapes(declaration, separator):
    body = SEED.split(b"\n", 1)[1]
    line = encode_record(declaration + (separator if declaration else b"") + body, "203.0.113.7:53122", STAMP)
    short = encode_record(b"<POSTBACK></POSTBACK>", "", STAMP)
    schema = encode_record(
        b'<POSTBACK xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:noNamespaceSchemaLocation="postback.xsd">'
        b"<TO>1</TO></POSTBACK>",
        "-",
        STAMP,
    )
    accented = encode_record(SEED.replace(b"Pixel 8", b"Pix\xc3\xa9l \xe2\x80\x93 \xf0\x9f\x93\xb1"), "-", STAMP)
    assert kernel_proof(HEADER + line + short + schema + accented + line) == [False, True, True, True, True, True]


@pytest.mark.parametrize(
    "line",
    [
        b"2026-03-02T14:00:00.000000Z\t-\t<POSTBACK><TO>1&amp;</TO></POSTBACK>\n",  # an entity: lxml decodes it
        b"2026-03-02T14:00:00.000000Z\t-\t<POSTBACK><TO>1</TO><CODE>N1</CODE></POSTBACK>\n",  # order
        b"2026-03-02T14:00:00.000000Z\t-\t<POSTBACK><TO>1</TO><TO>2</TO></POSTBACK>\n",  # a repeat
        b"2026-03-02T14:00:00.000000Z\t-\t<POSTBACK><TO>1</TO> </POSTBACK>\n",  # space between markups
        b"2026-03-02T14:00:00.000000Z\t-\t<POSTBACK><TO>a>b</TO></POSTBACK>\n",  # ">" in text
        b"2026-03-02T14:00:00.000000Z\t-\t<POSTBACK><TOO>1</TOO></POSTBACK>\n",  # unknown element
        b"2026-03-02T14:00:00.000000Z\t-\t<POSTBACK><TO>1</SPID></POSTBACK>\n",  # mismatched end tag
        b"2026-03-02T14:00:00.000000Z\t-\t<POSTBACK><TO>1</TO></POSTBACK>x\n",  # trailing text
        b"2026-03-02T14:00:00.000000Z\t-\t<POSTBACK><TO>1</TO></POSTBACK>\r\n",  # CR
        b"2026-03-02T14:00:00.000000Z\t-\t<?xml version='1.0' encoding='latin-1'?><POSTBACK></POSTBACK>\n",
        b"2026-03-02T14:00:00.000000Z\t-\t<?xml version='1.1'?><POSTBACK></POSTBACK>\n",
        b"2026-03-02T14:00:00.000000Z\t-\t<?xml version='1.0\"?><POSTBACK></POSTBACK>\n",  # quotes differ
        b"2026-03-02T14:00:00.000000Z\t-\t<POSTBACK></POSTBACK><POSTBACK></POSTBACK>\n",  # two roots
        b"2026-03-02T14:00:00.000000Z\t-\t<POSTBACK xmlns:xsi=\"http://example.com/\" xsi:noNamespaceSchemaLocation=\"x\"></POSTBACK>\n",
        b"2026-03-02T14:00:00.000000Z\t\t-\t<POSTBACK></POSTBACK>\n",  # a tab in the remote
        b"2026-03-02T14:00:00.000000Z\t<-\t<POSTBACK></POSTBACK>\n",  # markup in the remote
        b"2026-03-02T14:00:0A.000000Z\t-\t<POSTBACK></POSTBACK>\n",  # stamp
        b"2026-03<02T14:00:00.000000Z\t-\t<POSTBACK></POSTBACK>\n",  # a stamp separator
        b"2026-03-02T14:00:00.000000Z -\t<POSTBACK></POSTBACK>\n",  # first tab
        b"2026-03-02T14:00:00.000000Z\t-\t<POSTBACK><TO>1\t</TO></POSTBACK>\n",  # control in text
        b"2026-03-02T14:00:00.000000Z\t-\t<POSTBACK><TO>\xc2\x85</TO></POSTBACK>\n",  # C1 control (NEL)
        b"2026-03-02T14:00:00.000000Z\t-\t<POSTBACK><TO>\xef\xbf\xbe</TO></POSTBACK>\n",  # U+FFFE
        b"2026-03-02T14:00:00.000000Z\t-\t<POSTBACK><TO>\xed\xa0\x80</TO></POSTBACK>\n",  # a surrogate
        b"2026-03-02T14:00:00.000000Z\t-\t<POSTBACK><TO>\xc0\xae</TO></POSTBACK>\n",  # overlong
        b"2026-03-02T14:00:00.000000Z\t-\t<POSTBACK><TO>\xc3</TO></POSTBACK>\n",  # truncated sequence
        b"2026-03-02T14:00:00.000000Z\t-\t<POSTBACK><TO>1\\\\</TO></POSTBACK>\n",  # an escaped backslash
        b"2026-03-02T14:00:00.000000Z\t-\t<POSTBACK><TO>1</TO></POSTBACK\n",  # cut short
    ],
)
def test_kernel_leaves_the_unusual_to_lxml(line):
    assert kernel_proof(HEADER + line) == [False, False]


def test_fields_are_cut_trimmed_and_absent_ones_are_null():
    body = b"<POSTBACK><ORIGIN>MMS_MT</ORIGIN><STATUS>  Message Sent </STATUS><TO></TO><HANDSET>   </HANDSET></POSTBACK>"
    scan = scan_log_buffer(HEADER + encode_record(body, "-", STAMP) + b"junk\n" + encode_record(SEED, "-", STAMP))
    assert scan.proven.tolist() == [False, True, False, True]
    first, second = scan.table.to_pylist()
    assert first["ORIGIN"] == "MMS_MT" and first["STATUS"] == "Message Sent"
    assert all(first[tag] is None for tag in FIELD_TAGS if tag not in ("ORIGIN", "STATUS"))
    assert second["HANDSET"] == "Pixel 8" and second["TRACKINGID"] == "TU1TXzE="
    assert scan.line_starts.tolist()[2] == len(HEADER) + len(encode_record(body, "-", STAMP))
