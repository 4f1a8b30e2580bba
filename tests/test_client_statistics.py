"""client.sending_statistics against scripted servers: the link, the download and its hardening.

Two recording servers on 127.0.0.1 with different ports are two origins:
the API, and a file host the answer may link to. The API key must never
reach the file host, the download is capped, and every answer shape the
documentation leaves open ("a link to an XML file") is read.
"""

from __future__ import annotations

import gzip
import os
from urllib.parse import quote

import pytest
from fake_api import FakeAPI, serve

import skycore_lab as sl
from skycore_lab.provenance import sources_of

KEY = "Stat5-KEY-0123456789abcdefghijkl"
REPORT = open(os.path.join(os.path.dirname(__file__), "data", "reconcile", "report.xml"), "rb").read()
PERIOD = ("2024-05-01 14:00:00", "2024-05-01 15:00:00")
N_MESSAGES = len(sl.read_sending_report(REPORT))


def link_answer(link: str) -> bytes:
    return f"<RESPONSE><STATUS>Success</STATUS><URL>{link}</URL></RESPONSE>".encode()


@pytest.fixture
def servers():
    api, files = FakeAPI(), FakeAPI()
    running = [serve(api), serve(files)]
    api.origin, files.origin = running[0].base_url, running[1].base_url
    api.url = api.origin + "/API/wxml/1.3/index.php"
    yield api, files
    for server in running:
        server.stop()


def client_of(api, **kwargs) -> sl.SkycoreClient:
    return sl.SkycoreClient(KEY, api.url, max_retries=0, timeout=10, **kwargs)


def _everything(record) -> str:
    return " ".join([record.path, record.query, str(record.headers), record.body.decode("utf-8", "replace")])


def test_a_report_on_another_host_is_downloaded_without_the_key_or_the_sessions_auth(servers):
    api, files = servers
    api.replies = [(200, link_answer(files.origin + "/exports/report.xml"))]
    files.replies = [(200, REPORT)]
    import requests

    session = requests.Session()
    session.auth = ("alice", "proxy-password")
    frame = client_of(api, session=session).sending_statistics(*PERIOD)
    assert len(api.requests) == 1 and "getSendingStatus" in api.requests[0].form["xml"]
    assert "<START_DATE>2024-05-01 14:00:00</START_DATE>" in api.requests[0].form["xml"]
    (download,) = files.requests
    assert download.method == "GET" and download.path == "/exports/report.xml"
    assert KEY not in _everything(download) and quote(KEY) not in _everything(download)
    assert "authorization" not in download.headers
    expected = sl.read_sending_report(REPORT)
    assert frame.equals(expected) and len(frame) == N_MESSAGES


def test_a_link_carrying_the_key_to_another_host_is_refused(servers):
    api, files = servers
    api.replies = [(200, link_answer(f"{files.origin}/r.xml?api_key={KEY}"))]
    with pytest.raises(sl.SkycoreTransportError, match="carries the API key to another host") as info:
        client_of(api).sending_statistics(*PERIOD)
    assert files.requests == [] and KEY not in str(info.value)


def test_a_redirect_is_checked_like_the_link(servers):
    api, files = servers
    leaking = f"{files.origin}/elsewhere.xml?key={quote(KEY)}"

    async def redirecting(scope, receive, send):  # a file host that redirects to a URL holding the key
        await send({"type": "http.response.start", "status": 302, "headers": [(b"location", leaking.encode())]})
        await send({"type": "http.response.body", "body": b""})

    from skycore_lab.server import ServerThread

    other = ServerThread(redirecting, name="redirecting").start()
    try:
        api.replies = [(200, link_answer(other.base_url + "/a.xml"))]
        with pytest.raises(sl.SkycoreTransportError, match="carries the API key") as info:
            client_of(api).sending_statistics(*PERIOD)
        assert KEY not in str(info.value) and files.requests == []
        files.replies = [(200, REPORT)]  # a redirect without the key is followed
        leaking = f"{files.origin}/elsewhere.xml"
        assert len(client_of(api).sending_statistics(*PERIOD)) == N_MESSAGES
        assert [r.path for r in files.requests] == ["/elsewhere.xml"]
    finally:
        other.stop()


def test_a_relative_link_is_resolved_against_the_api_url(servers):
    api, _files = servers
    api.replies = [(200, link_answer("/reports/today.xml")), (200, REPORT)]
    frame = client_of(api).sending_statistics(*PERIOD)
    assert [r.path for r in api.requests] == ["/API/wxml/1.3/index.php", "/reports/today.xml"]
    assert len(frame) == N_MESSAGES


@pytest.mark.parametrize("answer", [b"http://{origin}/r.xml\n", b"<RESPONSE><STATUS>Success</STATUS><FILE>"
                                    b"<PATH>http://{origin}/r.xml</PATH></FILE><MMSID/></RESPONSE>"])
def test_other_link_shapes_are_read(servers, answer):
    api, files = servers
    api.replies = [(200, answer.replace(b"http://{origin}", files.origin.encode()))]
    files.replies = [(200, REPORT)]
    assert len(client_of(api).sending_statistics(*PERIOD)) == N_MESSAGES and len(files.requests) == 1


def test_an_answer_holding_the_report_itself_is_read(servers):
    api, files = servers
    api.replies = [(200, REPORT)]
    assert len(client_of(api).sending_statistics(*PERIOD)) == N_MESSAGES and files.requests == []


@pytest.mark.parametrize(("answer", "match"), [
    (link_answer("file:///etc/passwd"), "not an http"),
    (b"<RESPONSE><STATUS>Success</STATUS><MMSID>1</MMSID></RESPONSE>", "holds no link"),
    (b"<RESPONSE><STATUS>Failure</STATUS><ERRORCODE>E509</ERRORCODE><ERRORINFO>Lookup period is too long."
     b"</ERRORINFO></RESPONSE>", "E509"),
])
def test_unusable_answers_are_clear_errors(servers, answer, match):
    api, _files = servers
    api.replies = [(200, answer)]
    with pytest.raises(sl.SkycoreError, match=match):
        client_of(api).sending_statistics(*PERIOD)


def test_the_download_is_capped_and_a_failed_download_leaves_no_file(servers, tmp_path):
    api, files = servers
    api.replies = [(200, link_answer(files.origin + "/r.xml"))]
    files.replies = [(200, REPORT)]
    target = tmp_path / "report.xml"
    with pytest.raises(sl.SkycoreTransportError, match="larger than 1,000 bytes"):
        client_of(api).sending_statistics(*PERIOD, max_report_bytes=1000, save_to=target)
    assert not target.exists() and os.listdir(tmp_path) == []
    files.replies = [(404, b"gone")]
    with pytest.raises(sl.SkycoreTransportError, match="HTTP 404") as info:
        client_of(api).sending_statistics(*PERIOD)
    assert info.value.status == 404


def test_a_gzip_report_is_read_and_a_gzip_bomb_is_stopped_at_the_cap(servers):
    api, files = servers
    api.replies = [(200, link_answer(files.origin + "/r.xml.gz"))]
    files.replies = [(200, gzip.compress(REPORT))]
    assert len(client_of(api).sending_statistics(*PERIOD)) == N_MESSAGES
    bomb = gzip.compress(b"<RESPONSE>" + b" " * (64 << 20))  # 64 MiB of spaces in about 64 KB
    assert len(bomb) < 100_000
    files.replies = [(200, bomb)]
    with pytest.raises(sl.SkycoreTransportError, match="larger than"):
        client_of(api).sending_statistics(*PERIOD, max_report_bytes=1 << 20)


def test_save_to_keeps_the_report_and_records_it_as_the_source(servers, tmp_path):
    api, files = servers
    api.replies = [(200, link_answer(files.origin + "/r.xml"))]
    files.replies = [(200, REPORT)]
    frame = client_of(api).sending_statistics(*PERIOD, save_to=tmp_path / "report.xml")
    assert (tmp_path / "report.xml").read_bytes() == REPORT
    assert [source["path"] for source in sources_of(frame)] == [str(tmp_path / "report.xml")]
    frame = client_of(api).sending_statistics(*PERIOD, save_to=tmp_path / "report.xml.gz")
    assert gzip.decompress((tmp_path / "report.xml.gz").read_bytes()) == REPORT and len(frame) == N_MESSAGES


def test_a_bad_period_is_refused_before_any_request(servers):
    api, _files = servers
    client = client_of(api)
    with pytest.raises(sl.SkycoreValidationError, match="end: must be after start"):
        client.sending_statistics("2024-05-02", "2024-05-01")
    with pytest.raises(sl.SkycoreValidationError, match="start"):
        client.sending_statistics("yesterday", "2024-05-01")
    assert api.requests == []
    # naive times are UTC, aware ones converted; the end is raised to the next whole second
    wire = client.sending_statistics("2024-05-01T10:00:00-04:00", "2024-05-01 15:00:00.5", dry_run=True)
    assert "<START_DATE>2024-05-01 14:00:00</START_DATE>" in wire.xml
    assert "<END_DATE>2024-05-01 15:00:01</END_DATE>" in wire.xml
