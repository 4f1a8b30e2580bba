"""The vectorised core of the world model: random draws and what the postbacks will show.

:func:`draw` simulates ``n`` independent sends at once (times in simulated
seconds after each request); :func:`observables` turns the draws into what
the notifications will report (epoch seconds rounded up to the second).
:func:`truth_frame` gives truth rows their documented dtypes.
"""

from __future__ import annotations

import numpy as np

from .. import columns as col
from ..frames.latency import latency_seconds

__all__ = ["draw", "observables", "truth_frame", "ceil_s", "UNIFORM_DRAWS", "NORMAL_DRAWS"]

#: The uniform draws of one send, in drawing order.
UNIFORM_DRAWS: tuple[str, ...] = (
    "ddm_send_fail",  # the DDM could not be sent
    "ddm_no_report",  # the DDM's delivery report never comes
    "ddm_report_failed",  # the DDM report says it failed
    "send_error",  # the content could not be sent at all (E101)
    "fallback",  # the content goes out as an SMS link
    "reach",  # the MMS reaches the handset within the expiry
    "refuse",  # the handset refuses the content
    "failure_kind",  # which failure an undelivered MMS reports
    "sms_sent_delay",  # seconds from the decision to the link SMS
    "sms_deliver",  # the link SMS is delivered
    "stamp_offset",  # which of the country's UTC offsets the stamps show
)
#: The standard normal draws of one send (log-normal delays), in drawing order.
NORMAL_DRAWS: tuple[str, ...] = (
    "ddm_processing",  # request → DDM sent
    "ddm_report_delay",  # DDM sent → its report
    "content_processing",  # decision → content sent
    "mms_latency",  # content sent → handset reached
    "sms_latency",  # link SMS sent → delivered
)


def ceil_s(seconds: np.ndarray) -> np.ndarray:
    """Round up to the whole second (postbacks carry seconds; never stamp before the cause)."""
    return np.ceil(np.round(seconds, 6))


def draw(settings: dict, table: list[dict], rng, carrier_idx, cached, ddm_requested, ddm_timeout_s, ddm_force) -> dict[str, np.ndarray]:
    """Draw every random quantity of ``len(carrier_idx)`` independent sends (times in seconds after the request)."""
    s = settings
    n = len(carrier_idx)
    mms = np.array([c["mms"] for c in table])[carrier_idx]
    receipts = np.array([c["receipts"] for c in table])[carrier_idx]
    p_deliver = np.array([c["p_deliver"] for c in table])[carrier_idx]
    lat_mu = np.log(np.array([c["latency_median_s"] for c in table]))[carrier_idx]
    lat_sigma = np.array([c["latency_sigma"] for c in table])[carrier_idx]
    proc = s["processing"]
    # Every random quantity of a send has its own named draw; the order of the
    # names is the order of the draws, which fixes the results for a seed.
    u = dict(zip(UNIFORM_DRAWS, rng.random((len(UNIFORM_DRAWS), n))))
    normal = dict(zip(NORMAL_DRAWS, rng.standard_normal((len(NORMAL_DRAWS), n))))

    def processing(name):
        return np.exp(np.log(proc["median_s"]) + proc["sigma"] * normal[name])

    d = s["ddm"]
    ddm_sent = ddm_requested & (~cached | ddm_force)
    ddm_at = np.where(ddm_sent, processing("ddm_processing"), np.nan)
    ddm_send_failed = ddm_sent & ((u["ddm_send_fail"] < d["p_send_fail"]) | ~mms)
    report_delay = np.exp(np.log(d["report_median_s"]) + d["report_sigma"] * normal["ddm_report_delay"])
    reports = (ddm_sent & ~ddm_send_failed & receipts & (u["ddm_no_report"] >= d["p_no_report"])
               & (report_delay <= d["report_horizon_s"]))
    report_failed = reports & (u["ddm_report_failed"] < d["p_report_failed"])
    report_at = np.where(reports, ddm_at + report_delay, np.nan)
    in_time = reports & ~report_failed & (report_delay <= ddm_timeout_s)
    # Content decision: at once; after the DDM report; or at the DDM time-out.
    decision = np.zeros(n)
    waits = ddm_sent & ~ddm_send_failed
    decision = np.where(waits, ddm_at + np.where(in_time, report_delay, ddm_timeout_s), decision)
    decision = np.where(ddm_send_failed, ddm_at, decision)
    content_at = decision + processing("content_processing")
    handset_known = cached | in_time
    c_t, c_g = s["content"]["transcoded"], s["content"]["generic"]
    p_fallback = np.where(handset_known, c_t["p_fallback"], c_g["p_fallback"])
    p_fail = np.where(handset_known, c_t["p_fail"], c_g["p_fail"])
    send_error = u["send_error"] < s["send_error_rate"]
    as_sms = ~send_error & (~mms | (u["fallback"] < p_fallback))
    as_mms = ~send_error & ~as_sms
    # MMS leg: reach the handset within the expiry, then the handset takes or refuses the content.
    latency = np.exp(lat_mu + lat_sigma * normal["mms_latency"])
    reached = (u["reach"] < p_deliver) & (latency <= s["expiry_s"])
    refused = reached & (u["refuse"] < p_fail)
    mms_outcome = np.where(reached & ~refused, col.OUTCOME_DELIVERED,
                           np.where(refused, np.where(u["failure_kind"] < 0.6, col.OUTCOME_NOT_SUPPORTED, col.OUTCOME_REJECTED),
                                    np.where(u["failure_kind"] < 0.7, col.OUTCOME_EXPIRED, col.OUTCOME_FAILED)))
    mms_final = np.where(mms_outcome == col.OUTCOME_EXPIRED, s["expiry_s"],
                         np.where(mms_outcome == col.OUTCOME_FAILED, np.minimum(latency, s["expiry_s"]) * 0.5, latency))
    # SMS leg of a fallback.
    sm = s["sms"]
    sms_sent = 1.0 + u["sms_sent_delay"]
    sms_latency = np.exp(np.log(sm["latency_median_s"]) + sm["latency_sigma"] * normal["sms_latency"])
    sms_delivered = u["sms_deliver"] < sm["p_deliver"]
    true_outcome = np.where(send_error, col.OUTCOME_FAILED,
                            np.where(as_sms, np.where(sms_delivered, col.OUTCOME_DELIVERED, col.OUTCOME_FAILED),
                                     mms_outcome))
    final_delay = np.where(as_sms, sms_sent + sms_latency, mms_final)
    return {
        "mms": mms, "receipts": receipts, "ddm_sent": ddm_sent, "ddm_at": ddm_at,
        "ddm_send_failed": ddm_send_failed, "reports": reports, "report_failed": report_failed,
        "report_at": report_at, "in_time": in_time, "content_at": content_at, "send_error": send_error,
        "as_sms": as_sms, "as_mms": as_mms, "transcoded": as_mms & handset_known,
        "true_outcome": true_outcome, "final_at": content_at + final_delay,
        "sms_sent_at": content_at + sms_sent, "u_offset": u["stamp_offset"],
    }

def observables(core: dict[str, np.ndarray], requested: np.ndarray) -> dict[str, np.ndarray]:
    """What the postbacks will show, as epoch seconds (whole, NaN when absent) and labels."""
    receipts, send_error, as_sms = core["receipts"], core["send_error"], core["as_sms"]

    def at(delay, present):
        return np.where(present, ceil_s(requested + np.nan_to_num(delay)), np.nan)

    ddm_ok = core["reports"] & ~core["report_failed"]
    ddm_failed = core["ddm_send_failed"] | core["report_failed"]
    ddm = np.where(~core["ddm_sent"], col.DDM_NONE,
                   np.where(ddm_failed, col.DDM_FAILED, np.where(ddm_ok, col.DDM_DELIVERED, col.DDM_SENT)))
    true_outcome = core["true_outcome"]
    outcome = np.where(send_error, col.OUTCOME_FAILED, np.where(receipts, true_outcome, col.OUTCOME_PENDING))
    delivered = outcome == col.OUTCOME_DELIVERED
    failed = np.isin(outcome, col.FAILURE_OUTCOMES)
    final = np.where(send_error, core["content_at"], core["final_at"])
    sent_at = at(core["content_at"], ~send_error)
    delivered_at = at(final, delivered)
    return {
        "ddm": ddm,
        "ddm_sent_at": at(core["ddm_at"], core["ddm_sent"] & ~core["ddm_send_failed"]),
        "ddm_report_at": at(core["report_at"], core["reports"]),
        "ddm_delivered_at": at(core["report_at"], ddm_ok),
        "sent_at": sent_at,
        "sms_sent_at": at(core["sms_sent_at"], as_sms),
        "delivered_at": delivered_at,
        "failed_at": at(final, failed),
        "true_delivered_at": at(core["final_at"], (true_outcome == col.OUTCOME_DELIVERED) & ~send_error),
        "outcome": outcome,
        "handset_reported": (delivered & core["as_mms"]) | ddm_ok,
        "sent_as": np.where(send_error, None, np.where(as_sms, col.SENT_AS_SMS, col.SENT_AS_MMS)),
    }


_TIME_COLUMNS = (col.DDM_SENT_AT, col.DDM_DELIVERED_AT, col.SENT_AT, col.TRUE_DELIVERED_AT, col.DELIVERED_AT,
                 col.FAILED_AT)
_TEXT_COLUMNS = (col.TRACKING_ID, col.TO, col.MMS_ID, col.SENDER, col.COUNTRY, col.CARRIER, col.SPID,
                 col.TRUE_HANDSET, col.DDM, col.SENT_AS, col.TRUE_OUTCOME, col.OUTCOME, col.HANDSET)


def truth_frame(data) -> "pandas.DataFrame":  # noqa: F821
    """Normalise truth rows (list of dicts, or dict of columns) to the documented dtypes.

    Times are tz-aware UTC (NaT when absent; epoch seconds or datetimes in),
    text columns pandas' ``str`` dtype (missing stays missing), flags bool,
    ``ddm_timeout_min`` and ``latency_s`` float (NaN when absent).
    """
    import pandas as pd

    frame = pd.DataFrame(data, columns=list(col.TRUTH_COLUMNS))
    for name in _TIME_COLUMNS:
        values = frame[name]
        if values.dtype.kind == "f":
            frame[name] = pd.to_datetime(values, unit="s", utc=True)
        else:
            frame[name] = pd.to_datetime(values, utc=True)
    frame[col.REQUESTED_AT] = pd.to_datetime(frame[col.REQUESTED_AT], utc=True).dt.round("us")
    for name in _TEXT_COLUMNS:
        frame[name] = frame[name].astype("str")
    for name in (col.CACHED_BEFORE, col.DDM_REQUESTED, col.TRANSCODED, col.RECEIPT):
        frame[name] = frame[name].astype(bool)
    frame[col.DDM_TIMEOUT_MIN] = frame[col.DDM_TIMEOUT_MIN].astype(float)
    frame[col.LATENCY_S] = latency_seconds(frame, col.LATENCY_S)
    return frame
