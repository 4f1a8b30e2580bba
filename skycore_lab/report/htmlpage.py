"""The HTML delivery report: one self-contained file that opens offline.

No script, no external stylesheet, font or image: the CSS is inline, every
figure is an inline ``data:image/png;base64`` ``<img>``, and a
Content-Security-Policy forbids anything else, so even a string that slipped
through escaping could not run. Every user-provided string (title, carrier
and arm names, table cells) goes through :func:`html.escape`.

Layout: the page opens with the decision when the report is of an
experiment's result (:mod:`skycore_lab.report.verdict`), then the summary,
figures and tables. Tables show human labels (:data:`COLUMN_LABELS`; an
interval's two columns as one "95 % CI" column), and every table sits in
its own horizontally scrollable box, so on a phone (390 px) only a wide
table scrolls, never the page; long words (ids, hashes, titles) wrap.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Callable

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from .. import __version__
from .. import columns as col
from .content import DEFINITIONS, ITEM, VALUE, ReportContent, Table, iso as _iso
from ..frames.times import plottable_times
from .provenance import provenance_html

# Cell formats, by column name.
_PERCENT = frozenset({col.RATE, col.CI_LOW, col.CI_HIGH, "control_estimate", "arm_estimate", "diff", "rel_diff"})
_P_VALUES = frozenset({"p_value", "p_adjusted"})
_SECONDS_SUFFIXES = ("p50", "p90", "p99", "_low", "_high")
_KM_QUANTILES = frozenset({col.KM_P50, col.KM_P90})  # NaN there: the curve never reached the quantile

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif;
       max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; line-height: 1.4; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.25em; margin-top: 2em; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
h3 { font-size: 1.05em; margin-top: 1.5em; }
.meta { color: #555; }
h1, h2, h3, p, li, dt, dd, figcaption, th, td { overflow-wrap: anywhere; }
.table-scroll { overflow-x: auto; max-width: 100%; margin: 0.5em 0 1em; }
.table-scroll > table { margin: 0; }
table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.9em; }
.table-scroll td, .table-scroll th { overflow-wrap: normal; }
section.verdict { border: 2px solid #888; border-radius: 6px; padding: 0.2em 1em 0.6em; margin: 1.2em 0 2em; }
section.verdict h2 { margin-top: 0.6em; }
section.verdict.tone-go { border-color: #1a7f37; background: #f3fbf5; }
section.verdict.tone-keep { border-color: #57606a; background: #f6f8fa; }
section.verdict.tone-open { border-color: #9a6700; background: #fff8e5; }
section.verdict.tone-warning { border-color: #cf222e; background: #fff1f0; }
p.headline { font-size: 1.15em; font-weight: 600; }
section.verdict dt { margin-top: 0.7em; }
section.verdict dd + dd { margin-top: 0.35em; }
@media (max-width: 600px) { body { margin: 1em auto; padding: 0 0.7em; } h1 { font-size: 1.35em; } }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; }
th { background: #f2f2f2; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
section.verdict td { white-space: nowrap; }
figure { margin: 1em 0 2em; }
figure img { max-width: 100%; height: auto; }
figcaption { color: #555; font-size: 0.9em; }
dt { font-weight: bold; margin-top: 0.5em; }
dd { margin-left: 1.5em; }
.note { color: #555; font-style: italic; }
footer.provenance { margin-top: 3em; color: #555; font-size: 0.85em; }
footer.provenance td { word-break: break-all; }
"""
_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


# --- figures -----------------------------------------------------------------------------------
def _png(draw: Callable, size: tuple[float, float]) -> str:
    """Draw onto a fresh Figure (not pyplot: no global state) and return it as base64 PNG."""
    figure = Figure(figsize=size)
    draw(figure.subplots())
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def draw_figures(
    content: ReportContent, deliveries: pd.DataFrame, events: pd.DataFrame | None, as_of=None
) -> list[tuple[str, str]]:
    """(caption, base64 PNG) of every figure of the report."""
    from .. import plots

    figures = []
    by, hue = content.plot_by, content.plot_hue
    if by is not None:
        figures.append(
            (f"Delivery rate by {by}" + (f" and {hue}" if hue else "") + ", with 95 % Wilson intervals",
             _png(lambda ax: plots.plot_delivery_rates(deliveries, by=by, hue=hue, ax=ax), (8, 4.2)))
        )  # fmt: skip
        figures.append(
            (f"Outcomes by {by}", _png(lambda ax: plots.plot_outcomes(deliveries, by=by, ax=ax), (8, 4.2)))
        )
    if col.LATENCY_S in deliveries.columns and col.OUTCOME in deliveries.columns:
        figures.append(
            ("Share of sends delivered by time t (failures competing, pending sends censored), with 95 % bands",
             _png(lambda ax: plots.plot_latency(deliveries, hue=hue, kind="cif", as_of=as_of, ax=ax), (8, 4.2)))
        )  # fmt: skip
    if events is not None:
        freq = _timeline_freq(events)
        figures.append(
            (f"Postback notifications per {freq}",
             _png(lambda ax: plots.plot_timeline(events, freq=freq, ax=ax), (9, 3.6)))
        )  # fmt: skip
    return figures


def _timeline_freq(events: pd.DataFrame) -> str:
    """A bin width giving about 20–120 bins over the span of the events' plottable times."""
    stamps = pd.Series(dtype="datetime64[ns, UTC]")
    for name in (col.TIMESTAMP, col.RECEIVED_AT):
        if name in events.columns:
            stamps = pd.to_datetime(events[name], utc=True, errors="coerce")
            stamps = stamps[plottable_times(stamps)]  # year 0001 or 9999 would stretch the span
            if len(stamps):
                break
    span = (stamps.max() - stamps.min()).total_seconds() if len(stamps) else 0.0
    for freq, seconds in (("10s", 10), ("1min", 60), ("5min", 300), ("15min", 900), ("1h", 3600), ("6h", 21600)):
        if span / seconds <= 120:
            return freq
    return "1D"


# --- tables ---------------------------------------------------------------------------------------
def _cell(name: str, value) -> tuple[str, bool]:
    """(text, is_number) of one table cell."""
    if value is None or (not isinstance(value, str) and pd.api.types.is_scalar(value) and pd.isna(value)):
        return ("not reached" if name in _KM_QUANTILES else "—"), False
    if isinstance(value, (bool, np.bool_)):
        return ("yes" if value else "no"), False
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}", True
    if isinstance(value, (float, np.floating)):
        value = float(value)
        if math.isinf(value):
            return ("∞" if value > 0 else "−∞"), True
        if name in _PERCENT:
            return f"{value:.1%}", True
        if name in _P_VALUES:
            return ("< 0.0001" if value < 1e-4 else f"{value:.4f}"), True
        if name.endswith(_SECONDS_SUFFIXES) or name.startswith("km_"):
            return f"{value:,.1f}", True
        return f"{value:,.4g}", True
    if isinstance(value, pd.Timestamp):
        return value.isoformat(), False
    return str(value), False


#: The header a column gets on the page (others: their name with spaces for underscores).
COLUMN_LABELS: dict[str, str] = {
    col.SENT: "sends", col.RATE: "delivery rate", col.N: "n", col.ARM: "arm", col.CARRIER: "carrier",
    col.CONTROL_ESTIMATE: "control", col.ARM_ESTIMATE: "arm value", col.DIFF: "difference",
    col.REL_DIFF: "relative difference", col.P_VALUE: "p", col.P_ADJUSTED: "p (adjusted)",
    col.N_CONTROL: "sends (control)", col.N_ARM: "sends (arm)", col.WINDOW_S: "outcome window (s)",
    col.P50: "p50 (s)", col.P90: "p90 (s)", col.P99: "p99 (s)", col.KM_P50: "KM median (s)", col.KM_P90: "KM p90 (s)",
}
#: Interval columns shown as one: (low, high, label).
INTERVALS: tuple[tuple[str, str, str], ...] = (
    (col.CI_LOW, col.CI_HIGH, "95 % CI"),
    (col.KM_P50_LOW, col.KM_P50_HIGH, "KM median 95 % CI (s)"),
    (col.KM_P90_LOW, col.KM_P90_HIGH, "KM p90 95 % CI (s)"),
)


def column_label(name: str) -> str:
    """The page's header of column ``name``."""
    return COLUMN_LABELS.get(name, name.replace("_", " "))


def _scroll(table: str) -> str:
    return f'<div class="table-scroll">{table}</div>'


def _table(frame: pd.DataFrame, header: bool = True) -> str:
    if frame.empty:
        return '<p class="note">No rows.</p>'
    names = [str(name) for name in frame.columns]
    pairs = {low: (high, label) for low, high, label in INTERVALS if low in names and high in names}
    merged = {high for high, _label in pairs.values()}
    shown = [i for i, name in enumerate(names) if name not in merged]
    rows = []
    if header:
        labels = [pairs[names[i]][1] if names[i] in pairs else column_label(names[i]) for i in shown]
        rows.append("<thead><tr>" + "".join(f"<th>{_esc(label)}</th>" for label in labels) + "</tr></thead>")
    position = {name: i for i, name in enumerate(names)}
    body = []
    for record in frame.itertuples(index=False, name=None):
        cells = []
        for i in shown:
            name = names[i]
            text, number = _cell(name, record[i])
            if name in pairs:
                high = pairs[name][0]
                high_text, _ = _cell(high, record[position[high]])
                text = "—" if text == high_text == "—" else f"{text} – {high_text}"
                number = True
            cells.append(f'<td class="num">{_esc(text)}</td>' if number else f"<td>{_esc(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    rows.append("<tbody>" + "".join(body) + "</tbody>")
    return _scroll("<table>" + "".join(rows) + "</table>")


def _summary_table(summary: pd.DataFrame) -> str:
    body = []
    for item, value in zip(summary[ITEM], summary[VALUE], strict=True):
        name = col.RATE if str(item).startswith("delivery rate") else str(item)
        text, number = _cell(name, value)
        cls = ' class="num"' if number else ""
        body.append(f"<tr><th>{_esc(item)}</th><td{cls}>{_esc(text)}</td></tr>")
    return _scroll("<table><tbody>" + "".join(body) + "</tbody></table>")


def _verdict_section(verdict) -> str:
    """The decision first, then its parts and tables (:mod:`skycore_lab.report.verdict`)."""
    out = [f'<section class="verdict tone-{_esc(verdict.tone)}" id="verdict">', "<h2>Decision</h2>",
           f'<p class="headline">{_esc(verdict.headline)}</p>', "<dl>"]
    previous = None
    for label, text in verdict.parts:  # one term per part, one definition per line of it
        if label != previous:
            out.append(f"<dt>{_esc(label)}</dt>")
            previous = label
        out.append(f"<dd>{_esc(text)}</dd>")
    out.append("</dl>")
    out.append('<h3 id="verdict-primary">Primary metric: delivery rate</h3>')
    out.append(_table(verdict.primary))
    if len(verdict.latency):
        out.append('<h3 id="verdict-latency">Latency cost</h3>')
        out.append(_table(verdict.latency))
    out.append("</section>")
    return "\n".join(out)


def _section(table: Table, level: int = 3) -> str:
    parts = [f'<h{level} id="{_esc(table.key.replace(" ", "-"))}">{_esc(table.title)}</h{level}>']
    if table.note:
        parts.append(f'<p class="note">{_esc(table.note)}</p>')
    parts.append(_table(table.frame))
    return "\n".join(parts)


def render_html(content: ReportContent, figures: list[tuple[str, str]], provenance=None) -> str:
    """The report as one HTML5 document; ``provenance`` (a :class:`~skycore_lab.provenance.Provenance`)
    becomes its footer."""
    period = "no timestamps"
    if content.first_at is not None:
        period = f"{_esc(_iso(content.first_at))} to {_esc(_iso(content.last_at))}"
    out = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_esc(content.title)}</title>",
        f"<style>{_STYLE}</style>",
        "</head>",
        "<body>",
        f"<h1>{_esc(content.title)}</h1>",
        f'<p class="meta">Generated {_esc(_iso(content.generated_at))} by skycore-lab '
        f"{_esc(__version__)}. Data period (UTC): {period}.</p>",
    ]
    if content.verdict is not None:
        out.append(_verdict_section(content.verdict))
    out += [
        "<h2>Summary</h2>",
        _summary_table(content.summary),
    ]
    if content.notes:
        out.append("<h3>Notes on the data</h3><ul>")
        out.extend(f"<li>{_esc(note)}</li>" for note in content.notes)
        out.append("</ul>")
    out.append("<h2>Figures</h2>")
    if not figures:
        out.append('<p class="note">No figure: the data have no grouping or latency column.</p>')
    for caption, png in figures:
        out.append(
            f'<figure><img src="data:image/png;base64,{png}" alt="{_esc(caption)}">'
            f"<figcaption>{_esc(caption)}</figcaption></figure>"
        )
    out.append("<h2>Delivery rates</h2>")
    out.extend(_section(table) for table in content.rates)
    out.append("<h2>Latency</h2>")
    out.append(_section(content.latency))
    if content.comparisons is not None:
        out.append("<h2>Comparisons</h2>")
        out.append(_section(content.comparisons))
    out.append("<h2>Definitions</h2><dl>")
    for term, definition in DEFINITIONS.items():
        out.append(f"<dt>{_esc(term)}</dt><dd>{_esc(definition)}</dd>")
    out.append("</dl>")
    if provenance is not None:
        out.append(provenance_html(provenance))
    out.append("</body>")
    out.append("</html>")
    return "\n".join(out) + "\n"
