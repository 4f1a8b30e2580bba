"""Read the platform's sending-statistics report (getSendingStatistics, Appendix C).

The report is an XML document listing every message sent in a period. The
API summary documents the message elements, not the envelope; we expect
(root ``<RESPONSE>``) sections like these, but find ``<CONTENT>``/``<TEXT>``
messages wherever they sit, so another envelope reads the same (only the
``section``/``group_*`` columns stay empty)::

    <BATCHES><BATCH id campaignid campaignname from contentid contentname>
        <CONTENT …/> <TEXT …/> …</BATCH></BATCHES>
    <AUTORESPONDERS><AUTORESPONDER …> … </AUTORESPONDER></AUTORESPONDERS>
    <SUBSCRIPTIONS><SUB to carrier from> … </SUB></SUBSCRIPTIONS>
    <SENDING_LIST> <CONTENT …/> <TEXT …/> … </SENDING_LIST>

An MMS is ``<CONTENT id to carrier delivery contentid contentname from>``
holding ``<MSG_STATUS>`` with one element per step, each with ``time`` (UTC,
``…T04:45:18.80118Z``) and usually ``gw``/``net``, then ``<MM7_HANDSETID>``
(binary) or ``<XHTML_HANDSETID>`` (the browser's user agent). An SMS is
``<TEXT id to carrier from body>`` with its steps as direct children.

:func:`read_sending_report` gives one row per message, shaped like
:func:`skycore_lab.deliveries` (so :func:`skycore_lab.delivery_rates` and
:func:`skycore_lab.latency_summary` work on it unchanged) plus the report's own
step times.
"""

from __future__ import annotations

import gzip
import io
import os
import re
import warnings
from collections import Counter
from typing import IO

import numpy as np
import pandas as pd
from lxml import etree

from .. import columns as col
from ..exceptions import PostbackParseError
from ..provenance import attach_sources, source_file
from ..xmlsafe import HARDENED_OPTIONS, repair_xml
from ..exceptions import SendingReportWarning
from .latency import latency_seconds
from .normalize import (
    NegativeLatency,
    as_text,
    check_negative_latency,
    fill_place,
    finish_delivery_dtypes,
    handle_negative_latencies,
)

__all__ = ["read_sending_report", "SendingReportWarning", "REPORT_COLUMNS", "STEP_COLUMNS"]

# --- columns beyond DELIVERY_COLUMNS (candidates for skycore_lab.columns) ----------------------
MESSAGE_TYPE = "message_type"  # MMS (<CONTENT>) or SMS (<TEXT>)
DELIVERY_TYPE = "delivery"  # binary / xhtml (MMS only)
CONTENT_NAME = "content_name"
BODY = "body"
SECTION = "section"  # BATCHES, AUTORESPONDERS, SUBSCRIPTIONS, SENDING_LIST
GROUP_ID = "group_id"  # the BATCH / AUTORESPONDER id
CAMPAIGN_ID = "campaign_id"
CAMPAIGN_NAME = "campaign_name"
INQUE_AT = "inque_at"
INIT_AT = "init_at"
ACK_AT = "ack_at"
OPENED_AT = "opened_at"
DLR_AT = "dlr_at"
ERROR_AT = "error_at"
EXPIRED_AT = "expired_at"
REJECTED_AT = "rejected_at"
DDM_ACK_AT = "ddm_ack_at"
DDM_DLR_AT = "ddm_dlr_at"
DDM_FAILED_AT = "ddm_failed_at"

#: The report's step times, in chronological order of a message's life.
STEP_COLUMNS: tuple[str, ...] = (
    DDM_ACK_AT,
    DDM_DLR_AT,
    DDM_FAILED_AT,
    INQUE_AT,
    INIT_AT,
    ACK_AT,
    ERROR_AT,
    DLR_AT,
    EXPIRED_AT,
    REJECTED_AT,
    OPENED_AT,
)
#: Every column of :func:`read_sending_report`, in order.
REPORT_COLUMNS: tuple[str, ...] = (
    *col.DELIVERY_COLUMNS,
    MESSAGE_TYPE,
    DELIVERY_TYPE,
    CONTENT_NAME,
    BODY,
    SECTION,
    GROUP_ID,
    CAMPAIGN_ID,
    CAMPAIGN_NAME,
    *STEP_COLUMNS,
    col.ERROR_INFO,
    col.RECOVERED,
)

# --- the XML vocabulary ---------------------------------------------------------------------------
_MMS, _SMS = "CONTENT", "TEXT"
_MESSAGES = frozenset({_MMS, _SMS})
_SECTIONS = frozenset({"BATCHES", "AUTORESPONDERS", "SUBSCRIPTIONS", "SENDING_LIST"})
_GROUPS = frozenset({"BATCH", "AUTORESPONDER", "SUB"})
_INQUE, _INIT, _ACK, _ERROR, _DLR, _EXPIRED, _REJECTED, _OPENED = (
    "INQUE", "INIT", "ACK", "ERROR", "DLR", "EXPIRED", "REJECTED", "OPENED",
)
_STEPS = frozenset({_INQUE, _INIT, _ACK, _ERROR, _DLR, _EXPIRED, _REJECTED, _OPENED})
_FAILURE_STEPS = (_ERROR, _EXPIRED, _REJECTED)
_DDM_ACK_GW, _DDM_DLR_GW = 80, 81
# Lenient: a misspelt MM7_HANDSTID and a bare HANDSETID are accepted too.
_HANDSET_TAGS = frozenset({"MM7_HANDSETID", "XHTML_HANDSETID", "MM7_HANDSTID", "HANDSETID"})
_STEP_FIELDS = frozenset({"TIME", "GW", "NET", "INFO"})
# message fields: attribute name (lower case) → our column
_FIELDS = {
    "id": col.TRACKING_ID,
    "to": col.TO,
    "carrier": col.CARRIER,
    "delivery": DELIVERY_TYPE,
    "contentid": col.MMS_ID,
    "contentname": CONTENT_NAME,
    "from": col.SENDER,
    "body": BODY,
    "text": BODY,  # SMS in subscriptions and sending lists carry their text as `text`
}
# group attributes a message inherits when it lacks them
_INHERITED = ("to", "carrier", "from", "contentid", "contentname", "body", "text")
_SENT_AS = {"binary": col.SENT_AS_MMS, "xhtml": col.SENT_AS_SMS}
_OUTCOME_OF_STEP = {
    _DLR: col.OUTCOME_DELIVERED,
    _OPENED: col.OUTCOME_DELIVERED,
    _ERROR: col.OUTCOME_FAILED,
    _EXPIRED: col.OUTCOME_EXPIRED,
    _REJECTED: col.OUTCOME_REJECTED,
}
_STEP_OF_FAILURE_COLUMN = {ERROR_AT: _ERROR, EXPIRED_AT: _EXPIRED, REJECTED_AT: _REJECTED}
_FAR_FUTURE = pd.Timestamp("2200-01-01", tz="UTC")
_WHITESPACE = re.compile(r"\s+")
# one row of message data, before the step times
_MESSAGE_COLUMNS = (col.TRACKING_ID, col.TO, col.CARRIER, DELIVERY_TYPE, col.MMS_ID, CONTENT_NAME, col.SENDER, BODY,
                    MESSAGE_TYPE, SECTION, GROUP_ID, CAMPAIGN_ID, CAMPAIGN_NAME, col.HANDSET)

# working columns of the long step table
_MSG, _POS, _STEP, _GW, _TIME, _INFO, _ROLE = "_msg", "_pos", "_step", "_gw", "_time", "_info", "_role"


def _tag(element) -> str:
    return etree.QName(element).localname.upper()


def _attributes(element) -> dict[str, str]:
    return {etree.QName(key).localname.lower(): value.strip() for key, value in element.attrib.items()}


def _text(element) -> str | None:
    text = _WHITESPACE.sub(" ", "".join(element.itertext())).strip()  # user agents wrap lines
    return text or None


class _Reader:
    """Collects messages and their steps while the report streams by."""

    def __init__(self) -> None:
        self.messages: list[dict[str, str | None]] = []
        self.steps: list[tuple[int, int, str, float, str | None, str | None]] = []
        self.unknown: Counter[str] = Counter()
        self.section: str | None = None
        self.group: dict[str, str] | None = None
        self.recovered: set[int] = set()  # messages read from a repaired (or recovered) fragment

    def message(self, element) -> None:
        index = len(self.messages)
        fields = _attributes(element)
        for child in element:  # lenient: <TO>…</TO> child elements instead of attributes
            name = _tag(child).lower()
            if name in _FIELDS and name not in fields and len(child) == 0:
                fields[name] = (child.text or "").strip()
        group = self.group or {}
        for name in _INHERITED:
            if not fields.get(name) and group.get(name):
                fields[name] = group[name]
        row: dict[str, str | None] = {column: fields.get(name) or None for name, column in _FIELDS.items()}
        row[BODY] = fields.get("body") or fields.get("text") or None  # both names map to BODY
        row[MESSAGE_TYPE] = col.SENT_AS_MMS if _tag(element) == _MMS else col.SENT_AS_SMS
        row[SECTION] = self.section
        row[GROUP_ID] = group.get("id")
        row[CAMPAIGN_ID] = group.get("campaignid")
        row[CAMPAIGN_NAME] = group.get("campaignname")
        row[col.HANDSET] = None
        self.messages.append(row)
        self._walk(element, index, row, [0])

    def _walk(self, element, index: int, row: dict, position: list[int]) -> None:
        for child in element:
            tag = _tag(child)
            if tag in _STEPS:
                self._step(child, tag, index, position)
                self._walk(child, index, row, position)  # recovery mode nests unclosed steps
            elif tag == "MSG_STATUS":
                self._walk(child, index, row, position)
            elif tag in _HANDSET_TAGS:
                row[col.HANDSET] = row[col.HANDSET] or _text(child)
            elif tag.lower() in _FIELDS and _tag(element) in _MESSAGES:
                continue  # a field given as a child element, read in message()
            elif tag in _STEP_FIELDS and _tag(element) in _STEPS:
                continue  # a step's field given as a child element, read in _step()
            else:
                self.unknown[tag] += 1

    def _step(self, element, tag: str, index: int, position: list[int]) -> None:
        fields = _attributes(element)
        for child in element:
            name = _tag(child)
            if name in _STEP_FIELDS and name.lower() not in fields:
                fields[name.lower()] = (child.text or "").strip()
        time = fields.get("time") or ((element.text or "").strip() or None)
        try:
            gw = float(fields["gw"]) if fields.get("gw") else np.nan
        except ValueError:
            gw = np.nan
        self.steps.append((index, position[0], tag, gw, time, fields.get("info") or None))
        position[0] += 1


def _open(source) -> tuple[IO[bytes], str, bool]:
    if hasattr(source, "read"):
        return source, getattr(source, "name", "<report>"), False
    if isinstance(source, (bytes, bytearray)):
        return io.BytesIO(bytes(source)), "<report>", True
    path = os.fspath(source)
    handle = gzip.open(path, "rb") if str(path).endswith(".gz") else open(path, "rb")
    return handle, str(path), True


class _HeadKept:
    """A report's reader that keeps the first bytes it hands on: when libxml2 refuses a document before
    its root (lxml ≥ 6.2 already refuses an entity declared in a DTD there), they say whether a DTD was why."""

    def __init__(self, handle: IO[bytes], keep: int = 64 * 1024):
        self._handle, self._keep, self.head = handle, keep, bytearray()

    def read(self, size: int = -1) -> bytes:
        data = self._handle.read(size)
        if len(self.head) < self._keep:
            self.head += data[: self._keep - len(self.head)]
        return data


def _dtd_refused(name: str) -> PostbackParseError:
    return PostbackParseError(name, None, "DTD declarations are not accepted in a sending report")


def _declares_doctype(data: bytes) -> bool:
    """Whether a report's bytes declare a DTD (for where libxml2 stopped before saying so)."""
    return re.search(rb"<!DOCTYPE", data, re.IGNORECASE) is not None


def _read(source, recover: bool) -> tuple[_Reader, str]:
    handle, name, close = _open(source)
    reader = _Reader()
    kept = _HeadKept(handle)
    # The same hardening as skycore_lab.xmlsafe.safe_parser, in streaming form.
    context = etree.iterparse(kept, events=("start", "end"), **HARDENED_OPTIONS)
    checked = False
    try:
        for event, element in context:
            if not checked:
                info = element.getroottree().docinfo
                if info.internalDTD is not None or info.system_url or info.public_id:
                    raise _dtd_refused(name)
                checked = True
            tag = _tag(element)
            if event == "start":
                if tag in _SECTIONS:
                    reader.section, reader.group = tag, None
                elif tag in _GROUPS:
                    reader.group = _attributes(element)
                continue
            if tag in _MESSAGES:
                reader.message(element)
                _release(element)
            elif tag in _SECTIONS:
                reader.section, reader.group = None, None
                _release(element)
    except etree.XMLSyntaxError as exc:
        if not checked and _declares_doctype(bytes(kept.head)):
            raise _dtd_refused(name) from None
        if not recover:
            raise PostbackParseError(
                name, exc.lineno, f"not well-formed XML: {exc.msg} (pass recover=True to read what can be read)"
            ) from None
        data = _whole(source, handle)
        reader = _read_by_message(data, name)
    finally:
        if close:
            handle.close()
    return reader, name


def _whole(source, handle) -> bytes:
    """The whole report again, for the recovering reader."""
    if isinstance(source, (bytes, bytearray)):
        return bytes(source)
    if not hasattr(source, "read"):
        path = os.fspath(source)
        with gzip.open(path, "rb") if str(path).endswith(".gz") else open(path, "rb") as again:
            return again.read()
    handle.seek(0)  # a caller's file object: it must be seekable to be read twice
    return handle.read()


# --- recovering: message by message -----------------------------------------------------------------
# the markup that structures a report: sections, groups and messages (case as written)
_STRUCTURE = re.compile(
    rb"<(/?)(BATCHES|AUTORESPONDERS|SUBSCRIPTIONS|SENDING_LIST|BATCH|AUTORESPONDER|SUB|CONTENT|TEXT)\b([^<>]*)>",
    re.IGNORECASE,
)
_MESSAGE_CONTAINERS = frozenset({"CONTENT", "TEXT", "MSG_STATUS", "content", "text", "msg_status"})


def _element(chunk: bytes):
    """``chunk`` parsed strictly (hardened), or None."""
    try:
        return etree.fromstring(chunk, parser=etree.XMLParser(**HARDENED_OPTIONS))
    except etree.XMLSyntaxError:
        return None


def _group_attributes(tag: bytes) -> dict[str, str]:
    """A group's start tag's attributes, a bare ``&`` (``carrier="AT&T"``) repaired."""
    text = tag if tag.endswith(b"/>") else tag[:-1] + b"/>"
    element = _element(text)
    if element is None:
        repaired = repair_xml(text, bare_ampersands=True)
        element = _element(repaired[0]) if repaired else None
    return _attributes(element) if element is not None else {}


def _read_by_message(data: bytes, name: str) -> _Reader:
    """Read a non-well-formed report one message at a time.

    Each ``<CONTENT>``/``<TEXT>`` up to its end tag is parsed on its own, after
    the narrow repair of :func:`skycore_lab.xmlsafe.repair_xml` (unclosed
    steps closed at the next tag, stray end tags dropped, bare ``&`` escaped);
    what that cannot fix goes through libxml2's recovery, that message alone.
    Sections and groups come from their tags, so a broken one spoils nothing
    else. What was repaired is said in one :class:`SendingReportWarning`.
    """
    if _declares_doctype(data):
        raise _dtd_refused(name)
    reader = _Reader()
    repairs: Counter[str] = Counter()
    first: list[str] = []
    by_libxml2, lost = 0, 0
    pos = 0
    while True:
        match = _STRUCTURE.search(data, pos)
        if match is None:
            break
        closing, tag, rest = match.group(1), match.group(2).decode("ascii").upper(), match.group(3)
        pos = match.end()
        if tag in _SECTIONS:
            reader.section, reader.group = (None, None) if closing else (tag, None)
            continue
        if tag in _GROUPS:
            if not closing:
                reader.group = _group_attributes(match.group(0))
            continue
        if closing:
            continue  # a stray message end tag: its message was read (or reported) already
        if rest.rstrip().endswith(b"/"):  # a self-closed message: no steps
            element = _element(match.group(0))
            if element is None:
                repaired = repair_xml(match.group(0), bare_ampersands=True)
                element = _element(repaired[0]) if repaired else None
            if element is not None:
                reader.message(element)
            else:
                lost += 1
            continue
        end = re.compile(rb"</" + match.group(2) + rb"\s*>").search(data, pos)
        if end is not None:
            stop = end.end()
        else:  # never closed: up to the next structure tag
            following = _STRUCTURE.search(data, pos)
            stop = following.start() if following else len(data)
        chunk = data[match.start() : stop]
        pos = stop
        element = _element(chunk)
        if element is None:
            repaired = repair_xml(chunk, containers=_MESSAGE_CONTAINERS, stray_end_tags=True, bare_ampersands=True)
            element = _element(repaired[0]) if repaired else None
            if element is not None:
                line = data.count(b"\n", 0, match.start())
                for repair in repaired[1]:
                    repairs[repair.kind] += 1
                    if len(first) < 3:
                        first.append(f"line {line + repair.line}: {repair.kind} <{repair.element}>")
            else:
                recovered = etree.fromstring(chunk, parser=etree.XMLParser(recover=True, **HARDENED_OPTIONS))
                if recovered is not None and _tag(recovered) in _MESSAGES:
                    element, by_libxml2 = recovered, by_libxml2 + 1
                else:
                    lost += 1
                    continue
            reader.recovered.add(len(reader.messages))
        reader.message(element)
    said = ", ".join(f"{count} {kind}" for kind, count in repairs.most_common())
    parts = [f"{len(reader.recovered)} of {len(reader.messages)} message(s) repaired"]
    if said:
        parts.append(f"({said}; first {'; '.join(first)})")
    if by_libxml2:
        parts.append(f"{by_libxml2} of them only by libxml2's recovery: check them")
    if lost:
        parts.append(f"{lost} message(s) could not be read at all")
    warnings.warn(
        f"{name}: not well-formed XML, read in recovery mode message by message: {' '.join(parts)} "
        f"(column {col.RECOVERED})",
        SendingReportWarning,
        stacklevel=4,
    )
    return reader


def _release(element) -> None:
    """Free a processed element and its already-processed siblings (bounded memory)."""
    element.clear(keep_tail=False)
    parent = element.getparent()
    if parent is not None:
        while element.getprevious() is not None:
            del parent[0]


def _step_times(reader: _Reader, name: str) -> tuple[pd.DataFrame, pd.Series]:
    """Earliest time per message and role, and the first ERROR's info, from the step table."""
    steps = pd.DataFrame(reader.steps, columns=[_MSG, _POS, _STEP, _GW, _TIME, _INFO])
    steps[_TIME] = steps[_TIME].astype("str")
    times = pd.to_datetime(steps[_TIME], utc=True, format="ISO8601", errors="coerce").astype(col.DATETIME_DTYPE)
    unreadable = times.isna() & steps[_TIME].notna()
    if unreadable.any():
        warnings.warn(
            f"{name}: {int(unreadable.sum())} step time(s) could not be read (e.g. "
            f"{steps.loc[unreadable, _TIME].iloc[0]!r}); those steps have no time",
            SendingReportWarning,
            stacklevel=4,
        )
    steps[_TIME] = times

    # DDM steps: ACK gw 80 and DLR gw 81; an ERROR/EXPIRED/REJECTED with a DDM
    # gw, or between the DDM's ACK and the content's first INIT/ACK (document
    # order), is the DDM's.
    step, gw = steps[_STEP], steps[_GW]
    ddm_ack = (step == _ACK) & (gw == _DDM_ACK_GW)
    ddm_dlr = (step == _DLR) & (gw == _DDM_DLR_GW)
    content_start = (step == _INIT) | ((step == _ACK) & ~ddm_ack)
    big = np.iinfo("int64").max
    first_ddm = steps[_POS].where(ddm_ack, big).groupby(steps[_MSG]).transform("min")
    first_content = steps[_POS].where(content_start, big).groupby(steps[_MSG]).transform("min")
    ddm_failure = step.isin(_FAILURE_STEPS) & (
        gw.isin((_DDM_ACK_GW, _DDM_DLR_GW)) | ((steps[_POS] > first_ddm) & (steps[_POS] < first_content))
    )
    roles = {
        _INQUE: INQUE_AT, _INIT: INIT_AT, _ACK: ACK_AT, _ERROR: ERROR_AT, _DLR: DLR_AT,
        _EXPIRED: EXPIRED_AT, _REJECTED: REJECTED_AT, _OPENED: OPENED_AT,
    }
    steps[_ROLE] = np.select([ddm_ack, ddm_dlr, ddm_failure], [DDM_ACK_AT, DDM_DLR_AT, DDM_FAILED_AT],
                             default=step.map(roles).to_numpy(dtype=object))
    table = steps.groupby([_MSG, _ROLE])[_TIME].min().unstack()
    table = table.reindex(index=pd.RangeIndex(len(reader.messages)), columns=list(STEP_COLUMNS))
    errors = steps[(steps[_ROLE] == ERROR_AT) & steps[_INFO].notna()].sort_values([_MSG, _POS])
    info = errors.drop_duplicates(_MSG).set_index(_MSG)[_INFO].reindex(table.index)
    return table.astype(col.DATETIME_DTYPE), info


def read_sending_report(
    path: str | os.PathLike | bytes | IO[bytes],
    *,
    recover: bool = False,
    negative_latency: NegativeLatency = "warn",
) -> pd.DataFrame:
    """Read a getSendingStatistics XML report: one row per message, like :func:`skycore_lab.deliveries`.

    Parameters
    ----------
    path : str, path-like, bytes or binary file
        The downloaded report (``.gz`` files are decompressed), or its bytes.
    recover : bool
        Read a document that is not well-formed XML (the documentation's own
        examples are not: unclosed steps, ``</BATCH>`` after a self-closed
        ``<BATCH/>``, ``carrier="AT&T"``) message by message: each message is
        repaired on its own (:func:`skycore_lab.xmlsafe.repair_xml`: an
        unclosed step closed at the next tag, a stray end tag dropped, a bare
        ``&`` escaped), else read by libxml2's recovery mode alone, so one
        broken message never costs another its steps. Repaired messages have
        ``recovered=True`` and one :class:`SendingReportWarning` says what was
        repaired and where. By default such a document raises.
    negative_latency : {"warn", "clip", "nan"}
        As for :func:`skycore_lab.deliveries` (the documentation shows a DLR
        stamped before its ACK).

    Returns
    -------
    pandas.DataFrame
        :data:`REPORT_COLUMNS`, one row per ``<CONTENT>`` (MMS) or ``<TEXT>``
        (SMS), in document order. First the delivery columns
        (``columns.DELIVERY_COLUMNS``, same dtypes as :func:`deliveries`):

        ===============  ==================================================================
        tracking_id      the report's ``id`` (its sending id — *not* the API's base64
                         tracking id)
        to, sender       ``to`` and ``from``, a leading ``+`` removed
        mms_id           ``contentid`` (MMS)
        carrier          ``carrier`` as the report names it (``All Carriers`` included)
        country          from the number
        spid             always missing (the report has none)
        sent_as          ``MMS`` for ``delivery="binary"``, ``SMS`` for ``xhtml`` (the
                         SMS-link path) and for ``<TEXT>``
        requested_at     always missing (a client-side time)
        first_event_at   earliest step time (normally INQUE; the DDM's steps count)
        sent_at          the content's ACK (gw 9 binary, 10 xhtml/SMS)
        delivered_at     DLR (gw 20)
        failed_at        earliest ERROR, EXPIRED (gw 30) or REJECTED (gw 35)
        final_code       the deciding step: ``DLR``, ``OPENED``, ``ERROR``, ``EXPIRED``,
                         ``REJECTED``; missing when pending
        outcome          ``delivered`` on DLR (or OPENED: an opened link was received,
                         though then ``delivered_at`` is unknown); else the earliest
                         failure step (ERROR → ``failed``); else ``pending``
        latency_s        as :data:`skycore_lab.frames.latency.LATENCIES` defines them, from the
                         times above (no ``requested_at``: total_latency_s runs from
                         first_event_at)
        handset          ``<MM7_HANDSETID>``, or ``<XHTML_HANDSETID>`` (a browser user
                         agent), whitespace collapsed; ``Default`` kept as written
        ddm              ``delivered`` (DLR gw 81), ``failed`` (a DDM failure step),
                         ``sent`` (ACK gw 80 only) or ``none``
        ddm_latency_s    from the DDM's ACK (gw 80) to its DLR (gw 81)
        ===============  ==================================================================

        Then the report's own columns: ``message_type`` (``MMS``/``SMS``:
        element type), ``delivery`` (``binary``/``xhtml``), ``content_name``,
        ``body`` (SMS text), ``section`` (``BATCHES``, ``AUTORESPONDERS``,
        ``SUBSCRIPTIONS``, ``SENDING_LIST``), ``group_id``, ``campaign_id``,
        ``campaign_name`` (of the enclosing BATCH/AUTORESPONDER), the earliest
        time of each step (:data:`STEP_COLUMNS`, UTC), ``error_info`` (the
        first ERROR's ``info``) and ``recovered`` (bool: the message was read
        from a repaired fragment, ``recover=True`` only).

    Notes
    -----
    Where the documentation is silent we decided:

    * Step elements are read wherever they sit inside the message (in
      ``<MSG_STATUS>`` or directly, as ``<TEXT>`` has them); attributes may
      also come as child elements (``<TIME>…</TIME>``, ``<TO>…</TO>``), names
      in any case. A repeated step counts at its earliest time. Times without
      an offset are UTC, as the report's are.
    * DDM steps are ACK gw 80 and DLR gw 81; an ERROR, EXPIRED or REJECTED
      with gw 80/81, or that comes after the DDM's ACK and before the
      content's first INIT/ACK (in document order), is the DDM's failure
      (``ddm_failed_at``), not the content's.
    * Step elements are named after the step (``<ACK gw="9" time="…"/>``),
      with attributes ``time``, ``gw``, ``net`` and, on ``ERROR``, ``info``
      (the summary names the steps and gateways but not the markup; these
      are our choice, read leniently as described above).
    * A message lacking ``to``, ``carrier``, ``from``, ``contentid``,
      ``contentname`` or ``body`` takes it from its BATCH, AUTORESPONDER or
      SUB, including a group element written self-closed before its messages
      (as the documentation's examples show it).
    * Unknown elements are counted and reported in one
      :class:`SendingReportWarning`; nothing is dropped silently.

    Parsing streams with lxml's ``iterparse`` under the hardening of
    :mod:`skycore_lab.xmlsafe` (no entities, no DTD, no network), so memory
    stays bounded on large reports.

    Raises
    ------
    PostbackParseError
        The document is not well-formed XML (unless ``recover=True``) or
        declares a DTD; the message names the file and line.
    """
    check_negative_latency(negative_latency)
    reader, name = _read(path, recover)
    if reader.unknown:
        shown = ", ".join(f"{tag} ×{count}" for tag, count in reader.unknown.most_common(5))
        warnings.warn(f"{name}: elements not understood and ignored: {shown}", SendingReportWarning, stacklevel=2)

    frame = pd.DataFrame(reader.messages, columns=list(_MESSAGE_COLUMNS)).astype("str")
    for name_ in (col.TO, col.SENDER):  # reports show "+447624805892" despite the rules
        frame[name_] = frame[name_].str.removeprefix("+")
    table, error_info = _step_times(reader, name)
    frame = pd.concat([frame, table], axis=1)
    frame[col.ERROR_INFO] = error_info.astype("str")
    frame[col.RECOVERED] = np.isin(np.arange(len(frame)), sorted(reader.recovered))

    delivery = as_text(frame[DELIVERY_TYPE]).str.lower()
    frame[DELIVERY_TYPE] = delivery
    frame[col.SENT_AS] = delivery.map(_SENT_AS).where(frame[MESSAGE_TYPE] == col.SENT_AS_MMS, col.SENT_AS_SMS)
    frame[col.SPID] = pd.Series(pd.NA, index=frame.index, dtype="str")
    frame[col.COUNTRY] = pd.Series(pd.NA, index=frame.index, dtype="str")  # from the number, below
    frame[col.REQUESTED_AT] = pd.Series(pd.NaT, index=frame.index, dtype=col.DATETIME_DTYPE)
    frame[col.FIRST_EVENT_AT] = table.min(axis=1)
    frame[col.SENT_AT] = table[ACK_AT]
    frame[col.DELIVERED_AT] = table[DLR_AT]
    frame[col.FAILED_AT] = table[[ERROR_AT, EXPIRED_AT, REJECTED_AT]].min(axis=1)

    # The deciding step: delivery (DLR, else OPENED) wins; else the earliest
    # failure step (ties: ERROR, EXPIRED, REJECTED in that order).
    failure_steps = table[[ERROR_AT, EXPIRED_AT, REJECTED_AT]]
    earliest_failure = failure_steps.fillna(_FAR_FUTURE).idxmin(axis=1).map(_STEP_OF_FAILURE_COLUMN)
    final = np.select(
        [table[DLR_AT].notna(), table[OPENED_AT].notna(), failure_steps.notna().any(axis=1)],
        [_DLR, _OPENED, earliest_failure.to_numpy(dtype=object)],
        default=None,
    )
    frame[col.FINAL_CODE] = pd.Series(final, index=frame.index, dtype="str")
    frame[col.OUTCOME] = frame[col.FINAL_CODE].map(_OUTCOME_OF_STEP).fillna(col.OUTCOME_PENDING)
    frame[col.DDM] = np.select(
        [table[DDM_DLR_AT].notna(), table[DDM_FAILED_AT].notna(), table[DDM_ACK_AT].notna()],
        [col.DDM_DELIVERED, col.DDM_FAILED, col.DDM_SENT],
        default=col.DDM_NONE,
    )
    for name in (col.LATENCY_S, col.TOTAL_LATENCY_S):
        frame[name] = latency_seconds(frame, name)
    ddm_times = pd.DataFrame({col.DDM_SENT_AT: table[DDM_ACK_AT], col.DDM_DELIVERED_AT: table[DDM_DLR_AT]})
    frame[col.DDM_LATENCY_S] = latency_seconds(ddm_times, col.DDM_LATENCY_S)

    fill_place(frame)
    frame = finish_delivery_dtypes(frame[list(REPORT_COLUMNS)].copy())
    for name_ in (MESSAGE_TYPE, DELIVERY_TYPE, SECTION):
        frame[name_] = frame[name_].astype("category")
    handle_negative_latencies(frame, negative_latency, what="messages")
    if isinstance(path, (str, os.PathLike)):  # a file: record it for the provenance of reports
        attach_sources(frame, [source_file(path, "sending_report", records=len(frame))])
    return frame
