"""Kaplan–Meier quantiles with confidence bounds, and a vectorised KM
quantile for bootstrapping.

The estimate itself is scipy's (:func:`scipy.stats.ecdf` on
:class:`scipy.stats.CensoredData`); what scipy does not offer is the
*quantile's* confidence interval, which we get by inverting the pointwise
interval of the curve (Brookmeyer & Crowley, 1982), and a KM quantile fast
enough to evaluate on a thousand bootstrap resamples at once.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
from scipy import stats

# Float noise in 1 - prod(...) must not move a quantile past an exact tie
# (e.g. F(t) = 0.5 computed as 0.49999999999999994).
_TOLERANCE = 1e-12


def _first_reaching(times: np.ndarray, curve: np.ndarray, q: float, not_reached: float) -> float:
    """Smallest time at which a non-decreasing step curve reaches q."""
    reached = curve >= q - _TOLERANCE
    if not reached.any():
        return not_reached
    return float(times[np.argmax(reached)])


def km_quantiles(
    duration: np.ndarray,
    observed: np.ndarray,
    quantiles: Sequence[float],
    confidence: float = 0.95,
) -> list[tuple[float, float, float]]:
    """Kaplan–Meier quantiles of a right-censored sample, with confidence bounds.

    Parameters
    ----------
    duration : array of float
        Time of each observation (event or censoring), non-negative.
    observed : array of bool
        True where the event (delivery) was seen, False where censored.
    quantiles : sequence of float
        Probabilities q in (0, 1) of the event-time distribution.
    confidence : float
        Confidence level of the bounds.

    Returns
    -------
    list of (estimate, low, high)
        One triple per q. ``estimate`` is the smallest t with F(t) ≥ q, where
        F = 1 − S is the KM estimate of the distribution function; NaN when the
        curve never reaches q (more than 1 − q of the sample is censored before
        it). ``low``/``high`` invert the pointwise log-log interval of F
        (Brookmeyer–Crowley): ``low`` is the first time the upper band reaches
        q (NaN if never), ``high`` the first time the lower band reaches q
        (``inf`` if never: the data cannot rule out an arbitrarily late
        quantile). An empty sample gives NaN everywhere.
    """
    duration = np.asarray(duration, dtype=float)
    observed = np.asarray(observed, dtype=bool)
    nan3 = (np.nan, np.nan, np.nan)
    if duration.size == 0:
        return [nan3 for _ in quantiles]
    if not observed.any():
        # No event at all: F is 0 everywhere; nothing bounds the quantile above.
        return [(np.nan, np.nan, np.inf) for _ in quantiles]
    sample = stats.CensoredData(uncensored=duration[observed], right=duration[~observed])
    cdf = stats.ecdf(sample).cdf
    times, curve = cdf.quantiles, cdf.probabilities
    with warnings.catch_warnings():
        # log-log is undefined where F is 0 or 1; handled just below.
        warnings.filterwarnings("ignore", message="The confidence interval is undefined", category=RuntimeWarning)
        band = cdf.confidence_interval(confidence_level=confidence, method="log-log")
    lower, upper = band.low.probabilities.copy(), band.high.probabilities.copy()
    # Where the KM curve is exactly 0 (censorings before the first event) or 1
    # (after the last event), the interval collapses onto the estimate.
    flat = np.isnan(lower) & ((curve <= 0) | (curve >= 1))
    lower[flat] = curve[flat]
    flat = np.isnan(upper) & ((curve <= 0) | (curve >= 1))
    upper[flat] = curve[flat]
    result = []
    for q in quantiles:
        estimate = _first_reaching(times, curve, q, np.nan)
        low = _first_reaching(times, np.nan_to_num(upper, nan=-np.inf), q, np.nan)
        high = _first_reaching(times, np.nan_to_num(lower, nan=-np.inf), q, np.inf)
        result.append((estimate, low, high))
    return result


def sort_for_km(duration: np.ndarray, observed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Order a censored sample by time, events before censorings at equal times.

    At a tied time the censored observations are still at risk for the
    events, the usual Kaplan–Meier convention (and scipy's).
    """
    duration = np.asarray(duration, dtype=float)
    observed = np.asarray(observed, dtype=bool)
    order = np.lexsort((~observed, duration))
    return duration[order], observed[order]


def km_quantile_of_resamples(
    sorted_duration: np.ndarray, sorted_observed: np.ndarray, resampled_index: np.ndarray, q: float
) -> np.ndarray:
    """KM quantile of many resamples at once.

    Parameters
    ----------
    sorted_duration, sorted_observed : array
        The sample, ordered by :func:`sort_for_km`.
    resampled_index : array of int, shape (..., n)
        Each row is one resample, as positions into the sorted sample.
    q : float
        Probability of the quantile.

    Returns
    -------
    array of float, shape (...)
        The KM quantile of each resample (smallest t with F(t) ≥ q), ``inf``
        when a resample's curve never reaches q.

    Notes
    -----
    Sorting the positions puts each resample in time order; the observation at
    sorted position j then has n − j observations at risk, and tied events
    multiply out to the same survival as scipy's grouped computation by the
    end of the tie, so the first time F reaches q is the same.
    """
    index = np.sort(np.asarray(resampled_index, dtype=np.intp), axis=-1)
    n = index.shape[-1]
    if n == 0:
        return np.full(index.shape[:-1], np.nan)
    events = sorted_observed[index]
    at_risk = np.arange(n, 0, -1, dtype=float)
    survival = np.cumprod(1.0 - events / at_risk, axis=-1)
    reached = (1.0 - survival) >= q - _TOLERANCE
    first = np.argmax(reached, axis=-1)
    times = np.take_along_axis(sorted_duration[index], first[..., None], axis=-1)[..., 0]
    return np.where(reached.any(axis=-1), times, np.inf)
