"""Sample-ratio mismatch: the sends that went out per arm against the allocation.

Manifests are simulated with plain numpy: 1,000 numbers dealt to each arm,
the API refusing some requests (no tracking id). A 20 % refusal in one arm
(about 1,000 vs 800 sends) must be flagged in ≥ 99 % of runs; equal refusal
rates in ≤ 0.2 %.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from skycore_lab import columns as col
from skycore_lab import stats

ARMS = ["no_ddm", "ddm_5"]


def _manifest(refused: dict[str, np.ndarray]) -> pd.DataFrame:
    """One row per assigned number; refused rows have no tracking id and an error code."""
    arm = np.repeat(ARMS, [len(refused[name]) for name in ARMS])
    out = ~np.concatenate([refused[name] for name in ARMS])
    return pd.DataFrame({
        col.ARM: pd.Categorical(arm, categories=ARMS),
        col.TRACKING_ID: np.where(out, "MMS_x", None),
        col.ERROR_CODE: np.where(out, None, "E110"),
    })  # fmt: skip


def test_table_p_value_and_both_ways_to_read_it():
    refused = {"no_ddm": np.zeros(1000, bool), "ddm_5": np.arange(1000) < 200}
    check = stats.sample_ratio_mismatch(_manifest(refused))
    table = check.table.set_index(col.ARM)
    assert list(check.table.columns) == list(stats.SRM_COLUMNS)
    assert table[stats.ASSIGNED].tolist() == [1000, 1000]
    assert table[stats.OBSERVED].tolist() == [1000, 800]
    assert table[stats.EXPECTED].tolist() == [900.0, 900.0]
    assert table[stats.REFUSED].tolist() == [0, 200] and table.loc["ddm_5", stats.REFUSAL_CODES] == "E110×200"
    expected = sps.chisquare([1000, 800], [900, 900]).pvalue
    assert check.p_value == pytest.approx(expected) and check["p_value"] == check.p_value
    assert check.flagged and check["flagged"] and check.p_value < 1e-5
    assert check.text().startswith("WARNING — sample ratio mismatch") and "E110×200" in check.text()
    with pytest.raises(KeyError):
        check["nonsense"]
    assert "p_value" in repr(check) and "<table" in check._repr_html_()


def test_design_allocation_and_deliveries_only_frames():
    frame = pd.DataFrame({col.ARM: ["a"] * 600 + ["b"] * 400})  # every row went out
    check = stats.sample_ratio_mismatch(frame, allocation={"a": 1, "b": 1})
    assert check.flagged and check.table[stats.EXPECTED].tolist() == [500.0, 500.0]
    uneven = stats.sample_ratio_mismatch(frame, allocation={"a": 0.6, "b": 0.4})
    assert uneven.p_value == pytest.approx(1.0) and not uneven.flagged
    with_empty_arm = stats.sample_ratio_mismatch(frame, allocation={"a": 1, "b": 1, "c": 1})
    assert with_empty_arm.flagged and with_empty_arm.table[stats.OBSERVED].tolist() == [600, 400, 0]


@pytest.mark.slow
def test_flags_a_20_percent_refusal_in_99_percent_and_balanced_runs_in_at_most_0_2_percent():
    rng = np.random.default_rng(17)
    unbalanced = [
        stats.sample_ratio_mismatch(_manifest({"no_ddm": rng.random(1000) < 0.0, "ddm_5": rng.random(1000) < 0.2}))
        .flagged for _ in range(500)
    ]  # fmt: skip
    assert np.mean(unbalanced) >= 0.99, np.mean(unbalanced)
    balanced = [  # 400 numbers per arm, 5 % refused in both: many runs, cheaply
        stats.sample_ratio_mismatch(_manifest({name: rng.random(400) < 0.05 for name in ARMS})).flagged
        for _ in range(3000)
    ]
    assert np.mean(balanced) <= 0.002, np.mean(balanced)
