"""The grammar of the validating fast path: the flat POSTBACK document shape.

The sandbox (and the platform) write flat documents in one field order, so
most records can be *proven* well-formed without an XML parser: the
compiled kernel (:mod:`.kernel`) checks receiver-log lines against this
grammar, and single documents (XML files, form bodies) are matched by the
same grammar compiled for Python's ``re`` (:data:`DOCUMENT`).

The grammar accepts only documents that are well-formed XML with nothing
to decode, so lxml would accept them and read the same text:

* an optional declaration ``<?xml version="1.0" encoding="UTF-8"?>`` (either
  quote; encoding absent or UTF-8, since we decode as UTF-8; ``standalone``
  allowed), in a log line optionally followed by the escaped ``\\n`` or
  ``\\r\\n`` lxml and the sandbox write after it;
* root ``<POSTBACK>`` (optionally the two legacy schema attributes), the
  known child elements in the schema's order (:data:`.schema.FIELDS`), each
  at most once, closed;
* element text of valid UTF-8 without ``<``, ``>`` (so no ``]]>``), ``&``
  (no entities or character references: those go to lxml, which decodes
  them), backslash (a log escape) and without C0/C1 controls, U+FFFD,
  U+FFFE and U+FFFF.

Anything else — another order, an unknown element, an entity, CDATA, a
comment, a DTD, a different root — falls back to the hardened lxml parser
(:mod:`.documents`). The grammar of a log line is also written down as one
regular expression (:data:`LOG_LINE_RE2`, :func:`log_line_pattern`):
``tests/test_postbacks_proof.py`` checks with hypothesis that the kernel
proves exactly the lines RE2 matches, and ``tests/test_postbacks_fastpath.py``
that whatever the fast paths accept, lxml accepts and reads to the same
fields.
"""

from __future__ import annotations

import re

import numpy as np

from .schema import FIELD_TAGS

__all__ = [
    "XSI_ATTRIBUTE", "LOG_LINE_RE2", "DOCUMENT", "OLD_ORDER", "document_fields", "log_line_pattern", "record_pattern_bytes", "TEXT_PLAIN",
]

# Characters element text may hold on the fast path (see the module docstring),
# in Python ``re`` syntax and in RE2 syntax (Arrow's regex engine; it sees
# valid UTF-8 only, so lone surrogates cannot occur there).
_EXCLUDED = {
    "re": "<>&\\\\\\x00-\\x1f\\x7f-\\x9f\\ud800-\\udfff\\ufffd\\ufffe\\uffff",
    "re2": "<>&\\\\\\x00-\\x1f\\x7f-\\x9f\\x{FFFD}\\x{FFFE}\\x{FFFF}",
}
_DECL = (
    r"""<\?xml version=(?:"1\.0"|'1\.0')"""
    r"""(?: encoding=(?:"[Uu][Tt][Ff]-8"|'[Uu][Tt][Ff]-8'))?"""
    r"""(?: standalone=(?:"(?:yes|no)"|'(?:yes|no)'))? ?\?>"""
)
#: The legacy schema attribute of the root, up to its value.
XSI_ATTRIBUTE = 'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:noNamespaceSchemaLocation='


def _body(dialect: str, between: str, after_decl: str, capture: bool, order: tuple[str, ...] = FIELD_TAGS) -> str:
    text = f"[^{_EXCLUDED[dialect]}]*"
    attr = f'"[^"{_EXCLUDED[dialect]}]+"'
    value = f"({text})" if capture else text
    fields = "".join(f"(?:<{tag}>{value}</{tag}>{between})?" for tag in order)
    # only the real XSI namespace: with another URI the attribute would be data
    root_attrs = f"(?: {re.escape(XSI_ATTRIBUTE)}{attr})?"
    return f"(?:{_DECL}{after_decl})?<POSTBACK{root_attrs}>{between}{fields}</POSTBACK>"


#: The grammar's plain bytes (its single-byte text class over bytes): printable ASCII but ``<``, ``>``,
#: ``&`` and backslash. Any string of them is element text; the kernel and the pure path test bytes with it.
TEXT_PLAIN = np.zeros(256, dtype=np.bool_)
TEXT_PLAIN[0x20:0x7F] = True
TEXT_PLAIN[[0x3C, 0x3E, 0x26, 0x5C]] = False

#: received_at exactly as :func:`.logformat.format_received_at` writes
#: it (27 characters), so the fast path can read it positionally.
_STAMP = r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z"


def log_line_pattern(dialect: str = "re2") -> str:
    """The grammar of a receiver-log line the kernel proves, *with* its LF, as RE2.

    A body's whitespace is escaped in the log, so only the ``\n`` lxml
    writes after the declaration is allowed (as the two characters ``\n``).
    This is the specification :func:`scan_log_buffer` implements; the tests
    hold the two to each other.
    """
    return rf"^{_STAMP}\t[^\t\n<>]*\t" + _body(dialect, "", r"(?:\\n|\\r\\n)?", False) + r"\n$"


#: :func:`log_line_pattern`: the grammar the kernel implements, for valid UTF-8 lines.
LOG_LINE_RE2 = log_line_pattern("re2")

_WS = "[ \\t\\n]*"  # XML whitespace; CR is excluded because lxml normalises it
#: One whole document (``fullmatch``), XML whitespace allowed between elements.
DOCUMENT = re.compile(_WS + _body("re", _WS, _WS, True) + _WS)
#: The order the sandbox wrote until 2026 (STATUS before SENTAS): still proven
#: here for single documents and the receiver-log lines the kernel leaves,
#: so old logs are read without lxml (the kernel proves the documented order only).
OLD_ORDER: tuple[str, ...] = tuple(
    {"STATUS": "SENTAS", "SENTAS": "STATUS"}.get(tag, tag) for tag in FIELD_TAGS
)
_OLD_DOCUMENT = re.compile(_WS + _body("re", _WS, _WS, True, OLD_ORDER) + _WS)
_FROM_OLD = tuple(OLD_ORDER.index(tag) for tag in FIELD_TAGS)


def document_fields(text: str) -> tuple[str, ...] | None:
    """Each field's text (stripped of spaces), in schema order, of a flat document, or None.

    The document's elements may come in the schema's (documented) order or in
    :data:`OLD_ORDER`. None means "not provably simple": parse it with lxml instead.
    """
    match = DOCUMENT.fullmatch(text)
    if match is not None:
        return tuple(value.strip(" ") if value else "" for value in match.groups())
    match = _OLD_DOCUMENT.fullmatch(text)
    if match is None:
        return None
    groups = match.groups()
    return tuple(groups[i].strip(" ") if groups[i] else "" for i in _FROM_OLD)



# --- the grammar over bytes, for the pure (numpy) path -------------------------------------------
# RE2 reads Arrow *binary* arrays as Latin-1, one character per byte: UTF-8 is then spelled out as
# byte sequences (the shortest form only, no surrogates, nothing past U+10FFFF, and without the C1
# controls U+0080..U+009F and U+FFFD..U+FFFF, as the kernel's ``_text_end``).
_UTF8_BYTES = (
    r"\xC2[\xA0-\xBF]|[\xC3-\xDF][\x80-\xBF]"
    r"|\xE0[\xA0-\xBF][\x80-\xBF]|[\xE1-\xEC\xEE][\x80-\xBF][\x80-\xBF]|\xED[\x80-\x9F][\x80-\xBF]"
    r"|\xEF[\x80-\xBE][\x80-\xBF]|\xEF\xBF[\x80-\xBC]"
    r"|\xF0[\x90-\xBF][\x80-\xBF][\x80-\xBF]|[\xF1-\xF3][\x80-\xBF][\x80-\xBF][\x80-\xBF]|\xF4[\x80-\x8F][\x80-\xBF][\x80-\xBF]"
)
_TEXT_BYTES = r"(?:[ -%'-;=?-\[\]-~]|" + _UTF8_BYTES + r")*"  # printable ASCII but < > & \
_VALUE_BYTES = r'"(?:[ !#-%' + r"'-;=?-\[\]-~]|" + _UTF8_BYTES + r')+"'  # ... and but "
_SPACE_BYTES = r"[ \t\r\n]*"  # CR too: between markup lxml drops it with the rest of the whitespace


def record_pattern_bytes(kind: str) -> str:
    """The grammar of one record over bytes (RE2, Latin-1: for Arrow binary arrays), anchored.

    ``kind``: ``"log"`` — a receiver-log line without its LF (as
    :func:`log_line_pattern`); ``"document"`` — one document of a file of
    documents, whitespace around it, after the declaration and between the
    markup (the reader strips what surrounds a document, so whitespace may
    precede the declaration); ``"body"`` — one document as lxml is given it,
    whitespace before the root only without a declaration. The pure path
    (:mod:`.vectorscan`) proves records with these; the compiled kernel
    implements the same grammar, and the tests hold the two to each other. (The pure path
    matches the distinct skeletons of records with it, which decides the same: see
    :mod:`.vectorscan`.)
    """
    root = rf"<POSTBACK(?: {re.escape(XSI_ATTRIBUTE)}{_VALUE_BYTES})?>"
    if kind == "log":
        fields = "".join(f"(?:<{tag}>{_TEXT_BYTES}</{tag}>)?" for tag in FIELD_TAGS)
        return rf"^{_STAMP}\t[^\t\n<>]*\t(?:{_DECL}(?:\\n|\\r\\n)?)?{root}{fields}</POSTBACK>$"
    space = _SPACE_BYTES
    fields = "".join(f"(?:<{tag}>{_TEXT_BYTES}</{tag}>{space})?" for tag in FIELD_TAGS)
    head = rf"{space}(?:{_DECL}{space})?" if kind == "document" else rf"(?:{_DECL}{space}|{space})"
    if kind not in ("document", "body"):
        raise ValueError(f"unknown record kind {kind!r}")
    return rf"^{head}{root}{space}{fields}</POSTBACK>{space}$"
