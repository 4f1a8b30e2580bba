"""The conformance corpus: every postback example of the public documentation reads as documented.

Each ``tests/data/conformance/postbacks/<name>.xml`` is one example as
published (typos included) and ``<name>.expected.json`` its reading, written
from the documentation's text (see ``tests/data/conformance/postbacks/README.md``).
Every file goes through every entry point — ``read_postbacks`` on the file,
on a directory, on a receiver log holding it as a body; ``events_from_bodies``;
``PostbackTail`` — and must give the expected events, bad records and
deliveries. ``sends.json`` adds the documented sends that span several
examples (an N101 and the N102 that follows it).
"""

from __future__ import annotations

import json
import math
import shutil
import warnings
from pathlib import Path

import pandas as pd
import pytest

from skycore_lab import columns as col
from skycore_lab import deliveries
from skycore_lab.exceptions import PostbackDataWarning
from skycore_lab.postbacks import PostbackTail, events_from_bodies, read_postbacks
from skycore_lab.postbacks.logformat import HEADER, encode_record

CORPUS = Path(__file__).parent / "data" / "conformance" / "postbacks"
FILES = sorted(CORPUS.glob("*.xml"))
RECEIVED = "2026-03-02T14:00:00.000000Z"
EVENT_FIELDS = (
    col.ORIGIN, col.CODE, col.STATUS, col.SENT_AS, col.MMS_ID, col.SENDER, col.TO, col.TRACKING_ID, col.SPID,
    col.CARRIER, col.COUNTRY, col.TIMESTAMP, col.HANDSET, col.AGGREGATOR_ID, col.STATUS_DETAILS,
    col.TIMESTAMP_INFERRED, col.RECOVERED, col.EXTRA,
)


def _expected(path: Path) -> dict:
    return json.loads(path.with_suffix(".expected.json").read_text(encoding="utf-8"))


def _value(value):
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ").replace(".000000Z", "Z")
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return value


def _rows(frame: pd.DataFrame) -> list[dict]:
    return [{name: _value(row[name]) for name in EVENT_FIELDS} for _, row in frame.iterrows()]


def _check(frame: pd.DataFrame, errors: list, expected: dict, where: str) -> None:
    assert _rows(frame) == expected["events"], where
    reasons = [e.reason for e in errors]
    assert len(reasons) == len(expected["bad_records"]), (where, reasons)
    for reason, wanted in zip(reasons, expected["bad_records"]):
        assert wanted["reason"] in reason, (where, reason)


def _read_file(path, tmp_path):
    errors = []
    return read_postbacks(path, on_bad_lines=lambda raw, err: errors.append(err)), errors


def _read_directory(path, tmp_path):
    directory = tmp_path / "dir"
    directory.mkdir()
    shutil.copy(path, directory / path.name)
    errors = []
    return read_postbacks(directory, on_bad_lines=lambda raw, err: errors.append(err)), errors


def _log(path, tmp_path) -> Path:
    log = tmp_path / "postbacks.log"
    log.write_bytes(HEADER + encode_record(path.read_bytes(), "203.0.113.7:53122", RECEIVED))
    return log


def _read_log(path, tmp_path):
    errors = []
    return read_postbacks(_log(path, tmp_path), on_bad_lines=lambda raw, err: errors.append(err)), errors


def _read_bodies(path, tmp_path):
    errors = []
    return events_from_bodies([path.read_bytes()], on_bad_lines=lambda raw, err: errors.append(err)), errors


def _read_tail(path, tmp_path):
    errors = []
    tail = PostbackTail(_log(path, tmp_path), on_bad_lines=lambda raw, err: errors.append(err))
    frame = tail.read_new()
    assert len(tail.read_new()) == 0  # read once
    return frame, errors


ENTRY_POINTS = {
    "file": _read_file,
    "directory": _read_directory,
    "receiver_log": _read_log,
    "bodies": _read_bodies,
    "tail": _read_tail,
}


def test_the_corpus_is_whole():
    """Every example has its expectation and its source, and the corpus is not empty."""
    assert len(FILES) >= 90
    for path in FILES:
        expected = _expected(path)
        source = expected["source"]
        assert source["repository"] and source["page"] and len(source["commit"]) == 40, path.name
        assert set(expected) >= {"events", "bad_records", "deliveries"}, path.name
        assert expected["events"] or expected["bad_records"], f"{path.name}: reads to nothing, silently"


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_every_example_reads_as_documented(path, entry, tmp_path):
    expected = _expected(path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        frame, errors = ENTRY_POINTS[entry](path, tmp_path)
    _check(frame, errors, expected, f"{path.name} via {entry}")
    said = " ".join(str(w.message) for w in caught if issubclass(w.category, PostbackDataWarning))
    if any(e[col.RECOVERED] for e in expected["events"]):
        assert "repaired" in said and "unclosed element" in said or "missing space" in said, said
    if any(e[col.TIMESTAMP_INFERRED] for e in expected["events"]):
        assert "no UTC offset" in said, said
    if entry == "file" and said:
        assert str(path) in said  # the warning names the file


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_every_example_gives_its_documented_sends(path):
    expected = _expected(path)
    frame = read_postbacks(path, on_bad_lines="skip")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sends = deliveries(frame)
    got = [
        {"tracking_id": r[col.TRACKING_ID], "outcome": r[col.OUTCOME], "sent_as": _value(r[col.SENT_AS]),
         "latency_s": _value(r[col.LATENCY_S])}
        for _, r in sends.iterrows()
    ]
    assert got == expected["deliveries"]


SENDS = json.loads((CORPUS / "sends.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("send", SENDS, ids=[s["name"] for s in SENDS])
def test_documented_sends_across_examples(send, tmp_path):
    """The notifications of one documented send, read together (files, and one receiver log)."""
    paths = [CORPUS / name for name in send["files"]]
    log = tmp_path / "postbacks.log"
    log.write_bytes(HEADER + b"".join(
        encode_record(p.read_bytes(), "-", f"2026-03-02T14:00:{i:02d}.000000Z") for i, p in enumerate(paths)
    ))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for frame in (read_postbacks(paths), read_postbacks(log)):
            sends = deliveries(frame).set_index(col.TRACKING_ID)
            assert sorted(sends.index) == sorted(send["deliveries"]), send["name"]
            for tracking_id, wanted in send["deliveries"].items():
                row = sends.loc[tracking_id]
                assert row[col.OUTCOME] == wanted["outcome"], send["name"]
                assert _value(row[col.SENT_AS]) == wanted["sent_as"], send["name"]
                if wanted["latency_s"] is None:
                    assert pd.isna(row[col.LATENCY_S])
                else:
                    assert row[col.LATENCY_S] == pytest.approx(wanted["latency_s"], abs=1e-6), send["name"]
