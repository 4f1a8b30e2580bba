"""Validating fast path for the common, flat POSTBACK document shape.

Per-record lxml costs ~4-10 µs; a million records need less. The sandbox
(and the platform) write flat documents in one field order, so a buffer of
receiver-log lines is *proven* well-formed line by line without a Python
object per line, in two tiers:

1. numpy (:func:`prove_lines`) proves the common pure-ASCII shape from
   whole-buffer byte tests and the position and kind of every ``<``
   (:func:`markup_kinds`); it is a strict subset of tier 2, which
   ``tests/test_postbacks_proof.py`` checks with hypothesis, and costs less
   than RE2's ~3 ns per byte;
2. one regular expression (:data:`LOG_LINE_RE2`), run by Arrow's RE2 kernel
   on the lines numpy did not prove, accepts the rarer flat shapes (other
   declaration spellings, the schema attributes, non-ASCII text).

The fields of proven lines are then cut out of the buffer with numpy from
the positions of the ``<`` characters, which on a proven line are exactly
the tag starts. Single documents (XML files, form bodies) use the same
grammar compiled for Python's ``re`` (:data:`DOCUMENT`).

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
    "markup_kinds",
    "prove_lines",
    "scan_markup",
    "fast_lines",
    "fast_columns",
    "fixed_stamps",
    "text_stamps",
    "word_at",
    "string_fingerprints",
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

# --- markup of a buffer: what each "<" opens ---------------------------------------------------
# Kinds: the declaration, the root's start and end tag, each field's start and end tag, other.
MARKUP_DECL, MARKUP_OPEN, MARKUP_CLOSE = 0, 1, 2
MARKUP_START = 3  # + index in FIELD_TAGS
MARKUP_END = MARKUP_START + len(FIELD_TAGS)  # + index in FIELD_TAGS
MARKUP_OTHER = MARKUP_END + len(FIELD_TAGS)
_KINDS = MARKUP_OTHER + 1
#: The declarations the numpy proof knows (lxml's and the sandbox's); the RE2
#: expression accepts the other spellings.
DECLARATIONS = (b"<?xml version='1.0' encoding='UTF-8'?>", b'<?xml version="1.0" encoding="UTF-8"?>')
_MARKUPS = {MARKUP_DECL: b"<?xml version=", MARKUP_OPEN: b"<POSTBACK>", MARKUP_CLOSE: b"</POSTBACK>"}
for _index, _tag in enumerate(FIELD_TAGS):
    _MARKUPS[MARKUP_START + _index] = b"<%s>" % _tag.encode()
    _MARKUPS[MARKUP_END + _index] = b"</%s>" % _tag.encode()
_I_STATUS, _I_STATUSDETAILS = FIELD_TAGS.index("STATUS"), FIELD_TAGS.index("STATUSDETAILS")
_I_TIMESTAMP = FIELD_TAGS.index("TIMESTAMP")


def _key(markup: bytes) -> int:
    return int.from_bytes(markup[1:4], "little")


def _perfect_hash() -> tuple[np.uint64, np.ndarray]:
    """A multiply-shift hash of the three bytes after "<" with no collision among the
    markups (STATUS and STATUSDETAILS share theirs: the 8th/9th byte tells them apart),
    and its table of kinds. Any other bytes land on some kind and fail its template."""
    keys: dict[int, int] = {}
    for kind, markup in _MARKUPS.items():
        keys.setdefault(_key(markup), kind)  # STATUS, not STATUSDETAILS
    for multiplier in range(0x9E3779B97F4A7C15, 2**64, 2**40 + 2):  # deterministic search
        slots = [((k * multiplier) % 2**64) >> 52 for k in keys]
        if len(set(slots)) == len(slots):
            table = np.full(4096, MARKUP_OTHER, dtype=np.int8)
            table[slots] = list(keys.values())
            return np.uint64(multiplier), table
    raise AssertionError("no perfect hash")  # pragma: no cover - checked at import


_HASH_MULTIPLIER, _KIND_OF_SLOT = _perfect_hash()
# each kind's markup as two little-endian words and masks (16 bytes suffice but for
# the declaration, whose rest is compared apart); OTHER never matches (no "<" is 0)
_WORD = np.zeros((4, _KINDS), dtype=np.uint64)  # value 0, value 1, mask 0, mask 1
_WORD[2, MARKUP_OTHER] = 0xFF
_LENGTH = np.zeros(_KINDS, dtype=np.int32)
for _kind, _markup in _MARKUPS.items():
    _bytes = _markup.ljust(16, b"\0")
    _mask = bytes(0xFF if i < len(_markup) else 0 for i in range(16))
    _WORD[:, _kind] = [int.from_bytes(b, "little") for b in (_bytes[:8], _bytes[8:], _mask[:8], _mask[8:])]
    _LENGTH[_kind] = len(_markup)
_LENGTH[MARKUP_DECL] = len(DECLARATIONS[0])
_SKIP = _LENGTH[MARKUP_START:MARKUP_END]  # "<TAG>": where a field's text starts


def word_at(data: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """The 8 bytes at each (sorted) position as a little-endian uint64, zeros past the end."""
    if len(positions) == 0:
        return np.zeros(0, dtype=np.uint64)
    size = len(data)
    inside = int(np.searchsorted(positions, size - 8, side="right"))
    if inside == len(positions):
        # an unaligned view: numpy gathers 8 bytes per position in one pass
        return np.ndarray(shape=(size - 7,), dtype="<u8", buffer=data, offset=0, strides=(1,))[positions]
    word = np.empty(len(positions), dtype=np.uint64)
    if inside:
        word[:inside] = word_at(data, positions[:inside])
    base = max(0, size - 8)  # the last few: from a zero-padded copy of the buffer's tail
    tail = np.zeros(17, dtype=np.uint8)
    tail[: size - base] = data[base:]
    rest = np.minimum(positions[inside:] - base, 9)  # (at or past the end: zeros)
    word[inside:] = np.ndarray(shape=(10,), dtype="<u8", buffer=tail, offset=0, strides=(1,))[rest]
    return word


def _words(data: np.ndarray, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The 16 bytes at each (sorted) position as two little-endian uint64, zeros past the end."""
    return word_at(data, positions), word_at(data, positions + 8)


def _pattern_words(pattern: bytes) -> list[tuple[int, int, int, int]]:
    """``pattern`` as (offset, literal mask, literal value, digit mask) per 8-byte word;
    a ``0`` in the pattern stands for any digit."""
    words = []
    for offset in [*range(0, len(pattern) - 8, 8), len(pattern) - 8]:
        chunk = pattern[offset : offset + 8]
        literal = bytes(0 if c == ord("0") else 0xFF for c in chunk)
        value = bytes(0 if c == ord("0") else c for c in chunk)
        digit = bytes(0x80 if c == ord("0") else 0 for c in chunk)
        words.append((offset, *(int.from_bytes(b, "little") for b in (literal, value, digit))))
    return words


def _matches(data: np.ndarray, positions: np.ndarray, *patterns: bytes) -> np.ndarray:
    """Whether the bytes at each (sorted) position are one of ``patterns`` (all of one
    length, at least 8; ``0`` = any digit), compared eight bytes at a time."""
    matched = np.zeros(len(positions), dtype=bool)
    words: dict[int, np.ndarray] = {}
    for pattern in patterns:
        ok = np.ones(len(positions), dtype=bool)
        for offset, literal, value, digit in _pattern_words(pattern):
            if offset not in words:
                words[offset] = word_at(data, positions + offset)
            word = words[offset]
            ok &= (word & np.uint64(literal)) == np.uint64(value)
            if digit:
                # a digit's byte xor "0" is below 10; adding 0x76 sets the high bit of any
                # byte that is not (a carry only adds to the next byte: it never hides one)
                off = word ^ np.uint64(0x3030303030303030)
                ok &= (((off + np.uint64(0x7676767676767676)) | off) & np.uint64(digit)) == 0
        matched |= ok
    return matched


def markup_kinds(data: np.ndarray, opens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The kind of markup each ``<`` at ``opens`` starts, and whether its bytes are exactly that markup.

    The kind is a guess from the three bytes after ``<`` (exact on any
    line the RE2 expression proved); the second array says whether the
    whole markup, up to its ``>``, is there byte for byte (for a
    declaration only its first 14 bytes: :func:`prove_lines` compares the rest).
    """
    first, second = _words(data, opens)
    key = (first >> np.uint64(8)) & np.uint64(0xFFFFFF)
    key *= _HASH_MULTIPLIER
    key >>= np.uint64(52)
    kind = _KIND_OF_SLOT[key.view(np.int64)]  # (below 4096: the same numbers)
    del key
    status = np.flatnonzero(kind == MARKUP_START + _I_STATUS)
    kind[status[(first[status] >> np.uint64(56)) == 68]] = MARKUP_START + _I_STATUSDETAILS  # "<STATUSD"
    status = np.flatnonzero(kind == MARKUP_END + _I_STATUS)
    kind[status[(second[status] & np.uint64(0xFF)) == 68]] = MARKUP_END + _I_STATUSDETAILS  # "</STATUSD"
    first ^= _WORD[0][kind]
    first &= _WORD[2][kind]
    second ^= _WORD[1][kind]
    second &= _WORD[3][kind]
    first |= second
    return kind, first == 0


# --- numpy proof of the common log line --------------------------------------------------------
# Which kind may follow which inside a line: declaration, root, fields in FIELD_TAGS order.
_FOLLOWS = np.zeros(_KINDS * _KINDS, dtype=bool)
_FOLLOWS[MARKUP_DECL * _KINDS + MARKUP_OPEN] = True
_FOLLOWS[MARKUP_OPEN * _KINDS + MARKUP_CLOSE] = True
for _index in range(len(FIELD_TAGS)):
    _FOLLOWS[MARKUP_OPEN * _KINDS + MARKUP_START + _index] = True
    _FOLLOWS[(MARKUP_START + _index) * _KINDS + MARKUP_END + _index] = True
    _FOLLOWS[(MARKUP_END + _index) * _KINDS + MARKUP_CLOSE] = True
    for _later in range(_index + 1, len(FIELD_TAGS)):
        _FOLLOWS[(MARKUP_END + _index) * _KINDS + MARKUP_START + _later] = True
_TEXT_FOLLOWS = np.zeros(_KINDS, dtype=bool)  # only a field's start tag is followed by text
_TEXT_FOLLOWS[MARKUP_START:MARKUP_END] = True
_STAMP_SHAPE = b"0000-00-00T00:00:00.000000Z"  # "0": a digit
# what may separate the declaration from the root in a log line: nothing, "\n", "\r\n" (escaped)
_SEPARATORS = ((2, int.from_bytes(b"\\n", "little"), 0xFFFF), (4, int.from_bytes(b"\\r\\n", "little"), 0xFFFFFFFF))


def prove_lines(
    data: np.ndarray, line_starts: np.ndarray, line_ends: np.ndarray, opens: np.ndarray, kind: np.ndarray, exact: np.ndarray
) -> np.ndarray:
    """Which lines have the common shape exactly, proven with numpy alone.

    A stricter subset of :data:`LOG_LINE_RE2` (``tests/test_postbacks_proof.py``
    checks that it never proves a line RE2 rejects), for pure-ASCII lines:

    * ``received_at`` in the fixed 27-character shape, a tab, a remote, a tab;
    * then only whole markups of known kinds (:func:`markup_kinds`), in an
      order :data:`_FOLLOWS` allows, starting with one of
      :data:`DECLARATIONS` or the root and ending with ``</POSTBACK>`` just
      before the LF; between markups nothing, except a field's text and
      the escaped newline after the declaration;
    * and no other "bad" byte in the line: every byte outside the printable
      ASCII range, ``&``, ``\\`` or ``>`` is one of the two tabs, the LF, a
      markup's own ``>`` or the separator's backslashes — counted per line,
      so the text, the remote and the stamp hold none.

    ``opens`` are the positions of every ``<`` in ``data``; ``kind`` and
    ``exact`` come from :func:`markup_kinds`.
    """
    lines = len(line_ends)
    if lines == 0 or len(opens) == 0:
        return np.zeros(lines, dtype=bool)
    first = np.searchsorted(opens, line_starts.astype(opens.dtype))  # each line's first "<" (an index into opens)
    count = np.diff(first, append=len(opens))
    end = opens + _LENGTH[kind]  # one past each markup
    nxt = np.empty_like(kind)
    nxt[:-1] = kind[1:]
    nxt[-1] = MARKUP_OTHER
    gap = np.zeros(len(opens), dtype=end.dtype)
    np.subtract(opens[1:], end[:-1], out=gap[:-1])
    step = _FOLLOWS[kind.astype(np.intp) * _KINDS + nxt]
    step &= (gap == 0) | _TEXT_FOLLOWS[kind]
    has = count >= 2
    head = np.where(has, first, 0)
    last = np.where(has, first + count - 1, 0)
    body = opens[head].astype(np.int64)
    head_kind = kind[head]
    proven = has & (kind[last] == MARKUP_CLOSE) & (end[last] == line_ends)
    proven &= ((head_kind == MARKUP_OPEN) | (head_kind == MARKUP_DECL)) & (body - 1 > line_starts + 27)
    proven &= (data[np.maximum(body - 1, 0)] == 9) & (data[np.minimum(line_starts + 27, len(data) - 1)] == 9)
    step[last[has]] = True  # a line's last markup has no successor in the line
    separator = np.zeros(lines, dtype=np.int64)  # backslashes between declaration and root
    declared = np.flatnonzero(proven & (head_kind == MARKUP_DECL))
    if len(declared):
        whole = _matches(data, body[declared], *DECLARATIONS)
        after = end[head[declared]]
        width = gap[head[declared]]
        following = word_at(data, after)
        fits = width == 0
        for size, value, mask in _SEPARATORS:
            matched = (width == size) & ((following & np.uint64(mask)) == value)
            separator[declared[matched]] = size // 2
            fits |= matched
        proven[declared] = whole & fits & (kind[head[declared] + 1] == MARKUP_OPEN)
        step[head[declared]] = True  # checked here: the step rule wants no gap
    candidates = np.flatnonzero(proven)
    proven[candidates[~_matches(data, line_starts[candidates], _STAMP_SHAPE)]] = False
    bad = data - np.uint8(32) > 94  # controls, DEL and every non-ASCII byte
    bad |= data == 38
    bad |= data == 92
    bad |= data == 62
    at_bad = np.flatnonzero(bad)
    del bad
    bad_count = np.diff(np.searchsorted(at_bad, line_starts), append=len(at_bad))
    proven &= bad_count == 3 + count + separator
    step &= exact
    failed = np.flatnonzero(~step)
    proven[np.searchsorted(first, failed, side="right") - 1] = False
    return proven


def scan_markup(data: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every ``<`` of a buffer: its position, its kind and whether it is exact (:func:`markup_kinds`)."""
    opens = np.flatnonzero(data == 60)
    if len(data) < 2**31 - 16:
        opens = opens.astype(np.int32)  # half the memory traffic of every later step
    kind, exact = markup_kinds(data, opens)
    return opens, kind, exact


def fast_lines(buffer, line_ends: np.ndarray, markup: tuple | None = None) -> np.ndarray:
    """Which lines of ``buffer`` (each ending at ``line_ends``) the fast path proves.

    numpy proves the common pure-ASCII shape (:func:`prove_lines`); the
    lines it does not prove (other declarations, attributes on the root,
    non-ASCII text, the header, bad records) are given to the RE2
    expression. ``markup`` is :func:`scan_markup`'s result, if already made.
    """
    data = np.frombuffer(buffer, dtype=np.uint8)
    line_starts = np.zeros(len(line_ends), dtype=np.int64)
    line_starts[1:] = line_ends[:-1] + 1
    opens, kind, exact = markup if markup is not None else scan_markup(data)
    fast = prove_lines(data, line_starts, line_ends, opens, kind, exact)
    rest = np.flatnonzero(~fast)
    if len(rest) == 0:
        return fast
    offsets = np.concatenate([[0], line_ends + 1]).astype(np.int64)
    lines = pa.Array.from_buffers(pa.large_binary(), len(line_ends), [None, pa.py_buffer(offsets), pa.py_buffer(buffer)])
    if len(rest) < len(fast):
        lines = lines.take(pa.array(rest))
    try:
        matched = pc.match_substring_regex(lines.cast(pa.large_string()), LOG_LINE_RE2)
    except pa.ArrowInvalid:  # invalid UTF-8 somewhere: only pure-ASCII lines go fast
        matched = pc.match_substring_regex(lines, LOG_LINE_RE2_ASCII)
    fast[rest] = matched.to_numpy(zero_copy_only=False)
    return fast


def fast_columns(
    buffer, data: np.ndarray, line_starts: np.ndarray, line_ends: np.ndarray, fast: np.ndarray, markup: tuple | None = None
):
    """Columns of the proven lines, taken from the buffer; also whether any text has edge spaces.

    On a proven line every ``<`` is markup (text, declaration, attributes and
    the remote field hold none) and its kind (:func:`markup_kinds`) is
    exact, the fields come in :data:`FIELD_TAGS` order and a field's text
    runs from its start tag's ``>`` to the next ``<``. The positions of the
    start tags give, per (record, field) slot in buffer order, the text's
    bounds and (up to the next text) the markup between; one zero-copy
    Arrow string array over the buffer holds both (an absent field is an
    empty string), and Arrow's ``take`` copies each field's texts out into
    its column. Empty text is null.
    """
    count = int(np.count_nonzero(fast))
    received_at = fixed_stamps(data, line_starts[fast])
    columns = {RECEIVED: pa.nulls(count, pa.string())}  # read positionally instead
    if count == 0:
        for name in FIELD_TAGS:
            columns[name] = pa.nulls(count, pa.string())
        return pa.table(columns, schema=BATCH_SCHEMA), received_at, False, pa.array([], TS_TYPE)
    opens, kind, _ = markup if markup is not None else scan_markup(data)
    if count < len(fast):  # lines not proven: their "<" may be anything
        per_line = np.diff(np.searchsorted(opens, line_starts), append=len(opens))
        keep = np.repeat(fast, per_line)
        opens, kind = opens[keep], kind[keep]
    small = len(data) < 2**31 - 16  # int32 offsets: half the memory traffic
    index_type = np.int32 if small else np.int64
    opens = opens.astype(index_type, copy=False)
    row = np.cumsum(kind == MARKUP_OPEN, dtype=index_type)  # 1-based record of each "<" (one root per line)
    field = np.flatnonzero((kind >= MARKUP_START) & (kind < MARKUP_END))  # start tags of fields
    field_tag = kind[field] - MARKUP_START
    start = opens[field] + _SKIP[field_tag]
    end = opens[field + 1]  # the end tag's "<"
    padded = bool((data[start] == 32).any() or (data[end - 1] == 32).any())
    slot = (row[field] - 1) * len(FIELD_TAGS) + field_tag
    slot *= 2
    del row, field, field_tag, kind, opens
    # string 2k is the text of slot k, string 2k+1 the markup up to the next text
    bounds = np.zeros(2 * len(FIELD_TAGS) * count + 1, dtype=index_type)
    bounds[slot] = start
    bounds[slot + 1] = end
    bounds[-1] = end[-1] if len(end) else 0
    del start, end, slot
    np.maximum.accumulate(bounds, out=bounds)  # absent slots: empty, where the previous ended
    valid = np.packbits(bounds[1:] > bounds[:-1], bitorder="little")
    texts = pa.Array.from_buffers(
        pa.string() if small else pa.large_string(),
        len(bounds) - 1,
        [pa.py_buffer(valid), pa.py_buffer(bounds), pa.py_buffer(buffer)],
    )
    first = np.arange(0, len(bounds) - 1, 2 * len(FIELD_TAGS), dtype=index_type)
    timestamp = _timestamps(data, bounds, first + 2 * _I_TIMESTAMP)
    for index, name in enumerate(FIELD_TAGS):
        if name == "TIMESTAMP" and timestamp is not None:
            columns[name] = pa.nulls(count, pa.string())  # read positionally instead
            continue
        values = texts.take(pa.array(first + 2 * index))
        columns[name] = values if small else values.cast(pa.string())
    return pa.table(columns, schema=BATCH_SCHEMA), received_at, padded, timestamp


def _timestamps(data: np.ndarray, bounds: np.ndarray, slots: np.ndarray) -> pa.Array | None:
    """The TIMESTAMP column, read positionally from the text bounds, or None (see :func:`text_stamps`)."""
    starts = bounds[slots].astype(np.int64)
    lengths = bounds[slots + 1] - starts
    present = lengths > 0
    micros = text_stamps(data, starts[present], lengths[present])
    if micros is None:
        return None
    values = np.zeros(len(slots), dtype=np.int64)
    values[present] = micros
    return pa.array(values, type=pa.int64(), mask=~present).cast(TS_TYPE)


def _digit_pairs(word: np.ndarray, digits: str) -> np.ndarray:
    """Two-digit numbers in a word of ASCII digits: byte ``i`` of the result is
    ``10 * digit[i] + digit[i + 1]`` wherever both bytes are listed in ``digits``
    (a string of byte indices); other bytes are zeroed first, so nothing carries."""
    mask = sum(0xFF << (8 * int(i)) for i in digits)
    values = (word ^ np.uint64(0x3030303030303030)) & np.uint64(mask)
    return values * np.uint64(10) + (values >> np.uint64(8))


def _byte(word: np.ndarray, index: int) -> np.ndarray:
    return ((word >> np.uint64(8 * index)) & np.uint64(0xFF)).astype(np.int64)


def _civil_micros(data: np.ndarray, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """µs since the epoch of the ``YYYY-MM-DDTHH:MM:SS`` at each (sorted) start, read as
    UTC, and whether it is a possible date and time (month 13, 31 April, 25 h are not,
    as for Arrow's cast). The digits must already be proven digits."""
    date = _digit_pairs(word_at(data, starts), "012356")  # YYYY-MM-
    clock = _digit_pairs(word_at(data, starts + 8), "013467")  # DDTHH:MM
    second = _byte(_digit_pairs(word_at(data, starts + 11), "67"), 6)  # HH:MM:SS
    year, month = _byte(date, 0) * 100 + _byte(date, 2), _byte(date, 5)
    day, hour, minute = _byte(clock, 0), _byte(clock, 3), _byte(clock, 6)
    months = (year - 1970) * 12 + (month - 1)
    first_of_month = months.astype("datetime64[M]").astype("datetime64[D]").astype(np.int64)
    next_month = (months + 1).astype("datetime64[M]").astype("datetime64[D]").astype(np.int64)
    days = first_of_month + day - 1
    valid = (
        (month >= 1) & (month <= 12) & (day >= 1) & (days < next_month)
        & (hour < 24) & (minute < 60) & (second < 60)
    )
    return (days * 86400 + hour * 3600 + minute * 60 + second) * 1_000_000, valid


def fixed_stamps(data: np.ndarray, starts: np.ndarray) -> pa.Array:
    """UTC timestamps of ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` texts at ``starts``, by arithmetic.

    The fast path proved the digits are digits; impossible dates and times
    (month 13, 31 April, 25 h) become null, like Arrow's cast would.
    """
    if len(starts) == 0:
        return pa.array([], TS_TYPE)
    micros, valid = _civil_micros(data, starts)
    fraction = _digit_pairs(word_at(data, starts + 19), "123456")  # .ffffffZ
    micros += _byte(fraction, 1) * 10_000 + _byte(fraction, 3) * 100 + _byte(fraction, 5)
    return pa.array(micros, type=pa.int64(), mask=~valid).cast(TS_TYPE)


# The notification TIMESTAMP shapes read positionally ("0" = a digit): Z, ±HH:MM, ±HH
# or no offset (taken as UTC, as the general parser does); any other shape, or a
# fraction of a second, goes to the general parser.
_TIMESTAMP_SHAPES = {
    19: (b"0000-00-00T00:00:00",),
    20: (b"0000-00-00T00:00:00Z",),
    22: (b"0000-00-00T00:00:00+00", b"0000-00-00T00:00:00-00"),
    25: (b"0000-00-00T00:00:00+00:00", b"0000-00-00T00:00:00-00:00"),
}


def text_stamps(data: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray | None:
    """µs since the epoch (UTC) of the TIMESTAMP texts at ``starts``, or None.

    None unless every text has one of :data:`_TIMESTAMP_SHAPES` and is a
    possible date, time and offset (hours ≤ 23, minutes ≤ 59, like Arrow's
    parser): then the caller parses them all the general way, which also
    keeps the text of the impossible ones.
    """
    shaped = np.zeros(len(starts), dtype=bool)
    for length, patterns in _TIMESTAMP_SHAPES.items():
        rows = np.flatnonzero(lengths == length)
        if len(rows):
            shaped[rows] = _matches(data, starts[rows], *patterns)
    if not shaped.all():
        return None
    if len(starts) == 0:
        return np.zeros(0, dtype=np.int64)
    micros, valid = _civil_micros(data, starts)
    offset = lengths >= 22
    if offset.any():
        word = word_at(data, starts + 17)  # SS±HH:MM or SS±HH
        zone = _digit_pairs(word, "3467")
        hours = _byte(zone, 3)
        minutes = np.where(lengths == 25, _byte(zone, 6), 0)
        valid &= ~offset | ((hours <= 23) & (minutes <= 59))
        east = np.where(_byte(word, 2) == ord("-"), -1, 1)
        micros -= np.where(offset, east * (hours * 3600 + minutes * 60) * 1_000_000, 0)
    return micros if valid.all() else None


_FINGERPRINT_MULTIPLIERS = tuple(np.uint64(m) for m in (0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0xD6E8FEB86659FD93))


def string_fingerprints(values: pa.Array) -> np.ndarray:
    """A 64-bit fingerprint of each string (0 for null, odd otherwise), from numpy alone.

    Equal strings give equal fingerprints; different strings almost always
    differ (strings up to 16 bytes are read whole, longer ones by their
    first 16 and last 8 bytes and their length), so a caller that must be
    exact compares the strings whose fingerprints collide. Used by the
    dedupe: hashing a million tracking ids in one Arrow table costs ~5x
    what these take per buffer, while the buffer is still in cache.
    """
    count = len(values)
    if count == 0:
        return np.zeros(0, dtype=np.uint64)
    offset_type = np.int64 if values.type == pa.large_string() else np.int32
    _, offsets_buffer, data_buffer = values.buffers()
    offsets = np.frombuffer(offsets_buffer, dtype=offset_type, count=count + 1, offset=values.offset * np.dtype(offset_type).itemsize)
    data = np.frombuffer(data_buffer, dtype=np.uint8) if data_buffer is not None else np.zeros(0, dtype=np.uint8)
    starts = offsets[:-1].astype(np.int64)
    ends = offsets[1:].astype(np.int64)
    lengths = ends - starts
    if len(data) == 0:
        data = np.zeros(1, dtype=np.uint8)
    low, mix = [], _FINGERPRINT_MULTIPLIERS
    for offset in (0, 8):  # bytes 0-7 and 8-15, masked to the string
        kept = np.clip(lengths - offset, 0, 8).astype(np.uint64)
        mask = np.where(kept == 8, np.uint64(2**64 - 1), (np.uint64(1) << (kept * np.uint64(8)) % np.uint64(64)) - np.uint64(1))
        low.append(word_at(data, starts + offset) & mask)
    tail = np.where(lengths > 16, word_at(data, np.maximum(ends - 8, 0)), np.uint64(0))
    fingerprint = low[0] * mix[0]
    fingerprint ^= low[1] * mix[1]
    fingerprint ^= tail * mix[2]
    fingerprint ^= (lengths.astype(np.uint64) + np.uint64(1)) * mix[3]
    fingerprint |= np.uint64(1)  # never 0: that is null
    fingerprint[~np.asarray(values.is_valid().to_numpy(zero_copy_only=False), dtype=bool)] = 0
    return fingerprint
