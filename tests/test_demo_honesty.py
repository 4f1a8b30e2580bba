"""The demo's intervals are honest about the sandbox's known truth.

The true values come from the sandbox's own world model (a large Monte Carlo
population per arm, no HTTP). The demo's analysis
(:meth:`DdmExperiment.analyze_deliveries`) is run over many seeds on
simulated experiments of the demo's size, plus full runs of the demo over
real HTTP, and ≥ 90 % of its 95 % intervals must contain the truth. Seeds are
consecutive from 0: none is picked to make a run look right.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from skycore_lab import DdmExperiment
from skycore_lab import columns as col
from skycore_lab.demo import DEFAULT_NUMBERS, DEMO_SCENARIO, demo_arms, demo_numbers, run_demo
from skycore_lab.stats import DEFAULT_WITHIN_S
from skycore_lab.sandbox import World

SIMULATED_SEEDS = range(20)
DEMO_SEEDS = range(2)
POPULATION = 200_000


def _with_total_latency(truth: pd.DataFrame) -> pd.DataFrame:
    frame = truth.copy()
    frame[col.TOTAL_LATENCY_S] = (frame[col.DELIVERED_AT] - frame[col.REQUESTED_AT]).dt.total_seconds()
    frame[col.FIRST_EVENT_AT] = frame[col.REQUESTED_AT]
    return frame


@pytest.fixture(scope="module")
def true_values() -> dict:
    """Per arm: P(reported delivered), P(delivered within the deadline), by Monte Carlo."""
    world = World(DEMO_SCENARIO, seed=10_000)
    numbers = world.sample_numbers(POPULATION)
    values = {}
    for name, ddm in demo_arms().items():
        frame = _with_total_latency(world.simulate_population(numbers, ddm=ddm))
        delivered = frame[col.OUTCOME] == col.OUTCOME_DELIVERED
        values[name] = {
            "rate": delivered.mean(),
            "within": (delivered & (frame[col.TOTAL_LATENCY_S] <= DEFAULT_WITHIN_S)).mean(),
        }
    return values


def _intervals(result, truth: dict) -> list[tuple[str, float, float, float]]:
    """(what, low, high, true value) for every interval the demo reports on rates."""
    found = []
    for row in result.rates.itertuples(index=False):
        arm = str(getattr(row, col.ARM))
        found.append((f"rate {arm}", getattr(row, col.CI_LOW), getattr(row, col.CI_HIGH), truth[arm]["rate"]))
    for row in result.comparisons.itertuples(index=False):
        key = {"delivery_rate": "rate", "delivered_within": "within"}.get(row.metric)
        if key is not None:
            true_diff = truth[str(row.arm)][key] - truth[result.control][key]
            found.append((f"{row.metric} {row.arm}", row.ci_low, row.ci_high, true_diff))
    return found


def _simulated_experiment(seed: int) -> pd.DataFrame:
    """One demo-sized experiment simulated by the world model (independent sends, no HTTP)."""
    world = World(DEMO_SCENARIO, seed=seed)
    experiment = DdmExperiment(demo_arms(), mms_id=1001, sender="60856", seed=seed)
    assignment = experiment.assign(world.sample_numbers(DEFAULT_NUMBERS))
    parts = []
    for index, (name, ddm) in enumerate(experiment.arms.items()):
        numbers = assignment.loc[assignment[col.ARM] == name, col.TO]
        truth = world.simulate_population(numbers, ddm=ddm, rng=np.random.default_rng([seed, index]))
        parts.append(_with_total_latency(truth).assign(**{col.ARM: name}))
    frame = pd.concat(parts, ignore_index=True)
    frame[col.ARM] = pd.Categorical(frame[col.ARM], categories=list(experiment.arms))
    return experiment, frame


@pytest.mark.slow
def test_demo_intervals_cover_the_truth(true_values, tmp_path):
    covered = []
    for seed in SIMULATED_SEEDS:
        experiment, frame = _simulated_experiment(seed)
        result = experiment.analyze_deliveries(frame)
        covered += [low <= true <= high for _, low, high, true in _intervals(result, true_values)]
    for seed in DEMO_SEEDS:  # the real thing: client → sandbox → receiver → parser → analysis
        outcome = run_demo(tmp_path / f"demo{seed}", numbers=1500, seed=seed, progress=False, reports=False,
                           time_scale=1440.0)
        covered += [low <= true <= high for _, low, high, true in _intervals(outcome.result, true_values)]
    share = np.mean(covered)
    assert len(covered) >= 100
    assert share >= 0.90, f"only {share:.1%} of {len(covered)} intervals cover the truth"


def test_true_values_show_what_the_demo_is_about(true_values):
    # A DDM that waits 15 minutes transcodes more, so delivers more, but later.
    assert true_values["ddm_15"]["rate"] > true_values["no_ddm"]["rate"]
    assert true_values["ddm_15"]["within"] < true_values["ddm_15"]["rate"]


def test_demo_numbers_follow_the_world(true_values):
    numbers = demo_numbers(1000, seed=3)
    world = World(DEMO_SCENARIO, seed=3)
    carriers = {world.profile(number).carrier for number in numbers}
    assert len(carriers) >= 4
