"""The parser benchmark's code path on ~20k records (correctness only, no timing)."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from skycore_lab import columns as col

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import bench_parser  # noqa: E402
import gen_postback_log  # noqa: E402

from skycore_lab.postbacks import read_postbacks  # noqa: E402


def test_benchmark_runs_and_reports(tmp_path):
    result = bench_parser.run(20_000, tmp_path, memory=False)
    assert result["records"] == 20_000
    assert 19_000 < result["rows"] <= 20_000  # ~2 % retries collapsed
    assert result["read_postbacks_s"] > 0 and result["lxml_s"] > 0
    assert result["frame_mb"] > 0


def test_fast_path_agrees_with_slow_path_on_generated_log(tmp_path):
    log = bench_parser.ensure_log(tmp_path, 20_000)
    fast = read_postbacks(log, threads=2, buffer_bytes=1 << 20)
    bodies = bench_parser.record_bodies(log)
    # the same bodies through the single-document path (fast regex or lxml), no received_at
    from skycore_lab.postbacks import events_from_bodies

    slow = events_from_bodies(bodies, drop_duplicates=False)
    assert len(slow) == 20_000
    everything = read_postbacks(log, drop_duplicates=False, threads=1)
    compare = [c for c in col.EVENT_COLUMNS if c not in (col.RECEIVED_AT, col.SOURCE, col.EXTRA)]
    left = everything.sort_values("line")[compare].reset_index(drop=True)
    pd.testing.assert_frame_equal(left, slow[compare].reset_index(drop=True), check_categorical=False)
    assert fast[col.TRACKING_ID].notna().all() and fast[col.CARRIER].notna().all()
    assert fast[col.RECEIVED_AT].is_monotonic_increasing
    assert not fast.duplicated([col.TRACKING_ID, col.CODE, col.TIMESTAMP]).any()


def test_generator_writes_exact_record_count(tmp_path):
    path = tmp_path / "g.log.gz"
    gen_postback_log.generate(str(path), 500, seed=3, compress=True)
    frame = read_postbacks(path, drop_duplicates=False)
    assert len(frame) == 500


def test_format_benchmark_reads_the_same_rows_in_every_format(tmp_path):
    """``--format``: each format is written from the log's bodies and read to the same rows (pure path
    here, to keep the test short; the benchmark runs both)."""
    results = bench_parser.run_formats(1_500, tmp_path, list(gen_postback_log.FORMATS), engines=("numpy",),
                                       directory_records=300)
    assert [r["format"] for r in results] == list(gen_postback_log.FORMATS)
    rows = {r["format"]: r["rows"] for r in results}
    assert len({rows[f] for f in rows if f != "directory"}) == 1 and 1_400 < rows["log"] <= 1_500, rows
    assert 290 < rows["directory"] <= 300
    assert all(r["engine"] == "numpy" and r["per_s"] > 0 and r["ratio"] > 0 for r in results)
