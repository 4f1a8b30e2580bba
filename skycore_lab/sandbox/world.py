"""The sandbox's world model: pure, deterministic, usable without HTTP.

Given a :class:`~skycore_lab.sandbox.scenario.Scenario` and a seed,

* every number has a fixed profile — country (from its calling code), carrier
  (drawn by the scenario's shares), SPID, and a hidden true handset — that
  depends only on ``(seed, number)`` (a hash, never on send order);
* :meth:`World.simulate_send` turns one send (number, DDM settings, cache
  state, anchor time) into its timed notifications and its ground-truth row;
* :meth:`World.simulate_population` simulates many independent sends at once
  (vectorised, no Python loop per send), returning truth rows — for Monte Carlo
  estimates of a policy's *true* delivery probability.

The story of one send (all delays simulated seconds, drawn from the scenario)::

    request ─ processing ─▶ N501 (DDM sent)        only if DDM asked and (not cached or forced)
             └ DDM report after a log-normal delay, or never; within DDMTIMEOUT →
               N502 + handset learnt + content transcoded; later → content goes
               out at the time-out with generic settings (a late N502 still comes)
    content ─ processing ─▶ N101 SENTAS=MMS ─ latency ─▶ N102 (+HANDSET) | E102
                         or N101 SENTAS=SMS ─ link SMS ─▶ N202 | E202  (SMS/xHTML fallback, under MMS_MT)
                         or E101 (could not send at all)

The notifications have the documented shapes (the delivery-reports page):
the DDM codes carry the MMS STATUS texts; the SMS/xHTML fallback stays under
ORIGIN ``MMS_MT`` with the MMS's tracking id — N101 with ``SENTAS`` SMS and a
STATUSDETAILS, then N202 (or E202) with ``SENTAS`` SMS, an AGGREGATORID, no
HANDSET and no MMSID; there is no N201 and no ``SMS_MT`` document for it.
E102, like the documented example, has no SENTAS. Every notification of one
send is stamped in one UTC offset (the send's ``stamp_offset`` draw).

Receipts: carriers with ``receipts: false`` post no N102/E102/N202/E202/N502;
the truth then says ``outcome="pending"`` while ``true_outcome`` tells what
happened. Every timestamp is rounded *up* to the whole second (postbacks carry
seconds), so truth and postbacks agree to the second and no event is stamped
before the request that caused it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import numpy as np

from .. import reference as ref
from .. import columns as col
from ..client import DDM
from ..exceptions import SkycoreValidationError
from ..reference import country_of_number, spid_table
from .model import ceil_s, draw, observables, truth_frame
from .scenario import Scenario

__all__ = ["World", "NumberProfile", "Notification", "SendSimulation"]

_MASK64 = (1 << 64) - 1
# Canadian and US area codes used when making numbers up (clearly non-Canadian for the US).
_US_AREAS = ("201", "212", "213", "305", "312", "415", "469", "512", "617", "702", "713", "774", "818", "917")
_CA_AREAS = ("416", "514", "604", "613", "403", "780")
_FALLBACK_DETAILS = "Handset setting: mms with pass via xHTML"  # the documented N101 (xHTML) example
_SEND_ERROR_DETAILS = "Error fetching dynamic content"
_FAILURE_DETAILS = {
    col.OUTCOME_EXPIRED: "Message expired before the handset could be reached",
    col.OUTCOME_FAILED: "Delivery failed at the mobile operator",
    col.OUTCOME_REJECTED: "Recipient blocked by mobile operator",
    col.OUTCOME_NOT_SUPPORTED: "Content not supported by the handset",
}


def _ddm_of(ddm) -> DDM | None:
    """None, a :class:`~skycore_lab.DDM`, or a dict of its fields."""
    if ddm is None or isinstance(ddm, DDM):
        return ddm
    if isinstance(ddm, dict):
        return DDM(**ddm)
    raise SkycoreValidationError("ddm", f"expected skycore_lab.DDM(...), a dict of its fields or None, got {ddm!r}")


@dataclass(frozen=True)
class NumberProfile:
    """The fixed (hidden) facts about one number."""

    number: str
    country: str
    carrier: str
    spid: str
    true_handset: str
    mms: bool
    receipts: bool
    supported: bool
    carrier_index: int


@dataclass(frozen=True)
class Notification:
    """One postback to be posted: its event time and its fields in document order."""

    at: datetime  # event time, UTC, whole seconds (the TIMESTAMP's instant)
    delay_s: float  # simulated seconds after the request's arrival
    fields: tuple[tuple[str, str], ...]  # (ELEMENT, text), ORIGIN..STATUSDETAILS order
    learns_handset: str | None = None  # the cache learns this handset when the event happens

    @property
    def code(self) -> str:
        return dict(self.fields)["CODE"]


@dataclass(frozen=True)
class SendSimulation:
    """The simulated life of one send."""

    notifications: tuple[Notification, ...]  # in event order
    truth: dict  # one truth row, keys = columns.TRUTH_COLUMNS


def _splitmix(x: np.ndarray) -> np.ndarray:
    x = (x + np.uint64(0x9E3779B97F4A7C15)) & np.uint64(_MASK64)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))



class World:
    """The deterministic world of a scenario and seed (see the module docstring)."""

    def __init__(self, scenario: Scenario | dict | None = None, seed: int = 0):
        self.scenario = Scenario.coerce(scenario)
        self.seed = int(seed)
        s = self.scenario.settings
        self._salt = int.from_bytes(hashlib.blake2b(str(self.seed).encode(), digest_size=8).digest(), "little")
        self._handsets = list(s["handsets"])
        weights = np.array(list(s["handsets"].values()), dtype=float)
        self._handset_cdf = np.cumsum(weights / weights.sum())
        self._carriers: list[dict] = []  # flat list; index used by the vectorised model
        self._country_carriers: dict[str, tuple[list[int], np.ndarray]] = {}
        for country, carriers in s["carriers"].items():
            self._add_country(country, carriers)
        self._all_carriers = {c: s for s, c, name in spid_table().itertuples(index=False) if name == "All Carriers"}

    # -- profiles ----------------------------------------------------------------------
    def _add_country(self, country: str, carriers: list[dict]) -> None:
        indices = []
        for carrier in carriers:
            indices.append(len(self._carriers))
            self._carriers.append({**carrier, "country": country})
        shares = np.array([c["share"] for c in carriers], dtype=float)
        self._country_carriers[country] = (indices, np.cumsum(shares / shares.sum()))

    def _carrier_indices_for(self, country: str) -> tuple[list[int], np.ndarray]:
        if country not in self._country_carriers:
            default = self.scenario["default_carrier"]
            spid = self._all_carriers.get(country, "0000000")
            self._add_country(country, [{**default, "name": "All Carriers", "spid": spid, "share": 1.0}])
        return self._country_carriers[country]

    def _uniform(self, numbers: np.ndarray, salt: int) -> np.ndarray:
        """Uniform [0, 1) per number, fixed by (seed, number, salt)."""
        key = _splitmix(numbers.astype(np.uint64) ^ np.uint64(self._salt))
        key = _splitmix(key ^ np.uint64(salt))
        return (key >> np.uint64(11)).astype(np.float64) / float(1 << 53)

    def valid_length(self, number: str, country: str) -> bool:
        wanted = self.scenario["number_lengths"].get(country)
        return 7 <= len(number) <= 15 if wanted is None else len(number) == wanted

    def country(self, number: str) -> str | None:
        """The number's country, or None when it is not a valid number for the API (E110)."""
        text = str(number)
        if not (text.isascii() and text.isdigit()) or text.startswith("0"):
            return None
        country = country_of_number(text)
        return country if country is not None and self.valid_length(text, country) else None

    def _profile_arrays(self, numbers: list[str], countries: list[str]):
        ints = np.array([int(n) for n in numbers], dtype=np.uint64)
        u_carrier, u_handset = self._uniform(ints, 1), self._uniform(ints, 2)
        carrier_idx = np.empty(len(numbers), dtype=np.int64)
        for country in set(countries):
            rows = np.fromiter((c == country for c in countries), dtype=bool, count=len(countries))
            indices, cdf = self._carrier_indices_for(country)
            pick = np.minimum(np.searchsorted(cdf, u_carrier[rows], side="right"), len(indices) - 1)
            carrier_idx[rows] = np.asarray(indices)[pick]
        handset_idx = np.minimum(np.searchsorted(self._handset_cdf, u_handset, side="right"), len(self._handsets) - 1)
        return ints, carrier_idx, handset_idx

    def profile(self, number: str) -> NumberProfile | None:
        """The number's fixed profile, or None when the API would refuse it with E110."""
        number = str(number)
        country = self.country(number)
        if country is None:
            return None
        _, carrier_idx, handset_idx = self._profile_arrays([number], [country])
        carrier = self._carriers[int(carrier_idx[0])]
        return NumberProfile(number, country, carrier["name"], carrier["spid"], self._handsets[int(handset_idx[0])],
                             carrier["mms"], carrier["receipts"], carrier["supported"], int(carrier_idx[0]))

    def initially_cached(self, number: str) -> bool:
        """Whether the handset cache holds this number when the sandbox starts (``warm_cache_share``)."""
        share = self.scenario["warm_cache_share"]
        return bool(share) and bool(self._uniform(np.array([int(number)], dtype=np.uint64), 3)[0] < share)

    def sample_numbers(self, n: int, rng: np.random.Generator | None = None) -> list[str]:
        """``n`` distinct made-up valid numbers, countries by the scenario's ``countries`` shares."""
        rng = rng if rng is not None else np.random.default_rng([self.seed, 7])
        names = list(self.scenario["countries"])
        shares = np.array(list(self.scenario["countries"].values()), dtype=float)
        picks = rng.choice(len(names), size=n, p=shares / shares.sum())
        numbers, seen = [], set()
        for pick in picks:
            while True:
                number = self._make_number(names[pick], rng)
                if number not in seen:
                    seen.add(number)
                    numbers.append(number)
                    break
        return numbers

    def _make_number(self, country: str, rng: np.random.Generator) -> str:
        line = f"{int(rng.integers(0, 10_000_000)):07d}"
        if country == "United States":
            return "1" + _US_AREAS[int(rng.integers(len(_US_AREAS)))] + line
        if country == "Canada":
            return "1" + _CA_AREAS[int(rng.integers(len(_CA_AREAS)))] + line
        if country == "United Kingdom":
            return "4474" + f"{int(rng.integers(0, 100_000_000)):08d}"
        raise SkycoreValidationError("country", f"cannot make up numbers for {country!r}: give the numbers explicitly")

    def _ddm_arrays(self, ddm: DDM | None, n: int):
        requested = np.full(n, ddm is not None)
        timeout_min = np.nan if ddm is None else (
            self.scenario["ddm"]["default_timeout_min"] if ddm.timeout_min is None else int(ddm.timeout_min))
        force = np.full(n, bool(ddm is not None and ddm.force))
        return requested, timeout_min, force

    # -- one send ----------------------------------------------------------------------
    def simulate_send(self, number: str, *, tracking_id: str, mms_id: str = "1001", sender: str = "60856",
                      requested_at: datetime | None = None, ddm=None, cached: bool | None = None,
                      send_index: int = 0) -> SendSimulation:
        """Simulate one accepted send.

        Parameters
        ----------
        number : str
            A valid recipient (see :meth:`profile`; invalid numbers raise SkycoreValidationError).
        tracking_id, mms_id, sender : str
            Echoed in the notifications (``sender`` = shortcode actually used).
        requested_at : datetime, optional
            Anchor: the request's arrival (UTC); default now.
        ddm : :class:`~skycore_lab.DDM`, dict of its fields, or None
        cached : bool, optional
            Handset cache state at arrival; default :meth:`initially_cached`.
        send_index : int
            How many earlier sends this number had; with the seed it fixes the
            random draws, so equal inputs give equal results.

        Returns
        -------
        SendSimulation
            Notifications in event order and the truth row.
        """
        profile = self.profile(number)
        if profile is None:
            raise SkycoreValidationError("number", f"{number!r} is not a valid recipient (the API answers E110)")
        requested_at = requested_at or datetime.now(timezone.utc)
        ddm = _ddm_of(ddm)
        cached = self.initially_cached(number) if cached is None else bool(cached)
        rng = np.random.default_rng([self.seed, int(number), int(send_index), 11])
        ddm_req, timeout_min, force = self._ddm_arrays(ddm, 1)
        timeout_s = np.array([0.0 if np.isnan(timeout_min) else timeout_min * 60.0])
        core = draw(self.scenario.settings, self._carriers, rng, np.array([profile.carrier_index]), np.array([cached]), ddm_req, timeout_s, force)
        requested = np.array([requested_at.timestamp()])
        obs = observables(core, requested)
        one = {k: v[0] for k, v in {**core, **obs}.items()}
        truth = self._truth_row(profile, one, tracking_id, mms_id, sender, cached, ddm, timeout_min, requested_at)
        notes = self._notifications(profile, one, tracking_id, mms_id, sender, requested[0])
        return SendSimulation(tuple(notes), truth)

    @staticmethod
    def _truth_row(p: NumberProfile, one: dict, tracking_id, mms_id, sender, cached, ddm, timeout_min, requested_at) -> dict:
        def t(value):
            return None if np.isnan(value) else datetime.fromtimestamp(float(value), timezone.utc)

        return {
            col.TRACKING_ID: tracking_id, col.TO: p.number, col.MMS_ID: str(mms_id), col.SENDER: str(sender),
            col.COUNTRY: p.country, col.CARRIER: p.carrier, col.SPID: p.spid, col.TRUE_HANDSET: p.true_handset,
            col.CACHED_BEFORE: bool(cached), col.DDM_REQUESTED: ddm is not None,
            col.DDM_TIMEOUT_MIN: float(timeout_min), col.DDM: str(one["ddm"]),
            col.DDM_SENT_AT: t(one["ddm_sent_at"]), col.DDM_DELIVERED_AT: t(one["ddm_delivered_at"]),
            col.TRANSCODED: bool(one["transcoded"]), col.SENT_AS: one["sent_as"],
            col.REQUESTED_AT: requested_at, col.SENT_AT: t(one["sent_at"]),
            col.TRUE_OUTCOME: str(one["true_outcome"]), col.TRUE_DELIVERED_AT: t(one["true_delivered_at"]),
            col.RECEIPT: bool(one["receipts"]), col.OUTCOME: str(one["outcome"]),
            col.DELIVERED_AT: t(one["delivered_at"]), col.FAILED_AT: t(one["failed_at"]),
            col.HANDSET: p.true_handset if one["handset_reported"] else None,
        }

    @staticmethod
    def _stamp(epoch: float, offset: str) -> str:
        sign = -1 if offset.startswith("-") else 1
        hours, _, minutes = offset[1:].partition(":")
        delta = timedelta(hours=int(hours), minutes=int(minutes or 0)) * sign
        local = datetime.fromtimestamp(epoch, timezone.utc) + delta
        return local.strftime("%Y-%m-%dT%H:%M:%S") + offset

    def _notifications(self, p: NumberProfile, one: dict, tracking_id, mms_id, sender, requested: float):
        offsets = self.scenario["utc_offsets"].get(p.country, self.scenario["default_utc_offsets"])
        offset = offsets[int(one["u_offset"] * len(offsets)) % len(offsets)]  # one offset per send
        aggregator = str(100 + p.carrier_index)
        notes: list[Notification] = []

        def add(epoch, code, status, *, sent_as=None, with_mms=True, handset=None, aggregator_id=None,
                details=None, learns=None):
            # the documented element order (ORIGIN, CODE, SENTAS, STATUS, MMSID, FROM, ...)
            fields = [("ORIGIN", ref.ORIGIN_MMS), ("CODE", code)]
            if sent_as:
                fields.append(("SENTAS", sent_as))
            fields.append(("STATUS", status))
            if with_mms:
                fields.append(("MMSID", str(mms_id)))
            fields += [("FROM", str(sender)), ("TO", p.number), ("TRACKINGID", tracking_id), ("SPID", p.spid),
                       ("TIMESTAMP", self._stamp(epoch, offset))]
            if handset:
                fields.append(("HANDSET", handset))
            if aggregator_id:
                fields.append(("AGGREGATORID", aggregator_id))
            if details:
                fields.append(("STATUSDETAILS", details))
            at = datetime.fromtimestamp(epoch, timezone.utc)
            notes.append(Notification(at, epoch - requested, tuple(fields), learns))

        text = ref.STATUS_TEXT
        if one["ddm_sent"] and one["ddm_send_failed"]:
            add(ceil_s(requested + one["ddm_at"]), ref.E501, text[ref.E501], details="DDM could not be sent")
        elif one["ddm_sent"]:
            add(one["ddm_sent_at"], ref.N501, text[ref.N501])
            if one["reports"] and one["report_failed"]:
                add(one["ddm_report_at"], ref.E502, text[ref.E502], details="DDM delivery failed")
            elif one["reports"]:
                add(one["ddm_report_at"], ref.N502, text[ref.N502], handset=p.true_handset, learns=p.true_handset)
        outcome = one["outcome"]
        if one["send_error"]:
            add(one["failed_at"], ref.E101, text[ref.E101], details=_SEND_ERROR_DETAILS)
        elif one["as_mms"]:
            add(one["sent_at"], ref.N101, text[ref.N101], sent_as=col.SENT_AS_MMS)
            if outcome == col.OUTCOME_DELIVERED:
                add(one["delivered_at"], ref.N102, text[ref.N102], sent_as=col.SENT_AS_MMS,
                    handset=p.true_handset, aggregator_id=aggregator, learns=p.true_handset)
            elif outcome != col.OUTCOME_PENDING:
                add(one["failed_at"], ref.E102, ref.FAILED_STATUS_TEXT[outcome], aggregator_id=aggregator,
                    details=_FAILURE_DETAILS[outcome])
        else:  # the SMS/xHTML fallback: still MMS_MT, still this tracking id
            add(one["sent_at"], ref.N101, text[ref.N101], sent_as=col.SENT_AS_SMS, details=_FALLBACK_DETAILS)
            if outcome == col.OUTCOME_DELIVERED:
                add(one["delivered_at"], ref.N202, text[ref.N202], sent_as=col.SENT_AS_SMS, with_mms=False,
                    aggregator_id=aggregator)
            elif outcome != col.OUTCOME_PENDING:
                add(one["failed_at"], ref.E202, ref.FAILED_STATUS_TEXT[col.OUTCOME_FAILED], sent_as=col.SENT_AS_SMS,
                    with_mms=False, aggregator_id=aggregator, details=_FAILURE_DETAILS[col.OUTCOME_FAILED])
        notes.sort(key=lambda note: note.delay_s)  # stable: same-second events keep their causal order
        return notes

    # -- many sends --------------------------------------------------------------------
    def simulate_population(self, numbers_or_n, ddm=None, *, cached=None, requested_at: datetime | None = None,
                            mms_id: str = "1001", sender: str = "60856", rng: np.random.Generator | None = None):
        """Simulate independent sends without HTTP, vectorised (no Python loop per send).

        Parameters
        ----------
        numbers_or_n : int or sequence of str
            Recipients, or how many to make up (:meth:`sample_numbers`).
            Invalid numbers raise SkycoreValidationError naming the first.
        ddm : :class:`~skycore_lab.DDM`, dict of its fields, or None
            One policy for every send (simulate each arm with its own call).
        cached : bool or array of bool, optional
            Handset cache state at send time; default the warm-start rule.
        requested_at : datetime, optional
            Common anchor of all sends (default now).
        rng : numpy Generator, optional
            Default ``default_rng([seed, 13])``: the same call gives the same frame.

        Returns
        -------
        pandas.DataFrame
            Columns :data:`skycore_lab.columns.TRUTH_COLUMNS`, as in
            :meth:`Sandbox.truth` (tracking ids are ``SIM_<i>``). Each send
            sees the cache as given: no send teaches a later one here.
        """
        numbers = self.sample_numbers(int(numbers_or_n)) if isinstance(numbers_or_n, (int, np.integer)) \
            else [str(n) for n in numbers_or_n]
        countries = [self.country(n) for n in numbers]
        for number, country in zip(numbers, countries, strict=True):
            if country is None:
                raise SkycoreValidationError("number", f"{number!r} is not a valid recipient (the API answers E110)")
        n = len(numbers)
        ints, carrier_idx, handset_idx = self._profile_arrays(numbers, countries)
        if cached is None:
            share = self.scenario["warm_cache_share"]
            cached_arr = self._uniform(ints, 3) < share if share else np.zeros(n, dtype=bool)
        else:
            cached_arr = np.broadcast_to(np.asarray(cached, dtype=bool), (n,)).copy()
        ddm = _ddm_of(ddm)
        ddm_req, timeout_min, force = self._ddm_arrays(ddm, n)
        timeout_s = np.full(n, 0.0 if np.isnan(timeout_min) else timeout_min * 60.0)
        rng = rng if rng is not None else np.random.default_rng([self.seed, 13])
        core = draw(self.scenario.settings, self._carriers, rng, carrier_idx, cached_arr, ddm_req, timeout_s, force)
        requested_at = requested_at or datetime.now(timezone.utc)
        obs = observables(core, np.full(n, requested_at.timestamp()))
        carriers = self._carriers
        handsets = np.array(self._handsets, dtype=object)[handset_idx]
        frame = {
            col.TRACKING_ID: [f"SIM_{i}" for i in range(n)], col.TO: numbers, col.MMS_ID: str(mms_id),
            col.SENDER: str(sender), col.COUNTRY: countries,
            col.CARRIER: [carriers[i]["name"] for i in carrier_idx], col.SPID: [carriers[i]["spid"] for i in carrier_idx],
            col.TRUE_HANDSET: handsets, col.CACHED_BEFORE: cached_arr, col.DDM_REQUESTED: ddm_req,
            col.DDM_TIMEOUT_MIN: np.full(n, timeout_min, dtype=float), col.DDM: obs["ddm"],
            col.DDM_SENT_AT: obs["ddm_sent_at"], col.DDM_DELIVERED_AT: obs["ddm_delivered_at"],
            col.TRANSCODED: core["transcoded"], col.SENT_AS: obs["sent_as"], col.REQUESTED_AT: requested_at,
            col.SENT_AT: obs["sent_at"], col.TRUE_OUTCOME: core["true_outcome"],
            col.TRUE_DELIVERED_AT: obs["true_delivered_at"], col.RECEIPT: core["receipts"], col.OUTCOME: obs["outcome"],
            col.DELIVERED_AT: obs["delivered_at"], col.FAILED_AT: obs["failed_at"],
            col.HANDSET: np.where(obs["handset_reported"], handsets, None),
        }
        return truth_frame(frame)
