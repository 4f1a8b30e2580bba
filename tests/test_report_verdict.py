"""export_report(result, path): the report of an experiment states its verdict first.

The experiment runs on the sandbox in a world where the answer is known:
content sent with generic settings fails half the time, and a DDM report
always comes within its timeout, so the DDM arm must deliver more (the
verdict is "go"). The wording of the other verdicts (no decision under a
sample ratio mismatch; inconclusive when the sample is too small) is
checked on the same result with one part changed.
"""

from __future__ import annotations

import json
from dataclasses import replace

import lxml.html
import openpyxl
import pandas as pd
import pytest

import skycore_lab as sl
from skycore_lab import columns as col
from skycore_lab.demo import demo_numbers
from skycore_lab.report.verdict import VERDICT_COLUMNS, verdict_of

#: A DDM always reports in time; content without a known handset often fails.
DDM_WINS = {
    "countries": {"United States": 1.0},
    "ddm": {"p_send_fail": 0.0, "p_no_report": 0.0, "p_report_failed": 0.0, "report_median_s": 20.0,
            "report_sigma": 0.3},
    "content": {"transcoded": {"p_fallback": 0.0, "p_fail": 0.02}, "generic": {"p_fallback": 0.0, "p_fail": 0.5}},
    "carriers": {"United States": [{"name": "Verizon Wireless", "spid": "0001890", "share": 0.6},
                                   {"name": "AT&T", "spid": "0001470", "share": 0.4}]},
}
PARTS = ["Primary metric (delivery rate)", "Sample ratio", "Power", "Minimum detectable effect", "Latency cost"]


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    folder = tmp_path_factory.mktemp("verdict")
    with sl.PostbackReceiver(folder / "postbacks.log") as receiver, \
            sl.Sandbox(seed=5, time_scale=7200, postback_url=receiver.url, scenario=DDM_WINS) as sandbox:  # fmt: skip
        experiment = sl.DdmExperiment({"no_ddm": None, "ddm_5": sl.DDM("Checking your phone", timeout_min=5)},
                                      mms_id=sandbox.mms_ids[0], sender=sandbox.shortcodes[0], seed=5)
        experiment.run(sandbox.client(), demo_numbers(400, seed=5), progress=False)
        assert sandbox.wait_idle(timeout=60)
    return experiment.analyze(sl.read_postbacks(folder / "postbacks.log"))


def test_the_verdict_of_a_clear_winner(result):
    verdict = verdict_of(result)
    assert verdict.tone == "go"
    assert verdict.headline.startswith("ddm_5 delivers more than no_ddm: ")
    assert "significant after adjustment" in verdict.headline and "mean time to delivery" in verdict.headline
    assert [label for label, _ in verdict.parts] == [PARTS[0], *PARTS[1:4], PARTS[4], PARTS[4]]
    power = dict(verdict.parts)["Power"]
    assert f"{result.sample_size.needed_per_arm:,} sends per arm" in power
    mde = dict(verdict.parts)["Minimum detectable effect"]
    assert f"{result.sample_size.detectable_effect * 100:.1f} points" in mde
    assert dict(verdict.parts)["Sample ratio"] == result.srm.text()
    assert list(verdict.primary.columns) == list(VERDICT_COLUMNS) and verdict.primary["verdict"].tolist() == ["more"]
    assert set(verdict.latency["metric"]) == {f"mean time to delivery within {result.horizon_s:g} s",
                                              f"share delivered within {result.within_s:g} s"}


def test_other_verdicts_say_why_there_is_no_decision(result):
    mismatch = replace(result, srm=replace(result.srm, flagged=True))
    verdict = verdict_of(mismatch)
    assert verdict.tone == "warning" and verdict.headline.startswith("No decision: ")
    quiet = result.comparisons.assign(**{col.SIGNIFICANT: False})
    small = replace(result, comparisons=quiet,
                    sample_size=replace(result.sample_size, enough=False, needed_per_arm=5000))
    verdict = verdict_of(small)
    assert verdict.tone == "open" and verdict.headline.startswith("Inconclusive: no arm delivers significantly more")
    assert "5,000 sends per arm needed" in verdict.headline
    enough = replace(small, sample_size=replace(result.sample_size, enough=True))
    assert verdict_of(enough).headline.startswith("Keep no_ddm: no arm delivers significantly more")


def test_the_html_page_opens_with_the_decision(result, tmp_path):
    path = sl.export_report(result, tmp_path / "report.html", title="DDM A/B")
    tree = lxml.html.fromstring(path.read_text(encoding="utf-8"))
    h2 = [h.text_content() for h in tree.xpath("//h2")]
    assert h2[:2] == ["Decision", "Summary"]
    section = tree.xpath('//section[@id="verdict"]')[0]
    assert "tone-go" in section.get("class")
    assert section.xpath('.//p[@class="headline"]')[0].text_content() == verdict_of(result).headline
    assert [dt.text_content() for dt in section.xpath(".//dt")][:4] == [PARTS[0], *PARTS[1:4]]
    header = [th.text_content() for th in section.xpath(".//table")[0].xpath(".//thead//th")]
    assert header == list(VERDICT_COLUMNS)
    # human labels in every table: no raw interval column names
    headers = [th.text_content() for th in tree.xpath("//thead//th")]
    assert "95 % CI" in headers and "ci_low" not in headers and "ci_high" not in headers
    summary_items = [th.text_content() for th in tree.xpath('//h2[.="Summary"]/following-sibling::div[1]//th')]
    assert "delivery rate, 95 % CI (Wilson)" in summary_items and not any("ci_" in item for item in summary_items)
    # the comparisons are the result's own: 1 treatment arm × 3 metrics
    comparisons = tree.xpath('//h3[@id="comparisons"]/following-sibling::div[1]//tbody/tr')
    assert len(comparisons) == len(result.comparisons) == 3
    footer = tree.xpath('//footer[@id="provenance"]')[0].text_content()
    assert "design: arm ddm_5" in footer


def test_the_workbook_summary_starts_with_the_verdict(result, tmp_path):
    path = sl.export_report(result, tmp_path / "report.xlsx")
    rows = list(openpyxl.load_workbook(path, read_only=True)["summary"].iter_rows(min_row=2, values_only=True))
    verdict = verdict_of(result)
    assert rows[: len(verdict.rows())] == [tuple(row) for row in verdict.rows()]
    assert rows[0] == ("decision", verdict.headline)
    assert {item for item, _ in rows} >= {"decision", *PARTS}


def test_csv_and_parquet_of_a_result_hold_its_deliveries_and_its_parameters(result, tmp_path):
    path = sl.export_report(result, tmp_path / "report.csv")
    frame = pd.read_csv(path, dtype=str)
    assert len(frame) == len(result.deliveries) and set(frame[col.ARM]) == {"no_ddm", "ddm_5"}
    sidecar = json.loads((tmp_path / "report.csv.provenance.json").read_text(encoding="utf-8"))
    assert sidecar["parameters"]["alpha"] == result.alpha and sidecar["parameters"]["within_s"] == result.within_s
    assert sorted(sidecar["design"]["arms"]) == ["ddm_5", "no_ddm"]


def test_a_deliveries_frame_still_makes_a_report_without_a_verdict(result, tmp_path):
    path = sl.export_report(result.deliveries, tmp_path / "frame.html")
    text = path.read_text(encoding="utf-8")
    assert 'id="verdict"' not in text and "<h2>Summary</h2>" in text
    with pytest.raises(sl.SkycoreValidationError, match="ExperimentResult or a pandas DataFrame"):
        sl.export_report([1, 2], tmp_path / "x.html")
