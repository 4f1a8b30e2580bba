"""Every stored format on the validated fast path (issue 14): never more than lxml accepts.

* Record level, per kernel mode (documents cut out of a file, bodies decoded
  out of form lines): whatever :func:`scan_records` proves, lxml accepts and
  reads to the same fields — on both paths, the compiled kernel and the pure
  numpy/RE2 one, which must also agree with each other record by record.
* File level, per format (concatenated, raw bodies, pretty, CRLF, BOM, form
  lines, a directory, gzip): ``read_postbacks`` gives exactly the rows a
  reference built apart from the fast path gives — the documents split with
  :func:`split_documents` and each parsed by lxml alone (form lines decoded
  by :func:`urllib.parse.parse_qsl`) — so a document lxml rejects never
  becomes a row, and none is lost.
"""

from __future__ import annotations

import gzip
import tempfile
from pathlib import Path
from urllib.parse import parse_qsl, quote_plus, unquote_to_bytes

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_postbacks_fastpath import SEED, _fast_fields, _lxml_fields, mutated_documents

from skycore_lab.postbacks import read_postbacks
from skycore_lab.postbacks.documents import BadRecord, parse_xml_document, split_documents
from skycore_lab.postbacks.kernel import ENGINE, MODE_BODY, MODE_DOCUMENT, scan_records
from skycore_lab.postbacks.vectorscan import document_ends
from skycore_lab.postbacks.schema import FIELD_TAGS, TAG_COLUMNS

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FILE_SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ENGINES = ["numpy", "numba"] if ENGINE == "numba" else ["numpy"]
BOM = b"\xef\xbb\xbf"
SPACES = st.sampled_from([b"", b"", b"\n", b"\r\n", b"  ", b"\t", b"\n  ", b"\r\n\t", b" \r "])
# columns read back verbatim (no normalisation besides stripping)
VERBATIM = ("STATUS", "MMSID", "TRACKINGID", "HANDSET", "AGGREGATORID", "STATUSDETAILS", "ORIGIN", "CODE", "SENTAS")


@st.composite
def spaced_documents(draw):
    """A (mutated) document with whitespace between some of its markup and around it."""
    body = draw(mutated_documents() | st.just(SEED))
    pieces = body.split(b"><")
    out = pieces[0]
    for piece in pieces[1:]:
        out += b">" + draw(SPACES) + b"<" + piece
    return draw(SPACES) + out + draw(SPACES)


def _records(documents: list[bytes]) -> tuple[bytes, np.ndarray, np.ndarray]:
    ends = np.cumsum([len(d) for d in documents]).astype(np.int64)
    return b"".join(documents), ends - np.array([len(d) for d in documents], dtype=np.int64), ends


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("mode", [MODE_DOCUMENT, MODE_BODY], ids=["document", "body"])
@SETTINGS
@given(documents=st.lists(spaced_documents(), min_size=1, max_size=5))
def test_a_proven_record_is_one_lxml_accepts_and_reads_the_same(engine, mode, documents):
    buffer, starts, ends = _records(documents)
    scan = scan_records(buffer, starts, ends, mode, engine=engine)
    assert scan.table.num_rows == int(scan.proven.sum())
    row = 0
    for document, proven in zip(documents, scan.proven):
        if not proven:
            continue
        # a document file's reader strips what surrounds a document; a form's body goes to lxml as is
        given = document.strip(b" \t\r\n") if mode == MODE_DOCUMENT else document
        slow = _lxml_fields(given)
        assert slow is not None, f"fast path accepted what lxml rejects: {given!r}"
        assert slow[1] is None and _fast_fields(scan, row, slow[0]) == slow[0]
        row += 1


def test_document_ends_and_first_markup_on_both_paths():
    from skycore_lab.postbacks import vectorscan
    from skycore_lab.postbacks.kernel import first_markup

    data = np.frombuffer(b" \r\n<POSTBACK></POSTBACK>\t</POSTBACK></POSTBACK <x></POSTBACK>  ", dtype=np.uint8)
    assert document_ends(data).tolist() == [24, 36, 61]  # one search serves both paths (numpy's is the faster)
    starts, ends = np.array([0, 24, 61]), np.array([24, 36, 63])
    assert first_markup(data, starts, ends).tolist() == vectorscan.first_markup(data, starts, ends).tolist() == [3, 25, 63]


@pytest.mark.skipif(ENGINE != "numba", reason="numba is not loaded: only the pure path runs")
@pytest.mark.parametrize("mode", [MODE_DOCUMENT, MODE_BODY], ids=["document", "body"])
@SETTINGS
@given(documents=st.lists(spaced_documents(), min_size=1, max_size=5))
def test_the_two_paths_prove_and_cut_the_same(mode, documents):
    buffer, starts, ends = _records(documents)
    compiled = scan_records(buffer, starts, ends, mode, engine="numba")
    pure = scan_records(buffer, starts, ends, mode, engine="numpy")
    assert compiled.proven.tolist() == pure.proven.tolist()
    assert compiled.table.equals(pure.table)


# --- whole files, per format ---------------------------------------------------------------------
def _one_line(document: bytes) -> bytes:
    return document + b"\n"


def _pretty(document: bytes, newline: bytes) -> bytes:
    return document.replace(b"><", b">" + newline + b"  <") + newline


WRITERS = {
    "concatenated": lambda docs: b"".join(_one_line(d) for d in docs),
    "raw-bodies": lambda docs: b"".join(docs),
    "pretty": lambda docs: b"".join(_pretty(d, b"\n") for d in docs),
    "crlf": lambda docs: b"".join(_pretty(d, b"\r\n") for d in docs),
    "bom": lambda docs: BOM + b"".join(_one_line(d) for d in docs),
}


def _document_reference(data: bytes) -> list[tuple[str, ...]]:
    """The rows of a file of documents: split, then lxml alone on each document."""
    if data.startswith(BOM):
        data = data[3:]
    rows = []
    for _, piece in split_documents(data):
        piece = piece.strip(b" \t\r\n")
        if piece.startswith(BOM):
            piece = piece[3:]
        try:
            parsed = parse_xml_document(piece)
        except BadRecord:
            continue
        rows.extend(n.fields for n in parsed.notifications)
    return rows


def _form_reference(lines: list[bytes]) -> list[tuple[str, ...]]:
    rows = []
    for line in lines:
        try:
            pairs = parse_qsl(line.decode("utf-8").strip(), keep_blank_values=True, strict_parsing=True)
            parsed = parse_xml_document([v for k, v in pairs if k.lower() == "xml"][0].encode("utf-8"))
        except (UnicodeDecodeError, ValueError, IndexError, BadRecord):
            continue
        rows.extend(n.fields for n in parsed.notifications)
    return rows


def _frame_rows(frame) -> list[tuple[str, ...]]:
    return [tuple("" if v is None or v != v else str(v) for v in row)
            for row in frame[[TAG_COLUMNS[t] for t in VERBATIM]].itertuples(index=False)]


def _expected_rows(reference: list[tuple[str, ...]]) -> list[tuple[str, ...]]:
    index = [FIELD_TAGS.index(t) for t in VERBATIM]
    return [tuple(fields[i] for i in index) for fields in reference]


def _read(path) -> list[tuple[str, ...]]:
    return _frame_rows(read_postbacks(path, on_bad_lines="skip", drop_duplicates=False, threads=1))


@pytest.mark.parametrize("fmt", sorted(WRITERS))
@FILE_SETTINGS
@given(documents=st.lists(mutated_documents() | st.just(SEED), min_size=1, max_size=6))
def test_each_document_format_reads_what_lxml_reads(fmt, documents):
    data = WRITERS[fmt](documents)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "postbacks.xml"
        path.write_bytes(data)
        expected = _expected_rows(_document_reference(data))
        assert _read(path) == expected
        packed = Path(tmp) / "postbacks.xml.gz"
        packed.write_bytes(gzip.compress(data))
        assert _read(packed) == expected


@FILE_SETTINGS
@given(documents=st.lists(mutated_documents() | st.just(SEED), min_size=1, max_size=6), crlf=st.booleans())
def test_form_lines_read_what_lxml_reads(documents, crlf):
    lines = [b"xml=" + quote_plus(d).encode("ascii") for d in documents]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "postbacks.form"
        path.write_bytes(b"".join(line + (b"\r\n" if crlf else b"\n") for line in lines))
        assert _read(path) == _expected_rows(_form_reference(lines))


@FILE_SETTINGS
@given(documents=st.lists(spaced_documents(), min_size=2, max_size=6))
def test_a_directory_of_single_documents_reads_what_lxml_reads(documents):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "bodies"
        folder.mkdir()
        expected = []
        for number, document in enumerate(documents):
            (folder / f"{number:03d}.xml").write_bytes(document)
            expected += _document_reference(document) if document.strip(b" \t\r\n") else []
        assert _read(folder) == _expected_rows(expected)


def test_the_benchmark_shapes_are_all_proven(tmp_path):
    """The shapes users bring take the fast path (no row from the general path) and read the same."""
    documents = [SEED.replace(b"TU1TXzE=", b"T%d" % i) for i in range(50)]
    frames = {}
    for fmt, write in WRITERS.items():
        path = tmp_path / f"{fmt}.xml"
        path.write_bytes(write(documents))
        buffer = path.read_bytes()
        if fmt == "bom":
            buffer = buffer[3:]
        ends = document_ends(np.frombuffer(buffer, dtype=np.uint8))
        starts = np.concatenate([[0], ends[:-1]]).astype(np.int64)
        assert scan_records(buffer, starts, ends, MODE_DOCUMENT).proven.all(), fmt
        frames[fmt] = read_postbacks(path, drop_duplicates=False)
    first = frames.pop("concatenated")
    for fmt, frame in frames.items():
        assert frame.drop(columns=["source", "line"]).equals(first.drop(columns=["source", "line"])), fmt


# --- form values: the quoted-printable shortcut decodes exactly as the escapes do ---------------
FORM_PIECES = st.sampled_from([b"%3C", b"%3e", b"%2B", b"%25", b"%3D", b"%0A", b"%0D", b"%00", b"%C3%A9", b"+", b"a", b"_", b"~", b"*"])
FORM_HOSTILE = st.sampled_from([b"%", b"%4", b"%G1", b"%%41", b"=", b"&", b" ", b"\r", b"\x00", b"\xc3\xa9"])


CLEAN_LINE = st.tuples(st.just(b"xml="), st.lists(FORM_PIECES, max_size=8), st.sampled_from([b"\n", b"\r\n"]))
ANY_LINE = st.tuples(st.sampled_from([b"xml=", b"xm", b"", b"#x=", b"XML="]), st.lists(FORM_PIECES | FORM_HOSTILE, max_size=8),
                     st.sampled_from([b"\n", b"\r\n"]))


def _form_buffer(lines):
    """The form lines as one buffer: the buffer, its bytes, each line's start and its value's stop (before CR/LF)."""
    buffer = b"".join(head + b"".join(pieces) + end for head, pieces, end in lines)
    data = np.frombuffer(buffer, dtype=np.uint8)
    ends = np.flatnonzero(data == 10)
    starts = np.concatenate([[0], ends[:-1] + 1]).astype(np.int64)
    return buffer, data, starts, ends - ((ends > starts) & (data[np.maximum(ends - 1, 0)] == 0x0D))


def _form_value(pieces) -> bytes:
    """A value as parse_qsl decodes it: + is a space, then %XX."""
    return unquote_to_bytes(b"".join(pieces).replace(b"+", b" "))


@SETTINGS
@given(lines=st.lists(CLEAN_LINE, min_size=1, max_size=6) | st.lists(CLEAN_LINE | ANY_LINE, min_size=1, max_size=6),
       piece_bytes=st.integers(1, 200))
def test_form_values_decode_the_same_on_every_path(lines, piece_bytes):
    from skycore_lab.postbacks import kernel, vectorscan

    buffer, data, starts, stop = _form_buffer(lines)
    candidate = (stop - starts >= 5) & np.array([buffer.startswith(b"xml=", s) for s in starts])

    def in_pieces(data, value, stop, candidate):  # the shortcut, decoding a few lines at a time
        candidate = vectorscan._printable_values(data, value, stop, candidate)
        clean = vectorscan._decode_clean(data, value, stop, candidate, piece_bytes)
        return (*clean, candidate) if clean is not None else vectorscan._decode_by_positions(data, value, stop, candidate)

    # decode_forms takes the quoted-printable shortcut where the buffer allows it, else the positions
    decoders = [vectorscan.decode_forms, in_pieces, lambda data, value, stop, candidate: vectorscan._decode_by_positions(
        data, value, stop, vectorscan._printable_values(data, value, stop, candidate))]
    if kernel.ENGINE == "numba":
        decoders.append(kernel.decode_forms)
    results = []
    for decode in decoders:
        documents, first, last, decoded = decode(data, starts + 4, stop, candidate.copy())
        results.append([bytes(documents[a:b]) if ok else None for a, b, ok in zip(first, last, decoded)])
    assert all(result == results[0] for result in results[1:])
    for (head, pieces, _), document in zip(lines, results[0]):
        if document is not None:
            assert document == _form_value(pieces)


@SETTINGS
@given(pieces=st.lists(st.sampled_from([b"</POSTBACK>", b"</POSTBAC", b"B", b"<", b" ", b"\n", b"\r\n\t", b"x",
                                        b" " * 40]), max_size=12), cuts=st.lists(st.integers(0, 400), max_size=4))
def test_the_pure_document_cuts_are_the_plain_searches(pieces, cuts):
    from skycore_lab.postbacks import vectorscan

    buffer = b"".join(pieces)
    data = np.frombuffer(buffer, dtype=np.uint8)
    ends, at = [], buffer.find(b"</POSTBACK>")
    while at >= 0:
        ends.append(at + 11)
        at = buffer.find(b"</POSTBACK>", at + 11)
    assert vectorscan.document_ends(data).tolist() == ends
    bounds = sorted({min(c, len(buffer)) for c in cuts} | {0, len(buffer)})
    starts, stops = np.array(bounds[:-1], np.int64), np.array(bounds[1:], np.int64)
    solid = [next((i for i in range(s, e) if buffer[i] not in b" \t\r\n"), e) for s, e in zip(bounds, bounds[1:])]
    assert vectorscan.first_markup(data, starts, stops).tolist() == solid


@SETTINGS
@given(lines=st.lists(CLEAN_LINE, min_size=1, max_size=6), piece_bytes=st.integers(1, 300) | st.just(1 << 18))
def test_clean_form_buffers_take_the_shortcut(lines, piece_bytes):
    """Whole escapes, one field a line: decoded by a2b_qp (unless a value decodes to NUL), as the escapes say,
    however the buffer is cut into pieces of lines for decoding."""
    from skycore_lab.postbacks import vectorscan

    buffer, data, starts, stop = _form_buffer(lines)
    candidate = stop - starts >= 4
    clean = vectorscan._decode_clean(data, starts + 4, stop, candidate, piece_bytes)
    if b"%00" in buffer:
        assert clean is None
        return
    assert clean is not None
    documents, first, last = clean
    for (_, pieces, _), ok, a, b in zip(lines, candidate, first, last):
        expected = _form_value(pieces) if ok else b""
        assert bytes(documents[a:b]) == expected
