"""The :class:`Sandbox`: a local HTTP server that behaves like the Skycore platform."""

from __future__ import annotations

import time

from ..redaction import mask_secret
from ..exceptions import SkycoreValidationError
from ..server import ServerThread
from .account import Account, make_account
from .app import ENDPOINT_PATH, SandboxApp
from .dispatcher import Dispatcher
from .platform import Platform
from .scenario import Scenario
from .model import truth_frame
from .world import World

__all__ = ["Sandbox"]

# wait_idle's grace beyond the last due post: thread scheduling on a busy machine
_IDLE_GRACE_S = 5.0


class Sandbox:
    """A local Skycore platform: ``sendSavedMMS`` over real HTTP, postbacks in scaled time, and
    ``getSendingStatistics`` answered from its ground truth (:mod:`skycore_lab.sandbox.report`).

    >>> with Sandbox(seed=0, postback_url=receiver.url) as sb:        # doctest: +SKIP
    ...     client = sb.client()                                      # never production for the send guard
    ...     client.send_saved_mms(sb.mms_ids[0], "17743199144", sb.shortcodes[0])
    ...     sb.wait_idle()
    ...     truth = sb.truth()
    ...     report = client.sending_statistics(start, end)            # the platform's own report of it

    Parameters
    ----------
    seed : int
        Fixes the API key, tracking ids, every number's carrier and handset,
        and the random draws of each send (given the same sequence of sends).
    time_scale : float
        Simulated seconds per real second: 60 means one simulated minute per
        real second. Each send is anchored at its real arrival time ``t0``;
        an event ``d`` simulated seconds later is POSTed at real time
        ``t0 + d / time_scale`` and stamped ``t0 + d`` (so its TIMESTAMP may
        lie in the future at high scales: client and postbacks share one clock).
    postback_url : str, optional
        Where notifications are POSTed; None simulates without posting.
    scenario : Scenario, dict or path of a JSON file, optional
        The world (see :mod:`skycore_lab.sandbox.scenario`); defaults are realistic.
    port : int
        0 picks a free port.
    host : str
        Interface; loopback unless you mean otherwise.
    account : Account, optional
        The platform's account (keys, shortcodes, saved MMS, campaigns);
        default :func:`~skycore_lab.sandbox.account.make_account` of ``seed``.
        Give one to replay documented examples with their own key and ids.

    Attributes
    ----------
    url : str
        The API endpoint, ``http://127.0.0.1:<port>/API/wxml/1.3/index.php``.
    api_key : str
        The account's working key (masked in ``repr``; never logged).
    account : Account
        Keys, shortcodes, saved MMS, campaigns: which input yields which error.
    shortcodes, mms_ids : tuple of str
        Allowed shortcodes and ready saved MMS ids.
    world : World
        The pure world model (profiles, :meth:`World.simulate_population`).
    """

    def __init__(self, seed: int = 0, time_scale: float = 60.0, postback_url: str | None = None,
                 scenario: Scenario | dict | str | None = None, port: int = 0, host: str = "127.0.0.1",
                 account: Account | None = None):
        if not time_scale or time_scale <= 0:
            raise SkycoreValidationError("time_scale", f"must be positive, got {time_scale!r}")
        self.seed = int(seed)
        self.time_scale = float(time_scale)
        self.postback_url = postback_url
        self.scenario = Scenario.coerce(scenario)
        self.world = World(self.scenario, self.seed)
        if account is not None and not isinstance(account, Account):
            raise SkycoreValidationError("account", f"expected a skycore_lab.sandbox.Account, got {type(account).__name__}")
        self.account: Account = account if account is not None else make_account(self.seed)
        self._dispatcher = Dispatcher(postback_url, self.scenario["postback"], self.time_scale, self.seed,
                                      learn=lambda number, handset: self._platform.learn(number, handset))
        self._platform = Platform(self.world, self.account, self._dispatcher, self.seed)
        self._server = ServerThread(SandboxApp(self._platform), host=host, port=port, name="skycore-sandbox")
        self._started = False

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> Sandbox:
        """Start serving (returns self)."""
        if not self._started:
            self._server.start()
            self._started = True
        return self

    def close(self) -> None:
        """Stop posting and serving. Notifications not yet posted are dropped: call :meth:`wait_idle` first."""
        if not self._started:
            return
        if self._server.running:
            self._dispatcher.close_from(timeout=10)
        self._server.stop()
        self._started = False

    def serve_forever(self) -> None:
        """Block until Ctrl-C (for the command line), then close."""
        self.start()
        try:
            self._server.serve_forever()
        finally:
            self.close()

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __repr__(self) -> str:
        where = self.url if self._started else "not started"
        return (f"Sandbox({where}, seed={self.seed}, time_scale={self.time_scale:g}, "
                f"api_key={mask_secret(self.api_key)!r}, postback_url={self.postback_url!r})")

    # -- account -----------------------------------------------------------------------
    @property
    def url(self) -> str:
        return self._server.base_url + ENDPOINT_PATH

    @property
    def api_key(self) -> str:
        return self.account.api_key

    @property
    def shortcodes(self) -> tuple[str, ...]:
        return self.account.shortcodes

    @property
    def mms_ids(self) -> tuple[str, ...]:
        return self.account.mms_ids

    def client(self, **kwargs):
        """A :class:`~skycore_lab.SkycoreClient` of this sandbox: its URL and key, never production.

        ``kwargs`` go to the client (``method``, ``allowed_numbers`` …). A
        client made here is not production for the send guard whatever the
        sandbox's host (:mod:`skycore_lab.guard`).
        """
        from ..client import SkycoreClient

        kwargs.setdefault("production", False)
        return SkycoreClient(self.api_key, self.url, **kwargs)

    # -- postbacks ---------------------------------------------------------------------
    @property
    def pending_postbacks(self) -> int:
        """Notifications (copies) scheduled but not yet posted or given up."""
        return self._dispatcher.pending

    @property
    def postbacks_posted(self) -> int:
        """Postbacks the receiver accepted (HTTP 200)."""
        return self._dispatcher.posted

    @property
    def postbacks_failed(self) -> int:
        """Postbacks given up after the last retry."""
        return self._dispatcher.failed

    @property
    def postback_retries(self) -> int:
        return self._dispatcher.retries

    @property
    def lost_postbacks(self):
        """The notifications given up after their last retry (the receiver never took them).

        Returns
        -------
        pandas.DataFrame
            One row per lost notification, in the order they were given up:
            ``tracking_id``, ``code`` (``N101``, ``N102`` …).
        """
        import pandas as pd

        from .. import columns as col

        lost = list(self._dispatcher.given_up)
        return pd.DataFrame(lost, columns=[col.TRACKING_ID, col.CODE], dtype="str")

    @property
    def handset_cache(self) -> dict[str, str]:
        """Number → handset the platform learnt while running (from N502 and N102)."""
        return self._platform.cache

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until every scheduled notification was posted or given up; False on time-out.

        Always bounded: besides ``timeout``, it gives up (returning False) once
        every notification scheduled so far is due and its retries are spent
        (:meth:`idle_deadline_s`, plus a few seconds' grace). Every message's
        life is bounded by validated inputs — DDMTIMEOUT at most
        :data:`~skycore_lab.reference.MAX_DDM_TIMEOUT_MIN`, ``expiry_s`` and
        ``ddm.report_horizon_s`` at most 30 days, then at most ``max_retries``
        retries — so that is at most about ``(DDMTIMEOUT × 60 +
        report_horizon + expiry + retries × retry_delay) / time_scale`` real
        seconds after the last send.
        """
        started = time.monotonic()
        deadline = None if timeout is None else started + timeout
        while self._dispatcher.pending > 0:
            now = time.monotonic()
            idle_by = self._dispatcher.idle_by  # re-read: sends made meanwhile extend it
            bound = max(started if idle_by is None else idle_by, started) + _IDLE_GRACE_S
            if (deadline is not None and now >= deadline) or now >= bound:
                return False
            time.sleep(0.02)
        return True

    def idle_deadline_s(self) -> float | None:
        """Real seconds from now until every notification scheduled so far is due and its
        retries are spent (negative once passed); None before the first send."""
        idle_by = self._dispatcher.idle_by
        return None if idle_by is None else idle_by - time.monotonic()

    # -- ground truth ------------------------------------------------------------------
    def truth(self):
        """The ground truth, one row per accepted send (per tracking id), in send order.

        Returns
        -------
        pandas.DataFrame
            Columns :data:`skycore_lab.columns.TRUTH_COLUMNS`:

            =================  ==============================================================
            tracking_id        the send's tracking id
            to, mms_id         recipient and saved MMS
            sender             shortcode actually used (country default may replace it)
            country, carrier   the number's country and (hidden) carrier
            spid               the carrier's 7-digit SPID
            true_handset       the number's hidden handset
            cached_before      handset cache held the number when the request arrived
            ddm_requested      the request carried DDM settings (DDMTEXT)
            ddm_timeout_min    DDMTIMEOUT applied (default filled in); NaN without DDM
            ddm                none (no N501) / sent (N501, no report) / delivered (N502)
                               / failed (E501 or E502), as the postbacks show it
            ddm_sent_at        N501 time; ddm_delivered_at N502 time (NaT if none)
            transcoded         content went out as MMS with the handset's own settings
            sent_as            "MMS" or "SMS" (SMS-link fallback); missing after E101
            requested_at       the request's arrival at the sandbox (UTC, µs)
            sent_at            N101 TIMESTAMP
            true_outcome       what really happened (a carrier without receipts still delivers)
            true_delivered_at  when it really was delivered
            receipt            the carrier sends delivery receipts
            outcome            what the postbacks will report (one of columns.OUTCOMES;
                               pending when no final notification will be posted)
            delivered_at       N102/N202 TIMESTAMP; failed_at: final E-code TIMESTAMP
            handset            handset the postbacks report (N102, else N502), else missing
            latency_s          delivered_at − sent_at in seconds (NaN if not delivered)
            =================  ==============================================================

            Times are tz-aware UTC, whole seconds like the TIMESTAMPs they match.
        """
        return truth_frame(self._platform.truth_rows_snapshot())
