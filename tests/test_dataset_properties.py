"""Property: however the logs' growth is split between runs (torn lines included), the dataset ends up
equal to one read_postbacks of the finished files — retries across files and runs included."""

from __future__ import annotations

import warnings

from dataset_support import assert_same_events, body, log_line
from hypothesis import given, settings
from hypothesis import strategies as st

import skycore_lab as sl

# one notification: (send, code index); where its copies go: (file, received minute) per copy
notification = st.tuples(st.integers(0, 6), st.integers(0, 2))
copies = st.lists(st.tuples(st.sampled_from(["a.log", "b.log", "c.txt"]), st.integers(0, 30)), min_size=1, max_size=3)
CODES = ("N101", "N102", "E102")


def _files(records) -> dict[str, bytes]:
    data = {"a.log": b"", "b.log": b"", "c.txt": b""}
    for (send, code), where in records:
        for name, minute in where:
            if name.endswith(".log"):
                data[name] += log_line(send, CODES[code], received_minute=minute, minute=code)
            else:  # raw bodies appended as received: declaration, newline, document
                data[name] += body(send, CODES[code], code) + b"\n"
    return data


@settings(max_examples=25)
@given(
    records=st.lists(st.tuples(notification, copies), min_size=1, max_size=12),
    cuts=st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1), st.floats(0, 1)), max_size=3),
)
def test_any_split_of_the_appends_gives_the_one_shot_frame(tmp_path_factory, records, cuts):
    folder = tmp_path_factory.mktemp("logs")
    final = _files(records)
    paths = [folder / name for name in final]
    for path in paths:
        path.write_bytes(b"")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sl.PostbackParseWarning)
        # each run sees every file grown to a random point (monotonic), torn lines included
        reached = dict.fromkeys(final, 0)
        for fractions in cuts:
            for (name, data), fraction in zip(final.items(), fractions):
                size = max(reached[name], int(len(data) * fraction))
                with open(folder / name, "ab") as handle:
                    handle.write(data[reached[name]:size])
                reached[name] = size
            sl.ingest(paths, folder / "ds")
        for name, data in final.items():
            with open(folder / name, "ab") as handle:
                handle.write(data[reached[name]:])
        result = sl.ingest(paths, folder / "ds")
        expected = sl.read_postbacks(paths)
    events = sl.read_events(folder / "ds")
    assert result.bad_records == 0
    assert_same_events(events, expected)
