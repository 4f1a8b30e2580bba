"""Multiple-comparison adjustment and sample-size planning for delivery-rate
experiments (re-exported by :mod:`skycore_lab.stats`)."""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from .inputs import check_level
from ..exceptions import SkycoreValidationError

CORRECTIONS: tuple[str, ...] = ("holm", "bonferroni", "none")


def check_correction(correction: str | None) -> str:
    method = "none" if correction is None else str(correction).lower()
    if method not in CORRECTIONS:
        raise SkycoreValidationError("correction", f"expected one of {list(CORRECTIONS)} or None, got {correction!r}")
    return method


def adjust_p_values(p_values, correction: str | None = "holm") -> np.ndarray:
    """Adjust p-values for multiple comparisons (family-wise error rate).

    Parameters
    ----------
    p_values : array-like of float
        Raw p-values; NaN entries (comparisons that could not be made) stay
        NaN and do not count towards the number of tests.
    correction : {"holm", "bonferroni", "none", None}
        Holm's step-down procedure (uniformly more powerful than Bonferroni,
        valid under any dependence between the tests), Bonferroni, or none.
        scipy offers only Benjamini–Hochberg (``false_discovery_control``),
        which controls the false discovery rate, not the family-wise rate, so
        Holm is written here: sort ascending, multiply ``p_(i)`` by
        ``m − i + 1``, make monotone with a running maximum, cap at 1.

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
    order = np.argsort(values, kind="stable")
    stepped = np.maximum.accumulate(values[order] * (m - np.arange(m)))
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(1.0, stepped)
    p[finite] = adjusted
    return p


# --- sample size --------------------------------------------------------------------
def _check_plan(baseline_rate, min_detectable_effect, alpha, arms, correction) -> tuple[list[float], float]:
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
    method = check_correction(correction)
    # Holm's first (smallest) p-value faces alpha / (arms − 1): its worst case is Bonferroni's.
    per_test_alpha = alpha / (arms - 1) if method != "none" else alpha
    targets = [rate for rate in (baseline - effect, baseline + effect) if 0.0 <= rate <= 1.0]
    if not targets:
        raise SkycoreValidationError(
            "min_detectable_effect", f"baseline {baseline} ± {effect} leaves [0, 1] on both sides"
        )
    return targets, per_test_alpha


def _power_two_proportions(n: float, p1: float, p2: float, alpha: float) -> float:
    """Power of the two-sided pooled z-test of p1 = p2 with n sends per arm."""
    z = stats.norm.ppf(1.0 - alpha / 2.0)
    delta = abs(p1 - p2)
    pooled = (p1 + p2) / 2.0
    se0 = math.sqrt(2.0 * pooled * (1.0 - pooled) / n)
    se1 = math.sqrt((p1 * (1.0 - p1) + p2 * (1.0 - p2)) / n)
    if se1 == 0.0:
        return 1.0
    return float(stats.norm.cdf((delta - z * se0) / se1) + stats.norm.cdf((-delta - z * se0) / se1))


def power(
    n_per_arm,
    baseline_rate: float,
    min_detectable_effect: float,
    alpha: float = 0.05,
    arms: int = 2,
    correction: str | None = "holm",
) -> float:
    """Power of a delivery-rate comparison with ``n_per_arm`` sends per arm.

    The inverse of :func:`plan_sample_size`; same parameters and
    conventions. With both directions feasible the smaller power (the rate
    nearer 0.5, which has more variance) is returned.

    Returns
    -------
    float
        Probability that the two-sided pooled z-test flags the difference.
    """
    targets, per_test_alpha = _check_plan(baseline_rate, min_detectable_effect, alpha, arms, correction)
    try:
        n = float(n_per_arm)
    except (TypeError, ValueError):
        n = math.nan
    if not n >= 1:
        raise SkycoreValidationError("n_per_arm", f"must be a number of sends ≥ 1, got {n_per_arm!r}")
    return min(_power_two_proportions(n, float(baseline_rate), rate, per_test_alpha) for rate in targets)


def plan_sample_size(
    baseline_rate: float,
    min_detectable_effect: float,
    alpha: float = 0.05,
    power: float = 0.8,  # the documented name; shadows the function only in here
    arms: int = 2,
    correction: str | None = "holm",
) -> int:
    """Sends needed per arm to detect a change in delivery rate.

    For a two-sided pooled z-test of two proportions (what
    :func:`~skycore_lab.stats.compare_arms` runs at these sizes), from the
    usual normal-approximation formula, then stepped to the smallest n whose
    :func:`power` reaches the target, so the two functions round-trip.

    Parameters
    ----------
    baseline_rate : float
        Control delivery rate, in (0, 1).
    min_detectable_effect : float
        Absolute change in rate points: 0.90 → 0.85 is 0.05. Both directions
        are considered and the harder one (more sends) is planned for.
    alpha : float
        Family-wise significance level.
    power : float
        Wanted probability of detecting the effect.
    arms : int
        Number of arms, control included: ``arms − 1`` comparisons.
    correction : {"holm", "bonferroni", "none", None}
        With a correction the comparisons are planned at ``alpha / (arms − 1)``
        (Holm's worst case, its first step, equals Bonferroni).

    Returns
    -------
    int
        Sends per arm.
    """
    wanted = check_level(power, "power")
    targets, per_test_alpha = _check_plan(baseline_rate, min_detectable_effect, alpha, arms, correction)
    p1 = float(baseline_rate)
    z_alpha = stats.norm.ppf(1.0 - per_test_alpha / 2.0)
    z_beta = stats.norm.ppf(wanted)
    needed = 1
    for p2 in targets:
        pooled = (p1 + p2) / 2.0
        root = z_alpha * math.sqrt(2.0 * pooled * (1.0 - pooled)) + z_beta * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))
        n = max(1, math.ceil((root / (p1 - p2)) ** 2))
        while _power_two_proportions(n, p1, p2, per_test_alpha) < wanted:
            n += 1
        while n > 1 and _power_two_proportions(n - 1, p1, p2, per_test_alpha) >= wanted:
            n -= 1
        needed = max(needed, n)
    return needed

