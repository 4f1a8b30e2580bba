"""``skycore-lab report --dataset DIR [--scheduler ADDRESS]``: the logs' report, from a Parquet dataset on Dask.

The dataset is written by :func:`skycore_lab.ingest` from a generated log,
and the report from it must equal the report from the log itself.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import pandas as pd
import pytest

dd = pytest.importorskip("dask.dataframe", reason="the [dask] extra is not installed")
distributed = pytest.importorskip("distributed", reason="the [dask] extra is not installed")

import skycore_lab as sl  # noqa: E402
from skycore_lab import columns as col  # noqa: E402
from skycore_lab.cli import main  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import gen_postback_log  # noqa: E402

# dask's parquet reader calls reset_index(inplace=True), which pandas 3.1 deprecates: dask's, not ours
pytestmark = pytest.mark.filterwarnings("ignore:The inplace keyword in DataFrame.reset_index")

CATEGORY_COLUMNS = (col.CARRIER, col.COUNTRY, col.SENT_AS, col.FINAL_CODE, col.OUTCOME, col.DDM)


@pytest.fixture(scope="module")
def log_and_dataset(tmp_path_factory):
    """A generated postback log, and the same events ingested into a Parquet dataset."""
    folder = tmp_path_factory.mktemp("dataset")
    log = folder / "postbacks.log"
    gen_postback_log.generate(str(log), 4_000, seed=21)
    dataset = folder / "events"
    result = sl.ingest([log], dataset)
    assert result.new_records > 0 and len(list(dataset.glob("event_date=*"))) >= 1
    return log, dataset


@pytest.fixture(scope="module")
def scheduler():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                           dashboard_address=None)  # fmt: skip
    yield cluster.scheduler_address
    cluster.close()


def _sends(path: Path) -> pd.DataFrame:
    frame = pd.read_parquet(path).sort_values(col.TRACKING_ID).reset_index(drop=True)
    for name in CATEGORY_COLUMNS:
        frame[name] = frame[name].astype(object)
    return frame


def _same_report(log: Path, dataset_report: Path, tmp_path: Path) -> None:
    from_logs = tmp_path / "from-logs.parquet"
    assert main(["report", str(log), "--out", str(from_logs)]) == 0
    pd.testing.assert_frame_equal(_sends(dataset_report), _sends(from_logs))


def test_report_from_a_real_dataset_equals_the_logs_report(tmp_path, scheduler):
    log = tmp_path / "postbacks.log"
    gen_postback_log.generate(str(log), 3_000, seed=22)
    sl.ingest([log], tmp_path / "ds")
    out = tmp_path / "from-dataset.parquet"
    assert main(["report", "--dataset", str(tmp_path / "ds"), "--scheduler", scheduler, "--out", str(out)]) == 0
    _same_report(log, out, tmp_path)


def test_report_on_an_existing_scheduler_equals_the_logs_report(log_and_dataset, scheduler, tmp_path, capsys):
    log, dataset = log_and_dataset
    out = tmp_path / "from-dataset.parquet"
    assert main(["report", "--dataset", str(dataset), "--scheduler", scheduler, "--out", str(out)]) == 0
    assert "sends from the dataset" in capsys.readouterr().out
    _same_report(log, out, tmp_path)
    html = tmp_path / "from-dataset.html"
    assert main(["report", "--dataset", str(dataset), "--scheduler", scheduler, "--out", str(html)]) == 0
    assert "Delivery rate" in html.read_text(encoding="utf-8") or "delivery rate" in html.read_text(encoding="utf-8")


@pytest.mark.slow
def test_report_on_a_local_cluster_by_default(log_and_dataset, tmp_path):
    log, dataset = log_and_dataset
    out = tmp_path / "local.parquet"
    assert main(["report", "--dataset", str(dataset), "--out", str(out)]) == 0
    _same_report(log, out, tmp_path)


@pytest.mark.parametrize("argv, wrong", [
    (["report", "x.log", "--dataset", "{dataset}", "--out", "{out}"], "not both"),
    (["report", "x.log", "--scheduler", "tcp://127.0.0.1:1", "--out", "{out}"], "--dataset"),
    (["report", "--out", "{out}"], "--dataset"),
    (["report", "--dataset", "{missing}", "--out", "{out}"], "no such dataset folder"),
])  # fmt: skip
def test_usage_errors_before_any_work(log_and_dataset, tmp_path, capsys, argv, wrong):
    _log, dataset = log_and_dataset
    names = {"dataset": str(dataset), "out": str(tmp_path / "r.html"), "missing": str(tmp_path / "nope")}
    with pytest.raises(SystemExit) as exited:
        main([part.format(**names) for part in argv])
    assert exited.value.code == 2
    assert wrong in capsys.readouterr().err
    assert not (tmp_path / "r.html").exists()


def test_without_dask_the_command_says_what_to_install(log_and_dataset, tmp_path, capsys, monkeypatch):
    _log, dataset = log_and_dataset
    monkeypatch.setitem(sys.modules, "distributed", None)
    assert main(["report", "--dataset", str(dataset), "--out", str(tmp_path / "r.html")]) == 1
    assert 'pip install "skycore-lab[dask]"' in capsys.readouterr().err
    assert not (tmp_path / "r.html").exists()
