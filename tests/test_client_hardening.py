"""The client under hostile or broken servers on real loopback sockets (issue 13).

Never send twice (gateway errors after the request was written), never read an
unbounded answer, never carry the key to another origin, never show the key
(messages, raw answers, traceback locals, exception chains, logs).
"""

from __future__ import annotations

import gc
import logging
import socket
import threading
import traceback
import tracemalloc
import warnings

import pytest
from fake_api import SUCCESS, failure, fake_client

from skycore_lab import columns as col
from skycore_lab.client import DDM, SkycoreClient
from skycore_lab.exceptions import (
    KeyExposureWarning,
    SkycoreAPIError,
    SkycoreTimeoutError,
    SkycoreTransportError,
    SkycoreValidationError,
)
from skycore_lab.server import ServerThread, read_body

KEY = "k3y-Secret-0123456789abcdef"
TO = "17743199144"


def client_for(api, **kwargs) -> SkycoreClient:
    return fake_client(api, KEY, **kwargs)


def posts(api) -> int:
    return sum(r.method == "POST" for r in api.requests)


# --- defect 1: a gateway error after the request was written is never resent --------------------
@pytest.mark.parametrize("status", [502, 503, 504])
def test_gateway_error_after_the_request_was_written_is_never_resent(fake, status):
    fake.replies = [(status, b"<html>Gateway Time-out</html>"), (200, SUCCESS)]
    with pytest.raises(SkycoreTransportError) as info:
        client_for(fake, max_retries=3).send_saved_mms(1001, TO, 60856)
    assert posts(fake) == 1  # one send, one POST: a resend could deliver (and bill) the MMS twice
    assert info.value.status == status
    assert info.value.may_have_sent is True
    assert "may have gone out" in str(info.value)


def test_gateway_error_in_a_batch_is_unknown_not_error(fake):
    fake.replies = [(504, b"Gateway Time-out")]
    manifest = client_for(fake, max_retries=3).send_batch([TO, "17743199145"], 1001, 60856, concurrency=1,
                                                          progress=False)
    assert manifest[col.STATUS].tolist() == ["Unknown", "Unknown"]  # "Error" would invite a manual resend
    assert posts(fake) == 2


def test_server_error_500_is_unknown_too(fake):
    fake.replies = [(500, b"<html>internal error</html>")]
    with pytest.raises(SkycoreTransportError) as info:
        client_for(fake).send_saved_mms(1001, TO, 60856)
    assert info.value.may_have_sent is True and posts(fake) == 1


def test_client_errors_4xx_surely_did_not_send(fake):
    fake.replies = [(400, b"bad request")]
    with pytest.raises(SkycoreTransportError) as info:
        client_for(fake).send_saved_mms(1001, TO, 60856)
    assert info.value.may_have_sent is False and posts(fake) == 1


def test_connection_refused_is_still_retried_and_surely_unsent():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = SkycoreClient(KEY, f"http://127.0.0.1:{port}/", max_retries=2, backoff=0.001)
    manifest = client.send_batch([TO], 1, 1, progress=False)
    assert manifest[col.STATUS].tolist() == ["Error"]


# --- an empty tracking id is not a success ------------------------------------------------------------
EMPTY_IDS = [b"<TRACKINGID></TRACKINGID>", b"<TRACKINGID/>", b"<TRACKINGID>  </TRACKINGID>", b""]


@pytest.mark.parametrize("tracking", EMPTY_IDS)
def test_success_without_a_tracking_id_is_not_accepted(fake, tracking):
    fake.replies = [(200, b"<RESPONSE><STATUS>Success</STATUS><MMSID>1</MMSID>" + tracking
                          + b"<TO>17743199144</TO><FROM>60856</FROM></RESPONSE>")]
    with pytest.raises(SkycoreTransportError) as info:
        client_for(fake).send_saved_mms(1, TO, 60856)
    assert info.value.may_have_sent is True  # the platform said Success: something may have gone out
    results = client_for(fake).send_saved_mms(1, [TO], 60856)
    assert [(r.status, r.tracking_id) for r in results] == [("Unknown", None)]
    manifest = client_for(fake).send_batch([TO], 1, 60856, progress=False)
    assert manifest[col.STATUS].tolist() == ["Unknown"]


# --- concern: the answer size is capped ----------------------------------------------------------------
class Flood:
    """A raw socket server answering 200 with an endless XML body; counts the bytes the client took."""

    def __init__(self, declare: int | None = None):
        self.sent = 0
        self.declare = declare
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}/"
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        connection, _ = self._listener.accept()
        with connection:
            connection.settimeout(10)
            connection.recv(65536)  # the request (small enough for one read here)
            length = f"Content-Length: {self.declare}\r\n" if self.declare is not None else ""
            head = f"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\n{length}\r\n"
            chunk = b"<RESPONSE><STATUS>Success</STATUS>" + b"<X>" + b"y" * 65_000 + b"</X>"
            try:
                connection.sendall(head.encode())
                while self.sent < 300 * 2**20:
                    connection.sendall(chunk)
                    self.sent += len(chunk)
            except OSError:
                return  # the client hung up: exactly what we want

    def close(self) -> None:
        self._listener.close()
        self._thread.join(10)


@pytest.mark.parametrize("declare", [None, 300 * 2**20])
def test_an_endless_answer_is_cut_off_at_the_cap(declare):
    flood = Flood(declare)
    client = SkycoreClient(KEY, flood.url, max_retries=0)
    tracemalloc.start()
    try:
        with pytest.raises(SkycoreTransportError) as info:
            client.send_saved_mms(1, TO, 60856)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        client.close()
        flood.close()
    assert "larger than" in str(info.value) and info.value.may_have_sent is True
    assert peak < 16 * 2**20  # a 300 MiB answer used to be read whole (637 MB)
    assert flood.sent < 32 * 2**20  # the client stopped reading: the rest was never sent


# --- concern: redirects never carry the key to another origin ------------------------------------
class Redirector:
    def __init__(self, status: int, location: str):
        self.status, self.location, self.requests = status, location, 0

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return
        await read_body(receive)
        self.requests += 1
        await send({"type": "http.response.start", "status": self.status,
                    "headers": [(b"location", self.location.encode())]})
        await send({"type": "http.response.body", "body": b""})


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
@pytest.mark.parametrize("method", ["post", "get"])
def test_cross_origin_redirects_are_not_followed(fake, status, method):
    # fake listens on another port of 127.0.0.1: another origin
    redirector = Redirector(status, fake.url + "?api_key=" + KEY)
    with ServerThread(redirector, name="redirector") as server:
        client = SkycoreClient(KEY, server.base_url + "/API/wxml/1.3/index.php", method=method, max_retries=3)
        with warnings.catch_warnings(), pytest.raises(SkycoreTransportError) as info:
            warnings.simplefilter("ignore", KeyExposureWarning)
            client.send_saved_mms(1001, TO, 60856)
    assert fake.requests == []  # the key never reached the other origin
    assert redirector.requests == 1
    assert "not followed" in str(info.value)
    assert KEY not in str(info.value)
    assert info.value.may_have_sent is (status not in (307, 308))


def test_same_origin_307_is_followed_with_the_request(fake):
    redirector = Redirector(307, "/elsewhere")

    async def app(scope, receive, send):
        if scope["path"] == "/elsewhere":
            await fake(scope, receive, send)
        else:
            await redirector(scope, receive, send)

    with ServerThread(app, name="same-origin") as server:
        result = SkycoreClient(KEY, server.base_url + "/API/wxml/1.3/index.php").send_saved_mms(1001, TO, 60856)
    assert result.tracking_id and redirector.requests == 1
    assert len(fake.requests) == 1 and KEY in fake.requests[0].form["xml"]  # same origin: the same request


# --- concern: GET against a non-loopback host warns ---------------------------------------------
def test_get_to_a_remote_host_warns_about_the_key_in_the_url():
    with pytest.warns(KeyExposureWarning, match="URL"):
        SkycoreClient(KEY, "https://secure.skycore.com/API/wxml/1.3/index.php", method="get")
    post = SkycoreClient(KEY, "https://secure.skycore.com/API/wxml/1.3/index.php")
    with pytest.warns(KeyExposureWarning):
        post.with_method("get")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        SkycoreClient(KEY, "http://127.0.0.1:9/API/wxml/1.3/index.php", method="get")
        SkycoreClient(KEY, "http://localhost:9/", method="get")


# --- concern: the key is masked in every server text we quote -------------------------------------
def test_server_echoes_of_the_key_are_masked_everywhere(fake):
    fake.replies = [(200, f"<RESPONSE><STATUS>Failure</STATUS><ERRORCODE>{KEY}</ERRORCODE><TO>{KEY}</TO>"
                          f"<ERRORINFO>bad key {KEY}</ERRORINFO></RESPONSE>".encode())]
    with pytest.raises(SkycoreAPIError) as info:
        client_for(fake).send_saved_mms(1, TO, 1)
    error = info.value
    assert KEY not in str(error) and KEY not in repr(error)
    assert all(KEY not in str(value) for value in vars(error).values())
    fake.replies = [(200, f"<RESPONSE><STATUS>Success</STATUS><MMSID>1</MMSID><TRACKINGID>T</TRACKINGID>"
                          f"<TO>{TO}</TO><FROM>1</FROM><STATUSDETAILS>for {KEY}</STATUSDETAILS></RESPONSE>".encode())]
    result = client_for(fake).send_saved_mms(1, TO, 1)
    assert KEY not in result.raw and KEY not in result.status_details and KEY not in repr(result)
    fake.replies = [(503, f"upstream refused api_key={KEY}".encode())]
    with pytest.raises(SkycoreTransportError) as info:
        client_for(fake).send_saved_mms(1, TO, 1)
    assert KEY not in str(info.value) and KEY not in info.value.body_head


# --- concern: the key stays out of traceback locals and exception chains -------------------------
def _chain(error: BaseException):
    seen = []
    while error is not None and error not in seen:
        seen.append(error)
        error = error.__cause__ or error.__context__
    return seen


def _scenarios(fake):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        refused = f"http://127.0.0.1:{probe.getsockname()[1]}/"
    return {
        "refused-get": (refused, "get", None),
        "gateway-504": (fake.url, "post", [(504, b"x")]),
        "read-timeout-get": (fake.url, "get", [("sleep", 1.0, (200, SUCCESS))]),
        "api-error": (fake.url, "post", [(200, failure("E104", f"no such key {KEY}"))]),
        "not-xml": (fake.url, "get", [(200, b"<html>maintenance " + KEY.encode())]),
    }


@pytest.mark.parametrize("scenario", ["refused-get", "gateway-504", "read-timeout-get", "api-error", "not-xml"])
def test_the_key_is_in_no_traceback_local_and_no_exception_chain(fake, scenario):
    url, method, replies = _scenarios(fake)[scenario]
    if replies:
        fake.replies = replies
    client = SkycoreClient(KEY, url, method=method, max_retries=1, backoff=0.001, timeout=0.3)
    try:
        client.send_saved_mms(1001, TO, 60856, ddm=DDM("hi"))
    except (SkycoreTransportError, SkycoreAPIError) as exc:
        error = exc
    else:
        pytest.fail("expected a failure")
    chain = _chain(error)
    assert chain == [error]  # no __context__/__cause__ holding the requests exception (and its request body)
    # What traceback.print_exc(capture_locals=True) and IPython's Verbose mode show, from the
    # client's frames on (this test's own frame holds the fake server's records, key included).
    tb = error.__traceback__.tb_next
    text = "".join(traceback.StackSummary.extract(traceback.walk_tb(tb), capture_locals=True).format())
    assert "send_saved_mms" in text and KEY not in text
    assert KEY not in "".join(traceback.format_exception_only(type(error), error))
    frame_reprs = []
    while tb is not None:
        frame_reprs += [repr(value) for value in tb.tb_frame.f_locals.values()]
        tb = tb.tb_next
    assert not any(KEY in text for text in frame_reprs)


def test_validation_errors_in_the_constructor_do_not_hold_the_key():
    try:
        SkycoreClient(KEY, "http://127.0.0.1:9/", method="put")
    except SkycoreValidationError as exc:
        error = exc
    frames = []
    tb = error.__traceback__.tb_next  # skip this test's own frame: it holds KEY by design
    while tb is not None:
        frames += [repr(value) for value in tb.tb_frame.f_locals.values()]
        tb = tb.tb_next
    assert frames and not any(KEY in text for text in frames)


# --- concern: the redaction registry does not grow with every client ever made ---------------------
def test_the_redaction_registry_forgets_clients_that_are_gone(caplog):
    from skycore_lab.client import LOG_REDACTION

    gc.collect()
    before = LOG_REDACTION.live_secrets()
    for i in range(3000):
        SkycoreClient(f"key-{i:06d}-abcdefghijklmnop", "http://127.0.0.1:9/").close()
    gc.collect()
    assert LOG_REDACTION.live_secrets() == before
    kept = SkycoreClient(KEY, "http://127.0.0.1:9/")
    assert LOG_REDACTION.live_secrets() == before + 1
    with caplog.at_level(logging.DEBUG, logger="urllib3.connectionpool"):
        logging.getLogger("urllib3.connectionpool").debug("GET /?api_key=%s", KEY)
    assert KEY not in caplog.text
    del kept


def test_many_clients_with_one_key_are_one_entry():
    from skycore_lab.client import LOG_REDACTION

    gc.collect()
    before = len(LOG_REDACTION.values())
    clients = [SkycoreClient("one-shared-key-0123456789", "http://127.0.0.1:9/") for _ in range(200)]
    assert len(LOG_REDACTION.values()) == before + 1  # each log record is checked against distinct keys
    del clients


def test_with_method_copies_share_the_key_holder():
    client = SkycoreClient(KEY, "http://127.0.0.1:9/")
    assert client.with_method("get")._api_key is client._api_key


def test_threads_do_not_break_the_registry():
    from skycore_lab.client import LOG_REDACTION

    def make():
        for i in range(200):
            SkycoreClient(f"{threading.get_ident()}-{i}-0123456789", "http://127.0.0.1:9/")

    workers = [threading.Thread(target=make) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    gc.collect()
    assert LOG_REDACTION.live_secrets() < 50


def test_read_timeout_is_a_timeout_error_and_unknown_in_a_batch(fake):
    fake.replies = [("sleep", 1.0, (200, SUCCESS))]
    client = client_for(fake, timeout=0.2, max_retries=5)
    with pytest.raises(SkycoreTimeoutError):
        client.send_saved_mms(1, TO, 1)
    manifest = client.send_batch([TO], 1, 1, progress=False)
    assert manifest[col.STATUS].tolist() == ["Unknown"] and len(fake.requests) == 2
