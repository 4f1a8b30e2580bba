"""compare_arms(strata=...): Mantel–Haenszel rate difference, Sato's interval, the CMH test.

References that do not share the code: the Pearson χ² of scipy for one
stratum (the CMH statistic is (N − 1)/N of it), Sato's variance written out
from its published formula in the test, and simulations of countries with
different delivery rates and sizes (plain numpy) for coverage and size.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from skycore_lab import columns as col
from skycore_lab import stats
from skycore_lab.stats.proportions import mantel_haenszel


def _frame(cells: dict[tuple[str, str], tuple[int, int]]) -> pd.DataFrame:
    """{(arm, country): (delivered, failed)} as a deliveries frame."""
    rows = []
    for (arm, country), (delivered, failed) in cells.items():
        rows += [(arm, country, "delivered")] * delivered + [(arm, country, "failed")] * failed
    return pd.DataFrame(rows, columns=[col.ARM, col.COUNTRY, col.OUTCOME])


def test_one_stratum_cmh_is_pearson_times_n_minus_1_over_n():
    frame = _frame({("control", "US"): (70, 30), ("ddm", "US"): (82, 18)})
    row = stats.compare_arms(frame, strata=col.COUNTRY).iloc[0]
    chi2 = sps.chi2_contingency([[82, 18], [70, 30]], correction=False).statistic * 199 / 200
    assert row[stats.TEST] == stats.TEST_CMH
    assert row[stats.P_VALUE] == pytest.approx(sps.chi2.sf(chi2, 1))
    assert row[stats.DIFF] == pytest.approx(0.12)  # one stratum: the crude difference


def test_mh_difference_and_sato_variance_by_their_published_formulas():
    x_c, n_c = np.array([40, 15, 5]), np.array([50, 30, 10])
    x_a, n_a = np.array([45, 20, 4]), np.array([52, 28, 6])
    result = mantel_haenszel(x_c, n_c, x_a, n_a, 0.95)
    n = n_a + n_c
    weight = n_a * n_c / n
    diff = (weight * (x_a / n_a - x_c / n_c)).sum() / weight.sum()
    p = ((n_a**2 * x_c - n_c**2 * x_a + n_a * n_c * (n_c - n_a) / 2) / n**2).sum()
    q = ((x_a * (n_c - x_c) + x_c * (n_a - x_a)) / (2 * n)).sum()
    variance = (diff * p + q) / weight.sum() ** 2
    assert result["diff"] == pytest.approx(diff) and result["variance"] == pytest.approx(variance)
    half = sps.norm.ppf(0.975) * np.sqrt(variance)
    assert (result["ci_low"], result["ci_high"]) == pytest.approx((diff - half, diff + half))
    # CMH statistic, from the hypergeometric moments
    m1, m0 = x_a + x_c, n - x_a - x_c
    excess = (x_a - n_a * m1 / n).sum()
    spread = (n_a * n_c * m1 * m0 / (n**2 * (n - 1))).sum()
    assert result["p_value"] == pytest.approx(sps.chi2.sf(excess**2 / spread, 1))


def test_strata_adjust_for_an_imbalanced_mix_that_fools_the_crude_difference():
    # The DDM arm got more UK numbers (which deliver less); within each country it is 5 points better.
    frame = _frame({("control", "US"): (900, 100), ("control", "UK"): (60, 40),
                    ("ddm", "US"): (475, 25), ("ddm", "UK"): (390, 210)})  # fmt: skip
    crude = stats.compare_arms(frame).iloc[0]
    adjusted = stats.compare_arms(frame, strata=col.COUNTRY).iloc[0]
    assert crude[stats.DIFF] < 0  # the mix makes the better arm look worse
    assert adjusted[stats.DIFF] == pytest.approx(0.05, abs=0.005)
    assert adjusted[col.CI_LOW] > 0 and adjusted[stats.SIGNIFICANT]
    seq = stats.compare_arms(frame, strata=col.COUNTRY, sequential=True).iloc[0]
    assert seq[stats.TEST] == stats.TEST_MSPRT and seq[stats.DIFF] == adjusted[stats.DIFF]


def test_missing_stratum_values_form_their_own_stratum_and_lonely_strata_drop_out():
    frame = _frame({("control", "US"): (50, 50), ("ddm", "US"): (60, 40), ("ddm", "MX"): (3, 0)})
    frame.loc[frame.index[:10], col.COUNTRY] = None
    row = stats.compare_arms(frame, strata=col.COUNTRY).iloc[0]
    assert np.isfinite(row[stats.DIFF]) and row[stats.N_ARM] == 103


@pytest.mark.slow
def test_sato_interval_covers_and_cmh_test_has_its_size():
    """Countries with rates 0.95, 0.85 and 0.6 and unequal arm mixes; common difference 0 or 0.04."""
    rng = np.random.default_rng(44)
    base = np.array([0.95, 0.85, 0.60])
    covered, rejected = [], []
    for run in range(1500):
        delta = 0.04 if run % 2 else 0.0
        n_c = rng.multinomial(600, [0.6, 0.3, 0.1])
        n_a = rng.multinomial(600, [0.4, 0.3, 0.3])
        x_c, x_a = rng.binomial(n_c, base), rng.binomial(n_a, base + delta)
        result = mantel_haenszel(x_c, n_c, x_a, n_a, 0.95)
        if delta:
            covered.append(result["ci_low"] <= delta <= result["ci_high"])
        else:
            rejected.append(result["p_value"] < 0.05)
    assert 0.93 <= np.mean(covered) <= 0.97, np.mean(covered)
    assert 0.03 <= np.mean(rejected) <= 0.07, np.mean(rejected)
