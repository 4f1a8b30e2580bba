"""Hardened XML parsing shared by the client, the sandbox and the postback parser.

Every XML document skycore-lab reads comes from the network or from logs of
network traffic, so none of them is trusted:

* no entity resolution (``resolve_entities=False``): ``&xxe;`` stays unexpanded,
  so neither external entities (file reads, SSRF) nor internal ones
  (billion laughs) are ever expanded;
* no DTD loading or validation, no network access (``no_network=True``);
* ``huge_tree=False`` keeps libxml2's depth and size limits on.

lxml parser objects are not thread-safe, so each thread gets its own.
"""

from __future__ import annotations

import threading

from lxml import etree

__all__ = ["safe_parser", "parse_xml", "XMLSyntaxError", "element_text"]

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
