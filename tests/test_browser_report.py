"""The HTML report in a real headless Chromium: every figure renders, the verdict shows first, a phone can read it.

The report is built from a small experiment on the sandbox (two arms, 60
numbers), exported from its :class:`ExperimentResult`, with events, so it
opens with the decision and embeds all four figures (delivery rates,
outcomes, latency curves, postback timeline). Its title carries markup that
would run script if it were not escaped.

Widths: 1280 px (a laptop) and 390 px (a phone). At both, the verdict
section is on screen at the top (the screenshots in ``test-artifacts/``
show it), and nothing is wider than the page: only a table may be wider
than its box, which then scrolls by itself.
"""

from __future__ import annotations

import pytest
from browser_support import PageErrors, browser, require_chromium, save_screenshot

import skycore_lab as sl
from skycore_lab import columns as col
from skycore_lab.demo import demo_numbers

pytestmark = pytest.mark.browser

HOSTILE_TITLE = 'DDM test <img src=x onerror="alert(1)"> & <script>alert(2)</script>'
#: Delivery rates, outcomes, latency curves, and the timeline (events given).
FIGURES_WITH_EVENTS = 4
WIDTHS = {"desktop": 1280, "phone": 390}

#: Elements wider than the page (or reaching past its right edge), other than those inside a
#: scrollable table box; and whether the page itself scrolls sideways.
OVERFLOW = """() => {
    const width = document.documentElement.clientWidth;
    const outside = [];
    for (const element of document.body.querySelectorAll('*')) {
        if (element.closest('.table-scroll')) continue;
        const box = element.getBoundingClientRect();
        if (box.width > 0 && (box.right > width + 1 || box.left < -1)) {
            outside.push(`${element.tagName.toLowerCase()}.${element.className}: ${Math.round(box.left)}..${Math.round(box.right)}`);
        }
    }
    const boxes = Array.from(document.querySelectorAll('.table-scroll')).map(box => ({
        scrolls: box.scrollWidth > box.clientWidth, overflowX: getComputedStyle(box).overflowX,
        right: box.getBoundingClientRect().right}));
    return {pageScrolls: document.documentElement.scrollWidth > width, width, outside, boxes};
}"""


@pytest.fixture(scope="module")
def report_path(tmp_path_factory):
    folder = tmp_path_factory.mktemp("browser-report")
    with sl.PostbackReceiver(folder / "postbacks.log") as receiver, \
            sl.Sandbox(seed=3, time_scale=3600, postback_url=receiver.url) as sandbox:  # fmt: skip
        experiment = sl.DdmExperiment({"no_ddm": None, "ddm_5": sl.DDM("Checking your phone", timeout_min=5)},
                                      mms_id=sandbox.mms_ids[0], sender=sandbox.shortcodes[0], seed=3)  # fmt: skip
        with sl.SkycoreClient(sandbox.api_key, sandbox.url) as client:
            experiment.run(client, demo_numbers(60, seed=3), progress=False)
        assert sandbox.wait_idle(timeout=60)
    events = sl.read_postbacks(folder / "postbacks.log")
    result = experiment.analyze(events)
    assert len(result.deliveries) == 60 and result.deliveries[col.ARM].notna().all()
    return sl.export_report(result, folder / "report.html", events=events, title=HOSTILE_TITLE,
                            by=(col.CARRIER, col.ARM))  # fmt: skip


def test_report_renders_every_figure_without_console_errors(report_path):
    require_chromium()
    source = report_path.read_text(encoding="utf-8")
    embedded = source.count('src="data:image/png;base64,')
    assert embedded == FIGURES_WITH_EVENTS
    with browser() as chromium:
        page = chromium.new_page(viewport={"width": 1280, "height": 900})
        errors = PageErrors.watch(page)
        try:
            page.goto(report_path.as_uri(), wait_until="load")
            images = page.evaluate(
                """() => Array.from(document.images).map(img => ({
                    alt: img.alt, complete: img.complete, width: img.naturalWidth, height: img.naturalHeight,
                    shown: img.getBoundingClientRect().width }))"""
            )
            figures = page.locator("figure").count()
            heading = page.locator("h1").inner_text()
            tables = page.locator("table").count()
        finally:
            save_screenshot(page, "report.png")
    assert len(images) == embedded == figures, images
    for image in images:
        assert image["complete"] and image["width"] > 0 and image["height"] > 0, f"figure did not render: {image}"
        assert image["shown"] > 100, f"figure laid out too small: {image}"
    assert errors.messages == []
    assert errors.dialogs == [], "markup in the title ran as script"
    assert heading == HOSTILE_TITLE, "the title must be shown as text, not interpreted"
    assert tables >= 6  # the verdict's two, summary, rates by carrier and by arm, latency


@pytest.mark.parametrize("device", list(WIDTHS))
def test_the_verdict_comes_first_and_nothing_overflows_the_page(report_path, device):
    require_chromium()
    width = WIDTHS[device]
    with browser() as chromium:
        page = chromium.new_page(viewport={"width": width, "height": 900})
        errors = PageErrors.watch(page)
        try:
            page.goto(report_path.as_uri(), wait_until="load")
            verdict = page.locator("section#verdict")
            verdict_box = verdict.bounding_box()
            summary_top = page.locator("h2", has_text="Summary").bounding_box()["y"]
            headline = page.locator("section#verdict p.headline").inner_text()
            layout = page.evaluate(OVERFLOW)
            # the decision is on the first screen, fully readable without scrolling sideways
            verdict_visible = page.evaluate("""() => {
                const box = document.querySelector('section#verdict p.headline').getBoundingClientRect();
                return box.top >= 0 && box.bottom <= window.innerHeight && box.right <= window.innerWidth; }""")
        finally:
            shot = save_screenshot(page, f"report-{device}-{width}px.png")
    assert errors.messages == []
    assert verdict_box is not None and verdict_box["y"] < summary_top, "the decision comes before the summary"
    assert verdict_visible, f"the headline is not on the first screen at {width} px"
    assert headline.strip() and ("no_ddm" in headline or "ddm_5" in headline)
    assert not layout["pageScrolls"], f"the page scrolls sideways at {width} px: {layout['outside'][:5]}"
    assert layout["outside"] == [], layout["outside"][:10]
    assert all(box["overflowX"] == "auto" and box["right"] <= width + 1 for box in layout["boxes"])
    if device == "phone":
        assert any(box["scrolls"] for box in layout["boxes"]), "at 390 px a wide table scrolls in its box"
    assert shot is not None and shot.stat().st_size > 10_000


def test_report_has_no_script_and_nothing_external(report_path):
    # What the browser check relies on: the images are inline, and nothing loads from elsewhere.
    source = report_path.read_text(encoding="utf-8").lower()
    assert "<script" not in source.replace("&lt;script", "")
    assert "http://" not in source and "https://" not in source
