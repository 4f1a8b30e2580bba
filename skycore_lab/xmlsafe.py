"""Hardened XML parsing shared by the client, the sandbox and the postback parser.

Every XML document skycore-lab reads comes from the network or from logs of
network traffic, so none of them is trusted:

* no entity resolution (``resolve_entities=False``): ``&xxe;`` stays unexpanded,
  so neither external entities (file reads, SSRF) nor internal ones
  (billion laughs) are ever expanded;
* no DTD loading or validation, no network access (``no_network=True``);
* ``huge_tree=False`` keeps libxml2's depth and size limits on.

lxml parser objects are not thread-safe, so each thread gets its own.

:func:`repair_xml` is the one narrow repair the readers apply to the
documentation's own non-well-formed shapes, before giving up on a document:
it never guesses beyond the shapes it names, and says what it changed.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass

from lxml import etree

__all__ = ["safe_parser", "parse_xml", "XMLSyntaxError", "element_text", "repair_xml", "Repair", "MAX_REPAIR_BYTES"]

XMLSyntaxError = etree.XMLSyntaxError

_local = threading.local()


#: lxml options that make parsing safe: no entities, no network, no DTD,
#: no huge trees. Also for ``etree.iterparse`` (streaming readers).
HARDENED_OPTIONS = dict(
    resolve_entities=False,
    no_network=True,
    load_dtd=False,
    dtd_validation=False,
    huge_tree=False,
    remove_comments=True,
    remove_pis=True,
)


def _new_parser() -> etree.XMLParser:
    return etree.XMLParser(**HARDENED_OPTIONS)


def safe_parser() -> etree.XMLParser:
    """Return this thread's hardened :class:`lxml.etree.XMLParser`."""
    parser = getattr(_local, "parser", None)
    if parser is None:
        parser = _local.parser = _new_parser()
    return parser


def parse_xml(data: bytes | str) -> etree._Element:
    """Parse one XML document with the hardened parser.

    Raises
    ------
    lxml.etree.XMLSyntaxError
        When the document is not well-formed, or declares a DTD with entities
        (rejected outright: no legitimate Skycore document carries one).
    """
    if isinstance(data, str):
        data = data.encode("utf-8")
    root = etree.fromstring(data, parser=safe_parser())
    tree = root.getroottree()
    if tree.docinfo.internalDTD is not None or tree.docinfo.system_url or tree.docinfo.public_id:
        raise etree.XMLSyntaxError("DTD declarations are not accepted", None, 0, 0, "<document>")
    return root


def element_text(root: etree._Element, tag: str) -> str | None:
    """Text of the first child ``tag`` of ``root`` (stripped), or None when absent."""
    child = root.find(tag)
    if child is None:
        return None
    return (child.text or "").strip()


# --- the narrow repair ------------------------------------------------------------------------------
#: Documents larger than this are never repaired (the receiver stores bodies of at most 64 KiB).
MAX_REPAIR_BYTES = 64 * 1024
_MAX_REPAIR_DEPTH = 64
_NAME = re.compile(rb"[A-Za-z_][\w.:-]*")
_ATTRIBUTE = re.compile(rb"""([ \t\r\n]*)([A-Za-z_][\w.:-]*)[ \t\r\n]*=[ \t\r\n]*("[^"<]*"|'[^'<]*')""")
_BARE_AMPERSAND = re.compile(rb"&(?!(?:[A-Za-z_][\w.-]*|#[0-9]+|#x[0-9A-Fa-f]+);)")


@dataclass(frozen=True)
class Repair:
    """One change :func:`repair_xml` made: what, and on which 1-based line of the document."""

    kind: str  # "unclosed element", "missing space between attributes", "stray end tag", "bare ampersand"
    element: str
    line: int

    def __str__(self) -> str:
        return f"line {self.line}: {self.kind} <{self.element}>"


class _GiveUp(Exception):
    pass


def _start_tag(data: bytes, lt: int, gt: int, repairs: list, line: int, ampersands: bool) -> tuple[bytes, bytes, bool]:
    """Name, the tag rewritten (attribute spacing, and with ``ampersands`` bare ``&``, repaired),
    and whether it is self-closed."""
    inner = data[lt + 1 : gt]
    empty = inner.endswith(b"/")
    if empty:
        inner = inner[:-1]
    name = _NAME.match(inner)
    if name is None:
        raise _GiveUp
    at, out = name.end(), [inner[: name.end()]]
    while True:
        attribute = _ATTRIBUTE.match(inner, at)
        if attribute is None:
            break
        space, key, value = attribute.groups()
        if not space:  # CREATED="…"ID="…": the documented missing space
            repairs.append(Repair("missing space between attributes", name.group().decode("utf-8", "replace"), line))
            space = b" "
        if ampersands and b"&" in value:
            fixed = _BARE_AMPERSAND.sub(b"&amp;", value)
            if fixed != value:
                repairs.append(Repair("bare ampersand", name.group().decode("utf-8", "replace"), line))
                value = fixed
        out.append(space + key + b"=" + value)
        at = attribute.end()
    if inner[at:].strip(b" \t\r\n"):
        raise _GiveUp  # anything else wrong inside the tag: not ours to guess
    out.append(inner[at:])
    return name.group(), b"<" + b"".join(out) + (b"/>" if empty else b">"), empty


def repair_xml(
    data: bytes,
    *,
    containers: frozenset[str] = frozenset(),
    stray_end_tags: bool = False,
    bare_ampersands: bool = False,
) -> tuple[bytes, list[Repair]] | None:
    """The document with the documentation's own malformations repaired, or None.

    Repairs, each recorded as a :class:`Repair`:

    * an **unclosed element** is closed at the next tag: ``<A>text<B>`` becomes
      ``<A>text</A><B>``, and when that next tag opens another ``A`` that is
      itself never closed (``<FROM_MASK><FROM_MASK>``, an end tag written as a
      start tag) it becomes ``A``'s end tag. Elements named in ``containers``
      are never closed this way (their children would move);
    * a **missing space between attributes** (``CREATED="…"ID="325"``) is put back;
    * with ``stray_end_tags``, an end tag that closes nothing is dropped (the
      sending report's ``<BATCH …/>`` … ``</BATCH>``);
    * with ``bare_ampersands``, an ``&`` that starts no reference becomes
      ``&amp;`` (the sending report's ``carrier="AT&T"``).

    Anything else — a DTD, an unterminated comment or tag, an unclosed
    container, an element left open at the end (a truncated document), a
    document larger than :data:`MAX_REPAIR_BYTES` or nested deeper than 64
    levels — returns None: the caller keeps it a bad record. The work is
    linear in the document's size. Line numbers are those of ``data``
    (repairs never add or remove a line).
    """
    if len(data) > MAX_REPAIR_BYTES:
        return None
    try:
        return _repair(data, containers, stray_end_tags, bare_ampersands)
    except _GiveUp:
        return None


def _repair(data: bytes, containers, stray_end_tags: bool, bare_ampersands: bool):
    repairs: list[Repair] = []
    pieces: list[bytes] = []  # the output, one piece per token
    starts: list[tuple[bytes, int, int]] = []  # open elements: name, piece index, line
    open_names: dict[bytes, int] = {}
    unclosed: list[tuple[int, bytes, int]] = []  # piece index of the start tag, name, line
    end_of: dict[int, int] = {}  # start piece → piece index of the tag after it
    pos, size, line = 0, len(data), 1
    last_start: int | None = None
    while pos < size:
        lt = data.find(b"<", pos)
        stop = size if lt < 0 else lt
        if stop > pos:
            text = data[pos:stop]
            if bare_ampersands and b"&" in text:
                fixed = _BARE_AMPERSAND.sub(b"&amp;", text)
                if fixed != text:
                    repairs.append(Repair("bare ampersand", "#text", line))
                    text = fixed
            pieces.append(text)
            line += data.count(b"\n", pos, stop)
        if lt < 0:
            break
        if last_start is not None:
            end_of[last_start] = len(pieces)  # the next tag after a start tag
            last_start = None
        for opener, closer in ((b"<!--", b"-->"), (b"<![CDATA[", b"]]>"), (b"<?", b"?>")):
            if data.startswith(opener, lt):
                end = data.find(closer, lt + len(opener))
                if end < 0:
                    raise _GiveUp
                end += len(closer)
                pieces.append(data[lt:end])
                line += data.count(b"\n", lt, end)
                pos = end
                break
        else:
            if data.startswith(b"<!", lt):
                raise _GiveUp  # DTDs are never repaired
            gt = data.find(b">", lt + 1)
            if gt < 0 or data.find(b"<", lt + 1, gt) >= 0:
                raise _GiveUp
            if data[lt + 1 : lt + 2] == b"/":
                name = data[lt + 2 : gt].strip(b" \t\r\n")
                if not _NAME.fullmatch(name):
                    raise _GiveUp
                if open_names.get(name):
                    while starts[-1][0] != name:
                        inner, index, at_line = starts.pop()
                        open_names[inner] -= 1
                        if inner.decode("utf-8", "replace") in containers:
                            raise _GiveUp
                        unclosed.append((index, inner, at_line))
                    starts.pop()
                    open_names[name] -= 1
                    pieces.append(data[lt : gt + 1])
                elif stray_end_tags:
                    repairs.append(Repair("stray end tag", name.decode("utf-8", "replace"), line))
                    pieces.append(b"")
                else:
                    raise _GiveUp
            else:
                name, tag, empty = _start_tag(data, lt, gt, repairs, line, bare_ampersands)
                pieces.append(tag)
                if not empty:
                    starts.append((name, len(pieces) - 1, line))
                    open_names[name] = open_names.get(name, 0) + 1
                    if len(starts) > _MAX_REPAIR_DEPTH:
                        raise _GiveUp
                    last_start = len(pieces) - 1
            line += data.count(b"\n", lt, gt)
            pos = gt + 1
    if starts:
        raise _GiveUp  # left open at the end: truncated, not a typo
    if not unclosed and not repairs:
        return None  # nothing we know how to repair
    consumed: set[int] = set()
    for index, name, at_line in sorted(unclosed):
        if index in consumed:
            continue
        following = end_of.get(index)
        if following is None:
            raise _GiveUp
        closing = b"</" + name + b">"
        twin = next((u for u in unclosed if u[0] == following and u[1] == name), None)
        if twin is not None:  # <A>…<A>: the second is the end tag, mistyped
            pieces[following] = closing
            consumed.add(following)
        else:
            pieces[following] = closing + pieces[following]
        repairs.append(Repair("unclosed element", name.decode("utf-8", "replace"), at_line))
    return b"".join(pieces), sorted(repairs, key=lambda r: r.line)
