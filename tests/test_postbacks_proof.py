"""The numpy proof of log lines is a strict subset of the RE2 expression.

:func:`skycore_lab._fastparse.prove_lines` decides most lines of a receiver
log without RE2; whatever it proves, RE2 must prove too (and RE2's proofs
are checked against lxml in ``test_postbacks_fastpath.py``). Hypothesis
mutates whole lines — stamp, tabs, remote, declaration, markup and text —
and compares the two line by line.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_postbacks_fastpath import BENIGN, NASTY, SEED, mutated_documents

from skycore_lab._fastparse import (
    DECLARATIONS,
    FIELD_TAGS,
    LOG_LINE_RE2,
    LOG_LINE_RE2_ASCII,
    MARKUP_CLOSE,
    MARKUP_DECL,
    MARKUP_END,
    MARKUP_OPEN,
    MARKUP_START,
    fast_lines,
    markup_kinds,
    prove_lines,
    scan_markup,
)
from skycore_lab._logformat import HEADER, encode_record

STAMP = "2026-03-02T14:00:00.000000Z"
SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _lines(buffer: bytes):
    data = np.frombuffer(buffer, dtype=np.uint8)
    ends = np.flatnonzero(data == 10)
    starts = np.zeros(len(ends), dtype=np.int64)
    starts[1:] = ends[:-1] + 1
    return data, starts, ends


def numpy_proof(buffer: bytes) -> np.ndarray:
    data, starts, ends = _lines(buffer)
    return prove_lines(data, starts, ends, *scan_markup(data))


def re2_proof(buffer: bytes) -> list[bool]:
    """RE2's verdict on each line alone (UTF-8 lines with the full pattern)."""
    verdicts = []
    for line in buffer.splitlines(keepends=True):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            pattern, value = LOG_LINE_RE2_ASCII, pa.array([line], pa.binary())
        else:
            pattern, value = LOG_LINE_RE2, pa.array([line.decode("utf-8")], pa.string())
        verdicts.append(bool(pc.match_substring_regex(value, pattern)[0].as_py()))
    return verdicts


@st.composite
def mutated_lines(draw):
    """A log line of a (possibly mutated) document, then mutated anywhere, stamp and tabs included."""
    line = bytearray(encode_record(draw(mutated_documents()), draw(st.sampled_from(["-", "198.51.100.7:443", ""])), STAMP))
    for _ in range(draw(st.integers(0, 2))):
        at = draw(st.integers(0, len(line) - 1))  # keep the final LF: one line stays one line
        piece = draw(st.sampled_from([*NASTY, b"\t", b"9", b"Z", b"\\n", b"\\r\\n", b"\\"]) | BENIGN)
        if draw(st.booleans()):
            line[at:at] = piece
        else:
            line[at : at + len(piece)] = piece
    return bytes(line).replace(b"\n", b" ")[:-1] + b"\n"


@SETTINGS
@given(st.lists(mutated_lines(), min_size=1, max_size=6))
def test_numpy_proof_implies_re2_proof(lines):
    buffer = HEADER + b"".join(lines)
    proven = numpy_proof(buffer)
    assert not proven[0]  # the header
    for line, by_numpy, by_re2 in zip(buffer.splitlines(keepends=True), proven, re2_proof(buffer)):
        assert by_re2 or not by_numpy, f"numpy proved a line RE2 rejects: {line!r}"


@pytest.mark.parametrize("declaration", [b"", *DECLARATIONS])
@pytest.mark.parametrize("separator", [b"", b"\n", b"\r\n"])
def test_numpy_proves_the_common_shapes(declaration, separator):
    body = SEED.split(b"\n", 1)[1]
    line = encode_record(declaration + (separator if declaration else b"") + body, "203.0.113.7:53122", STAMP)
    short = encode_record(b"<POSTBACK></POSTBACK>", "", STAMP)
    proven = numpy_proof(HEADER + line + short + line)
    assert proven.tolist() == [False, True, True, True]


@pytest.mark.parametrize(
    "line",
    [
        b"2026-03-02T14:00:00.000000Z\t-\t<POSTBACK><TO>1&amp;</TO></POSTBACK>\n",  # an entity: lxml decodes it
        b"2026-03-02T14:00:00.000000Z\t-\t<POSTBACK><TO>caf\xc3\xa9</TO></POSTBACK>\n",  # non-ASCII: RE2's
        b"2026-03-02T14:00:00.000000Z\t-\t<POSTBACK><TO>1</TO><CODE>N1</CODE></POSTBACK>\n",  # order
        b"2026-03-02T14:00:00.000000Z\t-\t<POSTBACK><TO>1</TO> </POSTBACK>\n",  # space between markups
        b"2026-03-02T14:00:00.000000Z\t-\t<POSTBACK><TO>a>b</TO></POSTBACK>\n",  # ">" in text
        b"2026-03-02T14:00:00.000000Z\t-\t<POSTBACK><TOO>1</TOO></POSTBACK>\n",  # unknown element
        b"2026-03-02T14:00:00.000000Z\t-\t<POSTBACK><TO>1</TO></POSTBACK>x\n",  # trailing text
        b"2026-03-02T14:00:00.000000Z\t-\t<POSTBACK><TO>1</TO></POSTBACK>\r\n",  # CR
        b"2026-03-02T14:00:00.000000Z\t-\t<?xml version='1.0' encoding='latin-1'?><POSTBACK></POSTBACK>\n",
        b"2026-03-02T14:00:00.000000Z\t-\t<POSTBACK></POSTBACK><POSTBACK></POSTBACK>\n",  # two roots
        b"2026-03-02T14:00:00.000000Z\t\t-\t<POSTBACK></POSTBACK>\n",  # a tab in the remote
        b"2026-03-02T14:00:0A.000000Z\t-\t<POSTBACK></POSTBACK>\n",  # stamp
        b"2026-03-02T14:00:00.000000Z -\t<POSTBACK></POSTBACK>\n",  # first tab
        b"2026-03-02T14:00:00.000000Z -\t<POSTBACK><TO>&</TO></POSTBACK>\n",  # ... made up for by a bad byte
        b"2026-03-02T14:00:00.000000Z\t-\t<POSTBACK><TO>1\t</TO></POSTBACK>\n",  # control in text
    ],
)
def test_numpy_leaves_the_unusual_to_re2_or_lxml(line):
    assert numpy_proof(HEADER + line).tolist() == [False, False]


def test_every_markup_is_classified_exactly():
    markups = [(MARKUP_OPEN, b"<POSTBACK>"), (MARKUP_CLOSE, b"</POSTBACK>"), (MARKUP_DECL, DECLARATIONS[0])]
    for index, tag in enumerate(FIELD_TAGS):
        markups += [(MARKUP_START + index, b"<%s>" % tag.encode()), (MARKUP_END + index, b"</%s>" % tag.encode())]
    buffer = b"".join(markup for _, markup in markups) + b"\n"  # the last one reads past the end: zero-padded
    data = np.frombuffer(buffer, dtype=np.uint8)
    kinds, exact = markup_kinds(data, np.flatnonzero(data == 60))
    assert kinds.tolist() == [kind for kind, _ in markups]
    assert exact.all()
    wrong = np.frombuffer(buffer.replace(b"<TO>", b"<TQ>").replace(b"</SPID>", b"</SPIT>"), dtype=np.uint8)
    assert markup_kinds(wrong, np.flatnonzero(wrong == 60))[1].sum() == len(markups) - 2


def test_fast_lines_gives_numpy_proofs_and_re2_the_rest():
    plain = encode_record(SEED, "-", STAMP)
    accented = encode_record(SEED.replace(b"Pixel 8", b"Pix\xc3\xa9l"), "-", STAMP)
    buffer = HEADER + plain + accented + b"not a record\n"
    data, _, ends = _lines(buffer)
    assert numpy_proof(buffer).tolist() == [False, True, False, False]
    assert fast_lines(buffer, ends).tolist() == [False, True, True, False]
