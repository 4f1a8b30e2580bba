"""Postbacks against the platform's own report, send by send (:func:`reconcile`).

The postbacks are what the platform told us, one notification at a time;
the sending-statistics report (getSendingStatistics, read by
:func:`skycore_lab.read_sending_report`) is what the platform knows. Where
they disagree, something was lost on the way: most often postbacks during a
receiver outage, which nothing else reveals (a missing postback looks
exactly like a carrier that sends no receipts).
"""

from __future__ import annotations

import html
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .. import columns as col
from ..checks import require_columns
from ..exceptions import MissingPostbacksWarning, SkycoreValidationError
from .normalize import as_text
from .times import as_utc

__all__ = ["reconcile", "Reconciliation", "DEFAULT_TOLERANCE_S", "DEFAULT_MATCH_WINDOW_S"]

#: Largest difference (s) between the two sides' times of one outcome that still agrees.
DEFAULT_TOLERANCE_S = 60.0
#: Largest difference (s) between the starts of a send on both sides for a match by number and time.
DEFAULT_MATCH_WINDOW_S = 3600.0
#: Columns of :attr:`Reconciliation.counts` and :attr:`Reconciliation.by_carrier`.
SHARE = "share"
COUNT_COLUMNS: tuple[str, ...] = (col.CATEGORY, col.N, SHARE)
BY_CARRIER_COLUMNS: tuple[str, ...] = (col.CARRIER, col.CATEGORY, col.N)

_LABELS = {
    col.AGREES: "agrees",
    col.POSTBACK_MISSING: "postback missing",
    col.REPORT_MISSING: "report missing",
    col.OUTCOME_DIFFERS: "outcome differs",
    col.TIME_DIFFERS: "time differs",
}
_UNKNOWN_CARRIER = "unknown"
_P, _R = "_p", "_r"  # working columns: row number on the postback side, on the report side


def _side(frame: pd.DataFrame, what: str) -> pd.DataFrame:
    """The columns the comparison needs, typed: ids and numbers as text, times as UTC."""
    require_columns(frame, (col.TRACKING_ID, col.OUTCOME), what)
    out = pd.DataFrame(index=pd.RangeIndex(len(frame)))
    out["id"] = as_text(frame[col.TRACKING_ID].reset_index(drop=True))
    for name in (col.TO, col.MMS_ID, col.CARRIER):
        values = frame[name].reset_index(drop=True) if name in frame.columns else pd.Series(pd.NA, index=out.index)
        out[name] = as_text(values.astype("object") if name == col.CARRIER else values)
    out[col.TO] = out[col.TO].str.removeprefix("+")
    out[col.OUTCOME] = as_text(frame[col.OUTCOME].reset_index(drop=True))
    unknown = ~out[col.OUTCOME].isin(col.OUTCOMES) & out[col.OUTCOME].notna()
    if unknown.any():
        raise SkycoreValidationError(what, f"unknown outcome(s) {sorted(out.loc[unknown, col.OUTCOME].unique())[:3]}; "
                                           f"expected {', '.join(col.OUTCOMES)}")
    for name in (col.REQUESTED_AT, col.FIRST_EVENT_AT, col.DELIVERED_AT, col.FAILED_AT):
        values = frame[name].reset_index(drop=True) if name in frame.columns else pd.Series(pd.NaT, index=out.index)
        out[name] = as_utc(values, f"{what}.{name}", naive="utc")
    return out


def _start(side: pd.DataFrame) -> pd.Series:
    """When a send began on this side: the earlier of the request and the first notification/step."""
    return side[[col.REQUESTED_AT, col.FIRST_EVENT_AT]].min(axis=1).astype(col.DATETIME_DTYPE)


def _outcome_time(side: pd.DataFrame) -> pd.Series:
    """The time of the send's outcome: delivered_at when delivered, failed_at on a failure, else missing."""
    outcome = side[col.OUTCOME]
    return side[col.DELIVERED_AT].where(outcome == col.OUTCOME_DELIVERED,
                                        side[col.FAILED_AT].where(outcome.isin(col.FAILURE_OUTCOMES)))


def _match_by_id(post: pd.DataFrame, report: pd.DataFrame) -> pd.DataFrame:
    """Pairs whose tracking id is the report's id, one to one."""
    left = post[["id"]].dropna().assign(**{_P: lambda f: f.index})
    right = report[["id"]].dropna().assign(**{_R: lambda f: f.index})
    left = left[~left["id"].duplicated(keep=False)]
    right = right[~right["id"].duplicated(keep=False)]
    return left.merge(right, on="id")[[_P, _R]]


def _match_by_number_and_time(post: pd.DataFrame, report: pd.DataFrame, window_s: float) -> pd.DataFrame:
    """Pairs of the same number (and MMS id, when both know it) whose starts are nearest, within the window.

    Greedy by time distance: the closest pair overall is matched first, then
    the closest among the rest, and so on (ties by row order), so two sends
    to one number minutes apart pair up in time order.
    """
    left = post[[col.TO, col.MMS_ID]].assign(start=_start(post), **{_P: post.index})
    right = report[[col.TO, col.MMS_ID]].assign(start=_start(report), **{_R: report.index})
    left, right = left.dropna(subset=[col.TO, "start"]), right.dropna(subset=[col.TO, "start"])
    pairs = left.merge(right, on=col.TO, suffixes=("", "_report"))
    same_content = (pairs[col.MMS_ID].isna() | pairs[f"{col.MMS_ID}_report"].isna()
                    | (pairs[col.MMS_ID] == pairs[f"{col.MMS_ID}_report"]))
    pairs["distance"] = (pairs["start_report"] - pairs["start"]).abs().dt.total_seconds()
    candidates = pairs.loc[same_content & (pairs["distance"] <= window_s), [_P, _R, "distance"]]
    candidates = candidates.sort_values(["distance", _P, _R], kind="stable")
    matched = []
    while len(candidates):
        best_for_post = candidates.drop_duplicates(_P)
        best_for_report = candidates.drop_duplicates(_R)
        mutual = best_for_post.merge(best_for_report, on=[_P, _R])[[_P, _R]]
        matched.append(mutual)
        candidates = candidates[~candidates[_P].isin(mutual[_P]) & ~candidates[_R].isin(mutual[_R])]
    return pd.concat(matched, ignore_index=True) if matched else pd.DataFrame({_P: [], _R: []}, dtype="int64")


def _in_period(start: pd.Series, period) -> pd.Series:
    if period is None:
        return pd.Series(True, index=start.index)
    try:
        begin, end = period
    except (TypeError, ValueError):
        raise SkycoreValidationError("period", "give (start, end) UTC times, or None") from None
    keep = pd.Series(True, index=start.index)
    if begin is not None:
        keep &= start >= _utc(begin)
    if end is not None:
        keep &= start < _utc(end)
    return keep


def _utc(value) -> pd.Timestamp:
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def reconcile(
    deliveries: pd.DataFrame,
    sending_report: pd.DataFrame,
    *,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
    match_window_s: float = DEFAULT_MATCH_WINDOW_S,
    period=None,
    warn: bool = True,
) -> Reconciliation:
    """Compare what the postbacks say with the platform's sending report, send by send.

    Parameters
    ----------
    deliveries : DataFrame
        One row per send from the postbacks (:func:`skycore_lab.deliveries`;
        with a manifest, sends whose postbacks never came are rows too).
        Needs ``tracking_id`` and ``outcome``; uses ``to``, ``mms_id``,
        ``carrier``, ``requested_at``, ``first_event_at``, ``delivered_at``,
        ``failed_at`` when present.
    sending_report : DataFrame
        The platform's report (:func:`skycore_lab.read_sending_report`), the
        same columns; its ``tracking_id`` is the report's own message id.
    tolerance_s : float, default 60
        Largest difference, in seconds, between the two sides' times of the
        same outcome (delivery, or failure) that still agrees.
    match_window_s : float, default 3600
        Largest difference between the two sides' starts of a send for a
        match by number and time (see the rule below).
    period : (start, end), optional
        Compare only sends that started in ``[start, end)`` (UTC; naive
        times are UTC), on both sides: the period the report was asked for.
        Default: everything on both sides.
    warn : bool, default True
        Emit a :class:`~skycore_lab.MissingPostbacksWarning` when postbacks
        are missing.

    Returns
    -------
    Reconciliation
        ``.sends`` (one row per send), ``.counts`` (per category),
        ``.by_carrier``, ``.summary()``.

    Notes
    -----
    **Which report message is which send.** The report names each message by
    its own id (the "sending id in our history", Appendix C), while the API
    and the postbacks use the tracking id, an opaque string (base64 of
    ``MMS_<n>`` in every example, but documented as opaque). So:

    1. a send whose tracking id equals a report id (once on each side) is
       that message (``matched_by = "tracking_id"``);
    2. the others are matched by recipient number, and MMS id when both
       sides know it, to the message whose start is nearest in time, within
       ``match_window_s`` (``matched_by = "number_and_time"``). A send's start
       is the earlier of its request time (from the manifest) and its first
       notification; a message's start is its first step (normally INQUE).
       Nearest pairs are matched first, so repeated sends to one test number
       pair up in time order.

    **Categories**, in this order of precedence, for a matched pair:

    * ``postback_missing`` — no postback of the send arrived at all (a
      manifest row without events), or the postbacks stop before the
      outcome the report knows (pending here, final there): a final
      notification was lost. Unmatched report messages are ``postback_missing`` too.
    * ``outcome_differs`` — both sides know an outcome and they differ
      (including final in the postbacks, pending in the report: a report
      made before the outcome, or a platform inconsistency). The report's
      vocabulary is coarser than the postbacks': Appendix C has no step for
      E102 ``Sent/NotSupported``, so the postbacks' ``not_supported``
      agrees with the report's ``rejected`` (REJECTED, gw 35).
    * ``time_differs`` — same final outcome, but its times (``delivered_at``
      or ``failed_at``) differ by more than ``tolerance_s``. A side without
      that time (an xHTML message reported OPENED without DLR) is not compared.
    * ``agrees`` — otherwise (including pending on both sides).

    An unmatched send of the postbacks is ``report_missing``.

    ``carrier`` is the postbacks' (from the SPID, Appendix E names), else the
    report's own name; ``unknown`` when neither says.

    Raises
    ------
    SkycoreValidationError
        A required column is missing, an outcome is unknown, a time column
        cannot be read, or a parameter is out of range.
    """
    for name, value in (("tolerance_s", tolerance_s), ("match_window_s", match_window_s)):
        if not (isinstance(value, (int, float)) and value >= 0 and np.isfinite(value)):
            raise SkycoreValidationError(name, f"must be a finite number of seconds >= 0, got {value!r}")
    post = _side(deliveries, "deliveries")
    report = _side(sending_report, "sending_report")
    post = post[_in_period(_start(post), period).to_numpy()]
    report = report[_in_period(_start(report), period).to_numpy()]

    by_id = _match_by_id(post, report)
    rest_post = post.drop(index=by_id[_P])
    rest_report = report.drop(index=by_id[_R])
    by_time = _match_by_number_and_time(rest_post, rest_report, float(match_window_s))
    pairs = pd.concat([by_id.assign(**{col.MATCHED_BY: col.MATCHED_BY_ID}),
                       by_time.assign(**{col.MATCHED_BY: col.MATCHED_BY_NUMBER_AND_TIME})], ignore_index=True)
    only_post = post.index.difference(pairs[_P])
    only_report = report.index.difference(pairs[_R])
    rows = pd.concat([
        pairs,
        pd.DataFrame({_P: only_post, _R: pd.NA}),
        pd.DataFrame({_P: pd.NA, _R: only_report}),
    ], ignore_index=True)
    sends = _compare(post, report, rows, float(tolerance_s))
    result = Reconciliation(sends=sends, counts=_counts(sends), by_carrier=_by_carrier(sends),
                            tolerance_s=float(tolerance_s), match_window_s=float(match_window_s))
    if warn and result.missing_postbacks:
        warnings.warn(result.missing_postbacks_message(), MissingPostbacksWarning, stacklevel=2)
    return result


def _take(side: pd.DataFrame, rows: pd.Series) -> pd.DataFrame:
    """``side``'s rows at positions ``rows`` (missing → all-missing row), indexed like ``rows``."""
    position = pd.array(rows, dtype="Int64").to_numpy(dtype="int64", na_value=-1)
    taken = side.reindex(position)
    return taken.set_axis(rows.index)


def _compare(post: pd.DataFrame, report: pd.DataFrame, rows: pd.DataFrame, tolerance_s: float) -> pd.DataFrame:
    p, r = _take(post, rows[_P]), _take(report, rows[_R])
    has_p, has_r = rows[_P].notna().to_numpy(), rows[_R].notna().to_numpy()
    p_outcome, r_outcome = p[col.OUTCOME], r[col.OUTCOME]
    p_time = _outcome_time(p).astype(col.DATETIME_DTYPE)
    r_time = _outcome_time(r).astype(col.DATETIME_DTYPE)
    diff = (r_time - p_time).dt.total_seconds()

    no_events = p[col.FIRST_EVENT_AT].isna()
    final_lost = (p_outcome == col.OUTCOME_PENDING) & (r_outcome != col.OUTCOME_PENDING)
    # The report has no "not supported" step: the handset's refusal is its REJECTED.
    same = (p_outcome == r_outcome) | ((p_outcome == col.OUTCOME_NOT_SUPPORTED) & (r_outcome == col.OUTCOME_REJECTED))
    category = np.select(
        [~has_r, ~has_p, (no_events | final_lost).to_numpy(), (~same).to_numpy(),
         (diff.abs() > tolerance_s).to_numpy()],
        [col.REPORT_MISSING, col.POSTBACK_MISSING, col.POSTBACK_MISSING, col.OUTCOME_DIFFERS, col.TIME_DIFFERS],
        default=col.AGREES,
    )
    frame = pd.DataFrame({
        col.TRACKING_ID: p["id"].where(has_p).astype("str"),
        col.REPORT_ID: r["id"].where(has_r).astype("str"),
        col.TO: p[col.TO].fillna(r[col.TO]).astype("str"),
        col.MMS_ID: p[col.MMS_ID].fillna(r[col.MMS_ID]).astype("str"),
        col.CARRIER: p[col.CARRIER].fillna(r[col.CARRIER]).fillna(_UNKNOWN_CARRIER).astype("str"),
        col.CATEGORY: pd.Categorical(category, categories=col.RECONCILE_CATEGORIES, ordered=True),
        col.MATCHED_BY: rows[col.MATCHED_BY].astype("str") if col.MATCHED_BY in rows else pd.NA,
        col.POSTBACK_OUTCOME: pd.Categorical(p_outcome, categories=col.OUTCOMES, ordered=True),
        col.REPORT_OUTCOME: pd.Categorical(r_outcome, categories=col.OUTCOMES, ordered=True),
        col.POSTBACK_FIRST_AT: _start(p),
        col.REPORT_FIRST_AT: _start(r),
        col.POSTBACK_TIME: p_time,
        col.REPORT_TIME: r_time,
        col.TIME_DIFF_S: diff.astype("float64"),
    })
    frame["_at"] = frame[col.POSTBACK_FIRST_AT].fillna(frame[col.REPORT_FIRST_AT])
    frame = frame.sort_values(["_at", col.TRACKING_ID, col.REPORT_ID], na_position="last", kind="stable")
    return frame.reset_index(drop=True)[list(col.RECONCILE_COLUMNS)]


def _counts(sends: pd.DataFrame) -> pd.DataFrame:
    n = sends[col.CATEGORY].value_counts(sort=False).reindex(list(col.RECONCILE_CATEGORIES), fill_value=0)
    total = int(n.sum())
    return pd.DataFrame({col.CATEGORY: list(col.RECONCILE_CATEGORIES), col.N: n.to_numpy(dtype="int64"),
                         SHARE: (n / total).to_numpy(dtype="float64") if total else np.nan})


def _by_carrier(sends: pd.DataFrame) -> pd.DataFrame:
    table = sends.groupby([col.CARRIER, col.CATEGORY], observed=False).size()
    frame = table.rename(col.N).reset_index()
    frame[col.N] = frame[col.N].astype("int64")
    return frame[list(BY_CARRIER_COLUMNS)]


@dataclass(frozen=True, repr=False, eq=False)
class Reconciliation:
    """What :func:`reconcile` found.

    Attributes
    ----------
    sends : DataFrame
        One row per send, ``columns.RECONCILE_COLUMNS``, ordered by start:

        =================  ============================================================
        tracking_id        the postbacks' tracking id (missing: postback missing)
        report_id          the report's message id (missing: report missing)
        to, mms_id         recipient and saved MMS, from either side
        carrier            the postbacks' carrier, else the report's; ``unknown``
        category           ordered ``category`` of ``columns.RECONCILE_CATEGORIES``
        matched_by         ``tracking_id`` or ``number_and_time`` (missing: unmatched)
        postback_outcome   outcome in the postbacks (``category`` of ``columns.OUTCOMES``)
        report_outcome     outcome in the report
        postback_first_at  start of the send in the postbacks (request or first notification)
        report_first_at    start of the message in the report (first step)
        postback_time      time of the postbacks' outcome (delivered_at or failed_at)
        report_time        time of the report's outcome
        time_diff_s        report_time − postback_time, seconds
        =================  ============================================================
    counts : DataFrame
        ``category, n, share``: one row per category, all five always.
    by_carrier : DataFrame
        ``carrier, category, n``: one row per carrier and category (zeros included).
    tolerance_s, match_window_s : float
        The parameters used.
    """

    sends: pd.DataFrame
    counts: pd.DataFrame
    by_carrier: pd.DataFrame
    tolerance_s: float
    match_window_s: float

    def count(self, category: str) -> int:
        """Sends in ``category`` (one of ``columns.RECONCILE_CATEGORIES``)."""
        if category not in col.RECONCILE_CATEGORIES:
            raise SkycoreValidationError("category", f"{category!r} is not one of {', '.join(col.RECONCILE_CATEGORIES)}")
        return int(self.counts.set_index(col.CATEGORY).loc[category, col.N])

    @property
    def missing_postbacks(self) -> int:
        """Sends the report knows better than the postbacks (``postback_missing``)."""
        return self.count(col.POSTBACK_MISSING)

    @property
    def agrees(self) -> bool:
        """True when every send agrees."""
        return self.count(col.AGREES) == len(self.sends)

    def carrier_table(self) -> pd.DataFrame:
        """Counts per carrier (rows) and category (columns), with a ``total`` column: for display."""
        table = self.by_carrier.pivot_table(index=col.CARRIER, columns=col.CATEGORY, values=col.N,
                                            aggfunc="sum", observed=False, fill_value=0)
        table = table.reindex(columns=list(col.RECONCILE_CATEGORIES), fill_value=0)
        table.columns = [str(name) for name in table.columns]
        table["total"] = table.sum(axis=1)
        return table.astype("int64")

    def missing_postbacks_message(self) -> str:
        """One sentence on the missing postbacks: how many, when, which carriers (empty when none)."""
        missing = self.sends[self.sends[col.CATEGORY] == col.POSTBACK_MISSING]
        if missing.empty:
            return ""
        start = missing[col.REPORT_FIRST_AT].dropna()
        when = ""
        if len(start):
            when = (f" (sends that started between {start.min():%Y-%m-%d %H:%M:%S} and "
                    f"{start.max():%Y-%m-%d %H:%M:%S} UTC)")
        carriers = ", ".join(missing[col.CARRIER].value_counts().head(3).index.astype(str))
        return (f"{len(missing)} of {len(self.sends)} send(s) have postbacks missing: the platform's report knows "
                f"them (or their outcome) but no postback told{when}; carriers: {carriers}. "
                "This is what a receiver outage or a wrong postback URL looks like: check the receiver's "
                "uptime, and do not read these sends' outcomes from the postbacks alone.")

    def summary(self) -> str:
        """Plain-language findings: counts per category, the warning about missing postbacks."""
        total = len(self.sends)
        lines = [f"Reconciliation of {total:,} send(s): postbacks against the platform's sending report "
                 f"(times agree within {self.tolerance_s:g} s)."]
        for category, n, share in self.counts.itertuples(index=False, name=None):
            shown = f"{share:.1%}" if total else "n/a"
            lines.append(f"  {_LABELS[category]}: {n:,} ({shown})")
        if self.missing_postbacks:
            lines.append("  Warning: " + self.missing_postbacks_message())
        elif total and self.agrees:
            lines.append("  Every send agrees.")
        return "\n".join(lines)

    def __repr__(self) -> str:
        parts = ", ".join(f"{category}={n}" for category, n, _ in self.counts.itertuples(index=False, name=None))
        return f"<Reconciliation: {len(self.sends)} sends; {parts}>"

    def _repr_html_(self) -> str:
        lines = self.summary().splitlines()
        items = "".join(f"<li>{html.escape(line.strip())}</li>" for line in lines[1:])
        return (f"<div><p>{html.escape(lines[0])}</p><ul>{items}</ul>"
                f"<p><b>By carrier</b></p>{self.carrier_table().to_html(escape=True)}</div>")
