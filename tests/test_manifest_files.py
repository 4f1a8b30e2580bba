"""sl.read_manifest / sl.write_manifest: manifests as files, in CSV, JSON and Parquet.

The round trips are checked with hypothesis on the values that break naive
readers: numbers with leading zeros and more digits than a float holds,
missing values, strings that look like numbers, missing markers or
formulas, quotes, commas, newlines and non-ASCII text. Every writer of a
manifest (send_batch, DdmExperiment.save, the send form, the CLI) is read
back by the same reader.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import skycore_lab as sl
from skycore_lab import columns as col
from skycore_lab.exceptions import SkycoreValidationError
from skycore_lab.manifest import EXPERIMENT_FORMAT, manifest_frame

FORMATS = (".csv", ".json", ".parquet")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# --- values --------------------------------------------------------------------------------------
digits = st.from_regex(r"\A0{0,3}[0-9]{1,19}\Z")  # leading zeros, up to 22 digits (beyond float and int64)
odd = st.sampled_from(["NA", "N/A", "null", "None", "nan", "NaN", "#N/A", "-", "0", "0.0", "1e5", " x ", "=1+1",
                       "a,b", 'say "hi"', "line\nbreak", "cr\r\nlf", "tab\tbed", "Zürich ✓", "+15551234567",
                       "TU1TXzU5Nzg3OQ=="])
text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12)
cell = st.one_of(st.none(), digits, odd, text)
stamp = st.one_of(st.none(), st.datetimes(min_value=pd.Timestamp("1990-01-01").to_pydatetime(),
                                          max_value=pd.Timestamp("2100-01-01").to_pydatetime()))


@st.composite
def manifests(draw):
    n = draw(st.integers(0, 6))
    rows = [{col.TO: draw(st.one_of(st.none(), digits)),
             col.STATUS: draw(st.sampled_from([None, "Success", "Failure", "Invalid", "Unknown"])),
             col.TRACKING_ID: draw(st.one_of(st.none(), digits, odd)),
             col.SENDER: draw(st.one_of(st.none(), digits)),
             col.REQUESTED_AT: draw(stamp),
             col.ERROR_CODE: draw(st.one_of(st.none(), st.just("E110"))),
             col.ERROR_INFO: draw(cell),
             col.ARM: draw(st.sampled_from([None, "no_ddm", "ddm 5", "0"])),
             "stratum": draw(cell)} for _ in range(n)]
    frame = pd.DataFrame(rows, columns=[*col.MANIFEST_COLUMNS, col.ARM, "stratum"], dtype=object)
    frame[col.REQUESTED_AT] = pd.to_datetime(frame[col.REQUESTED_AT]).dt.tz_localize("UTC")
    return frame


def _same(back: pd.DataFrame, expected: pd.DataFrame) -> None:
    expected = manifest_frame(expected)
    back, expected = back.copy(), expected.copy()
    # a CSV knows no categories: the reader lists them in order of appearance
    if col.ARM in back.columns:
        back[col.ARM] = back[col.ARM].astype(object)
        expected[col.ARM] = expected[col.ARM].astype(object)
    back.attrs, expected.attrs = {}, {}
    pd.testing.assert_frame_equal(back, expected)


@pytest.mark.parametrize("suffix", FORMATS)
@settings(max_examples=40)
@given(frame=manifests())
def test_round_trip_keeps_values_and_dtypes(tmp_path_factory, suffix, frame):
    path = tmp_path_factory.mktemp("m") / f"manifest{suffix}"
    sl.write_manifest(frame, path)
    back = sl.read_manifest(path)
    _same(back, frame)
    assert back[col.REQUESTED_AT].dtype == col.DATETIME_DTYPE
    for name in (col.TO, col.TRACKING_ID, col.SENDER, col.ERROR_INFO, "stratum"):
        assert pd.api.types.is_string_dtype(back[name].dtype), name


def test_leading_zeros_and_long_numbers_survive_each_format(tmp_path):
    frame = pd.DataFrame({col.TO: ["0012345678901234567890", None], col.TRACKING_ID: ["000", "NA"],
                          col.SENDER: ["060856", ""], col.REQUESTED_AT: [pd.Timestamp("2024-05-01 12:00:00.123456",
                                                                                     tz="Europe/Paris"), pd.NaT]})
    for suffix in FORMATS:
        back = sl.read_manifest(sl.write_manifest(frame, tmp_path / f"m{suffix}"))
        assert back[col.TO].tolist()[0] == "0012345678901234567890" and pd.isna(back[col.TO][1])
        assert back[col.TRACKING_ID].tolist() == ["000", "NA"]  # "NA" is a value, not a missing marker
        assert back[col.SENDER][0] == "060856" and pd.isna(back[col.SENDER][1])  # empty = missing
        assert back[col.REQUESTED_AT][0] == pd.Timestamp("2024-05-01 10:00:00.123456", tz="UTC")
        assert str(back[col.REQUESTED_AT].dt.tz) == "UTC"


def test_csv_times_are_iso_utc_text(tmp_path):
    frame = pd.DataFrame({col.TO: ["1"], col.TRACKING_ID: ["t"],
                          col.REQUESTED_AT: [pd.Timestamp("2024-05-01 12:00:03.25", tz="UTC")]})
    text = sl.write_manifest(frame, tmp_path / "m.csv").read_text(encoding="utf-8")
    assert text.splitlines()[1] == "1,t,2024-05-01T12:00:03.250000Z"


# --- every writer, one reader ----------------------------------------------------------------------
def test_reads_the_committed_sample_and_csv_with_pandas_default_times(tmp_path):
    sample = sl.read_manifest(os.path.join(ROOT, "data", "sample_manifest.csv"))
    assert len(sample) == 1200 and sample[col.REQUESTED_AT].dtype == col.DATETIME_DTYPE
    assert set(sample[col.ARM].cat.categories) == {"no_ddm", "ddm_5", "ddm_15"}
    naive = tmp_path / "naive.csv"  # no offset at all: UTC, as the docstring says
    naive.write_text("to,tracking_id,requested_at\n0123,t,2024-05-01 12:00:00\n", encoding="utf-8")
    back = sl.read_manifest(naive)
    assert back[col.TO][0] == "0123" and back[col.REQUESTED_AT][0] == pd.Timestamp("2024-05-01 12:00", tz="UTC")


def test_send_batch_manifest_round_trips(tmp_path):
    with sl.Sandbox(seed=3, time_scale=3600) as sandbox, sl.SkycoreClient(sandbox.api_key, sandbox.url) as client:
        manifest = client.send_batch(["17743199144", "0123", "447911123456"], sandbox.mms_ids[0],
                                     sandbox.shortcodes[0], progress=False)
    assert list(manifest.columns) == list(col.MANIFEST_COLUMNS)
    assert manifest[col.STATUS].tolist() == ["Success", "Invalid", "Success"]
    for suffix in FORMATS:
        back = sl.read_manifest(sl.write_manifest(manifest, tmp_path / f"batch{suffix}"))
        _same(back, manifest)
        assert back[col.TO][1] == "0123"


def test_experiment_json_is_read_with_its_arms_in_design_order(tmp_path):
    arms = {"z_control": None, "a_ddm": sl.DDM("hi", timeout_min=5)}
    experiment = sl.DdmExperiment(arms, mms_id="0042", sender="060856", seed=1)
    manifest = pd.DataFrame({col.TO: ["0015550001", "15550002"], col.ARM: ["a_ddm", "z_control"],
                             col.TRACKING_ID: ["001", None], col.REQUESTED_AT: [pd.Timestamp("2024-01-01", tz="UTC"),
                                                                                 pd.NaT],
                             col.STATUS: ["Success", "Failure"], col.ERROR_CODE: [None, "E110"],
                             col.ERROR_INFO: [None, "bad"], col.SENDER: ["060856", "060856"], "stratum": ["US", "US"]})
    experiment.manifest = manifest_frame(manifest, arms=list(arms))
    path = experiment.save(tmp_path / "experiment.json")
    assert json.loads(path.read_text())["format"] == EXPERIMENT_FORMAT
    back = sl.read_manifest(path)
    assert list(back[col.ARM].cat.categories) == ["z_control", "a_ddm"]  # the design's order, not sorted
    assert back[col.TO].tolist() == ["0015550001", "15550002"] and back[col.TRACKING_ID][0] == "001"
    loaded = sl.DdmExperiment.load(path)
    pd.testing.assert_frame_equal(loaded.manifest.assign(**{"x": 0}).drop(columns="x"), back, check_like=False)


def test_send_form_history_round_trips(tmp_path):
    with sl.Sandbox(seed=4, time_scale=3600) as sandbox, sl.SkycoreClient(sandbox.api_key, sandbox.url) as client:
        form = sl.SendWidget(client)
        try:
            form.mms_id.value, form.sender.value = str(sandbox.mms_ids[0]), str(sandbox.shortcodes[0])
            for number in ("17743199144", "447911123456"):
                form.recipient.value = number
                form.send_button.click()
            for suffix in FORMATS:
                path = form.save_history(tmp_path / f"history{suffix}")
                back = sl.read_manifest(path)
                history = form.history
                assert list(back.columns) == list(history.columns)
                assert back[col.TRACKING_ID].tolist() == history[col.TRACKING_ID].tolist()
                assert back[col.REQUESTED_AT].tolist() == history[col.REQUESTED_AT].tolist()
        finally:
            form.close()


def test_manifest_joins_deliveries_like_the_hand_written_reader():
    path = os.path.join(ROOT, "data", "sample_manifest.csv")
    by_hand = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    by_hand[col.REQUESTED_AT] = pd.to_datetime(by_hand[col.REQUESTED_AT], utc=True, format="ISO8601")
    events = sl.read_postbacks(os.path.join(ROOT, "data", "sample_postbacks.log"))
    ours, theirs = sl.deliveries(events, sl.read_manifest(path)), sl.deliveries(events, by_hand)
    assert ours[col.OUTCOME].tolist() == theirs[col.OUTCOME].tolist()
    assert ours[col.TRACKING_ID].tolist() == theirs[col.TRACKING_ID].tolist()


# --- bad files ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name, content, message", [
    ("m.txt", "to,tracking_id\n1,2\n", r"unknown manifest format '\.txt'.*\.csv, \.json, \.parquet"),
    ("m.csv", "number,id\n1,2\n", r"not a send manifest: no column\(s\) to, tracking_id"),
    ("m.csv", "to,tracking_id,requested_at\n1,2,yesterday\n", r"requested_at.*cannot be read"),
    ("m.csv", b"to,tracking_id\n\xff\xfe,1\n", r"cannot be read as a \.csv manifest"),
    ("m.json", "{not json", r"m\.json: cannot be read as a \.json manifest"),
    ("m.json", '{"format": "something else v9", "data": []}', r"unknown JSON format 'something else v9'"),
    ("m.json", '{"columns": ["to", "tracking_id"], "data": [["1"]]}', r"every row of 'data' must be a list of 2"),
    ("m.json", '"a string"', r"expected a manifest document"),
    ("m.json", json.dumps({"format": EXPERIMENT_FORMAT, "design": {"arms": {}}, "manifest": None}),
     r"never run has no manifest"),
    ("m.parquet", b"PAR1 this is not parquet", r"m\.parquet: cannot be read as a \.parquet manifest"),
])
def test_malformed_files_are_refused_naming_the_file(tmp_path, name, content, message):
    path = tmp_path / name
    (path.write_bytes if isinstance(content, bytes) else path.write_text)(content)
    with pytest.raises(SkycoreValidationError, match=message):
        sl.read_manifest(path)


def test_missing_file_is_a_file_not_found_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="manifest not found"):
        sl.read_manifest(tmp_path / "nothing.csv")


def test_json_list_of_rows_and_numbers_as_json_numbers(tmp_path):
    path = tmp_path / "rows.json"
    path.write_text(json.dumps([{"to": 15550001, "tracking_id": "a", "requested_at": "2024-05-01T12:00:00Z"},
                                {"to": None, "tracking_id": 7.0}]))
    back = sl.read_manifest(path)
    assert back[col.TO][0] == "15550001" and pd.isna(back[col.TO][1])
    assert back[col.TRACKING_ID].tolist() == ["a", "7.0"]  # a float stays what it says: never guessed
    assert back[col.REQUESTED_AT][0] == pd.Timestamp("2024-05-01 12:00", tz="UTC")


def test_write_refuses_a_frame_that_is_not_a_manifest(tmp_path):
    with pytest.raises(SkycoreValidationError, match="no column"):
        sl.write_manifest(pd.DataFrame({"x": [1]}), tmp_path / "m.csv")
    assert not list(tmp_path.iterdir())


def test_float_identifiers_from_a_naive_read_lose_their_dot_zero():
    frame = manifest_frame(pd.DataFrame({col.TO: [17743199144.0, np.nan], col.TRACKING_ID: ["a", "b"]}))
    assert frame[col.TO][0] == "17743199144" and pd.isna(frame[col.TO][1])
