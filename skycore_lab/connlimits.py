"""Limits that hold before any request reaches the application: timeouts, header size, connection cap.

uvicorn (0.30 and later) with httptools reads a request's headers for as
long as the client cares to send them, as large as they come, and accepts
every connection the kernel hands it. A hostile client needs no token to
hurt a server like that: one byte every few seconds keeps a connection (and
a file descriptor) forever, a few hundred such connections exhaust the
descriptors, and one endless header line eats memory. :class:`ConnectionLimits`
closes those doors at the protocol level, before the ASGI app (and its
token check) ever runs:

=============================  ============  ====================================================
limit                          default       when it is exceeded
=============================  ============  ====================================================
``header_timeout_s``           10 s          request line and headers not complete that long
                                             after the connection opened (first request) or the
                                             request's first byte (later ones): ``408``, closed
``body_timeout_s``             20 s          body not complete that long after its headers:
                                             ``408`` (or just closed if an answer was already
                                             sent); the app sees a disconnect, nothing is stored
``max_header_bytes``           16 KiB        request line + headers larger: ``431``, closed; not
                                             read further (memory stays bounded)
``max_connections``            1000 [#]_     more connections open at once: the new one gets
                                             ``503`` and is closed at once; a log line (the first,
                                             then at most one every 10 s, with a count)
``keepalive_timeout_s``        15 s          idle between two requests of one connection: closed
``max_requests_per_connection`` 1000         the answer to the last one says ``Connection: close``
=============================  ============  ====================================================

.. [#] or the open-file limit minus :data:`FD_RESERVE`, if that is lower.

The timeouts are totals, not idle times: a client that sends one byte every
second still runs out of time after ``header_timeout_s``. The platform itself
gives up on a postback not answered within 10 s, so no legitimate request
needs longer. ``max_connections`` is also kept below the process's open-file
limit (``RLIMIT_NOFILE`` soft limit minus :data:`FD_RESERVE` for the logs,
the event loop and the rest of the process), so accepting never fails with
"too many open files"; :attr:`ConnectionStats.max_connections` is the cap in
force. Left at None (the default) it is :data:`DEFAULT_MAX_CONNECTIONS` or
what the limit allows, silently (the usual ``ulimit -n`` of 1024 allows
960); a value asked for explicitly and lowered that way is logged as a
warning. The library never raises the process's limit itself (``ulimit -n``
is the operator's call).

What each limit did is counted in :class:`ConnectionStats` (the receiver's
``/health`` shows it). The protocol is a subclass of uvicorn's httptools
protocol (:func:`limited_protocol`); ``tests/test_receiver_limits.py`` holds
each limit against hostile clients on real sockets.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field, fields

from .exceptions import SkycoreValidationError

__all__ = [
    "ConnectionLimits",
    "ConnectionStats",
    "DEFAULT_MAX_CONNECTIONS",
    "FD_RESERVE",
    "fd_limit",
    "limited_protocol",
]

logger = logging.getLogger(__name__)

#: File descriptors kept free of connections for the rest of the process.
FD_RESERVE = 64
#: The connection cap when none is given (lowered to the open-file limit minus FD_RESERVE).
DEFAULT_MAX_CONNECTIONS = 1000
_CAP_LOG_INTERVAL_S = 10.0


@dataclass(frozen=True)
class ConnectionLimits:
    """Per-connection limits of a server (see the module docstring for what each does).

    Parameters
    ----------
    header_timeout_s : float, default 10
        Longest time to receive a request line and its headers, in seconds.
    body_timeout_s : float, default 20
        Longest time to receive a body after its headers, in seconds.
    max_header_bytes : int, default 16384
        Largest request line + headers, in bytes (431 beyond).
    max_connections : int or None, default None
        Most connections open at once; None: :data:`DEFAULT_MAX_CONNECTIONS`.
        Either way kept under the open-file limit (see the module docstring).
    keepalive_timeout_s : float, default 15
        Longest idle time between two requests on one connection, in seconds.
    max_requests_per_connection : int, default 1000
        Requests served on one connection before it is closed.

    Raises
    ------
    SkycoreValidationError
        A limit that is not a positive number (an integer for the counts).
    """

    header_timeout_s: float = 10.0
    body_timeout_s: float = 20.0
    max_header_bytes: int = 16 * 1024
    max_connections: int | None = None
    keepalive_timeout_s: float = 15.0
    max_requests_per_connection: int = 1000

    def __post_init__(self):
        for item in fields(self):
            value = getattr(self, item.name)
            if value is None and item.name == "max_connections":
                continue
            if item.type.startswith("int"):
                ok = isinstance(value, int) and not isinstance(value, bool) and value > 0
                kind = "a positive integer"
            else:
                ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0
                kind = "a positive number of seconds"
            if not ok:
                raise SkycoreValidationError(item.name, f"must be {kind}, not {value!r}")


@dataclass
class ConnectionStats:
    """What the limits did since the server started (plain ints, updated on the event loop).

    Attributes
    ----------
    max_connections : int
        The connection cap in force (``max_connections``, or less under a low open-file limit).
    open_connections, peak_connections : int
        Connections open now, and the most at once.
    refused_connections : int
        Connections closed at once because the cap was reached (503).
    header_timeouts, body_timeouts : int
        Requests cut off by ``header_timeout_s`` / ``body_timeout_s`` (408).
    headers_too_large : int
        Requests cut off by ``max_header_bytes`` (431).
    """

    max_connections: int = 0
    open_connections: int = 0
    peak_connections: int = 0
    refused_connections: int = 0
    header_timeouts: int = 0
    body_timeouts: int = 0
    headers_too_large: int = 0
    _refusals_unlogged: int = field(default=0, repr=False)
    _refusal_logged_at: float = field(default=-math.inf, repr=False)

    def as_dict(self) -> dict[str, int]:
        """The public counters, for a health report."""
        return {item.name: getattr(self, item.name) for item in fields(self) if not item.name.startswith("_")}


def fd_limit() -> int | None:
    """The process's soft open-file limit (``RLIMIT_NOFILE``), or None when unlimited or unknown."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not on POSIX
        return None
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return None if soft == resource.RLIM_INFINITY else int(soft)


def _effective_cap(requested: int | None) -> int:
    wanted = DEFAULT_MAX_CONNECTIONS if requested is None else requested
    limit = fd_limit()
    if limit is None:
        return wanted
    cap = max(1, min(wanted, limit - FD_RESERVE))
    if cap < wanted and requested is not None:
        logger.warning(
            "max_connections lowered from %d to %d: the open-file limit (ulimit -n) is %d and %d descriptors "
            "are kept for the rest of the process",
            requested, cap, limit, FD_RESERVE,
        )  # fmt: skip
    return cap


def _response(status: int, reason: str, body: bytes, extra: bytes = b"") -> bytes:
    return (
        b"HTTP/1.1 %d %s\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: %d\r\n%sconnection: close\r\n\r\n%s"
        % (status, reason.encode("ascii"), len(body), extra, body)
    )


_REQUEST_TIMEOUT = _response(408, "Request Timeout", b"request not received in time\n")
_HEADERS_TOO_LARGE = _response(431, "Request Header Fields Too Large", b"request headers too large\n")
_TOO_MANY_CONNECTIONS = _response(503, "Service Unavailable", b"too many connections\n", b"retry-after: 5\r\n")


def _sweep_interval(limits: ConnectionLimits) -> float:
    """Seconds between two deadline sweeps: a fifth of the shortest timeout, at most 1 s."""
    return min(1.0, max(0.02, min(limits.header_timeout_s, limits.body_timeout_s) / 5))


def limited_protocol(limits: ConnectionLimits, stats: ConnectionStats, name: str = "server"):
    """A uvicorn httptools protocol class that enforces ``limits`` and counts in ``stats``.

    Pass it as :class:`uvicorn.Config`'s ``http`` (``ServerThread(limits=…)``
    does), together with ``timeout_keep_alive=limits.keepalive_timeout_s``.
    Sets ``stats.max_connections`` to the cap in force.

    The header and body timeouts are deadlines stored on each connection and
    checked by one sweep over all connections a few times per timeout (at
    most every second), not a timer per request: a timer armed and cancelled
    twice per request cost about a quarter of the receiver's CPU per postback
    (``benchmarks/README.md``). So a deadline is enforced up to one sweep
    interval late (≤ 1 s with the defaults).

    Raises
    ------
    ImportError
        httptools is missing (``pip install 'uvicorn[standard]'``).
    """
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    cap = _effective_cap(limits.max_connections)
    stats.max_connections = cap
    interval = _sweep_interval(limits)
    live: set = set()  # this server's open, limited connections
    sweeping: list = []  # the sweep's timer handle, once started (one per event loop)

    def sweep(loop) -> None:
        now = loop.time()
        for protocol in [p for p in live if p._deadline is not None and now >= p._deadline]:
            protocol._expire()
        sweeping[:] = [loop.call_later(interval, sweep, loop)]

    class LimitedHttpToolsProtocol(HttpToolsProtocol):
        """uvicorn's httptools protocol with :class:`ConnectionLimits` (see :mod:`skycore_lab.connlimits`)."""

        def connection_made(self, transport) -> None:
            self._refused = False
            self._deadline = None  # loop.time() by which the current phase must be over
            self._in_body = False  # the phase: headers (False) or body (True)
            self._reading_headers = True
            self._header_bytes = 0
            self._requests = 0
            if len(self.connections) >= cap:
                self._refuse(transport)
                return
            super().connection_made(transport)
            live.add(self)
            stats.open_connections = len(self.connections)
            stats.peak_connections = max(stats.peak_connections, stats.open_connections)
            self._deadline = self.loop.time() + limits.header_timeout_s
            if not sweeping:
                sweeping.append(self.loop.call_later(interval, sweep, self.loop))

        def _refuse(self, transport) -> None:
            self._refused = True
            self.transport = transport
            stats.refused_connections += 1
            now = time.monotonic()
            if now - stats._refusal_logged_at >= _CAP_LOG_INTERVAL_S:
                peer = transport.get_extra_info("peername")
                more = f"; {stats._refusals_unlogged} more refused since the last report" if stats._refusals_unlogged else ""
                logger.warning(
                    "%s: %d connections open, the cap (max_connections=%d): refusing the connection from %s%s",
                    name, len(self.connections), cap, peer, more,
                )  # fmt: skip
                stats._refusal_logged_at, stats._refusals_unlogged = now, 0
            else:
                stats._refusals_unlogged += 1
            transport.write(_TOO_MANY_CONNECTIONS)
            transport.close()

        def connection_lost(self, exc) -> None:
            self._deadline = None
            if self._refused:
                return
            live.discard(self)
            super().connection_lost(exc)
            stats.open_connections = len(self.connections)

        def data_received(self, data: bytes) -> None:
            if self._refused or self.transport.is_closing():
                return
            if self._reading_headers:
                self._header_bytes += len(data)
            super().data_received(data)
            if self._reading_headers and self._header_bytes > limits.max_header_bytes and not self.transport.is_closing():
                stats.headers_too_large += 1
                self._abort(_HEADERS_TOO_LARGE if self._between_responses() else None)

        def _between_responses(self) -> bool:
            """No answer in progress: one written now cannot cut into another (pipelining)."""
            return self.cycle is None or self.cycle.response_complete

        def _abort(self, response: bytes | None) -> None:
            self._deadline = None
            if response is not None:
                self.transport.write(response)
            self.transport.close()

        def _unsupported_upgrade_warning(self) -> None:
            # uvicorn logs two warnings per request asking for a WebSocket the server does
            # not serve: a way for anyone to fill the log. The request is answered as plain
            # HTTP (the app refuses it) and needs no log line.
            pass

        # -- parser callbacks: each moves the deadline (no timer per request) -------------------
        def on_message_begin(self) -> None:
            super().on_message_begin()
            if self._deadline is None:  # the first request's deadline runs from the connection
                self._in_body = False
                self._deadline = self.loop.time() + limits.header_timeout_s

        def on_headers_complete(self) -> None:
            self._reading_headers = False
            super().on_headers_complete()
            self._requests += 1
            if self._requests >= limits.max_requests_per_connection and self.cycle is not None:
                self.cycle.keep_alive = False
            self._in_body = True
            self._deadline = self.loop.time() + limits.body_timeout_s

        def on_message_complete(self) -> None:
            super().on_message_complete()
            self._deadline = None
            self._reading_headers = True
            self._header_bytes = 0

        # -- deadlines ----------------------------------------------------------------------------
        def _expire(self) -> None:
            """Called by the sweep once the current phase's deadline has passed."""
            self._deadline = None
            if self.transport.is_closing():
                return
            if self._in_body:
                stats.body_timeouts += 1
                answered = self.cycle is not None and self.cycle.response_started
                self._abort(None if answered else _REQUEST_TIMEOUT)
            else:
                stats.header_timeouts += 1
                self._abort(_REQUEST_TIMEOUT if self._between_responses() else None)

    return LimitedHttpToolsProtocol
