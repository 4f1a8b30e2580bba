"""The pure world model and the scenario: determinism, consistency with the truth, validation."""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from skycore_lab import reference as ref
from skycore_lab import columns as col
from skycore_lab.exceptions import ScenarioError
from skycore_lab.sandbox import DEFAULTS, Scenario, World, truth_frame

ANCHOR = datetime(2024, 5, 1, 14, 0, 0, 250000, tzinfo=timezone.utc)


def parse_stamp(text: str) -> datetime:
    if len(text) == 22:  # bare hour offset "-04"
        text += ":00"
    return datetime.fromisoformat(text)


def test_profile_depends_only_on_seed_and_number():
    numbers = World(seed=5).sample_numbers(200)
    a = [World(seed=5).profile(n) for n in numbers]
    b = [World(seed=5).profile(n) for n in reversed(numbers)][::-1]
    assert a == b
    c = [World(seed=6).profile(n) for n in numbers]
    assert [p.carrier for p in a] != [p.carrier for p in c]


def test_default_world_is_realistic():
    frame = World(seed=0).simulate_population(20000)
    us = frame[frame[col.COUNTRY] == "United States"]
    shares = us[col.CARRIER].value_counts(normalize=True)
    assert shares["Verizon Wireless"] == pytest.approx(0.35, abs=0.02)
    assert shares["US Cellular"] == pytest.approx(0.04, abs=0.01)
    assert dict(zip(us[col.CARRIER], us[col.SPID], strict=True))["Verizon Wireless"] == "0001890"
    no_receipts = frame[~frame[col.RECEIPT]]
    assert len(no_receipts) and set(no_receipts[col.CARRIER]) == {"US Cellular"}
    sent = no_receipts[no_receipts[col.SENT_AS].notna()]  # E101 (never sent) is posted whatever the carrier
    assert (sent[col.OUTCOME] == col.OUTCOME_PENDING).all()
    assert (no_receipts[col.TRUE_OUTCOME] == col.OUTCOME_DELIVERED).mean() > 0.5
    assert list(frame.columns) == list(col.TRUTH_COLUMNS)
    assert frame[col.LATENCY_S].median() == pytest.approx(30, rel=0.6)


def test_invalid_numbers_are_refused():
    world = World()
    for bad in ("1774319914", "33", "abc", "+17743199144", "0017743199144"):
        assert world.profile(bad) is None
    assert world.profile("447400123456").country == "United Kingdom"
    with pytest.raises(ValueError, match="E110"):
        world.simulate_population(["123"])


def test_simulate_send_is_deterministic_and_matches_its_notifications():
    world = World(seed=2)
    kwargs = dict(tracking_id="T1", requested_at=ANCHOR, ddm={"text": "hi", "timeout_min": 10})
    for number in world.sample_numbers(60):
        one, two = world.simulate_send(number, **kwargs), world.simulate_send(number, **kwargs)
        assert one.notifications == two.notifications
        assert truth_frame([one.truth]).equals(truth_frame([two.truth]))
        truth, notes = one.truth, one.notifications
        stamps = {n.code: parse_stamp(dict(n.fields)["TIMESTAMP"]) for n in notes}
        assert all(n.at >= ANCHOR for n in notes)
        if truth[col.SENT_AT] is not None:
            assert stamps[ref.N101] == truth[col.SENT_AT]
        if truth[col.DELIVERED_AT] is not None:
            assert truth[col.DELIVERED_AT] in (stamps.get(ref.N102), stamps.get(ref.N202))
            latency = truth_frame([truth])[col.LATENCY_S].iloc[0]
            assert latency == (truth[col.DELIVERED_AT] - truth[col.SENT_AT]).total_seconds()
        if truth[col.OUTCOME] == col.OUTCOME_PENDING:
            assert not {ref.N102, ref.E102, ref.N202, ref.E202} & set(stamps)
        assert (truth[col.DDM] == col.DDM_DELIVERED) == (ref.N502 in stamps)
        assert all(dict(n.fields)["TRACKINGID"] == "T1" for n in notes)
        for note in notes:
            fields = dict(note.fields)
            assert ("HANDSET" in fields) == (note.code in (ref.N502, ref.N102))


def test_cached_number_gets_no_ddm_unless_forced():
    world = World(seed=4)
    numbers = world.sample_numbers(300)
    cached = world.simulate_population(numbers, {"text": "x"}, cached=True)
    assert (cached[col.DDM] == col.DDM_NONE).all()
    forced = world.simulate_population(numbers, {"text": "x", "force": True}, cached=True)
    assert (forced[col.DDM] != col.DDM_NONE).mean() > 0.9


def test_longer_ddm_timeout_transcodes_more_and_falls_back_less():
    world = World(seed=1)
    numbers = world.sample_numbers(20000)
    arms = {t: world.simulate_population(numbers, None if t is None else {"text": "x", "timeout_min": t})
            for t in (None, 1, 10)}
    transcoded = {t: arms[t][col.TRANSCODED].mean() for t in arms}
    fallback = {t: (arms[t][col.SENT_AS] == col.SENT_AS_SMS).mean() for t in arms}
    delivered = {t: (arms[t][col.TRUE_OUTCOME] == col.OUTCOME_DELIVERED).mean() for t in arms}
    assert transcoded[None] == 0 < transcoded[1] < transcoded[10] - 0.3
    assert fallback[10] < fallback[1] < fallback[None]
    assert delivered[10] > delivered[None] + 0.01
    assert (arms[None][col.DDM] == col.DDM_NONE).all()


def test_warm_cache_share_is_honoured():
    world = World({"warm_cache_share": 0.3}, seed=0)
    frame = world.simulate_population(10000)
    assert frame[col.CACHED_BEFORE].mean() == pytest.approx(0.3, abs=0.02)
    assert frame[col.TRANSCODED].mean() > 0.25


def test_timestamps_use_the_configured_offsets():
    world = World({"utc_offsets": {"United States": ["-04"]}}, seed=0)
    sim = world.simulate_send(World().sample_numbers(1)[0], tracking_id="T", requested_at=ANCHOR)
    assert all(dict(n.fields)["TIMESTAMP"].endswith("-04") for n in sim.notifications)


def test_population_is_reproducible():
    a = World(seed=9).simulate_population(500, requested_at=ANCHOR)
    b = World(seed=9).simulate_population(500, requested_at=ANCHOR)
    assert a.equals(b)


# -- scenario ------------------------------------------------------------------------------
@pytest.mark.parametrize(("given_", "key"), [
    ({"nope": 1}, "nope"),
    ({"postback": {"duplicate_rate": 2}}, "postback.duplicate_rate"),
    ({"postback": {"dup_rate": 0.1}}, "postback.dup_rate"),
    ({"postback": {"format": "json"}}, "postback.format"),
    ({"ddm": {"report_median_s": -1}}, "ddm.report_median_s"),
    ({"carriers": {"United States": [{"name": "X", "spid": "1890", "share": 1}]}}, "spid"),
    ({"carriers": {"United States": [{"name": "X", "spid": "0001890", "share": 1, "colour": "red"}]}}, "colour"),
    ({"rate_limit": {"per_minute": 3}}, "rate_limit.per_minute"),
    ({"utc_offsets": {"Canada": ["EST"]}}, "utc_offsets.Canada"),
    ({"warm_cache_share": "half"}, "warm_cache_share"),
])
def test_bad_scenarios_name_the_key(given_, key):
    with pytest.raises(ScenarioError, match=key.replace(".", r"\.")):
        Scenario.from_dict(given_)


def test_scenario_from_json_merges_over_defaults(data_dir):
    scenario = Scenario.from_json(os.path.join(data_dir, "sandbox", "scenario_small.json"))
    assert scenario["postback"]["format"] == "form"
    assert scenario["postback"]["max_retries"] == DEFAULTS["postback"]["max_retries"]
    assert scenario["rate_limit"] == {"per_second": 50}
    assert json.loads(scenario.to_json())["warm_cache_share"] == 0.5
    with pytest.raises(ScenarioError, match="not JSON"):
        bad = os.path.join(data_dir, "sandbox", "not_json.txt")
        Scenario.from_json(bad if os.path.exists(bad) else __file__)


@given(st.floats(allow_nan=True, allow_infinity=True))
def test_probabilities_outside_0_1_are_refused(value):
    try:
        scenario = Scenario.from_dict({"send_error_rate": value})
    except ScenarioError as exc:
        assert "send_error_rate" in str(exc)
        assert not (0 <= value <= 1)
    else:
        assert 0 <= scenario["send_error_rate"] <= 1


def test_sandbox_accepts_a_scenario_file(data_dir):
    from skycore_lab.sandbox import Sandbox

    sb = Sandbox(seed=0, scenario=os.path.join(data_dir, "sandbox", "scenario_small.json"))
    assert sb.scenario["warm_cache_share"] == 0.5 and sb.scenario["postback"]["format"] == "form"
    with pytest.raises(ScenarioError, match="rate_limit.per_hour"):
        Sandbox(scenario={"rate_limit": {"per_hour": 1}})
