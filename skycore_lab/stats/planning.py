"""Multiple-comparison adjustment and sample-size planning for delivery-rate
experiments (re-exported by :mod:`skycore_lab.stats`): :func:`adjust_p_values`,
:func:`plan_sample_size`, :func:`power`, :func:`minimum_detectable_effect`,
and the verdict an experiment's summary gives (:func:`check_sample_size`)."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from .inputs import check_level
from .sequential import DEFAULT_MIXTURE_SD
from ..exceptions import SkycoreValidationError

CORRECTIONS: tuple[str, ...] = ("holm", "bonferroni", "bh", "none")
#: Corrections that control the family-wise error rate (``"bh"`` controls the false discovery rate).
FWER_CORRECTIONS: tuple[str, ...] = ("holm", "bonferroni")


def check_correction(correction: str | None) -> str:
    method = "none" if correction is None else str(correction).lower()
    if method not in CORRECTIONS:
        raise SkycoreValidationError("correction", f"expected one of {list(CORRECTIONS)} or None, got {correction!r}")
    return method


def adjust_p_values(p_values, correction: str | None = "holm") -> np.ndarray:
    """Adjust p-values for multiple comparisons.

    Parameters
    ----------
    p_values : array-like of float
        Raw p-values; NaN entries (comparisons that could not be made) stay
        NaN and do not count towards the number of tests.
    correction : {"holm", "bonferroni", "bh", "none", None}
        Holm's step-down procedure (family-wise error rate; uniformly more
        powerful than Bonferroni, valid under any dependence between the
        tests), Bonferroni, Benjamini–Hochberg (``scipy.stats.
        false_discovery_control``: the false discovery rate, for screens of
        many arms where a few false leads are acceptable), or none. scipy
        offers only BH, so Holm is written here: sort ascending, multiply
        ``p_(i)`` by ``m − i + 1``, make monotone with a running maximum,
        cap at 1.

    Returns
    -------
    ndarray of float
        Adjusted p-values, in the input order.
    """
    method = check_correction(correction)
    p = np.array(p_values, dtype=float, ndmin=1)
    finite = ~np.isnan(p)
    m = int(finite.sum())
    if method == "none" or m == 0:
        return p
    values = p[finite]
    if method == "bonferroni":
        p[finite] = np.minimum(1.0, values * m)
        return p
    if method == "bh":
        p[finite] = stats.false_discovery_control(values, method="bh")
        return p
    order = np.argsort(values, kind="stable")
    stepped = np.maximum.accumulate(values[order] * (m - np.arange(m)))
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(1.0, stepped)
    p[finite] = adjusted
    return p


# --- sample size --------------------------------------------------------------------
def _check_plan(baseline_rate, min_detectable_effect, alpha, arms, correction, metrics=1) -> tuple[list[float], float]:
    """Validate; return the feasible alternative rates and the per-test alpha."""
    baseline = check_level(baseline_rate, "baseline_rate")
    alpha = check_level(alpha, "alpha")
    try:
        effect = float(min_detectable_effect)
    except (TypeError, ValueError):
        effect = math.nan
    if not 0.0 < effect < 1.0:
        raise SkycoreValidationError(
            "min_detectable_effect", f"must be an absolute difference in rate points in (0, 1), got {min_detectable_effect!r}"
        )
    if isinstance(arms, bool) or not isinstance(arms, (int, np.integer)) or arms < 2:
        raise SkycoreValidationError("arms", f"must be an integer ≥ 2 (control included), got {arms!r}")
    if isinstance(metrics, bool) or not isinstance(metrics, (int, np.integer)) or metrics < 1:
        raise SkycoreValidationError("metrics", f"must be an integer ≥ 1, got {metrics!r}")
    method = check_correction(correction)
    # Holm's first (smallest) p-value faces alpha / m: its worst case is Bonferroni's
    # (BH's first step too), with m the comparisons in the family.
    comparisons = (arms - 1) * metrics
    per_test_alpha = alpha / comparisons if method != "none" else alpha
    targets = [rate for rate in (baseline - effect, baseline + effect) if 0.0 <= rate <= 1.0]
    if not targets:
        raise SkycoreValidationError(
            "min_detectable_effect", f"baseline {baseline} ± {effect} leaves [0, 1] on both sides"
        )
    return targets, per_test_alpha


def _check_mixture_sd(mixture_sd) -> float:
    if isinstance(mixture_sd, bool) or not isinstance(mixture_sd, (int, float)) or not 0 < mixture_sd < math.inf:
        raise SkycoreValidationError("mixture_sd", f"must be a positive number, got {mixture_sd!r}")
    return float(mixture_sd)


def _phi(x: float) -> float:
    """Standard normal distribution function (``math.erfc``: planning calls it thousands of times)."""
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def _power_two_proportions(n: float, p1: float, p2: float, alpha: float, sequential: bool = False,
                           mixture_sd: float = DEFAULT_MIXTURE_SD) -> float:
    """Power of the two-sided test of p1 = p2 with n sends per arm.

    Fixed horizon: the pooled z-test. Sequential: the mixture SPRT
    (:mod:`.sequential`) read at n — it rejects when |p̂2 − p̂1| reaches the
    confidence sequence's half-width h(W), W the variance of the difference
    — which bounds the power of looking all along from below (an earlier
    crossing only adds rejections).
    """
    delta = abs(p1 - p2)
    se1 = math.sqrt((p1 * (1.0 - p1) + p2 * (1.0 - p2)) / n)
    if se1 == 0.0:
        return 1.0
    if sequential:
        tau2 = mixture_sd**2
        w = se1**2
        half = math.sqrt(w * (w + tau2) / tau2 * math.log((w + tau2) / (w * alpha**2)))
        return _phi((delta - half) / se1) + _phi((-delta - half) / se1)
    z = _z_two_sided(alpha)
    pooled = (p1 + p2) / 2.0
    se0 = math.sqrt(2.0 * pooled * (1.0 - pooled) / n)
    return _phi((delta - z * se0) / se1) + _phi((-delta - z * se0) / se1)


@functools.lru_cache(maxsize=256)
def _z_two_sided(alpha: float) -> float:
    return float(stats.norm.ppf(1.0 - alpha / 2.0))


def power(
    n_per_arm,
    baseline_rate: float,
    min_detectable_effect: float,
    alpha: float = 0.05,
    arms: int = 2,
    correction: str | None = "holm",
    *,
    metrics: int = 1,
    sequential: bool = False,
    mixture_sd: float = DEFAULT_MIXTURE_SD,
) -> float:
    """Power of a delivery-rate comparison with ``n_per_arm`` sends per arm.

    The inverse of :func:`plan_sample_size`; same parameters and
    conventions. With both directions feasible the smaller power (the rate
    nearer 0.5, which has more variance) is returned.

    Returns
    -------
    float
        Probability that the two-sided test flags the difference (the
        pooled z-test; with ``sequential``, the always-valid mixture SPRT at
        the last look, a lower bound for looking all along).
    """
    targets, per_test_alpha = _check_plan(baseline_rate, min_detectable_effect, alpha, arms, correction, metrics)
    mixture_sd = _check_mixture_sd(mixture_sd)
    try:
        n = float(n_per_arm)
    except (TypeError, ValueError):
        n = math.nan
    if not n >= 1:
        raise SkycoreValidationError("n_per_arm", f"must be a number of sends ≥ 1, got {n_per_arm!r}")
    return min(
        _power_two_proportions(n, float(baseline_rate), rate, per_test_alpha, bool(sequential), mixture_sd)
        for rate in targets
    )


_power = power  # for the functions below, whose ``power`` argument shadows it


def _smallest_n(p1: float, p2: float, alpha: float, wanted: float, sequential: bool, mixture_sd: float) -> int:
    """Smallest n per arm whose power reaches ``wanted`` (power grows with n)."""
    z_alpha = stats.norm.ppf(1.0 - alpha / 2.0)
    z_beta = stats.norm.ppf(wanted)
    pooled = (p1 + p2) / 2.0
    root = z_alpha * math.sqrt(2.0 * pooled * (1.0 - pooled)) + z_beta * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))
    n = max(1, math.ceil((root / (p1 - p2)) ** 2))  # the textbook formula: exact start for the fixed test
    if sequential:  # needs more: double until enough, then bisect
        low = n
        while _power_two_proportions(n, p1, p2, alpha, True, mixture_sd) < wanted:
            low, n = n, n * 2
        high = n
        while high - low > 1:
            middle = (low + high) // 2
            if _power_two_proportions(middle, p1, p2, alpha, True, mixture_sd) >= wanted:
                high = middle
            else:
                low = middle
        n = high
    while _power_two_proportions(n, p1, p2, alpha, sequential, mixture_sd) < wanted:
        n += 1
    while n > 1 and _power_two_proportions(n - 1, p1, p2, alpha, sequential, mixture_sd) >= wanted:
        n -= 1
    return n


def plan_sample_size(
    baseline_rate: float,
    min_detectable_effect: float,
    alpha: float = 0.05,
    power: float = 0.8,  # the documented name; shadows the function only in here
    arms: int = 2,
    correction: str | None = "holm",
    *,
    metrics: int = 1,
    sequential: bool = False,
    mixture_sd: float = DEFAULT_MIXTURE_SD,
) -> int:
    """Sends needed per arm to detect a change in delivery rate.

    For a two-sided pooled z-test of two proportions (what
    :func:`~skycore_lab.stats.compare_arms` runs at these sizes), from the
    usual normal-approximation formula, then stepped to the smallest n whose
    :func:`power` reaches the target, so the two functions round-trip.

    With ``sequential=True`` the plan is for the always-valid mixture SPRT
    (``compare_arms(..., sequential=True)``), which may be read after every
    send. Its price is the inflation of n, found here by formula: the
    smallest n at which the test, read once at n, reaches the power — its
    boundary is the confidence sequence's half-width
    ``sqrt(W (W + τ²) / τ² · log((W + τ²) / (W α²)))`` instead of
    ``z_{1−α/2} √W``. Reading it earlier too can only add detections, so
    this n is a safe (slightly generous) plan; the simulation in
    ``tests/test_stats_planning.py`` checks that monitoring all along
    reaches the power. For rates near 0.9, a 5-point effect, τ = 0.05 and
    α = 0.05 the inflation is about 1.9× (686 → about 1,300 per arm); it
    grows slowly as α shrinks.

    Parameters
    ----------
    baseline_rate : float
        Control delivery rate, in (0, 1). Used as given: no clamping.
    min_detectable_effect : float
        Absolute change in rate points: 0.90 → 0.85 is 0.05. Both directions
        are considered and the harder one (more sends) is planned for; a
        direction that would leave [0, 1] is not (from 0.98, a 5-point
        change can only be 0.98 → 0.93).
    alpha : float
        Family-wise significance level.
    power : float
        Wanted probability of detecting the effect.
    arms : int
        Number of arms, control included: ``arms − 1`` comparisons per metric.
    correction : {"holm", "bonferroni", "bh", "none", None}
        With a correction the comparisons are planned at
        ``alpha / ((arms − 1) · metrics)`` (Holm's worst case, its first
        step, equals Bonferroni; so does BH's).
    metrics : int
        Metrics sharing the family of comparisons: an experiment whose
        summary adjusts over its 3 metrics (delivery rate, latency,
        delivered within) plans with ``metrics=3``.
    sequential : bool
        Plan for the always-valid test (see above).
    mixture_sd : float
        τ of the sequential test's normal mixture, rate points.

    Returns
    -------
    int
        Sends per arm.
    """
    wanted = check_level(power, "power")
    targets, per_test_alpha = _check_plan(baseline_rate, min_detectable_effect, alpha, arms, correction, metrics)
    mixture_sd = _check_mixture_sd(mixture_sd)
    p1 = float(baseline_rate)
    return max(_smallest_n(p1, p2, per_test_alpha, wanted, bool(sequential), mixture_sd) for p2 in targets)


def minimum_detectable_effect(
    n_per_arm,
    baseline_rate: float,
    alpha: float = 0.05,
    power: float = 0.8,  # the documented name; shadows the function only in here
    arms: int = 2,
    correction: str | None = "holm",
    *,
    metrics: int = 1,
    sequential: bool = False,
    mixture_sd: float = DEFAULT_MIXTURE_SD,
) -> float:
    """Smallest change in delivery rate detectable with ``n_per_arm`` sends per arm.

    The effect e (absolute rate points) at which :func:`power` reaches
    ``power``: same conventions, so ``plan_sample_size(baseline, e, ...)``
    gives back about ``n_per_arm``. Found by bisection (power grows with e).

    Returns
    -------
    float
        The effect, or NaN when even the largest change [0, 1] allows
        (down to 0 or up to 1) is not detectable with that many sends.
    """
    baseline = check_level(baseline_rate, "baseline_rate")
    check_level(power, "power")
    try:
        n = float(n_per_arm)
    except (TypeError, ValueError):
        n = math.nan
    if not n >= 1:
        raise SkycoreValidationError("n_per_arm", f"must be a number of sends ≥ 1, got {n_per_arm!r}")

    def achieved(effect: float) -> float:
        return _power(n, baseline, effect, alpha, arms, correction, metrics=metrics, sequential=sequential,
                      mixture_sd=mixture_sd)  # fmt: skip

    largest = max(baseline, 1.0 - baseline) * (1.0 - 1e-9)
    if achieved(largest) < power:
        return math.nan
    low, high = 0.0, largest
    for _ in range(40):  # 2⁻⁴⁰ of the range: far below any effect worth planning for
        middle = (low + high) / 2.0
        if middle <= 0.0 or achieved(middle) < power:
            low = middle
        else:
            high = middle
    return high


@dataclass(frozen=True)
class SampleSizeCheck:
    """Whether an experiment has enough sends for its primary metric, and what it could detect.

    What :meth:`skycore_lab.ExperimentResult.summary` says about the sample;
    every number it rests on is here, so a report can say it again.

    Attributes
    ----------
    baseline_rate : float or None
        The control rate the plan starts from (None: nothing to plan from).
    baseline_note : str
        Where that baseline came from, in words ("the control's 98.3 %
        (983 of 1,000)"); says so when it had to be moved off 0 or 1.
    min_effect : float
        The change in rate points planned for.
    directions : tuple of float
        The alternative rates planned for (one when the other leaves [0, 1]).
    power : float
        The power wanted.
    alpha, per_test_alpha : float
        The family's level and the level each comparison is planned at.
    comparisons : int
        Comparisons in the family.
    sequential : bool
        Planned for the always-valid test.
    needed_per_arm : int or None
        Sends per arm needed (None when no plan was possible).
    smallest_arm : int
        Sends in the smallest arm.
    enough : bool or None
        ``smallest_arm >= needed_per_arm``.
    detectable_effect : float
        Smallest change detectable at ``smallest_arm`` sends per arm with
        ``power`` (NaN when none is, or no plan was possible).
    note : str
        Why no plan was possible, when it was not.
    """

    baseline_rate: float | None
    baseline_note: str
    min_effect: float
    directions: tuple[float, ...]
    power: float
    alpha: float
    per_test_alpha: float
    comparisons: int
    sequential: bool
    needed_per_arm: int | None
    smallest_arm: int
    enough: bool | None
    detectable_effect: float
    note: str = ""

    def text(self) -> str:
        """One paragraph for a summary."""
        if self.needed_per_arm is None:
            return f"Sample: the smallest arm has {self.smallest_arm:,} sends; {self.note}"
        test = "the always-valid (sequential) test" if self.sequential else "the fixed-horizon test"
        family = (f"α = {self.alpha:g}/{self.comparisons} per comparison ({self.comparisons} in the family)"
                  if self.per_test_alpha < self.alpha else f"α = {self.alpha:g}")
        towards = " or ".join(f"{rate:.1%}" for rate in self.directions)
        enough = "large enough" if self.enough else "too small"
        mde = (f"; with {self.smallest_arm:,} per arm the smallest change it can detect is "
               f"{self.detectable_effect * 100:.1f} points" if math.isfinite(self.detectable_effect)
               else f"; with {self.smallest_arm:,} per arm no change fitting in [0, 1] is detectable")
        return (f"Sample: detecting a {self.min_effect * 100:g}-point change from {self.baseline_note} (to {towards}) "
                f"with {self.power:.0%} power by {test} at {family} needs {self.needed_per_arm:,} sends per arm; "
                f"the smallest arm has {self.smallest_arm:,}, so the sample is {enough}{mde}.")


def check_sample_size(
    control_delivered: int,
    control_sent: int,
    smallest_arm: int,
    min_effect: float,
    alpha: float = 0.05,
    power: float = 0.8,  # the documented name; shadows the function only in here
    arms: int = 2,
    correction: str | None = "holm",
    *,
    metrics: int = 1,
    sequential: bool = False,
    mixture_sd: float = DEFAULT_MIXTURE_SD,
) -> SampleSizeCheck:
    """The sample-size verdict of an experiment: needed n from the control's rate, and the detectable effect.

    The baseline is the control's observed rate, used as it is. Only a rate
    of exactly 0 or 1 (no plan can start there) is moved inside, to
    (x + ½) / (n + 1), and the note says so. A direction of change that
    would leave [0, 1] is not planned for, and the text names the
    direction(s) used. Nothing is clamped silently.
    """
    method = check_correction(correction)
    comparisons = max(1, (int(arms) - 1) * int(metrics))
    per_test = alpha / comparisons if method != "none" else alpha
    base = {"min_effect": float(min_effect), "power": float(power), "alpha": float(alpha), "per_test_alpha": per_test,
            "comparisons": comparisons, "sequential": bool(sequential), "smallest_arm": int(smallest_arm)}  # fmt: skip
    if control_sent <= 0:
        return SampleSizeCheck(baseline_rate=None, baseline_note="", directions=(), needed_per_arm=None, enough=None,
                               detectable_effect=math.nan, note="the control arm has no counted send to plan from.",
                               **base)  # fmt: skip
    rate = control_delivered / control_sent
    note = f"the control's {rate:.1%} ({control_delivered:,} of {control_sent:,})"
    baseline = rate
    if rate in (0.0, 1.0):
        baseline = (control_delivered + 0.5) / (control_sent + 1.0)
        note = (f"{baseline:.2%}, the control's {rate:.0%} ({control_delivered:,} of {control_sent:,}) moved half a "
                "send inside (0, 1)")
    options = {"alpha": alpha, "arms": arms, "correction": correction, "metrics": metrics,
               "sequential": sequential, "mixture_sd": mixture_sd}  # fmt: skip
    try:
        targets, _ = _check_plan(baseline, min_effect, alpha, arms, correction, metrics)
        needed = plan_sample_size(baseline, min_effect, power=power, **options)
    except SkycoreValidationError as exc:
        return SampleSizeCheck(baseline_rate=baseline, baseline_note=note, directions=(), needed_per_arm=None,
                               enough=None, detectable_effect=math.nan,
                               note=f"no plan from {note} for a {min_effect * 100:g}-point change: {exc.message}.",
                               **base)  # fmt: skip
    detectable = (minimum_detectable_effect(smallest_arm, baseline, power=power, **options)
                  if smallest_arm >= 1 else math.nan)  # fmt: skip
    return SampleSizeCheck(baseline_rate=baseline, baseline_note=note, directions=tuple(targets),
                           needed_per_arm=needed, enough=smallest_arm >= needed, detectable_effect=detectable,
                           **base)  # fmt: skip
