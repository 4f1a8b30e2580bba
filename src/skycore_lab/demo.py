"""The main job, ``skycore-lab demo``: a whole DDM experiment, offline.

Starts a :class:`~skycore_lab.PostbackReceiver` and a
:class:`~skycore_lab.Sandbox` posting to it, runs a three-arm DDM timeout
experiment (no DDM, DDM with a 5-minute timeout, DDM with 15 minutes) on
simulated numbers, waits for every postback (accelerated time), analyses
and writes, into the output directory:

``postbacks.log``
    the receiver's raw log (:func:`skycore_lab.read_postbacks` reads it);
``manifest.csv`` and ``experiment.json``
    the send manifest, and design + manifest together
    (:meth:`DdmExperiment.load` reads it);
``report.html`` and ``report.xlsx``
    the delivery report (:func:`skycore_lab.export_report`).

The numbers are a fixed mix — mostly US, some Canadian and UK — drawn from
the seed, so the sandbox spreads them over at least four carriers.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from . import columns as col

__all__ = ["DemoResult", "demo_arms", "demo_numbers", "run_demo"]

#: Country mix of the demo's numbers: (calling code, share).
_COUNTRY_MIX = (("1", 0.86), ("1CA", 0.08), ("44", 0.06))
_CANADIAN_AREA_CODES = ("416", "604", "514", "403", "613", "780", "902", "204")
DEFAULT_NUMBERS = 3000
#: One simulated hour passes in 5 real seconds: the longest message life
#: (carrier expiry plus postback retries) then fits well inside a minute.
DEFAULT_TIME_SCALE = 720.0


def demo_arms():
    """The demo's arms: ``no_ddm`` (control), ``ddm_5`` and ``ddm_15``."""
    from .client import DDM

    text = "Your phone is being checked so our picture message shows at its best."
    return {
        "no_ddm": None,
        "ddm_5": DDM(text, title="Device check", timeout_min=5),
        "ddm_15": DDM(text, title="Device check", timeout_min=15),
    }


def demo_numbers(n: int, seed: int = 0) -> list[str]:
    """``n`` distinct simulated mobile numbers (international digits), reproducible from ``seed``."""
    rng = np.random.default_rng([seed, 17])
    kinds = rng.choice([kind for kind, _ in _COUNTRY_MIX], size=n, p=[share for _, share in _COUNTRY_MIX])
    numbers: list[str] = []
    seen: set[str] = set()
    for kind in kinds:
        while True:
            if kind == "44":
                number = "447" + "".join(map(str, rng.integers(0, 10, 9)))
            else:
                if kind == "1CA":
                    area = str(rng.choice(_CANADIAN_AREA_CODES))
                else:  # US: area codes 201-989 except Canada's; ambiguity is the sandbox's job
                    area = str(int(rng.integers(201, 990)))
                    if area in _CANADIAN_AREA_CODES or area[1:] == "11":
                        continue
                exchange = str(int(rng.integers(200, 1000)))
                number = "1" + area + exchange + f"{int(rng.integers(0, 10_000)):04d}"
            if number not in seen:
                seen.add(number)
                numbers.append(number)
                break
    return numbers


@dataclass(frozen=True, repr=False, eq=False)
class DemoResult:
    """What :func:`run_demo` made: the analysis, the files and the sandbox's truth."""

    result: object  # ExperimentResult
    truth: pd.DataFrame
    out_dir: Path
    files: dict[str, Path]
    seconds: float
    postbacks: int

    def table(self) -> pd.DataFrame:
        """The short summary table the CLI prints: per arm sends, delivered, rate with CI, KM median."""
        rates = self.result.rates.set_index(col.ARM)
        latency = self.result.latency.set_index(col.ARM)
        table = pd.DataFrame({
            "sends": rates[col.SENT],
            "delivered": rates[col.DELIVERED],
            "pending": rates[col.PENDING],
            "rate": rates[col.RATE].map("{:.1%}".format),
            "95% CI": [f"{low:.1%}–{high:.1%}" for low, high in zip(rates[col.CI_LOW], rates[col.CI_HIGH])],
        })
        if "km_p50" in latency.columns:
            table["median request→delivery"] = latency["km_p50"].reindex(table.index).map(
                lambda s: f"{s:.0f} s" if pd.notna(s) else "n/a")
        return table


def run_demo(out_dir: str | Path = "skycore-demo", *, numbers: int = DEFAULT_NUMBERS, seed: int = 0,
             time_scale: float = DEFAULT_TIME_SCALE, progress: bool = True, reports: bool = True,
             wait_timeout_s: float = 300.0) -> DemoResult:
    """Run the demo experiment end to end and write its files into ``out_dir``.

    Parameters
    ----------
    out_dir : path
        Created if missing; an earlier demo's files there are replaced.
    numbers : int
        Simulated recipients (split over three arms).
    seed : int
        Seeds the numbers, the sandbox world and the assignment.
    time_scale : float
        Simulated seconds per real second.
    progress : bool
        Progress bars for sending and for waiting on postbacks.
    reports : bool
        Write ``report.html`` and ``report.xlsx`` (tests of the analysis skip them).
    wait_timeout_s : float
        Give up waiting for postbacks after this many real seconds (the
        analysis then treats what is missing as pending).
    """
    from tqdm.auto import tqdm

    from .client import SkycoreClient
    from .experiment import DdmExperiment
    from .postbacks import read_postbacks
    from .receiver import PostbackReceiver
    from .sandbox import Sandbox

    started = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    log_path = out / "postbacks.log"
    for stale in out.glob("postbacks.log*"):
        stale.unlink()
    recipients = demo_numbers(numbers, seed)
    with PostbackReceiver(log_path) as receiver, \
            Sandbox(seed=seed, time_scale=time_scale, postback_url=receiver.url) as sandbox:
        experiment = DdmExperiment(demo_arms(), mms_id=sandbox.mms_ids[0], sender=sandbox.shortcodes[0], seed=seed)
        with SkycoreClient(sandbox.api_key, sandbox.url) as client:
            experiment.run(client, recipients, progress=progress, concurrency=4)
        bar = tqdm(desc="postbacks", unit="msg", disable=not progress, leave=True)
        deadline = time.monotonic() + wait_timeout_s
        while not sandbox.wait_idle(timeout=0.25) and time.monotonic() < deadline:
            bar.n = receiver.count
            bar.refresh()
        bar.n = receiver.count
        bar.close()
        truth = sandbox.truth()
        received = receiver.count
    events = read_postbacks(log_path)
    result = experiment.analyze(events)
    files = {"postbacks": log_path,
             "experiment": experiment.save(out / "experiment.json")}
    manifest_path = out / "manifest.csv"
    experiment.manifest.to_csv(manifest_path, index=False)
    files["manifest"] = manifest_path
    if reports:
        from .report import export_report

        title = f"skycore-lab demo: DDM timeout experiment (seed {seed})"
        for suffix in ("html", "xlsx"):
            path = out / f"report.{suffix}"
            export_report(result.deliveries, path, events=events, title=title, by=(col.CARRIER, col.ARM))
            files[f"report_{suffix}"] = path
    return DemoResult(result=result, truth=truth, out_dir=out, files=files,
                      seconds=time.perf_counter() - started, postbacks=received)
