"""skycore_lab.plots: each plot draws on the given Axes and returns it; test the artists, not pixels."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # before pyplot; the lead's conftest does the same

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from matplotlib.colors import to_hex  # noqa: E402
from matplotlib.container import BarContainer, ErrorbarContainer  # noqa: E402
from matplotlib.ticker import PercentFormatter  # noqa: E402

from skycore_lab import plots, stats
from skycore_lab.plots import data as plot_data  # noqa: E402
from skycore_lab import columns as col  # noqa: E402
from skycore_lab.exceptions import SkycoreValidationError  # noqa: E402

ARMS = ("control", "ddm_5min")
CARRIERS = ("AT&T", "Verizon", "T-Mobile")


def make_deliveries(n: int = 300, seed: int = 0, arms=ARMS) -> pd.DataFrame:
    """A deliveries frame with log-normal latencies, every outcome, fixed seed."""
    rng = np.random.default_rng(seed)
    t0 = pd.Timestamp("2024-05-01 12:00", tz="UTC")
    sent = t0 + pd.to_timedelta(rng.uniform(0, 3600, n), unit="s")
    outcome = rng.choice(col.OUTCOMES, size=n, p=[0.7, 0.08, 0.05, 0.03, 0.02, 0.12])
    latency = np.exp(rng.normal(np.log(30), 1.0, n))
    delivered = outcome == col.OUTCOME_DELIVERED
    failed = np.isin(outcome, col.FAILURE_OUTCOMES)
    frame = pd.DataFrame(
        {
            col.TRACKING_ID: [f"MMS_{i}" for i in range(n)],
            col.CARRIER: pd.Categorical(rng.choice(CARRIERS, n)),
            col.SENT_AT: sent,
            col.DELIVERED_AT: pd.Series(sent).where(delivered) + pd.to_timedelta(latency, unit="s"),
            col.FAILED_AT: pd.Series(sent).where(failed) + pd.to_timedelta(latency / 2, unit="s"),
            col.OUTCOME: pd.Categorical(outcome, categories=col.OUTCOMES, ordered=True),
            col.LATENCY_S: np.where(delivered, latency, np.nan),
        }
    )
    if arms:
        frame[col.ARM] = pd.Categorical(rng.choice(arms, n), categories=list(arms))
    return frame


def make_events(n_sends: int = 40, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    t0 = pd.Timestamp("2024-05-01 12:00", tz="UTC")
    rows = []
    for i in range(n_sends):
        t = t0 + pd.Timedelta(seconds=float(rng.uniform(0, 1800)))
        if i % 3 == 0:
            rows.append(("N501", f"MMS_{i}", t - pd.Timedelta(seconds=20)))
        rows.append(("N101", f"MMS_{i}", t))
        if i % 4:
            rows.append(("N102", f"MMS_{i}", t + pd.Timedelta(seconds=float(rng.exponential(120)))))
        else:
            rows.append(("E102", f"MMS_{i}", t + pd.Timedelta(seconds=60)))
    events = pd.DataFrame(rows, columns=[col.CODE, col.TRACKING_ID, col.TIMESTAMP])
    events[col.RECEIVED_AT] = events[col.TIMESTAMP] + pd.Timedelta(seconds=1)
    return events


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture
def ax():
    return plt.subplots()[1]


def legend_texts(ax) -> list[str]:
    legend = ax.get_legend()
    return [text.get_text() for text in legend.get_texts()] if legend else []


def hexes(colors) -> list[str]:
    return [to_hex(c).upper() for c in colors]


# --- palette ---------------------------------------------------------------------------------------
def test_palette_is_okabe_ito_and_outcomes_have_fixed_distinct_colours():
    assert set(plots.PALETTE) <= set(plots.OKABE_ITO.values())
    assert set(plots.OUTCOME_COLORS) == set(col.OUTCOMES)
    assert len(set(plots.OUTCOME_COLORS.values())) == len(col.OUTCOMES)
    assert plots.OUTCOME_COLORS[col.OUTCOME_DELIVERED] == plots.OKABE_ITO["bluish_green"]
    assert plots.OUTCOME_COLORS[col.OUTCOME_FAILED] == plots.OKABE_ITO["vermillion"]
    assert set(plots.FAMILY_COLORS) == set(plots.FAMILIES)


# --- delivery rates --------------------------------------------------------------------------------
def test_delivery_rates_bars_match_stats_with_error_bars_and_n(ax):
    frame = make_deliveries()
    returned = plots.plot_delivery_rates(frame, ax=ax)
    assert returned is ax
    expected = stats.delivery_rates(frame, by=(col.CARRIER, col.ARM))
    bars = [c for c in ax.containers if isinstance(c, BarContainer)]
    errors = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    assert len(bars) == len(ARMS) and len(errors) == len(ARMS)
    assert sum(len(c.patches) for c in bars) == len(expected) == len(CARRIERS) * len(ARMS)
    heights = sorted(p.get_height() for c in bars for p in c.patches)
    np.testing.assert_allclose(heights, sorted(expected[col.RATE]))
    # one vertical segment per bar, spanning the Wilson interval
    segments = np.concatenate([c.lines[2][0].get_segments() for c in errors])
    spans = sorted((round(s[0][1], 9), round(s[1][1], 9)) for s in segments)
    wilson = sorted(zip(expected[col.CI_LOW].round(9), expected[col.CI_HIGH].round(9), strict=True))
    assert spans == wilson
    # n in the tick labels, one count per arm in legend order; no text above the bars to overlap
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    sent = expected.set_index([col.CARRIER, col.ARM])[col.SENT]
    assert ticks == [f"{carrier}\nn=" + " / ".join(str(sent[(carrier, arm)]) for arm in ARMS)
                     for carrier in plot_data.order(frame[col.CARRIER], by_count=True)]
    assert len(ax.texts) == 0
    assert legend_texts(ax) == list(ARMS)  # category order of the arm column
    assert hexes(p.get_facecolor() for p in bars[0].patches) == [plots.PALETTE[0]] * len(CARRIERS)
    assert isinstance(ax.yaxis.get_major_formatter(), PercentFormatter)
    assert ax.get_xlabel() == col.CARRIER and "Wilson" in ax.get_ylabel()
    assert [t.get_text().split("\n")[0] for t in ax.get_xticklabels()] == plot_data.order(frame[col.CARRIER],
                                                                                            by_count=True)


def test_delivery_rates_of_many_groups_put_n_on_the_rotated_label_line(ax):
    frame = make_deliveries()
    frame[col.CARRIER] = [f"Carrier number {i % 6}" for i in range(len(frame))]  # crowded: rotated labels
    plots.plot_delivery_rates(frame, hue=None, ax=ax)
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    sent = stats.delivery_rates(frame, by=col.CARRIER).set_index(col.CARRIER)[col.SENT]
    assert ticks == [f"{group} · n={sent[group]}" for group in plot_data.order(frame[col.CARRIER], by_count=True)]
    assert all(t.get_rotation() == 30 for t in ax.get_xticklabels()) and len(ax.texts) == 0


def test_delivery_rates_without_arm_column_is_one_series(ax):
    frame = make_deliveries(arms=None)
    plots.plot_delivery_rates(frame, ax=ax)
    bars = [c for c in ax.containers if isinstance(c, BarContainer)]
    assert len(bars) == 1 and len(bars[0].patches) == len(CARRIERS)
    assert ax.get_legend() is None


def test_delivery_rates_hue_none_and_exclude_pending(ax):
    frame = make_deliveries()
    plots.plot_delivery_rates(frame, hue=None, exclude_pending=True, ax=ax)
    expected = stats.delivery_rates(frame, by=col.CARRIER, exclude_pending=True)
    sent = dict(zip(expected[col.CARRIER].astype(str), expected[col.SENT], strict=True))
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    assert ticks == [f"{carrier}\nn={sent[carrier]}" for carrier in plot_data.order(frame[col.CARRIER], by_count=True)]


def test_delivery_rates_draws_on_current_axes_when_ax_is_none():
    fig, ax = plt.subplots()
    returned = plots.plot_delivery_rates(make_deliveries(n=60))
    assert returned is ax and len(ax.patches) > 0


@pytest.mark.parametrize("kwargs, field", [({"by": "region"}, "by"), ({"hue": "ddm_timeout"}, "hue")])
def test_missing_by_or_hue_column_is_a_clear_error(ax, kwargs, field):
    missing = next(iter(kwargs.values()))
    with pytest.raises(SkycoreValidationError, match=rf"missing required column\(s\): {missing} ") as info:
        plots.plot_delivery_rates(make_deliveries(n=30), ax=ax, **kwargs)
    assert info.value.field == field


def test_missing_group_values_are_kept_as_their_own_bar(ax):
    frame = make_deliveries(n=90, arms=None)
    frame[col.CARRIER] = frame[col.CARRIER].astype(object)
    frame.loc[:9, col.CARRIER] = None
    plots.plot_delivery_rates(frame, ax=ax)
    assert f"{plot_data.MISSING_LABEL}\nn=10" in [t.get_text() for t in ax.get_xticklabels()]


# --- outcomes --------------------------------------------------------------------------------------
def test_outcomes_stack_shares_to_one_in_fixed_colours(ax):
    frame = make_deliveries()
    assert plots.plot_outcomes(frame, ax=ax) is ax
    bars = [c for c in ax.containers if isinstance(c, BarContainer)]
    present = [o for o in col.OUTCOMES if (frame[col.OUTCOME] == o).any()]
    assert legend_texts(ax) == present
    assert len(bars) == len(present)
    for container, outcome in zip(bars, present, strict=True):
        assert hexes(p.get_facecolor() for p in container.patches) == [plots.OUTCOME_COLORS[outcome]] * len(CARRIERS)
    totals = np.sum([[p.get_width() for p in c.patches] for c in bars], axis=0)
    np.testing.assert_allclose(totals, 1.0)
    # the largest carrier is on top, and tick labels carry n
    counts = frame[col.CARRIER].value_counts()
    top = ax.get_yticklabels()[0].get_text()
    assert top == f"{counts.idxmax()} (n={counts.max()})"
    assert isinstance(ax.xaxis.get_major_formatter(), PercentFormatter)


def test_outcomes_only_present_outcomes_drawn(ax):
    frame = pd.DataFrame(
        {col.CARRIER: ["A", "A", "B"], col.OUTCOME: [col.OUTCOME_DELIVERED, col.OUTCOME_PENDING, col.OUTCOME_PENDING]}
    )
    plots.plot_outcomes(frame, ax=ax)
    assert legend_texts(ax) == [col.OUTCOME_DELIVERED, col.OUTCOME_PENDING]
    widths = {c.get_label(): [p.get_width() for p in c.patches] for c in ax.containers}
    assert widths[col.OUTCOME_PENDING] == pytest.approx([0.5, 1.0])


# --- latency ---------------------------------------------------------------------------------------
def test_latency_default_is_the_share_delivered_with_failures_competing(ax):
    frame = make_deliveries()
    assert plots.plot_latency(frame, ax=ax) is ax
    assert len(ax.lines) == len(ARMS) and len(ax.collections) == len(ARMS)  # step + band per arm
    assert "share of sends delivered" in ax.get_ylabel()
    sizes = frame[col.ARM].value_counts()
    assert legend_texts(ax) == [f"{arm} (n={sizes[arm]})" for arm in ARMS]
    curves = stats.cumulative_incidence(frame, by=col.ARM, column=col.LATENCY_S).groupby(col.ARM, observed=True)
    for line, arm in zip(ax.lines, ARMS, strict=True):
        y = line.get_ydata()
        assert y[0] == 0 and np.all(np.diff(y) >= -1e-12)
        assert y[-1] == pytest.approx(curves.get_group(arm)[stats.SHARE_DELIVERED].iloc[-1])
    # failures compete: the curve ends below the KM curve that censors them
    km = plot_data.km_curves(frame, None, col.LATENCY_S, 0.95, None)[plot_data.Y].iloc[-1]
    cif = plot_data.cif_curves(frame, None, col.LATENCY_S, 0.95, None)[plot_data.Y].iloc[-1]
    assert cif < km


def test_latency_km_curves_per_arm_with_bands(ax):
    frame = make_deliveries()
    assert plots.plot_latency(frame, kind="km", ax=ax) is ax
    assert len(ax.lines) == len(ARMS) and len(ax.collections) == len(ARMS)  # step + band per arm
    sizes = frame[col.ARM].value_counts()
    assert legend_texts(ax) == [f"{arm} (n={sizes[arm]})" for arm in ARMS]
    assert hexes(line.get_color() for line in ax.lines) == list(plots.PALETTE[:2])
    y = ax.lines[0].get_ydata()
    assert y[0] == 0 and np.all(np.diff(y) >= -1e-12) and y[-1] <= 1
    assert ax.get_xscale() == "log" and "Kaplan" in ax.get_ylabel()
    assert isinstance(ax.yaxis.get_major_formatter(), PercentFormatter)


def test_km_curve_is_one_minus_scipy_km_on_censored_latencies():
    from scipy import stats as sps

    frame = make_deliveries(arms=None)
    tidy = plot_data.km_curves(frame, None, col.LATENCY_S, 0.95, None)
    censored = stats.censored_latencies(frame)
    observed = censored[stats.OBSERVED].to_numpy()
    duration = censored[stats.DURATION_S].to_numpy()
    km = sps.ecdf(sps.CensoredData(uncensored=duration[observed], right=duration[~observed]))
    np.testing.assert_allclose(tidy[plot_data.Y].to_numpy()[1:], 1 - km.sf.probabilities)
    assert (tidy[plot_data.Y_LOW] <= tidy[plot_data.Y] + 1e-12).all()
    assert (tidy[plot_data.Y] <= tidy[plot_data.Y_HIGH] + 1e-12).all()
    assert tidy[plot_data.N].iloc[0] == len(censored) < len(frame) + 1


def test_latency_ecdf_counts_delivered_only(ax):
    frame = make_deliveries(arms=None)
    plots.plot_latency(frame, kind="ecdf", ax=ax)
    delivered = int((frame[col.OUTCOME] == col.OUTCOME_DELIVERED).sum())
    assert legend_texts(ax) == [f"n={delivered}"]
    assert "delivered only" in ax.get_ylabel()
    assert ax.lines[0].get_ydata()[-1] == pytest.approx(1.0)


def test_latency_hist_log_bins_shares_sum_to_one(ax):
    frame = make_deliveries()
    plots.plot_latency(frame, kind="hist", bins=20, ax=ax)
    patches = ax.patches
    assert len(patches) == len(ARMS)
    tidy = plot_data.histograms(frame, col.ARM, col.LATENCY_S, 20)
    for arm in ARMS:
        assert tidy.loc[tidy[plot_data.HUE] == arm, plot_data.Y].sum() == pytest.approx(1.0)
    widths = np.log(tidy[plot_data.X_RIGHT] / tidy[plot_data.X])
    np.testing.assert_allclose(widths, widths.iloc[0])  # equal in log: log-spaced bins
    assert ax.get_xscale() == "log"


def test_latency_rejects_unknown_kind(ax):
    with pytest.raises(SkycoreValidationError, match="kind"):
        plots.plot_latency(make_deliveries(n=20), kind="violin", ax=ax)


def test_latency_without_deliveries_notes_it(ax):
    frame = make_deliveries(n=30, arms=None)
    frame = frame[frame[col.OUTCOME] != col.OUTCOME_DELIVERED]
    plots.plot_latency(frame, kind="ecdf", ax=ax)
    assert [t.get_text() for t in ax.texts] == ["no delivered sends"]


# --- handsets --------------------------------------------------------------------------------------
def test_handsets_top_n_then_other_then_unknown(ax):
    handsets = ["iPhone 15"] * 5 + ["Galaxy S24"] * 4 + ["Pixel 8"] * 3 + ["Moto G"] * 2 + ["Nokia"] + [None] * 2
    profiles = pd.DataFrame({col.TO: [str(i) for i in range(len(handsets))], col.HANDSET: handsets})
    assert plots.plot_handsets(profiles, top=2, ax=ax) is ax
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ["iPhone 15", "Galaxy S24", "other (3 handsets)", "unknown"]
    assert [p.get_width() for p in ax.patches] == [5, 4, 6, 2]
    grey, blue = plots.GREY.upper(), plots.OKABE_ITO["blue"]
    assert hexes(p.get_facecolor() for p in ax.patches) == [blue, blue, grey, grey]
    assert [t.get_text() for t in ax.texts] == ["5 (29%)", "4 (24%)", "6 (35%)", "2 (12%)"]


def test_handset_named_like_the_rest_bars_is_still_a_handset(ax):
    profiles = pd.DataFrame({col.HANDSET: ["unknown", "unknown", "X"]})
    plots.plot_handsets(profiles, ax=ax)
    assert hexes(p.get_facecolor() for p in ax.patches) == [plots.OKABE_ITO["blue"]] * 2


@pytest.mark.parametrize("top", [0, -1, 2.5, True, "3"])
def test_handsets_top_must_be_positive_int(ax, top):
    with pytest.raises(SkycoreValidationError, match="top"):
        plots.plot_handsets(pd.DataFrame({col.HANDSET: ["a"]}), top=top, ax=ax)


# --- timeline --------------------------------------------------------------------------------------
def test_timeline_lines_per_family_count_every_notification(ax):
    events = make_events()
    assert plots.plot_timeline(events, freq="5min", ax=ax) is ax
    assert legend_texts(ax) == [plots.FAMILY_SENT, plots.FAMILY_DELIVERED, plots.FAMILY_FAILED, plots.FAMILY_DDM]
    assert hexes(line.get_color() for line in ax.lines) == [plots.FAMILY_COLORS[f] for f in legend_texts(ax)]
    total = sum(line.get_ydata()[:-1].sum() for line in ax.lines)  # last point repeats the last bin
    assert total == len(events)
    assert ax.get_xlabel() == "time (UTC)"


def test_timeline_dedupes_retried_postbacks_and_stacks(ax):
    events = make_events()
    doubled = pd.concat([events, events.iloc[:10]], ignore_index=True)
    counts = plot_data.timeline_counts(doubled, "5min", dedupe=True)
    assert counts.to_numpy().sum() == len(events)
    assert plot_data.timeline_counts(doubled, "5min", dedupe=False).to_numpy().sum() == len(doubled)
    plots.plot_timeline(doubled, freq="5min", stacked=True, ax=ax)
    assert len(ax.collections) == 4 and not ax.lines


def test_timeline_uses_received_at_when_timestamp_missing():
    events = make_events(n_sends=5)
    events[col.TIMESTAMP] = events[col.TIMESTAMP].astype(object)
    events.loc[0, col.TIMESTAMP] = None
    assert plot_data.timeline_counts(events, "1h", dedupe=False).to_numpy().sum() == len(events)


def test_timeline_bad_freq_is_a_clear_error(ax):
    with pytest.raises(SkycoreValidationError, match="freq"):
        plots.plot_timeline(make_events(n_sends=3), freq="fortnightly-ish", ax=ax)


@given(st.lists(st.sampled_from(["N101", "N102", "E101", "E102", "N501", "E502", "N202", "N301", "E999", "n102"])))
def test_family_of_covers_every_code(codes):
    families = [plot_data.family_of(code) for code in codes]
    assert set(families) <= set(plots.FAMILIES)
    for code, family in zip(codes, families, strict=True):
        assert (family == plots.FAMILY_OTHER) == (code.upper() in {"N301", "E999"})


# --- empty input -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "plot, frame",
    [
        (plots.plot_delivery_rates, make_deliveries(n=0)),
        (plots.plot_outcomes, make_deliveries(n=0)),
        (plots.plot_latency, make_deliveries(n=0)),
        (plots.plot_handsets, pd.DataFrame(columns=list(col.PROFILE_COLUMNS))),
        (plots.plot_timeline, pd.DataFrame(columns=list(col.EVENT_COLUMNS))),
        (plots.plot_outcomes, pd.DataFrame()),  # no columns at all: still no exception
    ],
)
def test_empty_input_gives_labelled_axes_with_no_data_note(ax, plot, frame):
    assert plot(frame, ax=ax) is ax
    assert [t.get_text() for t in ax.texts] == ["no data"]
    assert ax.get_xlabel() and ax.get_ylabel()
    assert not ax.patches and not ax.lines
