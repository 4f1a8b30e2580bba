"""Reports and plots against hostile or broken data: formula cells, ``$`` in labels, years 0001 and 9999.

References that do not share the code's assumptions: the workbook's own XML
(no ``<f>`` element anywhere), the csv module reading the CSV back, and the
OWASP CSV-injection rule written out here.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import csv  # noqa: E402
import warnings  # noqa: E402
import zipfile  # noqa: E402

import lxml.html  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import openpyxl  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from matplotlib import cbook  # noqa: E402

from skycore_lab import columns as col  # noqa: E402
from skycore_lab import plot_delivery_rates, plot_handsets, plot_latency, plot_outcomes, plot_timeline  # noqa: E402
from skycore_lab.cli import main  # noqa: E402
from skycore_lab.exceptions import PlotDataWarning  # noqa: E402
from skycore_lab.postbacks.logformat import HEADER, encode_record  # noqa: E402
from skycore_lab.report import export_report  # noqa: E402

HYPERLINK = '=HYPERLINK("http://evil.example","x")'
# OWASP CSV injection: cells must not begin with these (https://owasp.org/www-community/attacks/CSV_Injection)
OWASP_FIRST_CHARACTERS = ("=", "+", "-", "@", "\t", "\r")
MATH = r"$\frac{$"


def make_deliveries(n: int = 60, seed: int = 3, carriers=("AT&T", "Verizon"), arms=("control", "ddm")) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    sent = pd.Timestamp("2026-11-25 10:00", tz="UTC") + pd.to_timedelta(rng.uniform(0, 3600, n), unit="s")
    outcome = rng.choice([col.OUTCOME_DELIVERED, col.OUTCOME_FAILED, col.OUTCOME_PENDING], size=n, p=[0.7, 0.1, 0.2])
    latency = np.exp(rng.normal(np.log(30), 1.0, n))
    delivered = outcome == col.OUTCOME_DELIVERED
    failed = outcome == col.OUTCOME_FAILED
    frame = pd.DataFrame(
        {
            col.TRACKING_ID: [f"MMS_{i}" for i in range(n)],
            col.CARRIER: pd.Categorical(rng.choice(list(carriers), n)),
            col.SENT_AT: sent,
            col.DELIVERED_AT: pd.Series(sent).where(delivered) + pd.to_timedelta(latency, unit="s"),
            col.FAILED_AT: pd.Series(sent).where(failed) + pd.to_timedelta(latency, unit="s"),
            col.OUTCOME: pd.Categorical(outcome, categories=col.OUTCOMES),
            col.LATENCY_S: np.where(delivered, latency, np.nan),
        }
    )
    if arms:
        frame[col.ARM] = pd.Categorical(rng.choice(list(arms), n), categories=list(arms))
    return frame


# --- defect 5: formula injection ------------------------------------------------------------------
def hostile_frame() -> pd.DataFrame:
    frame = make_deliveries(carriers=(HYPERLINK, "Verizon"), arms=("=1+1", "+control"))
    frame[col.HANDSET] = [HYPERLINK, "-2+3", "@SUM(A1)", "\tcmd", "\rcmd", "Apple iPhone", "-7"] * 8 + ["ok"] * 4
    frame["=evil column"] = "x"
    frame["count"] = -3  # a negative number is a number, not a formula
    return frame


def test_xlsx_has_no_formula_anywhere_and_keeps_the_text(tmp_path):
    path = export_report(hostile_frame(), tmp_path / "report.xlsx", title="=cmd|' /C calc'!A0")
    with zipfile.ZipFile(path) as book:  # the file itself, not openpyxl's reading of it
        sheets = [name for name in book.namelist() if name.startswith("xl/worksheets/")]
        assert sheets
        for name in sheets:
            assert b"<f>" not in book.read(name) and b"<f " not in book.read(name), name
    workbook = openpyxl.load_workbook(path)
    texts = set()
    for sheet in workbook.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (sheet.title, cell.coordinate, cell.value)
                if isinstance(cell.value, str):
                    texts.add(cell.value)
    assert {HYPERLINK, "=1+1", "=evil column", "=cmd|' /C calc'!A0"} <= texts  # as text, unchanged


def read_csv_cells(path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def test_csv_prefixes_formula_like_text_cells_by_default(tmp_path):
    frame = hostile_frame()
    rows = read_csv_cells(export_report(frame, tmp_path / "d.csv"))
    header, body = rows[0], rows[1:]
    assert "'=evil column" in header
    text_columns = [i for i, name in enumerate(header) if name != "count"]
    cells = [row[i] for row in body for i in text_columns] + header
    assert not [cell for cell in cells if cell.startswith(OWASP_FIRST_CHARACTERS)]
    handsets = [row[header.index(col.HANDSET)] for row in body]
    assert handsets[:7] == ["'" + HYPERLINK, "'-2+3", "'@SUM(A1)", "'\tcmd", "'\rcmd", "Apple iPhone", "'-7"]
    assert {row[header.index("count")] for row in body} == {"-3"}  # numbers untouched
    assert {row[header.index(col.ARM)] for row in body} == {"'=1+1", "'+control"}


def test_csv_escaping_can_be_turned_off_for_programs(tmp_path):
    frame = hostile_frame()
    rows = read_csv_cells(export_report(frame, tmp_path / "d.csv", csv_escape=False))
    header = rows[0]
    assert "=evil column" in header
    assert [row[header.index(col.HANDSET)] for row in rows[1:]] == list(frame[col.HANDSET])


def _log_with(path, handsets_and_times) -> None:
    with open(path, "wb") as handle:
        handle.write(HEADER)
        for n, (handset, stamp) in enumerate(handsets_and_times):
            for code in ("N101", "N102"):
                body = (
                    f"<POSTBACK><ORIGIN>MMS_MT</ORIGIN><CODE>{code}</CODE><STATUS>s</STATUS><TO>1774319914{n % 10}</TO>"
                    f"<TRACKINGID>T{n}</TRACKINGID><SPID>0001100</SPID><TIMESTAMP>{stamp}</TIMESTAMP>"
                    f"<HANDSET>{handset}</HANDSET></POSTBACK>"
                ).encode()
                handle.write(encode_record(body, "127.0.0.1:1", "2026-11-25T15:00:00.000000Z"))


def test_cli_report_csv_is_escaped_unless_csv_raw(tmp_path):
    log = tmp_path / "p.log"
    _log_with(log, [("=HYPERLINK(&quot;http://evil.example&quot;,&quot;x&quot;)", "2026-11-25T10:00:00Z")])
    assert main(["report", str(log), "--out", str(tmp_path / "safe.csv")]) == 0
    assert main(["report", str(log), "--out", str(tmp_path / "raw.csv"), "--csv-raw"]) == 0
    safe, raw = read_csv_cells(tmp_path / "safe.csv"), read_csv_cells(tmp_path / "raw.csv")
    column = safe[0].index(col.HANDSET)
    assert safe[1][column] == "'" + HYPERLINK and raw[1][column] == HYPERLINK


# --- defect 9: years 0001 and 9999 ----------------------------------------------------------------------
def test_timeline_leaves_out_times_it_cannot_place_and_says_how_many():
    normal = pd.date_range("2026-11-25 10:00", periods=20, freq="30s", tz="UTC")
    stamps = list(normal) + [pd.Timestamp("9999-12-31 23:59:59", tz="UTC"), pd.Timestamp("0001-01-01", tz="UTC")]
    events = pd.DataFrame({col.CODE: "N102", col.TRACKING_ID: [f"T{i}" for i in range(22)], col.TIMESTAMP: stamps})
    assert events[col.TIMESTAMP].dt.year.tolist()[-2:] == [9999, 1]  # kept in the data
    figure, ax = plt.subplots()
    with pytest.warns(PlotDataWarning, match=r"^2 notification\(s\) with a time outside"):
        plot_timeline(events, freq="1min", ax=ax)
    figure.canvas.draw()
    left, right = (matplotlib.dates.num2date(x) for x in ax.get_xlim())
    assert left.year == right.year == 2026
    assert sum(line.get_ydata()[:-1].sum() for line in ax.get_lines()) == 20


@pytest.mark.parametrize("stamp", ["9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z"])
def test_cli_report_renders_with_a_year_9999_or_0001_timestamp_and_says_so(tmp_path, stamp, capsys):
    log = tmp_path / "p.log"
    _log_with(log, [("Apple", "2026-11-25T10:00:00Z"), ("Apple", "2026-11-25T10:05:00Z"), ("Apple", stamp)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PlotDataWarning)
        assert main(["report", str(log), "--out", str(tmp_path / "r.html")]) == 0
    tree = lxml.html.fromstring((tmp_path / "r.html").read_text(encoding="utf-8"))
    notes = [li.text_content() for li in tree.xpath("//li")]
    assert any("left out of the timeline" in note for note in notes)
    assert any("Postback notifications per" in caption.text_content() for caption in tree.xpath("//figcaption"))


def test_html_report_renders_with_extreme_times_in_every_frame(tmp_path):
    frame = make_deliveries()
    frame[col.SENT_AT] = frame[col.SENT_AT].astype("datetime64[us, UTC]")
    frame[col.DELIVERED_AT] = frame[col.DELIVERED_AT].astype("datetime64[us, UTC]")
    frame.loc[0, col.SENT_AT] = pd.Timestamp("0001-01-01", tz="UTC")
    frame.loc[1, col.DELIVERED_AT] = pd.Timestamp("9999-12-31", tz="UTC")
    events = pd.DataFrame(
        {
            col.CODE: ["N101", "N102", "N102"],
            col.TRACKING_ID: ["MMS_0", "MMS_1", "MMS_2"],
            col.TIMESTAMP: pd.Series(
                [pd.Timestamp("0001-01-01", tz="UTC"), pd.Timestamp("9999-12-31", tz="UTC"),
                 pd.Timestamp("2026-11-25 10:00", tz="UTC")]
            ).astype("datetime64[us, UTC]"),
        }
    )  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        text = export_report(frame, tmp_path / "r.html", events=events).read_text(encoding="utf-8")
        export_report(frame, tmp_path / "r.xlsx", events=events)
    assert len(lxml.html.fromstring(text).xpath("//img")) == 4
    assert "2 notification(s) with a time outside" in text


# --- defect 10: $ in labels -------------------------------------------------------------------------------
def drawn_texts(figure) -> list[str]:
    figure.canvas.draw()  # mathtext errors surface here
    return [text.get_text() for text in figure.findobj(matplotlib.text.Text) if text.get_text()]


def assert_shown_literally(figure, originals) -> None:
    texts = drawn_texts(figure)
    assert not [text for text in texts if cbook.is_math_text(text)]
    shown = {text.replace(r"\$", "$") for text in texts}  # what matplotlib displays for plain text
    for original in originals:
        assert any(original in text for text in shown), (original, shown)


def test_plot_handsets_with_a_mathtext_name():
    figure, ax = plt.subplots()
    plot_handsets(pd.DataFrame({col.HANDSET: [MATH, MATH, "a$b$c", "Apple"]}), ax=ax)
    assert_shown_literally(figure, [MATH, "a$b$c"])


def test_rates_outcomes_and_latency_with_mathtext_groups_arms_and_columns():
    frame = make_deliveries(carriers=(MATH, "x$y$"), arms=("$a$", r"\$b"))
    frame = frame.rename(columns={col.CARRIER: "$carrier$"})
    for draw, shown in (
        (lambda ax: plot_delivery_rates(frame, by="$carrier$", hue=col.ARM, ax=ax), [MATH, "x$y$", "$a$", r"\$b"]),
        (lambda ax: plot_outcomes(frame, by="$carrier$", ax=ax), [MATH, "x$y$", "$carrier$"]),
        (lambda ax: plot_latency(frame, hue=col.ARM, ax=ax), ["$a$", r"\$b"]),
    ):
        figure, ax = plt.subplots()
        draw(ax)
        assert_shown_literally(figure, shown)
        plt.close(figure)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.text(alphabet="$\\{}^_ab", min_size=1, max_size=8), min_size=1, max_size=4))
def test_any_handset_name_draws(names):
    figure, ax = plt.subplots()
    try:
        plot_handsets(pd.DataFrame({col.HANDSET: names}), ax=ax)
        drawn_texts(figure)
    finally:
        plt.close(figure)


def test_cli_report_with_a_mathtext_arm_in_the_manifest(tmp_path):
    log = tmp_path / "p.log"
    _log_with(log, [("Apple", "2026-11-25T10:00:00Z"), ("Apple", "2026-11-25T10:01:00Z")])
    manifest = tmp_path / "manifest.csv"
    manifest.write_text(f"tracking_id,to,arm\nT0,17743199140,{MATH}\nT1,17743199141,b$\n", encoding="utf-8")
    assert main(["report", str(log), "--manifest", str(manifest), "--out", str(tmp_path / "r.html")]) == 0
    assert len(lxml.html.fromstring((tmp_path / "r.html").read_text(encoding="utf-8")).xpath("//img")) >= 3


# --- control characters: XML 1.0 cannot hold them; the workbook must still be written, the text kept ----
def test_xlsx_writes_control_characters_visibly_instead_of_failing(tmp_path):
    frame = make_deliveries(n=8)
    frame[col.HANDSET] = ["Nokia\x01", "LG\x1f X", "tab\tok", "plain", None, "\x0bv", "a", "b"]
    path = export_report(frame, tmp_path / "report.xlsx")
    with zipfile.ZipFile(path) as book:
        raw = b"".join(book.read(name) for name in book.namelist() if name.startswith("xl/"))
    assert not any(bytes([code]) in raw for code in (1, 0x0B, 0x1F))
    sheet = openpyxl.load_workbook(path)["deliveries"]
    header = [cell.value for cell in sheet[1]]
    handsets = [row[header.index(col.HANDSET)] for row in sheet.iter_rows(min_row=2, values_only=True)]
    assert handsets == ["Nokia\\x01", "LG\\x1f X", "tab\tok", "plain", None, "\\x0bv", "a", "b"]
