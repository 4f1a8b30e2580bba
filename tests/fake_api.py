"""A scriptable fake Skycore endpoint for client unit tests (real HTTP on loopback)."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from skycore_lab.server import ServerThread, read_body

SUCCESS = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<RESPONSE><STATUS>Success</STATUS><MMSID>{mms}</MMSID>'
    b"<TRACKINGID>TU1TXzU5Nzg3OQ==</TRACKINGID><TO>{to}</TO><FROM>60856</FROM></RESPONSE>"
)


def failure(code: str, info: str) -> bytes:
    return (
        f"<RESPONSE><STATUS>Failure</STATUS><ERRORCODE>{code}</ERRORCODE><ERRORINFO>{info}</ERRORINFO></RESPONSE>"
    ).encode()


@dataclass
class Recorded:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes

    @property
    def form(self) -> dict[str, str]:
        return dict(parse_qsl(self.body.decode("utf-8"), keep_blank_values=True))


@dataclass
class FakeAPI:
    """Answers each request with the next scripted reply (the last one repeats).

    A reply is ``(status, body)`` or ``("sleep", seconds, (status, body))``.
    """

    replies: list = field(default_factory=lambda: [(200, SUCCESS)])
    requests: list[Recorded] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return
        body = await read_body(receive)
        record = Recorded(
            scope["method"], scope["path"], scope["query_string"].decode(),
            {k.decode().lower(): v.decode() for k, v in scope["headers"]}, body,
        )
        with self._lock:
            self.requests.append(record)
            reply = self.replies[min(len(self.requests) - 1, len(self.replies) - 1)]
        if reply[0] == "sleep":
            await asyncio.sleep(reply[1])
            reply = reply[2]
        status, payload = reply
        if payload is SUCCESS:
            params = record.form if record.method == "POST" else dict(parse_qsl(record.query))
            to, mms = _fields(params)
            payload = SUCCESS.replace(b"{to}", to.encode()).replace(b"{mms}", mms.encode())
        await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"text/xml")]})
        await send({"type": "http.response.body", "body": payload})


def _fields(params: dict[str, str]) -> tuple[str, str]:
    if "xml" in params:
        from skycore_lab.xmlsafe import element_text, parse_xml

        root = parse_xml(params["xml"].encode("utf-8"))
        return element_text(root, "TO") or "", element_text(root, "MMSID") or ""
    return params.get("to", ""), params.get("mmsid", "")


def serve(api: FakeAPI) -> ServerThread:
    return ServerThread(api, name="fake-skycore").start()


def fake_client(api: FakeAPI, key: str, **kwargs):
    """A client of the fake API (``api.url``) with a short retry back-off."""
    from skycore_lab import SkycoreClient

    kwargs.setdefault("backoff", 0.001)
    return SkycoreClient(key, api.url, **kwargs)
