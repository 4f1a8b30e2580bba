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
``TRUTH_COLUMNS``
    The sandbox's ground truth, one row per accepted send
    (:meth:`skycore_lab.Sandbox.truth`).
``RATE_COLUMNS``, ``CENSORED_COLUMNS``, ``LATENCY_SUMMARY_COLUMNS``, ``COMPARISON_COLUMNS``
    The statistics' frames (:func:`skycore_lab.delivery_rates`,
    :func:`skycore_lab.censored_latencies`, :func:`skycore_lab.latency_summary`,
    :func:`skycore_lab.compare_arms`).
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
#: compare_arms columns after the arm column itself.
COMPARISON_COLUMNS: tuple[str, ...] = (
    CONTROL, METRIC, CONTROL_ESTIMATE, ARM_ESTIMATE, DIFF, REL_DIFF, CI_LOW, CI_HIGH,
    P_VALUE, P_ADJUSTED, SIGNIFICANT, N_CONTROL, N_ARM, TEST,
)  # fmt: skip

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
