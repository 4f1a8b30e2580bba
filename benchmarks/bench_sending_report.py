"""The sending-statistics report: what the sandbox's getSendingStatistics costs against reading it back.

Simulates ``--sends`` sends of one world (half with a DDM), writes their
Appendix C report the way the sandbox serves it
(:func:`skycore_lab.sandbox.report.report_xml`), and reads it with
:func:`skycore_lab.read_sending_report` — the baseline, measured in the same
run. Prints both times, the report's size per message, and their ratio.

    .venv/bin/python benchmarks/bench_sending_report.py --sends 50000
"""

from __future__ import annotations

import argparse
import time
from datetime import datetime, timedelta, timezone

import pandas as pd

import skycore_lab as sl
from skycore_lab import columns as col
from skycore_lab.sandbox import World
from skycore_lab.sandbox.report import report_xml


def _truth_rows(sends: int, seed: int) -> list[dict]:
    """Truth rows as the sandbox keeps them: Python datetimes, None when absent."""
    world = World({"warm_cache_share": 0.2}, seed=seed)
    half = sends // 2
    frames = [world.simulate_population(half, ddm=None),
              world.simulate_population(sends - half, ddm=sl.DDM("Checking your phone", timeout_min=5))]
    truth = pd.concat(frames, ignore_index=True)
    truth[col.TRACKING_ID] = [f"MMS_{i}" for i in range(len(truth))]
    rows = []
    for record in truth.astype(object).where(truth.notna(), None).to_dict("records"):
        rows.append({name: value.to_pydatetime() if isinstance(value, pd.Timestamp) else value
                     for name, value in record.items()})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sends", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rows = _truth_rows(args.sends, args.seed)
    now = datetime.now(timezone.utc) + timedelta(days=40)  # every event has happened
    started = time.perf_counter()
    body = report_xml(rows, now - timedelta(days=60), now, now=now, time_scale=1.0, ddm_failed_at={})
    built = time.perf_counter() - started
    started = time.perf_counter()
    frame = sl.read_sending_report(body)
    read = time.perf_counter() - started
    assert len(frame) == args.sends
    print(f"{args.sends:,} sends, report {len(body) / 1e6:.1f} MB ({len(body) / args.sends:.0f} bytes per message)")
    print(f"  sandbox report_xml      {built:6.2f} s  ({args.sends / built:,.0f} messages/s)")
    print(f"  read_sending_report     {read:6.2f} s  ({args.sends / read:,.0f} messages/s)  [baseline]")
    print(f"  ratio build / read      {built / read:6.2f}")


if __name__ == "__main__":
    main()
