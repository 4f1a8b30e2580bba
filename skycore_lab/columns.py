"""Column names and vocabularies shared by every DataFrame skycore-lab makes.

Each name is defined once here and imported everywhere else, so a frame made
by one module (say the postback parser) is read by another (say the
statistics) without a string typed twice.

Frames
------
``EVENT_COLUMNS``
    One row per postback notification; :func:`skycore_lab.read_postbacks`
    returns ``EVENT_FRAME_COLUMNS`` (the same with ``line``).
``MANIFEST_COLUMNS``
    One row per attempted send (:meth:`skycore_lab.SkycoreClient.send_batch`).
``DELIVERY_COLUMNS``
    One row per MMS send, tracking id (:func:`skycore_lab.deliveries`).
``PROFILE_COLUMNS``
    One row per phone number (:func:`skycore_lab.handset_profiles`).
``RECONCILE_COLUMNS``
    One row per send, postbacks against the platform's report
    (:func:`skycore_lab.reconcile`).
``TRUTH_COLUMNS``
    The sandbox's ground truth, one row per accepted send
    (:meth:`skycore_lab.Sandbox.truth`).
``RATE_COLUMNS``, ``CENSORED_COLUMNS``, ``LATENCY_SUMMARY_COLUMNS``, ``COMPARISON_COLUMNS``
    The statistics' frames (:func:`skycore_lab.delivery_rates`,
    :func:`skycore_lab.censored_latencies`, :func:`skycore_lab.latency_summary`,
    :func:`skycore_lab.compare_arms`).
``CUMULATIVE_INCIDENCE_COLUMNS``, ``SRM_COLUMNS``
    Share delivered by time t (:func:`skycore_lab.cumulative_incidence`) and
    the sample-ratio-mismatch table (:func:`skycore_lab.sample_ratio_mismatch`).
"""

from __future__ import annotations

# --- identifiers -----------------------------------------------------------
TRACKING_ID = "tracking_id"
TO = "to"
SENDER = "sender"  # the shortcode (FROM); "from" is a Python keyword
MMS_ID = "mms_id"
SPID = "spid"
CARRIER = "carrier"
COUNTRY = "country"
HANDSET = "handset"
ARM = "arm"

# --- postback event fields --------------------------------------------------
ORIGIN = "origin"
CODE = "code"
STATUS = "status"
SENT_AS = "sent_as"
TIMESTAMP = "timestamp"
AGGREGATOR_ID = "aggregator_id"
STATUS_DETAILS = "status_details"
RECEIVED_AT = "received_at"
SOURCE = "source"
LINE = "line"  # 1-based line where the record starts in its source
EXTRA = "extra"
# flags the parser sets (bool): how much of a row is reading rather than the record's own words
TIMESTAMP_INFERRED = "timestamp_inferred"  # TIMESTAMP had no UTC offset: one was taken or assumed
RECOVERED = "recovered"  # the record was not well-formed XML and was repaired
TIME_OUT_OF_RANGE = "time_out_of_range"  # timestamp or received_at outside frames.times.PLAUSIBLE_TIMES

EVENT_COLUMNS: tuple[str, ...] = (
    ORIGIN,
    CODE,
    STATUS,
    SENT_AS,
    MMS_ID,
    SENDER,
    TO,
    TRACKING_ID,
    SPID,
    CARRIER,
    COUNTRY,
    TIMESTAMP,
    HANDSET,
    AGGREGATOR_ID,
    STATUS_DETAILS,
    RECEIVED_AT,
    SOURCE,
    TIMESTAMP_INFERRED,
    RECOVERED,
    TIME_OUT_OF_RANGE,
    EXTRA,
)
#: The parser's flag columns (bool), in ``EVENT_COLUMNS`` order.
EVENT_FLAGS: tuple[str, ...] = (TIMESTAMP_INFERRED, RECOVERED, TIME_OUT_OF_RANGE)
#: Columns of the frame :func:`skycore_lab.read_postbacks` returns:
#: ``EVENT_COLUMNS`` with ``line`` inserted before ``extra``.
EVENT_FRAME_COLUMNS: tuple[str, ...] = (*EVENT_COLUMNS[:-1], LINE, EXTRA)
EVENT_CATEGORICAL: tuple[str, ...] = (CODE, ORIGIN, STATUS, SENT_AS, CARRIER, COUNTRY)

#: dtype of every time column skycore-lab makes: tz-aware UTC, microseconds.
DATETIME_DTYPE = "datetime64[us, UTC]"

# --- send manifest ------------------------------------------------------------
REQUESTED_AT = "requested_at"
ERROR_CODE = "error_code"
ERROR_INFO = "error_info"

MANIFEST_COLUMNS: tuple[str, ...] = (
    TO,
    STATUS,
    TRACKING_ID,
    SENDER,
    REQUESTED_AT,
    ERROR_CODE,
    ERROR_INFO,
)

# --- deliveries ------------------------------------------------------------------
FIRST_EVENT_AT = "first_event_at"
SENT_AT = "sent_at"
DELIVERED_AT = "delivered_at"
FAILED_AT = "failed_at"
FINAL_CODE = "final_code"
OUTCOME = "outcome"
LATENCY_S = "latency_s"
TOTAL_LATENCY_S = "total_latency_s"
DDM = "ddm"
DDM_LATENCY_S = "ddm_latency_s"

DELIVERY_COLUMNS: tuple[str, ...] = (
    TRACKING_ID,
    TO,
    MMS_ID,
    SENDER,
    CARRIER,
    COUNTRY,
    SPID,
    SENT_AS,
    REQUESTED_AT,
    FIRST_EVENT_AT,
    SENT_AT,
    DELIVERED_AT,
    FAILED_AT,
    FINAL_CODE,
    OUTCOME,
    LATENCY_S,
    TOTAL_LATENCY_S,
    HANDSET,
    DDM,
    DDM_LATENCY_S,
)

# --- handset profiles ----------------------------------------------------------
FIRST_SEEN = "first_seen"
LAST_SEEN = "last_seen"
DELIVERIES = "deliveries"
HANDSET_CHANGES = "handset_changes"

PROFILE_COLUMNS: tuple[str, ...] = (
    TO,
    HANDSET,
    CARRIER,
    COUNTRY,
    FIRST_SEEN,
    LAST_SEEN,
    DELIVERIES,
    HANDSET_CHANGES,
)

# --- vocabularies ------------------------------------------------------------------
OUTCOME_DELIVERED = "delivered"
OUTCOME_FAILED = "failed"
OUTCOME_EXPIRED = "expired"
OUTCOME_REJECTED = "rejected"
OUTCOME_NOT_SUPPORTED = "not_supported"
OUTCOME_PENDING = "pending"
#: Every outcome, in the order reports and stacked plots show them.
OUTCOMES: tuple[str, ...] = (
    OUTCOME_DELIVERED,
    OUTCOME_FAILED,
    OUTCOME_EXPIRED,
    OUTCOME_REJECTED,
    OUTCOME_NOT_SUPPORTED,
    OUTCOME_PENDING,
)
#: Outcomes that end a message's life without delivery.
FAILURE_OUTCOMES: tuple[str, ...] = (
    OUTCOME_FAILED,
    OUTCOME_EXPIRED,
    OUTCOME_REJECTED,
    OUTCOME_NOT_SUPPORTED,
)

DDM_NONE = "none"
DDM_SENT = "sent"
DDM_DELIVERED = "delivered"
DDM_FAILED = "failed"
DDM_STATES: tuple[str, ...] = (DDM_NONE, DDM_SENT, DDM_DELIVERED, DDM_FAILED)

SENT_AS_MMS = "MMS"
SENT_AS_SMS = "SMS"

# --- statistics frames -------------------------------------------------------------
SENT = "sent"
DELIVERED = "delivered"
FAILED = "failed"
PENDING = "pending"
RATE = "rate"
CI_LOW = "ci_low"
CI_HIGH = "ci_high"

RATE_COLUMNS: tuple[str, ...] = (SENT, DELIVERED, FAILED, PENDING, RATE, CI_LOW, CI_HIGH)

# censored latencies (:func:`skycore_lab.censored_latencies`)
DURATION_S = "duration_s"
OBSERVED = "observed"
CENSORED_COLUMNS: tuple[str, ...] = (DURATION_S, OBSERVED)
#: How a send's follow-up ended, in the incidence's sufficient statistics: 1 delivered, 2 failed, 0 censored.
KIND = "kind"
# the sufficient statistics of compare_arms (skycore_lab.stats.compare.arm_tallies)
COUNTED = "counted"  # the send's outcome window had closed
WITHIN = "within"  # delivered within the window
RESTRICTED_S = "restricted_s"  # the latency metric's value: latency within the horizon, else the horizon
STRATUM = "stratum"

# latency summary (:func:`skycore_lab.latency_summary`)
N = "n"
P50 = "p50"
P90 = "p90"
P99 = "p99"
KM_P50 = "km_p50"
KM_P50_LOW = "km_p50_low"
KM_P50_HIGH = "km_p50_high"
KM_P90 = "km_p90"
KM_P90_LOW = "km_p90_low"
KM_P90_HIGH = "km_p90_high"
LATENCY_SUMMARY_COLUMNS: tuple[str, ...] = (
    N, DELIVERED, P50, P90, P99, KM_P50, KM_P50_LOW, KM_P50_HIGH, KM_P90, KM_P90_LOW, KM_P90_HIGH,
)  # fmt: skip

# arm comparisons (:func:`skycore_lab.compare_arms`)
CONTROL = "control"
METRIC = "metric"
CONTROL_ESTIMATE = "control_estimate"
ARM_ESTIMATE = "arm_estimate"
DIFF = "diff"
REL_DIFF = "rel_diff"
P_VALUE = "p_value"
P_ADJUSTED = "p_adjusted"
SIGNIFICANT = "significant"
N_CONTROL = "n_control"
N_ARM = "n_arm"
TEST = "test"
WINDOW_S = "window_s"  # the outcome window a send had to have passed to be counted, seconds
#: compare_arms columns after the arm column itself.
COMPARISON_COLUMNS: tuple[str, ...] = (
    CONTROL, METRIC, CONTROL_ESTIMATE, ARM_ESTIMATE, DIFF, REL_DIFF, CI_LOW, CI_HIGH,
    P_VALUE, P_ADJUSTED, SIGNIFICANT, N_CONTROL, N_ARM, TEST, WINDOW_S,
)  # fmt: skip

# log-rank tests (:func:`skycore_lab.logrank_test`): the standardised statistic
TEST_STATISTIC = "test_statistic"

# share delivered by time t, failures competing (:func:`skycore_lab.cumulative_incidence`)
TIME_S = "time_s"
SHARE_DELIVERED = "share_delivered"
AT_RISK = "at_risk"
SENDS = "sends"
CUMULATIVE_INCIDENCE_COLUMNS: tuple[str, ...] = (TIME_S, SHARE_DELIVERED, CI_LOW, CI_HIGH, AT_RISK, SENDS)

# sample-ratio-mismatch check (:func:`skycore_lab.sample_ratio_mismatch`); OBSERVED counts sends here
ASSIGNED = "assigned"
EXPECTED = "expected"
REFUSED = "refused"
REFUSAL_CODES = "refusal_codes"
SRM_COLUMNS: tuple[str, ...] = (ARM, ASSIGNED, EXPECTED, OBSERVED, REFUSED, REFUSAL_CODES)

# --- sandbox truth ------------------------------------------------------------------
TRUE_HANDSET = "true_handset"
CACHED_BEFORE = "cached_before"
DDM_REQUESTED = "ddm_requested"
DDM_TIMEOUT_MIN = "ddm_timeout_min"
DDM_SENT_AT = "ddm_sent_at"
DDM_DELIVERED_AT = "ddm_delivered_at"
TRANSCODED = "transcoded"
RECEIPT = "receipt"
TRUE_OUTCOME = "true_outcome"
TRUE_DELIVERED_AT = "true_delivered_at"

TRUTH_COLUMNS: tuple[str, ...] = (
    TRACKING_ID,
    TO,
    MMS_ID,
    SENDER,
    COUNTRY,
    CARRIER,
    SPID,
    TRUE_HANDSET,
    CACHED_BEFORE,
    DDM_REQUESTED,
    DDM_TIMEOUT_MIN,
    DDM,
    DDM_SENT_AT,
    DDM_DELIVERED_AT,
    TRANSCODED,
    SENT_AS,
    REQUESTED_AT,
    SENT_AT,
    TRUE_OUTCOME,
    TRUE_DELIVERED_AT,
    RECEIPT,
    OUTCOME,
    DELIVERED_AT,
    FAILED_AT,
    HANDSET,
    LATENCY_S,
)

# --- reconciliation (:func:`skycore_lab.reconcile`) -----------------------------------------------
REPORT_ID = "report_id"  # the sending report's own message id
CATEGORY = "category"  # what the comparison of one send found
MATCHED_BY = "matched_by"
POSTBACK_OUTCOME = "postback_outcome"
REPORT_OUTCOME = "report_outcome"
POSTBACK_FIRST_AT = "postback_first_at"
REPORT_FIRST_AT = "report_first_at"
POSTBACK_TIME = "postback_time"
REPORT_TIME = "report_time"
TIME_DIFF_S = "time_diff_s"

RECONCILE_COLUMNS: tuple[str, ...] = (
    TRACKING_ID, REPORT_ID, TO, MMS_ID, CARRIER, CATEGORY, MATCHED_BY, POSTBACK_OUTCOME, REPORT_OUTCOME,
    POSTBACK_FIRST_AT, REPORT_FIRST_AT, POSTBACK_TIME, REPORT_TIME, TIME_DIFF_S,
)  # fmt: skip

AGREES = "agrees"
POSTBACK_MISSING = "postback_missing"
REPORT_MISSING = "report_missing"
OUTCOME_DIFFERS = "outcome_differs"
TIME_DIFFERS = "time_differs"
#: What a send's reconciliation can find, in the order summaries show them.
RECONCILE_CATEGORIES: tuple[str, ...] = (AGREES, POSTBACK_MISSING, REPORT_MISSING, OUTCOME_DIFFERS, TIME_DIFFERS)
MATCHED_BY_ID = "tracking_id"
MATCHED_BY_NUMBER_AND_TIME = "number_and_time"
