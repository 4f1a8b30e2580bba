"""Provenance in every export: the source files with size and SHA-256, counts, version, parameters, design.

The hashes are checked against ``hashlib`` run on the files here, not
against the code that recorded them; the four formats are read back with
their own readers (lxml, openpyxl, json, pyarrow).
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import shutil

import lxml.html
import openpyxl
import pandas as pd
import pyarrow.parquet as pq
import pytest

import skycore_lab as sl
from skycore_lab import columns as col
from skycore_lab.cli import main
from skycore_lab.provenance import SOURCES_ATTR, collect_provenance
from skycore_lab.report.provenance import PARQUET_KEY, sidecar_path

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE_LOG = os.path.join(ROOT, "data", "sample_postbacks.log")
SAMPLE_MANIFEST = os.path.join(ROOT, "data", "sample_manifest.csv")
BAD = os.path.join(ROOT, "tests", "data", "postbacks", "with_bad_records.xml")


def _sha256(path) -> str:
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("inputs")
    log = folder / "postbacks.log"
    bad = folder / "more <b>postbacks&amp.xml"  # a name that must be escaped in HTML
    shutil.copy(SAMPLE_LOG, log)
    shutil.copy(BAD, bad)
    with pytest.warns(sl.PostbackParseWarning):
        events = sl.read_postbacks([log, bad])
    manifest = sl.read_manifest(SAMPLE_MANIFEST)
    frame = sl.deliveries(events, manifest)
    expected = {str(path.resolve()): (_sha256(path), path.stat().st_size) for path in (log, bad)}
    expected[os.path.realpath(SAMPLE_MANIFEST)] = (_sha256(SAMPLE_MANIFEST), os.path.getsize(SAMPLE_MANIFEST))
    return frame, events, expected


def _check_sources(sources: list[dict], expected: dict) -> None:
    assert {s["path"]: (s["sha256"], s["size"]) for s in sources} == expected
    assert all(s["status"] == "unchanged" for s in sources)


def test_readers_record_their_files_and_deliveries_carry_them(inputs):
    frame, events, expected = inputs
    by_path = {s["path"]: s for s in frame.attrs[SOURCES_ATTR]}
    assert set(by_path) == set(expected)
    log, bad = (by_path[p] for p in expected if p.endswith((".log", ".xml")))
    assert log["role"] == "postbacks" and log["records"] > 1000 and log["bad_lines"] == 0
    assert bad["bad_lines"] >= 1 and bad["records"] >= 1
    assert sum(s["records"] for s in (log, bad)) >= len(events)  # before the retries were dropped
    # pandas carries the record through its operations without copying it
    assert frame.head(3).attrs[SOURCES_ATTR] is frame.attrs[SOURCES_ATTR]
    assert copy.deepcopy(frame.attrs)[SOURCES_ATTR] is frame.attrs[SOURCES_ATTR]


@pytest.mark.filterwarnings("ignore::skycore_lab.SkycoreWarning")  # the bad file's sends have no arm
def test_every_format_records_hashes_that_match_the_files(inputs, tmp_path):
    frame, events, expected = inputs
    html_path = sl.export_report(frame, tmp_path / "r.html", events=events, within_s=300, as_of="2026-11-26")
    tree = lxml.html.fromstring(html_path.read_text(encoding="utf-8"))
    footer = dict((row.xpath("string(th)"), row.xpath("string(td)")) for row in tree.xpath("//footer//tr"))
    assert {footer[key] for key in footer if key.endswith("sha256")} == {sha for sha, _ in expected.values()}
    assert {footer[key] for key in footer if key.endswith(": postbacks") or key.endswith(": manifest")} == set(expected)
    assert footer["skycore-lab version"] == sl.__version__
    assert footer["parameter: within_s"] == "300.0" and footer["parameter: alpha"] == "0.05"
    assert footer["parameter: as_of"].startswith("2026-11-26T00:00:00")
    assert int(footer["count: bad lines"]) >= 1 and int(footer["count: sends"]) == len(frame)
    assert "<b>" not in html_path.read_text(encoding="utf-8").split("<footer", 1)[1]  # escaped
    assert any("more <b>postbacks&amp.xml" in value for value in footer.values())

    book = openpyxl.load_workbook(sl.export_report(frame, tmp_path / "r.xlsx", events=events), read_only=True)
    rows = dict(row for row in book["provenance"].iter_rows(min_row=2, values_only=True))
    assert {rows[key] for key in rows if key.endswith("sha256")} == {sha for sha, _ in expected.values()}
    assert {int(rows[key]) for key in rows if key.endswith("size (bytes)")} == {size for _, size in expected.values()}

    csv_path = sl.export_report(frame, tmp_path / "r.csv")
    sidecar = json.loads((tmp_path / "r.csv.provenance.json").read_text(encoding="utf-8"))
    assert sidecar_path(csv_path).name == "r.csv.provenance.json"
    _check_sources(sidecar["sources"], expected)
    assert sidecar["format"] == "skycore-lab provenance v1" and sidecar["skycore_lab_version"] == sl.__version__
    assert sidecar["parameters"] == {"as_of": None, "within_s": 600.0, "alpha": 0.05}

    parquet_path = sl.export_report(frame, tmp_path / "r.parquet")
    metadata = json.loads(pq.read_schema(parquet_path).metadata[PARQUET_KEY])
    _check_sources(metadata["sources"], expected)
    assert len(pd.read_parquet(parquet_path)) == len(frame)  # still an ordinary Parquet file


def test_experiment_design_is_recorded(tmp_path):
    arms = {"no_ddm": None, "ddm_5": sl.DDM("Checking your phone", timeout_min=5)}
    with sl.PostbackReceiver(tmp_path / "pb.log") as rx, \
            sl.Sandbox(seed=2, time_scale=3600, postback_url=rx.url) as sandbox, \
            sl.SkycoreClient(sandbox.api_key, sandbox.url) as client:
        experiment = sl.DdmExperiment(arms, mms_id=sandbox.mms_ids[0], sender=sandbox.shortcodes[0], seed=11)
        experiment.run(client, [f"1415555{n:04d}" for n in range(40)], progress=False)
        assert sandbox.wait_idle(timeout=30)
    saved = experiment.save(tmp_path / "experiment.json")
    result = experiment.analyze(sl.read_postbacks(tmp_path / "pb.log"))
    path = sl.export_report(result.deliveries, tmp_path / "r.csv")
    design = json.loads(sidecar_path(path).read_text())["design"]
    assert design["seed"] == 11 and list(design["arms"]) == ["no_ddm", "ddm_5"] and design["arms"]["no_ddm"] is None
    assert design["arms"]["ddm_5"]["timeout_min"] == 5 and design["control"] == "no_ddm"
    assert "randomisation" in design["allocation"]["method"]
    assert sum(design["allocation"]["assigned"].values()) == len(result.deliveries)
    # the same design from the saved file, through read_manifest
    again = sl.deliveries(sl.read_postbacks(tmp_path / "pb.log"), sl.read_manifest(saved))
    provenance = collect_provenance(again)
    assert provenance.design["seed"] == 11
    assert any(s["role"] == "experiment" and s["sha256"] == _sha256(saved) for s in provenance.sources)


def test_a_log_that_grew_is_hashed_as_read_and_one_that_shrank_is_flagged(tmp_path):
    log = tmp_path / "postbacks.log"
    shutil.copy(SAMPLE_LOG, log)
    read_bytes = log.read_bytes()
    events = sl.read_postbacks(log)
    with open(log, "ab") as handle:  # the receiver keeps writing
        handle.write(b"# more\n")
    (source,) = collect_provenance(sl.deliveries(events), events=events).sources
    assert source["sha256"] == hashlib.sha256(read_bytes).hexdigest() and source["size"] == len(read_bytes)
    assert source["status"].startswith("grew since read")
    log.write_bytes(read_bytes[:100])
    (source,) = collect_provenance(events=events).sources
    assert source["sha256"] is None and source["status"].startswith("changed since read")
    log.unlink()
    (source,) = collect_provenance(events=events).sources
    assert source["status"].startswith("missing now")


def test_a_frame_without_recorded_sources_says_so_and_user_parquet_still_works(tmp_path):
    frame = pd.DataFrame({col.TRACKING_ID: ["a"], col.OUTCOME: pd.Categorical(["pending"], categories=col.OUTCOMES)})
    rows = dict(collect_provenance(frame).rows())
    assert rows["sources"].startswith("none recorded")
    events = sl.read_postbacks(SAMPLE_LOG)
    events.head(5).drop(columns=[col.EXTRA]).to_parquet(tmp_path / "user.parquet")  # attrs are JSON-able
    assert pd.read_parquet(tmp_path / "user.parquet").attrs[SOURCES_ATTR][0]["role"] == "postbacks"


def test_cli_report_records_the_logs_and_the_manifest(tmp_path, capsys):
    out = tmp_path / "report.csv"
    assert main(["report", SAMPLE_LOG, "--manifest", SAMPLE_MANIFEST, "--out", str(out)]) == 0
    sidecar = json.loads(sidecar_path(out).read_text())
    _check_sources(sidecar["sources"], {os.path.realpath(p): (_sha256(p), os.path.getsize(p))
                                        for p in (SAMPLE_LOG, SAMPLE_MANIFEST)})
    assert sidecar["counts"]["manifest_rows"] == 1200 and sidecar["counts"]["sends"] == len(pd.read_csv(out))
    assert sidecar["parameters"]["within_s"] == 600.0


def test_a_directory_records_each_file_with_its_real_path_and_time_and_a_touch_is_flagged(tmp_path):
    folder, elsewhere = tmp_path / "bodies", tmp_path / "elsewhere"
    folder.mkdir()
    elsewhere.mkdir()
    body = b'<?xml version="1.0"?><POSTBACK><ORIGIN>MMS_MT</ORIGIN><CODE>N101</CODE><TRACKINGID>t%d</TRACKINGID></POSTBACK>'
    for number in range(3):
        (folder / f"p{number}.xml").write_bytes(body % number)
    (elsewhere / "linked.xml").write_bytes(body % 9)
    (folder / "q.xml").symlink_to(elsewhere / "linked.xml")  # a link is recorded as the file it points to
    events = sl.read_postbacks(folder)
    records = {r["path"]: r for r in events.attrs[SOURCES_ATTR]}
    real = [str((folder / f"p{n}.xml").resolve()) for n in range(3)] + [str((elsewhere / "linked.xml").resolve())]
    assert sorted(records) == sorted(real) and len(events) == 4
    for path in real:
        stat = os.stat(path)
        recorded = pd.Timestamp(records[path]["modified_at"])
        assert abs(recorded.value - stat.st_mtime_ns) < 1000 and records[path]["size"] == stat.st_size
    assert {s["status"] for s in collect_provenance(events=events).sources} == {"unchanged"}
    stat = os.stat(real[0])
    os.utime(real[0], ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))  # same size, new time
    statuses = {s["path"]: s["status"] for s in collect_provenance(events=events).sources}
    assert statuses[real[0]].startswith("modified since read") and statuses[real[1]] == "unchanged"
