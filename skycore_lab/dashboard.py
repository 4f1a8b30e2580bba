"""A live notebook dashboard of MMS delivery while postbacks arrive.

>>> dash = LiveDashboard(receiver, manifest=manifest)   # doctest: +SKIP
>>> dash                                                # shows it; it refreshes every 2 s  # doctest: +SKIP
>>> dash.stop()                                         # doctest: +SKIP

Decisions
---------
* **Incremental reading.** A log file (or a receiver's log) is read with
  :class:`skycore_lab.postbacks.PostbackTail`, which returns only the records
  appended since the last tick; the new events are appended to the ones kept
  in memory and duplicates (the platform's retries) dropped by the parser's
  own rule (:func:`skycore_lab.postbacks.drop_duplicate_events`). Only :func:`skycore_lab.deliveries` is
  recomputed, and only on ticks that brought new events: it is cheap next to
  re-parsing the XML.
* **Which sends count.** With a manifest, the counters, rates and curves cover
  the manifest's accepted sends only (a postback URL is often shared with other
  traffic, and an old log may hold earlier runs); sends seen only in the log
  are counted in a note. Without one, every tracking id seen is a send.
* **Only outcomes that are final.** Everything shown mid-test is chosen by
  age, never by outcome: the delivery rates count a send once its outcome
  window (``settle_s``, :mod:`skycore_lab.stats.windows`) has closed, and
  the curve of the share delivered by time t (Aalen–Johansen,
  :func:`skycore_lab.cumulative_incidence`) censors each pending send at its
  age. A young pending send never counts as not delivered.
* **Sample ratio.** With a manifest that has arms, the sends that went out
  per arm are checked against the allocation
  (:func:`skycore_lab.sample_ratio_mismatch`); a mismatch is shown in red
  above everything else.
* **Clock skew.** Negative latencies are left out of the curves
  (``negative_latency="nan"``) and counted in a note rather than warned about
  from a background thread.
* **Threading.** Refreshing runs in a daemon thread, so the kernel is never
  blocked; widget updates are plain trait assignments. Figures are drawn on a
  bare :class:`matplotlib.figure.Figure` (no pyplot, so nothing to leak and no
  GUI backend involved) and shown as a PNG in an ``ipywidgets.Output``. An
  error in a tick is shown in the dashboard and counted, never raised into the
  kernel; :meth:`LiveDashboard.refresh` (one synchronous tick) re-raises it.
  Warnings raised while parsing (e.g. bad log lines) go to the kernel's
  stderr as usual: :func:`warnings.catch_warnings` is not thread-safe.
"""

from __future__ import annotations

import base64
import html
import io
import os
import threading
from datetime import datetime, timezone

import ipywidgets as ipw
import pandas as pd

from . import columns as col
from .exceptions import SkycoreValidationError
from .frames.deliveries import deliveries as make_deliveries
from .frames.times import event_time, latest_time
from .postbacks.dedupe import drop_duplicate_events
from .stats.rates import delivery_rates
from .stats.windows import check_window, default_settle_s

__all__ = ["LiveDashboard"]

_TIME = "time"  # display-only column of the latest-notifications table


def _make_tail(path: str | os.PathLike):
    from .postbacks.tail import PostbackTail  # lazy: the parser is only needed for a live source

    return PostbackTail(path)


class LiveDashboard:
    """Counters, delivery rates, latency curves and latest postbacks, refreshing live.

    Parameters
    ----------
    source : PostbackReceiver, str, os.PathLike, DataFrame or tail
        Where the postbacks come from: a running
        :class:`skycore_lab.PostbackReceiver` (its ``log_path`` is followed),
        the path of a receiver log file (read incrementally as it grows), a
        static events DataFrame (``columns.EVENT_COLUMNS``, shown once), or
        any object with a ``read_new()`` method returning new events.
    manifest : DataFrame, optional
        Send manifest (:meth:`SkycoreClient.send_batch`); with an ``arm``
        column, rates and curves are split by arm.
    refresh_s : float
        Seconds between refreshes.
    autostart : bool
        Start refreshing in a background thread now (default). With False,
        call :meth:`refresh` or :meth:`start` yourself.
    latest : int
        How many of the latest notifications to list.
    settle_s : float, optional
        Seconds after the request before a send counts in the delivery
        rates (its outcome window); default
        :func:`skycore_lab.stats.default_settle_s` (the platform's default
        DDM timeout plus 30 min). For a DDM experiment pass
        :attr:`DdmExperiment.settle_s`.

    Attributes
    ----------
    widget : ipywidgets.VBox
        The dashboard (DOM class ``skycore-dashboard``); showing the object shows it.
    srm : SampleRatioCheck or None
        The sample-ratio check of the manifest's arms (None without arms).
    counters : dict
        ``{"sent", "delivered", "failed", "pending"}`` after the last tick.
        ``sent``: the manifest's accepted sends, else the tracking ids seen;
        ``failed``: every failure outcome; ``pending``: no final notification yet.
    events : DataFrame or None
        Every distinct event read so far.
    deliveries : DataFrame or None
        :func:`skycore_lab.deliveries` of the counted sends, after the last tick.
    ticks, errors : int
        Refreshes done, and refreshes that failed.
    last_error : Exception or None
    """

    def __init__(self, source, manifest: pd.DataFrame | None = None, refresh_s: float = 2.0, *,
                 autostart: bool = True, latest: int = 10, settle_s: float | None = None):  # fmt: skip
        if not refresh_s > 0:
            raise SkycoreValidationError("refresh_s", f"must be positive, got {refresh_s!r}")
        self.settle_s = default_settle_s() if settle_s is None else check_window(settle_s, "settle_s")
        self.srm = None
        if manifest is not None and col.ARM in manifest.columns and len(manifest):
            from .stats.srm import sample_ratio_mismatch

            self.srm = sample_ratio_mismatch(manifest)
        self.refresh_s = float(refresh_s)
        self.latest = int(latest)
        self._manifest = manifest
        self._tail = None
        self._static: pd.DataFrame | None = None
        if isinstance(source, pd.DataFrame):
            self._static = source
        elif hasattr(source, "read_new"):
            self._tail = source
        elif hasattr(source, "log_path"):
            self._tail = _make_tail(source.log_path)
        elif isinstance(source, (str, os.PathLike)):
            self._tail = _make_tail(source)
        else:
            raise SkycoreValidationError(
                "source", f"expected a PostbackReceiver, a log path or an events DataFrame, got {type(source).__name__}"
            )
        self.events: pd.DataFrame | None = None
        self.deliveries: pd.DataFrame | None = None
        self.counters = dict.fromkeys((col.SENT, col.DELIVERED, col.FAILED, col.PENDING), 0)
        self.ticks = self.errors = 0
        self.last_error: Exception | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._dirty = True

        self.counters_html = ipw.HTML()
        self.counters_html.add_class("skycore-dashboard-counters")
        self.rates_html = ipw.HTML()
        self.rates_html.add_class("skycore-dashboard-rates")
        self.latency = ipw.Output()
        self.latency.add_class("skycore-dashboard-latency")
        self.latest_html = ipw.HTML()
        self.latest_html.add_class("skycore-dashboard-latest")
        self.status_html = ipw.HTML("waiting for the first refresh")
        self.status_html.add_class("skycore-dashboard-status")
        self.error_html = ipw.HTML()
        self.error_html.add_class("skycore-dashboard-error")
        self.widget = ipw.VBox([
            ipw.HTML("<b>Skycore delivery — live</b>"), self.counters_html,
            ipw.HBox([self.rates_html, self.latency]), ipw.HTML("<b>Latest notifications</b>"), self.latest_html,
            self.status_html, self.error_html,
        ])  # fmt: skip
        self.widget.add_class("skycore-dashboard")
        if autostart:
            self.start()

    # -- refreshing ------------------------------------------------------------------
    def refresh(self) -> dict:
        """Do one refresh now, synchronously; return :attr:`counters`.

        An error is shown in the dashboard, counted, and re-raised.
        """
        with self._lock:
            self._tick(reraise=True)
        return dict(self.counters)

    def start(self) -> LiveDashboard:
        """Refresh every ``refresh_s`` seconds in a daemon thread (a static source is shown once)."""
        if self._static is not None:
            self.refresh()
            return self
        if self._thread is not None and self._thread.is_alive():
            return self
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="skycore-dashboard", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop refreshing and wait for the thread to end (at most ``timeout`` s). Idempotent."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    @property
    def running(self) -> bool:
        """True while the refresh thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def close(self) -> None:
        """Stop, close the tail (when it can be closed) and the widgets."""
        self.stop()
        closer = getattr(self._tail, "close", None)
        if callable(closer):
            closer()
        for child in self.widget.children:
            for grandchild in getattr(child, "children", ()):
                grandchild.close()
            child.close()
        self.widget.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                self._tick(reraise=False)
            self._stop.wait(self.refresh_s)

    def _tick(self, reraise: bool) -> None:
        try:
            self._read()
            if self._dirty:
                self._render()
                self._dirty = False
            self.ticks += 1
            self.error_html.value = ""
        except Exception as exc:  # a thread has nobody to raise to: show it
            self.errors += 1
            self.last_error = exc
            self.error_html.value = (
                f'<span style="color:#cf222e">refresh failed ({self.errors} so far): '
                f"{html.escape(type(exc).__name__)}: {html.escape(str(exc))}</span>"
            )
            if reraise:
                raise
        finally:
            n = 0 if self.events is None else len(self.events)
            stamp = datetime.now(timezone.utc).astimezone().strftime("%H:%M:%S")
            self.status_html.value = html.escape(f"updated {stamp} · {n} events · {self.ticks} refreshes")

    def _read(self) -> None:
        if self._static is not None:
            new, self._static = self._static, None
        elif self._tail is not None:
            new = self._tail.read_new()
        else:
            return
        if new is None or len(new) == 0:
            return
        events = new if self.events is None else _concat_events(self.events, new)
        self.events = drop_duplicate_events(events)
        self._dirty = True

    # -- rendering ----------------------------------------------------------------------
    def _counted(self) -> tuple[pd.DataFrame, int]:
        """Deliveries of the counted sends, and how many other sends the log holds."""
        frame = make_deliveries(self.events, self._manifest, negative_latency="nan")
        if self._manifest is None:
            return frame, 0
        accepted = self._manifest[self._manifest[col.TRACKING_ID].notna()]
        if col.STATUS in accepted.columns:
            accepted = accepted[accepted[col.STATUS].astype("str") == "Success"]
        keep = frame[col.TRACKING_ID].isin(accepted[col.TRACKING_ID].astype("str"))
        return frame[keep].reset_index(drop=True), int((~keep).sum())

    def _render(self) -> None:
        frame, others = self._counted()
        self.deliveries = frame
        outcome = frame[col.OUTCOME].astype("str")
        self.counters = {
            col.SENT: len(frame),
            col.DELIVERED: int((outcome == col.OUTCOME_DELIVERED).sum()),
            col.FAILED: int(outcome.isin(col.FAILURE_OUTCOMES).sum()),
            col.PENDING: int((outcome == col.OUTCOME_PENDING).sum()),
        }
        skewed = int((frame[col.DELIVERED_AT].notna() & frame[col.SENT_AT].notna() & frame[col.LATENCY_S].isna()).sum())
        notes = []
        if others:
            notes.append(f"{others} other send(s) in the log are not in the manifest and not counted")
        if skewed:
            notes.append(f"{skewed} delivered send(s) with clock skew (delivered before sent) left out of the curves")
        self.counters_html.value = _counters_html(self.counters, notes, self._alarm())
        as_of = self._as_of(frame)
        self.rates_html.value = self._rates_html(frame, as_of)
        unknown = frame[col.OUTCOME].astype("str").eq(col.OUTCOME_DELIVERED) & frame[col.LATENCY_S].isna()
        self._draw_latency(frame[~unknown], as_of)
        self.latest_html.value = self._latest_html()

    def _alarm(self) -> str:
        """The sample-ratio mismatch line, when flagged ("" otherwise)."""
        return self.srm.text() if self.srm is not None and self.srm.flagged else ""

    def _rates_html(self, frame: pd.DataFrame, as_of) -> str:
        """Per group: every send by outcome, and the rate among sends whose window has closed."""
        parts = [f"<i>Rates count sends at least {self.settle_s / 60:g} min old (delivered within that time); "
                 "younger sends are still in their outcome window.</i>"]
        groupings = [(col.CARRIER,)] + ([(col.ARM,)] if col.ARM in frame.columns else [])
        for by in groupings:
            every = delivery_rates(frame, by=by)
            settled = delivery_rates(frame, by=by, settle_s=self.settle_s, as_of=as_of)
            shown = every[[*by, col.SENT, col.DELIVERED, col.FAILED, col.PENDING]].rename(columns={col.SENT: "sends"})
            settled = settled.rename(columns={col.SENT: "settled"})
            shown = shown.merge(settled[[*by, "settled", col.RATE, col.CI_LOW, col.CI_HIGH]], on=list(by), how="left")
            shown["settled"] = shown["settled"].fillna(0).astype("int64")
            shown[col.RATE] = ["—" if pd.isna(r) else f"{r:.1%}" for r in shown[col.RATE]]
            bounds = zip(shown.pop(col.CI_LOW), shown.pop(col.CI_HIGH), strict=True)
            shown["95% CI"] = ["—" if pd.isna(low) else f"{low:.1%} – {high:.1%}" for low, high in bounds]
            parts.append(f"<b>Delivery rate by {html.escape(by[0])}</b>")
            table = shown.to_html(index=False, na_rep="unknown", escape=True, border=0)
            parts.append(table if len(shown) else "no sends")
        return "".join(parts)

    def _as_of(self, frame: pd.DataFrame):
        """Last moment the data know about (:func:`skycore_lab.frames.times.latest_time`):
        pending sends are censored there. The events count too, so a send stays
        pending for as long as the receiver kept hearing anything."""
        return latest_time(frame, self.events)

    def _draw_latency(self, frame: pd.DataFrame, as_of) -> None:
        from matplotlib.figure import Figure  # bare Figure: no pyplot state, safe off the main thread

        from .plots import plot_latency

        figure = Figure(figsize=(6, 3.2), layout="constrained")
        ax = figure.subplots()
        plot_latency(frame, hue=col.ARM if col.ARM in frame.columns else None, kind="cif", ax=ax, as_of=as_of)
        ax.set_title("share delivered by time t (pending sends censored, failures competing)", fontsize="medium")
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=80)
        png = base64.b64encode(buffer.getvalue()).decode("ascii")
        data = {"image/png": png, "text/plain": "<latency curves>"}
        self.latency.outputs = ({"output_type": "display_data", "data": data, "metadata": {}},)

    def _latest_html(self) -> str:
        if self.events is None or not len(self.events):
            return "no notifications yet"
        events = self.events
        when = event_time(events, naive="utc")
        newest = when.sort_values(ascending=False, na_position="last", kind="stable").index[: self.latest]
        latest = events.loc[newest]
        shown = pd.DataFrame({_TIME: when.loc[newest].dt.strftime("%Y-%m-%d %H:%M:%S UTC").to_numpy()})
        for name in (col.CODE, col.TO, col.CARRIER):
            shown[name] = latest[name].astype("str").to_numpy() if name in latest.columns else ""
        return shown.to_html(index=False, na_rep="", escape=True, border=0)

    # -- display ------------------------------------------------------------------------
    def __repr__(self) -> str:
        return f"LiveDashboard(counters={self.counters}, running={self.running}, errors={self.errors})"

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)


def _concat_events(old: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    """``old`` then ``new``; categorical columns stay categorical (pandas falls back to
    object when the categories differ, which makes every later tick slower)."""
    new = new.copy()
    for name in old.columns.intersection(new.columns):
        if isinstance(old[name].dtype, pd.CategoricalDtype) and isinstance(new[name].dtype, pd.CategoricalDtype):
            both = old[name].cat.categories.union(new[name].cat.categories, sort=False)
            if len(both) != len(old[name].cat.categories) or len(both) != len(new[name].cat.categories):
                old = old.assign(**{name: old[name].cat.set_categories(both)})
                new[name] = new[name].cat.set_categories(both)
    return pd.concat([old, new], ignore_index=True)


def _counters_html(counters: dict, notes: list[str], alarm: str = "") -> str:
    warning = (f'<div class="skycore-dashboard-srm" style="color:#cf222e;font-weight:bold">{html.escape(alarm)}</div>'
               if alarm else "")  # fmt: skip
    cells = "".join(
        f'<div style="display:inline-block;margin-right:2em"><div style="font-size:1.8em">{value}</div>'
        f"<div>{html.escape(name)}</div></div>"
        for name, value in counters.items()
    )
    extra = "".join(f"<div><i>{html.escape(note)}</i></div>" for note in notes)
    return f"{warning}<div>{cells}</div>{extra}"
