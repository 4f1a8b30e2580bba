"""The receiver's log format (version 1): the raw truth of every postback.

One record per line, three tab-separated fields, LF-terminated::

    2026-11-25T15:04:05.123456Z<TAB>203.0.113.7:53122<TAB><escaped body>\\n

* ``received_at``: UTC, ISO-8601 with microseconds and ``Z``.
* ``remote``: ``host:port`` of the peer as the server saw it (``-`` if unknown).
* ``body``: the exact request body bytes, not decoded, not re-encoded, with
  four bytes escaped so a record stays on one line: backslash → ``\\\\``,
  LF → ``\\n``, CR → ``\\r``, TAB → ``\\t``. Unescaping gives back the body
  byte for byte (a form-encoded body stays form-encoded: parsing happens on
  read, so a parser fix re-reads old logs correctly).

A file may start with the header line :data:`HEADER` (the receiver writes it
at the top of each new file), which readers use to recognise the format; any
other line starting with ``#`` is a comment.
"""

from __future__ import annotations

from datetime import datetime, timezone

__all__ = ["HEADER", "encode_record", "decode_line", "escape_body", "unescape_body", "format_received_at"]

HEADER = b"#skycore-lab postback log v1\n"

_ESCAPES = ((b"\\", b"\\\\"), (b"\n", b"\\n"), (b"\r", b"\\r"), (b"\t", b"\\t"))
_UNESCAPE = {b"\\": b"\\", b"n": b"\n", b"r": b"\r", b"t": b"\t"}


def escape_body(body: bytes) -> bytes:
    """Escape backslash, LF, CR and TAB so the body fits on one line."""
    if b"\\" in body or b"\n" in body or b"\r" in body or b"\t" in body:
        for raw, escaped in _ESCAPES:
            body = body.replace(raw, escaped)
    return body


def unescape_body(field: bytes) -> bytes:
    """Inverse of :func:`escape_body`. Raises ValueError on a dangling or unknown escape."""
    if b"\\" not in field:
        return field
    out = bytearray()
    i, n = 0, len(field)
    while i < n:
        j = field.find(b"\\", i)
        if j < 0:
            out += field[i:]
            break
        out += field[i:j]
        if j + 1 >= n:
            raise ValueError("dangling backslash at end of body")
        replacement = _UNESCAPE.get(field[j + 1 : j + 2])
        if replacement is None:
            raise ValueError(f"unknown escape \\{field[j + 1:j + 2].decode('latin-1')} in body")
        out += replacement
        i = j + 2
    return bytes(out)


def format_received_at(when: datetime | None = None) -> str:
    """``when`` (default now) as the log's UTC timestamp text."""
    when = when or datetime.now(timezone.utc)
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def encode_record(body: bytes, remote: str | None = None, received_at: datetime | str | None = None) -> bytes:
    """One log line (with its trailing LF) for a received body."""
    stamp = received_at if isinstance(received_at, str) else format_received_at(received_at)
    peer = (remote or "-").replace("\t", " ").replace("\n", " ")
    return b"%s\t%s\t%s\n" % (stamp.encode("ascii"), peer.encode("utf-8", "replace"), escape_body(body))


def decode_line(line: bytes) -> tuple[str, str, bytes]:
    """Split one log line into ``(received_at_text, remote, body)``.

    Raises ValueError when the line does not have the three fields or the
    body's escapes are broken.
    """
    line = line.rstrip(b"\r\n")
    parts = line.split(b"\t", 2)
    if len(parts) != 3:
        raise ValueError("not a receiver log record (expected 3 tab-separated fields)")
    stamp, remote, body = parts
    return stamp.decode("ascii"), remote.decode("utf-8", "replace"), unescape_body(body)
