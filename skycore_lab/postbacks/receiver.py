"""The postback receiver: an HTTP server that stores every postback, raw.

The Skycore platform (or the sandbox) POSTs one XML ``<POSTBACK>`` per
notification to the account's postback URL and retries anything that is not
answered 200 within 10 s (five minutes later, at most 5 times). So the
receiver's one job is: never acknowledge what is not stored, and store
everything exactly as it came. Parsing happens on read
(:func:`skycore_lab.read_postbacks`), so a parser fix re-reads old logs
correctly.

Usage from a notebook::

    with PostbackReceiver("postbacks.log") as rx:
        print(rx.url)      # give this URL to the platform / the sandbox
        ...                # keep working: the server runs in a background thread
        rx.count           # postbacks stored since start

What the server answers
-----------------------
==========================================  ======  ===========================
request                                     status  stored
==========================================  ======  ===========================
POST a POSTBACK/NOTIFICATION document       200     log, after ``write()``
POST anything else                          400     reject log (see below)
POST a body over ``max_body`` bytes         413     nowhere (not read past limit)
token set, wrong/missing token or path      403     nowhere (body not read)
no token, unknown path                      404     nowhere
wrong method on a postback path             405     nowhere
headers or body too slow (before the app)   408     nowhere (connection closed)
headers over ``max_header_bytes``           431     nowhere (connection closed)
more than ``max_connections`` open          503     nowhere (connection closed)
``GET /health``                             200     JSON ``{"status", "count", …}``
``GET /health`` while writes fail           503     the same JSON, ``"status": "failing"``
disk refuses the write                      503     nothing acknowledged
==========================================  ======  ===========================

Answers whose body was not read (403, 404, 405, 413) close the connection.

Limits before the token check
-----------------------------
Header and body timeouts, a header size limit, a connection cap and
keep-alive limits hold before a request reaches the token check
(:class:`~skycore_lab.connlimits.ConnectionLimits`, defaults: headers within
10 s, body within 20 s, headers ≤ 16 KiB, ≤ 1000 connections, 15 s idle
keep-alive, 1000 requests per connection). ``/health`` counts what they did.

``/health``
-----------
JSON: ``status`` (``"ok"``; ``"failing"`` while the last write or fdatasync
failed, answered with 503 so a monitor notices), the request counters
(``count``, ``rejected``, ``too_large``, ``forbidden``, ``failed``),
``write_failures`` and ``last_error`` (the most recent write or rotation
error, kept after a recovery), ``sync_failures`` and ``sync_error``
(fdatasync), ``reopened`` (log found moved or deleted and opened again),
and the connection limits' counters under ``connections``. No path, no
token.

Tokens
------
A token is 1 to 256 characters of the URL-safe alphabet of RFC 3986's
unreserved characters, ``A–Z a–z 0–9 - . _ ~`` (what
``secrets.token_urlsafe`` produces), and not ``.`` or ``..``; anything else
(``?``, ``#``, ``%``, ``/``, spaces, non-ASCII …) is refused with a
:class:`~skycore_lab.exceptions.SkycoreValidationError`, because it would
need encoding in :attr:`PostbackReceiver.url` and a platform might not
decode it the same way.

The reject log is ``postbacks.rejects.log`` for ``postbacks.log`` (the stem,
``.rejects``, the extension), so the reader's glob ``postbacks.log*`` (live
log and rotated files) does not pick it up; for a log name without an
extension it is ``<log>.rejects``. It is never rotated (rejects are rare).

Postback paths: ``/postbacks`` and ``/`` without a token; with a token,
``/postbacks/<token>`` or ``/postbacks?token=<token>`` (also ``/?token=``).
``/health`` only reports counters, so it answers without the token.

Which bodies are postbacks (the cheap check on receive)
--------------------------------------------------------
No XML parse happens on receive. A body is accepted when, after an optional
UTF-8 byte-order mark, any mix of XML whitespace, processing instructions
(the ``<?xml …?>`` declaration) and comments, it opens the root element
``<POSTBACK`` or the legacy envelope ``<NOTIFICATION`` (case-sensitive, no
namespace prefix) followed by whitespace, ``>`` or ``/``. A body whose first
non-blank byte is not ``<`` is read as an ``application/x-www-form-urlencoded``
form (whatever its Content-Type says): its first ``xml`` field is URL-decoded
and checked by the same rule; the stored body stays form-encoded. So:
not-well-formed postbacks (the platform's docs have examples) are accepted and
reported by the reader; a DOCTYPE before the root, a UTF-16 body, a multipart
form or another root element is a 400 and kept in the reject log, never lost.

Durability (see :mod:`.logwriter` for the details)
---------------------------------------------------
A 200 is sent only after the record's bytes were handed to the OS with
``write()`` on the log (so ``kill -9`` of the receiver cannot lose an
acknowledged postback); fdatasync runs in a background thread at most 100 ms
or 100 records after a write, whichever comes first, for power loss.
The write happens on the event loop, not in a thread: a ``write()`` to the
page cache costs less than a thread hop. Records of requests
that complete in the same event-loop iteration are grouped into one
``write()`` (group commit: each request awaits a future that the flush
resolves, and only then answers): fewer syscalls, each of which releases
the GIL to the sync thread. ``benchmarks/bench_receiver.py --compare-plain``
measures it against one ``write()`` per request (figures in
``benchmarks/README.md``); ``group_commit=False`` keeps the simpler
per-request write.

The check is a possessive regular expression, linear in the body (no
backtracking, so a hostile 64 KiB prolog costs microseconds, not hours).

The ``remote`` field is the TCP peer as seen by the server: uvicorn's
``X-Forwarded-For`` handling is off, so no client can forge it.
"""

from __future__ import annotations

import asyncio
import errno
import hmac
import json
import logging
import numbers
import os
import re
import signal
import threading
import time
from collections.abc import Callable
from datetime import datetime
from urllib.parse import parse_qsl, unquote_to_bytes

from .logformat import encode_record, format_received_at
from .logwriter import ROTATE_MODES, LogWriter
from ..connlimits import ConnectionLimits, ConnectionStats
from ..exceptions import SkycoreStateError, SkycoreValidationError
from ..redaction import mask_secret
from ..server import ServerThread, is_loopback

__all__ = [
    "PostbackReceiver",
    "ReceiverApp",
    "token_matches",
    "is_postback_body",
    "default_rejects_path",
    "validate_token",
    "DEFAULT_MAX_BODY",
    "TOKEN_ALPHABET",
]

logger = logging.getLogger(__name__)

DEFAULT_MAX_BODY = 64 * 1024

#: Characters a token may hold: RFC 3986's unreserved characters (no encoding needed in a URL).
TOKEN_ALPHABET = "A-Z a-z 0-9 - . _ ~"
_TOKEN = re.compile(r"[A-Za-z0-9._~-]{1,256}")


def validate_token(token: str | None) -> str | None:
    """``token`` if it is None or a usable URL token; else raise SkycoreValidationError.

    A token is 1 to 256 characters of :data:`TOKEN_ALPHABET` (RFC 3986
    unreserved characters, as ``secrets.token_urlsafe`` makes), and not
    ``.`` or ``..`` (which clients fold away as path segments). The message
    never repeats the token.
    """
    if token is None:
        return None
    if not isinstance(token, str) or not _TOKEN.fullmatch(token) or token in (".", ".."):
        kind = type(token).__name__
        detail = f"{len(token)} characters" if isinstance(token, str) else f"a {kind}"
        raise SkycoreValidationError(
            "token",
            f"must be 1 to 256 characters of {TOKEN_ALPHABET} (URL-safe, e.g. secrets.token_urlsafe(24)), "
            f"not '.' or '..'; got {detail} outside that alphabet or length",
        )
    return token

# BOM, then whitespace / PIs / comments, then the root element's name. The
# possessive ``*+`` never backtracks into the prolog (a nested ``(\s+)*``
# would take exponential time on a long blank run: a ReDoS).
_POSTBACK_ROOT = re.compile(
    rb"(?:\xef\xbb\xbf)?(?:[ \t\r\n]|<\?.*?\?>|<!--.*?-->)*+<(?:POSTBACK|NOTIFICATION)[ \t\r\n/>]",
    re.DOTALL,
)


def is_postback_body(body: bytes) -> bool:
    """Whether ``body`` looks like a POSTBACK document, raw or in a form's ``xml`` field.

    The cheap check the receiver applies (no XML parse; the exact rule is in
    the module docstring). Used on receive only to decide 200 vs 400.
    """
    if _POSTBACK_ROOT.match(body):
        return True
    head = body.lstrip(b" \t\r\n")
    if head[:1] in (b"<", b"\xef"):
        return False
    for field in body.split(b"&"):
        name, sep, value = field.partition(b"=")
        if sep and unquote_to_bytes(name.replace(b"+", b" ")) == b"xml":
            return _POSTBACK_ROOT.match(unquote_to_bytes(value.replace(b"+", b" "))) is not None
    return False


def default_rejects_path(log: str | os.PathLike) -> str:
    """``postbacks.rejects.log`` for ``postbacks.log``; ``<log>.rejects`` when it has no extension."""
    root, ext = os.path.splitext(os.fspath(log))
    return f"{root}.rejects{ext}" if ext else f"{root}.rejects"


def token_matches(token: str | None, path: str, query_string: bytes | str = b"") -> bool:
    """Whether a request to ``path``/``query_string`` carries the receiver's token.

    A pure function (in the spirit of twilio-python's ``RequestValidator``):
    with ``token=None`` any postback path matches; otherwise the path must be
    ``/postbacks/<token>`` (trailing slash allowed), or ``/postbacks`` or ``/``
    with a ``token=<token>`` query parameter. Comparisons use
    :func:`hmac.compare_digest`, so timing does not leak the token.

    Parameters
    ----------
    token : str or None
        The receiver's secret.
    path : str
        The request path, percent-decoded (ASGI ``scope["path"]``).
    query_string : bytes or str
        The raw query string (ASGI ``scope["query_string"]``).
    """
    if token is None:
        return path in ("/", "/postbacks", "/postbacks/")
    expected = token.encode("utf-8")
    if path.startswith("/postbacks/"):
        given = path[len("/postbacks/") :]
        if given.endswith("/"):
            given = given[:-1]
        return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected)
    if path in ("/", "/postbacks", "/postbacks/") and query_string:
        if isinstance(query_string, bytes):
            query_string = query_string.decode("latin-1")
        for name, value in parse_qsl(query_string, keep_blank_values=True, encoding="utf-8", errors="replace"):
            if name == "token":
                return hmac.compare_digest(value.encode("utf-8"), expected)
    return False


def _response(status: int, body: bytes, content_type: bytes = b"text/plain; charset=utf-8", extra=()):
    start = {
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", content_type), (b"content-length", str(len(body)).encode()), *extra],
    }
    return start, {"type": "http.response.body", "body": body}


_OK = _response(200, b"OK\n")
_BAD = _response(400, b"not a POSTBACK document (kept in the reject log)\n")
# The body of these was not read: close, so a slow or endless body cannot hold the connection.
_CLOSE = (b"connection", b"close")
_FORBIDDEN = _response(403, b"forbidden\n", extra=[_CLOSE])
_NOT_FOUND = _response(404, b"not found\n", extra=[_CLOSE])
_NOT_ALLOWED_POST = _response(405, b"method not allowed\n", extra=[(b"allow", b"POST"), _CLOSE])
_NOT_ALLOWED_GET = _response(405, b"method not allowed\n", extra=[(b"allow", b"GET, HEAD"), _CLOSE])
_TOO_LARGE = _response(413, b"body too large\n", extra=[(b"connection", b"close")])
_UNAVAILABLE = _response(503, b"could not store the postback, retry later\n")


def _error_text(error: BaseException) -> str:
    """An error for /health: errno and strerror, never a path (paths say where the logs live)."""
    if isinstance(error, OSError) and error.strerror:
        name = errno.errorcode.get(error.errno, str(error.errno))
        return f"{name}: {error.strerror}"
    return type(error).__name__


class _FastClock:
    """``received_at`` text for now, UTC, without a datetime per request."""

    def __init__(self):
        self._second = -1
        self._prefix = ""

    def __call__(self) -> str:
        second, nanos = divmod(time.time_ns(), 1_000_000_000)
        if second != self._second:
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = second
        return f"{self._prefix}.{nanos // 1000:06d}Z"


class ReceiverApp:
    """The receiver's ASGI application (a plain callable, no framework).

    Usually created by :class:`PostbackReceiver`; usable with any ASGI server.
    Counters are plain ints updated on the event loop and readable from any
    thread.
    """

    def __init__(
        self,
        log: LogWriter,
        rejects: LogWriter,
        *,
        token: str | None = None,
        max_body: int = DEFAULT_MAX_BODY,
        clock: Callable[[], datetime] | None = None,
        group_commit: bool = True,
        connection_stats: ConnectionStats | None = None,
    ):
        validate_token(token)
        self._log = log
        self._rejects = rejects
        self._token = token
        self.max_body = int(max_body)
        self._stamp = _FastClock() if clock is None else (lambda: format_received_at(clock()))
        self.group_commit = group_commit
        self._pending: list[bytes] = []
        self._waiters: list = []
        self._flush_scheduled = False
        self.count = 0
        self.rejected = 0
        self.too_large = 0
        self.forbidden = 0
        self.failed = 0
        self.connection_stats = connection_stats

    def __repr__(self) -> str:
        return f"ReceiverApp(log={self._log.path!r}, token={mask_secret(self._token)}, count={self.count})"

    # -- routing --------------------------------------------------------------------
    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
            return
        path = scope["path"]
        if path == "/health":
            response = self._health() if scope["method"] in ("GET", "HEAD") else _NOT_ALLOWED_GET
        elif not token_matches(self._token, path, scope["query_string"]):
            if self._token is None:
                response = _NOT_FOUND
            else:
                self.forbidden += 1
                response = _FORBIDDEN
        elif scope["method"] != "POST":
            response = _NOT_ALLOWED_POST
        else:
            response = await self._receive_postback(scope, receive)
            if response is None:  # client went away before sending its body
                return
        await send(response[0])
        await send(response[1])

    def health(self) -> dict:
        """What ``GET /health`` answers (see the module docstring)."""
        writers = (self._log, self._rejects)
        failing = any(w.failing or w.sync_failing for w in writers)
        errors = [w.last_error for w in writers if w.last_error is not None]
        sync_errors = [w.sync_error for w in writers if w.sync_error is not None]
        report = {
            "status": "failing" if failing else "ok",
            "count": self.count,
            "rejected": self.rejected,
            "too_large": self.too_large,
            "forbidden": self.forbidden,
            "failed": self.failed,
            "write_failures": sum(w.failures for w in writers),
            "last_error": _error_text(errors[0]) if errors else None,
            "sync_failures": sum(w.sync_failures for w in writers),
            "sync_error": _error_text(sync_errors[0]) if sync_errors else None,
            "reopened": sum(w.reopened for w in writers),
        }
        if self.connection_stats is not None:
            report["connections"] = self.connection_stats.as_dict()
        return report

    def _health(self):
        report = self.health()
        return _response(200 if report["status"] == "ok" else 503, json.dumps(report).encode(), b"application/json")

    # -- the hot path -----------------------------------------------------------------
    async def _receive_postback(self, scope, receive):
        limit = self.max_body
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0  # let the server/reader sort it out; size still enforced below
                if declared > limit:
                    self.too_large += 1
                    return _TOO_LARGE
                break
        message = await receive()
        if message["type"] != "http.request":
            return None
        body = message.get("body", b"")
        if message.get("more_body"):
            chunks = [body]
            size = len(body)
            while True:
                message = await receive()
                if message["type"] != "http.request":
                    return None
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > limit:
                    break
                chunks.append(chunk)
                if not message.get("more_body"):
                    break
            body = b"".join(chunks)
        else:
            size = len(body)
        if size > limit:
            self.too_large += 1
            return _TOO_LARGE

        client = scope.get("client")
        remote = f"{client[0]}:{client[1]}" if client else None
        record = encode_record(body, remote, self._stamp())
        if not is_postback_body(body):
            try:
                self._rejects.write([record])
            except Exception as exc:  # logged by the writer (throttled)
                logger.debug("rejected body answered 503: %s", exc)
                self.failed += 1
                return _UNAVAILABLE
            self.rejected += 1
            return _BAD
        if self.group_commit:
            error = await self._write_grouped(record)
        else:
            try:
                self._log.write([record])
                error = None
            except Exception as exc:  # OSError, or ValueError once closed: never ack
                error = exc
        if error is not None:  # the writer logs write failures (throttled): no line per request here
            logger.debug("postback answered 503: %s", error)
            self.failed += 1
            return _UNAVAILABLE
        self.count += 1
        return _OK

    def _write_grouped(self, record: bytes):
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._pending.append(record)
        self._waiters.append(future)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            loop.call_soon(self._flush)
        return future

    def _flush(self) -> None:
        records, waiters = self._pending, self._waiters
        self._pending, self._waiters, self._flush_scheduled = [], [], False
        try:
            self._log.write(records)
            error = None
        except Exception as exc:  # every waiter must hear back, or its request hangs
            error = exc
        for future in waiters:
            if not future.done():
                future.set_result(error)


class PostbackReceiver:
    """Receive postbacks over HTTP and append them, raw, to a log file.

    Runs uvicorn (httptools + uvloop) on a daemon thread, so a notebook keeps
    working while postbacks arrive. See the module docstring for the answers,
    the body check and the durability policy.

    Parameters
    ----------
    log : str or os.PathLike
        The log file (format v1, :mod:`skycore_lab.postbacks.logformat`); created with
        its header line, or appended to.
    rejects_log : str or os.PathLike, optional
        Where rejected (400) bodies go, in the same format; default
        ``postbacks.rejects.log`` beside ``postbacks.log`` (see module docstring).
    host : str
        Interface to bind: ``127.0.0.1`` by default. Any other address must be
        asked for; without a token that logs a warning (postbacks carry no
        signature, so anyone who can reach the port could write to the log).
    port : int
        0 picks a free port (read :attr:`port` or :attr:`url` after start).
    token : str or None
        Shared secret: only ``/postbacks/<token>`` or ``?token=<token>`` is
        accepted, everything else is 403 and nothing is stored. Use e.g.
        ``secrets.token_urlsafe(24)``; 1 to 256 characters of
        :data:`TOKEN_ALPHABET` (see "Tokens" in the module docstring).
        Never shown in reprs or logs.
    max_body : int
        Largest accepted body in bytes (default 64 KiB); larger bodies get
        413, are not read past the limit and are not stored.
    rotate : {None, "size", "daily"}
        Rotate the log by size (``max_bytes``) or by UTC day; rotated files are
        ``<log>.<n>`` / ``<log>.<YYYYMMDD>``, so ``<log>*`` reads them all.
    max_bytes : int
        File size limit for ``rotate="size"`` (default 100 MiB).
    clock : callable returning a timezone-aware datetime, optional
        Source of ``received_at`` (tests inject one; it also decides the day
        for ``rotate="daily"``); default the system clock, in UTC.
    sync_interval, sync_every : float, int
        fdatasync batching: at most this many seconds / records unsynced.
    group_commit : bool
        Group the records of concurrent requests into one ``write()`` (see
        module docstring; on by default after measurement).
    limits : ConnectionLimits, optional
        Header/body timeouts, header size, connection cap and keep-alive
        limits (:mod:`skycore_lab.connlimits`); default ``ConnectionLimits()``.

    Attributes
    ----------
    count, rejected, too_large, forbidden, failed : int
        Requests since start: stored (200), rejected (400), too large (413),
        forbidden (403), not stored because the disk failed (503).
    health : dict
        What ``GET /health`` answers (see the module docstring).
    """

    def __init__(
        self,
        log: str | os.PathLike,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str | None = None,
        *,
        rejects_log: str | os.PathLike | None = None,
        max_body: int = DEFAULT_MAX_BODY,
        rotate: str | None = None,
        max_bytes: int = 100 * 1024 * 1024,
        clock: Callable[[], datetime] | None = None,
        sync_interval: float = 0.1,
        sync_every: int = 100,
        group_commit: bool = True,
        limits: ConnectionLimits | None = None,
    ):
        if rotate not in ROTATE_MODES:
            raise SkycoreValidationError("rotate", f"must be one of {ROTATE_MODES}, not {rotate!r}")
        validate_token(token)
        if isinstance(max_body, bool) or not isinstance(max_body, numbers.Integral) or max_body <= 0:
            raise SkycoreValidationError("max_body", f"must be a positive integer, not {max_body!r}")
        if limits is not None and not isinstance(limits, ConnectionLimits):
            raise SkycoreValidationError("limits", f"must be a ConnectionLimits, not {type(limits).__name__}")
        self.limits = limits if limits is not None else ConnectionLimits()
        self.log_path = os.fspath(log)
        self.rejects_path = os.fspath(rejects_log) if rejects_log is not None else default_rejects_path(self.log_path)
        if os.path.abspath(self.rejects_path) == os.path.abspath(self.log_path):
            raise SkycoreValidationError("rejects_log", "must differ from the log")
        self.host = host
        self._requested_port = port
        self._token = token
        self._options = dict(
            max_body=max_body, rotate=rotate, max_bytes=max_bytes, clock=clock,
            sync_interval=sync_interval, sync_every=sync_every, group_commit=group_commit,
        )  # fmt: skip
        self._log: LogWriter | None = None
        self._rejects: LogWriter | None = None
        self._app: ReceiverApp | None = None
        self._server: ServerThread | None = None
        self._lock = threading.Lock()

    # -- lifecycle ------------------------------------------------------------------
    def start(self) -> PostbackReceiver:
        """Open the logs, bind the port and serve in the background."""
        with self._lock:
            if self._server is not None:
                raise SkycoreStateError("receiver is already started")
            if not is_loopback(self.host) and self._token is None:
                logger.warning(
                    "postback receiver bound to %s without a token: anyone who can reach it can write to %s",
                    self.host, self.log_path,
                )  # fmt: skip
            opts = self._options
            log = LogWriter(
                self.log_path, rotate=opts["rotate"], max_bytes=opts["max_bytes"],
                sync_interval=opts["sync_interval"], sync_every=opts["sync_every"],
            )  # fmt: skip
            try:
                rejects = LogWriter(
                    self.rejects_path, sync_interval=opts["sync_interval"], sync_every=opts["sync_every"]
                )
            except BaseException:
                log.close()
                raise
            server = ServerThread(
                None, host=self.host, port=self._requested_port, name="skycore-postback-receiver",
                limits=self.limits, proxy_headers=False, ws="none",
            )  # fmt: skip
            app = ReceiverApp(
                log, rejects, token=self._token, max_body=opts["max_body"], clock=opts["clock"],
                group_commit=opts["group_commit"], connection_stats=server.stats,
            )  # fmt: skip
            server.app = app
            try:
                server.start()
            except BaseException:
                log.close()
                rejects.close()
                raise
            self._log, self._rejects, self._app, self._server = log, rejects, app, server
        return self

    def close(self) -> None:
        """Finish in-flight requests, stop the server, fdatasync and close the logs. Idempotent."""
        with self._lock:
            server, self._server = self._server, None
            if server is not None:
                server.stop()
            for writer in (self._log, self._rejects):
                if writer is not None:
                    writer.close()

    stop = close

    def serve_forever(self) -> None:
        """Start if needed and block until Ctrl-C or SIGTERM, then close cleanly (for the CLI)."""
        if self._server is None:
            self.start()
        previous = None
        if threading.current_thread() is threading.main_thread():

            def _terminate(signum, frame):
                raise KeyboardInterrupt

            previous = signal.signal(signal.SIGTERM, _terminate)
        try:
            self._server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            self.close()
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)

    def __enter__(self) -> PostbackReceiver:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __repr__(self) -> str:
        state = f"url={self._public_url()!r}" if self._server is not None else "stopped"
        return (
            f"PostbackReceiver(log={self.log_path!r}, {state}, token={mask_secret(self._token)}, "
            f"count={self.count})"
        )

    # -- what the caller reads ----------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._server is not None and self._server.running

    @property
    def port(self) -> int:
        if self._server is None:
            raise SkycoreStateError("receiver is not started")
        return self._server.port

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise SkycoreStateError("receiver is not started")
        return self._server.base_url

    @property
    def url(self) -> str:
        """The postback URL to give the platform (contains the token when one is set)."""
        base = self.base_url
        return f"{base}/postbacks/{self._token}" if self._token else f"{base}/postbacks"

    def _public_url(self) -> str:
        return f"{self.base_url}/postbacks/{mask_secret(self._token)}" if self._token else self.url

    def _counter(self, name: str) -> int:
        return getattr(self._app, name) if self._app is not None else 0

    @property
    def count(self) -> int:
        """Postbacks stored (answered 200) since start."""
        return self._counter("count")

    @property
    def rejected(self) -> int:
        """Bodies answered 400 (kept in :attr:`rejects_path`)."""
        return self._counter("rejected")

    @property
    def too_large(self) -> int:
        """Bodies answered 413 (not stored)."""
        return self._counter("too_large")

    @property
    def forbidden(self) -> int:
        """Requests answered 403 for a wrong or missing token (not stored)."""
        return self._counter("forbidden")

    @property
    def failed(self) -> int:
        """Postbacks answered 503 because the log could not be written."""
        return self._counter("failed")

    @property
    def health(self) -> dict:
        """What ``GET /health`` answers now (see the module docstring); ``{"status": "stopped"}`` when stopped."""
        return self._app.health() if self._app is not None and self._server is not None else {"status": "stopped"}

    @property
    def rotated_files(self) -> list[str]:
        """Log files rotated away since start, oldest first."""
        return list(self._log.rotated_files) if self._log is not None else []
