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
    the delivery report of the experiment's result
    (:func:`skycore_lab.export_report`): it opens with the decision — the
    primary metric's verdict, the sample-ratio check, power and the minimum
    detectable effect, the latency cost — then the tables.

The numbers are drawn from the seed by the sandbox world's country shares
(mostly US, some Canadian and UK), over at least four carriers; 30 % of the
handsets start cached, and postbacks are sometimes duplicated or out of order.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from . import columns as col

__all__ = ["DEMO_SCENARIO", "DemoResult", "demo_arms", "demo_numbers", "run_demo", "check_demo_outputs"]

#: The demo's world: the sandbox defaults, with some handsets already cached
#: (so the DDM arms show what eligibility means) and postbacks that are
#: sometimes posted twice or out of order, as on the platform.
DEMO_SCENARIO = {"warm_cache_share": 0.3, "postback": {"duplicate_rate": 0.02, "out_of_order_rate": 0.02}}
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
    """``n`` distinct simulated numbers (international digits), reproducible from ``seed``.

    Drawn by the sandbox world's own country shares (mostly US, some
    Canadian and UK), so true rates simulated for the same world match.
    """
    from .sandbox import World

    return World(DEMO_SCENARIO, seed).sample_numbers(n)


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
        """The short summary table the CLI prints, per arm: sends, delivered, pending, rate with its CI,
        the share delivered by the deadline (failures competing), and the median time to delivery
        among delivered sends ("not reached" when fewer than half are)."""
        from .stats import format_seconds

        result = self.result
        rates = result.rates.set_index(col.ARM)
        latency = result.latency.set_index(col.ARM)
        table = pd.DataFrame({
            "sends": rates[col.SENT],
            "delivered": rates[col.DELIVERED],
            "pending": rates[col.PENDING],
            "rate": rates[col.RATE].map("{:.1%}".format),
            "95% CI": [f"{low:.1%}–{high:.1%}" for low, high in zip(rates[col.CI_LOW], rates[col.CI_HIGH])],
        })
        share = result.share_delivered
        by_deadline = share[share[col.TIME_S] == result.within_s].set_index(col.ARM)[col.SHARE_DELIVERED]
        table[f"delivered by {result.within_s / 60:g} min"] = by_deadline.reindex(table.index).map(
            lambda v: f"{v:.1%}" if pd.notna(v) else "n/a")
        if col.KM_P50 in latency.columns:
            table["median time to delivery (delivered)"] = latency[col.KM_P50].reindex(table.index).map(format_seconds)
        return table


#: The report files the demo writes (``report.html``, ``report.xlsx``).
REPORT_SUFFIXES = (".html", ".xlsx")


def check_demo_outputs() -> None:
    """Check the packages the demo's outputs need, before it starts (it runs for a minute).

    Raises
    ------
    ImportError
        A package is missing; the message names the extra to install.
    """
    from .manifest import check_manifest_path
    from .report.export import check_report_path

    for suffix in REPORT_SUFFIXES:
        check_report_path(f"report{suffix}")
    check_manifest_path("manifest.csv")


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
    if reports:
        check_demo_outputs()  # before a minute of work, not after it
    from tqdm.auto import tqdm

    from .client import SkycoreClient
    from .experiment import DdmExperiment
    from .manifest import write_manifest
    from .postbacks import read_postbacks
    from .provenance import source_file
    from .postbacks.receiver import PostbackReceiver
    from .sandbox import Sandbox

    started = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    log_path = out / "postbacks.log"
    for stale in out.glob("postbacks.log*"):
        stale.unlink()
    recipients = demo_numbers(numbers, seed)
    with PostbackReceiver(log_path) as receiver, \
            Sandbox(seed=seed, time_scale=time_scale, postback_url=receiver.url,
                    scenario=DEMO_SCENARIO) as sandbox:
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
    files["manifest"] = write_manifest(experiment.manifest, out / "manifest.csv")
    if reports:
        from .provenance import collect_provenance
        from .report import export_report

        title = f"skycore-lab demo: DDM timeout experiment (seed {seed})"
        provenance = collect_provenance(result.deliveries, events=events, manifest=experiment.manifest,
                                        sources=[source_file(files["experiment"], "experiment")],
                                        design=experiment)
        for suffix in REPORT_SUFFIXES:
            path = out / f"report{suffix}"
            export_report(result, path, events=events, title=title, by=(col.CARRIER, col.ARM),
                          provenance=provenance)  # from the result: the report opens with its verdict
            files[f"report_{suffix.lstrip('.')}"] = path
    return DemoResult(result=result, truth=truth, out_dir=out, files=files,
                      seconds=time.perf_counter() - started, postbacks=received)
