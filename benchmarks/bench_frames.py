"""Benchmark :func:`skycore_lab.deliveries` and :func:`skycore_lab.handset_profiles`.

The events are either a receiver log read with :func:`skycore_lab.read_postbacks`
(``--log``, e.g. the parser benchmark's 1M-record log) or a synthetic events
frame shaped like its output (categoricals for code/origin/status/sent_as/
carrier/country, ``str`` ids, tz-aware UTC times; DDM, SMS fallback,
failures, retried duplicates, shuffled arrival order). The frames are timed
against a baseline measured in the same run over the same events: a plain
``groupby(tracking_id).first()``. Each round times the baseline, then
``deliveries``, then ``handset_profiles``; the best of ``--repeat`` rounds
is printed, and the ratios of the bests. The machine is shared, so only the
ratios mean something.

With ``--log``, the peak memory of read → deliveries → profiles is measured
in a fresh subprocess: the peak RSS (``VmHWM``, reset before each stage)
above the resident size after imports, as a multiple of the events frame's
``memory_usage(deep=True)``.

Usage::

    python benchmarks/bench_frames.py [--log PATH | --events 1000000] [--repeat 3] [--seed 0] [--no-memory]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import warnings

import numpy as np
import pandas as pd

from skycore_lab import reference as ref
from skycore_lab import columns as col
from skycore_lab.frames import deliveries, handset_profiles

HANDSETS = np.array(["Apple iPhone 15", "Samsung Galaxy S23", "Google Pixel 8", "Motorola moto g stylus"])
CARRIERS = np.array([("0001650", "United States", "Sprint"), ("0001770", "United States", "Metro PCS"),
                     ("0044170", "United Kingdom", "O2"), ("0052250", "Mexico", "Telcel")])


def make_events(n_events: int, seed: int = 0) -> pd.DataFrame:
    """About ``n_events`` events (≈2.7 per send), in shuffled order, with 3 % duplicates."""
    rng = np.random.default_rng(seed)
    n_sends = max(1, int(n_events / 2.68))
    send = np.arange(n_sends)
    start = pd.Timestamp("2024-03-01", tz="UTC").value // 1000 + rng.integers(0, 86_400_000_000, n_sends)
    ddm = rng.random(n_sends) < 0.3
    fallback = rng.random(n_sends) < 0.1
    result = rng.choice(4, n_sends, p=[0.75, 0.1, 0.05, 0.1])  # delivered, failed, expired, pending

    parts = []

    def part(mask, code, status, offset_us, sent_as=None, handset=False):
        idx = send[mask]
        parts.append(pd.DataFrame({
            "_send": idx, col.CODE: code, col.STATUS: status,
            col.SENT_AS: sent_as, "_t": start[idx] + offset_us[mask] if np.ndim(offset_us) else start[idx] + offset_us,
            col.HANDSET: HANDSETS[idx % len(HANDSETS)] if handset else None,
        }))

    delay = rng.exponential(30e6, n_sends).astype("int64")
    part(ddm, ref.N501, ref.STATUS_TEXT[ref.N501], -60_000_000)
    part(ddm, ref.N502, ref.STATUS_TEXT[ref.N502], -30_000_000, handset=True)
    part(~fallback, ref.N101, ref.STATUS_TEXT[ref.N101], 0, col.SENT_AS_MMS)
    part(fallback, ref.N101, ref.STATUS_TEXT[ref.N101], 0, col.SENT_AS_SMS)
    part(fallback, ref.N201, ref.STATUS_TEXT[ref.N201], 1_000_000)
    part(~fallback & (result == 0), ref.N102, ref.STATUS_TEXT[ref.N102], delay, col.SENT_AS_MMS, True)
    part(fallback & (result == 0), ref.N202, ref.STATUS_TEXT[ref.N202], delay)
    part(result == 1, ref.E102, "Message Sent/Failed", delay)
    part(result == 2, ref.E102, "Message Sent/Expired", delay)
    events = pd.concat(parts, ignore_index=True)
    dup = rng.random(len(events)) < 0.03
    events = pd.concat([events, events[dup]], ignore_index=True)
    events = events.take(rng.permutation(len(events))).reset_index(drop=True)

    s = events["_send"].to_numpy()
    carrier = CARRIERS[s % len(CARRIERS)]
    code = events[col.CODE]
    frame = pd.DataFrame({
        col.ORIGIN: np.where(code.isin(ref.SMS_CODES), ref.ORIGIN_SMS, ref.ORIGIN_MMS),
        col.CODE: code, col.STATUS: events[col.STATUS], col.SENT_AS: events[col.SENT_AS],
        col.MMS_ID: "4711", col.SENDER: "12345",
        col.TO: pd.Series(s + 17_740_000_000).astype("str"),
        col.TRACKING_ID: pd.Series(s).map("MMS_{}".format),
        col.SPID: carrier[:, 0], col.CARRIER: carrier[:, 2], col.COUNTRY: carrier[:, 1],
        col.TIMESTAMP: pd.to_datetime(events["_t"].to_numpy(), unit="us", utc=True),
        col.HANDSET: events[col.HANDSET],
    })
    frame[col.RECEIVED_AT] = frame[col.TIMESTAMP] + pd.Timedelta(seconds=1)
    for name in col.EVENT_CATEGORICAL:
        frame[name] = frame[name].astype("category")
    for name in (col.MMS_ID, col.SENDER, col.TO, col.TRACKING_ID, col.SPID, col.HANDSET):
        frame[name] = frame[name].astype("str")
    return frame


_MEMORY_PROBE = r"""
import gc, json, sys, warnings
import skycore_lab as sl
warnings.simplefilter("ignore")  # clock-skew warnings are data here
try:  # the parser's compiled kernels are a fixed cost per process, not data
    from skycore_lab.postbacks.kernel import load_kernels
    load_kernels()
except ImportError:
    pass
gc.collect()

def status(field):
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024

def reset_peak():
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")  # VmHWM := VmRSS

base = status("VmRSS")
figures = {"base": base}
reset_peak()
events = sl.read_postbacks(sys.argv[1])
figures["read"] = status("VmHWM")
figures["frame"] = int(events.memory_usage(deep=True).sum())
for name, function in (("deliveries", sl.deliveries), ("profiles", sl.handset_profiles)):
    gc.collect()
    figures[name + "_before"] = status("VmRSS")
    reset_peak()
    result = function(events)
    figures[name] = status("VmHWM")
    del result
print(json.dumps(figures))
"""


def measure_memory(log: str) -> dict:
    """Peak RSS per stage of read → deliveries → profiles, in a fresh interpreter."""
    done = subprocess.run([sys.executable, "-c", _MEMORY_PROBE, log], capture_output=True, text=True,
                          env=os.environ.copy(), check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def print_memory(figures: dict) -> None:
    frame, base = figures["frame"], figures["base"]
    peak = max(figures["read"], figures["deliveries"], figures["profiles"])
    mb = 1 / 1e6
    print(f"events frame (deep): {frame * mb:,.0f} MB; resident after imports {base * mb:,.0f} MB")
    for stage in ("read", "deliveries", "profiles"):
        extra = ""
        if stage != "read":
            own = figures[stage] - figures[stage + "_before"]
            extra = f" (its own working memory {own * mb:,.0f} MB = {own / frame:.2f}x)"
        print(f"peak during {stage:<10}: {(figures[stage] - base) * mb:,.0f} MB above imports = "
              f"{(figures[stage] - base) / frame:.2f}x the frame{extra}")
    print(f"peak RSS read -> deliveries -> profiles: {(peak - base) * mb:,.0f} MB above imports = "
          f"{(peak - base) / frame:.2f}x the events frame")


def best_of(repeat: int, function, *args) -> float:
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        function(*args)
        times.append(time.perf_counter() - began)
    return min(times)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--log", help="a receiver log to read with read_postbacks (else synthetic events)")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-memory", action="store_true")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")  # clock-skew warnings are data here

    if args.log:
        from skycore_lab import read_postbacks

        began = time.perf_counter()
        events = read_postbacks(args.log)
        print(f"{args.log}: read_postbacks {time.perf_counter() - began:.2f} s")
    else:
        events = make_events(args.events, args.seed)
    n_sends = events[col.TRACKING_ID].nunique()
    print(f"{len(events):,} events, {n_sends:,} sends")

    def baseline(frame):
        return frame.groupby(col.TRACKING_ID, observed=True, sort=False).first()

    best = {"baseline": float("inf"), "deliveries": float("inf"), "profiles": float("inf")}
    for _ in range(args.repeat):  # interleaved, so the three see the same load
        for name, function in (("baseline", baseline), ("deliveries", deliveries), ("profiles", handset_profiles)):
            best[name] = min(best[name], best_of(1, function, events))
    base, took, profiles = best["baseline"], best["deliveries"], best["profiles"]
    print(f"baseline groupby(tracking_id).first(): {base:.2f} s ({len(events) / base:,.0f} events/s)")
    print(f"deliveries():       {took:.2f} s ({n_sends / took:,.0f} deliveries/s, {len(events) / took:,.0f} events/s)"
          f"  ratio to baseline {took / base:.2f}x")
    print(f"handset_profiles(): {profiles:.2f} s  ratio to baseline {profiles / base:.2f}x")
    if args.log and not args.no_memory:
        print_memory(measure_memory(args.log))


if __name__ == "__main__":
    main()
