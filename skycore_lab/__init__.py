"""skycore-lab: test and measure MMS delivery through the Skycore API.

Send test MMS with :class:`SkycoreClient` (against production, or offline
against a :class:`Sandbox`), store the platform's postbacks with a
:class:`PostbackReceiver`, read them with :func:`read_postbacks`, turn them
into one row per send with :func:`deliveries`, and analyse: delivery rates
with honest intervals (:func:`delivery_rates`), latency with censoring
(:func:`latency_summary`), DDM A/B experiments (:class:`DdmExperiment`,
:func:`compare_arms`), plots and reports (:func:`export_report`).

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
    # exceptions
    "SkycoreError": "exceptions",
    "SkycoreValidationError": "exceptions",
    "SkycoreAPIError": "exceptions",
    "SkycoreRateLimitError": "exceptions",
    "SkycoreTransportError": "exceptions",
    "SkycoreTimeoutError": "exceptions",
    "PostbackParseError": "exceptions",
    "ScenarioError": "exceptions",
    # sandbox and receiver
    "Sandbox": "sandbox",
    "Scenario": "sandbox",
    "PostbackReceiver": "receiver",
    # parsing and frames
    "read_postbacks": "postbacks",
    "PostbackParseWarning": "postbacks",
    "PostbackTail": "postbacks",
    "events_from_bodies": "postbacks",
    "deliveries": "frames",
    "handset_profiles": "frames",
    "read_sending_report": "sending_report",
    "ClockSkewWarning": "frames",
    "SendingReportWarning": "sending_report",
    # statistics and experiments
    "delivery_rates": "stats",
    "latency_summary": "stats",
    "censored_latencies": "stats",
    "compare_arms": "stats",
    "plan_sample_size": "stats",
    "power": "stats",
    "adjust_p_values": "stats",
    "DdmExperiment": "experiment",
    "ExperimentResult": "experiment",
    # plots and reports
    "plot_delivery_rates": "plots",
    "plot_latency": "plots",
    "plot_outcomes": "plots",
    "plot_handsets": "plots",
    "plot_timeline": "plots",
    "export_report": "report",
    # notebook widgets
    "SendWidget": "widgets",
    "LiveDashboard": "widgets",
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
    from .client import DDM, PRODUCTION_URL, SendRequest, SendResult, SkycoreClient, validate_number
    from .exceptions import (
        PostbackParseError,
        ScenarioError,
        SkycoreAPIError,
        SkycoreError,
        SkycoreRateLimitError,
        SkycoreTimeoutError,
        SkycoreTransportError,
        SkycoreValidationError,
    )
    from .experiment import DdmExperiment, ExperimentResult
    from .frames import ClockSkewWarning, deliveries, handset_profiles
    from .sending_report import SendingReportWarning, read_sending_report
    from .plots import plot_delivery_rates, plot_handsets, plot_latency, plot_outcomes, plot_timeline
    from .postbacks import PostbackParseWarning, PostbackTail, events_from_bodies, read_postbacks
    from .receiver import PostbackReceiver
    from .report import export_report
    from .sandbox import Sandbox, Scenario
    from .stats import adjust_p_values, censored_latencies, compare_arms, delivery_rates, latency_summary, plan_sample_size, power
    from .widgets import LiveDashboard, SendWidget
