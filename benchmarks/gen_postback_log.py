"""Generate a realistic receiver log of sandbox-shaped postbacks, for benchmarks.

Each simulated send yields the notifications the sandbox would post
(N101 then N102/E102, sometimes a DDM N501/N502 first, sometimes the SMS
fallback N101 SENTAS=SMS + SMS_MT N201/N202), one line-per-document XML
bodies as lxml writes them (``<?xml version='1.0' encoding='UTF-8'?>`` then a
newline, escaped ``\\n`` in the log), timestamps in local offsets (``-05:00``
or a bare ``-04``), a few retried duplicates, arrivals slightly out of order.

Usage::

    python benchmarks/gen_postback_log.py OUT.log --records 1000000 [--seed 0] [--gzip]

Bodies are built with string templates and ``xml.sax.saxutils.escape`` rather
than lxml, only because building a million lxml trees would dominate the run;
the bytes are what ``etree.tostring(..., xml_declaration=True)`` writes.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import random
from datetime import datetime, timedelta, timezone
from xml.sax.saxutils import escape

from skycore_lab import reference as ref
from skycore_lab.postbacks.logformat import HEADER, encode_record
from skycore_lab.postbacks.schema import FIELD_TAGS

DECLARATION = "<?xml version='1.0' encoding='UTF-8'?>\n"
#: Element order of the documents: the postback schema's (what the sandbox writes).
FIELD_ORDER = FIELD_TAGS
HANDSETS = (
    "Apple iPhone 15", "Apple iPhone 14 Pro", "Samsung Galaxy S23", "Samsung SM-A536U",
    "Google Pixel 8", "Motorola moto g stylus", "LG K51", "OnePlus Nord N20 5G",
)
# (spid, calling-code prefix of the recipients): US carriers, Canada/US shared, UK, Mexico.
CARRIERS = (
    ("0001100", "1"), ("0001650", "1"), ("0001770", "1"), ("0001950", "1"),
    ("0044640", "44"), ("0052250", "52"),
)
US_AREAS = ("774", "212", "415", "312", "617", "416", "604")
FAIL_DETAILS = ("Recipient blocked by mobile operator", "Handset not reachable", "Message expired")


def postback_body(fields: dict[str, str]) -> bytes:
    """One POSTBACK document as the sandbox writes it (declaration, one line)."""
    inner = "".join(f"<{tag}>{escape(fields[tag])}</{tag}>" for tag in FIELD_ORDER if tag in fields)
    return (DECLARATION + "<POSTBACK>" + inner + "</POSTBACK>").encode("utf-8")


def _stamp(when: datetime, bare_hour: bool) -> str:
    local = when.astimezone(timezone(timedelta(hours=-5)))
    text = local.strftime("%Y-%m-%dT%H:%M:%S")
    return text + ("-05" if bare_hour else "-05:00")


def _number(rng: random.Random, prefix: str) -> str:
    if prefix == "1":
        return "1" + rng.choice(US_AREAS) + f"{rng.randrange(10**7):07d}"
    return prefix + f"{rng.randrange(10**9):09d}"


def notifications(rng: random.Random, send_no: int, start: datetime):
    """Yield ``(event_time, fields)`` for one simulated send."""
    spid, prefix = rng.choice(CARRIERS)
    to = _number(rng, prefix)
    tracking = base64.b64encode(f"MMS_{send_no}".encode()).decode()
    base = {"MMSID": str(10000 + send_no % 50), "FROM": "12345", "TO": to, "TRACKINGID": tracking, "SPID": spid}
    sent = start + timedelta(seconds=send_no * 0.05)
    bare = rng.random() < 0.5
    if rng.random() < 0.2:  # DDM first
        yield sent, {"ORIGIN": ref.ORIGIN_MMS, "CODE": ref.N501, "STATUS": ref.STATUS_TEXT[ref.N501],
                     **base, "TIMESTAMP": _stamp(sent, bare)}
        ddm_at = sent + timedelta(seconds=rng.uniform(2, 60))
        yield ddm_at, {"ORIGIN": ref.ORIGIN_MMS, "CODE": ref.N502,
                       "STATUS": ref.STATUS_TEXT[ref.N502], **base,
                       "TIMESTAMP": _stamp(ddm_at, bare), "HANDSET": rng.choice(HANDSETS)}
        sent = ddm_at
    roll = rng.random()
    if roll < 0.1:  # SMS/xHTML fallback
        yield sent, {"ORIGIN": ref.ORIGIN_MMS, "CODE": ref.N101, "STATUS": ref.STATUS_TEXT[ref.N101],
                     "SENTAS": "SMS", **base, "TIMESTAMP": _stamp(sent, bare),
                     "STATUSDETAILS": "Sent as SMS with a link to the xHTML page"}
        done = sent + timedelta(seconds=rng.uniform(1, 30))
        yield done, {"ORIGIN": ref.ORIGIN_SMS, "CODE": ref.N202, "STATUS": ref.STATUS_TEXT[ref.N202],
                     **base, "TIMESTAMP": _stamp(done, bare), "AGGREGATORID": str(rng.randrange(1, 9))}
        return
    yield sent, {"ORIGIN": ref.ORIGIN_MMS, "CODE": ref.N101, "STATUS": ref.STATUS_TEXT[ref.N101],
                 "SENTAS": "MMS", **base, "TIMESTAMP": _stamp(sent, bare)}
    done = sent + timedelta(seconds=rng.uniform(3, 120))
    if roll < 0.85:
        yield done, {"ORIGIN": ref.ORIGIN_MMS, "CODE": ref.N102, "STATUS": ref.STATUS_TEXT[ref.N102],
                     "SENTAS": "MMS", **base, "TIMESTAMP": _stamp(done, bare), "HANDSET": rng.choice(HANDSETS),
                     "AGGREGATORID": str(rng.randrange(1, 9))}
    elif roll < 0.97:
        outcome = rng.choice(tuple(ref.FAILED_STATUS_TEXT))
        yield done, {"ORIGIN": ref.ORIGIN_MMS, "CODE": ref.E102, "STATUS": ref.FAILED_STATUS_TEXT[outcome],
                     "SENTAS": "MMS", **base, "TIMESTAMP": _stamp(done, bare),
                     "AGGREGATORID": str(rng.randrange(1, 9)), "STATUSDETAILS": rng.choice(FAIL_DETAILS)}
    # else: a carrier without delivery receipts: no final notification


def generate(path: str, records: int, seed: int = 0, compress: bool = False) -> int:
    """Write a receiver log with exactly ``records`` records; return how many were written."""
    return write_log(path, records, seed, compress=compress)[0]


def write_log(path: str, records: int, seed: int = 0, *, first_send: int = 0,
              compress: bool = False) -> tuple[int, int]:
    """:func:`generate` with sends numbered from ``first_send`` (files whose tracking ids never meet);
    returns (records written, sends begun)."""
    rng = random.Random(seed)
    start = datetime(2026, 3, 2, 14, 0, tzinfo=timezone.utc)
    opener = gzip.open if compress else open
    written = 0
    sends = 0
    pending: list[tuple[datetime, bytes]] = []
    with opener(path, "wb") as out:
        out.write(HEADER)
        buffer: list[bytes] = []
        while written < records:
            for event_at, fields in notifications(rng, first_send + sends, start):
                received = event_at + timedelta(seconds=rng.uniform(0.01, 0.5))
                body = postback_body(fields)
                pending.append((received, body))
                if rng.random() < 0.02:  # a retry: same body, five minutes later
                    pending.append((received + timedelta(minutes=5), body))
            sends += 1
            # flush what can no longer be overtaken (keeps arrival order mostly sorted, bounded memory)
            if len(pending) > 4096:
                pending.sort(key=lambda item: item[0])
                keep = pending[-2048:]
                for received, body in pending[:-2048]:
                    if written >= records:
                        break
                    buffer.append(encode_record(body, "198.51.100.7:443", received))
                    written += 1
                pending = keep
                out.write(b"".join(buffer))
                buffer.clear()
        pending.sort(key=lambda item: item[0])
        for received, body in pending:
            if written >= records:
                break
            buffer.append(encode_record(body, "198.51.100.7:443", received))
            written += 1
        out.write(b"".join(buffer))
    return written, sends


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--gzip", action="store_true")
    args = parser.parse_args(argv)
    generate(args.out, args.records, args.seed, args.gzip)


if __name__ == "__main__":
    main()


# --- the same records in the other formats read_postbacks reads (issue 14) ------------------------
#: Formats :func:`write_format` writes (``log`` is :func:`generate`'s receiver log itself).
FORMATS = ("log", "concatenated", "raw-bodies", "pretty", "crlf", "bom", "form", "directory", "gz")


def _pretty(body: bytes, newline: bytes = b"\n") -> bytes:
    declaration, document = body.split(b"\n", 1)
    document = document.replace(b"><", b">\n  <").replace(b"\n  </POSTBACK>", b"\n</POSTBACK>")
    return (declaration + b"\n" + document + b"\n").replace(b"\n", newline)


def write_format(bodies: list[bytes], fmt: str, path: str) -> None:
    """Write ``bodies`` (as received: declaration, newline, one-line document) in format ``fmt`` at ``path``.

    ``concatenated``: one document per line, declaration included; ``raw-bodies``: the bodies
    appended as received, nothing between them; ``pretty``: indented, one element per line;
    ``crlf``: pretty with CRLF; ``bom``: concatenated behind a UTF-8 BOM; ``form``: one
    ``xml=<percent-encoded body>`` line each; ``directory``: one file per body under ``path``;
    ``gz``: ``concatenated``, gzip-compressed.
    """
    from urllib.parse import quote_plus

    if fmt == "directory":
        import os

        os.makedirs(path, exist_ok=True)
        width = len(str(len(bodies)))
        for number, body in enumerate(bodies):
            with open(os.path.join(path, f"postback_{number:0{width}d}.xml"), "wb") as out:
                out.write(body)
        return
    one_line = (body.replace(b"\n", b"", 1) + b"\n" for body in bodies)
    pieces = {
        "concatenated": lambda: one_line,
        "gz": lambda: one_line,
        "bom": lambda: one_line,
        "raw-bodies": lambda: iter(bodies),
        "pretty": lambda: (_pretty(body) for body in bodies),
        "crlf": lambda: (_pretty(body, b"\r\n") for body in bodies),
        "form": lambda: (b"xml=" + quote_plus(body).encode("ascii") + b"\n" for body in bodies),
    }[fmt]()
    opener = gzip.open if fmt == "gz" else open
    with opener(path, "wb") as out:
        if fmt == "bom":
            out.write(b"\xef\xbb\xbf")
        batch: list[bytes] = []
        for piece in pieces:
            batch.append(piece)
            if len(batch) >= 65536:
                out.write(b"".join(batch))
                batch.clear()
        out.write(b"".join(batch))
