"""skycore-lab: test and measure MMS delivery through the Skycore API.

Send test MMS with :class:`SkycoreClient` (against production, or offline
against a :class:`Sandbox`), store the platform's postbacks with a
:class:`PostbackReceiver`, read them with :func:`read_postbacks`, turn them
into one row per send with :func:`deliveries`, and analyse: delivery rates
with honest intervals (:func:`delivery_rates`), the share delivered by time t
(:func:`cumulative_incidence`), latency with censoring
(:func:`latency_summary`), DDM A/B experiments (:class:`DdmExperiment`,
:func:`compare_arms`), plots and reports (:func:`export_report`). Manifests
are files (:func:`read_manifest`, :func:`write_manifest`), and the postbacks
can be checked against the platform's own report (:func:`reconcile`).

The package, one module or subpackage per responsibility::

    skycore_lab/
    ├── client.py          SkycoreClient, DDM, SendRequest, SendResult: sendSavedMMS, both wire forms;
    │                      sending_statistics: the platform's report, fetched
    ├── guard.py           SendGuard, DryRun: production confirmation, allowed numbers, dry runs
    ├── sandbox/           a local Skycore platform over HTTP, with its ground truth
    │   ├── core.py            Sandbox: the server's lifecycle and public face
    │   ├── app.py             the ASGI endpoint: requests in, <RESPONSE> out
    │   ├── platform.py        the API's checks and state (handset cache, limits, truth rows)
    │   ├── account.py         keys, shortcodes, saved MMS, campaigns
    │   ├── scenario.py        Scenario: the documented, validated world description
    │   ├── world.py           World: numbers' profiles, one send's notifications
    │   ├── model.py           the vectorised random draws of sends, and the truth frame
    │   ├── dispatcher.py      posting notifications in scaled time, with retries
    │   └── report.py          getSendingStatistics: the period's checks, the Appendix C report from the truth
    ├── postbacks/         receiving postbacks durably and reading them into events
    │   ├── receiver.py        PostbackReceiver: the HTTP server that stores every postback
    │   ├── logwriter.py       the append-only, rotating, fdatasync-batching log writer
    │   ├── logformat.py       the receiver's log format (one escaped body per line)
    │   ├── reader.py          read_postbacks, events_from_bodies: every stored format
    │   ├── tail.py            PostbackTail: what a live log gained
    │   ├── ranges.py          byte ranges of files, read as read_postbacks reads files (for ingest)
    │   ├── schema.py          which XML element fills which events column (one table)
    │   ├── grammar.py         the flat document shape the fast path proves
    │   ├── kernel.py          the compiled pass over records of every format (numba when installed)
    │   ├── vectorscan.py      the same pass vectorised, when numba is not (numpy, Arrow's RE2)
    │   ├── memory.py          the parser's Arrow pool: freed pages go back at once
    │   ├── documents.py       one document or body through the hardened lxml parser
    │   ├── logs.py            receiver logs buffer by buffer, on two threads
    │   ├── formats.py         files of documents and form lines on the same fast path
    │   ├── timestamps.py      TIMESTAMP texts in their general shapes
    │   ├── records.py         batches of records, and the bad-record policy
    │   ├── assemble.py        typed parts → the events frame
    │   └── dedupe.py          the one rule for the platform's retries
    ├── dataset/           a Parquet dataset of events that grows with the logs
    │   ├── ingest.py          ingest, IngestResult: new records appended once, crash-safe, deduped
    │   ├── read.py            read_events: the dataset as pandas or dask
    │   ├── store.py           part files: schema, partitions, the retries' keys
    │   └── state.py           the state file (the commit record) and the lock
    ├── frames/            one row per send, per number, per reported message
    │   ├── deliveries.py      deliveries: events (+ manifest) → sends
    │   ├── profiles.py        handset_profiles: one row per number
    │   ├── sending_report.py  read_sending_report: the platform's own report
    │   ├── reconcile.py       reconcile: postbacks against the platform's report, send by send
    │   ├── latency.py         every latency, defined once
    │   ├── times.py           reading times, an event's time, the latest known time
    │   ├── grouped.py         text as integer codes, first/last row per group of sorted arrays
    │   └── normalize.py       dtypes, places and clock skew shared by the frames
    ├── stats/             statistics that tell the truth
    │   ├── rates.py           delivery_rates (Wilson)
    │   ├── incidence.py       cumulative_incidence: share delivered by t (Aalen–Johansen)
    │   ├── latency.py         censored_latencies, latency_summary (Kaplan–Meier)
    │   ├── windows.py         outcome windows: which sends a comparison may count
    │   ├── compare.py         compare_arms
    │   ├── proportions.py     Newcombe, z/Fisher, Mantel–Haenszel (CMH) for two rates
    │   ├── logrank.py         logrank_test
    │   ├── srm.py             sample_ratio_mismatch
    │   ├── results.py         the test-result objects' summary, print_summary, HTML
    │   ├── planning.py        adjust_p_values, plan_sample_size, power, minimum_detectable_effect
    │   ├── sequential.py      the always-valid mixture SPRT
    │   ├── survival.py        Kaplan–Meier quantiles and their bounds
    │   └── inputs.py          reading a deliveries frame: outcomes, censoring times
    ├── plots/             plot_*: tidy data (data.py), then drawing (draw.py)
    │   ├── data.py
    │   └── draw.py
    ├── report/            export_report: HTML, Excel, CSV, Parquet
    │   ├── export.py          the writers
    │   ├── content.py         what a report shows, computed once
    │   ├── verdict.py         the decision an experiment's result supports, stated first
    │   ├── htmlpage.py        the self-contained HTML page
    │   └── provenance.py      the provenance in each format: HTML footer, sheet, sidecar, metadata
    ├── manifest.py        read_manifest, write_manifest: the send manifest's columns, dtypes and files
    ├── provenance.py      what a result came from: source files and hashes, counts, parameters, design
    ├── experiment.py      DdmExperiment, ExperimentResult: design, randomise, send, analyse
    ├── dashboard.py       LiveDashboard: counters, rates and curves while postbacks arrive
    ├── widgets.py         SendWidget: the notebook send form
    ├── livestatus.py      SendFollower: what the postbacks say of each send, in words (the form's rows)
    ├── demo.py            the main job: a whole DDM experiment on the sandbox
    ├── cli.py             skycore-lab demo | sandbox | listen | send | report | ingest
    ├── columns.py         every column name and vocabulary, once
    ├── reference.py       vendor facts: codes and outcomes, error texts, SPIDs, countries
    ├── exceptions.py      the SkycoreError and SkycoreWarning trees
    ├── checks.py          one wording for a missing column
    ├── ratelimit.py       RateLimiter: the client's pacing and the sandbox's limits
    ├── redaction.py       keeping API keys out of reprs, logs and messages
    ├── xmlsafe.py         hardened XML parsing (no entities, no DTD, no network)
    ├── server.py          running an ASGI app on uvicorn in a background thread
    ├── connlimits.py      ConnectionLimits: timeouts, header size, connection cap before the app
    ├── distributed/       the Dask engine: the frames and statistics on dask DataFrames
    │   ├── engine.py          telling a dask frame, importing dask, folding partitions on the cluster
    │   ├── frames.py          deliveries and handset_profiles: shuffled by send or number, pandas per partition
    │   └── cluster.py         a LocalCluster, or a client of an existing scheduler
    ├── optional.py        guarded imports of optional dependencies
    ├── files.py           atomic writes and file hashes
    └── _data/             Appendix B, D and E tables (CSV)

Names are imported on first use, so ``import skycore_lab`` stays fast for
the command line; ``dir(skycore_lab)`` and ``__all__`` list them all.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

# public name → module that defines it
_EXPORTS: dict[str, str] = {
    # client
    "SkycoreClient": "client",
    "DDM": "client",
    "SendRequest": "client",
    "SendResult": "client",
    "PRODUCTION_URL": "client",
    "validate_number": "client",
    "StatisticsRequest": "client",
    # the send guard
    "DryRun": "guard",
    "WireRequest": "guard",
    "SendGuard": "guard",
    # errors and warnings
    "SkycoreError": "exceptions",
    "SkycoreValidationError": "exceptions",
    "SkycoreAPIError": "exceptions",
    "SendGuardError": "exceptions",
    "NumberNotAllowedError": "exceptions",
    "ConfirmationRequiredError": "exceptions",
    "SkycoreRateLimitError": "exceptions",
    "SkycoreTransportError": "exceptions",
    "SkycoreTimeoutError": "exceptions",
    "SkycoreStateError": "exceptions",
    "SkycoreServerError": "exceptions",
    "DaskNotInstalledError": "exceptions",
    "PostbackParseError": "exceptions",
    "PostbackSourceNotFound": "exceptions",
    "ScenarioError": "exceptions",
    "SkycoreWarning": "exceptions",
    "PostbackParseWarning": "exceptions",
    "PostbackDataWarning": "exceptions",
    "ClockSkewWarning": "exceptions",
    "LatencyDataWarning": "exceptions",
    "SendingReportWarning": "exceptions",
    "KeyExposureWarning": "exceptions",
    "SendOptionWarning": "exceptions",
    "MissingPostbacksWarning": "exceptions",
    "PlotDataWarning": "exceptions",
    "DatasetError": "exceptions",
    "MissingDependencyError": "exceptions",
    # sandbox and receiver
    "Sandbox": "sandbox",
    "Scenario": "sandbox",
    "PostbackReceiver": "postbacks.receiver",
    # parsing and frames
    "read_postbacks": "postbacks.reader",
    "PostbackTail": "postbacks.tail",
    "ingest": "dataset.ingest",
    "IngestResult": "dataset.ingest",
    "read_events": "dataset.read",
    "events_from_bodies": "postbacks.reader",
    "deliveries": "frames.deliveries",
    "handset_profiles": "frames.profiles",
    "read_sending_report": "frames.sending_report",
    "read_manifest": "manifest",
    "write_manifest": "manifest",
    "reconcile": "frames.reconcile",
    "Reconciliation": "frames.reconcile",
    # statistics and experiments
    "delivery_rates": "stats.rates",
    "latency_summary": "stats.latency",
    "censored_latencies": "stats.latency",
    "compare_arms": "stats.compare",
    "cumulative_incidence": "stats.incidence",
    "logrank_test": "stats.logrank",
    "sample_ratio_mismatch": "stats.srm",
    "minimum_detectable_effect": "stats.planning",
    "plan_sample_size": "stats.planning",
    "power": "stats.planning",
    "adjust_p_values": "stats.planning",
    "DdmExperiment": "experiment",
    "ExperimentResult": "experiment",
    # plots and reports
    "plot_delivery_rates": "plots.draw",
    "plot_latency": "plots.draw",
    "plot_outcomes": "plots.draw",
    "plot_handsets": "plots.draw",
    "plot_timeline": "plots.draw",
    "export_report": "report.export",
    # notebook widgets
    "SendWidget": "widgets",
    "LiveDashboard": "dashboard",
}

__all__ = sorted([*_EXPORTS, "columns", "__version__"])


def __getattr__(name: str):
    module_name = _EXPORTS.get(name)
    if module_name is None:
        if name == "columns":
            return importlib.import_module(".columns", __name__)
        raise AttributeError(f"module 'skycore_lab' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module_name}", __name__), name)
    globals()[name] = value  # later look-ups skip __getattr__
    return value


def __dir__() -> list[str]:
    return list(__all__)


if TYPE_CHECKING:  # for IDEs and type checkers: the real imports
    from . import columns
    from .client import DDM, PRODUCTION_URL, SendRequest, SendResult, SkycoreClient, StatisticsRequest, validate_number
    from .guard import DryRun, SendGuard, WireRequest
    from .dashboard import LiveDashboard
    from .exceptions import (
        ClockSkewWarning,
        ConfirmationRequiredError,
        NumberNotAllowedError,
        SendGuardError,
        KeyExposureWarning,
        LatencyDataWarning,
        PostbackParseError,
        PostbackParseWarning,
        PlotDataWarning,
        PostbackDataWarning,
        PostbackSourceNotFound,
        ScenarioError,
        MissingPostbacksWarning,
        SendingReportWarning,
        SendOptionWarning,
        SkycoreAPIError,
        SkycoreError,
        SkycoreRateLimitError,
        SkycoreServerError,
        DaskNotInstalledError,
        SkycoreStateError,
        SkycoreTimeoutError,
        SkycoreTransportError,
        SkycoreValidationError,
        SkycoreWarning,
    )
    from .dataset import IngestResult, ingest, read_events
    from .exceptions import DatasetError, MissingDependencyError
    from .experiment import DdmExperiment, ExperimentResult
    from .frames import deliveries, handset_profiles, read_sending_report
    from .frames.reconcile import Reconciliation, reconcile
    from .manifest import read_manifest, write_manifest
    from .plots import plot_delivery_rates, plot_handsets, plot_latency, plot_outcomes, plot_timeline
    from .postbacks import PostbackReceiver, PostbackTail, events_from_bodies, read_postbacks
    from .report import export_report
    from .sandbox import Sandbox, Scenario
    from .stats import (
        adjust_p_values,
        censored_latencies,
        compare_arms,
        cumulative_incidence,
        delivery_rates,
        latency_summary,
        logrank_test,
        minimum_detectable_effect,
        plan_sample_size,
        power,
        sample_ratio_mismatch,
    )
    from .widgets import SendWidget
