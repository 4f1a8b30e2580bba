"""The sandbox's HTTP endpoint: a plain ASGI app speaking ``sendSavedMMS`` and ``getSendingStatistics``.

Path ``/API/wxml/1.3/index.php`` (as in production). Accepted forms:

* GET with lower-case query keys (``action`` case-insensitive);
* POST of a ``<REQUEST>`` document in the form field ``xml`` (documented);
* POST of the ``<REQUEST>`` document as the raw body (seen in public clients);
* POST of form fields named like the GET keys.

API-level failures are HTTP 200 with ``<STATUS>Failure</STATUS>`` (like the
platform); ERRORINFO is the documented Appendix B text (``$error`` of E108
replaced by the parser's message, ``X`` of E106 by the interval; E101–E103
from the last revision of Appendix B that lists them).

Answers, in the documented shapes:

* one number, sent: ``STATUS, MMSID, TRACKINGID, TO, FROM, STATUSDETAILS``
  (the current page; STATUSDETAILS "MMS request accepted and queued for
  delivery");
* several numbers (``TO`` comma-separated, at most 100, E623 beyond): the
  2013 page's ``STATUS`` Success, ``MMSID``, then one ``<SENDING>`` per number
  in request order — ``TRACKINGID, TO`` when sent, ``ERRORCODE, TO,
  ERRORINFO`` when that number is refused (E110, E114, E715, E628 for an
  unsupported carrier). A bad number never stops the others. As documented,
  a SENDING has no FROM (the postbacks carry the shortcode used);
* a failure of the whole call: ``STATUS, ERRORCODE, TO, ERRORINFO``, TO
  before ERRORINFO as documented, TO listing every number of the request
  (omitted when the request has none, or could not be read); one number
  refused is such a failure.

``getSendingStatistics`` answers ``STATUS`` Success and ``URL``, the link to
its report, served by ``GET /reports/<token>.xml`` on the same server
(:mod:`skycore_lab.sandbox.report`); its failures have the shape above.

Decisions where the documentation is silent:

* A missing action, or one the API does not document: E101 ("'action'
  required/Invalid Action"); another documented action (sendSMS, ...): E107
  (no rights for this action). No ``api_key``: E102, or E103 when a ``user``
  is given without ``pass`` (the old user/password login; the sandbox has no
  users, so ``user`` with ``pass`` is E104).
* A missing or unknown ``FROM``: E111. A bad ``DDMTIMEOUT`` (not a
  non-negative integer, or beyond :data:`skycore_lab.reference.MAX_DDM_TIMEOUT_MIN`)
  or ``DDMFORCE`` value, an unparseable request or a non-``<REQUEST>`` root:
  E100.
* An unknown campaign (E714) and an OPERATORID the platform does
  not know (E651) or does not support (E628) concern the whole call.
* CUSTOMTEXT, CUSTOMSUBJECT, DATA, FROM_MASK, FALLBACKSMSTEXT and the
  documented-then-removed DEVICE are accepted and do not change the
  simulation; unknown parameters (the 2013 page's ``sdata_`` typo) are
  ignored.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from urllib.parse import parse_qsl

from lxml import etree

from ..server import read_body
from ..xmlsafe import XMLSyntaxError, parse_xml
from ..reference import api_error_codes
from .report import REPORTS_PATH

__all__ = ["ENDPOINT_PATH", "SandboxApp", "ApiFailure", "Sent", "parse_request", "response_xml",
           "ACCEPTED_DETAILS"]

ENDPOINT_PATH = "/API/wxml/1.3/index.php"
MAX_BODY = 1 << 20
_XML_HEADERS = [(b"content-type", b"text/xml; charset=utf-8")]
#: The current page's STATUSDETAILS of a success answer.
ACCEPTED_DETAILS = "MMS request accepted and queued for delivery"


class ApiFailure(Exception):
    """An API-level failure: ``<STATUS>Failure</STATUS>``, or one number's ``<SENDING>`` refusal.

    ``to`` is the number (or the comma-separated numbers) it concerns, when known.
    """

    def __init__(self, code: str, to: str | None = None, *, error: str | None = None, interval: float | None = None):
        self.code = code
        self.to = to
        text = api_error_codes().get(code, "Invalid request.")
        if error is not None:
            text = text.replace("$error", error)
        if interval is not None:
            text = text.replace("every X seconds", f"every {interval:g} seconds")
        self.info = text
        super().__init__(f"{code}: {text}")


def _xml_params(body: bytes) -> dict:
    try:
        root = parse_xml(body)
    except XMLSyntaxError as exc:
        raise ApiFailure("E108", error=str(exc).split(", line")[0]) from None
    if root.tag != "REQUEST":
        raise ApiFailure("E100")
    params: dict = {"customtext": {}, "data": {}}
    for child in root:
        if not isinstance(child.tag, str):
            continue
        tag = child.tag.lower()
        if tag == "customtext":
            slide = (child.findtext("SLIDE") or "").strip()
            params["customtext"][slide] = child.findtext("VALUE") or ""
        elif tag == "data":
            params["data"].update({str(item.tag).lower(): item.text or "" for item in child if isinstance(item.tag, str)})
        else:
            params[tag] = (child.text or "").strip()
    return params


def _key_value_params(pairs: list[tuple[str, str]]) -> dict:
    params: dict = {"customtext": {}, "data": {}}
    for key, value in pairs:
        key = key.lower()
        if key.startswith("customtext_"):
            params["customtext"][key[len("customtext_"):]] = value
        elif key.startswith("data_"):
            params["data"][key[len("data_"):]] = value
        else:
            params[key] = value.strip()
    return params


def parse_request(method: str, query: bytes, body: bytes) -> dict:
    """The request's parameters, keys lower-case (GET names); raises ApiFailure (E100/E108)."""
    if method in ("GET", "HEAD"):
        pairs = parse_qsl(query.decode("latin-1"), keep_blank_values=True)
        if not pairs:
            raise ApiFailure("E100")
        return _key_value_params(pairs)
    if method != "POST":
        raise ApiFailure("E100")
    stripped = body.lstrip()
    if stripped.startswith(b"<"):
        return _xml_params(stripped)
    if body:
        try:
            pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
        except UnicodeDecodeError:
            raise ApiFailure("E100") from None
        form = dict(pairs)
        if "xml" in form:
            return _xml_params(form["xml"].encode("utf-8"))
        if pairs:
            return _key_value_params(pairs)
    if query:
        return _key_value_params(parse_qsl(query.decode("latin-1"), keep_blank_values=True))
    raise ApiFailure("E100")


@dataclass(frozen=True)
class Sent:
    """One number the platform took: its tracking id, and the shortcode used."""

    tracking_id: str
    to: str
    sender: str


def response_xml(*, failure: ApiFailure | None = None, mms_id: str | None = None,
                 outcomes: list[Sent | ApiFailure] | None = None, link: str | None = None) -> bytes:
    """A ``<RESPONSE>`` in a documented shape (see the module docstring).

    ``failure``: the whole call failed. ``link``: a getSendingStatistics
    answer. Else ``outcomes``, one per number in request order: one
    :class:`Sent` gives the flat one-number answer, several give one
    ``<SENDING>`` each.
    """
    root = etree.Element("RESPONSE")

    def add(parent, tag, text):
        etree.SubElement(parent, tag).text = text

    if link is not None and failure is None:
        add(root, "STATUS", "Success")
        add(root, "URL", link)
    elif failure is not None:
        add(root, "STATUS", "Failure")
        add(root, "ERRORCODE", failure.code)
        if failure.to:
            add(root, "TO", failure.to)
        add(root, "ERRORINFO", failure.info)
    elif len(outcomes) == 1 and isinstance(outcomes[0], Sent):
        (sent,) = outcomes
        for tag, text in (("STATUS", "Success"), ("MMSID", mms_id), ("TRACKINGID", sent.tracking_id),
                          ("TO", sent.to), ("FROM", sent.sender), ("STATUSDETAILS", ACCEPTED_DETAILS)):
            add(root, tag, text)
    else:
        add(root, "STATUS", "Success")
        add(root, "MMSID", mms_id)
        for outcome in outcomes:
            block = etree.SubElement(root, "SENDING")
            if isinstance(outcome, Sent):
                add(block, "TRACKINGID", outcome.tracking_id)
                add(block, "TO", outcome.to)
            else:
                add(block, "ERRORCODE", outcome.code)
                add(block, "TO", outcome.to or "")
                add(block, "ERRORINFO", outcome.info)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + etree.tostring(root, encoding="UTF-8")


class SandboxApp:
    """ASGI callable; ``platform`` does the API logic (:class:`~skycore_lab.sandbox.core.Platform`)."""

    def __init__(self, platform):
        self.platform = platform

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return
        body = await read_body(receive, MAX_BODY)
        if body is None:
            await _reply(send, 413, b"request too large", [(b"content-type", b"text/plain")])
            return
        if scope["path"].startswith(REPORTS_PATH) and scope["method"] in ("GET", "HEAD"):
            report = self.platform.report_file(scope["path"])
            if report is None:
                await _reply(send, 404, b"no such report", [(b"content-type", b"text/plain")])
            else:
                await _reply(send, 200, report, [(b"content-type", b"application/xml")])
            return
        if scope["path"] != ENDPOINT_PATH:
            await _reply(send, 404, b"not found", [(b"content-type", b"text/plain")])
            return
        arrived_wall, arrived_loop = time.time(), _loop_time()
        params: dict = {}
        try:
            params = parse_request(scope["method"], scope.get("query_string", b""), body)
            if self.platform.is_statistics(params):
                # on a worker thread: a large report takes seconds, and the loop posts the postbacks
                link = await asyncio.to_thread(self.platform.sending_statistics, params, arrived_wall,
                                               _base_url(scope))
                payload = response_xml(link=link)
            else:
                mms_id, outcomes = self.platform.handle(params, arrived_wall, arrived_loop)
                payload = response_xml(mms_id=mms_id, outcomes=outcomes)
        except ApiFailure as failure:
            if failure.to is None and params.get("to"):
                failure.to = params["to"]  # a whole-call failure names every number asked
            payload = response_xml(failure=failure)
        await _reply(send, 200, payload, _XML_HEADERS)


def _base_url(scope) -> str:
    """``http://host:port`` as the client reached this server (its Host header), else the bound address."""
    for name, value in scope.get("headers", ()):
        if name == b"host" and value:
            return "http://" + value.decode("latin-1")
    host, port = scope.get("server") or ("127.0.0.1", 80)
    return f"http://{f'[{host}]' if ':' in host else host}:{port}"


def _loop_time() -> float:
    import asyncio

    return asyncio.get_running_loop().time()


async def _reply(send, status: int, body: bytes, headers) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [*headers, (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
