"""Statistics that tell the truth about MMS delivery, also while an experiment runs.

Delivery rates with Wilson intervals (:func:`delivery_rates`); the share
delivered by time t with failures as a competing event and pending sends
censored (:func:`cumulative_incidence`, Aalen–Johansen); the time to delivery
among delivered sends (:func:`latency_summary`, :func:`censored_latencies`);
A/B comparisons of arms that count only sends whose outcome window has
closed (:mod:`.windows`), fixed-horizon or always-valid, plain or stratified
(:func:`compare_arms`); the log-rank test (:func:`logrank_test`); the
sample-ratio-mismatch check (:func:`sample_ratio_mismatch`); and planning
(:func:`plan_sample_size`, :func:`power`, :func:`minimum_detectable_effect`).

The statistics are scipy's where scipy has them (``binomtest``'s Wilson
interval, ``fisher_exact``, ``chisquare``, ``ecdf`` on ``CensoredData``,
``logrank``, ``false_discovery_control``); written here are only what scipy
lacks: Holm's adjustment (:mod:`.planning`), the Kaplan–Meier quantile's
confidence bounds (:mod:`.survival`), the Aalen–Johansen curve and its
delta-method variance (:mod:`.incidence`), the Mantel–Haenszel difference
with Sato's variance (:mod:`.proportions`) and the mixture SPRT
(:mod:`.sequential`). Each is checked against simulations written apart
from the code, in ``tests/test_stats_*.py``.

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
from ..columns import (
    ASSIGNED,
    AT_RISK,
    CUMULATIVE_INCIDENCE_COLUMNS,
    EXPECTED,
    REFUSAL_CODES,
    REFUSED,
    SENDS,
    SHARE_DELIVERED,
    SRM_COLUMNS,
    TEST_STATISTIC,
    TIME_S,
    WINDOW_S,
)
from ..exceptions import LatencyDataWarning
from .compare import (
    CONTROL_LABELS,
    DEFAULT_WITHIN_S,
    METRIC_DELIVERED_WITHIN,
    METRIC_DELIVERY_RATE,
    METRIC_LATENCY,
    METRICS,
    RATE_METRICS,
    TEST_CMH,
    TEST_FISHER,
    TEST_LOGRANK,
    TEST_MSPRT,
    TEST_RMST,
    TEST_Z,
    compare_arms,
)
from .incidence import cumulative_incidence
from .latency import NOT_REACHED, censored_latencies, format_seconds, latency_summary
from .logrank import LogrankResult, logrank_test
from .planning import (
    CORRECTIONS,
    FWER_CORRECTIONS,
    SampleSizeCheck,
    adjust_p_values,
    check_sample_size,
    minimum_detectable_effect,
    plan_sample_size,
    power,
)
from .rates import delivery_rates
from .srm import SRM_THRESHOLD, SampleRatioCheck, sample_ratio_mismatch
from .windows import DEFAULT_DELIVERY_ALLOWANCE_S, default_settle_s

__all__ = [
    "censored_latencies",
    "delivery_rates",
    "latency_summary",
    "cumulative_incidence",
    "format_seconds",
    "NOT_REACHED",
    "compare_arms",
    "logrank_test",
    "LogrankResult",
    "sample_ratio_mismatch",
    "SampleRatioCheck",
    "SRM_THRESHOLD",
    "adjust_p_values",
    "plan_sample_size",
    "power",
    "minimum_detectable_effect",
    "check_sample_size",
    "SampleSizeCheck",
    "LatencyDataWarning",
    "DEFAULT_WITHIN_S",
    "DEFAULT_DELIVERY_ALLOWANCE_S",
    "default_settle_s",
    "CORRECTIONS",
    "FWER_CORRECTIONS",
    "CONTROL_LABELS",
    "METRICS",
    "RATE_METRICS",
    "METRIC_DELIVERY_RATE",
    "METRIC_LATENCY",
    "METRIC_DELIVERED_WITHIN",
    "TEST_Z",
    "TEST_FISHER",
    "TEST_CMH",
    "TEST_MSPRT",
    "TEST_RMST",
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
    "WINDOW_S",
    "COMPARISON_COLUMNS",
    "TIME_S",
    "SHARE_DELIVERED",
    "AT_RISK",
    "SENDS",
    "CUMULATIVE_INCIDENCE_COLUMNS",
    "ASSIGNED",
    "EXPECTED",
    "REFUSED",
    "REFUSAL_CODES",
    "SRM_COLUMNS",
    "TEST_STATISTIC",
]
