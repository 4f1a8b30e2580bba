"""A client for the Skycore API v1.3 ``sendSavedMMS`` and ``getSendingStatistics`` calls.

Every send goes through the client's send guard first (:mod:`skycore_lab.guard`:
production confirmation, allowed numbers, ``dry_run=True``), and
:meth:`SkycoreClient.sending_statistics` fetches the platform's own report
(its decisions are in that method's docstring).

>>> client = SkycoreClient(api_key, base_url=sandbox.url)          # doctest: +SKIP
>>> result = client.send_saved_mms(1001, "17743199144", "60856",
...                                ddm=DDM("Hi! Reply STOP to opt out", timeout_min=10))
>>> result.tracking_id                                               # doctest: +SKIP
'TU1TXzU5Nzg3OQ=='

Decisions where the public documentation is silent or ambiguous
---------------------------------------------------------------
* **Request forms.** ``method="post"`` sends the XML document in the form
  field ``xml`` (as documented); ``method="get"`` sends the lower-case query
  keys. GET puts the API key in the URL, so in proxy and server logs: the
  client warns (:class:`~skycore_lab.exceptions.KeyExposureWarning`) when
  GET is used against a host other than this machine. Both forms are built in
  one place, :meth:`SendRequest.http_arguments`, in the order of the
  documented request template (the 2014 RELAX NG schema makes the order
  free). ``DDMFORCE`` is in no template; it follows ``DDMTIMEOUT``.
* **Several recipients.** ``to`` may be a list of up to 100 numbers, sent as
  one comma-separated ``TO``. The 2013 revision of the page documents the
  answer: a Success holding one ``<SENDING>`` per number, with
  ``TRACKINGID``/``TO`` (sent) or ``ERRORCODE``/``TO``/``ERRORINFO``
  (refused). The client returns one :class:`SendResult` per requested
  number, in request order, matched by ``TO``: ``status="Success"`` with the
  tracking id, ``"Failure"`` with ``error_code``/``error_info`` and no tracking
  id, or ``"Unknown"`` when the answer says nothing usable about the number
  (no tracking id and no error code: it may have gone out). A partial
  refusal never raises and no tracking id is ever dropped: a block for a
  number that was not asked is appended after the requested ones. A
  ``<SENDING>`` has no ``FROM``: its result's ``sender`` is the requested
  shortcode (the postbacks' ``FROM`` tells when a country default replaced
  it). The flat one-number answer (``TRACKINGID``, ``TO``, ``FROM``,
  ``STATUSDETAILS``) and repeated flat groups are read too. A whole-call
  ``<STATUS>Failure</STATUS>`` (its ``TO`` lists every number) raises
  :class:`SkycoreAPIError`, whose ``numbers`` names them. For a single ``to``
  (not a list), :meth:`SkycoreClient.send_saved_mms` raises for a refusal
  in either shape, and raises :class:`SkycoreTransportError` with
  ``may_have_sent=True`` for an ``Unknown``: a Success without a tracking id
  is never taken for a success.
* **Retries.** Only where the platform surely did not act: the connection
  was refused, or timed out while connecting (nothing was written), and the
  throttling codes E106/E113/E120 (E106's interval is
  honoured). Exponential backoff with full jitter. Once the request was
  written, nothing is retried: a read time-out raises
  :class:`SkycoreTimeoutError`; HTTP 5xx (502/503/504 from a gateway
  included), a connection broken mid-answer, an unreadable or oversized
  answer raise :class:`SkycoreTransportError` with ``may_have_sent=True`` —
  the MMS may have gone out, and a second request could send (and bill) it
  twice. Send manifests record these as ``Unknown``. HTTP 4xx means the
  request was refused as such (``may_have_sent=False``, ``Error``).
* **Redirects.** Never followed to another origin (scheme, host or port):
  the request carries the API key. A 307/308 to the same origin is followed
  with the same request (at most 3 times). 301/302/303 are not followed
  (they would turn the POST into a GET without the request; a 303 may even
  mean the request was processed): ``may_have_sent=True``.
* **Answer size.** At most :data:`MAX_ANSWER_BYTES` (1 MiB; a 100-number
  answer is about 15 KB) are read; a longer answer (or a longer declared
  ``Content-Length``) raises :class:`SkycoreTransportError` with
  ``may_have_sent=True`` without reading the rest.
* **FROM_MASK.** The sendSavedMMS page says an alphanumeric sender is
  allowed in a few countries, not the US; the sendSMS page says it is cut
  off after 11 characters. So any non-empty text is sent as given, and a
  :class:`~skycore_lab.exceptions.SendOptionWarning` says when the platform
  will cut it off or when a recipient is in the US. **OPERATORID**: the
  documented ids are digits (``0001470``); any string of digits is sent as
  written (give the 7-digit id as text: an int loses its leading zeros). The
  platform answers E651 for an id it does not know.
* **DDMTIMEOUT** is at most :data:`skycore_lab.reference.MAX_DDM_TIMEOUT_MIN`
  (a week); the documentation gives no maximum.

Secrets
-------
The API key is held in a masking :class:`~skycore_lab.redaction.Secret`: it
never appears in ``repr(client)``, in exception messages or attributes (every
text quoted from the server — ERRORCODE, ERRORINFO, TO, STATUSDETAILS, the
raw answer, HTTP bodies and redirect targets — is masked, also in its
URL-encoded and XML-escaped forms), or in log records (:data:`LOG_REDACTION`
masks it in urllib3's request lines, which include GET URLs; it holds the
keys of live clients only). No frame of this module holds the key in a
local variable, and the errors it raises carry no ``__context__`` or
``__cause__`` (the ``requests`` exception of a failed request holds the
request, key included): ``traceback.print_exc(capture_locals=True)`` and
IPython's Verbose mode show no key. What we cannot control: the frames
*inside* ``requests``/``urllib3`` hold the request while it is being sent
(an exception this module does not handle, such as ``KeyboardInterrupt``
mid-request, shows them with ``capture_locals``); ``http.client``'s
``debuglevel`` prints the raw request, key included, to stdout; and the
caller's own variables (``api_key="…"`` in a notebook cell). Prefer
``$SKYCORE_API_KEY`` over a key typed into a notebook.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import random
import re
import tempfile
import threading
import time
import warnings
import zlib
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urljoin, urlsplit, urlunsplit

import requests
from lxml import etree
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from . import columns as col
from .guard import DEFAULT_CONFIRM_ABOVE, DryRun, SendGuard, WireRequest
from .ratelimit import RateLimiter
from .redaction import RedactingFilter, Secret, SecretRegistry, mask_secret, redact
from .xmlsafe import XMLSyntaxError, element_text, parse_xml
from .exceptions import (
    RATE_LIMIT_CODES,
    KeyExposureWarning,
    SendOptionWarning,
    SkycoreAPIError,
    SkycoreError,
    SkycoreRateLimitError,
    SkycoreTimeoutError,
    SkycoreTransportError,
    SkycoreValidationError,
)
from .reference import INTERNATIONAL_NUMBER, MAX_DDM_TIMEOUT_MIN, MAX_RECIPIENTS, country_of_number

__all__ = [
    "PRODUCTION_URL",
    "DDM",
    "SendRequest",
    "StatisticsRequest",
    "SendResult",
    "SkycoreClient",
    "validate_number",
    "MANIFEST_STATUSES",
    "RESULT_STATUSES",
    "MAX_ANSWER_BYTES",
    "MAX_REPORT_BYTES",
    "LOG_REDACTION",
]

#: The production endpoint (paid accounts only).
PRODUCTION_URL = "https://secure.skycore.com/API/wxml/1.3/index.php"
#: The most bytes of an answer the client reads (see the module docstring).
MAX_ANSWER_BYTES = 1 << 20
#: The most bytes of a downloaded sending-statistics report (decompressed), by default: 256 MiB,
#: about 400,000 messages in the Appendix C shape.
MAX_REPORT_BYTES = 256 << 20
_BODY_HEAD_CHARS = 200
_MAX_REDIRECTS = 3
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
#: The documented sendSMS limit of an alphanumeric sender, beyond which it is cut off.
_FROM_MASK_CHARS = 11

#: ``status`` of a :class:`SendResult`: sent (with a tracking id), refused
#: for that number (error code and info), or not known from the answer.
RESULT_STATUSES = ("Success", "Failure", "Unknown")

#: ``status`` values of a send manifest row:
#: Success / Failure (the platform's answer), Invalid (refused by the client's
#: own checks, never sent), Error (no answer, surely not sent), Unknown (no
#: usable answer after the request was written: it may have gone out),
#: Cancelled (the batch was interrupted before this row was sent).
MANIFEST_STATUSES = ("Success", "Failure", "Invalid", "Error", "Unknown", "Cancelled")

log = logging.getLogger(__name__)

# Every live client's key, held weakly; one filter for urllib3's request lines,
# which carry GET URLs (and keys).
_LIVE_KEYS = SecretRegistry()
#: The logging filter that masks the keys of live clients (attached to
#: ``urllib3.connectionpool``; add it to your own handlers if they may see URLs).
LOG_REDACTION = RedactingFilter(registry=_LIVE_KEYS)
logging.getLogger("urllib3.connectionpool").addFilter(LOG_REDACTION)


# --- validation -------------------------------------------------------------------
def validate_number(number: object, field_name: str = "to") -> str:
    """Return ``number`` as the API wants it, or raise naming what is wrong.

    International format: country code and number, digits only, 7–15 digits,
    no ``+`` and no ``00``/``011`` dialling prefix (US (774) 319-9144 →
    ``"17743199144"``). Surrounding whitespace is ignored; nothing else is
    rewritten, so a typo is reported rather than guessed at.

    Raises
    ------
    SkycoreValidationError
    """
    if isinstance(number, bool) or not isinstance(number, (str, int)):
        raise SkycoreValidationError(field_name, f"expected a phone number as text, got {type(number).__name__}")
    text = str(number).strip()
    if not text:
        raise SkycoreValidationError(field_name, "is empty")
    if INTERNATIONAL_NUMBER.fullmatch(text):
        return text
    if text.startswith("+"):
        reason = "has a '+': write the international number as digits only, e.g. 17743199144"
    elif text.startswith(("00", "011")):
        reason = "starts with a dialling prefix (00/011): drop it, e.g. 17743199144"
    elif text.startswith("0"):
        reason = "starts with 0: use the international format with the country code, e.g. 447624805892"
    elif not text.isdigit():
        reason = f"{text!r} has characters other than digits (no spaces, dashes or brackets)"
    else:
        reason = f"{text!r} has {len(text)} digits; international numbers have 7 to 15"
    raise SkycoreValidationError(field_name, reason)


def _require_text(value: object, field_name: str, *, allow_empty: bool = False) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise SkycoreValidationError(field_name, f"expected text, got {type(value).__name__}")
    text = str(value)
    if not allow_empty and not text.strip():
        raise SkycoreValidationError(field_name, "is empty")
    return text


def _require_digits(value: object, field_name: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise SkycoreValidationError(field_name, f"expected an integer id, got {type(value).__name__}")
    text = str(value).strip()
    if not text:
        raise SkycoreValidationError(field_name, "is empty")
    if not text.isdigit() or not text.isascii():
        raise SkycoreValidationError(field_name, f"{text!r} is not a non-negative integer")
    return text


def _require_non_negative_int(value: object, field_name: str) -> int:
    if isinstance(value, bool):
        raise SkycoreValidationError(field_name, "expected a non-negative integer, got a bool")
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        return int(value) if len(value.strip()) <= 12 else 10**12  # beyond any limit, without a huge int()
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int):
        raise SkycoreValidationError(field_name, f"expected a non-negative integer, got {value!r}")
    if value < 0:
        raise SkycoreValidationError(field_name, f"must not be negative (got {value})")
    return value


def _short(value: object, width: int = 24) -> str:
    text = repr(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def _check_name(name: object) -> str:
    text = str(name)
    # DATA names become XML element names (upper-cased) and GET keys data_<lower>.
    if not text or not (text[0].isascii() and (text[0].isalpha() or text[0] == "_")) or not all(
        ch.isascii() and (ch.isalnum() or ch == "_") for ch in text
    ):
        raise SkycoreValidationError(
            f"data[{text!r}]", "field names must be letters, digits and '_' and start with a letter"
        )
    return text


# GET key → the Python parameter users wrote, for error messages.
_PARAMETER_OF_KEY = {
    "mmsid": "mms_id", "from": "sender", "campaignref": "campaign_ref", "ddmtitle": "ddm.title",
    "ddmtext": "ddm.text", "ddmtimeout": "ddm.timeout_min", "ddmforce": "ddm.force",
    "customsubject": "custom_subject", "operatorid": "operator_id", "fallbacksmstext": "fallback_sms_text",
}


# --- requests and results ---------------------------------------------------------
@dataclass(frozen=True)
class DDM:
    """Device Discovery Message settings for a send.

    Parameters
    ----------
    text : str
        DDM body (``DDMTEXT``). Required: without it the platform ignores the
        other DDM settings, so we refuse to send a DDM without text.
    title : str, optional
        ``DDMTITLE``; the platform's default is "Device Discovery".
    timeout_min : int, optional
        ``DDMTIMEOUT``: minutes to wait for the DDM's delivery report before
        sending the content with generic settings. Platform default 5; at most
        :data:`~skycore_lab.reference.MAX_DDM_TIMEOUT_MIN` (a week).
    force : bool
        ``DDMFORCE=true``: send the DDM even if the handset is cached.
    """

    text: str
    title: str | None = None
    timeout_min: int | None = None
    force: bool = False

    def validated(self) -> DDM:
        """A copy with normalised values; raises SkycoreValidationError naming the field."""
        if self.text is None or not str(self.text).strip():
            raise SkycoreValidationError("ddm.text", "a DDM needs text (DDMTEXT); without it no DDM is sent")
        text = _require_text(self.text, "ddm.text")
        title = None if self.title is None else _require_text(self.title, "ddm.title")
        timeout = None if self.timeout_min is None else _require_non_negative_int(self.timeout_min, "ddm.timeout_min")
        if timeout is not None and timeout > MAX_DDM_TIMEOUT_MIN:
            raise SkycoreValidationError(
                "ddm.timeout_min", f"at most {MAX_DDM_TIMEOUT_MIN} minutes (a week), got {_short(self.timeout_min)}")
        if not isinstance(self.force, bool):
            raise SkycoreValidationError("ddm.force", f"expected True or False, got {self.force!r}")
        return DDM(text, title, timeout, self.force)


class _WireForms:
    """The HTTP request of a request object that has ``to_xml`` and ``to_query`` (both wire forms, one place)."""

    def http_arguments(self, method: str, api_key: str | Secret) -> dict:
        """Keyword arguments of ``requests.request`` for this request in form ``method`` ("post"/"get").

        ``{"method": "POST", "data": {"xml": …}}`` or ``{"method": "GET",
        "params": […]}``: everything but the URL. The result holds the key:
        show it only through :func:`skycore_lab.redaction.redact`.
        """
        if method == "post":
            return {"method": "POST", "data": {"xml": self.to_xml(api_key).decode("utf-8")}}
        if method == "get":
            return {"method": "GET", "params": self.to_query(api_key)}
        raise SkycoreValidationError("method", f"expected 'post' or 'get', got {method!r}")

    def http_request(self, url: str, method: str, api_key: str | Secret) -> requests.Request:
        """The unsent :class:`requests.Request` (``.prepare()`` gives the exact bytes)."""
        return requests.Request(url=url, **self.http_arguments(method, api_key))


@dataclass(frozen=True)
class SendRequest(_WireForms):
    """One validated ``sendSavedMMS`` request, independent of the wire form.

    Build it with :meth:`create`, which checks every field and raises
    :class:`SkycoreValidationError` naming the first bad one. :meth:`to_xml`
    and :meth:`to_query` give the two documented wire forms, and
    :meth:`http_arguments` / :meth:`http_request` the HTTP request the client
    makes (one place for both forms, so a dry run shows exactly what would go
    out).
    """

    mms_id: str
    to: tuple[str, ...]
    sender: str
    campaign_ref: str | None = None
    ddm: DDM | None = None
    custom_text: tuple[tuple[int, str], ...] = ()
    custom_subject: str | None = None
    data: tuple[tuple[str, str], ...] = ()
    from_mask: str | None = None
    operator_id: str | None = None
    fallback_sms_text: str | None = None

    @classmethod
    def create(
        cls,
        mms_id: object,
        to: object,
        sender: object,
        *,
        campaign_ref: object = None,
        ddm: DDM | None = None,
        custom_text: Mapping[object, object] | None = None,
        custom_subject: object = None,
        data: Mapping[object, object] | None = None,
        from_mask: object = None,
        operator_id: object = None,
        fallback_sms_text: object = None,
    ) -> SendRequest:
        mms = _require_digits(mms_id, "mms_id")
        if isinstance(to, (str, int)) and not isinstance(to, bool):
            numbers = (validate_number(to),)
        elif isinstance(to, Iterable):
            raw = list(to)
            if not raw:
                raise SkycoreValidationError("to", "no recipient given")
            if len(raw) > MAX_RECIPIENTS:
                raise SkycoreValidationError("to", f"at most {MAX_RECIPIENTS} numbers per request, got {len(raw)}")
            numbers = tuple(validate_number(n, f"to[{i}]") for i, n in enumerate(raw))
        else:
            raise SkycoreValidationError("to", f"expected a number or a list of numbers, got {type(to).__name__}")
        shortcode = _require_digits(sender, "sender")
        if ddm is not None and not isinstance(ddm, DDM):
            raise SkycoreValidationError("ddm", f"expected skycore_lab.DDM(...), got {type(ddm).__name__}")
        slides: list[tuple[int, str]] = []
        for slide, text in (custom_text or {}).items():
            number = _require_non_negative_int(slide, f"custom_text[{slide!r}] slide")
            slides.append((number, _require_text(text, f"custom_text[{slide!r}]", allow_empty=True)))
        fields = tuple((_check_name(name), _require_text(value, f"data[{name!r}]", allow_empty=True))
                       for name, value in (data or {}).items())
        upper = [name.upper() for name, _ in fields]
        if len(set(upper)) != len(upper):
            raise SkycoreValidationError("data", "field names differ only by case; the API does not distinguish them")

        def optional(value: object, name: str) -> str | None:
            return None if value is None else _require_text(value, name)

        mask = optional(from_mask, "from_mask")
        if mask is not None:
            _warn_about_from_mask(mask, numbers)
        request = cls(
            mms_id=mms,
            to=numbers,
            sender=shortcode,
            campaign_ref=optional(campaign_ref, "campaign_ref"),
            ddm=None if ddm is None else ddm.validated(),
            custom_text=tuple(sorted(slides)),
            custom_subject=optional(custom_subject, "custom_subject"),
            data=fields,
            from_mask=mask,
            operator_id=None if operator_id is None else _require_digits(operator_id, "operator_id"),
            fallback_sms_text=optional(fallback_sms_text, "fallback_sms_text"),
        )
        request.to_xml("x")  # surfaces characters XML cannot carry, naming the field
        return request

    # -- wire forms ------------------------------------------------------------------
    def _fields(self) -> list[tuple[str, str, str, str]]:
        """``(kind, XML element, GET key, value)`` in the documented template's order.

        ``kind`` is ``""`` for a plain element, ``"slide"`` for a CUSTOMTEXT
        (element = slide number) and ``"data"`` for a DATA child.
        """
        fields = [("", "MMSID", "mmsid", self.mms_id), ("", "TO", "to", ",".join(self.to)),
                  ("", "FROM", "from", self.sender)]
        optional = [("FROM_MASK", "from_mask", self.from_mask), ("OPERATORID", "operatorid", self.operator_id),
                    ("CAMPAIGNREF", "campaignref", self.campaign_ref)]
        if self.ddm is not None:
            optional += [("DDMTITLE", "ddmtitle", self.ddm.title), ("DDMTEXT", "ddmtext", self.ddm.text),
                         ("DDMTIMEOUT", "ddmtimeout", None if self.ddm.timeout_min is None else str(self.ddm.timeout_min)),
                         ("DDMFORCE", "ddmforce", "true" if self.ddm.force else None)]
        fields += [("", tag, key, value) for tag, key, value in optional if value is not None]
        fields += [("slide", str(slide), f"customtext_{slide}", text) for slide, text in self.custom_text]
        if self.custom_subject is not None:
            fields.append(("", "CUSTOMSUBJECT", "customsubject", self.custom_subject))
        fields += [("data", name.upper(), f"data_{name.lower()}", value) for name, value in self.data]
        if self.fallback_sms_text is not None:
            fields.append(("", "FALLBACKSMSTEXT", "fallbacksmstext", self.fallback_sms_text))
        return fields

    def to_xml(self, api_key: str | Secret) -> bytes:
        """The POST form's ``<REQUEST>`` document, UTF-8 with declaration."""
        root = etree.Element("REQUEST")
        data_block = None

        def add(parent, tag: str, text: str, name: str):
            try:
                etree.SubElement(parent, tag).text = text
            except ValueError:  # control characters XML 1.0 cannot carry
                raise SkycoreValidationError(name, "contains characters XML cannot carry (control characters)") from None

        add(root, "ACTION", "sendSavedMMS", "action")
        add(root, "API_KEY", _reveal(api_key), "api_key")
        for kind, tag, key, value in self._fields():
            if kind == "slide":
                element = etree.SubElement(root, "CUSTOMTEXT")
                add(element, "VALUE", value, f"custom_text[{tag}]")
                add(element, "SLIDE", tag, f"custom_text[{tag}]")
            elif kind == "data":
                if data_block is None:
                    data_block = etree.SubElement(root, "DATA")
                add(data_block, tag, value, f"data[{key[len('data_'):]!r}]")
            else:
                add(root, tag, value, _PARAMETER_OF_KEY.get(key, key))
        return etree.tostring(root, xml_declaration=True, encoding="UTF-8")

    def to_query(self, api_key: str | Secret) -> list[tuple[str, str]]:
        """The GET form's ``(key, value)`` pairs, lower-case keys as documented."""
        return [("action", "sendsavedmms"), ("api_key", _reveal(api_key)),
                *((key, value) for _kind, _tag, key, value in self._fields())]


#: The ``ACTION`` of the sending-statistics call, as the documented requests write it (both revisions of
#: the getSendingStatistics page); the page itself is named getSendingStatistics.
STATISTICS_ACTION = "getSendingStatus"
_STATISTICS_FORMAT = "%Y-%m-%d %H:%M:%S"


def _utc_text(value: object, name: str, *, ceil: bool = False) -> str:
    """A time as the API's UTC ``YYYY-MM-DD hh:mm:ss`` (naive = UTC; fractions of a second floored,
    or raised to the next second with ``ceil``)."""
    from datetime import date, timedelta

    if isinstance(value, str):
        text = value.strip()
        try:
            stamp = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
        except ValueError:
            raise SkycoreValidationError(name, f"{value!r} is not a date or time (e.g. 2024-05-01 12:00:00, UTC)") \
                from None
    elif isinstance(value, datetime):  # pandas.Timestamp too
        stamp = value.to_pydatetime() if hasattr(value, "to_pydatetime") else value
    elif isinstance(value, date):
        stamp = datetime(value.year, value.month, value.day)
    else:
        raise SkycoreValidationError(name, f"expected a datetime or an ISO date text, got {type(value).__name__}")
    stamp = stamp.replace(tzinfo=timezone.utc) if stamp.tzinfo is None else stamp.astimezone(timezone.utc)
    if ceil and stamp.microsecond:
        stamp += timedelta(seconds=1)
    return stamp.replace(microsecond=0).strftime(_STATISTICS_FORMAT)


@dataclass(frozen=True)
class StatisticsRequest(_WireForms):
    """One validated ``getSendingStatistics`` request: a UTC period.

    ``start``/``end`` are the API's ``YYYY-MM-DD hh:mm:ss`` texts in UTC.
    Build it with :meth:`create`; :meth:`to_xml`, :meth:`to_query`,
    :meth:`http_arguments` give the wire forms (``ACTION``
    :data:`STATISTICS_ACTION`; GET keys ``action=getsendingstatus``,
    ``start_date``, ``end_date``, as the page's examples write them).
    """

    start: str
    end: str

    @classmethod
    def create(cls, start: object, end: object) -> StatisticsRequest:
        """Check the period: two times, ``start`` before ``end``; naive times are UTC.

        ``start`` is floored and ``end`` raised to whole seconds (the API's
        format has none), so the period asked covers the one given.
        """
        begin, finish = _utc_text(start, "start"), _utc_text(end, "end", ceil=True)
        if finish <= begin:
            raise SkycoreValidationError("end", f"must be after start ({finish} UTC is not after {begin} UTC)")
        return cls(begin, finish)

    def to_xml(self, api_key: str | Secret) -> bytes:
        """The POST form's ``<REQUEST>`` document."""
        root = etree.Element("REQUEST")
        for tag, text in (("ACTION", STATISTICS_ACTION), ("API_KEY", _reveal(api_key)), ("START_DATE", self.start),
                          ("END_DATE", self.end)):
            etree.SubElement(root, tag).text = text
        return etree.tostring(root, xml_declaration=True, encoding="UTF-8")

    def to_query(self, api_key: str | Secret) -> list[tuple[str, str]]:
        """The GET form's pairs."""
        return [("action", STATISTICS_ACTION.lower()), ("api_key", _reveal(api_key)), ("start_date", self.start),
                ("end_date", self.end)]


def _reveal(api_key: str | Secret | None) -> str:
    return (api_key.reveal() if isinstance(api_key, Secret) else api_key) or ""


def _warn_about_from_mask(mask: str, numbers: tuple[str, ...]) -> None:
    if len(mask) > _FROM_MASK_CHARS:
        warnings.warn(f"from_mask {mask!r} has {len(mask)} characters: the platform cuts it off after "
                      f"{_FROM_MASK_CHARS} ({mask[:_FROM_MASK_CHARS]!r})", SendOptionWarning, stacklevel=4)
    in_us = [n for n in numbers if country_of_number(n) == "United States"]
    if in_us:
        warnings.warn(f"from_mask: an alphanumeric sender is not supported in the United States ({in_us[0]}"
                      f"{' and others' if len(in_us) > 1 else ''}); the platform decides what those recipients see",
                      SendOptionWarning, stacklevel=4)


@dataclass(frozen=True)
class SendResult:
    """The platform's answer for one recipient of a ``sendSavedMMS`` call.

    Attributes
    ----------
    status : str
        One of :data:`RESULT_STATUSES`: ``"Success"`` (sent; ``tracking_id``
        set), ``"Failure"`` (this number was refused: ``error_code`` and
        ``error_info`` set, no tracking id) or ``"Unknown"`` (the answer gives
        neither for this number: it may have gone out; ``error_info`` says why).
    to : str
        The recipient (as the platform echoed it, else as requested).
    sender : str
        The shortcode actually used (``FROM``); it may differ from the one
        requested when the recipient's country has its own default shortcode.
        The multi-number answer does not say: then the requested one.
    mms_id : str
    tracking_id : str or None
        Opaque id linking this send to its postbacks (Success only).
    requested_at : datetime
        UTC time the (answered attempt's) request was sent.
    raw : str
        The whole response XML, for the record (the API key masked).
    error_code, error_info : str or None
        The refusal of this number (``ERRORCODE``/``ERRORINFO`` of its
        ``<SENDING>``), or why the result is Unknown.
    status_details : str or None
        The answer's ``STATUSDETAILS`` ("MMS request accepted and queued for
        delivery"), when given.
    """

    status: str
    to: str
    sender: str
    mms_id: str
    tracking_id: str | None
    requested_at: datetime
    raw: str = field(repr=False)
    error_code: str | None = None
    error_info: str | None = None
    status_details: str | None = None

    @property
    def sent(self) -> bool:
        """True when the platform took the MMS for this number (``status == "Success"``)."""
        return self.status == "Success"


# --- the client ----------------------------------------------------------------
@dataclass
class _Outcome:
    """What one attempt gave: results, or an error (raised by the caller, outside any handler)."""

    results: list[SendResult] | None = None
    error: SkycoreError | None = None
    retryable: bool = False
    wait_hint: float | None = None

    @classmethod
    def fail(cls, error: SkycoreError) -> _Outcome:
        return cls(error=error)

    @classmethod
    def retry(cls, error: SkycoreError, wait_hint: float | None = None) -> _Outcome:
        return cls(error=error, retryable=True, wait_hint=wait_hint)


class SkycoreClient:
    """Client for ``sendSavedMMS`` and ``getSendingStatistics`` (Skycore API v1.3).

    Parameters
    ----------
    api_key : str, optional
        Account API key; default ``$SKYCORE_API_KEY``. Never shown in reprs,
        messages or logs.
    base_url : str, optional
        Endpoint URL; default ``$SKYCORE_API_URL``, else :data:`PRODUCTION_URL`.
        Point it at :attr:`skycore_lab.Sandbox.url` to work offline.
    method : {"post", "get"}
        Request form. GET puts the API key in the URL (proxy/server logs):
        a :class:`~skycore_lab.exceptions.KeyExposureWarning` says so for a
        host other than this machine.
    timeout : float
        Seconds to wait for the answer once the request is written.
    max_retries : int
        Retries for failures where the platform surely did not send
        (connection refused or timed out while connecting, throttling).
    session : requests.Session, optional
        Bring your own (proxies, certificates); closed by you, not by us.
    backoff : float
        Base of the exponential backoff in seconds (full jitter).
    max_answer_bytes : int
        The most bytes of an answer read (:data:`MAX_ANSWER_BYTES`).
    production : bool or None
        Whether ``base_url`` is production, for the send guard
        (:mod:`skycore_lab.guard`): None decides from the URL (a loopback
        host is a local sandbox, anything else production); True or False
        says so (a test may guard a client of a server on 127.0.0.1).
    allowed_numbers : iterable of str, str or path, optional
        The only numbers this client may send to (numbers, a comma list or
        a file); others are refused before anything is sent. Default: the
        environment's ``SKYCORE_TEST_NUMBERS``, for a production client.
    confirm_above : int
        A production call to more recipients needs ``confirm=True`` (default 50).
    price_per_mms : float, optional
        Price of one MMS (any currency), for the estimated cost shown by the
        guard and by dry runs.

    Attributes
    ----------
    guard : SendGuard
        The checks made before every send (``guard.production``, ``guard.allowed``).
    """

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        *,
        method: str = "post",
        timeout: float = 30.0,
        max_retries: int = 3,
        session: requests.Session | None = None,
        backoff: float = 0.5,
        max_answer_bytes: int = MAX_ANSWER_BYTES,
        production: bool | None = None,
        allowed_numbers=None,
        confirm_above: int = DEFAULT_CONFIRM_ABOVE,
        price_per_mms: float | None = None,
    ):
        # Wrap the key at once and drop the parameter: a validation error below
        # must not show it among this frame's locals.
        self._api_key = Secret(_clean_key(api_key if api_key is not None else os.environ.get("SKYCORE_API_KEY")))
        del api_key
        _LIVE_KEYS.add(self._api_key)
        self.base_url = base_url or os.environ.get("SKYCORE_API_URL") or PRODUCTION_URL
        method = str(method).lower()
        if method not in {"post", "get"}:
            raise SkycoreValidationError("method", f"expected 'post' or 'get', got {method!r}")
        self.method = method
        if timeout <= 0:
            raise SkycoreValidationError("timeout", "must be positive")
        self.timeout = float(timeout)
        if max_retries < 0:
            raise SkycoreValidationError("max_retries", "must not be negative")
        self.max_retries = int(max_retries)
        self.backoff = float(backoff)
        if max_answer_bytes < 1:
            raise SkycoreValidationError("max_answer_bytes", "must be positive")
        self.max_answer_bytes = int(max_answer_bytes)
        self.guard = SendGuard.create(self.base_url, validate_number, production=production,
                                      allowed_numbers=allowed_numbers, confirm_above=confirm_above,
                                      price_per_mms=price_per_mms)
        self._owns_session = session is None
        self._session = session or self._new_session()
        self._random = random.Random()
        self._warn_if_key_exposed()

    @staticmethod
    def _new_session(pool: int = 16) -> requests.Session:
        session = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=pool, max_retries=0)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        session.headers["User-Agent"] = "skycore-lab"
        return session

    def _warn_if_key_exposed(self) -> None:
        if self.method != "get":
            return
        from .server import is_loopback  # deferred: server imports uvicorn

        host = urlsplit(self.base_url).hostname or ""
        if not is_loopback(host):
            warnings.warn(
                f"method='get' puts the API key in the URL, which proxies and the server at {host} log; "
                "use method='post' outside a sandbox", KeyExposureWarning, stacklevel=3)

    @property
    def production(self) -> bool:
        """Whether this client sends to production (see :mod:`skycore_lab.guard`)."""
        return self.guard.production

    def __repr__(self) -> str:  # also safe on a half-built client (a traceback's locals)
        guard = getattr(self, "guard", None)
        where = "" if guard is None else f", production={guard.production}"
        return (f"SkycoreClient(base_url={getattr(self, 'base_url', None)!r}, method={getattr(self, 'method', None)!r}, "
                f"api_key={getattr(self, '_api_key', None)!r}{where})")

    def close(self) -> None:
        """Close the HTTP session if this client created it."""
        if self._owns_session:
            self._session.close()

    def with_method(self, method: str) -> SkycoreClient:
        """A client like this one that sends with the other request form (``"post"``/``"get"``).

        The copy shares this client's session and key; closing it never
        closes the session (this client still owns it). This client is left
        as it was.
        """
        method = str(method).lower()
        if method not in {"post", "get"}:
            raise SkycoreValidationError("method", f"expected 'post' or 'get', got {method!r}")
        variant = copy.copy(self)
        variant.method = method
        variant._owns_session = False
        variant._warn_if_key_exposed()
        return variant

    def __enter__(self) -> SkycoreClient:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # -- one send ---------------------------------------------------------------
    def send_saved_mms(
        self,
        mms_id: int | str,
        to: str | int | Sequence[str | int],
        sender: str | int,
        *,
        campaign_ref: str | None = None,
        ddm: DDM | None = None,
        custom_text: Mapping[int, str] | None = None,
        custom_subject: str | None = None,
        data: Mapping[str, str] | None = None,
        from_mask: str | None = None,
        operator_id: str | int | None = None,
        fallback_sms_text: str | None = None,
        confirm: bool = False,
        dry_run: bool = False,
        price_per_mms: float | None = None,
    ) -> SendResult | list[SendResult] | DryRun:
        """Send the saved MMS ``mms_id`` to ``to`` from shortcode ``sender``.

        Parameters
        ----------
        mms_id : int or str
            Id of the saved MMS (``MMSID``).
        to : str, int or sequence
            One international number, or up to 100 (one request).
        sender : str or int
            The shortcode (``FROM``).
        campaign_ref : str, optional
            ``CAMPAIGNREF``; some accounts require the number to be subscribed.
        ddm : DDM, optional
            Device Discovery Message settings.
        custom_text : mapping of slide number → text, optional
            Replaces the text of each given slide (``CUSTOMTEXT``).
        custom_subject : str, optional
        data : mapping of field name → value, optional
            Personalisation fields; ``first_name`` becomes ``<FIRST_NAME>`` in
            XML and ``data_first_name`` in GET.
        from_mask : str, optional
            Alphanumeric sender (some countries only, not the US; cut off
            after 11 characters).
        operator_id : str or int, optional
            ``OPERATORID``, a documented operator id such as ``"0001470"``.
        fallback_sms_text : str, optional
            Text of the SMS sent when the MMS falls back to an SMS link.
        confirm : bool
            Needed for more than ``confirm_above`` recipients (50) on
            production (:mod:`skycore_lab.guard`).
        dry_run : bool
            Validate everything and return a :class:`~skycore_lab.guard.DryRun`
            holding the exact request (API key masked); nothing is sent.
        price_per_mms : float, optional
            Price of one MMS for the estimated cost (default the client's).

        Returns
        -------
        SendResult, or list of SendResult when ``to`` is a sequence, or DryRun
            For a sequence: one result per number, in request order, each
            ``Success``, ``Failure`` (that number refused) or ``Unknown``; a
            partial refusal never raises. With ``dry_run=True``: the DryRun.

        Raises
        ------
        SkycoreValidationError
            Bad input; nothing was sent.
        NumberNotAllowedError, ConfirmationRequiredError
            The send guard refused; nothing was sent.
        SkycoreAPIError, SkycoreRateLimitError
            The platform refused the request (all its numbers; ``numbers``
            names them), or refused the one number of a single ``to``.
        SkycoreTimeoutError
            No answer in time after the request was written: state unknown.
        SkycoreTransportError
            Any other failure to get a usable answer (``may_have_sent`` tells
            whether the MMS may have gone out), including a Success without a
            tracking id for a single ``to``.
        """
        request = SendRequest.create(
            mms_id, to, sender, campaign_ref=campaign_ref, ddm=ddm, custom_text=custom_text,
            custom_subject=custom_subject, data=data, from_mask=from_mask, operator_id=operator_id,
            fallback_sms_text=fallback_sms_text,
        )
        results = self.send(request, confirm=confirm, dry_run=dry_run, price_per_mms=price_per_mms)
        if dry_run:
            return results
        if not isinstance(to, (str, int)):
            return results
        first = results[0]
        if first.status == "Failure":
            raise _api_error(first.error_code or "unknown", first.error_info or "", first.to)
        if first.status != "Success":
            raise SkycoreTransportError(
                f"answer from {self.base_url} for {first.to}: {first.error_info}; the MMS may have gone out: "
                "check its postbacks before resending", status=200, body_head=first.raw[:_BODY_HEAD_CHARS],
                may_have_sent=True)
        return first

    def send(self, request: SendRequest, *, confirm: bool = False, dry_run: bool = False,
             price_per_mms: float | None = None) -> list[SendResult] | DryRun:
        """Send a prepared :class:`SendRequest`; one result per recipient, in request order.

        Raises only for the whole call (see :meth:`send_saved_mms`); a number
        refused in a multi-number answer is a ``Failure`` result. The send
        guard checks first (``confirm``, ``dry_run``, ``price_per_mms`` as
        for :meth:`send_saved_mms`).
        """
        if not isinstance(request, SendRequest):
            raise SkycoreValidationError("request", f"expected a SendRequest, got {type(request).__name__}")
        if not self._api_key:
            raise SkycoreValidationError("api_key", "no API key: pass api_key= or set SKYCORE_API_KEY")
        self.guard.check(request.to, request.mms_id, request.sender, confirm=confirm or bool(dry_run),
                         price_per_mms=price_per_mms)
        if dry_run:
            return self._dry_run([request], len(request.to), request.mms_id, request.sender, price_per_mms)
        return self._send_unguarded(request)

    def dry_run_request(self, request: SendRequest | StatisticsRequest) -> WireRequest:
        """The exact HTTP request this client would make for ``request``, with the API key masked.

        The request is built with the key replaced by its masked form
        (``ab…yz``), so no object here ever holds the key; every other byte
        (URL, headers, form encoding, XML) is what the client sends, and
        ``Content-Length`` is that of the masked body.
        """
        masked = Secret(mask_secret(self._api_key.reveal()))
        prepared = self._session.prepare_request(request.http_request(self.base_url, self.method, masked))
        body = prepared.body or ""
        if isinstance(body, bytes):
            body = body.decode("utf-8", errors="replace")
        return WireRequest(method=prepared.method, url=prepared.url, headers=tuple(prepared.headers.items()),
                           body=body, to=tuple(getattr(request, "to", ())))

    def _dry_run(self, requests_: list[SendRequest], recipients: int, mms_id, sender, price_per_mms,
                 invalid: tuple[tuple[str, str], ...] = ()) -> DryRun:
        sent_to = sum(len(request.to) for request in requests_)
        return DryRun(requests=tuple(self.dry_run_request(request) for request in requests_), url=self.base_url,
                      production=self.production, mms_id=str(mms_id), sender=str(sender).strip(),
                      recipients=recipients, needs_confirmation=self.guard.needs_confirmation(recipients),
                      estimated_cost=self.guard.estimated_cost(sent_to, price_per_mms), invalid=invalid)

    def _send_unguarded(self, request: SendRequest) -> list[SendResult]:
        attempt = 0
        while True:
            outcome = self._attempt(request)
            if outcome.results is not None:
                return outcome.results
            if not outcome.retryable or attempt >= self.max_retries:
                raise outcome.error  # raised here, outside any handler: no __context__ holding the request
            delay = self._random.uniform(0, self.backoff * 2**attempt)
            if outcome.wait_hint is not None:
                delay = max(delay, outcome.wait_hint)
            log.info("retrying after %s (attempt %d of %d, in %.2f s)", outcome.error, attempt + 1, self.max_retries,
                     delay)
            time.sleep(delay)
            attempt += 1

    def _attempt(self, request: SendRequest) -> _Outcome:
        requested_at = datetime.now(timezone.utc)
        url, hops = self.base_url, 0
        while True:
            response, failed = self._exchange(request, url)
            if failed is not None:
                return failed
            with contextlib.closing(response):
                if response.status_code not in _REDIRECT_STATUSES:
                    return self._answer(response, request, requested_at)
                url, failed = self._redirect(response, url, hops)
            if failed is not None:
                return failed
            hops += 1

    def _exchange(self, request: SendRequest | StatisticsRequest,
                  url: str) -> tuple[requests.Response | None, _Outcome | None]:
        """One HTTP exchange; the key is never bound to a local here, and no exception escapes."""
        failed: _Outcome
        try:
            response = self._session.request(
                url=url, timeout=(min(10.0, self.timeout), self.timeout), stream=True, allow_redirects=False,
                **request.http_arguments(self.method, self._api_key))
            return response, None
        except requests.exceptions.ConnectTimeout as exc:
            failed = _Outcome.retry(SkycoreTransportError(f"could not connect to {self.base_url}: {self._clean(exc)}"))
        except requests.exceptions.ReadTimeout:
            failed = _Outcome.fail(self._timeout_error(request))
        except requests.exceptions.SSLError as exc:
            failed = _Outcome.fail(SkycoreTransportError(f"TLS failed with {self.base_url}: {self._clean(exc)}"))
        except requests.exceptions.ConnectionError as exc:
            reason = getattr(exc.args[0], "reason", None) if exc.args else None
            if isinstance(reason, (NewConnectionError, ConnectTimeoutError)):
                failed = _Outcome.retry(
                    SkycoreTransportError(f"could not connect to {self.base_url}: {self._clean(exc)}"))
            else:
                sends = isinstance(request, SendRequest)
                advice = ": the MMS may have gone out; check its postbacks before resending" if sends else ""
                failed = _Outcome.fail(SkycoreTransportError(
                    f"connection to {self.base_url} broke after the request was sent ({self._clean(exc)}){advice}",
                    may_have_sent=sends))
        except requests.exceptions.RequestException as exc:
            failed = _Outcome.fail(SkycoreTransportError(f"request to {self.base_url} failed: {self._clean(exc)}"))
        return None, failed

    def _timeout_error(self, request: SendRequest | StatisticsRequest) -> SkycoreTransportError:
        if not isinstance(request, SendRequest):
            return SkycoreTransportError(f"no answer from {self.base_url} within {self.timeout:g} s")
        return SkycoreTimeoutError(
            f"no answer from {self.base_url} within {self.timeout:g} s after the request was sent: "
            f"the MMS to {','.join(request.to)} may or may not have gone out; check its postbacks before resending")

    def _redirect(self, response: requests.Response, url: str, hops: int) -> tuple[str, _Outcome | None]:
        """The URL to repeat the request at (a same-origin 307/308), or the error of not following."""
        status = response.status_code
        location = response.headers.get("Location")
        target = urljoin(url, location) if location else None
        shown = self._clean(target or "(no Location)")
        same_origin = target is not None and _origin(target) == _origin(url)
        if status in (307, 308) and same_origin and hops < _MAX_REDIRECTS:
            if self.method == "get":  # our parameters go again, not the Location's copy of them
                target = urlunsplit(urlsplit(target)._replace(query="", fragment=""))
            return target, None
        if status in (307, 308):
            why = ("it points to another origin and the request carries the API key"
                   if not same_origin else f"more than {_MAX_REDIRECTS} redirects")
            if target is None:
                why = "it names no target"
            return url, _Outcome.fail(SkycoreTransportError(
                f"HTTP {status} redirect from {self.base_url} to {shown} not followed: {why}; nothing was sent. "
                "If the new address is genuine, make it the client's base_url", status=status))
        return url, _Outcome.fail(SkycoreTransportError(
            f"HTTP {status} redirect from {self.base_url} to {shown} not followed: the API takes the request only "
            "as sent, and the server may have processed it before redirecting; check the postbacks before "
            "resending", status=status, may_have_sent=True))

    def _read(self, response: requests.Response, request: SendRequest) -> tuple[bytes | None, _Outcome | None]:
        """The answer's bytes, at most ``max_answer_bytes`` of them."""
        limit = self.max_answer_bytes
        too_long = _Outcome.fail(SkycoreTransportError(
            f"answer from {self.base_url} is larger than {limit:,} bytes: not read; the MMS may have gone out, "
            "check its postbacks before resending", status=response.status_code, may_have_sent=True))
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > limit:
            return None, too_long
        chunks, size = [], 0
        try:
            for chunk in response.iter_content(chunk_size=65536):
                size += len(chunk)
                if size > limit:
                    return None, too_long
                chunks.append(chunk)
        except requests.exceptions.RequestException as exc:
            if isinstance(exc, requests.exceptions.ConnectionError) and "timed out" in str(exc).lower():
                return None, _Outcome.fail(self._timeout_error(request))
            return None, _Outcome.fail(SkycoreTransportError(
                f"answer from {self.base_url} broke off ({self._clean(exc)}): the MMS may have gone out; "
                "check its postbacks before resending", status=response.status_code, may_have_sent=True))
        return b"".join(chunks), None

    def _clean(self, value: object) -> str:
        """A server's (or an exception's) text, with the key masked."""
        return redact(str(value), [self._api_key.reveal()])

    def _answer(self, response: requests.Response, request: SendRequest, requested_at: datetime) -> _Outcome:
        content, failed = self._read(response, request)
        if failed is not None:
            return failed
        charset = requests.utils.get_encoding_from_headers(response.headers)
        declared_charset = charset if "charset" in response.headers.get("Content-Type", "").lower() else None
        raw = self._clean(content.decode(declared_charset or "utf-8", errors="replace"))
        head = raw[:_BODY_HEAD_CHARS]
        status = response.status_code
        if status != 200:
            # 5xx (a gateway's 502/503/504 included) once the request was written:
            # the platform may have acted. 4xx: the request was refused as such.
            sent = status >= 500
            advice = ": the MMS may have gone out; check its postbacks before resending" if sent else ""
            return _Outcome.fail(SkycoreTransportError(
                f"HTTP {status} from {self.base_url}: {head!r}{advice}", status=status, body_head=head,
                may_have_sent=sent))
        unreadable = None
        try:
            root = parse_xml(content)
        except XMLSyntaxError as exc:
            unreadable = f"is not XML ({self._clean(exc)})"
        else:
            if root.tag != "RESPONSE":
                unreadable = f"is <{self._clean(root.tag)}>, not <RESPONSE>"
        if unreadable is not None:
            return _Outcome.fail(SkycoreTransportError(
                f"answer from {self.base_url} {unreadable}: {head!r}; the MMS may have gone out, check its "
                "postbacks before resending", status=200, body_head=head, may_have_sent=True))
        return self._results(root, request, requested_at, raw)

    def _results(self, root, request: SendRequest, requested_at: datetime, raw: str) -> _Outcome:
        def clean(value: str | None) -> str | None:
            return self._clean(value) if value else None

        def text(element, tag: str) -> str | None:
            return clean(element_text(element, tag))

        status = text(root, "STATUS") or ""
        if status.lower() != "success":
            code = (text(root, "ERRORCODE") or "").upper()
            info = text(root, "ERRORINFO") or ""
            to = text(root, "TO") or ",".join(request.to)
            error = _api_error(code or "unknown", info or status or "failure without error code", to)
            if isinstance(error, SkycoreRateLimitError):
                return _Outcome.retry(error, _interval_hint(info))
            return _Outcome.fail(error)
        mms_id = text(root, "MMSID") or request.mms_id
        sender = text(root, "FROM") or request.sender
        details = text(root, "STATUSDETAILS")
        blocks = [{tag: text(block, tag) for tag in _BLOCK_TAGS} for block in root.findall("SENDING")]
        blocks += _flat_blocks(root, clean)
        results = []
        for number, block in _match(request.to, blocks):
            block = block or {}
            tracking_id = block.get("TRACKINGID")
            code = (block.get("ERRORCODE") or "").upper() or None
            if tracking_id:
                state, info = "Success", block.get("ERRORINFO")
            elif code:
                state, info = "Failure", block.get("ERRORINFO") or ""
            else:
                state = "Unknown"
                info = ("the Success answer has no tracking id for this number" if block else
                        "the Success answer does not mention this number")
            results.append(SendResult(
                state, block.get("TO") or number, block.get("FROM") or sender, mms_id, tracking_id or None,
                requested_at, raw, error_code=code, error_info=info,
                status_details=block.get("STATUSDETAILS") or details))
        return _Outcome(results=results)

    # -- the platform's report --------------------------------------------------------
    def sending_statistics(self, start, end, *, save_to: str | os.PathLike | None = None, recover: bool = False,
                           max_report_bytes: int = MAX_REPORT_BYTES, dry_run: bool = False):
        """Fetch the platform's sending-statistics report of a UTC period and read it.

        Calls ``getSendingStatistics`` (``START_DATE``/``END_DATE``), downloads
        the XML report its answer links to, and returns
        :func:`skycore_lab.read_sending_report`'s frame (one row per message;
        :func:`skycore_lab.reconcile` compares it with the postbacks).

        Parameters
        ----------
        start, end : datetime, pandas.Timestamp or ISO text
            The period, UTC (naive times are UTC; aware ones are converted).
            Sent as ``YYYY-MM-DD hh:mm:ss``: ``start`` floored, ``end`` raised
            to whole seconds.
        save_to : path, optional
            Keep the downloaded report there (XML; gzip-compressed when the
            name ends in ``.gz``); the frame then records it as its source
            (provenance). Default: a temporary file, removed after reading.
        recover : bool
            Passed to :func:`~skycore_lab.read_sending_report` (read a report
            that is not well-formed XML, with a warning).
        max_report_bytes : int
            The most bytes of report read (decompressed); a larger report
            raises :class:`SkycoreTransportError` (default
            :data:`MAX_REPORT_BYTES`).
        dry_run : bool
            Return the exact API request (a :class:`~skycore_lab.guard.WireRequest`,
            key masked) instead of making it.

        Returns
        -------
        pandas.DataFrame
            :data:`skycore_lab.frames.sending_report.REPORT_COLUMNS`, as
            :func:`~skycore_lab.read_sending_report` documents them.

        Raises
        ------
        SkycoreValidationError
            A bad period (``end`` not after ``start``, unreadable times).
        SkycoreAPIError
            The platform refused: E506 dates required, E507/E508 a bad date
            format, E509 the period is too long, E510 lookups too frequent
            (never retried: the limit is per day), and the errors of any call
            (E104 …). Throttling (E106/E113/E120) is retried like a send's.
        SkycoreTransportError
            No usable answer, no link in it, or the report could not be
            downloaded (HTTP error, larger than ``max_report_bytes``, a link
            that is not http(s), a link carrying the API key to another host).

        Notes
        -----
        Decisions where the documentation is silent: the request's ``ACTION``
        is ``getSendingStatus``, as both revisions of the page write it. The
        answer is a "link to an XML file": the client takes the first text of
        the Success ``<RESPONSE>`` (``<URL>``, ``<LINK>``, ``<FILE>`` …) that
        is an ``http(s)://`` URL or a path (``/…``, ``….xml``), or a bare URL
        as the whole answer, and resolves a relative one against ``base_url``;
        an answer that holds the report itself (``<SENDING_LIST>`` …) is read
        as it is. The download is a plain GET without the API key; a link to
        another origin gets no ``Authorization`` header or session auth, and
        a link that contains the API key is refused unless it is on the API's
        own origin. At most 3 redirects are followed, each checked the same
        way. A gzip-compressed report (by its first bytes) is decompressed
        while downloading, within ``max_report_bytes``.
        """
        request = StatisticsRequest.create(start, end)
        if dry_run:
            return self.dry_run_request(request)
        if not self._api_key:
            raise SkycoreValidationError("api_key", "no API key: pass api_key= or set SKYCORE_API_KEY")
        if isinstance(max_report_bytes, bool) or not isinstance(max_report_bytes, int) or max_report_bytes < 1:
            raise SkycoreValidationError("max_report_bytes", f"must be a positive integer, got {max_report_bytes!r}")
        link, inline = self._statistics_link(request)
        from .frames.sending_report import read_sending_report

        if save_to is not None:
            import gzip

            from .files import atomic_write

            target = Path(save_to)
            if not target.parent.is_dir():
                raise SkycoreValidationError("save_to", f"the folder of {str(target)!r} does not exist")

            def write(tmp: str) -> None:
                with (gzip.open(tmp, "wb") if target.suffix.lower() == ".gz" else open(tmp, "wb")) as sink:
                    self._report_into(sink, link, inline, max_report_bytes)

            atomic_write(target, write)
            return read_sending_report(target, recover=recover)
        with tempfile.TemporaryFile() as sink:
            self._report_into(sink, link, inline, max_report_bytes)
            sink.seek(0)
            return read_sending_report(sink, recover=recover)

    def _report_into(self, sink, link: str | None, inline: bytes | None, limit: int) -> None:
        if inline is not None:
            if len(inline) > limit:
                raise SkycoreTransportError(f"the report in the answer is larger than {limit:,} bytes: not read")
            sink.write(inline)
            return
        error = self._download(link, sink, limit)
        if error is not None:
            raise error  # raised here, outside any handler: no __context__ holding the request

    def _statistics_link(self, request: StatisticsRequest) -> tuple[str | None, bytes | None]:
        """(link, None), or (None, the report itself) when the answer holds it; retries as sends do."""
        attempt = 0
        while True:
            found, error, retryable, hint = self._statistics_attempt(request)
            if error is None:
                return found
            if not retryable or attempt >= self.max_retries:
                raise error
            delay = self._random.uniform(0, self.backoff * 2**attempt)
            time.sleep(max(delay, hint or 0.0))
            attempt += 1

    def _statistics_attempt(self, request: StatisticsRequest):
        """One call: ``(found, error, retryable, wait_hint)``; no exception escapes."""
        url, hops = self.base_url, 0
        while True:
            response, failed = self._exchange(request, url)
            if failed is not None:
                return None, failed.error, failed.retryable, failed.wait_hint
            with contextlib.closing(response):
                status = response.status_code
                if status in (307, 308) and hops < _MAX_REDIRECTS:
                    location = response.headers.get("Location")
                    target = urljoin(url, location) if location else None
                    if target is not None and _origin(target) == _origin(url):
                        url = urlunsplit(urlsplit(target)._replace(query="", fragment="")) \
                            if self.method == "get" else target
                        hops += 1
                        continue
                if status in _REDIRECT_STATUSES:
                    shown = self._clean(response.headers.get("Location") or "(no Location)")
                    return None, SkycoreTransportError(
                        f"HTTP {status} redirect from {self.base_url} to {shown} not followed (the request carries "
                        "the API key)", status=status), False, None
                content, too_long = _read_limited(response, self.max_answer_bytes)
                if too_long:
                    return None, SkycoreTransportError(
                        f"answer from {self.base_url} is larger than {self.max_answer_bytes:,} bytes: not read",
                        status=status), False, None
                if content is None:
                    return None, SkycoreTransportError(f"answer from {self.base_url} broke off", status=status), \
                        False, None
                if status != 200:
                    head = self._clean(content[:_BODY_HEAD_CHARS].decode("utf-8", errors="replace"))
                    return None, SkycoreTransportError(f"HTTP {status} from {self.base_url}: {head!r}",
                                                       status=status, body_head=head), False, None
                return self._statistics_answer(content)

    def _statistics_answer(self, content: bytes):
        raw = self._clean(content.decode("utf-8", errors="replace")).strip()
        try:
            root = parse_xml(content)
        except XMLSyntaxError:
            bare = raw.split()[0] if raw.split() else ""
            if len(raw.split()) == 1 and _looks_like_link(bare):  # the whole answer is the link
                return (urljoin(self.base_url, content.decode("utf-8", errors="replace").strip()), None), None, \
                    False, None
            return None, SkycoreTransportError(
                f"answer from {self.base_url} is neither XML nor a link: {raw[:_BODY_HEAD_CHARS]!r}", status=200,
                body_head=raw[:_BODY_HEAD_CHARS]), False, None
        status = (element_text(root, "STATUS") or "").strip()
        if root.tag == "RESPONSE" and status.lower() not in ("", "success"):
            code = self._clean((element_text(root, "ERRORCODE") or "unknown").strip().upper())
            info = self._clean((element_text(root, "ERRORINFO") or status).strip())
            error = _api_error(code, info, None)
            if isinstance(error, SkycoreRateLimitError):
                return None, error, True, _interval_hint(info)
            return None, error, False, None
        if root.find(".//CONTENT") is not None or root.find(".//TEXT") is not None or any(
                root.find(f".//{section}") is not None for section in _REPORT_SECTIONS):
            return (None, content), None, False, None
        for element in root.iter():
            if element is root or element.tag in _NOT_LINKS or not isinstance(element.tag, str):
                continue
            text = (element.text or "").strip()
            if _looks_like_link(text):
                return (urljoin(self.base_url, text), None), None, False, None
        return None, SkycoreTransportError(
            f"the sending-statistics answer from {self.base_url} holds no link to a report: "
            f"{raw[:_BODY_HEAD_CHARS]!r}", status=200, body_head=raw[:_BODY_HEAD_CHARS]), False, None

    def _download(self, link: str, sink, limit: int) -> SkycoreTransportError | None:
        """Stream the report at ``link`` into ``sink`` (see :meth:`sending_statistics`); the error, or None."""
        url = link
        for _hop in range(_MAX_REDIRECTS + 1):
            shown = self._clean(url)
            parts = urlsplit(url)
            if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
                return SkycoreTransportError(f"the report link {shown!r} is not an http(s) URL: not downloaded")
            same_origin = _origin(url) == _origin(self.base_url)
            if shown != url and not same_origin:
                return SkycoreTransportError(
                    f"the report link {shown!r} carries the API key to another host than {self.base_url}: "
                    "not downloaded")
            # another origin gets neither the session's auth nor an Authorization header
            extra = {} if same_origin else {"auth": _no_auth, "headers": {"Authorization": None}}
            try:
                response = self._session.get(url, timeout=(min(10.0, self.timeout), self.timeout), stream=True,
                                             allow_redirects=False, **extra)
            except requests.exceptions.RequestException as exc:
                return SkycoreTransportError(f"could not download the report {shown!r}: {self._clean(exc)}")
            with contextlib.closing(response):
                status = response.status_code
                if status in _REDIRECT_STATUSES and response.headers.get("Location"):
                    url = urljoin(url, response.headers["Location"])
                    continue
                if status != 200:
                    return SkycoreTransportError(f"HTTP {status} downloading the report {shown!r}", status=status)
                declared = response.headers.get("Content-Length", "")
                if declared.isdigit() and int(declared) > limit and "gzip" not in \
                        response.headers.get("Content-Encoding", "").lower():
                    return SkycoreTransportError(f"the report {shown!r} is larger than {limit:,} bytes "
                                                 "(max_report_bytes): not downloaded", status=status)
                try:
                    _stream_report(response, sink, limit)
                except _TooLarge:
                    return SkycoreTransportError(f"the report {shown!r} is larger than {limit:,} bytes "
                                                 "(max_report_bytes): not read", status=status)
                except (requests.exceptions.RequestException, zlib.error) as exc:
                    return SkycoreTransportError(f"downloading the report {shown!r} failed: {self._clean(exc)}",
                                                 status=status)
                return None
        return SkycoreTransportError(f"more than {_MAX_REDIRECTS} redirects downloading the report "
                                     f"{self._clean(link)!r}")

    # -- many sends ------------------------------------------------------------------
    def send_batch(
        self,
        recipients: Iterable[str | int],
        mms_id: int | str,
        sender: str | int,
        *,
        max_rate_per_s: float | None = None,
        concurrency: int = 4,
        progress: bool = True,
        confirm: bool = False,
        dry_run: bool = False,
        price_per_mms: float | None = None,
        **send_kwargs,
    ):
        """Send ``mms_id`` to each recipient, one request each; return the send manifest.

        One failed send never stops the batch. Arguments shared by all sends
        (``mms_id``, ``sender``, ``ddm``, ...) are checked first, so a mistake
        there raises :class:`SkycoreValidationError` before anything is sent;
        so does the send guard (:mod:`skycore_lab.guard`): numbers off the
        allow-list, or more than 50 recipients on production without
        ``confirm=True``. A bad individual number becomes an ``Invalid`` row.
        Ctrl-C (or any interruption) stops sending, waits for requests in
        flight, and returns the manifest so far with the rest marked
        ``Cancelled`` — the tracking ids of sends already made are never lost.

        Parameters
        ----------
        recipients : iterable of str or int
        mms_id, sender, **send_kwargs
            As for :meth:`send_saved_mms`.
        max_rate_per_s : float, optional
            Cap on requests started per second, across all workers.
        concurrency : int
            Requests in flight at once.
        progress : bool
            Show a ``tqdm.auto`` progress bar.
        confirm : bool
            Needed for more than ``confirm_above`` recipients (50) on production.
        dry_run : bool
            Validate everything and return a :class:`~skycore_lab.guard.DryRun`
            with one exact request per valid recipient (API key masked) and
            the recipients that would be ``Invalid``; nothing is sent.
        price_per_mms : float, optional
            Price of one MMS for the estimated cost (default the client's).

        Returns
        -------
        pandas.DataFrame (a DryRun with ``dry_run=True``)
            One row per recipient, in input order:

            ============  ==========================================================
            to            recipient as given (whitespace stripped)
            status        one of :data:`MANIFEST_STATUSES`
            tracking_id   the platform's tracking id (Success rows only)
            sender        shortcode actually used (requested one if not answered)
            requested_at  UTC time the request was sent (NaT if never sent)
            error_code    API error code (Failure: the call's, or this number's
                          refusal in a multi-number answer), else missing
            error_info    error text (Failure/Invalid/Error/Unknown), else missing
            ============  ==========================================================
        """
        numbers = [str(n).strip() if not isinstance(n, str) else n.strip() for n in recipients]
        # Validate what all sends share with a stand-in recipient (its country's
        # warnings are not the recipients': each send warns for its own).
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SendOptionWarning)
            SendRequest.create(mms_id, "10000000000", sender, **send_kwargs)
        return self.send_each(numbers, mms_id, sender, [send_kwargs] * len(numbers),
                              max_rate_per_s=max_rate_per_s, concurrency=concurrency, progress=progress,
                              confirm=confirm, dry_run=dry_run, price_per_mms=price_per_mms)

    def send_each(self, recipients: Sequence[str | int], mms_id: int | str, sender: str | int,
                  send_kwargs: Sequence[Mapping], *, max_rate_per_s: float | None = None, concurrency: int = 4,
                  progress: bool = True, confirm: bool = False, dry_run: bool = False,
                  price_per_mms: float | None = None):
        """Like :meth:`send_batch`, with its own keyword arguments for each recipient.

        ``send_kwargs[i]`` holds the :meth:`send_saved_mms` arguments of
        ``recipients[i]`` (an experiment gives each recipient its arm's DDM);
        a bad argument makes that row ``Invalid``. Returns the manifest, one
        row per recipient in the order given, as :meth:`send_batch` does
        (``confirm``, ``dry_run`` and ``price_per_mms`` as there).
        """
        numbers = [str(n).strip() for n in recipients]
        kwargs_per_send = list(send_kwargs)
        if len(kwargs_per_send) != len(numbers):
            raise SkycoreValidationError(
                "send_kwargs", f"{len(kwargs_per_send)} argument sets for {len(numbers)} recipients")
        import pandas as pd
        from tqdm.auto import tqdm

        if concurrency < 1:
            raise SkycoreValidationError("concurrency", "must be at least 1")
        if not self._api_key.reveal():
            raise SkycoreValidationError("api_key", "no API key: pass api_key= or set SKYCORE_API_KEY")
        # The guard, before the first request: every valid number against the allow-list, the count
        # against the production threshold (invalid numbers are rows too, never sent).
        valid = []
        for number in numbers:
            with contextlib.suppress(SkycoreValidationError):
                valid.append(validate_number(number))
        self.guard.check(valid, mms_id, sender, confirm=confirm or bool(dry_run), price_per_mms=price_per_mms)
        if dry_run:
            return self._dry_run_each(numbers, mms_id, sender, kwargs_per_send, price_per_mms)
        if self._owns_session and concurrency > 16:
            self._session = self._new_session(pool=concurrency)
        rows: list[dict | None] = [None] * len(numbers)
        limiter = RateLimiter.per_second_rate(max_rate_per_s)
        cancelled = threading.Event()
        sender_text = str(sender).strip()

        def one(index: int) -> None:
            number = numbers[index]
            row = {col.TO: number, col.STATUS: None, col.TRACKING_ID: None, col.SENDER: sender_text,
                   col.REQUESTED_AT: pd.NaT, col.ERROR_CODE: None, col.ERROR_INFO: None}
            if cancelled.is_set():
                row[col.STATUS] = "Cancelled"
                rows[index] = row
                return
            try:
                request = SendRequest.create(mms_id, number, sender, **kwargs_per_send[index])
            except SkycoreValidationError as exc:
                row[col.STATUS], row[col.ERROR_INFO] = "Invalid", str(exc)
                rows[index] = row
                return
            limiter.wait()
            started = datetime.now(timezone.utc)
            try:
                result = self._send_unguarded(request)[0]
            except SkycoreAPIError as exc:
                row.update({col.STATUS: "Failure", col.ERROR_CODE: exc.code, col.ERROR_INFO: exc.info or exc.meaning,
                            col.REQUESTED_AT: started})
            except SkycoreTransportError as exc:
                row.update({col.STATUS: "Unknown" if exc.may_have_sent else "Error", col.ERROR_INFO: str(exc),
                            col.REQUESTED_AT: started})
            except Exception as exc:  # noqa: BLE001 - one broken send must not stop the batch
                log.exception("unexpected error sending to %s", number)
                row.update({col.STATUS: "Unknown", col.ERROR_INFO: f"unexpected {type(exc).__name__}: {self._clean(exc)}",
                            col.REQUESTED_AT: started})
            else:
                row.update({col.STATUS: result.status, col.TRACKING_ID: result.tracking_id,
                            col.SENDER: result.sender, col.REQUESTED_AT: result.requested_at,
                            col.ERROR_CODE: result.error_code, col.ERROR_INFO: result.error_info})
            rows[index] = row

        bar = tqdm(total=len(numbers), desc="sending", unit="msg", disable=not progress, leave=True)
        executor = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="skycore-send")
        try:
            futures = [executor.submit(one, i) for i in range(len(numbers))]
            for future in futures:
                future.add_done_callback(lambda _f: bar.update(1))
            for future in futures:
                future.result()
        except KeyboardInterrupt:
            cancelled.set()  # rows not started become Cancelled; sends in flight finish
            log.warning("batch interrupted: returning the manifest of the sends made so far")
        finally:
            executor.shutdown(wait=True)
            bar.close()
        return _manifest_frame(rows, numbers, sender_text)

    def _dry_run_each(self, numbers: list[str], mms_id, sender, kwargs_per_send: list[Mapping],
                      price_per_mms) -> DryRun:
        requests_, invalid = [], []
        for number, kwargs in zip(numbers, kwargs_per_send, strict=True):
            try:
                requests_.append(SendRequest.create(mms_id, number, sender, **kwargs))
            except SkycoreValidationError as exc:
                invalid.append((number, str(exc)))
        return self._dry_run(requests_, len(numbers), mms_id, sender, price_per_mms, tuple(invalid))


# --- answers --------------------------------------------------------------------
_BLOCK_TAGS = ("TRACKINGID", "TO", "FROM", "ERRORCODE", "ERRORINFO", "STATUSDETAILS")


def _flat_blocks(root, clean) -> list[dict]:
    """The top-level ``TRACKINGID``/``TO``/``FROM`` groups, paired by position.

    The documented one-number answer has one of each; repeated groups (an
    undocumented shape) pair the i-th of each. A Success without any
    non-empty ``TRACKINGID`` gives no block.
    """
    def texts(tag: str) -> list[str | None]:
        return [clean((element.text or "").strip()) for element in root.findall(tag)]

    tracking, tos, froms = texts("TRACKINGID"), texts("TO"), texts("FROM")
    if not any(tracking):
        return []
    return [{"TRACKINGID": tracking_id, "TO": tos[i] if i < len(tos) else None,
             "FROM": froms[i] if len(froms) == len(tracking) else None}
            for i, tracking_id in enumerate(tracking)]


def _number_key(number: str | None) -> str:
    return (number or "").strip().lstrip("+")


def _match(numbers: tuple[str, ...], blocks: list[dict]) -> list[tuple[str, dict | None]]:
    """Pair each requested number with its block (by TO, then by position); extra blocks last."""
    used = [False] * len(blocks)
    paired: list[tuple[str, dict | None]] = []
    for number in numbers:
        match = None
        for i, block in enumerate(blocks):
            if not used[i] and _number_key(block.get("TO")) == _number_key(number):
                match = i
                break
        if match is not None:
            used[match] = True
        paired.append((number, None if match is None else blocks[match]))
    # Blocks without a usable TO fill the numbers still unmatched, in order.
    spare = [i for i, block in enumerate(blocks) if not used[i] and not block.get("TO")]
    for position, (number, block) in enumerate(paired):
        if block is None and spare:
            i = spare.pop(0)
            used[i] = True
            paired[position] = (number, blocks[i])
    # Never drop a tracking id: blocks for numbers not asked come last.
    for i, block in enumerate(blocks):
        if not used[i] and block.get("TRACKINGID"):
            log.warning("the answer names a number that was not requested: %s", block.get("TO"))
            paired.append((block.get("TO") or "", block))
    return paired


def _api_error(code: str, info: str, to: str | None) -> SkycoreAPIError:
    kind = SkycoreRateLimitError if code in RATE_LIMIT_CODES else SkycoreAPIError
    return kind(code, info, to)


def _interval_hint(info: str) -> float | None:
    """E106's interval ("You can call API every 30 seconds."), capped at a minute."""
    found = re.search(r"every\s+([0-9]+(?:\.[0-9]+)?)\s+seconds?", info or "")
    return min(float(found.group(1)), 60.0) if found else None


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    return scheme, (parts.hostname or "").lower(), port or {"http": 80, "https": 443}.get(scheme)


def _clean_key(key: object) -> str | None:
    return key.strip() if isinstance(key, str) else key


def _manifest_frame(rows: list[dict | None], numbers: list[str], sender: str):
    import pandas as pd

    filled = [
        row if row is not None else {col.TO: numbers[i], col.STATUS: "Cancelled", col.TRACKING_ID: None, col.SENDER: sender,
                                      col.REQUESTED_AT: pd.NaT, col.ERROR_CODE: None, col.ERROR_INFO: None}
        for i, row in enumerate(rows)
    ]
    from .manifest import manifest_frame  # the one definition of the manifest's dtypes

    return manifest_frame(pd.DataFrame(filled, columns=list(col.MANIFEST_COLUMNS)))


# --- the sending-statistics report ------------------------------------------------------------
_REPORT_SECTIONS = ("BATCHES", "AUTORESPONDERS", "SUBSCRIPTIONS", "SENDING_LIST")
_NOT_LINKS = frozenset({"STATUS", "MMSID", "ERRORCODE", "ERRORINFO", "STATUSDETAILS"})
_GZIP_MAGIC = b"\x1f\x8b"


def _looks_like_link(text: str) -> bool:
    if not text or any(ch.isspace() for ch in text):
        return False
    lowered = text.lower()
    # any scheme counts (the download refuses what is not http(s), saying so)
    return "://" in lowered or lowered.startswith("/") or lowered.endswith((".xml", ".xml.gz", ".gz"))


def _no_auth(prepared):
    """A requests auth that adds nothing: overrides a session's auth for a download from another origin."""
    return prepared


class _TooLarge(Exception):
    pass


def _read_limited(response: requests.Response, limit: int) -> tuple[bytes | None, bool]:
    """(bytes, False); (None, True) when longer than ``limit``; (None, False) when the answer broke off."""
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > limit:
        return None, True
    chunks, size = [], 0
    try:
        for chunk in response.iter_content(chunk_size=65536):
            size += len(chunk)
            if size > limit:
                return None, True
            chunks.append(chunk)
    except requests.exceptions.RequestException:
        return None, False
    return b"".join(chunks), False


def _stream_report(response: requests.Response, sink, limit: int) -> None:
    """Write the (decompressed) body into ``sink``; raise _TooLarge beyond ``limit`` bytes."""
    inflate = None
    size = 0

    def write(piece: bytes) -> None:
        nonlocal size
        size += len(piece)
        if size > limit:
            raise _TooLarge
        sink.write(piece)

    for chunk in response.iter_content(chunk_size=65536):
        if not chunk:
            continue
        if size == 0 and inflate is None and chunk.startswith(_GZIP_MAGIC):
            inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
        if inflate is None:
            write(chunk)
            continue
        data = chunk
        while data:  # bounded pieces: a small bomb never expands past the limit in memory
            write(inflate.decompress(data, 1 << 20))
            data = inflate.unconsumed_tail
    if inflate is not None:
        write(inflate.flush())
