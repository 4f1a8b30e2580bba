"""The sandbox's platform logic: checks a request, accepts sends, keeps the truth.

Order of checks (first failure wins): ``action`` (E101 missing, E107 other
action), API key (E104 unknown, E105 no API rights), throttling when the
scenario sets ``rate_limit`` (E113, E106, E120), ``mmsid`` (E620), ``to``
(E621, E623 beyond 100 numbers), ``from`` (E111), billing (E713), the saved
MMS (E625 not numeric, E626 encoding, E629 unrecognised content, E241
unknown), DDM fields (E100), then per number: E110 invalid, E114
blacklisted, E714/E715 campaign, E628/E651 operator.
"""

from __future__ import annotations

import base64
import collections
import hashlib
import threading
import time
from datetime import datetime, timezone

from ..client import DDM
from ..ratelimit import MIN_INTERVAL, PER_SECOND, TOTAL, RateLimiter
from .account import Account
from ..reference import MAX_RECIPIENTS
from .app import ApiFailure
from .dispatcher import Dispatcher
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
    def handle(self, params: dict, arrived_wall: float, arrived_loop: float) -> tuple[str, list[tuple[str, str, str]]]:
        """Accept a sendSavedMMS request: ``(mms_id, [(tracking_id, to, sender), ...])``, or raise ApiFailure."""
        action = params.get("action", "")
        if not action:
            raise ApiFailure("E101")
        if action.lower() != "sendsavedmms":
            raise ApiFailure("E107")
        key = params.get("api_key", "")
        account = self.account
        if key not in (account.api_key, account.billing_problem_key, account.no_rights_key):
            raise ApiFailure("E104")
        if key == account.no_rights_key:
            raise ApiFailure("E105")
        refused = self._limiter.admit(time.monotonic())
        if refused == TOTAL:
            raise ApiFailure("E120")
        if refused == MIN_INTERVAL:
            raise ApiFailure("E106", interval=self._limiter.min_interval_s)
        if refused == PER_SECOND:
            raise ApiFailure("E113")
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
        profiles = [self._check_number(number, params) for number in numbers]
        requested_at = datetime.fromtimestamp(arrived_wall, timezone.utc)
        accepted = []
        for profile in profiles:
            accepted.append(self._accept(profile, mms_id, sender, ddm, requested_at, arrived_loop))
        return mms_id, accepted

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
        if timeout and not (timeout.isascii() and timeout.isdigit()):
            raise ApiFailure("E100")
        force = params.get("ddmforce", "").lower()
        if force not in _TRUE | _FALSE:
            raise ApiFailure("E100")
        return DDM(text, params.get("ddmtitle") or None, int(timeout) if timeout else None, force in _TRUE)

    def _check_number(self, number: str, params: dict):
        account = self.account
        profile = self.world.profile(number) if number else None
        if profile is None:
            raise ApiFailure("E110", number or None)
        if number in account.blacklisted:
            raise ApiFailure("E114", number)
        campaign = params.get("campaignref", "")
        if campaign:
            if campaign not in account.campaigns:
                raise ApiFailure("E714", number)
            subscribers = account.campaigns[campaign]
            if subscribers is not None and number not in subscribers:
                raise ApiFailure("E715", number)
        operator = params.get("operatorid", "")
        if operator:
            if operator in account.unsupported_operator_ids:
                raise ApiFailure("E628", number)
            if operator not in account.operator_ids:
                raise ApiFailure("E651", number)
        if not profile.supported:
            raise ApiFailure("E628", number)
        return profile

    def _accept(self, profile, mms_id, sender, ddm, requested_at, arrived_loop) -> tuple[str, str, str]:
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
        with self._lock:
            self.truth_rows.append(simulation.truth)
        self.dispatcher.schedule(simulation, arrived_loop)
        return tracking_id, number, used_sender
