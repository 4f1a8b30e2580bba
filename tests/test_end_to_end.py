"""The whole chain over real loopback HTTP: client → sandbox → receiver → parser → deliveries == truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from skycore_lab import (
    DDM,
    PostbackReceiver,
    Sandbox,
    SkycoreClient,
    deliveries,
    handset_profiles,
    read_postbacks,
)
from skycore_lab import columns as col
from skycore_lab.demo import demo_numbers

COMPARED = (col.OUTCOME, col.SENT_AT, col.DELIVERED_AT, col.FAILED_AT, col.HANDSET, col.DDM, col.SENT_AS,
            col.CARRIER, col.COUNTRY, col.SPID)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    log = tmp_path_factory.mktemp("e2e") / "postbacks.log"
    numbers = demo_numbers(400, seed=11)
    with PostbackReceiver(log) as rx, Sandbox(seed=11, time_scale=3600.0, postback_url=rx.url) as sb:
        with SkycoreClient(sb.api_key, sb.url) as client:
            half = len(numbers) // 2
            plain = client.send_batch(numbers[:half], sb.mms_ids[0], sb.shortcodes[0], progress=False)
            with_ddm = client.send_batch(numbers[half:], sb.mms_ids[0], sb.shortcodes[0], progress=False,
                                         ddm=DDM("Checking your phone", timeout_min=10))
        assert sb.wait_idle(timeout=120)
        truth = sb.truth()
        stored = rx.count
    manifest = pd.concat([plain.assign(arm="plain"), with_ddm.assign(arm="ddm")], ignore_index=True)
    return log, manifest, truth, stored


def test_every_acknowledged_postback_is_in_the_log(run):
    log, _, _, stored = run
    events = read_postbacks(log, drop_duplicates=False, on_bad_lines="error")
    assert len(events) == stored > 0


def test_deliveries_from_postbacks_equal_the_sandbox_truth(run):
    log, manifest, truth, _ = run
    assert (manifest[col.STATUS] == "Success").all()
    frame = deliveries(read_postbacks(log, on_bad_lines="error"), manifest).set_index(col.TRACKING_ID)
    truth = truth.set_index(col.TRACKING_ID)
    assert set(frame.index) == set(truth.index)
    frame = frame.loc[truth.index]
    for name in COMPARED:
        ours, theirs = frame[name], truth[name]
        if pd.api.types.is_datetime64_any_dtype(theirs):
            equal = (ours.dt.floor("s") == theirs.dt.floor("s")) | (ours.isna() & theirs.isna())
        else:
            equal = (ours.astype(object) == theirs.astype(object)) | (ours.isna() & theirs.isna())
        assert equal.all(), f"{name}: {(~equal).sum()} sends differ, e.g.\n{frame.loc[~equal, [name]].head()}\n" \
                            f"{truth.loc[~equal, [name]].head()}"
    delivered = truth[col.OUTCOME] == col.OUTCOME_DELIVERED
    np.testing.assert_allclose(frame.loc[delivered, col.LATENCY_S], truth.loc[delivered, col.LATENCY_S], atol=1.0)


def test_the_world_is_rich_enough_to_be_a_test(run):
    _, manifest, truth, _ = run
    assert truth[col.CARRIER].nunique() >= 4
    assert set(truth[col.OUTCOME]) >= {col.OUTCOME_DELIVERED, col.OUTCOME_PENDING}
    assert set(truth[col.DDM]) >= {col.DDM_NONE, col.DDM_SENT, col.DDM_DELIVERED}
    assert (truth[col.SENT_AS] == col.SENT_AS_SMS).any()


def test_handset_profiles_know_each_delivered_number(run):
    log, _, truth, _ = run
    profiles = handset_profiles(read_postbacks(log))
    reported = truth.dropna(subset=[col.HANDSET])
    merged = profiles.set_index(col.TO).loc[reported[col.TO]]
    assert (merged[col.HANDSET].to_numpy() == reported[col.HANDSET].to_numpy()).all()
