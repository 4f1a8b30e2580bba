"""plan_sample_size, power and Holm's adjustment: known values, round trips, simulations."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats as sps
from scipy.optimize import brentq

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


# --- sequential planning, detectable effect, the experiment's verdict ------------------------------
def _msprt_power_at(n: int, p1: float, p2: float, alpha: float, tau: float = 0.05) -> float:
    """Power of the normal-mixture SPRT read once at n per arm, from its likelihood ratio alone.

    Λ(d) = sqrt(W / (W + τ²)) · exp(τ² d² / (2 W (W + τ²))) (Johari et al., the mixture over a
    N(0, τ²) effect); it rejects where Λ ≥ 1/α. The boundary is found numerically, not from the
    closed form the code uses, and the difference is taken as N(p2 − p1, W).
    """
    w = (p1 * (1 - p1) + p2 * (1 - p2)) / n
    tau2 = tau**2

    def log_lambda_excess(d):
        return 0.5 * np.log(w / (w + tau2)) + tau2 * d**2 / (2 * w * (w + tau2)) - np.log(1 / alpha)

    boundary = brentq(log_lambda_excess, 0.0, 1.0)
    delta, se = abs(p2 - p1), np.sqrt(w)
    return sps.norm.sf((boundary - delta) / se) + sps.norm.cdf((-boundary - delta) / se)


def test_sequential_plans_need_more_sends_and_round_trip():
    fixed = stats.plan_sample_size(0.90, 0.05)
    sequential = stats.plan_sample_size(0.90, 0.05, sequential=True)
    # the smallest n whose worse side (0.85 or 0.95) reaches 80 % power, by the reference above
    worst = [min(_msprt_power_at(n, 0.90, p2, 0.05) for p2 in (0.85, 0.95)) for n in (sequential - 1, sequential)]
    assert worst[0] < 0.8 <= worst[1]
    assert sequential > fixed  # monitoring all along is paid for in sends
    assert stats.power(sequential, 0.90, 0.05, sequential=True) >= 0.8
    assert stats.power(sequential - 1, 0.90, 0.05, sequential=True) < 0.8
    assert stats.power(fixed, 0.90, 0.05, sequential=True) < 0.8
    # more comparisons in the family: each planned at a smaller alpha
    assert stats.plan_sample_size(0.9, 0.05, arms=3, metrics=3) == stats.plan_sample_size(
        0.9, 0.05, alpha=0.05 / 6, correction=None)


@pytest.mark.slow
def test_planned_sequential_n_reaches_the_power_when_monitoring_all_along():
    """Looking after every 20 sends per arm with the always-valid test, up to the planned n."""
    from skycore_lab.stats.sequential import msprt_p_value, shrunk_variance

    n = stats.plan_sample_size(0.90, 0.05, sequential=True)
    rng = np.random.default_rng(13)
    step = 20
    looks = np.arange(step, n + 1, step)
    x_c = rng.binomial(1, 0.90, (2000, looks[-1])).cumsum(axis=1)[:, looks - 1]
    x_a = rng.binomial(1, 0.85, (2000, looks[-1])).cumsum(axis=1)[:, looks - 1]
    diff = (x_a - x_c) / looks
    p = msprt_p_value(diff, shrunk_variance(x_c, looks, x_a, looks))
    detected = (p < 0.05).any(axis=1).mean()
    assert detected >= 0.80, detected
    assert detected <= 0.95  # not wildly generous either


def test_minimum_detectable_effect_inverts_the_plan():
    for baseline, n, kwargs in ((0.9, 686, {}), (0.5, 400, {"arms": 3}), (0.9, 1500, {"sequential": True})):
        effect = stats.minimum_detectable_effect(n, baseline, **kwargs)
        assert stats.power(n, baseline, effect, **kwargs) == pytest.approx(0.8, abs=1e-6)
        assert abs(stats.plan_sample_size(baseline, effect, **kwargs) - n) <= 1
    assert stats.minimum_detectable_effect(686, 0.9) == pytest.approx(0.05, abs=1e-3)
    assert np.isnan(stats.minimum_detectable_effect(2, 0.5))  # two sends detect nothing


def test_sample_check_uses_the_control_rate_as_it_is_and_says_so():
    check = stats.check_sample_size(983, 1000, 1000, 0.05, arms=2, metrics=1)
    assert check.baseline_rate == pytest.approx(0.983)  # never clamped to 0.99 − effect
    assert check.directions == pytest.approx((0.933,))  # 0.983 + 0.05 leaves [0, 1]
    assert check.needed_per_arm == stats.plan_sample_size(0.983, 0.05)
    text = check.text()
    assert "98.3%" in text and "93.3%" in text and f"{check.needed_per_arm:,}" in text and "large enough" in text
    assert "smallest change it can detect" in text
    whole = stats.check_sample_size(500, 500, 500, 0.05)
    assert whole.baseline_rate == pytest.approx(500.5 / 501) and "moved half a send" in whole.text()
    impossible = stats.check_sample_size(5, 10, 10, 0.6)
    assert impossible.needed_per_arm is None and "no plan" in impossible.text()
    sequential = stats.check_sample_size(900, 1000, 1000, 0.05, sequential=True)
    assert sequential.needed_per_arm == stats.plan_sample_size(0.9, 0.05, sequential=True)
    assert "always-valid" in sequential.text()
