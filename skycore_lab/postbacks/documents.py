"""One postback document or request body, through the hardened lxml parser.

The general path of the parser: whatever the fast path (:mod:`.grammar`)
cannot prove goes through here, one document at a time —
:func:`parse_document` for an XML document (the flat ``<POSTBACK>`` shape is
still tried first with the grammar's regular expression),
:func:`parse_body` for a request body that may be a form with the document
in its ``xml`` field, and :func:`split_documents` to cut a file of
concatenated documents apart. A record that is not a postback raises
:class:`BadRecord` with the reason.

A document gives one :class:`Notification` per event: a flat
``<POSTBACK>`` one, a ``<NOTIFICATION>`` envelope one, and a bundle
(``<POSTBACK>`` holding ``<NOTIFICATION>`` elements, as the MO and 2012
documentation show) one per ``<NOTIFICATION>``. A document that is not
well-formed XML is given the one narrow repair of
:func:`skycore_lab.xmlsafe.repair_xml` (an unclosed leaf element closed at
the next tag, a missing space between attributes); its notifications are
then marked ``recovered`` and the repairs listed, so the reader can say so.

What one notification keeps beyond its columns goes to its ``extra``
dictionary, bounded (:data:`MAX_EXTRA_VALUES` values, :data:`MAX_EXTRA_BYTES`
bytes: one hostile body must not cost more than its size) and built in
linear time.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from .. import reference as ref
from ..redaction import mask_secret
from ..xmlsafe import XMLSyntaxError, parse_xml, repair_xml
from .grammar import document_fields
from .schema import FIELD_INDEX, NO_FIELDS

__all__ = [
    "BadRecord",
    "Notification",
    "Parsed",
    "MAX_EXTRA_VALUES",
    "MAX_EXTRA_BYTES",
    "DROPPED",
    "TEXT_KEY",
    "parse_document",
    "parse_xml_document",
    "parse_body",
    "looks_form_encoded",
    "split_documents",
]

_SCHEMA_ATTRS = frozenset(
    {
        "{http://www.w3.org/2001/XMLSchema-instance}noNamespaceSchemaLocation",
        "{http://www.w3.org/2001/XMLSchema-instance}schemaLocation",
    }
)
#: Elements that hold others: never "closed at the next tag" by the repair.
_CONTAINERS = frozenset({"POSTBACK", "NOTIFICATION", "BODY", "CONTENT"})

#: At most this many values (attribute and element texts, list items
#: counted one by one) go to one notification's ``extra``.
MAX_EXTRA_VALUES = 256
#: At most this many bytes (keys and values, UTF-8) go to one notification's ``extra``.
MAX_EXTRA_BYTES = 64 * 1024
#: ``extra`` key counting the values dropped over those caps.
DROPPED = "#dropped"
#: ``extra`` key of text standing directly in an envelope, outside any element.
TEXT_KEY = "#text"


class BadRecord(Exception):
    """A record that is not a postback; the message is the reason."""


@dataclass(slots=True)
class Notification:
    """One event of a document: its field texts, its extra, where it starts.

    ``line`` is the 1-based line of the document where the notification
    starts (bundles: its ``<NOTIFICATION>``). ``dropped`` counts the extra
    values over the caps (also in ``extra["#dropped"]``).
    """

    fields: tuple[str, ...]
    extra: dict | None
    line: int = 1
    recovered: bool = False
    dropped: int = 0


@dataclass(slots=True)
class Parsed:
    """The notifications of one document, and the repairs it needed (empty if none)."""

    notifications: list[Notification]
    repairs: tuple[str, ...] = field(default=())


def _local(tag) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _strip(text: str) -> str:
    return text.strip(" \t\r\n")


def _text(element) -> str:
    # itertext: text split by a (removed) comment or nested markup is kept whole
    return _strip("".join(element.itertext()))


class _Builder:
    """One notification's columns and extra, built in one pass (linear, capped)."""

    __slots__ = ("values", "extra", "count", "size", "dropped")

    def __init__(self) -> None:
        self.values = list(NO_FIELDS)
        self.extra: dict[str, str | list[str]] = {}
        self.count = 0
        self.size = 0
        self.dropped = 0

    def add(self, key: str, value: str) -> None:
        """Keep ``value`` under ``key``; a repeated key holds a list, in document order."""
        cost = len(value.encode("utf-8", "surrogatepass")) + (0 if key in self.extra else len(key))
        if self.count >= MAX_EXTRA_VALUES or self.size + cost > MAX_EXTRA_BYTES:
            self.dropped += 1
            return
        self.count += 1
        self.size += cost
        held = self.extra.get(key)
        if held is None:
            self.extra[key] = value
        elif isinstance(held, list):
            held.append(value)
        else:
            self.extra[key] = [held, value]

    def field(self, tag: str, text: str) -> None:
        index = FIELD_INDEX.get(tag)
        if index is not None and not self.values[index]:
            self.values[index] = text
        elif index is None or text:
            # unknown element, or a repeat of a known one: kept, never dropped
            self.add(tag, text)

    def attributes(self, element, prefix: str) -> None:
        for name, value in element.attrib.items():
            self.add(f"{prefix}@{_local(name)}", value)

    def loose_text(self, element, key: str) -> None:
        """Text standing directly in ``element`` (not in a child): kept under ``key``."""
        parts = [element.text or ""] + [child.tail or "" for child in element]
        text = _strip("".join(parts))
        if text:
            self.add(key, text)

    def child(self, element, path: str = "") -> None:
        """One element inside a notification: a field, a legacy STATUS, or kept in extra."""
        tag = _local(element.tag)
        if not tag:
            return  # an unexpanded entity node: never data
        index = None if path else FIELD_INDEX.get(tag)
        if self.count >= MAX_EXTRA_VALUES and (index is None or self.values[index]):
            # extra is full: count what this element would have added, without building it
            self.dropped += sum(1 + len(item.attrib) for item in element.iter() if isinstance(item.tag, str))
            return
        key = f"{path}/{tag}" if path else tag
        if not path and tag == "STATUS" and element.attrib:
            self.legacy_status(element)
        elif not path and tag in FIELD_INDEX:
            self.attributes(element, key)
            self.field(tag, _text(element))
        elif len(element):
            # a container (MO CONTENT/FILE…): its elements under their path, repeats as lists
            self.attributes(element, key)
            for item in element:
                self.child(item, key)
            self.loose_text(element, f"{key}/{TEXT_KEY}")
        else:
            self.attributes(element, key)
            self.field(key, _text(element))  # key is the bare tag at the top: a field, or kept

    def legacy_status(self, element) -> None:
        """``<STATUS PROTOCOL=… STATUS=…/>`` (2011) or ``<STATUS celly=… provider=… text=…/>`` (2012).

        The status is the ``text`` attribute, else the ``status`` one, else the
        gateway number ``celly`` read as :data:`skycore_lab.reference.LEGACY_GATEWAY_STATUS`;
        every other attribute goes to extra as ``STATUS_<NAME>``.
        """
        attributes = {_local(name).upper(): value for name, value in element.attrib.items()}
        used = next((name for name in ("TEXT", "STATUS") if _strip(attributes.get(name, ""))), None)
        if used is not None:
            status = _strip(attributes[used])
        else:
            status = ref.LEGACY_GATEWAY_STATUS.get(_strip(attributes.get("CELLY", "")), "")
        for name, value in attributes.items():
            if name != used:
                self.add(f"STATUS_{name}", value)
        text = _text(element)
        if status:
            self.field("STATUS", status)
            if text:
                self.add("STATUS", text)
        else:
            self.field("STATUS", text)

    def notification(self, line: int, recovered: bool) -> Notification:
        if self.dropped:
            self.extra[DROPPED] = str(self.dropped)
        return Notification(tuple(self.values), self.extra or None, line, recovered, self.dropped)


def _envelope(element, recovered: bool, shared: list[tuple[str, str]]) -> Notification:
    """A ``<NOTIFICATION>``: ID/CREATED attributes, ORIGIN/CODE, the rest in BODY (or beside it)."""
    builder = _Builder()
    for key, value in shared:
        builder.add(key, value)
    for name, value in element.attrib.items():
        # the 2011-2012 pages write ID/CREATED in both cases: one spelling in extra
        builder.add(_local(name).upper(), value)
    for child in element:
        if _local(child.tag) == "BODY":
            builder.attributes(child, "BODY")
            for item in child:
                builder.child(item)
            builder.loose_text(child, TEXT_KEY)
        else:
            builder.child(child)
    builder.loose_text(element, TEXT_KEY)
    return builder.notification(element.sourceline or 1, recovered)


def _notifications(root, recovered: bool) -> list[Notification]:
    name = _local(root.tag)
    if name == "NOTIFICATION":
        return [_envelope(root, recovered, [])]
    if name != "POSTBACK":
        raise BadRecord(f"wrong root element <{name}> (expected POSTBACK or NOTIFICATION)")
    root_attributes = [(_local(a), v) for a, v in root.attrib.items() if a not in _SCHEMA_ATTRS]
    bundled = [child for child in root if _local(child.tag) == "NOTIFICATION"]
    if not bundled:
        builder = _Builder()
        for key, value in root_attributes:
            builder.add(key, value)
        for child in root:
            builder.child(child)
        builder.loose_text(root, TEXT_KEY)
        return [builder.notification(1, recovered)]
    # a bundle: each NOTIFICATION is one event; the root's own attributes go with each
    shared = [(f"POSTBACK@{key}", value) for key, value in root_attributes]
    events = [_envelope(child, recovered, shared) for child in bundled]
    others = [child for child in root if _local(child.tag) not in ("NOTIFICATION", "")]
    builder = _Builder()
    for child in others:
        builder.child(child)
    builder.loose_text(root, TEXT_KEY)
    if builder.extra or any(builder.values):
        # elements beside the bundled notifications: an event of their own, not lost
        events.append(builder.notification(others[0].sourceline if others else 1, recovered))
    return events


def parse_xml_document(data: bytes) -> Parsed:
    """The notifications of one document via lxml (the slow, general path).

    A document lxml refuses gets the narrow repair of
    :func:`skycore_lab.xmlsafe.repair_xml`; if that does not make it
    well-formed, it is a :class:`BadRecord` with lxml's original reason.
    """
    repairs: tuple[str, ...] = ()
    try:
        root = parse_xml(data)
    except (XMLSyntaxError, ValueError) as exc:  # ValueError: e.g. unicode strings with an encoding declaration
        reason = f"not well-formed XML: {exc}"
        repaired = repair_xml(data, containers=_CONTAINERS) if isinstance(data, bytes) else None
        if repaired is None:
            raise BadRecord(reason) from None
        try:
            root = parse_xml(repaired[0])
        except (XMLSyntaxError, ValueError):
            raise BadRecord(reason) from None
        repairs = tuple(str(r) for r in repaired[1])
    return Parsed(_notifications(root, bool(repairs)), repairs)


def parse_document(data: bytes) -> Parsed:
    """One XML document: the fast path if it provably applies, else lxml."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None:
        fields = document_fields(text)
        if fields is not None:
            return Parsed([Notification(fields, None)])
    return parse_xml_document(data)


_SECRET_NAME = re.compile(r"(?i)secret|token|key|pass|auth|sig")


def looks_form_encoded(body: bytes) -> bool:
    head = body.lstrip()[:64]
    return not head.startswith(b"<") and re.match(rb"[A-Za-z_][\w.\-]*=", head) is not None


def parse_body(body: bytes) -> Parsed:
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
    parsed = parse_document(documents[0].encode("utf-8"))
    # a receiver's shared secret may ride along as a form field: keep the
    # field, never its value
    others = {
        f"form:{key}": mask_secret(value) if _SECRET_NAME.search(key) else value
        for key, value in pairs
        if key.lower() != "xml"
    }
    if others:
        for notification in parsed.notifications:
            notification.extra = {**(notification.extra or {}), **others}
    return parsed


# --- files of concatenated documents ----------------------------------------------------------
# Where a document starts: a declaration, or a root start tag not preceded by one.
_DOC_START = re.compile(rb"<\?xml[\s?]|<(?:POSTBACK|NOTIFICATION)[\s>/]")
_ROOT_END = re.compile(rb"</(?:POSTBACK|NOTIFICATION)\s*>")
# a declaration, then whitespace, comments, PIs, a DOCTYPE (with internal subset)
_PROLOG = re.compile(rb"<\?xml.*?\?>(?:\s+|<!--.*?-->|<\?.*?\?>|<!DOCTYPE(?:[^\[>]|\[.*?\])*>)*", re.S)


def split_documents(data: bytes) -> Iterator[tuple[int, bytes]]:
    """``(offset, document bytes)`` for each document of a concatenation.

    A declaration always starts a new document; a POSTBACK/NOTIFICATION start
    tag does too unless it directly follows a declaration or stands inside an
    open ``<POSTBACK>`` (a bundle's notifications). Text after a document's
    root end tag is its own (bad) record, so garbage between two documents
    never spoils either of them.
    """
    starts = []
    bundle_end = -1  # where the open <POSTBACK> (if any) ends: its NOTIFICATIONs are not documents
    for match in _DOC_START.finditer(data):
        start = match.start()
        if data.startswith(b"<NOTIFICATION", start) and start < bundle_end:
            continue
        if data.startswith(b"<POSTBACK", start):
            close = data.find(b"</POSTBACK", start)
            bundle_end = len(data) if close < 0 else close
        if data.startswith(b"<?xml", start):
            starts.append(start)
            continue
        if starts and data.startswith(b"<?xml", starts[-1]):
            prolog = _PROLOG.match(data, starts[-1])
            if prolog is not None and prolog.end() == start:
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
            # whitespace or the next document's BOM after the root is not this document's
            yield begin, piece[: ends[-1].end()] if ends else piece
