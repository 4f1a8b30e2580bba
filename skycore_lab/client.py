"""A client for the Skycore API v1.3 ``sendSavedMMS`` call.

>>> client = SkycoreClient(api_key, base_url=sandbox.url)          # doctest: +SKIP
>>> result = client.send_saved_mms(1001, "17743199144", "60856",
...                                ddm=DDM("Hi! Reply STOP to opt out", timeout_min=10))
>>> result.tracking_id                                               # doctest: +SKIP
'TU1TXzU5Nzg3OQ=='

Decisions where the public documentation is silent or ambiguous
---------------------------------------------------------------
* **Request forms.** ``method="post"`` sends the XML document in the form
  field ``xml`` (as documented); ``method="get"`` sends the lower-case query
  keys. GET puts the API key in the URL, so in proxy and server logs: prefer
  POST outside a sandbox.
* **Several recipients.** ``to`` may be a list of up to 100 numbers, sent as
  one comma-separated ``TO``. The answer's shape for several numbers is not
  documented; we read repeated ``TO``/``TRACKINGID``/``FROM`` elements in
  request order (what the sandbox writes) and return a list of results.
* **Retries.** Only where the platform surely did not act: the connection was
  refused or timed out while connecting (nothing was written), HTTP 502/503/504
  from a gateway, and the throttling codes E106/E113/E120. Exponential backoff
  with full jitter. A read time-out is *never* retried: the MMS may have gone
  out, and a second request would send (and bill) it twice; the client raises
  :class:`SkycoreTimeoutError` instead. A connection broken after the request
  was written raises :class:`SkycoreTransportError` with ``may_have_sent=True``.
* **Secrets.** The API key is held in a masking wrapper: it never appears in
  ``repr(client)``, in exception messages or in log records (a logging filter
  masks it in urllib3's request lines, which include GET URLs).
"""

from __future__ import annotations

import copy
import logging
import os
import random
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone

import requests
from lxml import etree
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from . import columns as col
from .ratelimit import RateLimiter
from .redaction import RedactingFilter, Secret, redact
from .xmlsafe import XMLSyntaxError, element_text, parse_xml
from .exceptions import (
    RATE_LIMIT_CODES,
    SkycoreAPIError,
    SkycoreError,
    SkycoreRateLimitError,
    SkycoreTimeoutError,
    SkycoreTransportError,
    SkycoreValidationError,
)
from .reference import INTERNATIONAL_NUMBER, MAX_RECIPIENTS

__all__ = [
    "PRODUCTION_URL",
    "DDM",
    "SendRequest",
    "SendResult",
    "SkycoreClient",
    "validate_number",
    "MANIFEST_STATUSES",
]

#: The production endpoint (paid accounts only).
PRODUCTION_URL = "https://secure.skycore.com/API/wxml/1.3/index.php"
_RETRY_HTTP_STATUSES = frozenset({502, 503, 504})
_BODY_HEAD_CHARS = 200

#: ``status`` values of a send manifest row:
#: Success / Failure (the platform's answer), Invalid (refused by the client's
#: own checks, never sent), Error (no answer, surely not sent), Unknown (no
#: answer after the request was written: it may have gone out), Cancelled
#: (the batch was interrupted before this row was sent).
MANIFEST_STATUSES = ("Success", "Failure", "Invalid", "Error", "Unknown", "Cancelled")

log = logging.getLogger(__name__)

# One filter for urllib3's request lines, which carry GET URLs (and keys).
_URL_FILTER = RedactingFilter([])
logging.getLogger("urllib3.connectionpool").addFilter(_URL_FILTER)


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
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int):
        raise SkycoreValidationError(field_name, f"expected a non-negative integer, got {value!r}")
    if value < 0:
        raise SkycoreValidationError(field_name, f"must not be negative (got {value})")
    return value


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
        sending the content with generic settings. Platform default 5.
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
        if not isinstance(self.force, bool):
            raise SkycoreValidationError("ddm.force", f"expected True or False, got {self.force!r}")
        return DDM(text, title, timeout, self.force)


@dataclass(frozen=True)
class SendRequest:
    """One validated ``sendSavedMMS`` request, independent of the wire form.

    Build it with :meth:`create`, which checks every field and raises
    :class:`SkycoreValidationError` naming the first bad one. :meth:`to_xml`
    and :meth:`to_query` give the two documented wire forms.
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
        if mask is not None and (len(mask) > 11 or not all(ch.isascii() and (ch.isalnum() or ch == " ") for ch in mask)):
            raise SkycoreValidationError("from_mask", "an alphanumeric sender has 1 to 11 letters, digits or spaces")
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
    def _pairs(self) -> list[tuple[str, str | None, str]]:
        """(XML element, GET key, value) in documented order; custom text/data apart."""
        pairs = [("MMSID", "mmsid", self.mms_id), ("TO", "to", ",".join(self.to)), ("FROM", "from", self.sender)]
        if self.campaign_ref is not None:
            pairs.append(("CAMPAIGNREF", "campaignref", self.campaign_ref))
        if self.ddm is not None:
            if self.ddm.title is not None:
                pairs.append(("DDMTITLE", "ddmtitle", self.ddm.title))
            pairs.append(("DDMTEXT", "ddmtext", self.ddm.text))
            if self.ddm.timeout_min is not None:
                pairs.append(("DDMTIMEOUT", "ddmtimeout", str(self.ddm.timeout_min)))
            if self.ddm.force:
                pairs.append(("DDMFORCE", "ddmforce", "true"))
        return pairs

    def _tail(self) -> list[tuple[str, str, str]]:
        tail = []
        if self.custom_subject is not None:
            tail.append(("CUSTOMSUBJECT", "customsubject", self.custom_subject))
        if self.from_mask is not None:
            tail.append(("FROM_MASK", "from_mask", self.from_mask))
        if self.operator_id is not None:
            tail.append(("OPERATORID", "operatorid", self.operator_id))
        if self.fallback_sms_text is not None:
            tail.append(("FALLBACKSMSTEXT", "fallbacksmstext", self.fallback_sms_text))
        return tail

    def to_xml(self, api_key: str) -> bytes:
        """The POST form's ``<REQUEST>`` document, UTF-8 with declaration."""
        root = etree.Element("REQUEST")

        def add(parent, tag: str, text: str, key: str):
            try:
                etree.SubElement(parent, tag).text = text
            except ValueError:  # control characters XML 1.0 cannot carry
                raise SkycoreValidationError(
                    _PARAMETER_OF_KEY.get(key, key), "contains characters XML cannot carry (control characters)"
                ) from None

        add(root, "ACTION", "sendSavedMMS", "action")
        add(root, "API_KEY", api_key, "api_key")
        for tag, key, value in self._pairs():
            add(root, tag, value, key)
        for slide, text in self.custom_text:
            element = etree.SubElement(root, "CUSTOMTEXT")
            add(element, "VALUE", text, f"custom_text[{slide}]")
            add(element, "SLIDE", str(slide), f"custom_text[{slide}]")
        tail = self._tail()
        subject, rest = (tail[:1], tail[1:]) if self.custom_subject is not None else ([], tail)
        for tag, key, value in subject:
            add(root, tag, value, key)
        if self.data:
            block = etree.SubElement(root, "DATA")
            for name, value in self.data:
                add(block, name.upper(), value, f"data[{name!r}]")
        for tag, key, value in rest:
            add(root, tag, value, key)
        return etree.tostring(root, xml_declaration=True, encoding="UTF-8")

    def to_query(self, api_key: str) -> list[tuple[str, str]]:
        """The GET form's ``(key, value)`` pairs, lower-case keys as documented."""
        query = [("action", "sendsavedmms"), ("api_key", api_key)]
        query += [(key, value) for _tag, key, value in self._pairs()]
        tail = [(key, value) for _tag, key, value in self._tail()]
        query += [(f"customtext_{slide}", text) for slide, text in self.custom_text]
        query += tail[:1] if self.custom_subject is not None else []
        query += [(f"data_{name.lower()}", value) for name, value in self.data]
        query += tail[1:] if self.custom_subject is not None else tail
        return query


@dataclass(frozen=True)
class SendResult:
    """A successful ``sendSavedMMS`` answer for one recipient.

    Attributes
    ----------
    status : str
        ``"Success"``.
    to : str
        The recipient, as the platform echoed it.
    sender : str
        The shortcode actually used (``FROM``); it may differ from the one
        requested when the recipient's country has its own default shortcode.
    mms_id : str
    tracking_id : str
        Opaque id linking this send to its postbacks.
    requested_at : datetime
        UTC time the (successful attempt's) request was sent.
    raw : str
        The response XML, for the record.
    """

    status: str
    to: str
    sender: str
    mms_id: str
    tracking_id: str
    requested_at: datetime
    raw: str = field(repr=False)


# --- the client ----------------------------------------------------------------
class _Retryable(Exception):
    def __init__(self, error: SkycoreError, wait_hint: float | None = None):
        self.error = error
        self.wait_hint = wait_hint


class SkycoreClient:
    """Client for ``sendSavedMMS`` (Skycore API v1.3).

    Parameters
    ----------
    api_key : str, optional
        Account API key; default ``$SKYCORE_API_KEY``. Never shown in reprs,
        messages or logs.
    base_url : str, optional
        Endpoint URL; default ``$SKYCORE_API_URL``, else :data:`PRODUCTION_URL`.
        Point it at :attr:`skycore_lab.Sandbox.url` to work offline.
    method : {"post", "get"}
        Request form. GET puts the API key in the URL (proxy/server logs).
    timeout : float
        Seconds to wait for the answer once the request is written.
    max_retries : int
        Retries for failures where the platform surely did not send
        (connection refused, 502/503/504, throttling).
    session : requests.Session, optional
        Bring your own (proxies, certificates); closed by you, not by us.
    backoff : float
        Base of the exponential backoff in seconds (full jitter).
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
    ):
        key = api_key if api_key is not None else os.environ.get("SKYCORE_API_KEY")
        self._api_key = Secret(key.strip() if isinstance(key, str) else key)
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
        self._owns_session = session is None
        self._session = session or self._new_session()
        self._random = random.Random()
        if self._api_key.reveal():
            _URL_FILTER.secrets.append(self._api_key.reveal())

    @staticmethod
    def _new_session(pool: int = 16) -> requests.Session:
        session = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=pool, max_retries=0)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        session.headers["User-Agent"] = "skycore-lab"
        return session

    def __repr__(self) -> str:
        return f"SkycoreClient(base_url={self.base_url!r}, method={self.method!r}, api_key={self._api_key!r})"

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
    ) -> SendResult | list[SendResult]:
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
            Alphanumeric sender (some countries only, not the US).
        operator_id : str or int, optional
        fallback_sms_text : str, optional
            Text of the SMS sent when the MMS falls back to an SMS link.

        Returns
        -------
        SendResult, or list of SendResult when ``to`` is a sequence.

        Raises
        ------
        SkycoreValidationError
            Bad input; nothing was sent.
        SkycoreAPIError, SkycoreRateLimitError
            The platform refused the request.
        SkycoreTimeoutError
            No answer in time after the request was written: state unknown.
        SkycoreTransportError
            Any other failure to get a usable answer.
        """
        request = SendRequest.create(
            mms_id, to, sender, campaign_ref=campaign_ref, ddm=ddm, custom_text=custom_text,
            custom_subject=custom_subject, data=data, from_mask=from_mask, operator_id=operator_id,
            fallback_sms_text=fallback_sms_text,
        )
        results = self.send(request)
        return results if not isinstance(to, (str, int)) else results[0]

    def send(self, request: SendRequest) -> list[SendResult]:
        """Send a prepared :class:`SendRequest`; one result per recipient."""
        api_key = self._api_key.reveal()
        if not api_key:
            raise SkycoreValidationError("api_key", "no API key: pass api_key= or set SKYCORE_API_KEY")
        attempt = 0
        while True:
            try:
                return self._attempt(request, api_key)
            except _Retryable as retry:
                if attempt >= self.max_retries:
                    raise retry.error from None
                delay = self._random.uniform(0, self.backoff * 2**attempt)
                if retry.wait_hint is not None:
                    delay = max(delay, retry.wait_hint)
                log.info("retrying after %s (attempt %d of %d, in %.2f s)", retry.error, attempt + 1, self.max_retries, delay)
                time.sleep(delay)
                attempt += 1

    def _attempt(self, request: SendRequest, api_key: str) -> list[SendResult]:
        requested_at = datetime.now(timezone.utc)
        first_to = request.to[0] if len(request.to) == 1 else None
        try:
            if self.method == "post":
                xml = request.to_xml(api_key).decode("utf-8")
                response = self._session.post(self.base_url, data={"xml": xml}, timeout=(min(10.0, self.timeout), self.timeout))
            else:
                response = self._session.get(self.base_url, params=request.to_query(api_key),
                                             timeout=(min(10.0, self.timeout), self.timeout))
        except requests.exceptions.ConnectTimeout as exc:
            raise _Retryable(SkycoreTransportError(f"could not connect to {self.base_url}: {self._clean(exc)}")) from None
        except requests.exceptions.ReadTimeout:
            raise SkycoreTimeoutError(
                f"no answer from {self.base_url} within {self.timeout:g} s after the request was sent: "
                f"the MMS to {','.join(request.to)} may or may not have gone out; check its postbacks before resending"
            ) from None
        except requests.exceptions.ConnectionError as exc:
            reason = getattr(exc.args[0], "reason", None) if exc.args else None
            if isinstance(reason, (NewConnectionError, ConnectTimeoutError)):
                raise _Retryable(SkycoreTransportError(f"could not connect to {self.base_url}: {self._clean(exc)}")) from None
            raise SkycoreTransportError(
                f"connection to {self.base_url} broke after the request was sent ({self._clean(exc)}): "
                "the MMS may have gone out; check its postbacks before resending",
                may_have_sent=True,
            ) from None
        except requests.exceptions.RequestException as exc:
            raise SkycoreTransportError(f"request to {self.base_url} failed: {self._clean(exc)}") from None
        return self._parse(response, request, requested_at, first_to)

    def _clean(self, exc: BaseException) -> str:
        return redact(str(exc), [self._api_key.reveal()])

    def _parse(self, response: requests.Response, request: SendRequest, requested_at: datetime, first_to: str | None) -> list[SendResult]:
        body = response.text
        head = self._clean(body[:_BODY_HEAD_CHARS])
        if response.status_code != 200:
            error = SkycoreTransportError(
                f"HTTP {response.status_code} from {self.base_url}: {head!r}", status=response.status_code, body_head=head
            )
            if response.status_code in _RETRY_HTTP_STATUSES:
                raise _Retryable(error, _retry_after(response))
            raise error
        try:
            root = parse_xml(response.content)
        except XMLSyntaxError as exc:
            raise SkycoreTransportError(
                f"answer from {self.base_url} is not XML ({exc}): {head!r}", status=200, body_head=head
            ) from None
        if root.tag != "RESPONSE":
            raise SkycoreTransportError(f"answer is <{root.tag}>, not <RESPONSE>: {head!r}", status=200, body_head=head)
        status = element_text(root, "STATUS") or ""
        if status.lower() != "success":
            code = (element_text(root, "ERRORCODE") or "").upper()
            info = self._clean(element_text(root, "ERRORINFO") or "")
            to = element_text(root, "TO") or first_to
            if code in RATE_LIMIT_CODES:
                raise _Retryable(SkycoreRateLimitError(code, info, to))
            raise SkycoreAPIError(code or "unknown", info or status or "failure without error code", to)
        mms_id = element_text(root, "MMSID") or request.mms_id
        numbers = [(e.text or "").strip() for e in root.findall("TO")] or list(request.to)
        tracking = [(e.text or "").strip() for e in root.findall("TRACKINGID")]
        senders = [(e.text or "").strip() for e in root.findall("FROM")] or [request.sender]
        if len(tracking) != len(numbers):
            raise SkycoreTransportError(
                f"answer has {len(tracking)} tracking ids for {len(numbers)} numbers: {head!r}", status=200, body_head=head
            )
        if len(senders) == 1:
            senders = senders * len(numbers)
        return [
            SendResult("Success", number, sender, mms_id, tracking_id, requested_at, body)
            for number, tracking_id, sender in zip(numbers, tracking, senders, strict=False)
        ]

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
        **send_kwargs,
    ):
        """Send ``mms_id`` to each recipient, one request each; return the send manifest.

        One failed send never stops the batch. Arguments shared by all sends
        (``mms_id``, ``sender``, ``ddm``, ...) are checked first, so a mistake
        there raises :class:`SkycoreValidationError` before anything is sent.
        A bad individual number becomes an ``Invalid`` row. Ctrl-C (or any
        interruption) stops sending, waits for requests in flight, and
        returns the manifest so far with the rest marked ``Cancelled`` — the
        tracking ids of sends already made are never lost.

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

        Returns
        -------
        pandas.DataFrame
            One row per recipient, in input order:

            ============  ==========================================================
            to            recipient as given (whitespace stripped)
            status        one of :data:`MANIFEST_STATUSES`
            tracking_id   the platform's tracking id (Success rows only)
            sender        shortcode actually used (requested one if not answered)
            requested_at  UTC time the request was sent (NaT if never sent)
            error_code    API error code (Failure), else missing
            error_info    error text (Failure/Invalid/Error/Unknown), else missing
            ============  ==========================================================
        """
        numbers = [str(n).strip() if not isinstance(n, str) else n.strip() for n in recipients]
        # Validate what all sends share with a stand-in recipient.
        SendRequest.create(mms_id, "10000000000", sender, **send_kwargs)
        return self.send_each(numbers, mms_id, sender, [send_kwargs] * len(numbers),
                              max_rate_per_s=max_rate_per_s, concurrency=concurrency, progress=progress)

    def send_each(self, recipients: Sequence[str | int], mms_id: int | str, sender: str | int,
                  send_kwargs: Sequence[Mapping], *, max_rate_per_s: float | None = None, concurrency: int = 4,
                  progress: bool = True):
        """Like :meth:`send_batch`, with its own keyword arguments for each recipient.

        ``send_kwargs[i]`` holds the :meth:`send_saved_mms` arguments of
        ``recipients[i]`` (an experiment gives each recipient its arm's DDM);
        a bad argument makes that row ``Invalid``. Returns the manifest, one
        row per recipient in the order given, as :meth:`send_batch` does.
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
                result = self.send(request)[0]
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
                            col.SENDER: result.sender, col.REQUESTED_AT: result.requested_at})
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


def _manifest_frame(rows: list[dict | None], numbers: list[str], sender: str):
    import pandas as pd

    filled = [
        row if row is not None else {col.TO: numbers[i], col.STATUS: "Cancelled", col.TRACKING_ID: None, col.SENDER: sender,
                                      col.REQUESTED_AT: pd.NaT, col.ERROR_CODE: None, col.ERROR_INFO: None}
        for i, row in enumerate(rows)
    ]
    from .manifest import manifest_frame  # the one definition of the manifest's dtypes

    return manifest_frame(pd.DataFrame(filled, columns=list(col.MANIFEST_COLUMNS)))


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return min(float(value), 60.0) if value is not None else None
    except ValueError:
        return None
