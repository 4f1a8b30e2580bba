"""The sandbox's HTTP endpoint: a plain ASGI app speaking ``sendSavedMMS``.

Path ``/API/wxml/1.3/index.php`` (as in production). Accepted forms:

* GET with lower-case query keys (``action`` case-insensitive);
* POST of a ``<REQUEST>`` document in the form field ``xml`` (documented);
* POST of the ``<REQUEST>`` document as the raw body (seen in public clients);
* POST of form fields named like the GET keys.

API-level failures are HTTP 200 with ``<STATUS>Failure</STATUS>`` (like the
platform); ERRORINFO is the documented Appendix B text (``$error`` of E108
replaced by the parser's message, ``X`` of E106 by the interval). Decisions
where the documentation is silent:

* Several numbers (``TO`` comma-separated, at most 100, E623 beyond) are
  checked all first: one bad number fails the whole request (nothing sent,
  the answer's ``TO`` names it). On success the answer repeats
  ``TRACKINGID``/``TO``/``FROM`` per number, in request order, after
  ``STATUS``/``MMSID`` — an undocumented shape; one number gives exactly the
  documented ``STATUS, MMSID, TRACKINGID, TO, FROM``.
* An action other than ``sendSavedMMS``: E107 (no rights for this action).
* A missing or unknown ``FROM``: E111. A bad ``DDMTIMEOUT`` or ``DDMFORCE``
  value, an unparseable request or a non-``<REQUEST>`` root: E100.
* CUSTOMTEXT, CUSTOMSUBJECT, DATA, FROM_MASK and FALLBACKSMSTEXT are accepted
  and do not change the simulation.
"""

from __future__ import annotations

import time
from urllib.parse import parse_qsl

from lxml import etree

from ..server import read_body
from ..xmlsafe import XMLSyntaxError, parse_xml
from ..reference import api_error_codes

__all__ = ["ENDPOINT_PATH", "SandboxApp", "ApiFailure", "parse_request", "response_xml"]

ENDPOINT_PATH = "/API/wxml/1.3/index.php"
MAX_BODY = 1 << 20
_XML_HEADERS = [(b"content-type", b"text/xml; charset=utf-8")]


class ApiFailure(Exception):
    """An API-level failure: answered as ``<STATUS>Failure</STATUS>``."""

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


def response_xml(*, failure: ApiFailure | None = None, mms_id: str | None = None,
                 accepted: list[tuple[str, str, str]] | None = None) -> bytes:
    """A ``<RESPONSE>``: failure, or success with ``(tracking_id, to, sender)`` per number."""
    root = etree.Element("RESPONSE")

    def add(tag, text):
        etree.SubElement(root, tag).text = text

    if failure is not None:
        add("STATUS", "Failure")
        add("ERRORCODE", failure.code)
        add("ERRORINFO", failure.info)
        if failure.to:
            add("TO", failure.to)
    else:
        add("STATUS", "Success")
        add("MMSID", mms_id)
        for tracking_id, to, sender in accepted:
            add("TRACKINGID", tracking_id)
            add("TO", to)
            add("FROM", sender)
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
        if scope["path"] != ENDPOINT_PATH:
            await _reply(send, 404, b"not found", [(b"content-type", b"text/plain")])
            return
        arrived_wall, arrived_loop = time.time(), _loop_time()
        try:
            params = parse_request(scope["method"], scope.get("query_string", b""), body)
            mms_id, accepted = self.platform.handle(params, arrived_wall, arrived_loop)
            payload = response_xml(mms_id=mms_id, accepted=accepted)
        except ApiFailure as failure:
            payload = response_xml(failure=failure)
        await _reply(send, 200, payload, _XML_HEADERS)


def _loop_time() -> float:
    import asyncio

    return asyncio.get_running_loop().time()


async def _reply(send, status: int, body: bytes, headers) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [*headers, (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
