"""skycore_lab.report: the HTML parses and embeds every figure, the workbook has the named sheets
and row counts, CSV/Parquet round-trip, errors are clear and never leave half-written files."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # before pyplot; the lead's conftest does the same

import base64  # noqa: E402
import sys  # noqa: E402
import warnings  # noqa: E402
from html.parser import HTMLParser  # noqa: E402
from pathlib import Path  # noqa: E402

import lxml.html  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import openpyxl  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from skycore_lab import optional, stats  # noqa: E402
from skycore_lab import columns as col  # noqa: E402
from skycore_lab.report.content import NO_ARM_LABEL  # noqa: E402
from skycore_lab.exceptions import SkycoreValidationError  # noqa: E402
from skycore_lab.report import REPORT_FORMATS, export_report  # noqa: E402

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
EVIL = "<script>alert(1)</script>"
ARMS = ("control", "ddm_2min", "ddm_5min")
SHEETS = ["summary", "rates by carrier", "rates by arm", "rates by carrier × arm", "latency", "comparisons",
          "deliveries", "provenance"]  # fmt: skip


def make_deliveries(n: int = 240, seed: int = 7, arms=ARMS) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    t0 = pd.Timestamp("2024-05-01 12:00", tz="UTC")
    requested = t0 + pd.to_timedelta(rng.uniform(0, 3600, n), unit="s")
    sent = requested + pd.to_timedelta(rng.uniform(1, 5, n), unit="s")
    outcome = rng.choice(col.OUTCOMES, size=n, p=[0.7, 0.08, 0.05, 0.03, 0.02, 0.12])
    latency = np.exp(rng.normal(np.log(30), 1.0, n))
    delivered = outcome == col.OUTCOME_DELIVERED
    failed = np.isin(outcome, col.FAILURE_OUTCOMES)
    frame = pd.DataFrame(
        {
            col.TRACKING_ID: pd.array([f"MMS_{i}" for i in range(n)], dtype="str"),
            col.CARRIER: pd.Categorical(rng.choice(["AT&T", "Verizon", EVIL], n)),
            col.REQUESTED_AT: requested,
            col.SENT_AT: sent,
            col.DELIVERED_AT: pd.Series(sent).where(delivered) + pd.to_timedelta(latency, unit="s"),
            col.FAILED_AT: pd.Series(sent).where(failed) + pd.to_timedelta(latency / 2, unit="s"),
            col.OUTCOME: pd.Categorical(outcome, categories=col.OUTCOMES, ordered=True),
            col.LATENCY_S: np.where(delivered, latency, np.nan),
        }
    )
    frame[col.TOTAL_LATENCY_S] = frame[col.LATENCY_S] + (sent - requested).total_seconds()
    if arms:
        frame[col.ARM] = pd.Categorical(rng.choice(arms, n), categories=list(arms))
    return frame


def make_events(frame: pd.DataFrame) -> pd.DataFrame:
    sent = pd.DataFrame({col.CODE: "N101", col.TRACKING_ID: frame[col.TRACKING_ID], col.TIMESTAMP: frame[col.SENT_AT]})
    done = frame[frame[col.DELIVERED_AT].notna()]
    delivered = pd.DataFrame(
        {col.CODE: "N102", col.TRACKING_ID: done[col.TRACKING_ID], col.TIMESTAMP: done[col.DELIVERED_AT]}
    )
    return pd.concat([sent, delivered], ignore_index=True)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def deliveries() -> pd.DataFrame:
    return make_deliveries()


@pytest.fixture(scope="module")
def html_report(tmp_path_factory, deliveries):
    path = tmp_path_factory.mktemp("report") / "report.html"
    written = export_report(deliveries, path, events=make_events(deliveries), title=f"DDM test {EVIL} & co")
    return written, written.read_text(encoding="utf-8")


class _NestingChecker(HTMLParser):
    """Fails on mis-nested or unclosed elements (a cheap HTML5 well-formedness check)."""

    VOID = {"meta", "img", "br", "hr", "link", "input"}

    def __init__(self):
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack.pop() != tag:
            self.errors.append(f"unexpected </{tag}>")


# --- HTML ------------------------------------------------------------------------------------------
def test_html_returns_path_and_is_well_formed_html5(html_report):
    path, text = html_report
    assert isinstance(path, Path) and path.name == "report.html"
    assert text.startswith("<!DOCTYPE html>")
    checker = _NestingChecker()
    checker.feed(text)
    checker.close()
    assert checker.errors == [] and checker.stack == []
    assert path.stat().st_mode & 0o044  # readable like any file, not mkstemp's 0600


def test_html_embeds_every_figure_as_png_data_uri(html_report):
    _path, text = html_report
    images = lxml.html.fromstring(text).xpath("//img")
    assert len(images) == 4  # rates, outcomes, latency KM, timeline
    for image in images:
        src = image.get("src")
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1]).startswith(PNG_SIGNATURE)
        assert image.get("alt")


def test_html_has_nothing_external_and_no_script(html_report):
    _path, text = html_report
    tree = lxml.html.fromstring(text)
    assert tree.xpath("//script") == []
    for element in tree.xpath("//*[@src or @href]"):
        for attribute in ("src", "href"):
            value = element.get(attribute)
            assert value is None or value.startswith(("data:", "#"))
    assert tree.xpath("//link") == []
    assert "Content-Security-Policy" in text


def test_html_escapes_title_and_carrier_names(html_report):
    _path, text = html_report
    tree = lxml.html.fromstring(text)
    assert tree.xpath("//title")[0].text_content() == f"DDM test {EVIL} & co"
    assert tree.xpath("//h1")[0].text_content() == f"DDM test {EVIL} & co"
    assert EVIL in [cell.text_content() for cell in tree.xpath("//td")]
    assert EVIL not in text  # only ever in escaped form


def test_html_tables_period_generation_time_and_definitions(html_report, deliveries):
    _path, text = html_report
    tree = lxml.html.fromstring(text)
    headings = [h.text_content() for h in tree.xpath("//h3")]
    for wanted in ("Delivery rates by carrier", "Delivery rates by arm", "Latency (seconds)", "Arm comparisons"):
        assert wanted in headings
    tables = tree.xpath("//table")
    assert len(tables) == 1 + 3 + 1 + 1 + 1  # summary, rates ×3, latency, comparisons, provenance footer
    by_arm = tree.xpath('//h3[@id="rates-by-arm"]/following-sibling::div[@class="table-scroll"][1]//tbody/tr')
    assert len(by_arm) == len(ARMS)
    meta = tree.xpath('//p[@class="meta"]')[0].text_content()
    first = deliveries[col.REQUESTED_AT].min()
    assert first.strftime("%Y-%m-%dT%H:%M:%S") in meta and "Generated" in meta
    terms = [dt.text_content() for dt in tree.xpath("//dl/dt")]
    for term in (col.RATE, "Wilson CI", col.LATENCY_S, col.TOTAL_LATENCY_S, "KM censoring", col.PENDING):
        assert term in terms


def test_html_without_events_or_arms_has_three_figures_and_no_comparisons(tmp_path):
    frame = make_deliveries(n=80, arms=None)
    text = export_report(frame, tmp_path / "r.HTML", by=(col.CARRIER, col.ARM)).read_text(encoding="utf-8")
    tree = lxml.html.fromstring(text)
    assert len(tree.xpath("//img")) == 3
    assert "Arm comparisons" not in text
    assert NO_ARM_LABEL in [cell.text_content() for cell in tree.xpath("//td")]


def test_html_of_empty_deliveries_still_opens(tmp_path):
    text = export_report(make_deliveries(n=0), tmp_path / "empty.html").read_text(encoding="utf-8")
    tree = lxml.html.fromstring(text)
    assert all(base64.b64decode(i.get("src").split(",", 1)[1]).startswith(PNG_SIGNATURE) for i in tree.xpath("//img"))
    assert "no timestamps" in text


def test_latency_warnings_are_noted_in_report_and_reemitted_once(tmp_path):
    frame = make_deliveries(n=60, arms=None)
    frame.loc[frame[col.OUTCOME] == col.OUTCOME_DELIVERED, col.LATENCY_S] = np.nan  # delivered, latency unknown
    frame.loc[frame.index[0], col.LATENCY_S] = 12.0
    frame.loc[frame.index[0], col.OUTCOME] = col.OUTCOME_DELIVERED
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        text = export_report(frame, tmp_path / "w.html").read_text(encoding="utf-8")
    latency_warnings = [w for w in caught if issubclass(w.category, stats.LatencyDataWarning)]
    assert len(latency_warnings) == len({str(w.message) for w in latency_warnings}) >= 1
    assert "Notes on the data" in text


# --- Excel -----------------------------------------------------------------------------------------
def test_xlsx_sheets_and_row_counts_match_sources(tmp_path, deliveries):
    path = export_report(deliveries, tmp_path / "report.xlsx", title=EVIL)
    book = openpyxl.load_workbook(path, read_only=True)
    assert book.sheetnames == SHEETS
    rows = {name: book[name].max_row - 1 for name in book.sheetnames}  # minus the header row
    assert rows["deliveries"] == len(deliveries)
    assert rows["rates by carrier"] == len(stats.delivery_rates(deliveries, by=col.CARRIER))
    assert rows["rates by arm"] == len(ARMS)
    assert rows["rates by carrier × arm"] == len(stats.delivery_rates(deliveries, by=(col.CARRIER, col.ARM)))
    groups = 1 + deliveries[col.CARRIER].nunique() + len(ARMS)
    assert rows["latency"] == 2 * groups  # latency_s and total_latency_s
    assert rows["comparisons"] == 2 * (len(ARMS) - 1)  # delivery_rate and delivered_within


def test_xlsx_timestamps_are_naive_utc_and_said_so(tmp_path, deliveries):
    path = export_report(deliveries, tmp_path / "report.xlsx")
    book = openpyxl.load_workbook(path, read_only=True)
    sheet = book["deliveries"]
    header = [cell.value for cell in next(sheet.iter_rows(min_row=1, max_row=1))]
    first = [cell.value for cell in next(sheet.iter_rows(min_row=2, max_row=2))]
    stamp = first[header.index(col.SENT_AT)]
    assert stamp.tzinfo is None
    # Excel keeps about millisecond precision
    assert abs(pd.Timestamp(stamp, tz="UTC") - deliveries[col.SENT_AT].iloc[0]) < pd.Timedelta(milliseconds=1)
    summary = {row[0]: row[1] for row in book["summary"].iter_rows(min_row=2, values_only=True)}
    assert "UTC" in summary["timestamps"] and summary["sends"] == len(deliveries)


def test_xlsx_without_arm_column_keeps_rates_by_arm_as_overall_row(tmp_path):
    frame = make_deliveries(n=50, arms=None)
    book = openpyxl.load_workbook(export_report(frame, tmp_path / "r.xlsx"), read_only=True)
    assert book.sheetnames == ["summary", "rates by carrier", "rates by arm", "latency", "deliveries", "provenance"]
    rows = list(book["rates by arm"].iter_rows(values_only=True))
    assert len(rows) == 2 and rows[1][0] == NO_ARM_LABEL and rows[1][1] == len(frame)


def test_xlsx_without_openpyxl_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "openpyxl", None)  # makes `import openpyxl` fail
    with pytest.raises(ImportError, match=r"skycore-lab\[excel\]"):
        export_report(make_deliveries(n=5), tmp_path / "r.xlsx")
    assert not list(tmp_path.iterdir())


def test_require_names_module_and_extra():
    with pytest.raises(ImportError, match=r"no_such_module_xyz.*skycore-lab\[demo\]") as info:
        optional.require("no_such_module_xyz", "demo", "testing")
    assert info.value.name == "no_such_module_xyz"
    assert optional.require("json", "x", "y").dumps([1]) == "[1]"


# --- CSV and Parquet -------------------------------------------------------------------------------
def test_csv_has_every_row_and_iso_utc_timestamps(tmp_path, deliveries):
    path = export_report(deliveries, tmp_path / "d.csv")
    back = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert len(back) == len(deliveries) and list(back.columns) == list(deliveries.columns)
    stamps = back[col.SENT_AT]
    assert stamps.str.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z").all()
    parsed = pd.to_datetime(stamps, utc=True, format="ISO8601")
    assert (parsed.to_numpy() == deliveries[col.SENT_AT].dt.floor("us").to_numpy()).all()
    assert (back[col.DELIVERED_AT] == "").sum() == deliveries[col.DELIVERED_AT].isna().sum()


def test_parquet_round_trips_dtypes(tmp_path, deliveries):
    back = pd.read_parquet(export_report(deliveries, tmp_path / "d.parquet"))
    pd.testing.assert_frame_equal(back, deliveries)
    assert isinstance(back[col.OUTCOME].dtype, pd.CategoricalDtype) and back[col.OUTCOME].dtype.ordered
    assert str(back[col.SENT_AT].dt.tz) == "UTC"


# --- errors ----------------------------------------------------------------------------------------
def test_unknown_suffix_names_supported_suffixes(tmp_path):
    with pytest.raises(ValueError, match=r"\.pdf.*\.html, \.xlsx, \.csv, \.parquet") as info:
        export_report(make_deliveries(n=5), tmp_path / "r.pdf")
    assert isinstance(info.value, SkycoreValidationError) and info.value.field == "path"
    assert set(REPORT_FORMATS) == {".html", ".xlsx", ".csv", ".parquet"}
    assert not list(tmp_path.iterdir())


def test_missing_by_column_is_a_clear_error(tmp_path):
    with pytest.raises(SkycoreValidationError, match="'region'"):
        export_report(make_deliveries(n=5), tmp_path / "r.html", by=("region",))


def test_failed_export_keeps_the_previous_report_and_leaves_no_temp_file(tmp_path):
    path = tmp_path / "r.xlsx"
    path.write_bytes(b"previous report")
    frame = make_deliveries(n=20)
    frame[col.OUTCOME] = frame[col.OUTCOME].astype(object)
    frame.loc[0, col.OUTCOME] = "lost"  # unknown outcome: stats refuses to guess
    with pytest.raises(SkycoreValidationError, match=col.OUTCOME):
        export_report(frame, path)
    assert path.read_bytes() == b"previous report"
    assert [p.name for p in tmp_path.iterdir()] == ["r.xlsx"]


def test_error_while_writing_keeps_the_previous_file(tmp_path, monkeypatch):
    from skycore_lab import report

    def broken(content, deliveries, tmp, *_provenance):
        Path(tmp).write_bytes(b"half a workbook")
        raise OSError("disk full")

    monkeypatch.setattr(report.export, "_write_xlsx", broken)
    path = tmp_path / "r.xlsx"
    path.write_bytes(b"previous report")
    with pytest.raises(OSError, match="disk full"):
        export_report(make_deliveries(n=20), path)
    assert path.read_bytes() == b"previous report"
    assert [p.name for p in tmp_path.iterdir()] == ["r.xlsx"]
