"""The HTML report in a real headless Chromium: every figure renders, the console stays clean.

The report is built from a small experiment on the sandbox (two arms, 60
numbers), with events, so it embeds all four figures (delivery rates,
outcomes, latency curves, postback timeline). Its title carries markup that
would run script if it were not escaped.
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
    return sl.export_report(result.deliveries, folder / "report.html", events=events, title=HOSTILE_TITLE,
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
    assert tables >= 4  # summary, rates by carrier and by arm, latency


def test_report_has_no_script_and_nothing_external(report_path):
    # What the browser check relies on: the images are inline, and nothing loads from elsewhere.
    source = report_path.read_text(encoding="utf-8").lower()
    assert "<script" not in source.replace("&lt;script", "")
    assert "http://" not in source and "https://" not in source
