"""One postback document or request body, through the hardened lxml parser.

The general path of the parser: whatever the fast path (:mod:`.grammar`)
cannot prove goes through here, one document at a time —
:func:`parse_document` for an XML document (the flat ``<POSTBACK>`` shape is
still tried first with the grammar's regular expression),
:func:`parse_body` for a request body that may be a form with the document
in its ``xml`` field, and :func:`split_documents` to cut a file of
concatenated documents apart. A record that is not a postback raises
:class:`BadRecord` with the reason.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import parse_qsl

from ..redaction import mask_secret
from ..xmlsafe import XMLSyntaxError, parse_xml
from .grammar import document_fields
from .schema import FIELD_INDEX, NO_FIELDS

__all__ = ["BadRecord", "parse_document", "parse_xml_document", "parse_body", "looks_form_encoded", "split_documents"]

_SCHEMA_ATTRS = frozenset(
    {
        "{http://www.w3.org/2001/XMLSchema-instance}noNamespaceSchemaLocation",
        "{http://www.w3.org/2001/XMLSchema-instance}schemaLocation",
    }
)


class BadRecord(Exception):
    """A record that is not a postback; the message is the reason."""


def _text(element) -> str:
    # itertext: text split by a (removed) comment or nested markup is kept whole
    return "".join(element.itertext()).strip(" \t\r\n")


def _local(tag) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _put(values: list[str], extra: dict, tag: str, text: str) -> None:
    index = FIELD_INDEX.get(tag)
    if index is not None and not values[index]:
        values[index] = text
    elif index is None or text:
        # unknown element, or a repeated known one: keep it, don't drop it
        key = tag
        while key in extra:
            key += "_"
        extra[key] = text


def parse_xml_document(data: bytes) -> tuple[tuple[str, ...], dict | None]:
    """Fields and extras of one document via lxml (the slow, general path)."""
    try:
        root = parse_xml(data)
    except XMLSyntaxError as exc:
        raise BadRecord(f"not well-formed XML: {exc}") from None
    except ValueError as exc:  # e.g. unicode strings with an encoding declaration
        raise BadRecord(f"not well-formed XML: {exc}") from None
    values = list(NO_FIELDS)
    extra: dict[str, str] = {}
    name = _local(root.tag)
    for attr, value in root.attrib.items():
        if attr not in _SCHEMA_ATTRS:
            extra[_local(attr)] = value
    if name == "POSTBACK":
        for child in root:
            _put(values, extra, _local(child.tag), _text(child))
    elif name == "NOTIFICATION":
        # 2011 envelope: ORIGIN/CODE at the top, the rest inside BODY,
        # STATUS as attributes; ID/CREATED (attributes) and HISTORYID go to extra.
        for child in root:
            tag = _local(child.tag)
            if tag != "BODY":
                _put(values, extra, tag, _text(child))
                continue
            for item in child:
                item_tag = _local(item.tag)
                if item_tag == "STATUS" and item.attrib:
                    status = item.get("STATUS") or _text(item)
                    _put(values, extra, "STATUS", status)
                    for attr, value in item.attrib.items():
                        if attr != "STATUS":
                            extra[f"STATUS_{_local(attr)}"] = value
                else:
                    _put(values, extra, item_tag, _text(item))
    else:
        raise BadRecord(f"wrong root element <{name}> (expected POSTBACK or NOTIFICATION)")
    return tuple(values), (extra or None)


def parse_document(data: bytes) -> tuple[tuple[str, ...], dict | None]:
    """One XML document: the fast path if it provably applies, else lxml."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None:
        fields = document_fields(text)
        if fields is not None:
            return fields, None
    return parse_xml_document(data)


_SECRET_NAME = re.compile(r"(?i)secret|token|key|pass|auth|sig")


def looks_form_encoded(body: bytes) -> bool:
    head = body.lstrip()[:64]
    return not head.startswith(b"<") and re.match(rb"[A-Za-z_][\w.\-]*=", head) is not None


def parse_body(body: bytes) -> tuple[tuple[str, ...], dict | None]:
    """A request body: an XML document, or a form with the document in ``xml``."""
    if not looks_form_encoded(body):
        return parse_document(body)
    try:
        pairs = parse_qsl(body.decode("utf-8").strip(), keep_blank_values=True, strict_parsing=True)
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadRecord(f"malformed form-encoded body: {exc}") from None
    documents = [value for key, value in pairs if key.lower() == "xml"]
    if not documents:
        raise BadRecord("form-encoded body without an 'xml' field")
    fields, extra = parse_document(documents[0].encode("utf-8"))
    # a receiver's shared secret may ride along as a form field: keep the
    # field, never its value
    others = {
        f"form:{key}": mask_secret(value) if _SECRET_NAME.search(key) else value
        for key, value in pairs
        if key.lower() != "xml"
    }
    if others:
        extra = {**(extra or {}), **others}
    return fields, extra


# --- files of concatenated documents ----------------------------------------------------------
# Where a document starts: a declaration, or a root start tag not preceded by one.
_DOC_START = re.compile(rb"<\?xml[\s?]|<(?:POSTBACK|NOTIFICATION)[\s>/]")
_ROOT_END = re.compile(rb"</(?:POSTBACK|NOTIFICATION)\s*>")
# a declaration, then whitespace, comments, PIs, a DOCTYPE (with internal subset)
_PROLOG = re.compile(rb"<\?xml.*?\?>(?:\s+|<!--.*?-->|<\?.*?\?>|<!DOCTYPE(?:[^\[>]|\[.*?\])*>)*", re.S)


def split_documents(data: bytes) -> Iterator[tuple[int, bytes]]:
    """``(offset, document bytes)`` for each document of a concatenation.

    A declaration always starts a new document; a POSTBACK/NOTIFICATION start
    tag does too unless it directly follows a declaration. Text after a
    document's root end tag is its own (bad) record, so garbage between two
    documents never spoils either of them.
    """
    starts = []
    for match in _DOC_START.finditer(data):
        start = match.start()
        if data.startswith(b"<?xml", start):
            starts.append(start)
            continue
        if starts and data.startswith(b"<?xml", starts[-1]):
            prolog = _PROLOG.match(data, starts[-1])
            if prolog.end() == start:
                continue  # the root of the document whose declaration we just saw
        starts.append(start)
    bounds = [*starts, len(data)]
    if not starts or data[: starts[0]].strip(b" \t\r\n\xef\xbb\xbf"):
        bounds.insert(0, 0)
    for begin, end in zip(bounds, bounds[1:]):
        piece = data[begin:end]
        ends = list(_ROOT_END.finditer(piece))
        if ends and piece[ends[-1].end() :].strip(b" \t\r\n\xef\xbb\xbf"):
            cut = ends[-1].end()
            yield begin, piece[:cut]
            tail_start = cut + len(piece[cut:]) - len(piece[cut:].lstrip())
            yield begin + tail_start, piece[tail_start:]
        elif piece.strip(b" \t\r\n\xef\xbb\xbf"):
            yield begin, piece
