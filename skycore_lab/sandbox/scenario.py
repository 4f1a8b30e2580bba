"""The sandbox scenario: a documented, validated description of the simulated world.

A scenario is a plain dict (or JSON file) whose keys override the defaults
below; nested sections (``ddm``, ``content``, ``postback`` ...) are merged key
by key, while ``countries``, ``carriers``, ``handsets``, ``number_lengths`` and
``utc_offsets`` replace the default wholesale when given. An unknown key or a
bad value raises :class:`~skycore_lab.exceptions.ScenarioError` naming the
key (``postback.duplicate_rate: must be a probability in [0, 1], got 2``).

Keys (default — meaning)
------------------------
``countries`` ({"United States": 0.88, "Canada": 0.07, "United Kingdom": 0.05})
    Country shares of the numbers :meth:`World.sample_numbers` makes up.
``carriers`` (US: Verizon Wireless 0.35, AT&T 0.33, T-Mobile 0.28, US Cellular
0.04; Canada: Bell, Telus, Rogers; UK: Vodafone, O2, Three, EE-like Orange)
    Per country, a list of carriers, each a dict with ``name``, ``spid``
    (7 digits, from Appendix E), ``share`` (within the country), ``mms``
    (supports MMS; False → every MMS goes out as an SMS link), ``receipts``
    (sends delivery receipts; False → no N102/E102/N202/N502 ever),
    ``supported`` (False → the API refuses the number with E628),
    ``p_deliver`` (probability an MMS reaches a reachable handset),
    ``latency_median_s`` and ``latency_sigma`` (log-normal delivery latency).
    US Cellular sends no receipts by default.
``default_carrier`` (mms, receipts, p_deliver 0.9, latency 40 s / 1.2)
    Carrier model for countries without a ``carriers`` entry; its SPID is the
    country's "All Carriers" SPID.
``number_lengths`` ({"United States": 11, "Canada": 11, "United Kingdom": 12})
    Required digit count per country; other countries accept 7 to 15 digits.
    A wrong length, or a number of no known country, gets E110.
``utc_offsets`` (US: ["-05:00", "-04"], Canada: ["-05:00", "-04"], UK: ["+00:00", "+01"])
    Offsets postback TIMESTAMPs are rendered in, one chosen at random per
    send (real traffic shows both ``-05:00`` and bare ``-04``; the
    notifications of one send share one offset, as in the documented examples).
    ``default_utc_offsets`` (["+00:00"]) for other countries.
``handsets`` (12 current handsets with shares)
    The hidden true handset of each number is drawn from these shares.
``warm_cache_share`` (0.0)
    Share of numbers whose handset is already cached when the sandbox starts.
``processing`` ({"median_s": 2.0, "sigma": 0.5})
    Log-normal delay between a decision (request, DDM report) and N101/N501.
``send_error_rate`` (0.005)
    Probability that the content cannot be sent at all (E101).
``expiry_s`` (7200)
    An MMS not delivered within this many simulated seconds expires (E102
    Sent/Expired); it bounds every message's life.
``ddm`` — Device Discovery Messages:
    ``default_timeout_min`` (the documented 5, :data:`skycore_lab.reference.DEFAULT_DDM_TIMEOUT_MIN`) used when DDMTIMEOUT is absent;
    ``p_send_fail`` (0.01) E501; ``p_no_report`` (0.15) the DDM report never
    comes (handset off); ``p_report_failed`` (0.03) the report says failed
    (E502); ``report_median_s`` (120) and ``report_sigma`` (1.0) log-normal
    report delay; reports later than ``report_horizon_s`` (7200) never come.
``content`` — ``transcoded`` ({"p_fallback": 0.03, "p_fail": 0.02}) and
    ``generic`` ({"p_fallback": 0.25, "p_fail": 0.10}): probability the MMS
    falls back to an SMS link, and that a delivered MMS is refused by the
    handset (E102 Sent/NotSupported or Sent/Rejected), by content settings.
``sms`` ({"p_deliver": 0.97, "latency_median_s": 6.0, "latency_sigma": 0.8})
    The SMS leg of a fallback.
``postback`` — ``format`` ("body": raw XML body | "form": form field ``xml``),
    ``pretty`` (False), ``declaration`` (True), ``duplicate_rate`` (0.0:
    notifications posted twice), ``out_of_order_rate`` (0.0: sends whose last
    notification is posted before their first), ``timeout_s`` (10: the
    receiver's deadline in simulated seconds), ``min_real_timeout_s`` (2.0:
    floor of the real deadline, see below), ``retry_delay_s`` (300),
    ``max_retries`` (5), ``concurrency`` (32 postbacks in flight).
``rate_limit`` (None) — e.g. ``{"per_second": 5}`` (E113 beyond 5 calls in
    any 1-second window), ``{"min_interval_s": 2}`` (E106 when calls come
    closer), ``{"per_day": 1000}`` (E120 once 1000 calls were made).
``sending_statistics`` — the getSendingStatistics limits (Appendix C: "limited
    in the number of requests you can make per day … and in the period
    duration"): ``max_period_days`` (7: a longer period gets E509),
    ``min_interval_s`` (1.0 real seconds between lookups, else E510; 0 turns
    it off) and ``per_day`` (20 lookups in the sandbox's lifetime, else E510).
    See :mod:`skycore_lab.sandbox.report`.

Simulated delays that bound a message's life (``expiry_s``,
``ddm.report_horizon_s``, ``postback.retry_delay_s``) are at most 30 days,
so :meth:`Sandbox.wait_idle` is bounded.

The receiver's time-out: the platform allows 10 s. In accelerated time 10
simulated seconds can be a few milliseconds, which a busy test machine cannot
meet, so the real deadline is ``max(timeout_s / time_scale, min_real_timeout_s)``.
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..exceptions import ScenarioError
from ..reference import DEFAULT_DDM_TIMEOUT_MIN

__all__ = ["Scenario", "DEFAULTS", "MAX_DELAY_S"]

#: The longest simulated delay a scenario may set (30 days), so every message's life is bounded.
MAX_DELAY_S = 30 * 86400.0


def _carrier(name, spid, share, p_deliver, median, sigma, *, mms=True, receipts=True, supported=True):
    return {"name": name, "spid": spid, "share": share, "mms": mms, "receipts": receipts, "supported": supported,
            "p_deliver": p_deliver, "latency_median_s": median, "latency_sigma": sigma}


DEFAULTS: dict[str, Any] = {
    "countries": {"United States": 0.88, "Canada": 0.07, "United Kingdom": 0.05},
    "carriers": {
        "United States": [
            _carrier("Verizon Wireless", "0001890", 0.35, 0.96, 25.0, 1.0),
            _carrier("AT&T", "0001470", 0.33, 0.95, 35.0, 1.1),
            _carrier("T-Mobile", "0001570", 0.28, 0.93, 20.0, 1.2),
            _carrier("US Cellular", "0001840", 0.04, 0.90, 60.0, 1.3, receipts=False),
        ],
        "Canada": [
            _carrier("Bell Mobility", "0001400", 0.35, 0.94, 30.0, 1.0),
            _carrier("Telus", "0001220", 0.30, 0.93, 30.0, 1.1),
            _carrier("Rogers AT&T (GSM)", "0001290", 0.35, 0.94, 25.0, 1.0),
        ],
        "United Kingdom": [
            _carrier("Vodafone", "0044640", 0.30, 0.93, 20.0, 1.0),
            _carrier("O2", "0044170", 0.30, 0.92, 25.0, 1.1),
            _carrier("Three", "0044880", 0.20, 0.90, 30.0, 1.2),
            _carrier("Orange", "0044730", 0.20, 0.91, 25.0, 1.1, mms=False),
        ],
    },
    "default_carrier": {"mms": True, "receipts": True, "supported": True, "p_deliver": 0.90,
                        "latency_median_s": 40.0, "latency_sigma": 1.2},
    "number_lengths": {"United States": 11, "Canada": 11, "United Kingdom": 12},
    "utc_offsets": {"United States": ["-05:00", "-04"], "Canada": ["-05:00", "-04"],
                    "United Kingdom": ["+00:00", "+01"]},
    "default_utc_offsets": ["+00:00"],
    "handsets": {
        "Apple iPhone 15": 0.18, "Apple iPhone 14": 0.14, "Apple iPhone 13": 0.10, "Apple iPhone SE": 0.05,
        "Samsung Galaxy S24": 0.08, "Samsung Galaxy S23": 0.10, "Samsung Galaxy A14 5G": 0.08,
        "Google Pixel 8": 0.06, "Motorola moto g 5G": 0.08, "OnePlus 12": 0.03, "LG K51": 0.04,
        "Alcatel Go Flip 3": 0.06,
    },
    "warm_cache_share": 0.0,
    "processing": {"median_s": 2.0, "sigma": 0.5},
    "send_error_rate": 0.005,
    "expiry_s": 7200.0,
    "ddm": {"default_timeout_min": DEFAULT_DDM_TIMEOUT_MIN, "p_send_fail": 0.01, "p_no_report": 0.15, "p_report_failed": 0.03,
            "report_median_s": 120.0, "report_sigma": 1.0, "report_horizon_s": 7200.0},
    "content": {"transcoded": {"p_fallback": 0.03, "p_fail": 0.02},
                "generic": {"p_fallback": 0.25, "p_fail": 0.10}},
    "sms": {"p_deliver": 0.97, "latency_median_s": 6.0, "latency_sigma": 0.8},
    "postback": {"format": "body", "pretty": False, "declaration": True, "duplicate_rate": 0.0,
                 "out_of_order_rate": 0.0, "timeout_s": 10.0, "min_real_timeout_s": 2.0,
                 "retry_delay_s": 300.0, "max_retries": 5, "concurrency": 32},
    "rate_limit": None,
    "sending_statistics": {"max_period_days": 7.0, "min_interval_s": 1.0, "per_day": 20},
}

_REPLACED_WHOLE = {"countries", "carriers", "handsets", "number_lengths", "utc_offsets", "default_utc_offsets"}
_PROBABILITIES = {"p_deliver", "p_fallback", "p_fail", "p_send_fail", "p_no_report", "p_report_failed",
                  "duplicate_rate", "out_of_order_rate", "warm_cache_share", "send_error_rate"}
_CARRIER_KEYS = set(DEFAULTS["default_carrier"]) | {"name", "spid", "share"}
_RATE_KEYS = {"per_second", "min_interval_s", "per_day"}


def _fail(key: str, message: str):
    raise ScenarioError(f"{key}: {message}")


def _number(key: str, value, *, minimum: float = 0.0, integer: bool = False, positive: bool = False):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        _fail(key, f"expected a number, got {value!r}")
    if integer and int(value) != value:
        _fail(key, f"expected an integer, got {value!r}")
    if value < minimum or (positive and value <= 0):
        _fail(key, f"must be {'positive' if positive else f'>= {minimum:g}'}, got {value!r}")
    last = key.rsplit(".", 1)[-1]
    if last in _PROBABILITIES and value > 1:
        _fail(key, f"must be a probability in [0, 1], got {value!r}")
    return int(value) if integer else float(value)


def _shares(key: str, value) -> dict[str, float]:
    if not isinstance(value, dict) or not value:
        _fail(key, "expected a non-empty mapping of name → share")
    shares = {str(name): _number(f"{key}.{name}", share) for name, share in value.items()}
    if sum(shares.values()) <= 0:
        _fail(key, "shares must not all be zero")
    return shares


def _check_carrier(key: str, carrier) -> dict:
    if not isinstance(carrier, dict):
        _fail(key, f"expected a mapping, got {type(carrier).__name__}")
    unknown = set(carrier) - _CARRIER_KEYS
    if unknown:
        _fail(f"{key}.{sorted(unknown)[0]}", f"unknown carrier key (known: {', '.join(sorted(_CARRIER_KEYS))})")
    merged = {**DEFAULTS["default_carrier"], **carrier}
    for flag in ("mms", "receipts", "supported"):
        if not isinstance(merged[flag], bool):
            _fail(f"{key}.{flag}", f"expected true or false, got {merged[flag]!r}")
    merged["p_deliver"] = _number(f"{key}.p_deliver", merged["p_deliver"])
    merged["latency_median_s"] = _number(f"{key}.latency_median_s", merged["latency_median_s"], positive=True)
    merged["latency_sigma"] = _number(f"{key}.latency_sigma", merged["latency_sigma"])
    return merged


def _check_carriers(value) -> dict[str, list[dict]]:
    if not isinstance(value, dict):
        _fail("carriers", "expected a mapping of country → list of carriers")
    checked = {}
    for country, carriers in value.items():
        key = f"carriers.{country}"
        if not isinstance(carriers, list) or not carriers:
            _fail(key, "expected a non-empty list of carriers")
        rows = []
        for i, carrier in enumerate(carriers):
            row = _check_carrier(f"{key}[{i}]", carrier)
            for needed in ("name", "spid", "share"):
                if needed not in row:
                    _fail(f"{key}[{i}].{needed}", "is required")
            spid = str(row["spid"])
            if not (len(spid) == 7 and spid.isdigit()):
                _fail(f"{key}[{i}].spid", f"a SPID is 7 digits as text (leading zeros kept), got {row['spid']!r}")
            row["spid"] = spid
            row["name"] = str(row["name"])
            row["share"] = _number(f"{key}[{i}].share", row["share"])
            rows.append(row)
        if sum(r["share"] for r in rows) <= 0:
            _fail(key, "carrier shares must not all be zero")
        checked[str(country)] = rows
    return checked


def _check_rate_limit(value):
    if value is None:
        return None
    if not isinstance(value, dict) or not value:
        _fail("rate_limit", "expected null or a mapping like {'per_second': 5}")
    unknown = set(value) - _RATE_KEYS
    if unknown:
        _fail(f"rate_limit.{sorted(unknown)[0]}", f"unknown key (known: {', '.join(sorted(_RATE_KEYS))})")
    checked = {}
    for name, limit in value.items():
        integer = name != "min_interval_s"
        checked[name] = _number(f"rate_limit.{name}", limit, integer=integer, positive=True)
    return checked


def _merge_section(name: str, default: dict, given) -> dict:
    if not isinstance(given, dict):
        _fail(name, f"expected a mapping, got {type(given).__name__}")
    merged = copy.deepcopy(default)
    for key, value in given.items():
        full = f"{name}.{key}"
        if key not in default:
            _fail(full, f"unknown key (known: {', '.join(sorted(default))})")
        if isinstance(default[key], dict):
            merged[key] = _merge_section(full, default[key], value)
        elif isinstance(default[key], bool):
            if not isinstance(value, bool):
                _fail(full, f"expected true or false, got {value!r}")
            merged[key] = value
        elif isinstance(default[key], str):
            merged[key] = value
        else:
            merged[key] = _number(full, value, integer=isinstance(default[key], int))
    return merged


def _check_offsets(key: str, offsets) -> list[str]:
    from datetime import datetime

    if not isinstance(offsets, list) or not offsets:
        _fail(key, "expected a non-empty list of offsets like '-05:00' or '-04'")
    for offset in offsets:
        text = str(offset)
        padded = text + ":00" if len(text) == 3 else text
        try:
            datetime.fromisoformat("2024-01-01T00:00:00" + padded)
        except ValueError:
            _fail(key, f"{offset!r} is not a UTC offset like '-05:00' or '-04'")
    return [str(o) for o in offsets]


@dataclass(frozen=True)
class Scenario:
    """A validated scenario; build it with :meth:`from_dict` or :meth:`from_json`.

    ``settings`` holds every key of :data:`DEFAULTS` (user values merged in);
    treat it as read-only. ``Scenario()`` is the default world.
    """

    settings: dict = field(default_factory=lambda: Scenario.from_dict({}).settings)

    def __getitem__(self, key: str):
        return self.settings[key]

    @classmethod
    def from_dict(cls, given: dict | None) -> Scenario:
        """Merge ``given`` over :data:`DEFAULTS` and validate; raises ScenarioError naming the key."""
        given = {} if given is None else given
        if not isinstance(given, dict):
            _fail("scenario", f"expected a mapping, got {type(given).__name__}")
        settings = copy.deepcopy(DEFAULTS)
        for key, value in given.items():
            if key not in DEFAULTS:
                _fail(str(key), f"unknown scenario key (known: {', '.join(sorted(DEFAULTS))})")
            if key in ("countries", "handsets"):
                settings[key] = _shares(key, value)
            elif key == "carriers":
                settings[key] = _check_carriers(value)
            elif key == "default_carrier":
                settings[key] = _check_carrier(key, value)
            elif key == "number_lengths":
                if not isinstance(value, dict):
                    _fail(key, "expected a mapping of country → digit count")
                settings[key] = {str(c): _number(f"{key}.{c}", n, integer=True, positive=True) for c, n in value.items()}
            elif key == "utc_offsets":
                if not isinstance(value, dict):
                    _fail(key, "expected a mapping of country → list of offsets")
                settings[key] = {str(c): _check_offsets(f"{key}.{c}", o) for c, o in value.items()}
            elif key == "default_utc_offsets":
                settings[key] = _check_offsets(key, value)
            elif key == "rate_limit":
                settings[key] = _check_rate_limit(value)
            elif isinstance(DEFAULTS[key], dict):
                settings[key] = _merge_section(key, DEFAULTS[key], value)
            else:
                settings[key] = _number(key, value)
        if settings["postback"]["format"] not in ("body", "form"):
            _fail("postback.format", f"expected 'body' or 'form', got {settings['postback']['format']!r}")
        for key in ("report_median_s",):
            _number(f"ddm.{key}", settings["ddm"][key], positive=True)
        _number("expiry_s", settings["expiry_s"], positive=True)
        for key, value in (("expiry_s", settings["expiry_s"]), ("ddm.report_horizon_s", settings["ddm"]["report_horizon_s"]),
                           ("postback.retry_delay_s", settings["postback"]["retry_delay_s"])):
            if value > MAX_DELAY_S:
                _fail(key, f"at most {MAX_DELAY_S:g} simulated seconds (30 days), got {value!r}")
        _number("processing.median_s", settings["processing"]["median_s"], positive=True)
        _number("sms.latency_median_s", settings["sms"]["latency_median_s"], positive=True)
        _number("postback.timeout_s", settings["postback"]["timeout_s"], positive=True)
        _number("postback.concurrency", settings["postback"]["concurrency"], positive=True)
        _number("sending_statistics.max_period_days", settings["sending_statistics"]["max_period_days"], positive=True)
        _number("sending_statistics.per_day", settings["sending_statistics"]["per_day"], positive=True)
        return cls(settings)

    @classmethod
    def from_json(cls, path: str | Path) -> Scenario:
        """Read a scenario from a JSON file (an object with the keys above)."""
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ScenarioError(f"scenario file {path}: {exc.strerror}") from None
        try:
            given = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ScenarioError(f"scenario file {path}: not JSON ({exc})") from None
        return cls.from_dict(given)

    @classmethod
    def coerce(cls, scenario: Scenario | dict | str | Path | None) -> Scenario:
        """Accept a Scenario, a dict, a JSON path or None (the defaults)."""
        if isinstance(scenario, Scenario):
            return scenario
        if isinstance(scenario, (str, Path)):
            return cls.from_json(scenario)
        return cls.from_dict(scenario)

    def to_json(self) -> str:
        """The full scenario (defaults included) as JSON."""
        return json.dumps(self.settings, indent=2, sort_keys=True)
