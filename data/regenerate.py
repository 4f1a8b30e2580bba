"""Regenerate the sample data in this directory from the sandbox (fixed seed).

    .venv/bin/python data/regenerate.py

Runs the demo's DDM experiment (1,200 numbers, seed 42) and keeps its receiver
log and manifest: ``sample_postbacks.log`` and ``sample_manifest.csv``. The
tracking ids and the world are reproducible from the seed; the receive and
send times are those of the run.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from skycore_lab.demo import run_demo

HERE = Path(__file__).resolve().parent
NUMBERS, SEED = 1200, 42


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        outcome = run_demo(scratch, numbers=NUMBERS, seed=SEED, reports=False, progress=False)
        shutil.copyfile(outcome.files["postbacks"], HERE / "sample_postbacks.log")
        shutil.copyfile(outcome.files["manifest"], HERE / "sample_manifest.csv")
    for name in ("sample_postbacks.log", "sample_manifest.csv"):
        print(f"{name}: {(HERE / name).stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
