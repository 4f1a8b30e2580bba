"""read_events: pandas equals read_postbacks; dask has the same schema; filters, columns, errors; the CLI."""

from __future__ import annotations

import json
import sys

import pandas as pd
import pytest
from dataset_support import assert_same_events, body, log_lines, sorted_categories, write

import skycore_lab as sl
from skycore_lab.cli import main


@pytest.fixture
def dataset(tmp_path):
    write(tmp_path / "a.log", b"".join(log_lines(range(0, 30), codes=("N101", "N102", "E102"))), header=True)
    bundle = body(40).replace(b"<POSTBACK>", b"<POSTBACK><NOTIFICATION>").replace(
        b"</POSTBACK>", b"</NOTIFICATION><NOTIFICATION><CODE>N102</CODE><TRACKINGID>send-40</TRACKINGID>"
        b"<TIMESTAMP>2026-03-03T02:00:00Z</TIMESTAMP><MOBILE>x</MOBILE></NOTIFICATION></POSTBACK>")
    write(tmp_path / "b.txt", bundle + b"\n" + body(41).replace(b"</POSTBACK>", b"<CAMPAIGNID>7</CAMPAIGNID></POSTBACK>")
          + b"\n")
    sources = [tmp_path / "a.log", tmp_path / "b.txt"]
    sl.ingest(sources, tmp_path / "ds")
    return tmp_path / "ds", sources


def test_pandas_returns_read_postbacks_frame(dataset):
    ds, sources = dataset
    events, expected = sl.read_events(ds), sl.read_postbacks(sources)
    assert len(events) == 90 + 3
    assert list(events.dtypes.astype(str)) == list(expected.dtypes.astype(str))
    assert_same_events(events, expected)
    # extra survives as dicts; a bundle's notifications stay in document order
    assert events.loc[events["tracking_id"] == "send-41", "extra"].iloc[0] == {"CAMPAIGNID": "7"}
    assert list(events.loc[events["tracking_id"] == "send-40", "code"].astype(str)) == ["N101", "N102"]


def test_categories_are_the_values_present_sorted(dataset):
    events = sl.read_events(dataset[0], filters=[("code", "=", "E102")])
    assert list(events["code"].cat.categories) == ["E102"]
    assert events["code"].cat.categories.dtype == "str"
    carriers = list(sl.read_events(dataset[0])["carrier"].cat.categories)
    assert carriers == sorted(carriers)


def test_filters_on_the_partition_and_columns(dataset):
    ds, sources = dataset
    expected = sl.read_postbacks(sources)
    late = sl.read_events(ds, filters=[("event_date", ">=", "2026-03-03")], columns=["tracking_id", "timestamp"])
    assert list(late.columns) == ["tracking_id", "timestamp"]
    wanted = expected[expected["timestamp"] >= pd.Timestamp("2026-03-03", tz="UTC")]
    assert late["tracking_id"].tolist() == wanted["tracking_id"].tolist()
    codes = sl.read_events(ds, filters=[[("code", "=", "N102"), ("to", "=", "14153430003")], [("code", "=", "E102")]])
    assert len(codes) == 1 + 30
    with pytest.raises(sl.DatasetError, match="unknown column"):
        sl.read_events(ds, columns=["nope"])
    with pytest.raises(sl.DatasetError, match="engine"):
        sl.read_events(ds, engine="spark")


def test_dask_has_the_same_schema_and_rows(dataset):
    ds, _sources = dataset
    pandas = sl.read_events(ds)
    frame = sl.read_events(ds, engine="dask")
    import dask.dataframe as dd

    assert isinstance(frame, dd.DataFrame)
    # the same dtypes; the categories of a lazy frame are unknown until computed
    assert frame.dtypes.astype(str).to_dict() == pandas.dtypes.astype(str).to_dict()
    assert all(frame[name].dtype.categories.dtype == "str" for name in frame.columns if frame[name].dtype == "category")
    computed = frame.compute()
    assert computed.dtypes.to_dict() == pandas.dtypes.to_dict()
    key = ["received_at", "source", "line", "code"]
    left = sorted_categories(computed.sort_values(key, kind="stable").reset_index(drop=True))
    right = sorted_categories(pandas.sort_values(key, kind="stable").reset_index(drop=True))
    pd.testing.assert_frame_equal(left, right)
    some = sl.read_events(ds, engine="dask", filters=[("code", "=", "E102")], columns=["code", "event_date"])
    assert set(some.compute()["code"].astype(str)) == {"E102"} and len(some) == 30


def test_dask_missing_says_what_to_install(dataset, monkeypatch):
    monkeypatch.setitem(sys.modules, "dask.dataframe", None)  # what an environment without dask gives
    with pytest.raises(sl.MissingDependencyError, match=r'pip install "skycore-lab\[dask\]"') as caught:
        sl.read_events(dataset[0], engine="dask")
    assert isinstance(caught.value, sl.SkycoreError) and isinstance(caught.value, ImportError)


def test_not_a_dataset_and_a_damaged_one_are_named(tmp_path, dataset):
    with pytest.raises(sl.DatasetError, match="not an events dataset"):
        sl.read_events(tmp_path / "empty")
    ds = dataset[0]
    (ds / "_ingest_state.json").write_text(json.dumps({"format": 99}))
    with pytest.raises(sl.DatasetError, match="not a skycore-lab dataset state"):
        sl.read_events(ds)


def test_cli_ingest_prints_the_counts(tmp_path, capsys):
    write(tmp_path / "a.log", b"".join(log_lines(range(0, 5))))
    assert main(["ingest", str(tmp_path / "a.log"), "--dataset", str(tmp_path / "ds")]) == 0
    assert "1 files, 10 new records, 0 bad records, 0 duplicates dropped" in capsys.readouterr().out
    assert main(["ingest", str(tmp_path / "*.log"), "--dataset", str(tmp_path / "ds")]) == 0
    assert "0 new records" in capsys.readouterr().out
    assert main(["ingest", str(tmp_path / "missing.log"), "--dataset", str(tmp_path / "ds")]) == 1
    assert "missing.log" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [
    ["ingest", "--dataset", "ds"],  # no logs
    ["ingest", "a.log"],  # no --dataset
    ["ingest", "a.log", "--dataset", "no/such/parent/ds"],
])
def test_cli_ingest_usage_errors_exit_2(tmp_path, monkeypatch, argv, capsys):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "a.log", b"")
    with pytest.raises(SystemExit) as stopped:
        main(argv)
    assert stopped.value.code == 2
    assert "ingest" in capsys.readouterr().err


def test_cli_ingest_refuses_a_file_as_dataset(tmp_path, capsys):
    write(tmp_path / "a.log", b"")
    with pytest.raises(SystemExit) as stopped:
        main(["ingest", str(tmp_path / "a.log"), "--dataset", str(tmp_path / "a.log")])
    assert stopped.value.code == 2
    assert "--dataset" in capsys.readouterr().err
