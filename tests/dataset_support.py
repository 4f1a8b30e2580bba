"""Shared helpers of the dataset tests: postback bodies written by hand, and one frame comparison."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pandas as pd

from skycore_lab.postbacks.logformat import HEADER, encode_record

START = datetime(2026, 3, 2, 23, 50, tzinfo=timezone.utc)  # sends straddle midnight: two partitions


def body(send: int, code: str = "N101", minute: int = 0, status: str = "Message Sent") -> bytes:
    """One postback document as the platform posts it (declaration, newline, one-line document)."""
    stamp = (START + timedelta(minutes=send + minute)).astimezone(timezone(timedelta(hours=-5)))
    return (
        "<?xml version='1.0' encoding='UTF-8'?>\n<POSTBACK><ORIGIN>MMS_MT</ORIGIN>"
        f"<CODE>{code}</CODE><STATUS>{status}</STATUS><SENTAS>MMS</SENTAS><MMSID>10002</MMSID>"
        f"<FROM>12345</FROM><TO>1415343{send:04d}</TO><TRACKINGID>send-{send}</TRACKINGID>"
        f"<SPID>000{1100 + 550 * (send % 3)}</SPID><TIMESTAMP>{stamp:%Y-%m-%dT%H:%M:%S}-05:00</TIMESTAMP>"
        "</POSTBACK>"
    ).encode()


def log_line(send: int, code: str = "N101", *, received_minute: float = 0.0, minute: int = 0) -> bytes:
    """A receiver-log record of :func:`body`, received ``received_minute`` after the notification."""
    received = START + timedelta(minutes=send + minute + received_minute)
    return encode_record(body(send, code, minute), "198.51.100.7:443", received)


def log_lines(sends: range, codes=("N101", "N102")) -> list[bytes]:
    return [log_line(send, code, minute=i) for send in sends for i, code in enumerate(codes)]


def write(path, data: bytes, *, header: bool = False) -> None:
    with open(path, "wb") as handle:
        handle.write((HEADER if header else b"") + data)


def append(path, data: bytes) -> None:
    with open(path, "ab") as handle:
        handle.write(data)


def sorted_categories(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with every categorical's categories sorted (read_events' order; read_postbacks keeps
    the order it met them in) and only those used (read_postbacks' ``source`` also lists a file
    whose every record was a retry)."""
    frame = frame.copy()
    for name in frame.columns:
        if isinstance(frame[name].dtype, pd.CategoricalDtype):
            values = frame[name].cat.remove_unused_categories()
            frame[name] = values.cat.reorder_categories(sorted(values.cat.categories))
    return frame


def assert_same_events(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    """Equal frames: same rows in the same order, same dtypes (categories compared as sets)."""
    pd.testing.assert_frame_equal(sorted_categories(got), sorted_categories(expected))
