"""Benchmark skycore-lab at scale: logs → Parquet dataset → Dask pipeline, against pandas on what fits.

Steps, each timed in this run:

1. **Generate** ``--records`` postback records (the benchmarks' generator,
   :mod:`gen_postback_log`: sandbox-shaped bodies, retries, out-of-order
   arrivals) in ``--files`` receiver logs, on ``--jobs`` processes, plus a
   manifest (each send's arm) as Parquet. Each file's sends have their own
   tracking ids. 20M records are about 8 GB of logs.
2. **Ingest** the logs into a Parquet dataset with ``sl.ingest`` (records/s).
   Without ``skycore_lab.dataset`` (built on another branch) the step is
   skipped with a message, and the Dask pipeline reads the logs themselves,
   one partition per file (``read_postbacks`` on the workers).
3. **Dask pipeline** on a ``LocalCluster`` (``--workers`` processes, one
   thread each, ``--memory-limit`` each): events → ``deliveries`` (shuffled
   by send, with the manifest) → ``delivery_rates`` and ``latency_summary``
   by carrier × arm. Prints its time, and each worker's peak memory (the
   workers' own peak RSS, asked of them at the end), which must stay under
   the limit.
4. **pandas baseline**: the same pipeline in one process (a subprocess, so
   its peak RSS is its own) on the largest number of whole files that fits:
   one file is measured first, and as many files as keep the projected peak
   under half the memory available are then run. Prints time, peak RSS and
   records/s, and the Dask pipeline's records/s as a ratio to it.

The machine is shared: only the ratios mean something.

Usage::

    python benchmarks/bench_scale.py --records 20000000 [--files 40] [--dir /tmp/skycore-scale]
    python benchmarks/bench_scale.py --records 2000000          # a quick run: proves the path
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pandas as pd

import gen_postback_log as gen
from skycore_lab.frames.times import TIME_COLUMNS

ARMS = ("control", "ddm_5", "ddm_10")
#: Send numbers of file i start at i × this: tracking ids never repeat across files.
SENDS_PER_FILE_BOUND = 1_000_000_000


# --- 1. generating -----------------------------------------------------------------------------------
def generate_file(path: str, records: int, seed: int, first_send: int) -> tuple[int, int, int]:
    """One receiver log of ``records`` records, sends numbered from ``first_send``; (records, sends, bytes)."""
    written, sends = gen.write_log(path, records, seed, first_send=first_send)
    return written, sends, os.path.getsize(path)


def write_manifest(path: str, first_send: int, sends: int) -> None:
    """Each send's tracking id (as the generator makes it) and arm (send number mod 3)."""
    numbers = range(first_send, first_send + sends)
    frame = pd.DataFrame({
        "tracking_id": [base64.b64encode(f"MMS_{n}".encode()).decode() for n in numbers],
        "arm": pd.Categorical([ARMS[n % len(ARMS)] for n in numbers], categories=ARMS),
    })  # fmt: skip
    frame.to_parquet(path, index=False)


def _generate_one(job: tuple[str, str, int, int, int]) -> tuple[int, int, int]:
    log, manifest, records, seed, first_send = job
    written, sends, size = generate_file(log, records, seed, first_send)
    write_manifest(manifest, first_send, sends)
    return written, sends, size


def generate(folder: Path, records: int, files: int, jobs: int) -> tuple[list[Path], Path, int]:
    logs_dir, manifest_dir = folder / "logs", folder / "manifest"
    logs_dir.mkdir(parents=True, exist_ok=True)
    manifest_dir.mkdir(parents=True, exist_ok=True)
    per_file = [records // files + (1 if i < records % files else 0) for i in range(files)]
    work = [(str(logs_dir / f"postbacks-{i:03d}.log"), str(manifest_dir / f"part-{i:03d}.parquet"), n, 1000 + i,
             i * SENDS_PER_FILE_BOUND) for i, n in enumerate(per_file)]  # fmt: skip
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        results = list(pool.map(_generate_one, work))
    return [Path(job[0]) for job in work], manifest_dir, sum(size for _w, _s, size in results)


# --- 3. the Dask pipeline ------------------------------------------------------------------------------
def _peak_rss_bytes() -> int:
    """This process's own peak RSS: VmHWM, not ru_maxrss, which Linux carries over an exec from the
    parent (a worker or subprocess started by a 6 GB parent would report the parent's 6 GB)."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # not Linux: kilobytes too


def _read_log(path: str) -> pd.DataFrame:
    import skycore_lab as sl

    return sl.read_postbacks(path).drop(columns=["extra", "line"])


def dask_pipeline(events_source, manifest_dir: Path, workers: int, memory_limit: str) -> dict:
    """events → deliveries → rates and latency by carrier × arm, on a LocalCluster; time and workers' peaks."""
    import dask
    import dask.dataframe as dd

    import skycore_lab as sl
    from skycore_lab.distributed.cluster import dask_client

    with dask_client(n_workers=workers, threads_per_worker=1, memory_limit=memory_limit) as client:
        client.run(lambda: None)  # workers up before the clock starts
        started = time.perf_counter()
        if isinstance(events_source, list):  # no dataset: one partition per log, read on the workers
            from dask.dataframe.utils import make_meta

            meta = make_meta(_read_log(str(events_source[0])).iloc[:0])
            events = dd.from_delayed([dask.delayed(_read_log)(str(path)) for path in events_source], meta=meta,
                                     verify_meta=False)  # categories differ by file
        else:
            events = sl.read_events(events_source, engine="dask")
        manifest = dd.read_parquet(str(manifest_dir))
        by = ("carrier", "arm")
        # kept on the workers for both statistics: only the columns they read (the times give the latest
        # known time and the clocks' starts), not the sends' text columns
        needed = [*by, "outcome", "latency_s", "total_latency_s", *TIME_COLUMNS]
        sends = sl.deliveries(events, manifest)[needed].persist()
        with warnings.catch_warnings():
            # the manifest lists the sends whose postbacks the generator cut off at --records: pending
            # without any time, so left out of the latency (LatencyDataWarning), in both pipelines
            warnings.simplefilter("ignore", sl.LatencyDataWarning)
            rates = sl.delivery_rates(sends, by=by)
            latency = sl.latency_summary(sends, by=by)
        n_sends = int(rates["sent"].sum())
        seconds = time.perf_counter() - started
        peaks = client.run(_peak_rss_bytes)
    return {"seconds": seconds, "worker_peaks": sorted(peaks.values()), "rates": rates, "latency": latency,
            "sends": n_sends}  # fmt: skip


# --- 4. the pandas baseline ------------------------------------------------------------------------------
def pandas_pipeline(logs: list[str], manifest_dir: str) -> dict:
    """The same pipeline in this process (run as a subprocess: its peak RSS is the pipeline's)."""
    import skycore_lab as sl

    started = time.perf_counter()
    events = sl.read_postbacks(logs)
    wanted = set(events["tracking_id"].dropna().unique())
    manifest = pd.read_parquet(manifest_dir)
    manifest = manifest[manifest["tracking_id"].isin(wanted)]  # these files' sends
    sends = sl.deliveries(events, manifest)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sl.LatencyDataWarning)  # as in dask_pipeline
        sl.delivery_rates(sends, by=("carrier", "arm"))
        sl.latency_summary(sends, by=("carrier", "arm"))
    return {"seconds": time.perf_counter() - started, "peak_rss": _peak_rss_bytes(), "sends": len(sends)}


def _pandas_subprocess(logs: list[Path], manifest_dir: Path) -> dict:
    command = [sys.executable, __file__, "--pandas-baseline", str(manifest_dir), *map(str, logs)]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _available_bytes() -> int:
    with open("/proc/meminfo", encoding="ascii") as info:
        for line in info:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 4 << 30


# --- the run ----------------------------------------------------------------------------------------------
def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20_000_000)
    parser.add_argument("--files", type=int, default=None, help="log files (default: one per 500k records, ≥ 4)")
    parser.add_argument("--dir", default=None, help="work folder (default: a new temporary one, removed after)")
    parser.add_argument("--jobs", type=int, default=2, help="processes generating the logs")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--memory-limit", default="2GiB", help="memory limit of each Dask worker")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument("--reuse", action="store_true",
                        help="with --dir: take the logs a previous run generated there (same --records and --files)")
    parser.add_argument("--pandas-baseline", nargs="+", help=argparse.SUPPRESS)  # internal: MANIFEST_DIR LOG…
    args = parser.parse_args(argv)
    if args.pandas_baseline:
        manifest_dir, *logs = args.pandas_baseline
        print(json.dumps(pandas_pipeline(logs, manifest_dir)))
        return

    files = args.files or max(4, -(-args.records // 500_000))
    folder = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="skycore-scale-"))
    try:
        started = time.perf_counter()
        reused = [folder / "logs" / f"postbacks-{i:03d}.log" for i in range(files)]
        if args.reuse and all(path.exists() for path in reused) and (folder / "manifest").is_dir():
            logs, manifest_dir, size = reused, folder / "manifest", sum(path.stat().st_size for path in reused)
            print(f"reusing {files} files of logs in {folder / 'logs'}, {size / 1e9:.2f} GB")
        else:
            logs, manifest_dir, size = generate(folder, args.records, files, args.jobs)
            print(f"generated {args.records:,} records in {files} files, {size / 1e9:.2f} GB, "
                  f"in {time.perf_counter() - started:.0f} s")  # fmt: skip

        try:
            import skycore_lab as sl

            ingest = sl.ingest
        except (ImportError, AttributeError):
            ingest = None
        if ingest is None:
            print("ingest: skipped — skycore_lab.dataset (sl.ingest, sl.read_events) is not in this installation; "
                  "the Dask pipeline reads the logs instead, one partition per file")  # fmt: skip
            source = logs
        else:
            dataset = folder / "dataset"
            shutil.rmtree(dataset, ignore_errors=True)  # a first ingest, not a re-run
            started = time.perf_counter()
            peak_before = _peak_rss_bytes()
            counts = ingest([str(path) for path in logs], str(dataset))
            seconds = time.perf_counter() - started
            print(f"ingest: {args.records:,} records in {seconds:.1f} s = {args.records / seconds:,.0f} records/s "
                  f"({counts}); peak RSS of this process {max(_peak_rss_bytes(), peak_before) / 2**30:.2f} GiB")  # fmt: skip
            source = dataset

        result = dask_pipeline(source, manifest_dir, args.workers, args.memory_limit)
        limit = _parse_bytes(args.memory_limit)
        peaks = ", ".join(f"{peak / 2**30:.2f} GiB" for peak in result["worker_peaks"])
        print(f"Dask pipeline ({args.workers} workers × 1 thread, {args.memory_limit} each): {result['seconds']:.1f} s "
              f"= {args.records / result['seconds']:,.0f} records/s; {len(result['rates'])} carrier × arm groups")
        print(f"peak memory per worker: {peaks} (limit {args.memory_limit}: "
              f"{'under' if max(result['worker_peaks']) < limit else 'OVER'})")  # fmt: skip

        per_file = args.records / files
        probe = _pandas_subprocess(logs[:1], manifest_dir)
        fits = max(1, min(files, int(_available_bytes() * 0.5 // max(probe["peak_rss"], 1))))
        baseline = probe if fits == 1 else _pandas_subprocess(logs[:fits], manifest_dir)
        records = per_file * fits
        print(f"pandas pipeline on {fits} of {files} files ({records:,.0f} records, the largest that fits in half "
              f"the available memory): {baseline['seconds']:.1f} s = {records / baseline['seconds']:,.0f} records/s, "
              f"peak RSS {baseline['peak_rss'] / 2**30:.2f} GiB")  # fmt: skip
        ratio = (args.records / result["seconds"]) / (records / baseline["seconds"])
        print(f"ratio Dask / pandas, records/s: {ratio:.2f}×")
    finally:
        if not args.keep and not args.dir:
            shutil.rmtree(folder, ignore_errors=True)


def _parse_bytes(text: str) -> int:
    from dask.utils import parse_bytes

    return parse_bytes(text)


if __name__ == "__main__":
    main()
