"""ingest killed with SIGKILL at each step of its commit: the dataset stays readable, the next run completes it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from dataset_support import append, assert_same_events, log_line, log_lines, write

import skycore_lab as sl
from skycore_lab.dataset.ingest import PAUSE_ENV
from skycore_lab.dataset.state import STAGING

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = "import sys, skycore_lab as sl; sl.ingest(sys.argv[2:], sys.argv[1])"


def _killed_ingest(dataset, sources, point: str, marker) -> None:
    """Run ingest in a subprocess, SIGKILL it once it reaches ``point``."""
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env[PAUSE_ENV] = f"{point}:{marker}"
    process = subprocess.Popen([sys.executable, "-c", SCRIPT, str(dataset), *map(str, sources)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 50
        while not os.path.exists(marker):
            if process.poll() is not None:
                pytest.fail(f"ingest ended before {point}: {process.stderr.read().decode()[-2000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"ingest did not reach {point}")
            time.sleep(0.02)
        os.kill(process.pid, signal.SIGKILL)
        assert process.wait(10) == -signal.SIGKILL
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stderr.close()


@pytest.mark.parametrize("point", ["parsed", "staged", "renamed", "committed"])
def test_a_kill_leaves_a_readable_dataset_and_the_next_run_completes_it(tmp_path, point):
    a, b, ds = tmp_path / "a.log", tmp_path / "b.log", tmp_path / "ds"
    write(a, b"".join(log_lines(range(0, 20))), header=True)
    write(b, b"".join(log_line(n, received_minute=5) for n in range(20, 25)))  # retries, received late
    sl.ingest([a, b], ds)
    before = sl.read_events(ds)
    # new records in both files, and the originals of b's retries (received earlier: they replace
    # b's copies, so the run also rewrites a committed part)
    append(a, b"".join(log_lines(range(20, 40), codes=("N102",))))
    append(b, b"".join(log_line(n) for n in range(20, 25)))
    _killed_ingest(ds, [a, b], point, tmp_path / "paused")

    after_kill = sl.read_events(ds)  # readable, and exactly one commit
    if point == "committed":
        assert_same_events(after_kill, sl.read_postbacks([a, b]))
    else:
        assert_same_events(after_kill, before)
    if point in ("staged", "renamed"):
        assert os.listdir(ds / STAGING)  # the run's leftovers are there…
    sl.ingest([a, b], ds)
    assert not os.path.exists(ds / STAGING)  # …and gone after the next run
    events = sl.read_events(ds)
    assert_same_events(events, sl.read_postbacks([a, b]))
    assert not events.duplicated(["tracking_id", "code", "timestamp"]).any()
    # every file on disk is a committed one (leftovers of the killed run removed)
    on_disk = {f"{d}/{f}" for d in os.listdir(ds) if d.startswith("event_date=") for f in os.listdir(ds / d)}
    from skycore_lab.dataset.state import read_state

    assert on_disk == set(read_state(str(ds))["parts"])


def test_a_kill_during_the_first_run_leaves_no_dataset_to_read_yet(tmp_path):
    a, ds = tmp_path / "a.log", tmp_path / "ds"
    write(a, b"".join(log_lines(range(0, 10))))
    _killed_ingest(ds, [a], "renamed", tmp_path / "paused")
    with pytest.raises(sl.DatasetError, match="not an events dataset"):
        sl.read_events(ds)
    assert sl.ingest(a, ds).new_records == 20
    assert_same_events(sl.read_events(ds), sl.read_postbacks(a))
