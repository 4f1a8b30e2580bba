"""DdmExperiment design: assignment, send order, persistence, input errors (no sandbox needed)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from fake_api import FakeAPI

from skycore_lab import DDM, DdmExperiment, SkycoreClient, SkycoreValidationError
from skycore_lab import columns as col
from skycore_lab.server import ServerThread
from skycore_lab.demo import demo_arms, demo_numbers

ARMS = {"no_ddm": None, "ddm_5": DDM("Checking your phone", timeout_min=5), "ddm_15": DDM("Checking", timeout_min=15)}


def make(seed=0, **kwargs) -> DdmExperiment:
    return DdmExperiment(ARMS, mms_id=1001, sender="60856", seed=seed, **kwargs)


def test_assignment_is_balanced_within_each_country():
    numbers = demo_numbers(600, seed=3)
    assignment = make().assign(numbers)
    assert list(assignment[col.TO]) == numbers  # input order kept
    counts = assignment.groupby(["stratum", col.ARM], observed=False).size().unstack()
    assert set(assignment["stratum"]) >= {"United States", "United Kingdom"}
    assert (counts.max(axis=1) - counts.min(axis=1)).max() <= 1


def test_assignment_is_reproducible_and_depends_on_the_seed():
    numbers = demo_numbers(300, seed=1)
    first, again, other = make(seed=7).assign(numbers), make(seed=7).assign(numbers), make(seed=8).assign(numbers)
    pd.testing.assert_frame_equal(first, again)
    assert (first[col.ARM] != other[col.ARM]).mean() > 0.3


def test_assignment_does_not_depend_on_input_order_within_a_stratum_key_set():
    numbers = demo_numbers(200, seed=2)
    forward = make().assign(numbers).set_index(col.TO)[col.ARM]
    shuffled = make().assign(list(reversed(numbers))).set_index(col.TO)[col.ARM]
    # same strata visited in the same (sorted) order with the same draws → same sizes per arm
    assert forward.value_counts().sort_index().tolist() == shuffled.value_counts().sort_index().tolist()


def test_stratify_by_a_given_column_or_not_at_all():
    frame = pd.DataFrame({col.TO: demo_numbers(90, seed=4), "segment": ["a"] * 30 + ["b"] * 60})
    by_segment = make().assign(frame, strata="segment")
    sizes = by_segment.groupby(["stratum", col.ARM], observed=False).size()
    assert sizes.loc["a"].tolist() == [10, 10, 10] and sizes.loc["b"].tolist() == [20, 20, 20]
    assert set(make().assign(frame, strata=False)["stratum"]) == {"all"}
    with pytest.raises(SkycoreValidationError, match="no column 'region'"):
        make().assign(frame, strata="region")


def test_duplicate_and_invalid_numbers_are_refused_with_examples():
    with pytest.raises(SkycoreValidationError, match="more than once.*15551230000"):
        make().assign(["15551230000", "15551230001", "15551230000"])
    with pytest.raises(SkycoreValidationError, match="1 invalid number"):
        make().assign(["15551230000", "555-CALL"])


@pytest.mark.parametrize(
    "arms, field",
    [({"only": None}, "arms"), ({"a": None, "": None}, "arms"), ({"a": None, "b": DDM("")}, "ddm")],
)
def test_bad_designs_fail_before_sending(arms, field):
    with pytest.raises(SkycoreValidationError) as info:
        DdmExperiment(arms, mms_id=1, sender="1234")
    assert field in str(info.value)


def test_ddm_per_arm_cannot_be_overridden():
    with pytest.raises(SkycoreValidationError, match="ddm"):
        DdmExperiment(ARMS, mms_id=1, sender="1234", ddm=DDM("x"))


@pytest.fixture
def fake():
    api = FakeAPI()
    with ServerThread(api) as server:
        yield api, server.base_url + "/API/wxml/1.3/index.php"


def test_run_sends_each_arm_its_ddm_in_interleaved_order(fake):
    api, url = fake
    numbers = demo_numbers(60, seed=5)
    experiment = make(seed=2)
    with SkycoreClient("k" * 20, url, max_retries=0) as client:
        manifest = experiment.run(client, numbers, progress=False, concurrency=1)
    assert list(manifest[col.TO]) == numbers
    assert list(manifest.columns[:7]) == [col.TO, col.ARM, col.TRACKING_ID, col.REQUESTED_AT, col.STATUS,
                                          col.ERROR_CODE, col.ERROR_INFO]
    assert (manifest[col.STATUS] == "Success").all()
    sent_arms = []
    for request in api.requests:
        xml = request.form["xml"]
        sent_arms.append("no_ddm" if "<DDMTEXT>" not in xml else ("ddm_5" if "<DDMTIMEOUT>5<" in xml else "ddm_15"))
    assert sorted(sent_arms) == sorted(manifest[col.ARM].astype(str))
    # interleaved: the first third of the sends is not all one arm
    assert len(set(sent_arms[:20])) == 3
    assert experiment.manifest is manifest


def test_save_and_load_keep_design_and_manifest(tmp_path, fake):
    _, url = fake
    experiment = make(seed=4, campaign_ref="spring")
    with SkycoreClient("secret-key-123456789", url, max_retries=0) as client:
        experiment.run(client, demo_numbers(12, seed=6), progress=False)
    path = experiment.save(tmp_path / "exp.json")
    assert "secret-key" not in path.read_text()
    loaded = DdmExperiment.load(path)
    assert loaded.arms == experiment.arms and loaded.seed == 4 and loaded.send_kwargs == {"campaign_ref": "spring"}
    pd.testing.assert_frame_equal(loaded.manifest[[col.TO, col.TRACKING_ID, col.STATUS]],
                                  experiment.manifest[[col.TO, col.TRACKING_ID, col.STATUS]], check_dtype=False)
    assert str(loaded.manifest[col.REQUESTED_AT].dt.tz) == "UTC"
    assert (loaded.manifest[col.REQUESTED_AT] == experiment.manifest[col.REQUESTED_AT]).all()


def test_load_refuses_other_files(tmp_path):
    path = tmp_path / "other.json"
    path.write_text('{"hello": 1}')
    with pytest.raises(SkycoreValidationError, match="not a skycore-lab experiment"):
        DdmExperiment.load(path)


def test_analyze_before_run_is_a_clear_error():
    with pytest.raises(SkycoreValidationError, match="not been run"):
        make().analyze(pd.DataFrame())


def test_demo_numbers_are_distinct_valid_and_reproducible():
    numbers = demo_numbers(2000, seed=0)
    assert len(set(numbers)) == 2000 and numbers == demo_numbers(2000, seed=0)
    assert all(n.isdigit() and 11 <= len(n) <= 12 for n in numbers)
    share_us = np.mean([n.startswith("1") for n in numbers])
    assert 0.85 < share_us < 0.99
    assert list(demo_arms()) == ["no_ddm", "ddm_5", "ddm_15"]
