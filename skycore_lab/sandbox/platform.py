"""The sandbox's platform logic: checks a request, accepts sends, keeps the truth.

Order of the whole call's checks (first failure wins; nothing is sent):
``action`` (E101 missing or undocumented, E107 another documented action),
API key (E102 missing, E103 ``user`` without ``pass``, E104 unknown, E105 no
API rights), throttling when the scenario sets ``rate_limit`` (E113, E106,
E120), ``mmsid`` (E620), ``to`` (E621, E623 beyond 100 numbers), ``from``
(E111), billing (E713), the saved MMS (E625 not numeric, E626 encoding, E629
unrecognised content, E241 unknown), DDM fields (E100), the campaign (E714
unknown), the OPERATORID (E651 unknown, E628 not supported). Then each
number on its own: E110 invalid, E114 blacklisted, E715 not subscribed to
the campaign, E628 its carrier is not supported. One number refused fails
the call; among several, a refused number gets its ``<SENDING>`` refusal and
the others are sent.

``getSendingStatistics`` (:meth:`Platform.sending_statistics`) shares the
action, key and rate-limit checks, then checks its period and its own lookup
limits (:mod:`skycore_lab.sandbox.report`).
"""

from __future__ import annotations

import base64
import collections
import hashlib
import secrets
import threading
import time
from datetime import datetime, timedelta, timezone

from ..client import DDM
from ..ratelimit import MIN_INTERVAL, PER_SECOND, TOTAL, RateLimiter
from .account import Account
from .. import reference as ref
from ..reference import API_ACTIONS, MAX_DDM_TIMEOUT_MIN, MAX_RECIPIENTS
from .app import ApiFailure, Sent
from .dispatcher import Dispatcher
from .report import KEPT_REPORTS, REPORTS_PATH, STATISTICS_ACTIONS, parse_period, report_xml
from .world import World

__all__ = ["Platform"]

_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no", ""}


class Platform:
    """State and API logic of one sandbox (used on the server's loop thread)."""

    def __init__(self, world: World, account: Account, dispatcher: Dispatcher, seed: int):
        self.world = world
        self.account = account
        self.dispatcher = dispatcher
        limits = world.scenario["rate_limit"] or {}
        # the sandbox's "day" is its lifetime
        self._limiter = RateLimiter(limits.get("min_interval_s"), limits.get("per_second"), limits.get("per_day"))
        digest = hashlib.blake2b(f"tracking {seed}".encode(), digest_size=4).digest()
        self._next_tracking = 100_000 + int.from_bytes(digest, "little") % 800_000
        self._send_counts: collections.Counter[str] = collections.Counter()
        self._learnt: dict[str, str] = {}  # number → handset the platform learnt
        self._lock = threading.Lock()  # truth rows are read from other threads
        self.truth_rows: list[dict] = []
        self._ddm_failed_at: dict[str, datetime] = {}  # tracking id → when its DDM failed (E501/E502)
        statistics = world.scenario["sending_statistics"]
        self._lookups = RateLimiter(statistics["min_interval_s"] or None, None, int(statistics["per_day"]))
        self._max_period = timedelta(days=float(statistics["max_period_days"]))
        self._reports: collections.OrderedDict[str, bytes] = collections.OrderedDict()

    def truth_rows_snapshot(self) -> list[dict]:
        """A copy of the truth rows so far (safe from any thread)."""
        with self._lock:
            return list(self.truth_rows)

    # -- handset cache -----------------------------------------------------------------
    def learn(self, number: str, handset: str) -> None:
        self._learnt[number] = handset

    def is_cached(self, number: str) -> bool:
        return number in self._learnt or self.world.initially_cached(number)

    @property
    def cache(self) -> dict[str, str]:
        """Numbers the platform learnt a handset for while running (warm-start numbers excluded)."""
        return dict(self._learnt)

    # -- the API -----------------------------------------------------------------------
    def handle(self, params: dict, arrived_wall: float, arrived_loop: float) -> tuple[str, list[Sent | ApiFailure]]:
        """Accept a sendSavedMMS request: ``(mms_id, [Sent or ApiFailure per number])``, or raise ApiFailure.

        A single number's refusal is raised (the whole call failed); among
        several numbers each refusal is returned in its place.
        """
        self._check_action(params.get("action", ""))
        key = self._check_key(params)
        account = self.account
        self._check_limits()
        mms_id = params.get("mmsid", "")
        if not mms_id:
            raise ApiFailure("E620")
        to_field = params.get("to", "")
        if not to_field:
            raise ApiFailure("E621")
        numbers = [n.strip() for n in to_field.split(",")]
        if len(numbers) > MAX_RECIPIENTS:
            raise ApiFailure("E623")
        sender = params.get("from", "")
        if sender not in account.shortcodes:
            raise ApiFailure("E111")
        if key == account.billing_problem_key:
            raise ApiFailure("E713")
        self._check_mms(mms_id)
        ddm = self._ddm(params)
        subscribers = self._campaign(params.get("campaignref", ""))
        self._check_operator(params.get("operatorid", ""))
        checked: list = []
        for number in numbers:
            try:
                checked.append(self._check_number(number, subscribers))
            except ApiFailure as refusal:
                if len(numbers) == 1:
                    raise
                checked.append(refusal)
        requested_at = datetime.fromtimestamp(arrived_wall, timezone.utc)
        outcomes = [item if isinstance(item, ApiFailure)
                    else self._accept(item, mms_id, sender, ddm, requested_at, arrived_loop) for item in checked]
        return mms_id, outcomes

    def _check_limits(self) -> None:
        refused = self._limiter.admit(time.monotonic())
        if refused == TOTAL:
            raise ApiFailure("E120")
        if refused == MIN_INTERVAL:
            raise ApiFailure("E106", interval=self._limiter.min_interval_s)
        if refused == PER_SECOND:
            raise ApiFailure("E113")

    @staticmethod
    def is_statistics(params: dict) -> bool:
        """Whether the request is a getSendingStatistics call."""
        return params.get("action", "").strip().lower() in STATISTICS_ACTIONS

    @staticmethod
    def _check_action(action: str) -> None:
        name = action.strip().lower()
        if not name or name not in API_ACTIONS | STATISTICS_ACTIONS:
            raise ApiFailure("E101")
        if name != "sendsavedmms":
            raise ApiFailure("E107")

    # -- getSendingStatistics ----------------------------------------------------------
    def sending_statistics(self, params: dict, arrived_wall: float, base_url: str) -> str:
        """Check a getSendingStatistics call and make its report; return the report's URL, or raise ApiFailure.

        Safe on any thread (the app calls it on a worker thread, so a large
        report never holds up the postbacks): the truth rows and the kept
        reports are read and written under the platform's lock, and the rate
        limiters are thread-safe.
        """
        if not self.is_statistics(params):
            raise ApiFailure("E101")
        self._check_key(params)
        self._check_limits()
        start, end, code = parse_period(params.get("start_date", ""), params.get("end_date", ""))
        if code is not None:
            raise ApiFailure(code)
        if end - start > self._max_period:
            raise ApiFailure("E509")
        if self._lookups.admit(time.monotonic()) is not None:
            raise ApiFailure("E510")
        now = datetime.fromtimestamp(arrived_wall, timezone.utc)
        with self._lock:
            rows = list(self.truth_rows)
            failed = dict(self._ddm_failed_at)
        body = report_xml(rows, start, end, now=now, time_scale=self.dispatcher.time_scale, ddm_failed_at=failed)
        token = secrets.token_urlsafe(16)
        with self._lock:
            self._reports[token] = body
            while len(self._reports) > KEPT_REPORTS:
                self._reports.popitem(last=False)
        return f"{base_url}{REPORTS_PATH}{token}.xml"

    def report_file(self, path: str) -> bytes | None:
        """The report served at ``path`` (``/reports/<token>.xml``), or None."""
        name = path[len(REPORTS_PATH):] if path.startswith(REPORTS_PATH) else ""
        with self._lock:
            return self._reports.get(name.removesuffix(".xml")) if name.endswith(".xml") else None

    def _check_key(self, params: dict) -> str:
        account = self.account
        key = params.get("api_key", "")
        if not key:
            if params.get("user") and not params.get("pass"):
                raise ApiFailure("E103")
            if params.get("user"):
                raise ApiFailure("E104")  # the sandbox has no users
            raise ApiFailure("E102")
        if key not in (account.api_key, account.billing_problem_key, account.no_rights_key):
            raise ApiFailure("E104")
        if key == account.no_rights_key:
            raise ApiFailure("E105")
        return key

    def _check_mms(self, mms_id: str) -> None:
        account = self.account
        if not (mms_id.isascii() and mms_id.isdigit()):
            raise ApiFailure("E625")
        if mms_id in account.encoding_mms_ids:
            raise ApiFailure("E626")
        if mms_id in account.unsupported_mms_ids:
            raise ApiFailure("E629")
        if mms_id not in account.mms_ids:
            raise ApiFailure("E241")

    @staticmethod
    def _ddm(params: dict) -> DDM | None:
        text = params.get("ddmtext", "")
        if not text:
            return None  # "the DDM settings are not included" without DDMTEXT
        timeout = params.get("ddmtimeout", "")
        # digits only, and at most the documented maximum (checked on the text
        # first: a huge number must not reach int() or the simulation)
        if timeout and not (timeout.isascii() and timeout.isdigit() and len(timeout) <= 12
                            and int(timeout) <= MAX_DDM_TIMEOUT_MIN):
            raise ApiFailure("E100")
        force = params.get("ddmforce", "").lower()
        if force not in _TRUE | _FALSE:
            raise ApiFailure("E100")
        return DDM(text, params.get("ddmtitle") or None, int(timeout) if timeout else None, force in _TRUE)

    def _campaign(self, campaign: str) -> frozenset | None:
        """The campaign's subscribers (None: anyone may receive); E714 for an unknown campaign."""
        if not campaign:
            return None
        if campaign not in self.account.campaigns:
            raise ApiFailure("E714")
        return self.account.campaigns[campaign]

    def _check_operator(self, operator: str) -> None:
        if not operator:
            return
        if operator in self.account.unsupported_operator_ids:
            raise ApiFailure("E628")
        if operator not in self.account.operator_ids:
            raise ApiFailure("E651")

    def _check_number(self, number: str, subscribers: frozenset | None):
        profile = self.world.profile(number) if number else None
        if profile is None:
            raise ApiFailure("E110", number)
        if number in self.account.blacklisted:
            raise ApiFailure("E114", number)
        if subscribers is not None and number not in subscribers:
            raise ApiFailure("E715", number)
        if not profile.supported:
            raise ApiFailure("E628", number)
        return profile

    def _accept(self, profile, mms_id, sender, ddm, requested_at, arrived_loop) -> Sent:
        n = self._next_tracking
        self._next_tracking += 1
        tracking_id = base64.b64encode(f"MMS_{n}".encode()).decode("ascii")
        used_sender = self.account.sender_for(sender, profile.country)
        number = profile.number
        simulation = self.world.simulate_send(
            number, tracking_id=tracking_id, mms_id=mms_id, sender=used_sender, requested_at=requested_at,
            ddm=ddm, cached=self.is_cached(number), send_index=self._send_counts[number],
        )
        self._send_counts[number] += 1
        ddm_failure = [note.at for note in simulation.notifications if note.code in (ref.E501, ref.E502)]
        with self._lock:
            self.truth_rows.append(simulation.truth)
            if ddm_failure:
                self._ddm_failed_at[tracking_id] = ddm_failure[0]
        self.dispatcher.schedule(simulation, arrived_loop)
        return Sent(tracking_id, number, used_sender)
