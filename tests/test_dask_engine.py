"""The Dask engine on a real distributed.LocalCluster: every result equals the pandas path's on the same data.

The events come from the benchmarks' log generator (sandbox-shaped
postbacks, retries, out of order), read by :func:`read_postbacks`, then cut
into partitions by ``dask.dataframe.from_pandas``; the manifest (arms,
request times, sends that never produced an event) is drawn here.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

dd = pytest.importorskip("dask.dataframe", reason="the [dask] extra is not installed")
dask = pytest.importorskip("dask", reason="the [dask] extra is not installed")
distributed = pytest.importorskip("distributed", reason="the [dask] extra is not installed")

import skycore_lab as sl  # noqa: E402
from skycore_lab import columns as col  # noqa: E402
from skycore_lab import reference as ref  # noqa: E402
from skycore_lab.distributed import engine  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import bench_frames  # noqa: E402
import gen_postback_log  # noqa: E402

CATEGORY_COLUMNS = (col.CARRIER, col.COUNTRY, col.SENT_AS, col.FINAL_CODE, col.OUTCOME, col.DDM, col.ARM)


@pytest.fixture(scope="module")
def client():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the cluster's own start-up chatter (ports, dashboards)
        cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                           dashboard_address=None)  # fmt: skip
        connected = distributed.Client(cluster)
    yield connected
    connected.close()
    cluster.close()


def _events(tmp_path: Path, records: int, seed: int = 3) -> pd.DataFrame:
    log = tmp_path / f"postbacks-{records}.log"
    gen_postback_log.generate(str(log), records, seed=seed)
    return sl.read_postbacks(log)


def _manifest(events: pd.DataFrame, seed: int = 5) -> pd.DataFrame:
    """Arms for the sends seen (and a few never seen), request times a little before their first event."""
    rng = np.random.default_rng(seed)
    ids = pd.unique(events[col.TRACKING_ID].dropna())
    ids = np.concatenate([ids, [f"unseen-{i}" for i in range(7)]])
    first = events.groupby(col.TRACKING_ID, observed=True)[col.TIMESTAMP].min()
    requested = first.reindex(ids) - pd.to_timedelta(rng.uniform(0.5, 3.0, len(ids)), unit="s")
    requested = requested.fillna(first.min())
    arm = pd.Categorical(rng.choice(["control", "ddm_5", "ddm_10"], len(ids)),
                         categories=["control", "ddm_5", "ddm_10"])  # fmt: skip
    return pd.DataFrame({col.TRACKING_ID: ids, col.ARM: arm, col.REQUESTED_AT: requested.to_numpy()})


def _comparable(frame: pd.DataFrame, key: str) -> pd.DataFrame:
    out = frame.sort_values(key).reset_index(drop=True)
    for name in CATEGORY_COLUMNS:
        if name in out.columns:
            out[name] = out[name].astype(object)
    return out


def _same(dask_result: pd.DataFrame, pandas_result: pd.DataFrame) -> None:
    """Statistics (sorted by group, as both paths return them) equal to float tolerance; key dtypes may differ."""
    pd.testing.assert_frame_equal(dask_result.reset_index(drop=True), pandas_result.reset_index(drop=True),
                                  check_dtype=False, rtol=1e-9)  # fmt: skip


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    events = _events(tmp_path_factory.mktemp("dask"), 6_000)
    # a few hostile rows: a send whose carrier is unknown (its own group), a clock-skewed delivery
    events[col.CARRIER] = events[col.CARRIER].mask(np.arange(len(events)) < 5)
    manifest = _manifest(events)
    frame = sl.deliveries(events, manifest)
    return events, manifest, frame


def test_a_dask_frame_is_told_apart_without_importing_dask(data):
    events, _manifest_frame, _frame = data
    assert engine.is_dask(dd.from_pandas(events, npartitions=2))
    assert not engine.is_dask(events) and not engine.is_dask(None)


def test_deliveries_and_profiles_equal_pandas(client, data):
    events, manifest, frame = data
    ddf = dd.from_pandas(events, npartitions=5)
    from_dask = sl.deliveries(ddf, manifest).compute()
    assert len(from_dask) == len(frame) > 1000
    pd.testing.assert_frame_equal(_comparable(from_dask, col.TRACKING_ID), _comparable(frame, col.TRACKING_ID))
    profiles = sl.handset_profiles(ddf).compute()
    pd.testing.assert_frame_equal(_comparable(profiles, col.TO), _comparable(sl.handset_profiles(events), col.TO))


@pytest.fixture(scope="module")
def dask_deliveries(client, data):
    events, manifest, _frame = data
    return sl.deliveries(dd.from_pandas(events, npartitions=4), manifest).persist()


@pytest.mark.parametrize("options", [
    {"by": (col.CARRIER, col.ARM)},
    {"by": col.ARM, "settle_s": 60.0},
    {"by": (), "exclude_pending": True},
])  # fmt: skip
def test_delivery_rates_equal_pandas(dask_deliveries, data, options):
    frame = data[2]
    expected = sl.delivery_rates(frame, **options)
    assert len(expected) >= 1
    _same(sl.delivery_rates(dask_deliveries, **options), expected)


@pytest.mark.parametrize("options", [
    {"by": (col.CARRIER, col.ARM)},
    {"by": col.ARM, "column": col.TOTAL_LATENCY_S},
    {"by": (), "as_of": "2026-03-02 14:05:00+00:00"},
])  # fmt: skip
def test_latency_summary_equal_pandas(dask_deliveries, data, options):
    frame = data[2]
    expected = sl.latency_summary(frame, **options)
    assert expected[col.DELIVERED].sum() > 100
    _same(sl.latency_summary(dask_deliveries, **options), expected)


@pytest.mark.parametrize("options", [{"by": col.ARM}, {"by": (), "times": [0.0, 10.0, 60.0, 600.0]}])
def test_cumulative_incidence_equal_pandas(dask_deliveries, data, options):
    frame = data[2]
    expected = sl.cumulative_incidence(frame, **options)
    assert len(expected) > 3
    _same(sl.cumulative_incidence(dask_deliveries, **options), expected)


@pytest.mark.parametrize("options", [
    {"metric": "delivery_rate", "settle_s": 120.0},
    {"metric": "delivery_rate", "settle_s": 120.0, "strata": col.CARRIER},
    {"metric": "delivered_within", "within_s": 60.0, "sequential": True},
    {"metric": "latency", "horizon_s": 90.0},
])  # fmt: skip
def test_compare_arms_equal_pandas(dask_deliveries, data, options):
    frame = data[2]
    expected = sl.compare_arms(frame, **options)
    assert len(expected) == 2 and (expected[col.N_ARM] > 100).all()
    _same(sl.compare_arms(dask_deliveries, **options), expected)


def test_legacy_link_and_numberless_events_cross_partitions(client):
    """An xHTML link's SMS notifications and a TO-less E101 in other partitions than their send's first event."""
    t = pd.Timestamp("2026-03-02 14:00", tz="UTC")
    rows = [
        # MMS "m1": N101, then the link-sent N102 naming SMS "s1"; the SMS's N202 delivers it
        ("m1", "N101", "MMS Sent", "15550001", t, None),
        ("x1", "N101", "MMS Sent", "15550002", t + pd.Timedelta(seconds=1), None),
        ("m1", "N102", ref.LINK_SENT, "15550001",
         t + pd.Timedelta(seconds=5), {"SMSID": "s1"}),
        ("x1", "E101", "MMS Failed", None, t + pd.Timedelta(seconds=6), None),
        ("s1", "N202", "SMS Delivered", "15550001", t + pd.Timedelta(seconds=9), None),
        ("x2", "N101", "MMS Sent", "15550003", t + pd.Timedelta(seconds=2), None),
    ]  # fmt: skip
    events = pd.DataFrame(rows, columns=[col.TRACKING_ID, col.CODE, col.STATUS, col.TO, col.TIMESTAMP, col.EXTRA])
    events[col.ORIGIN] = np.where(events[col.CODE].str.startswith("N2"), "SMS_MT", "MMS")
    with dask.config.set({"dataframe.convert-string": False}):  # keep extra's dicts (dask would make them text)
        ddf = dd.from_pandas(events, npartitions=3, sort=False)
    assert ddf.npartitions == 3 and isinstance(ddf.partitions[1].compute()[col.EXTRA].iloc[0], dict)
    pd.testing.assert_frame_equal(_comparable(sl.deliveries(ddf).compute(), col.TRACKING_ID),
                                  _comparable(sl.deliveries(events), col.TRACKING_ID))  # fmt: skip
    pd.testing.assert_frame_equal(_comparable(sl.handset_profiles(ddf).compute(), col.TO),
                                  _comparable(sl.handset_profiles(events), col.TO))  # fmt: skip


def test_missing_dask_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(sl.DaskNotInstalledError, match=r'pip install "skycore-lab\[dask\]"') as caught:
        engine.require_dask()
    assert isinstance(caught.value, ImportError) and isinstance(caught.value, sl.SkycoreError)


def test_worker_warnings_come_back(client, data):
    frame = data[2].copy()
    frame.loc[frame.index[:3], col.FAILED_AT] = pd.NaT  # three failures that cannot be censored
    frame.loc[frame.index[:3], col.OUTCOME] = col.OUTCOME_FAILED
    ddf = dd.from_pandas(frame, npartitions=3)
    with pytest.warns(sl.LatencyDataWarning, match="left out"):
        result = sl.cumulative_incidence(ddf, by=())
    with pytest.warns(sl.LatencyDataWarning):
        expected = sl.cumulative_incidence(frame, by=())
    _same(result, expected)


@pytest.mark.filterwarnings("ignore:Sending large graph:UserWarning")  # from_pandas ships the frame in the graph
def test_200k_records_equal_pandas(client):
    # the frames benchmark's generator: 200k events in seconds (the log generator would take 11 s)
    events = bench_frames.make_events(200_000, seed=11)
    manifest = _manifest(events, seed=12)
    frame = sl.deliveries(events, manifest)
    ddf = sl.deliveries(dd.from_pandas(events, npartitions=4), manifest).persist()
    by = (col.CARRIER, col.ARM)
    _same(sl.delivery_rates(ddf, by=by), sl.delivery_rates(frame, by=by))
    _same(sl.latency_summary(ddf, by=by), sl.latency_summary(frame, by=by))
    _same(sl.cumulative_incidence(ddf, by=col.ARM, times=[30.0, 60.0]),
          sl.cumulative_incidence(frame, by=col.ARM, times=[30.0, 60.0]))  # fmt: skip
    _same(sl.compare_arms(ddf, settle_s=120.0), sl.compare_arms(frame, settle_s=120.0))
    assert len(frame) > 40_000

