"""Postbacks: receive them durably, read them from any format into one typed frame.

Modules, in the order a postback meets them:

* :mod:`.receiver` — :class:`PostbackReceiver`, the HTTP server that stores
  every postback raw, acknowledging only what is written
  (:mod:`.logwriter`, in the log format of :mod:`.logformat`);
* :mod:`.reader` — :func:`read_postbacks` and :func:`events_from_bodies`;
  :mod:`.tail` — :class:`PostbackTail`, for a log that is still growing;
  :mod:`.ranges` — byte ranges of files (what :func:`skycore_lab.ingest` reads);
* inside the reader: :mod:`.schema` (which element fills which column),
  :mod:`.grammar` and :mod:`.kernel` (the validating fast path; without
  numba :mod:`.vectorscan`), :mod:`.documents` (the hardened lxml path),
  :mod:`.logs` (receiver-log buffers), :mod:`.formats` (documents, form
  lines and small files on the same fast path), :mod:`.timestamps`, :mod:`.records`, :mod:`.assemble` and
  :mod:`.dedupe` (the platform's retries).
"""

from __future__ import annotations

import importlib

from ..columns import EVENT_FRAME_COLUMNS, LINE
from ..exceptions import PostbackDataWarning, PostbackParseWarning

# public name → the module defining it; imported on first use, so that the
# receiver does not load the parser's compiled kernel, nor the parser the web server
_EXPORTS = {
    "read_postbacks": "reader",
    "events_from_bodies": "reader",
    "drop_duplicate_events": "dedupe",
    "PostbackTail": "tail",
    "PostbackReceiver": "receiver",
    "READ_BUFFER_BYTES": "logs",
}

__all__ = [
    "read_postbacks",
    "events_from_bodies",
    "drop_duplicate_events",
    "PostbackTail",
    "PostbackReceiver",
    "PostbackParseWarning",
    "PostbackDataWarning",
    "READ_BUFFER_BYTES",
    "LINE",
    "EVENT_FRAME_COLUMNS",
]


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
