"""Benchmark :func:`skycore_lab.read_postbacks` against per-record lxml parsing.

Generates (or reuses) a receiver log of realistic sandbox-shaped postbacks
with ``gen_postback_log.py``, then, in the same run:

1. times ``read_postbacks`` end to end, file to finished typed DataFrame;
2. times ``lxml.etree.fromstring`` on each record's body alone (just the
   parse: no log decoding, no columns, no DataFrame) — the baseline;
3. measures the peak memory of step 1 in a fresh subprocess (peak RSS,
   ``VmHWM`` reset before the call, minus the resident size after imports) against the final
   DataFrame's ``memory_usage(deep=True)`` and the read buffer.

The parser's compiled kernels (numba) are loaded before anything is timed
or measured, like lxml's import: that is a fixed cost per process (~0.5 s
and some tens of MB, from numba's on-disk cache; a first compile after
install takes a few seconds more), printed apart.

Prints records/s for both, their ratio, and the memory figures. The machine
is shared, so absolute numbers are noisy; the ratio is measured in one run,
and ``--repeat N`` takes the best of N runs of *both* steps 1 and 2.

``--format F [F ...]`` (issue 14) benchmarks the same records stored in other
formats (``log``, ``concatenated``, ``raw-bodies``, ``pretty``, ``crlf``,
``bom``, ``form``, ``directory``, ``gz``; ``all`` for every one): for each, it
times ``read_postbacks`` on both paths — the compiled kernel (numba) and the
pure numpy/RE2 path (``SKYCORE_LAB_PURE=1``) — each in a fresh interpreter
with its kernels loaded first, and prints records/s and the ratio to
per-record lxml (measured once, on the bodies, in the same run).
``--directory-records N`` caps the directory format's file count (one file
per record); for directories it also prints the ratio to code that opens,
reads and ``lxml.etree.fromstring``-s each file (the file system's cost per
file is part of that job, and no parser can go under it).

Usage::

    python benchmarks/bench_parser.py [--records 1000000] [--workdir DIR] [--threads N] [--repeat N] [--no-memory]
                                      [--pools] [--format F ...] [--directory-records N]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import gen_postback_log  # noqa: E402  (benchmarks/ is not a package)

_MEMORY_PROBE = r"""
import gc, json, resource, sys
import pyarrow as pa
from skycore_lab import postbacks
if sys.argv[3] == "arrow-default":
    # the baseline of the parser's pool: everything from Arrow's default pool
    from skycore_lab.postbacks import memory
    memory._pool = pa.default_memory_pool()
postbacks.events_from_bodies([])  # warm the lazy imports (reference tables, pandas internals)
gc.collect()

def high_water():
    # VmHWM (peak RSS) of this process; ru_maxrss would include the parent's peak (kept across exec)
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

def rss():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024

# load the compiled kernels: numba's LLVM state is a fixed cost per process, not data
before_kernel = rss()
from skycore_lab.postbacks.kernel import load_kernels
load_kernels()
gc.collect()
kernel = rss() - before_kernel

with open("/proc/self/clear_refs", "w") as refs:
    refs.write("5")  # reset VmHWM to the current RSS
base = rss()
frame = postbacks.read_postbacks(sys.argv[1], threads=int(sys.argv[2]) or None)
peak = high_water()
print(json.dumps({"kernel": kernel, "base": base, "peak": peak, "frame": int(frame.memory_usage(deep=True).sum()),
                  "rows": len(frame), "pool": postbacks.memory.pool().backend_name}))
"""


def ensure_log(workdir: Path, records: int, seed: int = 0) -> Path:
    """The benchmark log for ``records`` (generated once per workdir)."""
    path = workdir / f"postbacks_{records}_{seed}.log"
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        gen_postback_log.generate(str(tmp), records, seed)
        tmp.replace(path)
    return path


def time_kernel_load() -> float:
    """Seconds to load (or, the first time after install, compile) the parser's kernels."""
    from skycore_lab.postbacks.kernel import load_kernels as load

    start = time.perf_counter()
    load()
    return time.perf_counter() - start


def time_read_postbacks(path: Path, threads: int | None = None, repeat: int = 1):
    """Best-of-``repeat`` seconds for ``read_postbacks(path)``, and the frame."""
    from skycore_lab.postbacks import read_postbacks

    best, frame = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        frame = read_postbacks(path, threads=threads)
        best = min(best, time.perf_counter() - start)
    return best, frame


def record_bodies(path: Path) -> list[bytes]:
    """The unescaped bodies of a receiver log (the lxml baseline's input)."""
    from skycore_lab.postbacks.logformat import decode_line

    bodies = []
    with open(path, "rb") as handle:
        for line in handle:
            if line.startswith(b"#") or not line.strip():
                continue
            bodies.append(decode_line(line)[2])
    return bodies


def time_lxml(bodies: list[bytes], repeat: int = 1) -> float:
    """Best-of-``repeat`` seconds for ``lxml.etree.fromstring`` on every body, one by one."""
    from lxml import etree

    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    fromstring = etree.fromstring
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for body in bodies:
            fromstring(body, parser)
        best = min(best, time.perf_counter() - start)
    return best


def time_lxml_files(folder: Path, repeat: int = 1) -> float:
    """Best-of-``repeat`` seconds to open, read and ``lxml.etree.fromstring`` every file of ``folder``:
    what code without skycore-lab does with a directory of single-document files (the file system's
    cost per file is part of the job, as it is of ``read_postbacks``)."""
    from lxml import etree

    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    fromstring = etree.fromstring
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for entry in sorted(os.listdir(folder)):
            with open(os.path.join(folder, entry), "rb") as handle:
                fromstring(handle.read(), parser)
        best = min(best, time.perf_counter() - start)
    return best


def measure_memory(path: Path, threads: int | None, pool: str = "parser") -> dict:
    """Peak memory of one ``read_postbacks`` run in a fresh interpreter.

    ``pool="arrow-default"`` makes the parser allocate from Arrow's default
    pool instead of its own (:mod:`skycore_lab.postbacks.memory`), the
    baseline that shows what the parser's pool is worth.
    """
    out = subprocess.run(
        [sys.executable, "-c", _MEMORY_PROBE, str(path), str(threads or 0), pool],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(records: int, workdir: Path, threads: int | None = None, memory: bool = True, repeat: int = 1,
        pools: bool = False) -> dict:
    """Run the whole benchmark; returns the measurements (also printed by :func:`main`)."""
    from skycore_lab.postbacks import READ_BUFFER_BYTES

    path = ensure_log(workdir, records)
    size = path.stat().st_size
    # memory first, in a fresh interpreter, while this process is still small
    probe = measure_memory(path, threads) if memory else None
    baseline_probe = measure_memory(path, threads, "arrow-default") if memory and pools else None
    kernel_s = time_kernel_load()
    parse_s, frame = time_read_postbacks(path, threads, repeat)
    bodies = record_bodies(path)
    lxml_s = time_lxml(bodies, repeat)
    result = {
        "records": len(bodies),
        "kernel_load_s": kernel_s,
        "file_mb": size / 1e6,
        "rows": len(frame),
        "read_postbacks_s": parse_s,
        "read_postbacks_per_s": len(bodies) / parse_s,
        "lxml_s": lxml_s,
        "lxml_per_s": len(bodies) / lxml_s,
        "ratio": lxml_s / parse_s,
        "frame_mb": frame.memory_usage(deep=True).sum() / 1e6,
        "buffer_mb": READ_BUFFER_BYTES / 1e6,
    }
    del frame, bodies
    if probe is not None:
        result["peak_mb"] = (probe["peak"] - probe["base"]) / 1e6
        result["peak_over_frame"] = (probe["peak"] - probe["base"]) / probe["frame"]
        result["kernel_mb"] = probe["kernel"] / 1e6
        result["pool"] = probe["pool"]
    if baseline_probe is not None:
        result["default_pool_peak_mb"] = (baseline_probe["peak"] - baseline_probe["base"]) / 1e6
        result["default_pool"] = baseline_probe["pool"]
    return result


_FORMAT_PROBE = r"""
import json, os, sys, time
from skycore_lab.postbacks import read_postbacks
from skycore_lab.postbacks.kernel import ENGINE, load_kernels
load_kernels()
best, rows = float("inf"), 0
for _ in range(int(sys.argv[3])):
    start = time.perf_counter()
    frame = read_postbacks(sys.argv[1], threads=int(sys.argv[2]) or None, on_bad_lines="error")
    best = min(best, time.perf_counter() - start)
    rows = len(frame)
    del frame
print(json.dumps({"engine": ENGINE, "seconds": best, "rows": rows}))
"""


def ensure_format(workdir: Path, records: int, fmt: str, bodies: list[bytes] | None = None) -> Path:
    """The benchmark's records in format ``fmt`` (written once per workdir from the log's bodies)."""
    log = ensure_log(workdir, records)
    if fmt == "log":
        return log
    suffix = {"gz": "xml.gz", "directory": "d", "form": "form"}.get(fmt, f"{fmt}.xml")
    path = workdir / f"postbacks_{records}_0.{suffix}"
    if not path.exists():
        tmp = workdir / f"tmp.{suffix}"
        gen_postback_log.write_format(bodies if bodies is not None else record_bodies(log), fmt, str(tmp))
        tmp.replace(path)
    return path


def time_format(path: Path, pure: bool, threads: int | None = None, repeat: int = 1) -> dict:
    """Best-of-``repeat`` seconds of ``read_postbacks(path)`` in a fresh interpreter, on one path."""
    env = dict(os.environ)
    env.pop("SKYCORE_LAB_PURE", None)
    if pure:
        env["SKYCORE_LAB_PURE"] = "1"
    out = subprocess.run(
        [sys.executable, "-c", _FORMAT_PROBE, str(path), str(threads or 0), str(repeat)],
        check=True, capture_output=True, text=True, env=env,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_formats(records: int, workdir: Path, formats: list[str], threads: int | None = None, repeat: int = 1,
                directory_records: int | None = None, engines: tuple[str, ...] = ("numba", "numpy")) -> list[dict]:
    """Each format on each path, against per-record lxml on the same bodies (one lxml timing per record count)."""
    bodies = record_bodies(ensure_log(workdir, records))
    lxml_per_s = {}
    results = []
    for fmt in formats:
        count = min(records, directory_records) if fmt == "directory" and directory_records else records
        if count not in lxml_per_s:
            lxml_per_s[count] = count / time_lxml(bodies[:count], repeat)
        if count != records:
            ensure_log(workdir, count)
        path = ensure_format(workdir, count, fmt, bodies[:count] if count == records else None)
        files_per_s = count / time_lxml_files(path, repeat) if fmt == "directory" else None
        for engine in engines:
            timed = time_format(path, engine == "numpy", threads, repeat)
            per_s = count / timed["seconds"]
            results.append({"format": fmt, "records": count, "engine": timed["engine"], "rows": timed["rows"],
                            "seconds": timed["seconds"], "per_s": per_s, "lxml_per_s": lxml_per_s[count],
                            "ratio": per_s / lxml_per_s[count],
                            "files_ratio": per_s / files_per_s if files_per_s else None})
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--workdir", type=Path, default=None, help="where the log is kept (default: a temp dir)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--repeat", type=int, default=1, help="best of N runs, for both read_postbacks and lxml")
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument("--pools", action="store_true",
                        help="also measure the peak with Arrow's default pool instead of the parser's own")
    parser.add_argument("--format", nargs="+", default=None, choices=[*gen_postback_log.FORMATS, "all"],
                        help="benchmark these formats on both paths (numba and pure numpy) instead")
    parser.add_argument("--directory-records", type=int, default=None,
                        help="records (= files) of the directory format (default: --records)")
    parser.add_argument("--engines", nargs="+", default=["numba", "numpy"], choices=["numba", "numpy"])
    args = parser.parse_args(argv)
    if args.format:
        formats = list(gen_postback_log.FORMATS) if "all" in args.format else args.format
        with tempfile.TemporaryDirectory() as tmp:
            workdir = args.workdir or Path(tmp)
            workdir.mkdir(parents=True, exist_ok=True)
            print(f"{'format':<13} {'path':<6} {'records':>9} {'rows':>9} {'seconds':>8} {'records/s':>10} "
                  f"{'lxml/s':>9} {'x lxml':>7} {'x open+read+lxml':>17}", flush=True)
            for fmt in formats:
                for r in run_formats(args.records, workdir, [fmt], args.threads, args.repeat, args.directory_records,
                                     tuple(args.engines)):
                    print(f"{r['format']:<13} {r['engine']:<6} {r['records']:>9,} {r['rows']:>9,} {r['seconds']:>8.2f} "
                          f"{r['per_s']:>10,.0f} {r['lxml_per_s']:>9,.0f} {r['ratio']:>6.2f}x "
                          f"{format(r['files_ratio'], '>16.2f') + 'x' if r['files_ratio'] else '':>17}", flush=True)
        print(f"(cpu count {os.cpu_count()}; load average {os.getloadavg()[0]:.1f} — shared machine, timings are noisy)")
        return
    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        r = run(args.records, workdir, args.threads, not args.no_memory, args.repeat, args.pools)
    print(f"log: {r['records']:,} records, {r['file_mb']:.0f} MB -> {r['rows']:,} rows after dedupe")
    print(f"read_postbacks (file -> typed DataFrame): {r['read_postbacks_s']:.2f} s, {r['read_postbacks_per_s']:,.0f} records/s")
    print(f"lxml.etree.fromstring per record (parse only): {r['lxml_s']:.2f} s, {r['lxml_per_s']:,.0f} records/s")
    print(f"ratio read_postbacks / lxml: {r['ratio']:.2f}x")
    print(f"(before timing: loading the compiled kernels took {r['kernel_load_s']:.2f} s, once per process)")
    if "peak_mb" in r:
        print(
            f"memory: peak {r['peak_mb']:.0f} MB above baseline; final DataFrame {r['frame_mb']:.0f} MB "
            f"(peak = {r['peak_over_frame']:.2f}x the frame); read buffer {r['buffer_mb']:.0f} MB"
        )
        print(f"memory: loading the compiled kernels costs {r['kernel_mb']:.0f} MB once per process (in the baseline)")
    if "default_pool_peak_mb" in r:
        print(
            f"memory: parser's pool ({r['pool']}) peak {r['peak_mb']:.0f} MB vs Arrow's default pool "
            f"({r['default_pool']}) {r['default_pool_peak_mb']:.0f} MB: ratio {r['default_pool_peak_mb'] / r['peak_mb']:.2f}x"
        )
    print(f"(cpu count {os.cpu_count()}; load average {os.getloadavg()[0]:.1f} — shared machine, timings are noisy)")


if __name__ == "__main__":
    main()
