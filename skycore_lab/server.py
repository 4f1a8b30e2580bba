"""Run an ASGI app on uvicorn in a background thread, for notebooks and tests.

Both the sandbox and the postback receiver use this. The socket is bound here,
before uvicorn starts, so ``port=0`` gives a free port that is known the moment
:meth:`ServerThread.start` returns, and a port already in use fails loudly in
the caller's thread rather than silently in the server's.

uvicorn is asked for httptools and uvloop (``uvicorn[standard]``), which serve
about twice the requests per second of h11 on asyncio's default loop
(``benchmarks/README.md``). It falls back to h11/asyncio where they are missing.

With ``limits=`` (:class:`~skycore_lab.connlimits.ConnectionLimits`; the
postback receiver always passes them) the server enforces header and body
timeouts, a header size limit, a connection cap and keep-alive limits
before any request reaches the app; these need httptools.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time

import uvicorn

from .connlimits import ConnectionLimits, ConnectionStats, limited_protocol
from .exceptions import SkycoreServerError, SkycoreStateError

__all__ = ["ServerThread", "is_loopback", "read_body"]


def _have(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


async def read_body(receive, limit: int | None = None) -> bytes | None:
    """The whole body of an ASGI HTTP request; None once it exceeds ``limit`` bytes (stop reading)."""
    parts, size = [], 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if limit is not None and size > limit:
            return None
        parts.append(chunk)
        if not message.get("more_body"):
            return b"".join(parts)


def is_loopback(host: str) -> bool:
    """True for hosts that only this machine can reach."""
    return host in {"127.0.0.1", "localhost", "::1"} or host.startswith("127.")


class ServerThread:
    """An ASGI app served by uvicorn on a daemon thread.

    Parameters
    ----------
    app : ASGI application
    host : str
        Interface to bind; 127.0.0.1 unless the caller explicitly asks otherwise.
    port : int
        0 picks a free port; read it back from :attr:`port`.
    name : str
        Thread name, shown in tracebacks and ``threading.enumerate()``.
    limits : ConnectionLimits, optional
        Timeouts, header size, connection cap and keep-alive limits enforced
        before requests reach ``app`` (:mod:`skycore_lab.connlimits`); what
        they did is counted in :attr:`stats`. Without them uvicorn's own
        behaviour applies (no header timeout, no header size limit).
    **config
        Extra :class:`uvicorn.Config` options (``limit_concurrency`` ...).

    Attributes
    ----------
    stats : ConnectionStats or None
        The limits' counters (None without ``limits``).
    """

    def __init__(
        self,
        app,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        name: str = "skycore-server",
        limits: ConnectionLimits | None = None,
        **config,
    ):
        self.app = app
        self.host = host
        self._requested_port = port
        self.name = name
        self._config_kwargs = config
        self.limits = limits
        self.stats = ConnectionStats() if limits is not None else None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self._error: BaseException | None = None
        self.port: int | None = None

    # -- lifecycle ---------------------------------------------------------------
    def start(self, timeout: float = 10.0) -> ServerThread:
        if self._thread is not None:
            raise SkycoreStateError(f"{self.name} is already started")
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self._requested_port))
        except OSError as exc:
            sock.close()
            raise SkycoreServerError(exc.errno, f"cannot bind {self.host}:{self._requested_port}: {exc.strerror}") from None
        sock.listen(2048)
        self._socket = sock
        self.port = sock.getsockname()[1]
        options = dict(http="httptools" if _have("httptools") else "h11", timeout_keep_alive=30)
        if self.limits is not None:
            try:
                protocol = limited_protocol(self.limits, self.stats, self.name)
            except BaseException:
                self._close_socket()
                raise
            options = dict(http=protocol, timeout_keep_alive=self.limits.keepalive_timeout_s)
        config = uvicorn.Config(
            self.app,
            host=self.host,
            port=self.port,
            loop="uvloop" if _have("uvloop") else "asyncio",
            lifespan="off",
            log_level="warning",
            access_log=False,
            backlog=2048,
            **options,
            **self._config_kwargs,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if self._error is not None or not self._thread.is_alive():
                raise SkycoreServerError(f"{self.name} failed to start: {self._error}") from self._error
            if time.monotonic() > deadline:
                self.stop()
                raise SkycoreServerError(f"{self.name} did not start within {timeout} s")
            time.sleep(0.005)
        return self

    def _run(self) -> None:
        try:
            self._server.run(sockets=[self._socket])
        except BaseException as exc:  # surfaced by start()/stop()
            self._error = exc

    def stop(self, timeout: float = 10.0) -> None:
        """Ask uvicorn to finish in-flight requests and exit; wait for the thread."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                self._server.force_exit = True
                self._thread.join(timeout)
        self._close_socket()
        self._thread = None

    def _close_socket(self) -> None:
        if self._socket is not None:
            with contextlib.suppress(OSError):
                self._socket.close()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def base_url(self) -> str:
        if self.port is None:
            raise SkycoreStateError(f"{self.name} is not started")
        host = f"[{self.host}]" if ":" in self.host else self.host
        if self.host in {"0.0.0.0", "::"}:
            host = "127.0.0.1"
        return f"http://{host}:{self.port}"

    def serve_forever(self) -> None:
        """Block until Ctrl-C (for the CLI), then stop cleanly."""
        try:
            while self.running:
                self._thread.join(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()
