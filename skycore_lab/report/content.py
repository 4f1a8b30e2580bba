"""What a delivery report says, computed once and rendered by :mod:`skycore_lab.report`
(Excel) and :mod:`skycore_lab.report.htmlpage` (HTML).

Every number comes from :mod:`skycore_lab.stats`; this module only chooses
the tables, names them and records what could not be computed (as notes
shown in the report, never as a failed export).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd

from .. import columns as col
from ..plots.data import MISSING_LABEL
from ..exceptions import SkycoreValidationError
from ..frames.latency import LATENCIES
from ..frames.times import data_period
from ..stats.compare import DEFAULT_WITHIN_S

# --- column names of the report's own tables (candidates for columns.py) ------------------
ITEM = "item"
VALUE = "value"
MEASURE = "measure"  # which latency column a latency row describes
GROUPING = "grouping"  # the column a latency row is grouped by ("all" for every send)
GROUP = "group"  # that column's value

#: GROUPING / GROUP of the latency row over every send.
ALL_SENDS = "all"
#: Value of the arm column in "rates by arm" when the frame has no arm column.
NO_ARM_LABEL = "all sends (no arm column)"

SUMMARY_KEY = "summary"
LATENCY_KEY = "latency"
COMPARISONS_KEY = "comparisons"
DELIVERIES_KEY = "deliveries"

#: Metric definitions shown in every report: term → definition.
DEFINITIONS: dict[str, str] = {
    "send": "One MMS accepted by the API (one tracking id), one row of the deliveries table.",
    col.SENT: "Sends counted in a rate: delivered + failed + pending (pending sends count as not delivered).",
    col.DELIVERED: "Sends with a delivery report (N102, or N202 for the SMS/xHTML fallback).",
    col.FAILED: (
        "Sends with a failure notification: failed (E101, or E102 'Sent/Failed'), expired, rejected or "
        "not_supported (E102 by its status); a later delivery report wins over a failure notice."
    ),
    col.PENDING: (
        "Sends with no final notification yet. Many carriers send no delivery receipts, so pending means "
        "unknown, not failed; the rates count pending sends as not delivered (the conservative choice)."
    ),
    col.RATE: "Delivery rate: delivered / sent.",
    "Wilson CI": (
        "95 % CI of a rate (ci_low – ci_high in the data): the Wilson score interval (scipy.stats.binomtest), "
        "which stays inside 0–100 % and keeps its coverage for small groups and rates near 0 or 1."
    ),
    **{name: latency.description for name, latency in LATENCIES.items()},
    "p50, p90, p99": (
        "Quantiles of the latency of delivered sends only. Biased fast: a send still undelivered after "
        "ten minutes is not among them."
    ),
    "KM censoring": (
        "The Kaplan–Meier quantiles (km_*) describe the time to delivery of the sends that are delivered: a "
        "pending send counts as censored at the last moment the data know about (it says its latency exceeds "
        "the time waited, instead of being dropped); failures are left out, having no delivery time."
    ),
    "km_p50, km_p90": (
        "Kaplan–Meier median and 90th percentile of the time to delivery among delivered sends (pending "
        "censored, failures excluded), seconds, with 95 % bounds (Brookmeyer–Crowley, log-log); 'not reached' "
        "when the curve never reaches the quantile, a high bound of ∞ when its band does not."
    ),
    "n": "Delivered and pending sends with a known latency or censoring time (failures are not counted).",
    "share delivered by time t": (
        "The latency figure: the share of all sends delivered by time t (Aalen–Johansen cumulative incidence: "
        "failures are a competing event, a pending send is censored at its age), with a 95 % pointwise "
        "interval (delta-method variance, Wilson form). Its plateau is the delivery rate."
    ),
    "delivered_within": (
        "Share of sends delivered within the deadline, among sends at least that old (chosen by age, never "
        "by outcome): failures and still-pending sends count as not within."
    ),
    "delivery_rate (comparisons)": (
        "Share of sends delivered within the outcome window (the longest DDM timeout plus 30 min; 35 min by "
        "default) among sends at least that old, so that young pending sends never count as not delivered."
    ),
    "diff, ci_low, ci_high (comparisons)": (
        "Treatment arm − control, with Newcombe's hybrid score interval at 95 %."
    ),
    "p_value, p_adjusted, significant": (
        "Two-proportion z-test (Fisher's exact test for small counts); p_adjusted is Holm-adjusted across "
        "the treatment arms; significant means p_adjusted < 0.05."
    ),
}


@dataclass(frozen=True)
class Table:
    """One table of the report: a sheet of the workbook, a section of the HTML page."""

    key: str  # sheet name / section id, e.g. "rates by carrier"
    title: str
    frame: pd.DataFrame
    note: str = ""


@dataclass(frozen=True)
class ReportContent:
    """Everything a report shows, rendered alike in HTML and Excel."""

    title: str
    generated_at: pd.Timestamp
    first_at: pd.Timestamp | None
    last_at: pd.Timestamp | None
    summary: pd.DataFrame  # ITEM, VALUE
    rates: tuple[Table, ...]
    latency: Table
    comparisons: Table | None
    plot_by: str | None  # x of the rate and outcome figures
    plot_hue: str | None  # arms of the figures
    notes: tuple[str, ...] = field(default=())
    verdict: object = None  # the decision of an experiment's result (report.verdict.Verdict), else None


def _check_by(deliveries: pd.DataFrame, by) -> tuple[str, ...]:
    names = (by,) if isinstance(by, str) else tuple(by or ())
    if not all(isinstance(name, str) for name in names):
        raise SkycoreValidationError("by", f"expected column names, got {by!r}")
    for name in names:
        if name != col.ARM and name not in deliveries.columns:
            have = ", ".join(map(str, deliveries.columns)) or "no columns"
            raise SkycoreValidationError("by", f"column {name!r} is not in the deliveries frame (it has: {have})")
    return tuple(dict.fromkeys(names))


def _rates(deliveries: pd.DataFrame, by: tuple[str, ...], confidence: float) -> tuple[Table, ...]:
    from .. import stats

    tables = []
    for name in by:
        key = f"rates by {name}"
        if name == col.ARM and name not in deliveries.columns:
            frame = stats.delivery_rates(deliveries, by=(), confidence=confidence)
            frame.insert(0, col.ARM, NO_ARM_LABEL)
            note = "The data have no arm column: one row over every send."
        else:
            frame = stats.delivery_rates(deliveries, by=(name,), confidence=confidence)
            note = ""
        tables.append(Table(key, f"Delivery rates by {name}", frame, note))
    present = tuple(name for name in by if name in deliveries.columns)
    if len(present) >= 2:
        key = "rates by " + " × ".join(present)
        frame = stats.delivery_rates(deliveries, by=present, confidence=confidence)
        tables.append(Table(key, "Delivery rates by " + " × ".join(present), frame))
    return tuple(tables)


def _latency(deliveries: pd.DataFrame, by: tuple[str, ...], as_of, notes: list[str]) -> Table:
    from .. import stats

    parts = []
    for measure in (col.LATENCY_S, col.TOTAL_LATENCY_S):
        if measure not in deliveries.columns or not deliveries[measure].notna().any():
            continue
        try:
            for name in (None, *[n for n in by if n in deliveries.columns]):
                summary = stats.latency_summary(deliveries, by=(name,) if name else (), column=measure, as_of=as_of)
                if name is None:
                    group = ALL_SENDS
                else:
                    values = summary.pop(name).astype(object)
                    group = values.where(values.notna(), MISSING_LABEL).map(str).to_numpy()
                summary.insert(0, GROUP, group)
                summary.insert(0, GROUPING, ALL_SENDS if name is None else name)
                summary.insert(0, MEASURE, measure)
                parts.append(summary)
        except SkycoreValidationError as exc:
            notes.append(f"No {measure} summary: {exc}")
    columns = [MEASURE, GROUPING, GROUP, *stats.LATENCY_SUMMARY_COLUMNS]
    frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)
    return Table(
        LATENCY_KEY,
        "Latency (seconds)",
        frame[columns],
        "One row over all sends, then one per group; km_* are the time to delivery among delivered sends "
        "(pending sends censored, failures excluded).",
    )


def _comparisons(deliveries: pd.DataFrame, within_s: float, as_of, notes: list[str]) -> Table | None:
    from .. import stats

    if col.ARM not in deliveries.columns or deliveries[col.ARM].dropna().nunique() < 2:
        return None
    parts = []
    for metric, options in (
        (stats.METRIC_DELIVERY_RATE, {}),
        (stats.METRIC_DELIVERED_WITHIN, {"within_s": within_s, "as_of": as_of}),
    ):
        try:
            parts.append(stats.compare_arms(deliveries, arm=col.ARM, metric=metric, **options))
        except SkycoreValidationError as exc:
            notes.append(f"No {metric} comparison: {exc}")
    parts = [part for part in parts if len(part)]
    if not parts:
        return None
    frame = pd.concat(parts, ignore_index=True)
    return Table(
        COMPARISONS_KEY,
        "Arm comparisons",
        frame,
        f"Each treatment arm against the control; delivered_within uses a deadline of {within_s:g} s. A send "
        "counts once its outcome window (window_s) has closed.",
    )


def _summary(
    deliveries: pd.DataFrame, title: str, generated_at, first_at, last_at, confidence: float
) -> pd.DataFrame:
    from .. import stats

    rows: list[tuple[str, object]] = [
        ("title", title),
        ("generated at (UTC)", iso(generated_at)),
        ("first timestamp (UTC)", iso(first_at)),
        ("last timestamp (UTC)", iso(last_at)),
        ("sends", len(deliveries)),
    ]
    if len(deliveries) and col.OUTCOME in deliveries.columns:
        outcome = deliveries[col.OUTCOME].astype(object).map(lambda v: str(v).strip().lower() if pd.notna(v) else v)
        for name in col.OUTCOMES:
            rows.append((_OUTCOME_LABELS.get(name, name), int((outcome == name).sum())))
        overall = stats.delivery_rates(deliveries, by=(), confidence=confidence)
        if len(overall):
            rows.append(("delivery rate", float(overall[col.RATE].iloc[0])))
            low, high = float(overall[col.CI_LOW].iloc[0]), float(overall[col.CI_HIGH].iloc[0])
            rows.append((f"delivery rate, {confidence * 100:g} % CI (Wilson)", f"{low:.1%} – {high:.1%}"))
    for name in (col.CARRIER, col.ARM):
        if name in deliveries.columns:
            values = sorted(map(str, deliveries[name].dropna().unique()))
            rows.append((f"{name}s", ", ".join(values)))
    return pd.DataFrame(rows, columns=[ITEM, VALUE])


_OUTCOME_LABELS = {col.OUTCOME_NOT_SUPPORTED: "not supported",
                   col.OUTCOME_PENDING: "pending (no final notification yet)"}


def iso(stamp) -> str:
    """A timestamp as ISO-8601 UTC to the millisecond (``2024-05-01T12:00:03.250Z``), "" if missing."""
    if stamp is None or pd.isna(stamp):
        return ""
    return pd.Timestamp(stamp).tz_convert("UTC").isoformat(timespec="milliseconds").replace("+00:00", "Z")


def build_content(
    deliveries: pd.DataFrame,
    *,
    events: pd.DataFrame | None,
    title: str | None,
    by: Sequence[str] | str,
    within_s: float = DEFAULT_WITHIN_S,
    as_of=None,
    confidence: float = 0.95,
    result=None,
) -> ReportContent:
    """Compute every table of the report.

    A section that cannot be computed from these data (say, no latency
    column) becomes a note in the report instead of failing the export.
    With an experiment's ``result`` (:class:`~skycore_lab.ExperimentResult`),
    the report opens with its decision (:func:`skycore_lab.report.verdict.verdict_of`)
    and its comparisons table is the result's own (the whole family,
    adjusted), not a recomputation.
    """
    if not isinstance(deliveries, pd.DataFrame):
        raise SkycoreValidationError("deliveries", f"expected a pandas DataFrame, got {type(deliveries).__name__}")
    if events is not None and not isinstance(events, pd.DataFrame):
        raise SkycoreValidationError("events", f"expected a pandas DataFrame or None, got {type(events).__name__}")
    by = _check_by(deliveries, by)
    generated_at = pd.Timestamp.now(tz="UTC").floor("s")
    first_at, last_at = data_period(deliveries, events)
    title = title if title is not None else "MMS delivery report"
    notes: list[str] = []
    summary = _summary(deliveries, str(title), generated_at, first_at, last_at, confidence)
    rates = _rates(deliveries, by, confidence)
    latency = _latency(deliveries, by, as_of, notes)
    verdict = None
    if result is not None:
        from .verdict import verdict_of

        verdict = verdict_of(result)
        comparisons = Table(
            COMPARISONS_KEY, "Arm comparisons", result.comparisons,
            "Every treatment arm against the control on every metric, adjusted as one family "
            f"({result.correction}); a send counts once its outcome window (window_s) has closed.",
        ) if len(result.comparisons) else None
    else:
        comparisons = _comparisons(deliveries, within_s, as_of, notes)
    plot_hue = col.ARM if col.ARM in deliveries.columns else None
    candidates = [name for name in by if name != col.ARM and name in deliveries.columns]
    plot_by = candidates[0] if candidates else plot_hue
    return ReportContent(
        title=str(title),
        generated_at=generated_at,
        first_at=first_at,
        last_at=last_at,
        summary=summary,
        rates=rates,
        latency=latency,
        comparisons=comparisons,
        plot_by=plot_by,
        plot_hue=plot_hue if plot_by != plot_hue else None,
        notes=tuple(notes),
        verdict=verdict,
    )
