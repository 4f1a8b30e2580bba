"""What the postbacks say so far about given sends, in words: the send form's live status.

:class:`SendFollower` follows a receiver log (:class:`~skycore_lab.PostbackTail`
from its current end), keeps the notifications of the sends it is asked
about, and describes each send the way a person asks about it: *sent*,
*delivered in 5 s on Apple iPhone 15*, *failed: E102 Message Sent/Failed —
Recipient blocked by mobile operator*, *pending after 3 min*, with the DDM
step in front when there is one. The outcome itself is
:func:`skycore_lab.deliveries`' (one definition of outcomes and latencies).
"""

from __future__ import annotations

import os
from datetime import datetime, timezone

import numpy as np
import pandas as pd

from . import columns as col
from .frames.deliveries import deliveries as make_deliveries
from .postbacks.dedupe import drop_duplicate_events

__all__ = ["SendFollower", "DELIVERY", "describe_seconds", "LIVE_STATUS_COLUMNS"]

#: Column of the words describing a send's state (:meth:`SendFollower.statuses`, the form's history).
DELIVERY = "delivery"
#: Columns of :meth:`SendFollower.statuses`.
LIVE_STATUS_COLUMNS: tuple[str, ...] = (col.TRACKING_ID, col.OUTCOME, DELIVERY)
#: Notifications of sends nobody asked about are kept this long (real seconds, by ``received_at``):
#: a postback may be stored before the send that caused it has returned its tracking id.
UNTRACKED_KEEP_S = 300.0


def describe_seconds(seconds: float) -> str:
    """``4.2`` → ``"4 s"``, ``75`` → ``"1 min 15 s"``, ``7260`` → ``"2 h 1 min"``."""
    seconds = max(0.0, float(seconds))
    if seconds < 59.5:
        return f"{seconds:.0f} s"
    minutes, rest = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {rest} s" if rest else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


class SendFollower:
    """Follows a receiver log and tells what its postbacks say about given sends.

    Parameters
    ----------
    source : PostbackReceiver, str or os.PathLike
        A receiver (its ``log_path`` is followed) or the path of its log.
    from_end : bool, default True
        Skip what the log already holds (the sends to follow are new ones).

    Notes
    -----
    Not thread-safe: one thread calls :meth:`read` and :meth:`statuses`
    (the send form's refresh thread). Bad log lines are skipped silently: a
    display must not warn about a log it shares with other traffic.
    """

    def __init__(self, source, *, from_end: bool = True):
        from .postbacks.tail import PostbackTail  # lazy: the parser is only needed when following

        path = source.log_path if hasattr(source, "log_path") else source
        self.path = os.fspath(path)
        self._tail = PostbackTail(self.path, on_bad_lines="skip", from_end=from_end)
        self.events: pd.DataFrame | None = None

    def read(self, tracked=()) -> int:
        """Take in what the log gained; return how many notifications it brought.

        Notifications without a tracking id are dropped; those of sends not
        in ``tracked`` are kept :data:`UNTRACKED_KEEP_S` seconds, then dropped.
        """
        new = self._tail.read_new()
        if len(new):
            new = new[new[col.TRACKING_ID].notna()]
        if len(new):
            events = new if self.events is None else pd.concat([_plain(self.events), _plain(new)], ignore_index=True)
            self.events = drop_duplicate_events(events)
        if self.events is not None and len(self.events):
            tracked_ids = set(map(str, tracked))
            keep = self.events[col.TRACKING_ID].astype("str").isin(tracked_ids)
            if col.RECEIVED_AT in self.events.columns:
                cutoff = pd.Timestamp.now(tz="UTC") - pd.Timedelta(seconds=UNTRACKED_KEEP_S)
                keep |= self.events[col.RECEIVED_AT].isna() | (self.events[col.RECEIVED_AT] >= cutoff)
            if not keep.all():
                self.events = self.events[keep].reset_index(drop=True)
        return len(new)

    def statuses(self, sends: pd.DataFrame, now: datetime | None = None) -> pd.DataFrame:
        """The state of each send, in words.

        Parameters
        ----------
        sends : DataFrame
            The sends to describe: ``tracking_id`` and ``requested_at`` (UTC),
            ``to`` when known.
        now : datetime, optional
            The time "pending after N min" counts to (default: now, UTC).

        Returns
        -------
        DataFrame
            :data:`LIVE_STATUS_COLUMNS`, one row per send in the order given:
            ``tracking_id``; ``outcome`` (``columns.OUTCOMES`` as text);
            ``delivery``: ``sent``, ``sent as SMS (link)``, ``pending after N min``
            (no final notification a minute or more after the request),
            ``delivered in 5 s on <handset>`` (request → delivery report),
            ``<outcome>: <code> <status> — <details>`` for a failure; with a
            DDM, its step first (``DDM delivered in 3 s on <handset> → …``).
        """
        now = pd.Timestamp(now or datetime.now(timezone.utc))
        now = now.tz_localize("UTC") if now.tzinfo is None else now.tz_convert("UTC")
        manifest = sends[[name for name in (col.TRACKING_ID, col.TO, col.REQUESTED_AT) if name in sends.columns]]
        manifest = manifest[manifest[col.TRACKING_ID].notna()].drop_duplicates(col.TRACKING_ID)
        tracked = set(manifest[col.TRACKING_ID].astype("str"))
        events = self.events
        if events is not None:
            events = events[events[col.TRACKING_ID].astype("str").isin(tracked)]
        frame = make_deliveries(events if events is not None and len(events) else None, manifest,
                                negative_latency="nan")
        frame = frame[frame[col.TRACKING_ID].isin(tracked)].set_index(col.TRACKING_ID)
        texts = []
        for tracking_id in sends[col.TRACKING_ID]:
            if pd.isna(tracking_id) or tracking_id not in frame.index:
                texts.append((tracking_id, None, None))
                continue
            row = frame.loc[tracking_id]
            outcome = str(row[col.OUTCOME])
            texts.append((tracking_id, outcome, self._describe(row, tracking_id, events, now)))
        return pd.DataFrame(texts, columns=list(LIVE_STATUS_COLUMNS)).astype("str")

    @staticmethod
    def _describe(row: pd.Series, tracking_id: str, events: pd.DataFrame | None, now: pd.Timestamp) -> str:
        outcome = str(row[col.OUTCOME])
        if outcome == col.OUTCOME_DELIVERED:
            seconds = row[col.TOTAL_LATENCY_S] if pd.notna(row[col.TOTAL_LATENCY_S]) else row[col.LATENCY_S]
            main = "delivered" + (f" in {describe_seconds(seconds)}" if pd.notna(seconds) else "")
            if pd.notna(row[col.HANDSET]):
                main += f" on {row[col.HANDSET]}"
            elif str(row[col.SENT_AS]) == col.SENT_AS_SMS:
                main += " as SMS (link)"
        elif outcome in col.FAILURE_OUTCOMES:
            main = f"{outcome}: {row[col.FINAL_CODE]}" + _failure_reason(events, tracking_id, str(row[col.FINAL_CODE]))
        else:
            waited = (now - row[col.REQUESTED_AT]).total_seconds() if pd.notna(row[col.REQUESTED_AT]) else np.nan
            if pd.notna(waited) and waited >= 60:
                main = f"pending after {int(waited // 60)} min"
            elif str(row[col.SENT_AS]) == col.SENT_AS_SMS:
                main = "sent as SMS (link)"
            else:
                main = "sent"
        ddm = str(row[col.DDM])
        if ddm == col.DDM_NONE:
            return main
        if ddm == col.DDM_DELIVERED:
            step = "DDM delivered" + (f" in {describe_seconds(row[col.DDM_LATENCY_S])}"
                                      if pd.notna(row[col.DDM_LATENCY_S]) else "")
        elif ddm == col.DDM_FAILED:
            step = "DDM failed"
        else:
            step = "DDM sent"
        return f"{step} → {main}"


def _failure_reason(events: pd.DataFrame | None, tracking_id: str, code: str) -> str:
    """`` Message Sent/Failed — Recipient blocked…`` from the notification that decided the outcome."""
    if events is None or not len(events):
        return ""
    mine = events[(events[col.TRACKING_ID].astype("str") == tracking_id) & (events[col.CODE].astype("str") == code)]
    if mine.empty:
        return ""
    first = mine.iloc[0]
    status = first.get(col.STATUS)
    details = first.get(col.STATUS_DETAILS)
    text = f" {status}" if pd.notna(status) else ""
    return text + (f" — {details}" if pd.notna(details) else "")


def _plain(events: pd.DataFrame) -> pd.DataFrame:
    """Categorical columns as text, so frames of different reads concatenate without object fallbacks."""
    out = events.copy()
    for name in out.columns:
        if isinstance(out[name].dtype, pd.CategoricalDtype):
            out[name] = out[name].astype("str")
    return out
