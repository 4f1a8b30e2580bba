"""Rate limits: how often calls may start, on either side of the API.

:class:`RateLimiter` holds the limits the Skycore documentation describes
for an account — a minimum interval between calls (E106 "you can call API
every X seconds"), a number of calls per second (E113, throughput) and a
number of calls in all (E120, the account's request limit) — and answers
the one question both sides ask: may a call start now, and if not, which
limit refuses it and when will it be allowed?

* The client paces its own requests with :meth:`RateLimiter.wait`
  (``send_batch(max_rate_per_s=…)``: a minimum interval of ``1/rate``).
* The sandbox refuses calls over its account's limits with
  :meth:`RateLimiter.admit`, answering the documented error code.

Thread-safe: one limiter may be shared by the threads of a batch.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable

from .exceptions import SkycoreValidationError

__all__ = ["RateLimiter", "MIN_INTERVAL", "PER_SECOND", "TOTAL"]

#: Names of the limits, as :meth:`RateLimiter.admit` reports the one that refused.
MIN_INTERVAL, PER_SECOND, TOTAL = "min_interval_s", "per_second", "total"


class RateLimiter:
    """Limits on when calls may start.

    Parameters
    ----------
    min_interval_s : float, optional
        Least time between the starts of two calls.
    per_second : int, optional
        Most calls starting within any one second.
    total : int, optional
        Most calls in the limiter's lifetime.
    clock : callable, optional
        Monotonic seconds; default :func:`time.monotonic`.

    Examples
    --------
    >>> limiter = RateLimiter(min_interval_s=0.5)
    >>> limiter.admit(now=10.0), limiter.admit(now=10.2), limiter.admit(now=10.5)
    (None, 'min_interval_s', None)
    """

    def __init__(
        self,
        min_interval_s: float | None = None,
        per_second: int | None = None,
        total: int | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ):
        for name, value in ((MIN_INTERVAL, min_interval_s), (PER_SECOND, per_second), (TOTAL, total)):
            if value is not None and not (isinstance(value, (int, float)) and value >= 0):
                raise SkycoreValidationError(name, f"must be a non-negative number or None, got {value!r}")
        self.min_interval_s = min_interval_s or None
        self.per_second = per_second
        self.total = total
        self._clock = clock
        self._lock = threading.Lock()
        self._next = float("-inf")  # earliest start allowed by the interval
        self._window: collections.deque[float] = collections.deque()
        self.calls = 0

    @classmethod
    def per_second_rate(cls, rate: float | None) -> RateLimiter:
        """A limiter spacing starts at least ``1/rate`` seconds apart (no limit for None)."""
        if rate is not None and not (isinstance(rate, (int, float)) and rate > 0):
            raise SkycoreValidationError("max_rate_per_s", f"must be positive, got {rate!r}")
        return cls(min_interval_s=1.0 / rate if rate else None)

    def _refusal(self, now: float) -> tuple[str | None, float]:
        """Which limit refuses a start at ``now`` (None: none) and when it would allow it."""
        if self.total is not None and self.calls >= self.total:
            return TOTAL, float("inf")
        if self.min_interval_s is not None and now < self._next:
            return MIN_INTERVAL, self._next
        if self.per_second is not None:
            while self._window and now - self._window[0] >= 1.0:
                self._window.popleft()
            if len(self._window) >= self.per_second:
                return PER_SECOND, self._window[0] + 1.0
        return None, now

    def _record(self, now: float) -> None:
        self.calls += 1
        if self.min_interval_s is not None:
            self._next = now + self.min_interval_s
        if self.per_second is not None:
            self._window.append(now)

    def admit(self, now: float | None = None) -> str | None:
        """Start a call now if every limit allows it (and count it); else the name of the limit that refuses.

        A refused call is not counted.
        """
        with self._lock:
            now = self._clock() if now is None else now
            refused, _ = self._refusal(now)
            if refused is None:
                self._record(now)
            return refused

    def wait(self) -> None:
        """Block until a call may start, then count it.

        Raises :class:`~skycore_lab.SkycoreValidationError` when the ``total``
        limit is used up (waiting would never end).
        """
        while True:
            with self._lock:
                now = self._clock()
                refused, allowed_at = self._refusal(now)
                if refused is None:
                    self._record(now)
                    return
                if refused == TOTAL:
                    raise SkycoreValidationError(TOTAL, f"all {self.total} calls of this limiter are used up")
                delay = allowed_at - now
            time.sleep(max(0.0, delay))
