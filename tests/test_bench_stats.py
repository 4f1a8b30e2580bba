"""The statistics benchmark's code path on a small frame (correctness only, no timing)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import bench_stats  # noqa: E402

from skycore_lab import columns as col  # noqa: E402


def test_benchmark_runs_and_reports():
    result = bench_stats.run(20_000, repeat=1)
    assert result["sends"] == 20_000
    assert all(result[name] > 0 for name in result if name.endswith("_s"))


def test_benchmark_frame_has_every_kind_of_send():
    frame = bench_stats.make_deliveries(5_000)
    assert set(frame[col.OUTCOME]) == {"delivered", "failed", "pending"}
    assert frame[col.ARM].nunique() == 2
