"""The decision an experiment's result supports, for the top of a report (HTML) and its summary sheet (Excel).

:func:`verdict_of` reads an :class:`~skycore_lab.ExperimentResult` through its
public parts — ``primary`` (the delivery-rate comparisons), ``srm``,
``sample_size`` and ``latency_cost`` — and says, in this order:

1. **the decision**, one sentence: a sample ratio mismatch first (no
   decision until its cause is found); else the best treatment arm that
   delivers significantly more than the control (after the family's
   adjustment), at what latency cost; else that none does, and whether the
   sample could have shown the planned effect (too small: *inconclusive*);
2. **the primary metric**, one line per treatment arm;
3. **the sample ratio** check;
4. **power**: sends per arm needed for the planned effect, against the
   smallest arm;
5. **the minimum detectable effect** at the current size;
6. **the latency cost**, one line per arm: the mean time to delivery within
   the horizon and the share delivered within the deadline, against the
   control.

Two tables with human labels ("95 % CI", "p (adjusted)") follow: the
primary comparisons and the latency cost. Every number is the result's;
nothing is recomputed here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from .. import columns as col

__all__ = ["Verdict", "verdict_of", "TONES", "VERDICT_COLUMNS"]

#: ``Verdict.tone``: a treatment wins; keep the control; not decidable yet (too few sends,
#: inconclusive); a sample ratio mismatch.
TONES = ("go", "keep", "open", "warning")
#: Columns of the verdict's tables, human labels.
VERDICT_COLUMNS: tuple[str, ...] = ("arm", "metric", "arm value", "control value", "difference", "95 % CI",
                                    "p (adjusted)", "sends (arm / control)", "verdict")


def _metric_words(result) -> dict[str, str]:
    """What each metric of the result measures, in words (with its horizon and deadline)."""
    return {"delivery_rate": "delivery rate",
            "latency": f"mean time to delivery within {result.horizon_s:g} s",
            "delivered_within": f"share delivered within {result.within_s:g} s"}


@dataclass(frozen=True)
class Verdict:
    """What a report says first (see the module docstring).

    Attributes
    ----------
    headline : str
        The decision in one sentence.
    tone : str
        One of :data:`TONES`.
    parts : tuple of (label, text)
        "Primary metric", "Sample ratio", "Power", "Minimum detectable
        effect", "Latency cost" (one text per line of each).
    primary, latency : DataFrame
        :data:`VERDICT_COLUMNS`, texts ready to show: the primary
        comparisons, and the latency metrics' comparisons.
    """

    headline: str
    tone: str
    parts: tuple[tuple[str, str], ...]
    primary: pd.DataFrame
    latency: pd.DataFrame

    def rows(self) -> list[tuple[str, str]]:
        """``(item, value)`` rows for a summary sheet: the decision, then every part."""
        return [("decision", self.headline), *self.parts]


def _points(value: float) -> str:
    return f"{value * 100:+.1f} points"


def _is_share(metric: str) -> bool:
    return metric != "latency"


def _value(metric: str, value: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:.1%}" if _is_share(metric) else f"{value:.0f} s"


def _difference(metric: str, value: float) -> str:
    if value is None or math.isnan(value):
        return "—"
    return _points(value) if _is_share(metric) else f"{value:+.0f} s"


def _interval(metric: str, low: float, high: float) -> str:
    if any(v is None or math.isnan(v) for v in (low, high)):
        return "—"
    if _is_share(metric):
        return f"{low * 100:+.1f} to {high * 100:+.1f} points"
    return f"{low:+.0f} to {high:+.0f} s"


def _p(value: float) -> str:
    if value is None or math.isnan(value):
        return "—"
    return "< 0.001" if value < 0.001 else f"{value:.3g}"


def _p_words(value: float) -> str:
    text = _p(value)
    return f"p {text}" if text.startswith("<") else f"p = {text}"


def _says(row) -> str:
    if pd.isna(row.p_adjusted):
        return "not yet comparable"
    if not bool(row.significant):
        return "no difference shown"
    if row.metric == "latency":
        return "slower" if row.diff > 0 else "faster"
    return "more" if row.diff > 0 else "fewer"


def _table(comparisons: pd.DataFrame, words: dict[str, str]) -> pd.DataFrame:
    rows = []
    for row in comparisons.itertuples(index=False):
        rows.append((str(getattr(row, col.ARM)), words.get(row.metric, str(row.metric)),
                     _value(row.metric, row.arm_estimate), _value(row.metric, row.control_estimate),
                     _difference(row.metric, row.diff), _interval(row.metric, row.ci_low, row.ci_high),
                     _p(row.p_adjusted), f"{int(row.n_arm):,} / {int(row.n_control):,}", _says(row)))
    return pd.DataFrame(rows, columns=list(VERDICT_COLUMNS))


def _line(row, control: str, level: str, words: dict[str, str]) -> str:
    what = words.get(row.metric, str(row.metric))
    if pd.isna(row.p_adjusted):
        return f"{getattr(row, col.ARM)} vs {control}, {what}: not yet comparable (too few sends past their window)."
    verdict = "a real difference" if bool(row.significant) else "no difference shown"
    return (f"{getattr(row, col.ARM)} vs {control}, {what}: {_value(row.metric, row.arm_estimate)} vs "
            f"{_value(row.metric, row.control_estimate)}, difference {_difference(row.metric, row.diff)} "
            f"({level} CI {_interval(row.metric, row.ci_low, row.ci_high)}); {_p_words(row.p_adjusted)} adjusted — "
            f"{verdict}.")


def _cost_of(latency_cost: pd.DataFrame, arm: str) -> str:
    """The latency cost of ``arm`` in words, from its latency comparisons."""
    mine = latency_cost[latency_cost[col.ARM].astype(str) == arm]
    parts = []
    for row in mine.itertuples(index=False):
        if pd.isna(row.diff):
            continue
        if row.metric == "latency":
            longer = "longer" if row.diff > 0 else "shorter"
            parts.append(f"a mean time to delivery {abs(row.diff):.0f} s {longer}")
        else:
            parts.append(f"{_points(row.diff)} delivered within the deadline")
    return " and ".join(parts) if parts else "not yet measurable"


def _headline(result, primary: pd.DataFrame, level: str) -> tuple[str, str]:
    control = result.control
    if result.srm.flagged:
        return ("No decision: the arms did not send the shares the design allocates (sample ratio mismatch). "
                "Find the cause before trusting any comparison."), "warning"
    comparable = primary[primary[col.P_ADJUSTED].notna()] if len(primary) else primary
    if comparable.empty:
        return (f"Not yet decidable: no treatment arm can be compared with {control} yet (too few sends past "
                "their outcome window)."), "open"
    better = comparable[comparable[col.SIGNIFICANT].astype(bool) & (comparable[col.DIFF] > 0)]
    if len(better):
        best = better.sort_values(col.DIFF, ascending=False).iloc[0]
        arm = str(best[col.ARM])
        return (f"{arm} delivers more than {control}: {best[col.ARM_ESTIMATE]:.1%} vs {best[col.CONTROL_ESTIMATE]:.1%}, "
                f"{_points(best[col.DIFF])} ({level} CI {_interval('delivery_rate', best[col.CI_LOW], best[col.CI_HIGH])}), "
                f"significant after adjustment; latency: {_cost_of(result.latency_cost, arm)}."), "go"
    worse = comparable[comparable[col.SIGNIFICANT].astype(bool) & (comparable[col.DIFF] < 0)]
    if len(worse):
        arms = ", ".join(worse[col.ARM].astype(str))
        return f"Keep {control}: {arms} deliver{'s' if len(worse) == 1 else ''} significantly less.", "keep"
    check = result.sample_size
    if check.enough is False:
        detect = (f"; at this size only a change of {check.detectable_effect * 100:.1f} points or more could be seen"
                  if math.isfinite(check.detectable_effect) else "")
        return (f"Inconclusive: no arm delivers significantly more than {control}, but the sample is too small for "
                f"the planned {check.min_effect * 100:g}-point change ({check.needed_per_arm:,} sends per arm needed, "
                f"{check.smallest_arm:,} in the smallest){detect}."), "open"
    return (f"Keep {control}: no arm delivers significantly more, and the sample was large enough to show a "
            f"{check.min_effect * 100:g}-point change."), "keep"


def _power_parts(check) -> list[tuple[str, str]]:
    if check.needed_per_arm is None:
        return [("Power", f"No plan: {check.note}"),
                ("Minimum detectable effect", f"not computed (smallest arm {check.smallest_arm:,} sends)")]
    enough = "large enough" if check.enough else "too small"
    power = (f"{check.power:.0%} power to detect a {check.min_effect * 100:g}-point change from "
             f"{check.baseline_note} needs {check.needed_per_arm:,} sends per arm; the smallest arm has "
             f"{check.smallest_arm:,}: the sample is {enough}.")
    if math.isfinite(check.detectable_effect):
        mde = (f"{check.detectable_effect * 100:.1f} points: the smallest change in delivery rate detectable with "
               f"{check.power:.0%} power at {check.smallest_arm:,} sends per arm.")
    else:
        mde = f"none: no change fitting in [0, 1] is detectable at {check.smallest_arm:,} sends per arm."
    return [("Power", power), ("Minimum detectable effect", mde)]


def verdict_of(result) -> Verdict:
    """The :class:`Verdict` of an :class:`~skycore_lab.ExperimentResult` (see the module docstring)."""
    level = f"{1 - result.alpha:.0%}"
    words = _metric_words(result)
    primary = result.primary
    latency_cost = result.latency_cost
    headline, tone = _headline(result, primary, level)
    parts: list[tuple[str, str]] = []
    for row in primary.itertuples(index=False):
        parts.append(("Primary metric (delivery rate)", _line(row, result.control, level, words)))
    if not len(primary):
        parts.append(("Primary metric (delivery rate)", "no comparison: fewer than two arms with sends"))
    parts.append(("Sample ratio", result.srm.text()))
    parts.extend(_power_parts(result.sample_size))
    for row in latency_cost.itertuples(index=False):
        parts.append(("Latency cost", _line(row, result.control, level, words)))
    return Verdict(headline=headline, tone=tone, parts=tuple(parts), primary=_table(primary, words),
                   latency=_table(latency_cost, words))
