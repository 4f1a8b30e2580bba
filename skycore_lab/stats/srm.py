"""Sample-ratio mismatch: did the arms send as many messages as the design says they should?

Randomisation deals the numbers to the arms in fixed shares. When the sends
that actually went out (manifest rows with a tracking id) are far from those
shares — the API refused one arm's requests more often, a bug skipped a
batch — the arms no longer hold comparable sends, and every comparison is
suspect however small its p-value. :func:`sample_ratio_mismatch` tests the
observed counts against the allocation with Pearson's χ² goodness-of-fit
test (what ``scipy.stats.chisquare`` computes) and flags p < 0.001, the usual threshold
for this check: strict enough that a balanced experiment is flagged in
0.1 % of runs, while a 1,000 vs 800 split (p ≈ 2e-6) always is.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import special

from .. import columns as col
from ..columns import ASSIGNED, EXPECTED, OBSERVED, REFUSAL_CODES, REFUSED, SRM_COLUMNS
from ..exceptions import SkycoreValidationError
from . import inputs as _in
from .compare import arm_labels
from .results import TestResult

__all__ = ["SampleRatioCheck", "sample_ratio_mismatch", "SRM_THRESHOLD"]

#: p-value below which a sample ratio mismatch is flagged.
SRM_THRESHOLD = 0.001


@dataclass(frozen=True, repr=False, eq=False)
class SampleRatioCheck(TestResult):
    """The sample-ratio-mismatch check of an experiment.

    ``check.p_value`` and ``check["p_value"]`` both give the number (also
    ``statistic``, ``flagged``, ``threshold``, ``table``).

    Attributes
    ----------
    table : DataFrame
        One row per arm (:data:`skycore_lab.columns.SRM_COLUMNS`):
        ``arm``; ``assigned`` (manifest rows: numbers dealt to the arm);
        ``expected`` (sends that should have gone out: all sends out × the
        arm's share of the allocation); ``observed`` (sends that went out,
        with a tracking id); ``refused`` (assigned but refused by the API,
        no tracking id); ``refusal_codes`` (e.g. ``"E110×3, E104×1"``).
    statistic : float
        Pearson's χ² of observed against expected (k − 1 degrees of freedom).
    p_value : float
        Its p-value (NaN with fewer than two arms or no send).
    flagged : bool
        ``p_value < threshold``.
    threshold : float
        :data:`SRM_THRESHOLD`.
    """

    table: pd.DataFrame
    statistic: float
    p_value: float
    flagged: bool
    threshold: float = SRM_THRESHOLD

    _title = "sample ratio mismatch (χ² goodness of fit of sends per arm)"
    _KEYS = ("p_value", "statistic", "flagged", "threshold", "table")

    def __getitem__(self, key: str):
        if key not in self._KEYS:
            raise KeyError(key)
        return getattr(self, key)

    @property
    def summary(self) -> pd.DataFrame:
        """The per-arm table."""
        return self.table

    def _details(self) -> list[tuple[str, str]]:
        return [("test_statistic", f"{self.statistic:.4g}"), ("p_value", f"{self.p_value:.4g}"),
                ("flagged", str(self.flagged))]  # fmt: skip

    def text(self) -> str:
        """One line: the mismatch in words, or that the arms match their allocation."""
        parts = [f"{getattr(r, col.ARM)} {int(getattr(r, OBSERVED)):,} (expected {getattr(r, EXPECTED):,.0f})"
                 for r in self.table.itertuples(index=False)]  # fmt: skip
        refusals = [f"{getattr(r, col.ARM)} {int(getattr(r, REFUSED)):,}"
                    + (f" ({getattr(r, REFUSAL_CODES)})" if getattr(r, REFUSAL_CODES) else "")
                    for r in self.table.itertuples(index=False) if getattr(r, REFUSED) > 0]  # fmt: skip
        refused = f"; API refusals: {', '.join(refusals)}" if refusals else ""
        if self.flagged:
            return (f"WARNING — sample ratio mismatch: the arms sent {', '.join(parts)} (χ² p = {self.p_value:.2g} "
                    f"< {self.threshold:g}){refused}. The arms no longer hold comparable sends: find the cause "
                    "before trusting any comparison below.")
        if math.isnan(self.p_value):
            return f"Sends per arm: {', '.join(parts)}{refused}."
        return f"Sends per arm match the allocation (χ² p = {self.p_value:.2g}): {', '.join(parts)}{refused}."


def sample_ratio_mismatch(
    manifest: pd.DataFrame, arm: str = col.ARM, allocation: Mapping[str, float] | None = None,
    threshold: float = SRM_THRESHOLD,
) -> SampleRatioCheck:  # fmt: skip
    """Test the sends that went out per arm against the design's allocation.

    Parameters
    ----------
    manifest : DataFrame
        One row per assigned number (``DdmExperiment.run``'s manifest):
        ``arm``, ``tracking_id`` (missing when the API refused the send),
        optionally ``error_code``. A deliveries frame works too (every row
        then went out).
    arm : str
        The arm column.
    allocation : mapping of arm → share, optional
        The design's shares (normalised to sum to 1). Default: each arm's
        share of the manifest's rows — the allocation as dealt, which a
        ``DdmExperiment`` makes equal (± 1 per stratum); for a frame of
        sends only, pass the design's shares (with rows only for sends
        that went out, the default would compare the arms with themselves).
    threshold : float
        Flag below this p-value.

    Returns
    -------
    SampleRatioCheck
    """
    frame = _in.check_frame(manifest)
    _in.require(frame, [arm], "to count the sends of each arm")
    threshold = _in.check_level(threshold, "threshold")
    codes, labels = arm_labels(frame[arm], arm)
    if isinstance(frame[arm].dtype, pd.CategoricalDtype):  # an arm with no row at all still counts (as 0)
        every = [str(category) for category in frame[arm].cat.categories]
        codes = np.append(np.array([every.index(label) for label in labels], dtype=np.int64), -1)[codes]
        labels = every
    if allocation is not None:
        allocation = {str(name): share for name, share in allocation.items()}
        labels = labels + sorted(set(allocation) - set(labels))
    k = len(labels)
    went_out = frame[col.TRACKING_ID].notna().to_numpy() if col.TRACKING_ID in frame.columns else np.ones(len(frame), bool)
    known = codes >= 0
    assigned = np.bincount(codes[known], minlength=k)
    observed = np.bincount(codes[known & went_out], minlength=k)
    if allocation is not None:
        shares = np.array([float(allocation.get(label, 0.0)) for label in labels])
        if (shares < 0).any() or not shares.sum() > 0:
            raise SkycoreValidationError("allocation", f"shares must be ≥ 0 and not all 0, got {dict(allocation)}")
    else:
        shares = assigned.astype(float)
    shares = shares / shares.sum() if shares.sum() > 0 else np.full(k, np.nan)
    expected = observed.sum() * shares
    refused = assigned - observed
    reasons = [""] * k
    refusing = known & ~went_out
    if refusing.any() and col.ERROR_CODE in frame.columns:
        error, names = pd.factorize(frame[col.ERROR_CODE].to_numpy(dtype=object)[refusing], use_na_sentinel=True)
        mine = codes[refusing]
        for i in np.unique(mine):
            counts = np.bincount(error[(mine == i) & (error >= 0)], minlength=len(names))
            ranked = sorted(((int(c), str(names[j])) for j, c in enumerate(counts) if c), key=lambda x: (-x[0], x[1]))
            reasons[i] = ", ".join(f"{name}×{count}" for count, name in ranked)
    table = pd.DataFrame({col.ARM: labels, ASSIGNED: assigned, EXPECTED: expected, OBSERVED: observed,
                          REFUSED: refused, REFUSAL_CODES: reasons})[list(SRM_COLUMNS)]  # fmt: skip
    used = expected > 0
    if used.sum() >= 2 and observed.sum() > 0 and (observed[~used] == 0).all():
        # Pearson's χ², as scipy.stats.chisquare computes it (the tests check the two agree), without
        # its array-policy wrapper, which costs more than the test itself here.
        statistic = float(((observed[used] - expected[used]) ** 2 / expected[used]).sum())
        p_value = float(special.chdtrc(int(used.sum()) - 1, statistic))
    elif (observed[~used] > 0).any():  # sends where the design allocated none
        statistic, p_value = math.inf, 0.0
    else:
        statistic, p_value = math.nan, math.nan
    return SampleRatioCheck(table=table, statistic=statistic, p_value=p_value,
                            flagged=bool(p_value < threshold), threshold=threshold)  # fmt: skip
