"""Validating fast path for the common, flat POSTBACK document shape.

Per-record lxml costs ~4-10 µs; a million records need less. The sandbox
(and the platform) write flat documents in one field order, so one regular
expression, run by Arrow's RE2 kernel over a whole buffer of receiver-log
lines (no Python object per line), *proves* each line well-formed; the
fields are then cut out of the buffer with numpy from the positions of the
``<`` characters, which on a proven line are exactly the tag starts.
Single documents (XML files, form bodies) use the same grammar compiled for
Python's ``re`` (:data:`DOCUMENT`).

The expressions accept only documents that are well-formed XML with nothing
to decode, so lxml would accept them and read the same text:

* an optional declaration ``<?xml version="1.0" encoding="UTF-8"?>`` (either
  quote; encoding absent or UTF-8, since we decode as UTF-8);
* root ``<POSTBACK>`` (optionally the two legacy schema attributes), the
  known child elements in the documented order, each at most once, closed;
* element text without ``<``, ``>`` (so no ``]]>``), ``&`` (no entities or
  character references: those go to lxml, which decodes them), backslash
  (a log escape) and without C0/C1 controls, U+FFFD, U+FFFE, U+FFFF and
  lone surrogates; single documents are decoded strictly as UTF-8 first.

Anything else — another order, an unknown element, an entity, CDATA, a
comment, a DTD, a different root — falls back to the hardened lxml parser.
``tests/test_postbacks_fastpath.py`` checks the invariant with hypothesis:
whenever the fast path accepts, lxml accepts and gives the same fields.
"""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = [
    "FIELD_TAGS",
    "NO_FIELDS",
    "LOG_LINE_RE2",
    "LOG_LINE_RE2_ASCII",
    "DOCUMENT",
    "BATCH_SCHEMA",
    "RECEIVED",
    "TS_TYPE",
    "document_fields",
    "log_line_pattern",
    "fast_lines",
    "fast_columns",
    "fixed_stamps",
    "cut_strings",
]

#: The documented child elements, in the order the sandbox writes them.
FIELD_TAGS: tuple[str, ...] = (
    "ORIGIN",
    "CODE",
    "STATUS",
    "SENTAS",
    "MMSID",
    "FROM",
    "TO",
    "TRACKINGID",
    "SPID",
    "TIMESTAMP",
    "HANDSET",
    "AGGREGATORID",
    "STATUSDETAILS",
)
#: A record's fields when none is present ('' means absent or empty).
NO_FIELDS: tuple[str, ...] = ("",) * len(FIELD_TAGS)

# Characters element text may hold on the fast path (see the module docstring),
# in Python ``re`` syntax and in RE2 syntax (Arrow's regex engine; it sees
# valid UTF-8 only, so lone surrogates cannot occur there). The ASCII variant
# is for byte buffers that are not valid UTF-8 as a whole.
_EXCLUDED = {
    "re": "<>&\\\\\\x00-\\x1f\\x7f-\\x9f\\ud800-\\udfff\\ufffd\\ufffe\\uffff",
    "re2": "<>&\\\\\\x00-\\x1f\\x7f-\\x9f\\x{FFFD}\\x{FFFE}\\x{FFFF}",
    "ascii": "<>&\\\\\\x00-\\x1f\\x7f-\\xff",
}
_DECL = (
    r"""<\?xml version=(?:"1\.0"|'1\.0')"""
    r"""(?: encoding=(?:"[Uu][Tt][Ff]-8"|'[Uu][Tt][Ff]-8'))?"""
    r"""(?: standalone=(?:"(?:yes|no)"|'(?:yes|no)'))? ?\?>"""
)


def _body(dialect: str, between: str, after_decl: str, capture: bool) -> str:
    text = f"[^{_EXCLUDED[dialect]}]*"
    attr = f'"[^"{_EXCLUDED[dialect]}]+"'
    value = f"({text})" if capture else text
    fields = "".join(f"(?:<{tag}>{value}</{tag}>{between})?" for tag in FIELD_TAGS)
    # only the real XSI namespace: with another URI the attribute would be data
    root_attrs = f'(?: xmlns:xsi="http://www\\.w3\\.org/2001/XMLSchema-instance" xsi:noNamespaceSchemaLocation={attr})?'
    return f"(?:{_DECL}{after_decl})?<POSTBACK{root_attrs}>{between}{fields}</POSTBACK>"


#: received_at exactly as :func:`skycore_lab._logformat.format_received_at` writes
#: it (27 characters), so the fast path can read it positionally.
_STAMP = r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z"


def log_line_pattern(dialect: str = "re2") -> str:
    """RE2 pattern of one receiver-log line *with* its LF, fast shape only.

    A body's whitespace is escaped in the log, so only the ``\n`` lxml
    writes after the declaration is allowed (as the two characters ``\n``).
    Fields are not captured: :mod:`skycore_lab.postbacks` locates them from
    the ``<`` and ``>`` positions of lines this pattern proved well-formed,
    which is why the remote field may not hold either character.
    """
    return rf"^{_STAMP}\t[^\t\n<>]*\t" + _body(dialect, "", r"(?:\\n|\\r\\n)?", False) + r"\n$"


#: :func:`log_line_pattern` for valid UTF-8 (``"re2"``) and for ASCII-only matching.
LOG_LINE_RE2 = log_line_pattern("re2")
LOG_LINE_RE2_ASCII = log_line_pattern("ascii")

_WS = "[ \\t\\n]*"  # XML whitespace; CR is excluded because lxml normalises it
#: One whole document (``fullmatch``), XML whitespace allowed between elements.
DOCUMENT = re.compile(_WS + _body("re", _WS, _WS, True) + _WS)


def document_fields(text: str) -> tuple[str, ...] | None:
    """The 13 field texts (stripped of spaces) of a flat document, or None.

    None means "not provably simple": parse it with lxml instead.
    """
    match = DOCUMENT.fullmatch(text)
    if match is None:
        return None
    return tuple(value.strip(" ") if value else "" for value in match.groups())


# --- receiver-log buffers: proven lines to Arrow columns ------------------------------------
RECEIVED = "received"  # working column of a batch table: the log's received_at text
#: A batch table: received_at text, then the 13 field texts ('' or null = absent).
BATCH_SCHEMA = pa.schema([(RECEIVED, pa.string()), *((tag, pa.string()) for tag in FIELD_TAGS)])
TS_TYPE = pa.timestamp("us", tz="UTC")

# The two characters after "<" (as a little-endian uint16) → index in FIELD_TAGS, or
# _ROOT for "<PO"(STBACK); STATUS/STATUSDETAILS share "ST" and are told apart by
# the 7th character ("<STATUS>" vs "<STATUSD").
_ROOT = len(FIELD_TAGS)
_TAG_OF_PAIR = np.full(256 * 256, -1, dtype=np.int8)
for _index, _tag in enumerate(FIELD_TAGS):
    if _tag != "STATUSDETAILS":
        _TAG_OF_PAIR[ord(_tag[0]) + 256 * ord(_tag[1])] = _index
_TAG_OF_PAIR[ord("P") + 256 * ord("O")] = _ROOT
_I_STATUS, _I_STATUSDETAILS = FIELD_TAGS.index("STATUS"), FIELD_TAGS.index("STATUSDETAILS")
_SKIP = np.array([len(tag) + 2 for tag in FIELD_TAGS], dtype=np.int32)  # "<TAG>"


def cut_strings(data: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> pa.Array:
    """Arrow strings ``data[starts[i]:starts[i]+lengths[i]]``; length 0 → null."""
    count = len(starts)
    offsets = np.zeros(count + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    total = int(offsets[-1])
    if total:
        kind = np.int32 if len(data) < 2**31 - 1 and total < 2**31 - 1 else np.int64  # halves the memory traffic
        index = np.repeat((starts - offsets[:-1]).astype(kind), lengths)
        index += np.arange(total, dtype=kind)
        values = data[index]
    else:
        values = np.zeros(0, dtype=np.uint8)
    valid = lengths > 0
    return pa.Array.from_buffers(
        pa.string(),
        count,
        [pa.py_buffer(np.packbits(valid, bitorder="little")), pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(values)],
        null_count=count - int(np.count_nonzero(valid)),
    )


def fast_lines(buffer: bytes, line_ends: np.ndarray) -> np.ndarray:
    """Which lines of ``buffer`` (each ending at ``line_ends``) the fast path proves."""
    offsets = np.concatenate([[0], line_ends + 1]).astype(np.int64)
    lines = pa.Array.from_buffers(pa.large_binary(), len(line_ends), [None, pa.py_buffer(offsets), pa.py_buffer(buffer)])
    try:
        matched = pc.match_substring_regex(lines.cast(pa.large_string()), LOG_LINE_RE2)
    except pa.ArrowInvalid:  # invalid UTF-8 somewhere: only pure-ASCII lines go fast
        matched = pc.match_substring_regex(lines, LOG_LINE_RE2_ASCII)
    return matched.to_numpy(zero_copy_only=False)


def fast_columns(buffer: bytes, data: np.ndarray, line_starts: np.ndarray, line_ends: np.ndarray, fast: np.ndarray):
    """Columns of the proven lines, taken from the buffer; also whether any text has edge spaces.

    On a proven line every ``<`` is markup (text, declaration, attributes and
    the remote field hold none), the fields come in :data:`FIELD_TAGS` order
    and a field's text runs from its start tag's ``>`` to the next ``<``: the
    positions of ``<`` are all we need. They give, per (record, field) slot in
    buffer order, the text's bounds and (up to the next text) the markup
    between; one zero-copy Arrow string array over the buffer holds both
    (an absent field is an empty string), and Arrow's ``take`` copies each
    field's texts out into its column. Empty text is null.
    """
    count = int(np.count_nonzero(fast))
    received_at = fixed_stamps(data, line_starts[fast])
    columns = {RECEIVED: pa.nulls(count, pa.string())}  # read positionally instead
    is_open = data == 60
    if count < len(fast):  # lines not proven: their "<" may be anything
        is_open &= np.repeat(fast, line_ends - line_starts + 1)
    opens = np.flatnonzero(is_open)
    del is_open
    if count == 0 or len(opens) == 0:
        for name in FIELD_TAGS:
            columns[name] = pa.nulls(count, pa.string())
        return pa.table(columns, schema=BATCH_SCHEMA), received_at, False
    small = len(data) < 2**31 - 2  # int32 offsets: half the memory traffic
    kind = np.int32 if small else np.int64
    opens = opens.astype(kind)
    # the two characters after each "<", read as one little-endian uint16 (unaligned view);
    # a proven line never ends in "<", so opens + 2 is inside the buffer
    pairs = np.ndarray(shape=(len(data) - 1,), dtype="<u2", buffer=data, offset=0, strides=(1,))
    tag = _TAG_OF_PAIR[pairs[opens + 1]]
    status = np.flatnonzero(tag == _I_STATUS)
    tag[status[data[opens[status] + 7] == 68]] = _I_STATUSDETAILS  # "<STATUSD"
    row = np.cumsum(tag == _ROOT, dtype=kind)  # 1-based record of each "<" (one root per line)
    field = np.flatnonzero(tag.view(np.uint8) < _ROOT)  # start tags of fields (-1 is 255)
    field_tag = tag[field]
    start = opens[field] + _SKIP[field_tag]
    end = opens[field + 1]  # the end tag's "<"
    padded = bool((data[start] == 32).any() or (data[end - 1] == 32).any())
    slot = (row[field] - 1) * len(FIELD_TAGS) + field_tag
    slot *= 2
    del row, field, field_tag, tag, opens
    # string 2k is the text of slot k, string 2k+1 the markup up to the next text
    bounds = np.zeros(2 * len(FIELD_TAGS) * count + 1, dtype=kind)
    bounds[slot] = start
    bounds[slot + 1] = end
    bounds[-1] = end[-1]
    del start, end, slot
    np.maximum.accumulate(bounds, out=bounds)  # absent slots: empty, where the previous ended
    valid = np.packbits(bounds[1:] > bounds[:-1], bitorder="little")
    texts = pa.Array.from_buffers(
        pa.string() if small else pa.large_string(),
        len(bounds) - 1,
        [pa.py_buffer(valid), pa.py_buffer(bounds), pa.py_buffer(buffer)],
    )
    first = np.arange(0, len(bounds) - 1, 2 * len(FIELD_TAGS), dtype=kind)
    for index, name in enumerate(FIELD_TAGS):
        values = texts.take(pa.array(first + 2 * index))
        columns[name] = values if small else values.cast(pa.string())
    return pa.table(columns, schema=BATCH_SCHEMA), received_at, padded


def fixed_stamps(data: np.ndarray, starts: np.ndarray) -> pa.Array:
    """UTC timestamps of ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` texts at ``starts``, by arithmetic.

    The fast path proved the digits are digits; impossible dates and times
    (month 13, 31 April, 25 h) become null, like Arrow's cast would.
    """
    if len(starts) == 0:
        return pa.array([], TS_TYPE)
    # the 26 characters of each stamp: rows of a sliding-window view of the buffer
    # (a row copy each, not 26 computed indices)
    digits = np.lib.stride_tricks.sliding_window_view(data, 26)[starts].astype(np.int64) - 48

    def number(first: int, width: int) -> np.ndarray:
        value = np.zeros(len(starts), dtype=np.int64)
        for i in range(first, first + width):
            value = value * 10 + digits[:, i]
        return value

    year, month, day = number(0, 4), number(5, 2), number(8, 2)
    hour, minute, second, micros = number(11, 2), number(14, 2), number(17, 2), number(20, 6)
    months = (year - 1970) * 12 + (month - 1)
    first_of_month = months.astype("datetime64[M]").astype("datetime64[D]").astype(np.int64)
    next_month = (months + 1).astype("datetime64[M]").astype("datetime64[D]").astype(np.int64)
    days = first_of_month + day - 1
    valid = (
        (month >= 1) & (month <= 12) & (day >= 1) & (days < next_month)
        & (hour < 24) & (minute < 60) & (second < 60)
    )
    value = ((days * 86400 + hour * 3600 + minute * 60 + second) * 1_000_000) + micros
    return pa.array(value, type=pa.int64(), mask=~valid).cast(TS_TYPE)


