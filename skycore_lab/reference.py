"""Reference tables from the Skycore API documentation, shipped as package data.

* ``spid_carriers.csv`` (Appendix E): carrier id (SPID) → country, carrier.
* ``api_error_codes.csv`` (Appendix B): API response error codes.
* ``postback_codes.csv`` (Appendix D): postback notification codes.
* ``carrier_mms_size_limits.csv`` (Appendix E): US carriers' MMS size limits.

SPIDs are 7-digit strings whose first four digits are the country calling
code, zero-padded (``0044…`` United Kingdom), or a North American numbering
plan prefix (``1876…`` Jamaica). That gives the calling-code table used to
find a number's country without a second data source.

Ambiguity, and what we decided
------------------------------
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

__all__ = [
    "spid_table",
    "spid_lookup",
    "resolve_spid",
    "country_of_number",
    "calling_code_of_number",
    "api_error_codes",
    "api_error_meaning",
    "postback_code_meanings",
    "postback_meaning",
    "SpidInfo",
    "AMBIGUOUS_SPIDS",
    "INTERNATIONAL_NUMBER",
]

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


def spid_table():
    """Appendix E as a DataFrame with string columns ``spid, country, carrier``."""
    import pandas as pd

    rows = _spid_rows()
    return pd.DataFrame(rows, columns=["spid", "country", "carrier"], dtype=object)


@functools.cache
def _spid_index() -> dict[str, tuple[tuple[str, str], ...]]:
    index: dict[str, list[tuple[str, str]]] = {}
    for spid, country, carrier in _spid_rows():
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


def resolve_spid(spid: str | None, number: str | None = None) -> SpidInfo:
    """Country and carrier of a SPID, using the recipient to settle ambiguous SPIDs.

    Unknown SPIDs give ``country=None, carrier=None``. A SPID without leading
    zeros (``"1100"``, from a spreadsheet that ate them) is zero-padded to 7.
    """
    if spid is None:
        return SpidInfo("", None, None)
    key = str(spid).strip()
    if key.isdigit() and len(key) < 7:
        key = key.zfill(7)
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


@functools.cache
def api_error_codes() -> dict[str, str]:
    """Appendix B: API response error code → documented text."""
    return {r["code"].strip(): r["description"].strip() for r in _read_csv("api_error_codes.csv")}


def api_error_meaning(code: str | None) -> str | None:
    """Documented text of an API *response* error code, or None if unknown."""
    return api_error_codes().get(str(code).strip().upper()) if code else None


@functools.cache
def postback_code_meanings() -> dict[str, str]:
    """Appendix D: postback notification code → documented text."""
    return {r["code"].strip(): r["description"].strip() for r in _read_csv("postback_codes.csv")}


def postback_meaning(code: str | None) -> str | None:
    """Documented text of a *postback* code (E101 here means "MMS failed"), or None."""
    return postback_code_meanings().get(str(code).strip().upper()) if code else None
