"""Plots of delivery rates, latency, outcomes, handsets and postback traffic.

Every function follows one contract (the seaborn one): a small private
function of :mod:`skycore_lab.plots.data` first computes a tidy frame (rates,
intervals and censoring come from :mod:`skycore_lab.stats`, never re-derived
here), then the plot is drawn onto ``ax`` — the current Axes when ``ax`` is
None — and that Axes is returned. Nothing is printed and ``plt.show()`` is
never called.

Conventions and decisions
-------------------------
* **Colours** are the Okabe–Ito colour-blind-safe palette (:data:`OKABE_ITO`).
  Series (arms, other hue levels) take :data:`PALETTE` in order; outcomes and
  notification families always get the same colours (:data:`OUTCOME_COLORS`,
  :data:`FAMILY_COLORS`) so figures can be compared side by side:
  delivered bluish green, failed vermillion, expired orange, rejected reddish
  purple, not_supported grey, pending sky blue. Grey (for not_supported,
  "other", "unknown") is not in Okabe–Ito but is safe for every deficiency.
* **Shares** are drawn on a 0–100 % axis with
  :class:`matplotlib.ticker.PercentFormatter`.
* **Grouping columns.** A ``by`` or ``hue`` column that is missing raises
  :class:`~skycore_lab.exceptions.SkycoreValidationError` naming it — except
  ``hue="arm"`` (the default): only experiments have an ``arm`` column, so
  without one the plot shows a single series. ``hue=None`` always means one
  series. Missing group values are shown as ``"(missing)"``, never dropped.
* **Category order.** ``by`` groups: an *ordered* categorical keeps its
  category order, otherwise groups are ordered by number of sends, largest
  first, ties by name (the biggest carriers first). ``hue`` levels (arms):
  a categorical keeps its category order (the experiment's, as in
  :func:`~skycore_lab.stats.compare_arms`), otherwise by name; so an arm keeps
  its colour from one plot to the next.
* **Empty input** (zero rows) gives a labelled Axes with a "no data" note, not
  an exception, so a dashboard polling a still-empty log keeps working. The
  column checks above apply only to non-empty frames.
* **Text from the data is drawn as it is.** Every user-supplied string
  (column names, group, arm, outcome and handset labels) goes through
  :func:`plain_text`, which escapes ``$`` so matplotlib never reads it as
  mathtext: a handset named ``$\frac{$`` is shown as such instead of
  failing the plot. (With ``text.usetex`` switched on, LaTeX typesets every
  label and its own special characters apply: not supported.)
* **Times outside** :data:`~skycore_lab.frames.times.PLAUSIBLE_TIMES`
  (a TIMESTAMP in year 0001 or 9999) are left out of :func:`plot_timeline`,
  with a :class:`~skycore_lab.exceptions.PlotDataWarning` counting them.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.ticker import FixedLocator, FuncFormatter, MaxNLocator, PercentFormatter

from . import data as data
from .. import columns as col
from .data import FAMILY_DDM, FAMILY_DELIVERED, FAMILY_FAILED, FAMILY_OTHER, FAMILY_SENT
from ..checks import require_columns
from ..exceptions import SkycoreValidationError

__all__ = [
    "plain_text",
    "OKABE_ITO",
    "PALETTE",
    "OUTCOME_COLORS",
    "FAMILY_COLORS",
    "GREY",
    "LATENCY_KINDS",
    "plot_delivery_rates",
    "plot_latency",
    "plot_outcomes",
    "plot_handsets",
    "plot_timeline",
]

#: The Okabe–Ito palette (Okabe & Ito 2008), safe for the common colour-vision deficiencies.
OKABE_ITO: dict[str, str] = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "bluish_green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish_purple": "#CC79A7",
}
GREY = "#999999"

#: Colours of successive series (arms, hue groups); yellow comes late, it is faint on white.
PALETTE: tuple[str, ...] = tuple(
    OKABE_ITO[name]
    for name in ("blue", "orange", "bluish_green", "vermillion", "reddish_purple", "sky_blue", "yellow", "black")
)

#: Fixed colour of each outcome (columns.OUTCOMES).
OUTCOME_COLORS: dict[str, str] = {
    col.OUTCOME_DELIVERED: OKABE_ITO["bluish_green"],
    col.OUTCOME_FAILED: OKABE_ITO["vermillion"],
    col.OUTCOME_EXPIRED: OKABE_ITO["orange"],
    col.OUTCOME_REJECTED: OKABE_ITO["reddish_purple"],
    col.OUTCOME_NOT_SUPPORTED: GREY,
    col.OUTCOME_PENDING: OKABE_ITO["sky_blue"],
}
_OTHER_OUTCOME_COLOR = OKABE_ITO["black"]

#: Fixed colour of each notification family of :func:`plot_timeline`.
FAMILY_COLORS: dict[str, str] = {
    FAMILY_SENT: OKABE_ITO["blue"],
    FAMILY_DELIVERED: OKABE_ITO["bluish_green"],
    FAMILY_FAILED: OKABE_ITO["vermillion"],
    FAMILY_DDM: OKABE_ITO["reddish_purple"],
    FAMILY_OTHER: GREY,
}

#: Kinds of :func:`plot_latency`.
LATENCY_KINDS: tuple[str, ...] = ("cif", "km", "ecdf", "hist")

NO_DATA = "no data"
_LATENCY_LABELS = {
    col.LATENCY_S: "latency: sent → delivered",
    col.TOTAL_LATENCY_S: "total latency: requested → delivered",
    col.DDM_LATENCY_S: "DDM latency",
}
# Tick positions (seconds) and labels for log-scaled duration axes.
_DURATION_TICKS: tuple[tuple[float, str], ...] = (
    (0.1, "0.1 s"), (0.5, "0.5 s"), (1, "1 s"), (5, "5 s"), (15, "15 s"), (30, "30 s"),
    (60, "1 min"), (5 * 60, "5 min"), (15 * 60, "15 min"), (30 * 60, "30 min"),
    (3600, "1 h"), (3 * 3600, "3 h"), (6 * 3600, "6 h"), (12 * 3600, "12 h"),
    (86400, "1 d"), (2 * 86400, "2 d"), (7 * 86400, "7 d"),
)  # fmt: skip


# --- shared helpers -------------------------------------------------------------------
def plain_text(text: object) -> str:
    """``str(text)`` with ``$`` escaped, so matplotlib draws it literally, never as mathtext."""
    return str(text).replace("$", r"\$")


def _plain_all(texts) -> list[str]:
    return [plain_text(text) for text in texts]


def _axes(ax: Axes | None) -> Axes:
    return plt.gca() if ax is None else ax


def _no_data(ax: Axes, note: str = NO_DATA) -> Axes:
    ax.text(0.5, 0.5, note, transform=ax.transAxes, ha="center", va="center", color="0.4")
    return ax


def _resolve_hue(frame: pd.DataFrame, hue: str | None) -> str | None:
    """The hue column to use: None for a single series (see the module notes)."""
    if hue is None:
        return None
    if hue not in frame.columns:
        if hue == col.ARM:
            return None  # not an experiment: one series
        require_columns(frame, [hue], "deliveries", field="hue")
    return hue


def _series_colors(n: int) -> list[str]:
    return [PALETTE[i % len(PALETTE)] for i in range(n)]


def _percent_axis(axis) -> None:
    axis.set_major_formatter(PercentFormatter(xmax=1, decimals=0))


def _crowded(labels: Sequence[str]) -> bool:
    return len(labels) > 4 or any(len(label) > 12 for label in labels)


def _rotate_if_crowded(ax: Axes, labels: Sequence[str]) -> None:
    if _crowded(labels):
        ax.tick_params(axis="x", labelrotation=30)
        for tick in ax.get_xticklabels():
            tick.set_horizontalalignment("right")
            tick.set_rotation_mode("anchor")


def _legend_outside(ax: Axes, title: str | None) -> None:
    title = None if title is None else plain_text(title)
    ax.legend(title=title, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize="small")


# --- delivery rates ----------------------------------------------------------------------
def plot_delivery_rates(
    deliveries: pd.DataFrame,
    by: str = col.CARRIER,
    hue: str | None = col.ARM,
    ax: Axes | None = None,
    *,
    confidence: float = 0.95,
    exclude_pending: bool = False,
) -> Axes:
    """Bar chart of delivery rates with Wilson intervals, one bar per group.

    Rates and intervals come from :func:`skycore_lab.stats.delivery_rates`
    (pending sends count as not delivered unless ``exclude_pending``). Each
    group's tick label carries its ``n``, the rates' denominators:
    ``n=412`` for one series, ``n=140 / 136`` (in legend order) with a hue,
    on a second line (``"AT&T\nn=412"``), or after a ``·`` on the same line
    when the labels are rotated (more than 4 groups or a long name) — never
    text above the bars, where neighbouring labels would overlap. A group
    with no counted send gets no bar (its tick stays, with ``n=0``).

    Parameters
    ----------
    deliveries : DataFrame
        A deliveries frame (:func:`skycore_lab.deliveries`) with ``outcome``,
        ``by`` and (optionally) ``hue`` columns.
    by : str, default ``"carrier"``
        Column whose values make the bars' x positions.
    hue : str or None, default ``"arm"``
        Column that splits each x position into side-by-side bars. None, or
        ``"arm"`` when the frame has no arm column: one bar per group.
    ax : Axes, optional
        Where to draw; default the current Axes.
    confidence : float, default 0.95
        Confidence level of the Wilson intervals.
    exclude_pending : bool, default False
        Passed to :func:`~skycore_lab.stats.delivery_rates`: leave sends with
        no final notification yet out of the denominator.

    Returns
    -------
    Axes
        ``ax``, with one bar container per hue level (legend entry named by
        the level; no legend without hue), one error-bar container per hue
        level, and tick labels ``"<group>\nn=…"`` (or ``"<group> · n=…"``).

    Raises
    ------
    SkycoreValidationError
        ``by`` (or a hue other than ``"arm"``) is not a column of a non-empty frame.
    """
    ax = _axes(ax)
    ax.set_ylabel(f"delivery rate ({confidence:.0%} Wilson CI)")
    ax.set_xlabel(plain_text(by))
    _percent_axis(ax.yaxis)
    ax.set_ylim(0, 1.05)  # room for an interval's cap at 100 %
    ax.yaxis.set_major_locator(FixedLocator([0, 0.2, 0.4, 0.6, 0.8, 1.0]))
    if len(deliveries) == 0:
        return _no_data(ax)
    require_columns(deliveries, [by], "deliveries", field="by")
    hue = _resolve_hue(deliveries, hue)
    tidy = data.rates_frame(deliveries, by, hue, confidence, exclude_pending)

    groups = data.order(deliveries[by], by_count=by != col.ARM)
    position = {group: i for i, group in enumerate(groups)}
    hues = data.order(deliveries[hue], by_count=False) if hue is not None else [data.SINGLE]
    width = 0.8 / len(hues)
    for j, (level, color) in enumerate(zip(hues, _series_colors(len(hues)), strict=True)):
        rows = tidy[(tidy[data.HUE] == level) & tidy[col.RATE].notna()]
        x = np.array([position[g] for g in rows[data.GROUP]], dtype=float) + (j - (len(hues) - 1) / 2) * width
        rate = rows[col.RATE].to_numpy()
        ax.bar(x, rate, width * 0.95, color=color, label=plain_text(level) if hue is not None else None)
        yerr = np.vstack([rate - rows[col.CI_LOW].to_numpy(), rows[col.CI_HIGH].to_numpy() - rate])
        ax.errorbar(x, rate, yerr=yerr, fmt="none", ecolor="black", elinewidth=1, capsize=3)
    counts = {(group, level): int(n) for group, level, n in zip(tidy[data.GROUP], tidy[data.HUE], tidy[data.N],
                                                                 strict=True)}
    # two lines when upright; one when the labels are rotated (a rotated second line would cross its neighbours)
    joint = " · " if _crowded(groups) else "\n"
    ticks = [f"{plain_text(group)}{joint}n=" + " / ".join(str(counts.get((group, level), 0)) for level in hues)
             for group in groups]
    ax.set_xticks(range(len(groups)), ticks)
    _rotate_if_crowded(ax, groups)
    if hue is not None:
        _legend_outside(ax, hue)
    return ax


# --- outcomes ---------------------------------------------------------------------------------
def plot_outcomes(deliveries: pd.DataFrame, by: str = col.CARRIER, ax: Axes | None = None) -> Axes:
    """Horizontal 100 % stacked bars: the share of each outcome per group.

    Outcomes are stacked in :data:`columns.OUTCOMES` order (delivered first,
    pending last) with fixed colours (:data:`OUTCOME_COLORS`); an unknown or
    missing outcome is kept under its own label, in black, after them. Only
    outcomes that occur are drawn and listed. Each group's tick label carries
    its number of sends, and segments of at least 8 % are labelled with their
    share.

    Parameters
    ----------
    deliveries : DataFrame
        A deliveries frame with ``outcome`` and ``by`` columns.
    by : str, default ``"carrier"``
        Column whose values make the bars (largest group on top).
    ax : Axes, optional
        Where to draw; default the current Axes.

    Returns
    -------
    Axes
        ``ax``, with one bar container per drawn outcome (legend label = outcome).

    Raises
    ------
    SkycoreValidationError
        ``by`` or ``outcome`` is not a column of a non-empty frame.
    """
    ax = _axes(ax)
    ax.set_xlabel("share of sends")
    ax.set_ylabel(plain_text(by))
    _percent_axis(ax.xaxis)
    ax.set_xlim(0, 1)
    if len(deliveries) == 0:
        return _no_data(ax)
    require_columns(deliveries, [by], "deliveries", field="by")
    require_columns(deliveries, [col.OUTCOME], "deliveries", field="deliveries")
    tidy = data.outcome_shares(deliveries, by)

    groups = list(dict.fromkeys(tidy[data.GROUP]))
    y = np.arange(len(groups))
    left = np.zeros(len(groups))
    drawn = 0
    for outcome in dict.fromkeys(tidy[col.OUTCOME]):
        rows = tidy[tidy[col.OUTCOME] == outcome].set_index(data.GROUP).reindex(groups)
        if rows[data.COUNT].sum() == 0:
            continue
        share = rows[data.SHARE].to_numpy(dtype=float)
        bars = ax.barh(
            y, share, left=left, height=0.7, label=plain_text(outcome),
            color=OUTCOME_COLORS.get(outcome, _OTHER_OUTCOME_COLOR), edgecolor="white", linewidth=0.5,
        )  # fmt: skip
        ax.bar_label(
            bars, labels=[f"{s:.0%}" if s >= 0.08 else "" for s in share], label_type="center", fontsize="x-small"
        )
        left += share
        drawn += 1
    n = tidy.drop_duplicates(data.GROUP).set_index(data.GROUP)[data.N]
    ax.set_yticks(y, [plain_text(f"{group} (n={n[group]})") for group in groups])
    ax.invert_yaxis()  # largest group on top
    ax.legend(loc="lower left", bbox_to_anchor=(0, 1.01), ncols=min(drawn, 6), frameon=False, fontsize="small")
    return ax


# --- latency -----------------------------------------------------------------------------------
def _duration_label(seconds: float) -> str:
    for value, label in _DURATION_TICKS:
        if np.isclose(seconds, value):
            return label
    return f"{seconds:g} s"


def _duration_axis(ax: Axes, x: np.ndarray) -> bool:
    """Log scale with readable duration ticks when some time is positive; True if so.

    Times of 0 s (clock skew clipped to 0) are drawn at the left edge.
    """
    x = x[np.isfinite(x)]
    positive = x[x > 0]
    if len(positive) == 0:
        return False
    ax.set_xscale("log", nonpositive="clip")
    low, high = positive.min() / 1.3, positive.max() * 1.3
    ax.set_xlim(low, high)
    candidates = [value for value, _ in _DURATION_TICKS if low <= value <= high]
    ticks: list[float] = []
    for spacing in (4, 6, 12, 30, 100):  # thin out: at most 7 ticks, well apart in log
        ticks = []
        for value in candidates:
            if not ticks or value / ticks[-1] >= spacing:
                ticks.append(value)
        if len(ticks) <= 7:
            break
    if len(ticks) >= 2:
        ax.xaxis.set_major_locator(FixedLocator(ticks))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _pos: _duration_label(value)))
        ax.xaxis.set_minor_locator(FixedLocator([]))
    return True


def plot_latency(
    deliveries: pd.DataFrame,
    hue: str | None = col.ARM,
    kind: str = "cif",
    ax: Axes | None = None,
    *,
    column: str = col.LATENCY_S,
    confidence: float = 0.95,
    as_of=None,
    bins: int = 30,
) -> Axes:
    """Latency distribution per hue group.

    Parameters
    ----------
    deliveries : DataFrame
        A deliveries frame (:func:`skycore_lab.deliveries`); see
        :func:`skycore_lab.stats.censored_latencies` for the columns "cif" and "km" need.
    hue : str or None, default ``"arm"``
        Column splitting the sends into curves (None, or ``"arm"`` when absent: one curve).
    kind : {"cif", "km", "ecdf", "hist"}, default "cif"
        * ``"cif"``: share of sends delivered by time *t*
          (:func:`skycore_lab.stats.cumulative_incidence`: Aalen–Johansen,
          failures a competing event, pending sends censored at their age),
          with its ``confidence`` pointwise band. Its plateau is the delivery
          rate — use it to compare arms.
        * ``"km"``: 1 − Kaplan–Meier survival with every undelivered send
          censored (:func:`scipy.stats.ecdf` on
          :func:`skycore_lab.stats.censored_latencies`), with a log-log band:
          how fast delivery would be if nothing failed. It overstates the
          share delivered when sends fail.
        * ``"ecdf"``: empirical CDF of *delivered sends only* (the y label says so).
        * ``"hist"``: histogram of delivered sends only, as each group's share
          per bin, on log-spaced bins shared by the groups (latencies are
          roughly log-normal).
    ax : Axes, optional
        Where to draw; default the current Axes.
    column : str, default ``"latency_s"``
        Latency column: ``latency_s``, ``total_latency_s`` or ``ddm_latency_s``.
    confidence : float, default 0.95
        Level of the band ("cif", "km").
    as_of : datetime, optional
        Censoring time of pending sends, passed to ``censored_latencies``.
    bins : int, default 30
        Number of histogram bins.

    Returns
    -------
    Axes
        ``ax``. "cif", "km" and "ecdf": one step line per group, labelled
        ``"<level> (n=…)"`` (``"n=…"`` without hue); "cif" and "km" also one
        filled band per group; "hist": one filled step patch per group. The x axis is
        logarithmic with duration ticks (``30 s``, ``5 min``…) when some
        latency is positive (0 s latencies, clock skew clipped by
        ``censored_latencies``, sit at the left edge), linear seconds
        otherwise. A frame without any delivered send gives the "no data"
        note for "ecdf" and "hist".

    Raises
    ------
    SkycoreValidationError
        Unknown ``kind``; ``column``, ``outcome`` or a hue other than
        ``"arm"`` missing from a non-empty frame.

    Warns
    -----
    LatencyDataWarning
        From ``censored_latencies``, when sends without a usable duration are left out.
    """
    if kind not in LATENCY_KINDS:
        raise SkycoreValidationError("kind", f"must be one of {', '.join(map(repr, LATENCY_KINDS))}, got {kind!r}")
    if kind == "hist" and (isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 1):
        raise SkycoreValidationError("bins", f"must be a positive integer, got {bins!r}")
    ax = _axes(ax)
    what = _LATENCY_LABELS.get(column, plain_text(column))
    ax.set_xlabel(what)
    ax.set_ylabel(
        {
            "cif": "share of sends delivered by time t",
            "km": "share delivered by time t (Kaplan–Meier, failures censored)",
            "ecdf": "share of delivered sends (delivered only)",
            "hist": "share of delivered sends per bin (delivered only)",
        }[kind]
    )
    _percent_axis(ax.yaxis)
    if len(deliveries) == 0:
        return _no_data(ax)
    require_columns(deliveries, [column], "deliveries", field="column")
    require_columns(deliveries, [col.OUTCOME], "deliveries", field="deliveries")
    hue = _resolve_hue(deliveries, hue)

    if kind == "cif":
        tidy = data.cif_curves(deliveries, hue, column, confidence, as_of)
    elif kind == "km":
        tidy = data.km_curves(deliveries, hue, column, confidence, as_of)
    elif kind == "ecdf":
        tidy = data.ecdf_curves(deliveries, hue, column)
    else:
        tidy = data.histograms(deliveries, hue, column, int(bins))
    if tidy.empty:
        return _no_data(ax, NO_DATA if kind in ("cif", "km") else "no delivered sends")

    levels = list(dict.fromkeys(tidy[data.HUE]))
    for level, color in zip(levels, _series_colors(len(levels)), strict=True):
        rows = tidy[tidy[data.HUE] == level]
        n = int(rows[data.N].iloc[0])
        label = plain_text(f"{level} (n={n})") if hue is not None else f"n={n}"
        if kind == "hist":
            edges = np.append(rows[data.X].to_numpy(), rows[data.X_RIGHT].iloc[-1])
            ax.stairs(
                rows[data.Y].to_numpy(), edges, fill=True, facecolor=(color, 0.35), edgecolor=color,
                linewidth=1.2, label=label,
            )  # fmt: skip
            continue
        ax.step(rows[data.X], rows[data.Y], where="post", color=color, label=label)
        if kind in ("cif", "km"):
            ax.fill_between(
                rows[data.X], rows[data.Y_LOW], rows[data.Y_HIGH], step="post", color=color, alpha=0.2, linewidth=0
            )
    x = tidy[data.X].to_numpy(dtype=float)
    if kind == "hist":
        x = np.append(x, tidy[data.X_RIGHT].to_numpy(dtype=float))
        ax.set_ylim(bottom=0)
    else:
        ax.set_ylim(0, 1)
    ax.set_xlabel(f"{what} (log scale)" if _duration_axis(ax, x) else f"{what} (s)")
    ax.legend(title=None if hue is None else plain_text(hue), loc="best", frameon=False, fontsize="small")
    return ax


# --- handsets ------------------------------------------------------------------------------------
def plot_handsets(profiles: pd.DataFrame, top: int = 10, ax: Axes | None = None) -> Axes:
    """Horizontal bars: number of phone numbers per handset, the top ``top`` first.

    Handsets past the top ``top`` are summed into one ``other (k handsets)``
    bar; numbers whose handset is unknown (missing or blank) get an
    ``unknown`` bar, last: an unknown handset is not a handset, so it never
    takes a top place. Each bar is annotated with its count and share of all
    numbers.

    Parameters
    ----------
    profiles : DataFrame
        Handset profiles (:func:`skycore_lab.handset_profiles`), one row per
        number; only the ``handset`` column is read.
    top : int, default 10
        Number of handsets shown by name (a positive integer).
    ax : Axes, optional
        Where to draw; default the current Axes.

    Returns
    -------
    Axes
        ``ax``, with one bar per handset shown (Okabe–Ito blue; grey for
        "other" and "unknown"), top to bottom, and one annotation per bar.

    Raises
    ------
    SkycoreValidationError
        ``top`` is not a positive integer, or a non-empty frame has no ``handset`` column.
    """
    if isinstance(top, bool) or not isinstance(top, (int, np.integer)) or top < 1:
        raise SkycoreValidationError("top", f"must be a positive integer, got {top!r}")
    ax = _axes(ax)
    ax.set_xlabel("phone numbers")
    ax.set_ylabel(col.HANDSET)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if len(profiles) == 0:
        return _no_data(ax)
    require_columns(profiles, [col.HANDSET], "handset profiles", field="profiles")
    tidy = data.handset_counts(profiles, int(top))

    colors = [GREY if rest else OKABE_ITO["blue"] for rest in tidy[data.IS_REST]]
    y = np.arange(len(tidy))
    bars = ax.barh(y, tidy[data.COUNT], color=colors, height=0.7)
    ax.bar_label(
        bars, labels=[f"{c} ({s:.0%})" for c, s in zip(tidy[data.COUNT], tidy[data.SHARE], strict=True)],
        padding=2, fontsize="x-small",
    )  # fmt: skip
    ax.set_yticks(y, _plain_all(tidy[col.HANDSET]))
    ax.invert_yaxis()  # most common on top
    ax.set_xlim(0, tidy[data.COUNT].max() * 1.18)  # room for the labels
    return ax


# --- timeline ----------------------------------------------------------------------------------------
def plot_timeline(
    events: pd.DataFrame,
    freq: str = "1min",
    ax: Axes | None = None,
    *,
    stacked: bool = False,
    dedupe: bool = True,
) -> Axes:
    """Postback notifications per time bin, by code family.

    Families (:data:`FAMILIES`): ``sent`` (N101, N201), ``delivered`` (N102,
    N202), ``failed`` (E101, E102, E201, E202), ``DDM`` (N501, N502, E501,
    E502) and ``other`` (subscriptions, MO messages, encoding, E999…); only
    families present are drawn, in fixed colours (:data:`FAMILY_COLORS`). A
    notification is placed by its own TIMESTAMP, or by the time it was
    received when it has none (an E101 may lack one); rows with neither are
    left out.

    Parameters
    ----------
    events : DataFrame
        Postback events (:func:`skycore_lab.read_postbacks`), columns.EVENT_COLUMNS;
        ``code`` and ``timestamp`` or ``received_at`` are read.
    freq : str, default ``"1min"``
        Bin width, a pandas frequency (``"30s"``, ``"15min"``, ``"1h"``…).
    ax : Axes, optional
        Where to draw; default the current Axes.
    stacked : bool, default False
        False: one step line per family. True: stacked step areas (the total
        traffic on top).
    dedupe : bool, default True
        Count a notification retried by the platform (same origin, code,
        status, tracking id, recipient and timestamp) once. False counts every
        POST the receiver got.

    Returns
    -------
    Axes
        ``ax``, with one line (or one filled area when ``stacked``) per family,
        labelled by family, x in UTC.

    Raises
    ------
    SkycoreValidationError
        ``freq`` is not a pandas frequency, or a non-empty frame lacks
        ``code`` or both time columns.

    Warns
    -----
    PlotDataWarning
        Notifications whose time lies outside
        :data:`~skycore_lab.frames.times.PLAUSIBLE_TIMES` were left out.
    """
    ax = _axes(ax)
    ax.set_xlabel("time (UTC)")
    ax.set_ylabel(plain_text(f"notifications per {freq}"))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    if len(events) == 0:
        return _no_data(ax)
    require_columns(events, [col.CODE], "events", field="events")
    if col.TIMESTAMP not in events and col.RECEIVED_AT not in events:
        require_columns(events, [col.TIMESTAMP], "events", field="events")
    counts = data.timeline_counts(events, freq, dedupe)
    if counts.empty:
        return _no_data(ax, "no notification has a time")

    # bin edges: the bin starts plus the end of the last bin, for post steps
    starts = counts.index
    step = starts.freq if starts.freq is not None else pd.tseries.frequencies.to_offset(freq)
    edges = starts.append(pd.DatetimeIndex([starts[-1] + step])).to_numpy()
    values = {family: np.append(counts[family].to_numpy(), counts[family].iloc[-1]) for family in counts.columns}
    if stacked:
        ax.stackplot(
            edges, *values.values(), labels=list(values), colors=[FAMILY_COLORS[f] for f in values], step="post"
        )
    else:
        for family, y in values.items():
            ax.step(edges, y, where="post", color=FAMILY_COLORS[family], label=family)
    locator = mdates.AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    ax.set_ylim(bottom=0)
    _legend_outside(ax, "notification")
    return ax
