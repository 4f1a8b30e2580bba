"""Postback codes and status texts, shared by the sandbox (which writes them)
and the frames (which read them), so both sides agree by construction.

The API summary documents the codes and the E102 status family; the exact
STATUS texts of DDM and SMS notifications are not documented, so we chose
texts in the same ``Message Sent/Delivered`` style and match status *suffixes*
when reading (``…/Expired``), which also copes with small wording changes.
"""

from __future__ import annotations

from . import columns as col

ORIGIN_MMS = "MMS_MT"
ORIGIN_SMS = "SMS_MT"
ORIGIN_SUB = "SUB"

# MMS
N101 = "N101"  # sent (processing began)
N102 = "N102"  # delivery report: delivered
E101 = "E101"  # could not send at all
E102 = "E102"  # delivery failed / expired / rejected / not supported
# DDM
N501 = "N501"  # DDM sending
N502 = "N502"  # DDM delivery status changed (carries the handset)
E501 = "E501"  # DDM could not be sent
E502 = "E502"  # DDM delivery failed
# SMS, also the SMS/xHTML fallback of an MMS
N201 = "N201"
N202 = "N202"
E201 = "E201"
E202 = "E202"

MMS_CODES = frozenset({N101, N102, E101, E102})
DDM_CODES = frozenset({N501, N502, E501, E502})
SMS_CODES = frozenset({N201, N202, E201, E202})
SENT_CODES = frozenset({N101, N201})
DELIVERED_CODES = frozenset({N102, N202})
FAILED_CODES = frozenset({E101, E102, E201, E202})

STATUS_TEXT = {
    N101: "Message Sent",
    N102: "Message Sent/Delivered",
    E101: "Message Failed",
    N501: "DDM Sent",
    N502: "DDM Sent/Delivered",
    E501: "DDM Failed",
    E502: "DDM Sent/Failed",
    N201: "SMS Sent",
    N202: "SMS Sent/Delivered",
    E201: "SMS Failed",
}

#: E102/E202 STATUS texts by outcome.
FAILED_STATUS_TEXT = {
    col.OUTCOME_FAILED: "Message Sent/Failed",
    col.OUTCOME_EXPIRED: "Message Sent/Expired",
    col.OUTCOME_REJECTED: "Message Sent/Rejected",
    col.OUTCOME_NOT_SUPPORTED: "Message Sent/NotSupported",
}

_SUFFIX_OUTCOME = {
    "failed": col.OUTCOME_FAILED,
    "expired": col.OUTCOME_EXPIRED,
    "rejected": col.OUTCOME_REJECTED,
    "notsupported": col.OUTCOME_NOT_SUPPORTED,
    "not supported": col.OUTCOME_NOT_SUPPORTED,
    "not_supported": col.OUTCOME_NOT_SUPPORTED,
}


def outcome_of(code: str | None, status: str | None) -> str | None:
    """Final outcome a notification announces, or None if it is not final.

    N102/N202 → delivered; E101/E201 → failed; E102/E202 → by the STATUS
    suffix (``Message Sent/Expired`` → expired), ``failed`` when unrecognised.
    """
    if code in DELIVERED_CODES:
        return col.OUTCOME_DELIVERED
    if code in (E101, E201):
        return col.OUTCOME_FAILED
    if code in (E102, E202):
        suffix = (status or "").rsplit("/", 1)[-1].strip().lower()
        return _SUFFIX_OUTCOME.get(suffix, col.OUTCOME_FAILED)
    return None
