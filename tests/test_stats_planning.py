"""plan_sample_size, power and Holm's adjustment: known values, round trips, simulations."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats as sps

from skycore_lab import stats
from skycore_lab.exceptions import SkycoreValidationError


# --- Holm ------------------------------------------------------------------------------------
def test_holm_textbook_example():
    # Holm (1979)-style worked example: sorted 0.01, 0.02, 0.03, 0.04 -> ×4, ×3, ×2, ×1, running max
    adjusted = stats.adjust_p_values([0.04, 0.01, 0.03, 0.02], "holm")
    assert adjusted == pytest.approx([0.06, 0.04, 0.06, 0.06])


def test_bonferroni_none_nan_and_cap():
    assert stats.adjust_p_values([0.01, 0.5], "bonferroni") == pytest.approx([0.02, 1.0])
    assert stats.adjust_p_values([0.01, 0.5], None) == pytest.approx([0.01, 0.5])
    assert stats.adjust_p_values([0.01, 0.5], "none") == pytest.approx([0.01, 0.5])
    # NaN (a comparison that could not be made) stays NaN and is not counted
    adjusted = stats.adjust_p_values([0.01, np.nan, 0.04], "holm")
    assert np.isnan(adjusted[1]) and adjusted[[0, 2]] == pytest.approx([0.02, 0.04])
    with pytest.raises(SkycoreValidationError) as info:
        stats.adjust_p_values([0.1], "fdr")
    assert info.value.field == "correction"


@given(st.lists(st.floats(0, 1), min_size=1, max_size=12))
def test_holm_properties(p_values):
    p = np.array(p_values)
    holm = stats.adjust_p_values(p, "holm")
    bonferroni = stats.adjust_p_values(p, "bonferroni")
    assert (holm >= p - 1e-15).all() and (holm <= 1).all()
    assert (holm <= bonferroni + 1e-15).all()  # never less powerful than Bonferroni
    order = np.argsort(p, kind="stable")
    assert (np.diff(holm[order]) >= -1e-15).all()  # order preserved


def test_holm_controls_family_wise_error_by_simulation():
    rng = np.random.default_rng(1)
    null_p = rng.uniform(size=(5000, 4))  # 4 true nulls per family
    adjusted = np.apply_along_axis(stats.adjust_p_values, 1, null_p)
    fwer = (adjusted < 0.05).any(axis=1).mean()
    raw = (null_p < 0.05).any(axis=1).mean()
    assert 0.035 <= fwer <= 0.06, fwer
    assert raw > 0.15  # uncorrected, 4 comparisons flag ~19 %


# --- sample size ------------------------------------------------------------------------------
def _fleiss(p1: float, p2: float, alpha: float = 0.05, power: float = 0.8) -> float:
    """Textbook per-arm n for the two-sided pooled z-test (no continuity correction)."""
    z_a, z_b = sps.norm.ppf(1 - alpha / 2), sps.norm.ppf(power)
    pooled = (p1 + p2) / 2
    root = z_a * np.sqrt(2 * pooled * (1 - pooled)) + z_b * np.sqrt(p1 * (1 - p1) + p2 * (1 - p2))
    return (root / (p1 - p2)) ** 2


def test_known_sample_size():
    # 0.90 -> 0.85, two-sided α = 0.05, 80 % power: 683-686 by the usual formulas
    assert stats.plan_sample_size(0.90, 0.05) == pytest.approx(_fleiss(0.90, 0.85), abs=2)
    assert 680 <= stats.plan_sample_size(0.90, 0.05) <= 690


def test_the_harder_side_is_planned_for():
    # 0.2 ± 0.1: going to 0.3 (more variance) needs more sends than going to 0.1
    assert _fleiss(0.2, 0.3) > _fleiss(0.2, 0.1) + 50
    assert stats.plan_sample_size(0.2, 0.1) == pytest.approx(_fleiss(0.2, 0.3), abs=2)
    assert stats.plan_sample_size(0.2, 0.1) == stats.plan_sample_size(0.8, 0.1)  # mirror image
    # near 1 only the lower side exists: 0.98 + 0.03 > 1
    assert stats.plan_sample_size(0.98, 0.03) == pytest.approx(_fleiss(0.98, 0.95), abs=2)


@pytest.mark.parametrize(
    ("baseline", "effect", "alpha", "target", "arms", "correction"),
    [
        (0.90, 0.05, 0.05, 0.8, 2, "holm"),
        (0.95, 0.02, 0.05, 0.9, 3, "holm"),
        (0.70, 0.10, 0.01, 0.8, 4, "bonferroni"),
        (0.50, 0.03, 0.05, 0.8, 3, None),
    ],
)
def test_power_round_trips(baseline, effect, alpha, target, arms, correction):
    n = stats.plan_sample_size(baseline, effect, alpha=alpha, power=target, arms=arms, correction=correction)
    assert stats.power(n, baseline, effect, alpha=alpha, arms=arms, correction=correction) >= target
    assert stats.power(n - 1, baseline, effect, alpha=alpha, arms=arms, correction=correction) < target


def test_more_arms_need_more_sends_under_correction_only():
    two = stats.plan_sample_size(0.9, 0.05, arms=2)
    four = stats.plan_sample_size(0.9, 0.05, arms=4)
    assert four > two
    assert stats.plan_sample_size(0.9, 0.05, arms=4, correction=None) == two
    assert four == stats.plan_sample_size(0.9, 0.05, alpha=0.05 / 3, arms=2, correction=None)


def test_power_grows_with_n():
    powers = [stats.power(n, 0.9, 0.05) for n in (50, 200, 686, 2000)]
    assert powers == sorted(powers) and powers[0] < 0.3 and powers[-1] > 0.99


@pytest.mark.slow
def test_planned_n_reaches_the_power_in_simulation():
    """At the planned n, the two-sided pooled z-test detects 0.90 -> 0.85 in ≈ 80 % of experiments."""
    n = stats.plan_sample_size(0.90, 0.05)
    rng = np.random.default_rng(12)
    x_control, x_arm = rng.binomial(n, 0.90, 4000), rng.binomial(n, 0.85, 4000)
    pooled = (x_control + x_arm) / (2 * n)
    z = (x_arm - x_control) / n / np.sqrt(pooled * (1 - pooled) * 2 / n)
    detected = (2 * sps.norm.sf(np.abs(z)) < 0.05).mean()
    assert 0.77 <= detected <= 0.84, detected


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"baseline_rate": 1.2}, "baseline_rate"),
        ({"min_detectable_effect": 0}, "min_detectable_effect"),
        ({"min_detectable_effect": "5 points"}, "min_detectable_effect"),
        ({"alpha": 0}, "alpha"),
        ({"power": 1}, "power"),
        ({"arms": 1}, "arms"),
        ({"arms": 2.5}, "arms"),
        ({"correction": "sidak"}, "correction"),
    ],
)
def test_plan_rejects_bad_arguments(kwargs, field):
    arguments = {"baseline_rate": 0.9, "min_detectable_effect": 0.05} | kwargs
    with pytest.raises(SkycoreValidationError) as info:
        stats.plan_sample_size(**arguments)
    assert info.value.field == field


def test_power_rejects_bad_n_and_infeasible_effect():
    with pytest.raises(SkycoreValidationError) as info:
        stats.power(0, 0.9, 0.05)
    assert info.value.field == "n_per_arm"
    with pytest.raises(SkycoreValidationError, match="leaves"):
        stats.power(100, 0.5, 0.9)
