"""The sandbox's ``getSendingStatistics``: the period's checks and the Appendix C report, from the ground truth.

What the sandbox serves
-----------------------
The call (``ACTION`` ``getSendingStatus`` as the page's examples write it,
or ``getSendingStatistics``, any case) takes ``START_DATE`` and ``END_DATE``
in UTC, ``YYYY-MM-DD hh:mm:ss``. The answer is ``<RESPONSE><STATUS>Success
</STATUS><URL>http://127.0.0.1:<port>/reports/<token>.xml</URL></RESPONSE>``:
a link to the report on the sandbox's own HTTP server (an unguessable token,
no key needed; the last :data:`KEPT_REPORTS` reports are kept).

Checks, in this order (after the action, the key and the account's rate
limits, as for any call): E506 a date is missing; E507 ``START_DATE`` and
E508 ``END_DATE`` not in the format, or E508 an end not after the start
(the documentation gives one text to both codes; the split is ours);
E509 the period is longer than ``sending_statistics.max_period_days``
(default 7); E510 a lookup less than ``sending_statistics.min_interval_s``
(default 1 real second) after the previous one, or more than
``sending_statistics.per_day`` (default 20) in the sandbox's lifetime (its
"day", as for the account's limits). Only a lookup that passed the date
checks counts.

The report
----------
``<RESPONSE><SENDING_LIST>`` with one ``<CONTENT>`` per accepted send whose
request arrived in ``[START_DATE, END_DATE)`` — sendSavedMMS sends are not
campaign batches, autoresponders or subscriptions — in request order::

    <CONTENT id="597879" to="17743199144" carrier="Verizon Wireless" delivery="binary"
             contentid="1001" contentname="Saved MMS 1001" from="60856">
      <MSG_STATUS>
        <INQUE time="…Z"/>                                      the request's arrival
        <ACK gw="80" …/> <DLR gw="81" …/>                       the DDM (N501, N502)
        <INIT gw="0" …/> <ACK gw="9" …/> <DLR gw="20" net="1000" …/>
      </MSG_STATUS>
      <MM7_HANDSETID>Apple iPhone 15</MM7_HANDSETID>
    </CONTENT>

* ``id`` is the platform's sending id: the number inside the tracking id
  (base64 of ``MMS_<n>``, as in every documented example).
* Steps come from the truth row of the send (:meth:`Sandbox.truth`) and
  carry the same instants as its postbacks (whole seconds; INQUE the
  request's arrival, with microseconds). The DDM's steps come first, then
  the content's (the DDM and the content are two messages; Appendix C lists
  their statuses apart). A DDM that could not be sent (E501) is ``<ERROR
  gw="80">``; a DDM whose report says it failed (E502) is ``<REJECTED
  gw="35">`` after its ACK. The content: INIT and ACK (gw 9 ``binary``, 10
  ``xhtml`` for the SMS-link fallback) at the N101 time, or INIT and ERROR
  when it could not be sent (E101; no ``delivery`` then); then DLR (gw 20),
  EXPIRED (gw 30), REJECTED (gw 35; also for the postbacks'
  ``Sent/NotSupported``: Appendix C has no such step) or ERROR (``info="delivery
  failure"``, a failed delivery). A carrier without delivery receipts gives
  the platform no DLR either: the message stays at ACK (pending), as its
  postbacks do.
* The platform knows only what has happened: a step is in the report once
  its time has come on the sandbox's scaled clock (an event ``d`` simulated
  seconds after the request happens ``d / time_scale`` real seconds after
  it), so a report fetched while messages are under way shows them pending.
* ``MM7_HANDSETID`` holds the handset the platform learnt (N102 of a binary
  delivery, or the DDM's N502), once learnt; no ``XHTML_HANDSETID``: the
  sandbox does not simulate opening the SMS link.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import datetime, timedelta, timezone

from lxml import etree

from .. import columns as col

__all__ = ["STATISTICS_ACTIONS", "KEPT_REPORTS", "REPORTS_PATH", "parse_period", "sending_id", "report_xml",
           "content_name"]

#: The action names the sandbox takes for the call (lower case).
STATISTICS_ACTIONS = frozenset({"getsendingstatus", "getsendingstatistics"})
#: Reports kept for download; older links answer 404.
KEPT_REPORTS = 16
#: Where reports are served on the sandbox's server.
REPORTS_PATH = "/reports/"
_DATE = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")
_DDM_ACK_GW, _DDM_DLR_GW = "80", "81"
_SEND_ERROR_INFO = "Error fetching dynamic content"
_DDM_SEND_ERROR_INFO = "DDM could not be sent"
_DELIVERY_FAILURE_INFO = "delivery failure"


def parse_period(start: str, end: str) -> tuple[datetime | None, datetime | None, str | None]:
    """``(start, end, None)`` as UTC datetimes, or ``(…, error code)`` (E506, E507, E508)."""
    start, end = (start or "").strip(), (end or "").strip()
    if not start or not end:
        return None, None, "E506"
    parsed = []
    for text, code in ((start, "E507"), (end, "E508")):
        if not _DATE.fullmatch(text):
            return None, None, code
        try:
            parsed.append(datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc))
        except ValueError:  # 2024-02-30 12:00:00
            return None, None, code
    if parsed[1] <= parsed[0]:
        return None, None, "E508"
    return parsed[0], parsed[1], None


def sending_id(tracking_id: str) -> str:
    """The report's id of a send: ``n`` of a tracking id that is base64 of ``MMS_<n>``, else the tracking id."""
    try:
        text = base64.b64decode(tracking_id, validate=True).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return tracking_id
    return text[len("MMS_"):] if text.startswith("MMS_") and text[len("MMS_"):].isdigit() else tracking_id


def content_name(mms_id: str) -> str:
    """The sandbox's name of a saved MMS (``contentname``)."""
    return f"Saved MMS {mms_id}"


def _stamp(at: datetime) -> str:
    return at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _content(row: dict, ddm_failed_at: datetime | None, happened):
    sent_as = row[col.SENT_AS]
    attributes = {"id": sending_id(row[col.TRACKING_ID]), "to": row[col.TO], "carrier": row[col.CARRIER]}
    if sent_as is not None:
        attributes["delivery"] = "binary" if sent_as == col.SENT_AS_MMS else "xhtml"
    attributes.update({"contentid": str(row[col.MMS_ID]), "contentname": content_name(str(row[col.MMS_ID])),
                       "from": str(row[col.SENDER])})
    content = etree.Element("CONTENT", attributes)
    status = etree.SubElement(content, "MSG_STATUS")

    def step(tag: str, at: datetime | None, **extra: str) -> None:
        if at is not None and happened(at):
            etree.SubElement(status, tag, {**extra, "time": _stamp(at)})

    def net(tag: str, gw: str, at: datetime | None, **extra: str) -> None:
        step(tag, at, gw=gw, net="0", **extra)

    step("INQUE", row[col.REQUESTED_AT])
    ddm = row[col.DDM]
    if ddm != col.DDM_NONE:
        ddm_sent = row[col.DDM_SENT_AT]
        if ddm_sent is None:  # E501: the DDM could not be sent at all
            net("ERROR", _DDM_ACK_GW, ddm_failed_at, info=_DDM_SEND_ERROR_INFO)
        else:
            net("ACK", _DDM_ACK_GW, ddm_sent)
            if ddm == col.DDM_DELIVERED:
                net("DLR", _DDM_DLR_GW, row[col.DDM_DELIVERED_AT])
            elif ddm == col.DDM_FAILED:  # E502: its delivery report said failed
                net("REJECTED", "35", ddm_failed_at)
    outcome = row[col.OUTCOME]
    if sent_as is None:  # E101: the content could not be sent
        net("INIT", "0", row[col.FAILED_AT])
        net("ERROR", "0", row[col.FAILED_AT], info=_SEND_ERROR_INFO)
    else:
        net("INIT", "0", row[col.SENT_AT])
        net("ACK", "9" if sent_as == col.SENT_AS_MMS else "10", row[col.SENT_AT])
        _final_step(outcome, row, step, net)
    handset = row[col.HANDSET]
    learnt = [at for at, known in ((row[col.DELIVERED_AT], outcome == col.OUTCOME_DELIVERED and sent_as == col.SENT_AS_MMS),
                                   (row[col.DDM_DELIVERED_AT], ddm == col.DDM_DELIVERED)) if known and at is not None]
    if handset and any(happened(at) for at in learnt):
        etree.SubElement(content, "MM7_HANDSETID").text = handset
    return content


def _final_step(outcome: str, row: dict, step, net) -> None:
    """The delivery report's step of a sent content (none while pending)."""
    if outcome == col.OUTCOME_DELIVERED:
        step("DLR", row[col.DELIVERED_AT], gw="20", net="1000")
    elif outcome == col.OUTCOME_EXPIRED:
        net("EXPIRED", "30", row[col.FAILED_AT])
    elif outcome in (col.OUTCOME_REJECTED, col.OUTCOME_NOT_SUPPORTED):
        net("REJECTED", "35", row[col.FAILED_AT])
    elif outcome == col.OUTCOME_FAILED:
        net("ERROR", "0", row[col.FAILED_AT], info=_DELIVERY_FAILURE_INFO)


def report_xml(rows: list[dict], start: datetime, end: datetime, *, now: datetime, time_scale: float,
               ddm_failed_at: dict[str, datetime]) -> bytes:
    """The Appendix C report of the truth ``rows`` whose request arrived in ``[start, end)``, as known at ``now``.

    ``rows`` are truth rows (keys :data:`skycore_lab.columns.TRUTH_COLUMNS`,
    times as UTC datetimes or None); ``ddm_failed_at`` maps a tracking id to
    the time its DDM failed (E501/E502), which the truth does not hold.
    """

    root = etree.Element("RESPONSE")
    listing = etree.SubElement(root, "SENDING_LIST")
    for row in sorted(rows, key=lambda r: r[col.REQUESTED_AT]):
        requested = row[col.REQUESTED_AT]
        if not start <= requested < end:
            continue

        def happened(at: datetime, _t0: datetime = requested) -> bool:
            # the event's real time: its arrival plus the simulated delay, scaled
            return _t0 + timedelta(seconds=(at - _t0).total_seconds() / time_scale) <= now

        listing.append(_content(row, ddm_failed_at.get(row[col.TRACKING_ID]), happened))
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + etree.tostring(root, encoding="UTF-8", pretty_print=True)
