"""Posting the sandbox's notifications to the postback URL, in scaled real time.

Runs on the sandbox server's own event loop (uvicorn's), so scheduling from a
request handler never blocks and never needs a lock: each notification is a
``loop.call_at`` timer at ``arrival + delay_s / time_scale``; when it fires,
the notification is rendered as XML and POSTed with aiohttp over a keep-alive
connection pool. Failed posts (non-200, connection error, time-out) are
retried ``retry_delay_s / time_scale`` real seconds later, at most
``max_retries`` times; the TIMESTAMP of a retried notification is unchanged
(it is the event's time, not the post's). The handset cache learns at the
*event* time, whatever happens to the post.

Postback document (what the parser reads)::

    <?xml version="1.0" encoding="UTF-8"?>
    <POSTBACK><ORIGIN>MMS_MT</ORIGIN><CODE>N101</CODE>…<TIMESTAMP>2024-05-01T10:00:03-04</TIMESTAMP></POSTBACK>

elements in the order of the postback schema
(:data:`skycore_lab.postbacks.schema.FIELDS`, where present: the documented
order ORIGIN, CODE, SENTAS, STATUS, MMSID, FROM, TO, TRACKINGID, SPID,
TIMESTAMP, HANDSET, AGGREGATORID, STATUSDETAILS), one line unless
``postback.pretty``; sent as the raw body
(``Content-Type: text/xml``) or as form field ``xml`` per ``postback.format``.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable

from lxml import etree

from ..postbacks.schema import FIELD_INDEX
from .world import Notification, SendSimulation

__all__ = ["Dispatcher", "render_postback", "XML_DECLARATION"]

XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'


def render_postback(fields, *, pretty: bool = False, declaration: bool = True) -> bytes:
    """The XML document of one notification: ``(ELEMENT, text)`` pairs, written in the
    postback schema's element order (:data:`skycore_lab.postbacks.schema.FIELDS`), text
    escaped by lxml."""
    root = etree.Element("POSTBACK")
    for tag, text in sorted(fields, key=lambda field: FIELD_INDEX.get(field[0], len(FIELD_INDEX))):
        etree.SubElement(root, tag).text = text
    body = etree.tostring(root, encoding="UTF-8", pretty_print=pretty)
    return XML_DECLARATION + body if declaration else body


class Dispatcher:
    """Schedules and posts notifications; all methods but the counters run on the loop."""

    def __init__(self, postback_url: str | None, settings: dict, time_scale: float, seed: int,
                 learn: Callable[[str, str], None]):
        self.postback_url = postback_url
        self.settings = settings
        self.time_scale = float(time_scale)
        self._learn = learn
        self._random = random.Random(seed)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._session = None
        self._semaphore: asyncio.Semaphore | None = None
        self._tasks: set[asyncio.Task] = set()
        self._closed = False
        self._timeout_real = max(settings["timeout_s"] / self.time_scale, settings["min_real_timeout_s"])
        self._retry_real = settings["retry_delay_s"] / self.time_scale
        # counters (written on the loop thread only)
        self.scheduled = 0
        self.pending = 0
        self.posted = 0
        self.failed = 0  # given up after the last retry
        #: ``(tracking id, code)`` of each notification given up after its last retry, in order.
        self.given_up: list[tuple[str, str]] = []
        self.retries = 0
        #: ``time.monotonic()`` by which every notification scheduled so far is
        #: due and its retries are spent; None before the first send.
        self.idle_by: float | None = None

    # -- scheduling (loop thread) ------------------------------------------------------
    def schedule(self, simulation: SendSimulation, arrived_loop_time: float) -> None:
        """Plan every notification of one send, relative to the request's arrival on the loop clock."""
        loop = self._loop or self._bind()
        notes = simulation.notifications
        post_delays = [note.delay_s for note in notes]
        if len(notes) > 1 and self._random.random() < self.settings["out_of_order_rate"]:
            post_delays[0], post_delays[-1] = post_delays[-1], post_delays[0]  # e.g. N102 before its N101
        number = simulation.truth["to"]
        arrived = time.monotonic() - (loop.time() - arrived_loop_time)
        retry_budget = self._timeout_real + int(self.settings["max_retries"]) * (self._retry_real + self._timeout_real)
        for note, post_delay in zip(notes, post_delays, strict=True):
            if note.learns_handset:
                loop.call_at(arrived_loop_time + note.delay_s / self.time_scale, self._learn, number, note.learns_handset)
            copies = 2 if self._random.random() < self.settings["duplicate_rate"] else 1
            for copy in range(copies):
                extra = self._random.uniform(1.0, 60.0) if copy else 0.0
                self.scheduled += 1
                self.pending += 1
                delay = (post_delay + extra) / self.time_scale
                self.idle_by = max(self.idle_by or 0.0, arrived + delay + retry_budget)
                loop.call_at(arrived_loop_time + delay, self._fire, note)

    def _bind(self) -> asyncio.AbstractEventLoop:
        self._loop = asyncio.get_running_loop()
        self._semaphore = asyncio.Semaphore(int(self.settings["concurrency"]))
        return self._loop

    def _fire(self, note: Notification) -> None:
        if self._closed:
            return
        if self.postback_url is None:
            self.pending -= 1  # nowhere to post: the event happened, nothing to deliver
            return
        body = render_postback(note.fields, pretty=self.settings["pretty"], declaration=self.settings["declaration"])
        self._spawn(body, 0, note)

    def _spawn(self, body: bytes, attempt: int, note: Notification) -> None:
        if self._closed:
            return
        task = self._loop.create_task(self._post(body, attempt, note))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _post(self, body: bytes, attempt: int, note: Notification) -> None:
        import aiohttp

        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=int(self.settings["concurrency"]), ttl_dns_cache=None),
                headers={"User-Agent": "skycore-lab-sandbox"},
            )
        if self.settings["format"] == "form":
            payload, headers = {"xml": body.decode("utf-8")}, None
        else:
            payload, headers = body, {"Content-Type": "text/xml; charset=utf-8"}
        ok = False
        async with self._semaphore:  # outside the time-out: waiting for a slot is not the receiver's fault
            try:
                timeout = aiohttp.ClientTimeout(total=self._timeout_real)
                async with self._session.post(self.postback_url, data=payload, headers=headers, timeout=timeout) as reply:
                    await reply.read()
                    ok = reply.status == 200
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
                ok = False
        if ok:
            self.posted += 1
            self.pending -= 1
        elif attempt < self.settings["max_retries"] and not self._closed:
            self.retries += 1
            self._loop.call_later(self._retry_real, self._spawn, body, attempt + 1, note)
        else:
            fields = dict(note.fields)
            self.given_up.append((fields.get("TRACKINGID", ""), fields.get("CODE", "")))
            self.failed += 1
            self.pending -= 1

    # -- shutdown -----------------------------------------------------------------------
    def close_from(self, timeout: float = 10.0) -> None:
        """Stop posting, from any thread but the loop's (:meth:`aclose` run on the loop)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self.aclose(), loop).result(timeout)

    async def aclose(self) -> None:
        """Stop posting: cancel posts in flight, close the connection pool."""
        self._closed = True
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._session is not None:
            await self._session.close()
            self._session = None
