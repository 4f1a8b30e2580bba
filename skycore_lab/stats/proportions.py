"""Two proportions: intervals and tests of p_arm − p_control, plain and stratified.

* :func:`newcombe_interval` — Newcombe's hybrid score interval (from two
  Wilson intervals), which keeps near-nominal coverage for rates near 0 or 1.
* :func:`two_proportion_test` — the pooled two-proportion z-test, or
  ``scipy.stats.fisher_exact`` when an expected cell of the 2×2 table is
  below 5.
* :func:`mantel_haenszel` — the Mantel–Haenszel common rate difference
  across strata (Cochran weights n_a n_c / N), its variance by Sato (1989),
  consistent whether the strata are few and large or many and small, and
  the Cochran–Mantel–Haenszel test (no continuity correction).

Sato's variance, with per-stratum counts x (delivered) and n (sends) of the
arm (a) and the control (c), N = n_a + n_c and W = Σ n_a n_c / N::

    P = Σ (n_a² x_c − n_c² x_a + n_a n_c (n_c − n_a) / 2) / N²
    Q = Σ (x_a (n_c − x_c) + x_c (n_a − x_a)) / (2 N)
    Var = (RD · P + Q) / W²
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from . import inputs as _in

__all__ = ["newcombe_interval", "two_proportion_test", "mantel_haenszel", "TEST_Z", "TEST_FISHER", "TEST_CMH"]

TEST_Z = "z_test"
TEST_FISHER = "fisher_exact"
TEST_CMH = "cmh"

# Fisher's exact test replaces the z-test when an expected 2×2 cell is below this.
_MIN_EXPECTED = 5.0


def newcombe_interval(x_c: int, n_c: int, x_a: int, n_a: int, confidence: float) -> tuple[float, float]:
    """Newcombe's hybrid score interval for p_arm − p_control, from two Wilson intervals."""
    p_c, p_a = x_c / n_c, x_a / n_a
    low_c, high_c = _in.wilson(x_c, n_c, confidence)
    low_a, high_a = _in.wilson(x_a, n_a, confidence)
    diff = p_a - p_c
    return (
        diff - math.sqrt((p_a - low_a) ** 2 + (high_c - p_c) ** 2),
        diff + math.sqrt((high_a - p_a) ** 2 + (p_c - low_c) ** 2),
    )


def two_proportion_test(x_c: int, n_c: int, x_a: int, n_a: int) -> tuple[float, str]:
    """(two-sided p-value, test name): pooled z-test, or Fisher's exact test for small expected counts.

    Equal rates of 0 or 1 in both arms (nothing varies) give p = 1.
    """
    table = np.array([[x_a, n_a - x_a], [x_c, n_c - x_c]], dtype=float)
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / table.sum()
    if expected.min() < _MIN_EXPECTED:
        return float(stats.fisher_exact(table.astype(int), alternative="two-sided").pvalue), TEST_FISHER
    pooled = (x_a + x_c) / (n_a + n_c)
    z = (x_a / n_a - x_c / n_c) / math.sqrt(pooled * (1.0 - pooled) * (1.0 / n_a + 1.0 / n_c))
    return float(2.0 * stats.norm.sf(abs(z))), TEST_Z


def mantel_haenszel(x_c, n_c, x_a, n_a, confidence: float) -> dict[str, float]:
    """Mantel–Haenszel rate difference (arm − control) over strata, Sato's interval, CMH test.

    Parameters
    ----------
    x_c, n_c, x_a, n_a : array-like of int
        Per stratum: delivered and sends of the control and of the arm.
        Strata where either arm has no send carry no information and get
        weight 0.
    confidence : float
        Level of the interval.

    Returns
    -------
    dict
        ``diff``, ``variance`` (Sato), ``ci_low``, ``ci_high`` (Wald
        interval on Sato's variance), ``p_value`` (Cochran–Mantel–Haenszel
        χ², 1 df, no continuity correction; 1 when no stratum varies),
        ``strata`` (strata with sends in both arms).
    """
    x_c, n_c, x_a, n_a = (np.asarray(v, dtype=float) for v in (x_c, n_c, x_a, n_a))
    both = (n_c > 0) & (n_a > 0)
    x_c, n_c, x_a, n_a = x_c[both], n_c[both], x_a[both], n_a[both]
    nan = {"diff": math.nan, "variance": math.nan, "ci_low": math.nan, "ci_high": math.nan, "p_value": math.nan}
    if not both.any():
        return nan | {"strata": 0}
    total = n_a + n_c
    weight = (n_a * n_c / total).sum()
    diff = float(((x_a * n_c - x_c * n_a) / total).sum() / weight)
    p = ((n_a**2 * x_c - n_c**2 * x_a + n_a * n_c * (n_c - n_a) / 2.0) / total**2).sum()
    q = ((x_a * (n_c - x_c) + x_c * (n_a - x_a)) / (2.0 * total)).sum()
    variance = max(float((diff * p + q) / weight**2), 0.0)
    z = stats.norm.ppf(0.5 + confidence / 2.0)
    half = z * math.sqrt(variance)
    # CMH: observed − expected deliveries of the arm, over the hypergeometric variance.
    delivered, failed = x_a + x_c, total - x_a - x_c
    informative = total > 1
    excess = (x_a - n_a * delivered / total)[informative].sum()
    spread = (n_a * n_c * delivered * failed / (total**2 * (total - 1.0)))[informative].sum()
    if spread > 0:
        p_value = float(stats.chi2.sf(excess**2 / spread, 1))
    else:
        p_value = 1.0 if abs(excess) < 1e-12 else 0.0
    return {"diff": diff, "variance": variance, "ci_low": max(diff - half, -1.0), "ci_high": min(diff + half, 1.0),
            "p_value": p_value, "strata": int(both.sum())}  # fmt: skip
