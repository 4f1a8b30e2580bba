"""Benchmark :func:`skycore_lab.deliveries` and :func:`skycore_lab.handset_profiles`.

Builds a synthetic events frame shaped like :func:`skycore_lab.read_postbacks`'
output (categoricals for code/origin/status/sent_as/carrier/country, ``str``
ids, tz-aware UTC times; DDM, SMS fallback, failures, retried duplicates,
shuffled arrival order) and times the frames against a baseline measured in
the same run over the same events: a plain ``groupby(tracking_id).first()``.
The machine is shared, so only the ratios mean something.

Usage::

    python benchmarks/bench_frames.py [--events 1000000] [--repeat 3] [--seed 0]
"""

from __future__ import annotations

import argparse
import time

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


def best_of(repeat: int, function, *args) -> float:
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        function(*args)
        times.append(time.perf_counter() - began)
    return min(times)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    events = make_events(args.events, args.seed)
    n_sends = events[col.TRACKING_ID].nunique()
    print(f"{len(events):,} events, {n_sends:,} sends")

    def baseline(frame):
        return frame.groupby(col.TRACKING_ID, observed=True, sort=False).first()

    base = best_of(args.repeat, baseline, events)
    took = best_of(args.repeat, deliveries, events)
    profiles = best_of(args.repeat, handset_profiles, events)
    print(f"baseline groupby(tracking_id).first(): {base:.2f} s ({len(events) / base:,.0f} events/s)")
    print(f"deliveries():       {took:.2f} s ({n_sends / took:,.0f} deliveries/s, {len(events) / took:,.0f} events/s)"
          f"  ratio to baseline {took / base:.1f}x")
    print(f"handset_profiles(): {profiles:.2f} s  ratio to baseline {profiles / base:.1f}x")


if __name__ == "__main__":
    main()
