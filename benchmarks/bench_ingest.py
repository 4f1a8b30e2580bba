"""Ingest into a Parquet dataset against read_postbacks on the same log, in the same run.

Usage::

    python benchmarks/bench_ingest.py [LOG] [--records 1000000] [--workdir DIR]

Without LOG, a receiver log of ``--records`` records is generated
(:mod:`gen_postback_log`). Prints records/s of: ``read_postbacks`` (the
baseline), a first ``ingest`` into an empty dataset, a re-run with nothing
new (what a periodic job costs when the logs did not grow), a run after 1 %
more records were appended, and ``read_events`` of the whole dataset — each
as a ratio to the baseline.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import skycore_lab as sl  # noqa: E402
from gen_postback_log import generate  # noqa: E402


def _timed(function, *args, **kwargs):
    start = time.perf_counter()
    value = function(*args, **kwargs)
    return value, time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("log", nargs="?", help="a receiver log (default: generate one)")
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args(argv)
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="bench-ingest-"))
    workdir.mkdir(parents=True, exist_ok=True)
    source = Path(args.log) if args.log else workdir / f"postbacks_{args.records}.log"
    if not source.exists():
        generate(str(source), args.records)
    log = workdir / "growing.log"  # a copy we may append to
    shutil.copyfile(source, log)
    dataset = workdir / "ds"
    shutil.rmtree(dataset, ignore_errors=True)
    warnings.simplefilter("ignore", sl.PostbackParseWarning)

    sl.read_postbacks(log)  # warm-up: the compiled kernel, the imports
    events, read_s = _timed(sl.read_postbacks, log)
    records = len(events)
    del events
    result, ingest_s = _timed(sl.ingest, log, dataset)
    again, rerun_s = _timed(sl.ingest, log, dataset)
    with open(source, "rb") as handle:  # 1 % more: the first lines again, as new arrivals (they are retries)
        extra = b"".join(line for _, line in zip(range(records // 100), handle) if not line.startswith(b"#"))
    with open(log, "ab") as handle:
        handle.write(extra)
    grown, grow_s = _timed(sl.ingest, log, dataset)
    back, back_s = _timed(sl.read_events, dataset)
    size = sum(f.stat().st_size for f in dataset.rglob("*.parquet"))

    print(f"log: {source} ({os.path.getsize(source) / 1e6:.0f} MB, {records:,} records after dedupe)")
    print(f"read_postbacks             {read_s:7.2f} s  {records / read_s:10,.0f} records/s  (baseline)")
    print(f"ingest, empty dataset      {ingest_s:7.2f} s  {result.new_records / ingest_s:10,.0f} records/s  "
          f"{read_s / ingest_s:.2f}x the baseline's rate  ({result.new_records:,} new)")
    print(f"ingest, nothing new        {rerun_s:7.2f} s  ({again.new_records} new; {rerun_s / read_s:.3f}x the baseline's time)")
    print(f"ingest, +1 % appended      {grow_s:7.2f} s  ({grown.new_records} new, {grown.duplicates_dropped:,} "
          f"retries dropped; {grow_s / read_s:.3f}x the baseline's time)")
    print(f"read_events (pandas)       {back_s:7.2f} s  {len(back) / back_s:10,.0f} records/s  "
          f"{read_s / back_s:.2f}x the baseline's rate")
    print(f"dataset on disk: {size / 1e6:.0f} MB in {len(list(dataset.rglob('*.parquet')))} part files")
    if not args.workdir:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
