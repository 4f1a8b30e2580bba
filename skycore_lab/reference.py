"""Vendor facts from the Skycore API documentation: codes, texts, carriers, countries.

One module for what the platform's documentation says, so every other part of
skycore-lab (the client, the sandbox, the parser, the frames) reads the same
facts from one place:

* **Postback codes** (Appendix D) and what each announces: the MMS codes
  N101/N102/E101/E102, the DDM codes N501/N502/E501/E502, the SMS codes
  N201/N202/E201/E202; :func:`outcome_of` and :func:`status_outcome` turn a
  notification into a final outcome.
* **API error codes** (Appendix B): :func:`api_error_codes`,
  :func:`api_error_meaning`.
* **Operator ids** (the MM7 operator list, ``X-Skycore-Carrier-Id``):
  :func:`mm7_operator_ids`, the documented ``OPERATORID`` values.
* **Carrier ids** (Appendix E, then the MM7 operator ids): :func:`normalize_spid`
  (the one rule for SPIDs not written with 7 digits), :func:`resolve_spid`,
  :func:`spid_lookup`, :func:`spid_sources`, :data:`AMBIGUOUS_SPIDS`, and the
  country of a phone number, :func:`country_of_number`.
* **Defaults and limits**: :data:`DEFAULT_DDM_TIMEOUT_MIN`,
  :data:`MAX_DDM_TIMEOUT_MIN`, :data:`MAX_RECIPIENTS`.

Tables ship as package data (``_data/*.csv``):

* ``spid_carriers.csv`` (Appendix E): carrier id (SPID) → country, carrier.
* ``mm7_operator_ids.csv`` (the MM7 operator list,
  ``MM7/OPERATOR-IDS/skycoreOperatorIds.md``): operator id → operator, each
  row with its ``source`` (page, commit, date). It is also the second carrier
  table: ids Appendix E lacks (``0001140``, the SPID of the xHTML postback
  examples, among them) resolve through it. The list names US operators
  under ``0001…`` ids (the +1 zone), so their country is read as United
  States. Appendix E wins where both list an id.
* ``api_error_codes.csv`` (Appendix B): API response error codes, with the
  revision each text comes from (E101–E103 from the last revision listing them).
* ``postback_codes.csv`` (Appendix D): postback notification codes.

STATUS texts
------------
The delivery-reports page gives the DDM codes the MMS texts: N101/N501
"Message Sent", E101/E501 "Message Failed", N102/N502 "Message
Sent/Delivered", E102/E502 "Message Sent/Failed", "…/Expired",
"…/Rejected" or "…/NotSupported". The SMS codes (and the SMS/xHTML fallback
of an MMS) use the same words: N201 "Message Sent", E201 "Message Failed",
N202 "Message Sent/Delivered", E202 "Message Sent/Failed". Readers match
status *suffixes* (``…/Expired``), which also copes with small wording
changes.

SPIDs and countries
-------------------
SPIDs are 7-digit strings whose first four digits are the country calling
code, zero-padded (``0044…`` United Kingdom), or a North American numbering
plan prefix (``1876…`` Jamaica). That gives the calling-code table used to
find a number's country without a second data source.

Three SPIDs name two countries each (``0001100`` Canada/United States,
``0007000`` Russia/Kazakstan, ``0262000`` Reunion/Mayotte Islands), and the
calling codes +1, +7, +44, +234 and +262 are shared. We resolve by the
recipient's number: Canadian area codes → Canada, else United States; +76/+77
→ Kazakstan, else Russia; +262 269/639 → Mayotte Islands, else Reunion; the
Jersey mobile ranges of +44 → Jersey, else United Kingdom. When no number is
known, :func:`resolve_spid` returns the first listed country and
``ambiguous=True`` so callers can say so.
"""

from __future__ import annotations

import csv
import functools
import re
from dataclasses import dataclass
from importlib import resources

from . import columns as col

__all__ = [
    # postback codes
    "ORIGIN_MMS",
    "ORIGIN_SMS",
    "ORIGIN_SUB",
    "N101",
    "N102",
    "E101",
    "E102",
    "N501",
    "N502",
    "E501",
    "E502",
    "N201",
    "N202",
    "E201",
    "E202",
    "MMS_CODES",
    "DDM_CODES",
    "SMS_CODES",
    "SEND_CODES",
    "SENT_CODES",
    "DELIVERED_CODES",
    "FAILED_CODES",
    "STATUS_TEXT",
    "FAILED_STATUS_TEXT",
    "LINK_SENT",
    "LEGACY_GATEWAY_STATUS",
    "outcome_of",
    "is_link_sent",
    "status_outcome",
    # defaults
    "API_ACTIONS",
    "DEFAULT_DDM_TIMEOUT_MIN",
    "MAX_DDM_TIMEOUT_MIN",
    "MAX_RECIPIENTS",
    # carriers and countries
    "normalize_spid",
    "spid_table",
    "spid_lookup",
    "spid_sources",
    "resolve_spid",
    "country_of_number",
    "calling_code_of_number",
    "api_error_codes",
    "api_error_meaning",
    "postback_code_meanings",
    "mm7_operator_ids",
    "SpidInfo",
    "AMBIGUOUS_SPIDS",
    "INTERNATIONAL_NUMBER",
]

# --- postback codes (Appendix D) -----------------------------------------------------
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
#: Codes that belong to a send (MMS, its SMS/xHTML fallback, its DDM). Others a
#: shared postback URL receives (MO, subscriptions, encoding) are not sends.
SEND_CODES = MMS_CODES | SMS_CODES | DDM_CODES
SENT_CODES = frozenset({N101, N201})
DELIVERED_CODES = frozenset({N102, N202})
FAILED_CODES = frozenset({E101, E102, E201, E202})

#: STATUS text of each code whose text does not depend on the outcome, as the
#: delivery-reports page documents them (DDM and SMS codes share the MMS texts).
STATUS_TEXT = {
    N101: "Message Sent",
    N102: "Message Sent/Delivered",
    E101: "Message Failed",
    N501: "Message Sent",
    N502: "Message Sent/Delivered",
    E501: "Message Failed",
    E502: "Message Sent/Failed",
    N201: "Message Sent",
    N202: "Message Sent/Delivered",
    E201: "Message Failed",
}

#: E102/E202 STATUS texts by outcome.
FAILED_STATUS_TEXT = {
    col.OUTCOME_FAILED: "Message Sent/Failed",
    col.OUTCOME_EXPIRED: "Message Sent/Expired",
    col.OUTCOME_REJECTED: "Message Sent/Rejected",
    col.OUTCOME_NOT_SUPPORTED: "Message Sent/NotSupported",
}

#: STATUS of the legacy xHTML N102 sent when the SMS carrying the link went
#: out (2012 ``<STATUS celly="10"/>``): the link was sent, nothing was delivered.
LINK_SENT = "Link Sent"
#: The 2012 postbacks' ``<STATUS celly=…/>`` gateway numbers, read with
#: Appendix C's step numbers (ACK 9 binary / 10 the xHTML link, OPENED 11,
#: DLR 20, EXPIRED 30, REJECTED 35), as STATUS texts: used when the element
#: has no ``text`` attribute.
LEGACY_GATEWAY_STATUS = {
    "9": "Message Sent",
    "10": LINK_SENT,
    "11": "Link Opened",
    "20": "Message Sent/Delivered",
    "30": "Message Sent/Expired",
    "35": "Message Sent/Rejected",
}

# the last "/" part of a STATUS, lower case → the failure it announces
_FAILURE_SUFFIXES = {
    "failed": col.OUTCOME_FAILED,
    "expired": col.OUTCOME_EXPIRED,
    "rejected": col.OUTCOME_REJECTED,
    "notsupported": col.OUTCOME_NOT_SUPPORTED,
    "not supported": col.OUTCOME_NOT_SUPPORTED,
    "not_supported": col.OUTCOME_NOT_SUPPORTED,
}


def status_outcome(status: str | None) -> str | None:
    """The failure a STATUS text announces, by its last ``/`` part, or None.

    ``"Message Sent/Expired"`` → ``"expired"``, ``"DDM Sent/Failed"`` →
    ``"failed"``; ``"Message Sent/Delivered"`` and unknown texts → None.
    Case and surrounding blanks are ignored.
    """
    if not status:
        return None
    return _FAILURE_SUFFIXES.get(str(status).rsplit("/", 1)[-1].strip().lower())


def is_link_sent(code: str | None, status: str | None) -> bool:
    """Whether a notification is the legacy xHTML N102 that says the SMS carrying
    the link went out (STATUS :data:`LINK_SENT`): a send, not a delivery."""
    return code == N102 and isinstance(status, str) and status.strip().lower() == LINK_SENT.lower()


def outcome_of(code: str | None, status: str | None) -> str | None:
    """Final outcome a notification announces, or None if it is not final.

    N102/N202 → delivered (but the legacy xHTML link-sent N102,
    :func:`is_link_sent`, is not final); E101/E201 → failed; E102/E202 → by
    the STATUS suffix (:func:`status_outcome`: ``Message Sent/Expired`` →
    expired), ``failed`` when unrecognised.
    """
    if is_link_sent(code, status):
        return None
    if code in DELIVERED_CODES:
        return col.OUTCOME_DELIVERED
    if code in (E101, E201):
        return col.OUTCOME_FAILED
    if code in (E102, E202):
        return status_outcome(status) or col.OUTCOME_FAILED
    return None


# --- API actions --------------------------------------------------------------------------
#: The actions the API documents (one page per method in the table of
#: contents, ``1.3/README.md`` at ee0b69d, 2015-06-23), lower case: the
#: ``action`` value is case-insensitive.
API_ACTIONS = frozenset(a.lower() for a in """
    addPassData createEmailCampaign createMMSCampaign createUser deletePassData generatePass generatePassById
    getEmailCampaigns getEmailIds getMmsCampaigns getMmsIds getPassEmailTemplate getPassTemplate getPassTemplateIds
    getSendingStatistics loginUser removeMMSInboxMessage saveMMS sendPassInEmail sendPassInMMS sendSMS
    sendSavedEmail sendSavedMMS sendSavedMMSCampaign subscribe unsubscribe subscribeEmail unsubscribeEmail
    updatePass""".split())


# --- documented defaults -----------------------------------------------------------------
#: DDMTIMEOUT the platform applies when a DDM is sent without one, minutes.
DEFAULT_DDM_TIMEOUT_MIN = 5
#: The longest DDMTIMEOUT skycore-lab sends or the sandbox accepts, minutes: a
#: week. The documentation gives no maximum (the RELAX NG schema says
#: ``xsd:nonNegativeInteger``); a week is far beyond any useful wait (the
#: content waits that long for the handset's report) and keeps every message's
#: life, and so the sandbox's ``wait_idle``, bounded. The sandbox answers E100
#: beyond it.
MAX_DDM_TIMEOUT_MIN = 7 * 24 * 60
#: Numbers one sendSavedMMS call may carry (E623 beyond).
MAX_RECIPIENTS = 100


# --- numbers, carriers and countries -------------------------------------------------------
#: International format as the API wants it: digits only, no leading 0 or +,
#: 7 to 15 digits (E.164 allows at most 15).
INTERNATIONAL_NUMBER = re.compile(r"[1-9][0-9]{6,14}")

# Area codes of Canada within the +1 numbering plan (CNAC list, 2024).
_CANADIAN_AREA_CODES = frozenset(
    """204 226 236 249 250 257 263 289 306 343 354 365 367 368 382 387 403 416 418
    428 431 437 438 450 460 468 474 506 514 519 548 579 581 584 587 600 604 613 622
    633 639 644 647 655 672 677 683 688 705 709 742 753 778 780 782 807 819 825 867
    873 879 902 905 942""".split()
)


def _data_path(name: str):
    return resources.files("skycore_lab").joinpath("_data").joinpath(name)


def _read_csv(name: str) -> list[dict[str, str]]:
    with _data_path(name).open("r", encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


@dataclass(frozen=True)
class SpidInfo:
    """One resolved carrier id."""

    spid: str
    country: str | None
    carrier: str | None
    ambiguous: bool = False


@functools.cache
def _spid_rows() -> tuple[tuple[str, str, str], ...]:
    return tuple((r["spid"].strip(), r["country"].strip(), r["carrier"].strip()) for r in _read_csv("spid_carriers.csv"))


_APPENDIX_E = "1.3/CONTENTS/APPENDIX/APPENDIX_E.md (Appendix E)"


@functools.cache
def _operator_rows() -> tuple[tuple[str, str, str, str], ...]:
    """The second table (``mm7_operator_ids.csv``): ids Appendix E lacks, with their source.

    Every id of the list is a US operator (``0001…``, and ``1001000`` "USA
    Emulator"), so the country is United States.
    """
    appendix = {spid for spid, _, _ in _spid_rows()}
    return tuple(
        (r["operator_id"].strip(), "United States", r["operator"].strip(), r["source"].strip())
        for r in _read_csv("mm7_operator_ids.csv")
        if r["operator_id"].strip() not in appendix  # Appendix E wins
    )


def spid_table():
    """Appendix E as a DataFrame with string columns ``spid, country, carrier``
    (the second table's ids: :func:`spid_sources`, :func:`resolve_spid`)."""
    import pandas as pd

    rows = _spid_rows()
    return pd.DataFrame(rows, columns=["spid", "country", "carrier"], dtype=object)


@functools.cache
def spid_sources() -> dict[str, str]:
    """Every known SPID → where the documentation lists it: Appendix E, or the
    page and commit the second table's row comes from."""
    sources = {spid: _APPENDIX_E for spid, _, _ in _spid_rows()}
    sources.update((spid, source) for spid, _, _, source in _operator_rows())
    return sources


@functools.cache
def _spid_index() -> dict[str, tuple[tuple[str, str], ...]]:
    index: dict[str, list[tuple[str, str]]] = {}
    for spid, country, carrier in _spid_rows():
        index.setdefault(spid, []).append((country, carrier))
    for spid, country, carrier, _source in _operator_rows():
        index.setdefault(spid, []).append((country, carrier))
    return {spid: tuple(entries) for spid, entries in index.items()}


@functools.cache
def spid_lookup() -> dict[str, tuple[str, str]]:
    """Unambiguous SPIDs → ``(country, carrier)``; see :data:`AMBIGUOUS_SPIDS` for the rest."""
    return {spid: entries[0] for spid, entries in _spid_index().items() if len(entries) == 1}


def _ambiguous() -> dict[str, tuple[tuple[str, str], ...]]:
    return {spid: entries for spid, entries in _spid_index().items() if len(entries) > 1}


#: SPIDs listed for more than one country: ``spid → ((country, carrier), ...)``.
AMBIGUOUS_SPIDS: dict[str, tuple[tuple[str, str], ...]] = _ambiguous()


@functools.cache
def _prefix_countries() -> dict[str, tuple[str, ...]]:
    """Calling prefix (``"1"``, ``"44"``, ``"1876"``) → countries using it."""
    table: dict[str, list[str]] = {}
    for spid, country, _carrier in _spid_rows():
        head = spid[:4]
        prefix = head.lstrip("0") if head.startswith("0") else head
        countries = table.setdefault(prefix, [])
        if country not in countries:
            countries.append(country)
    return {prefix: tuple(countries) for prefix, countries in table.items()}


def calling_code_of_number(number: str) -> str | None:
    """The longest known calling prefix of an international number, or None."""
    digits = _digits(number)
    table = _prefix_countries()
    for length in (4, 3, 2, 1):
        if digits[:length] in table:
            return digits[:length]
    return None


def _digits(number: str) -> str:
    # Reports show "+447624805892" despite the rules: normalise on read.
    text = str(number).strip()
    if text.startswith("+"):
        text = text[1:]
    elif text.startswith("00"):
        text = text[2:]
    return text


# Where several countries share a calling code: the default country, and the
# longer prefixes that belong to the others. (Appendix E lists Niger under
# +234, Nigeria's code; Niger's own is +227, so +234 means Nigeria.)
_SHARED_DEFAULT = {
    "1": "United States",
    "7": "Russia",
    "44": "United Kingdom",
    "234": "Nigeria",
    "262": "Reunion",
}
_SUBPREFIX_COUNTRY = {
    **{"1" + area: "Canada" for area in _CANADIAN_AREA_CODES},
    "76": "Kazakstan",
    "77": "Kazakstan",
    "262269": "Mayotte Islands",
    "262639": "Mayotte Islands",
    "441534": "Jersey",
    "447509": "Jersey",
    "447700": "Jersey",
    "447797": "Jersey",
    "447829": "Jersey",
}


def _disambiguate(prefix: str, digits: str, countries: tuple[str, ...]) -> str:
    for length in (6, 5, 4, 3, 2):
        country = _SUBPREFIX_COUNTRY.get(digits[:length])
        if country in countries:
            return country
    default = _SHARED_DEFAULT.get(prefix)
    return default if default in countries else countries[0]


@functools.lru_cache(maxsize=65536)
def country_of_number(number: str) -> str | None:
    """Country (as named in Appendix E) of an international number, or None.

    ``"17743199144"`` → ``"United States"``, ``"14165550100"`` → ``"Canada"``,
    ``"+447624805892"`` → ``"United Kingdom"``.
    """
    digits = _digits(number)
    if not digits.isdigit():
        return None
    prefix = calling_code_of_number(digits)
    if prefix is None:
        return None
    return _disambiguate(prefix, digits, _prefix_countries()[prefix])


def normalize_spid(spid: object) -> str | None:
    """The one rule for writing a SPID as the 7-digit id the tables list.

    * 7 digits, or anything that is not 4–6 ASCII digits: kept as written
      (stripped), so an unknown id stays visible.
    * 6 digits: the legacy (2011–2012) form, the id with its last digit
      dropped — ``"000189"`` → ``"0001890"`` (Verizon Wireless). Every
      Appendix E id ends in ``0``. A 6-digit text whose legacy reading is
      unknown but whose zero-padded reading is known (``"234560"``, a
      spreadsheet's ``0234560``) is zero-padded instead; no text is known
      both ways.
    * 4–5 digits: leading zeros a spreadsheet ate, padded back
      (``"1100"`` → ``"0001100"``).

    Blank or missing → None.
    """
    if spid is None:
        return None
    text = str(spid).strip()
    if not text:
        return None
    if not (text.isascii() and text.isdigit() and 4 <= len(text) < 7):
        return text
    if len(text) == 6:
        legacy, padded = text + "0", text.zfill(7)
        known = _spid_index()
        return padded if legacy not in known and padded in known else legacy
    return text.zfill(7)


def resolve_spid(spid: str | None, number: str | None = None) -> SpidInfo:
    """Country and carrier of a SPID, using the recipient to settle ambiguous SPIDs.

    Unknown SPIDs give ``country=None, carrier=None``. The SPID is first
    normalised by :func:`normalize_spid`.
    """
    key = normalize_spid(spid)
    if key is None:
        return SpidInfo("", None, None)
    entries = _spid_index().get(key)
    if not entries:
        return SpidInfo(key, None, None)
    if len(entries) == 1:
        return SpidInfo(key, *entries[0])
    country = country_of_number(number) if number else None
    for entry_country, carrier in entries:
        if entry_country == country:
            return SpidInfo(key, entry_country, carrier)
    return SpidInfo(key, entries[0][0], entries[0][1], ambiguous=True)


def carrier_and_country(spid, to=None, *, country_from_number: bool = False):
    """Carrier and country of each row, from its SPID, settled by its number where needed.

    The one look-up of carriers: the parser calls it once on every events
    frame it reads, the frames only for rows that have no events.

    Parameters
    ----------
    spid : pandas.Series
        SPIDs as written (text or categorical; normalised by
        :func:`normalize_spid`).
    to : pandas.Series, optional
        The recipients' numbers, same index: they settle the SPIDs listed
        under two countries (:data:`AMBIGUOUS_SPIDS`; without a usable
        number the first listed country is taken), and give the country
        where the SPID does not when ``country_from_number``.
    country_from_number : bool
        Fill the country of rows whose SPID is missing or unknown from the
        number (:func:`country_of_number`).

    Returns
    -------
    (pandas.Categorical, pandas.Categorical)
        Carrier and country per row; missing where unknown.

    Notes
    -----
    Work is done once per distinct SPID and, for ambiguous SPIDs, once per
    distinct first six digits of the numbers (all :func:`country_of_number`
    reads), so a million rows cost a few dictionary look-ups.
    """
    import numpy as np
    import pandas as pd

    spid = pd.Series(spid).reset_index(drop=True)
    numbers = None if to is None else pd.Series(to).reset_index(drop=True)
    codes, categories = pd.factorize(spid, sort=False)
    lookup = spid_lookup()
    keys = [normalize_spid(value) for value in categories]
    carriers: dict[str, int] = {}
    countries: dict[str, int] = {}

    def code_of(table: dict, value: str | None) -> int:
        return -1 if value is None else table.setdefault(value, len(table))

    carrier_of = np.array([code_of(carriers, lookup.get(key, (None, None))[1]) for key in keys] + [-1])
    country_of = np.array([code_of(countries, lookup.get(key, (None, None))[0]) for key in keys] + [-1])
    carrier, country = carrier_of[codes], country_of[codes]

    def by_number_key(rows: np.ndarray, decide) -> None:
        """Decide (country, carrier) once per distinct number key among ``rows``."""
        text = numbers.iloc[rows].astype("str").str.strip().str.removeprefix("+")
        text = text.where(~text.str.startswith("00", na=False), text.str.slice(2))
        usable = text.str.fullmatch(r"[0-9]+", na=False)
        inverse, distinct = pd.factorize(text.str.slice(0, 6).where(usable, ""), sort=False)
        decided = [decide(key) for key in distinct]
        country[rows] = np.array([code_of(countries, c) for c, _ in decided] + [-1])[inverse]
        carrier[rows] = np.array([code_of(carriers, k) for _, k in decided] + [-1])[inverse]

    for position, key in enumerate(keys):
        entries = AMBIGUOUS_SPIDS.get(key)
        if not entries:
            continue
        by_country = dict(entries)
        rows = np.flatnonzero(codes == position)
        if numbers is None:
            country[rows] = code_of(countries, entries[0][0])
            carrier[rows] = code_of(carriers, entries[0][1])
            continue

        def decide(number_key: str, entries=entries, by_country=by_country):
            found = country_of_number(number_key) if number_key else None
            if found not in by_country:
                found = entries[0][0]  # no usable number: the first listed, as resolve_spid
            return found, by_country[found]

        by_number_key(rows, decide)
    if country_from_number and numbers is not None:
        rows = np.flatnonzero((country < 0) & numbers.notna().to_numpy())
        if len(rows):
            kept_carrier = carrier[rows].copy()
            by_number_key(rows, lambda number_key: (country_of_number(number_key) if number_key else None, None))
            carrier[rows] = kept_carrier

    def categorical(values: np.ndarray, table: dict):
        return pd.Categorical.from_codes(values, categories=pd.Index(list(table), dtype="str"))

    return categorical(carrier, carriers), categorical(country, countries)


@functools.cache
def api_error_codes() -> dict[str, str]:
    """Appendix B: API response error code → documented text."""
    return {r["code"].strip(): r["description"].strip() for r in _read_csv("api_error_codes.csv")}


def api_error_meaning(code: str | None) -> str | None:
    """Documented text of an API *response* error code, or None if unknown."""
    return api_error_codes().get(str(code).strip().upper()) if code else None


@functools.cache
def mm7_operator_ids() -> dict[str, str]:
    """The documented operator ids (MM7 operator list, ``X-Skycore-Carrier-Id``) → operator name.

    7-digit strings (``"0001470"`` AT&T); the ids ``OPERATORID`` takes.
    """
    return {r["operator_id"].strip(): r["operator"].strip() for r in _read_csv("mm7_operator_ids.csv")}


@functools.cache
def postback_code_meanings() -> dict[str, str]:
    """Appendix D: postback notification code → documented text."""
    return {r["code"].strip(): r["description"].strip() for r in _read_csv("postback_codes.csv")}
