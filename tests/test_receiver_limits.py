"""Limits before the token check, held against hostile clients on real sockets (127.0.0.1).

Slow headers, slow bodies, idle connections, endless headers, too many
connections (also under ``ulimit -n 200``, in a receiver process of its
own) and keep-alive abuse: each is cut off, counted, and the receiver keeps
storing legitimate postbacks.
"""

from __future__ import annotations

import contextlib
import logging
import os
import resource
import select
import socket
import subprocess
import sys
import time

import pytest
import requests

from skycore_lab.connlimits import DEFAULT_MAX_CONNECTIONS, FD_RESERVE, ConnectionLimits, ConnectionStats, limited_protocol
from skycore_lab.exceptions import SkycoreValidationError
from skycore_lab.postbacks.logformat import HEADER
from skycore_lab.postbacks.receiver import PostbackReceiver

pytestmark = pytest.mark.timeout(60)

BODY = b"<POSTBACK><CODE>N102</CODE><TRACKINGID>limits</TRACKINGID></POSTBACK>"
FAST = ConnectionLimits(header_timeout_s=1.5, body_timeout_s=1.5, keepalive_timeout_s=1.5)


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def read_until_closed(sock: socket.socket, timeout: float = 10.0) -> tuple[bytes, float]:
    """Everything the server sends until it closes, and when it closed (monotonic)."""
    sock.settimeout(timeout)
    data = b""
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(65536):
            data += chunk
    return data, time.monotonic()


def records(path: str) -> int:
    with open(path, "rb") as handle:
        data = handle.read()
    assert data.startswith(HEADER)
    return data.count(b"\n") - 1


@pytest.fixture
def log(tmp_path) -> str:
    return str(tmp_path / "postbacks.log")


def post_request(path: str = "/postbacks", body: bytes = BODY, extra: bytes = b"") -> bytes:
    return (
        b"POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/xml\r\nContent-Length: %d\r\n%s\r\n%s"
        % (path.encode(), len(body), extra, body)
    )


# -- the defaults are what the documentation says ----------------------------------------------------
def test_documented_defaults():
    limits = PostbackReceiver("unused.log").limits
    assert limits == ConnectionLimits(
        header_timeout_s=10.0, body_timeout_s=20.0, max_header_bytes=16 * 1024, max_connections=None,
        keepalive_timeout_s=15.0, max_requests_per_connection=1000,
    )  # fmt: skip
    assert DEFAULT_MAX_CONNECTIONS == 1000


@pytest.mark.parametrize(
    "field, value", [("header_timeout_s", 0), ("body_timeout_s", float("inf")), ("max_header_bytes", -1),
                     ("max_connections", 1.5), ("keepalive_timeout_s", "5"), ("max_requests_per_connection", True)]
)  # fmt: skip
def test_bad_limits_are_refused_naming_the_field(field, value):
    with pytest.raises(SkycoreValidationError, match=field):
        ConnectionLimits(**{field: value})


# -- slow clients ------------------------------------------------------------------------------------
def test_slow_headers_one_byte_at_a_time_are_cut_off_by_the_total_header_timeout(log):
    with PostbackReceiver(log) as rx:  # the default: 10 s
        sock = connect(rx.port)
        start = time.monotonic()
        request = post_request()
        for byte in request[:40]:  # one byte per second: never an idle gap of 10 s
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                break
            if select.select([sock], [], [], 1.0)[0]:  # answered (or closed): stop sending
                break
        answer, closed_at = read_until_closed(sock)
        sock.close()
        assert answer.startswith(b"HTTP/1.1 408")
        assert 9.5 <= closed_at - start <= 14, closed_at - start
        assert rx.health["connections"]["header_timeouts"] == 1
        assert requests.post(rx.url, data=BODY, timeout=5).status_code == 200  # the receiver is unharmed
    assert records(log) == 1


def test_a_connection_that_sends_nothing_is_closed_after_the_header_timeout(log):
    with PostbackReceiver(log, limits=FAST) as rx:
        sock = connect(rx.port)
        start = time.monotonic()
        answer, closed_at = read_until_closed(sock)
        sock.close()
        assert answer.startswith(b"HTTP/1.1 408") and 1.2 <= closed_at - start <= 5


def test_slow_body_is_cut_off_by_the_body_timeout_and_nothing_is_stored(log):
    with PostbackReceiver(log, limits=FAST) as rx:
        sock = connect(rx.port)
        request = post_request()
        head = request[: request.index(b"\r\n\r\n") + 4]
        sock.sendall(head + request[len(head) : len(head) + 5])  # headers done, body trickles
        start = time.monotonic()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            for byte in request[len(head) + 5 : len(head) + 20]:
                time.sleep(0.3)
                sock.sendall(bytes([byte]))
        answer, closed_at = read_until_closed(sock)
        sock.close()
        assert answer.startswith(b"HTTP/1.1 408") and closed_at - start <= 5
        assert rx.health["connections"]["body_timeouts"] == 1
        assert rx.count == 0
    assert records(log) == 0


def test_a_body_sent_after_a_403_cannot_hold_the_connection(log):
    with PostbackReceiver(log, token="right-token", limits=FAST) as rx:
        sock = connect(rx.port)
        request = post_request("/postbacks/wrong-token", body=b"x" * 1000)
        sock.sendall(request[:-900])  # headers and a little body: answered without reading the rest
        answer, closed_at = read_until_closed(sock)
        sock.close()
        assert answer.startswith(b"HTTP/1.1 403") and b"connection: close" in answer.lower()


# -- endless headers ---------------------------------------------------------------------------------
def test_headers_over_the_limit_get_431_and_the_connection_is_closed(log):
    with PostbackReceiver(log) as rx:
        sock = connect(rx.port)
        sock.sendall(b"POST /postbacks HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (17 * 1024))
        answer, _ = read_until_closed(sock)
        sock.close()
        assert answer.startswith(b"HTTP/1.1 431")
        assert rx.health["connections"]["headers_too_large"] == 1
        # just under the limit is fine
        fits = b"X-Fill: " + b"b" * (15 * 1024) + b"\r\n"
        sock = connect(rx.port)
        sock.sendall(post_request(extra=fits))
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        sock.close()
    assert records(log) == 1


def test_a_60_mib_header_is_not_read_past_the_limit(log):
    with PostbackReceiver(log) as rx:
        sock = connect(rx.port)
        sock.settimeout(10)
        sent = 0
        chunk = b"a" * 65536
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(b"POST /postbacks HTTP/1.1\r\nX-Big: ")
            while sent < 60 * 1024 * 1024:
                sent += sock.send(chunk)
        sock.close()
        # the kernel buffers a few MiB after the server stopped reading; 60 MiB never get through
        assert sent < 16 * 1024 * 1024, sent
        assert rx.health["connections"]["headers_too_large"] == 1
        assert requests.post(rx.url, data=BODY, timeout=5).status_code == 200


# -- too many connections ----------------------------------------------------------------------------
def test_connections_over_the_cap_get_503_and_a_log_line(log, caplog):
    limits = ConnectionLimits(max_connections=20)
    with caplog.at_level(logging.WARNING, logger="skycore_lab.connlimits"), PostbackReceiver(log, limits=limits) as rx:
        held = [connect(rx.port) for _ in range(20)]
        try:
            time.sleep(0.2)
            extra = connect(rx.port)
            answer, _ = read_until_closed(extra)
            extra.close()
            assert answer.startswith(b"HTTP/1.1 503") and b"too many connections" in answer
            assert rx.health["connections"]["refused_connections"] >= 1
        finally:
            for sock in held:
                sock.close()
        time.sleep(0.2)
        assert requests.post(rx.url, data=BODY, timeout=5).status_code == 200
    assert "max_connections=20" in caplog.text and "refusing the connection" in caplog.text


def _low_fd_limit():  # runs in the receiver's process, before exec
    resource.setrlimit(resource.RLIMIT_NOFILE, (200, 200))


def test_250_never_finished_requests_under_ulimit_200_do_not_exhaust_descriptors(tmp_path):
    log = str(tmp_path / "postbacks.log")
    url_file = str(tmp_path / "url")
    cmd = [sys.executable, "-m", "skycore_lab.cli", "listen", "--quiet", "--log", log, "--url-file", url_file,
           "--header-timeout", "3"]  # fmt: skip
    errors = open(tmp_path / "stderr", "wb")  # noqa: SIM115
    receiver = subprocess.Popen(cmd, stderr=errors, preexec_fn=_low_fd_limit)
    hostile: list[socket.socket] = []
    try:
        deadline = time.monotonic() + 30
        while not os.path.exists(url_file):
            assert receiver.poll() is None, (tmp_path / "stderr").read_text()
            assert time.monotonic() < deadline
            time.sleep(0.02)
        url = open(url_file).read()  # noqa: SIM115
        port = int(url.split(":")[2].split("/")[0])
        start = time.monotonic()
        for _ in range(250):
            sock = connect(port)
            with contextlib.suppress(OSError):
                sock.sendall(b"POST /postbacks HTTP/1.1\r\nHost: x\r\n")  # and never more
            hostile.append(sock)
        # The cap (ulimit 200 − 64 kept free) turned the surplus away; once the header timeout has
        # closed the rest, a legitimate postback is stored.
        time.sleep(max(0.0, start + 3.5 - time.monotonic()))
        closed = 0
        for sock in hostile:
            sock.settimeout(5)
            with contextlib.suppress(OSError):
                data = sock.recv(65536)
                closed += data.startswith((b"HTTP/1.1 408", b"HTTP/1.1 503")) or data == b""
        assert closed == 250
        response = requests.post(url, data=BODY, timeout=5)
        assert response.status_code == 200
        health = requests.get(url.rsplit("/postbacks", 1)[0] + "/health", timeout=5).json()
        assert health["connections"]["max_connections"] == 136
        assert health["connections"]["refused_connections"] >= 250 - 136
        assert receiver.poll() is None
    finally:
        for sock in hostile:
            sock.close()
        receiver.terminate()
        receiver.wait(15)
        errors.close()
    stderr = (tmp_path / "stderr").read_text()
    assert "refusing the connection" in stderr
    assert "Too many open files" not in stderr
    assert records(log) == 1


def test_the_cap_stays_under_the_open_file_limit_and_says_so_when_it_lowers_a_given_value(caplog, monkeypatch):
    from skycore_lab import connlimits

    monkeypatch.setattr(connlimits, "fd_limit", lambda: 1024)
    with caplog.at_level(logging.INFO, logger="skycore_lab.connlimits"):
        stats = ConnectionStats()
        limited_protocol(ConnectionLimits(), stats)
        assert stats.max_connections == 1024 - FD_RESERVE and caplog.text == ""  # the default: silently
        limited_protocol(ConnectionLimits(max_connections=5000), stats)
        assert stats.max_connections == 1024 - FD_RESERVE
        assert "max_connections lowered from 5000 to 960" in caplog.text
        limited_protocol(ConnectionLimits(max_connections=10), stats)
        assert stats.max_connections == 10


# -- keep-alive ----------------------------------------------------------------------------------------
def test_idle_keepalive_connection_is_closed(log):
    with PostbackReceiver(log, limits=FAST) as rx:
        sock = connect(rx.port)
        sock.sendall(post_request())
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        start = time.monotonic()
        rest, closed_at = read_until_closed(sock)
        sock.close()
        assert rest == b"" and 1.2 <= closed_at - start <= 5


def test_a_connection_serves_at_most_max_requests_per_connection(log):
    limits = ConnectionLimits(max_requests_per_connection=3)
    with PostbackReceiver(log, limits=limits) as rx:
        sock = connect(rx.port)
        answers = []
        for _ in range(3):
            sock.sendall(post_request())
            answers.append(sock.recv(65536))
        rest, _ = read_until_closed(sock, timeout=5)
        sock.close()
        assert all(answer.startswith(b"HTTP/1.1 200") for answer in answers)
        assert b"connection: close" not in answers[1].lower() and b"connection: close" in answers[2].lower()
        assert rest == b""
    assert records(log) == 3


class Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        self.records.append(record)


def test_websocket_upgrade_requests_are_refused_without_filling_the_log(log):
    uvicorn_log = logging.getLogger("uvicorn.error")  # does not propagate to the root: collect it here
    collect = Collect()
    with PostbackReceiver(log) as rx:
        uvicorn_log.addHandler(collect)  # after start: uvicorn's logging set-up drops earlier handlers
        try:
            _upgrade_three_times(rx)
        finally:
            uvicorn_log.removeHandler(collect)
    assert [r.getMessage() for r in collect.records if r.levelno >= logging.WARNING] == []


def _upgrade_three_times(rx):
    for _ in range(3):
        sock = connect(rx.port)
        sock.sendall(
            b"GET /postbacks HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
            b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        )
        answer, _ = read_until_closed(sock)
        sock.close()
        assert answer.startswith(b"HTTP/1.1 405")
