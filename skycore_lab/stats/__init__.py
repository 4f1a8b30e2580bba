"""Statistics that tell the truth about MMS delivery.

Delivery rates with Wilson intervals (:func:`delivery_rates`), latency
quantiles that count undelivered sends as censored rather than dropping them
(:func:`latency_summary`, :func:`censored_latencies`), A/B comparisons of
arms with multiple-comparison control and optional always-valid sequential
inference (:func:`compare_arms`), and sample-size planning
(:func:`plan_sample_size`, :func:`power`).

The statistics are scipy's (``binomtest``'s Wilson interval,
``fisher_exact``, ``ecdf`` on ``CensoredData``, ``logrank``,
``bootstrap``); written here are only what scipy lacks: Holm's adjustment
(:mod:`.planning`), the Kaplan–Meier quantile's confidence bounds
(:mod:`.survival`), and the mixture SPRT (:mod:`.sequential`). Each is
checked against simulations in ``tests/test_stats_*.py``.

Every function reads only the columns it needs (:mod:`.inputs`: ``outcome``,
the latency column, the grouping or arm columns, and the time columns when
censoring needs them), so deliveries from any source work. Column names
of the frames returned are in :mod:`skycore_lab.columns`.
"""

from __future__ import annotations

from ..columns import (
    ARM_ESTIMATE,
    CENSORED_COLUMNS,
    COMPARISON_COLUMNS,
    CONTROL,
    CONTROL_ESTIMATE,
    DIFF,
    DURATION_S,
    KM_P50,
    KM_P50_HIGH,
    KM_P50_LOW,
    KM_P90,
    KM_P90_HIGH,
    KM_P90_LOW,
    LATENCY_SUMMARY_COLUMNS,
    METRIC,
    N,
    N_ARM,
    N_CONTROL,
    OBSERVED,
    P50,
    P90,
    P99,
    P_ADJUSTED,
    P_VALUE,
    REL_DIFF,
    SIGNIFICANT,
    TEST,
)
from ..exceptions import LatencyDataWarning
from .compare import (
    CONTROL_LABELS,
    DEFAULT_WITHIN_S,
    METRIC_DELIVERED_WITHIN,
    METRIC_DELIVERY_RATE,
    METRIC_LATENCY,
    METRICS,
    TEST_FISHER,
    TEST_LOGRANK,
    TEST_MSPRT,
    TEST_Z,
    compare_arms,
)
from .latency import censored_latencies, latency_summary
from .planning import CORRECTIONS, adjust_p_values, plan_sample_size, power
from .rates import delivery_rates

__all__ = [
    "censored_latencies",
    "delivery_rates",
    "latency_summary",
    "compare_arms",
    "adjust_p_values",
    "plan_sample_size",
    "power",
    "LatencyDataWarning",
    "DEFAULT_WITHIN_S",
    "CORRECTIONS",
    "CONTROL_LABELS",
    "METRICS",
    "METRIC_DELIVERY_RATE",
    "METRIC_LATENCY",
    "METRIC_DELIVERED_WITHIN",
    "TEST_Z",
    "TEST_FISHER",
    "TEST_MSPRT",
    "TEST_LOGRANK",
    # column names of the frames returned (defined in skycore_lab.columns)
    "DURATION_S",
    "OBSERVED",
    "CENSORED_COLUMNS",
    "N",
    "P50",
    "P90",
    "P99",
    "KM_P50",
    "KM_P50_LOW",
    "KM_P50_HIGH",
    "KM_P90",
    "KM_P90_LOW",
    "KM_P90_HIGH",
    "LATENCY_SUMMARY_COLUMNS",
    "CONTROL",
    "METRIC",
    "CONTROL_ESTIMATE",
    "ARM_ESTIMATE",
    "DIFF",
    "REL_DIFF",
    "P_VALUE",
    "P_ADJUSTED",
    "SIGNIFICANT",
    "N_CONTROL",
    "N_ARM",
    "TEST",
    "COMPARISON_COLUMNS",
]
