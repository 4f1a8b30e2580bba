"""The send form in real JupyterLab: open the quickstart, run it to the widget, type, click Send.

JupyterLab runs as a subprocess on 127.0.0.1 with a random token, serving a
temporary copy of ``notebooks/01_quickstart.ipynb``; the notebook's files go to
a temporary ``SKYCORE_NOTEBOOK_OUT``. Headless Chromium (Debian's, driven by
Playwright) runs the cells up to the widget cell with Shift+Enter, checks that
no label of the form is cut off (each label's ``scrollWidth`` against its
``clientWidth``), fills the recipient in the rendered form, clicks Send, waits
for the tracking id, then for the row to say "delivered" (the form follows
the notebook's receiver; the sandbox's time_scale makes it quick). Screenshots
are saved to ``test-artifacts/jupyterlab_send.png`` (the end, pass or fail) and
``test-artifacts/jupyterlab_send_form.png`` (the form before sending).
"""

from __future__ import annotations

import base64
import re
import shutil
import time

import nbformat
import pytest
from playwright.sync_api import expect
from browser_support import ARTIFACTS, NOTEBOOKS, PageErrors, browser, jupyter_lab, require_chromium, save_screenshot

pytestmark = [pytest.mark.browser, pytest.mark.slow]

NOTEBOOK = "01_quickstart.ipynb"
RECIPIENT = "17743199144"
SCREENSHOT = "jupyterlab_send.png"
FORM_SCREENSHOT = "jupyterlab_send_form.png"
#: Every visible text holder of the form that could be clipped: widget labels (Text, Checkbox…),
#: buttons and toggle buttons. ipywidgets draws them with overflow hidden and an ellipsis.
LABELS = ".skycore-send .widget-label, .skycore-send .widget-label-basic, .skycore-send label, .skycore-send button"
TRUNCATED_LABELS_JS = """(selector) => Array.from(document.querySelectorAll(selector))
    .filter((e) => e.offsetParent !== null && e.textContent.trim())
    .map((e) => ({text: e.textContent.trim(), scroll: e.scrollWidth, client: e.clientWidth}))
    .filter((x) => x.scroll > x.client)"""
COUNT_LABELS_JS = """(selector) => Array.from(document.querySelectorAll(selector))
    .filter((e) => e.offsetParent !== null && e.textContent.trim()).map((e) => e.textContent.trim())"""
CONSOLE_LOG = "jupyterlab_console_errors.txt"
TIMEOUT_MS = 60_000
WIDGET_ERROR = re.compile(r"widget|skycore|comm", re.IGNORECASE)


def _widget_cell_index(path) -> tuple[int, int]:
    """(index of the cell that shows the SendWidget, the sandbox seed of the notebook)."""
    nb = nbformat.read(path, as_version=4)
    sources = ["".join(cell.source) for cell in nb.cells]
    index = next(i for i, source in enumerate(sources) if "sl.SendWidget(" in source)
    seed = int(re.search(r"Sandbox\(seed=(\d+)", "\n".join(sources)).group(1))
    return index, seed


def _wait_for_log_line(path, text: str, timeout_s: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text(encoding="utf-8", errors="replace"):
            return True
        time.sleep(0.1)
    return False


@pytest.mark.timeout(180)
def test_send_widget_sends_from_jupyterlab(tmp_path):
    require_chromium()
    from skycore_lab.sandbox.account import make_account

    root, work, out = tmp_path / "root", tmp_path / "lab", tmp_path / "out"
    for folder in (root, work, out):
        folder.mkdir()
    shutil.copy(NOTEBOOKS / NOTEBOOK, root / NOTEBOOK)
    widget_cell, seed = _widget_cell_index(root / NOTEBOOK)
    api_key = make_account(seed).api_key

    with jupyter_lab(root, work, {"SKYCORE_NOTEBOOK_OUT": str(out)}) as lab, browser() as chromium:
        page = chromium.new_page(viewport={"width": 1400, "height": 1000})
        errors = PageErrors.watch(page)
        try:
            page.goto(lab.url(f"lab/tree/{NOTEBOOK}"))
            page.locator(".jp-NotebookPanel .jp-Cell").first.wait_for(timeout=TIMEOUT_MS)
            page.get_by_text(re.compile(r"^Python 3.*\| Idle$")).first.wait_for(timeout=TIMEOUT_MS)  # kernel up

            # Select the first cell (command mode) and run it and the following ones up to the widget cell.
            first = page.locator(".jp-Notebook .jp-Cell").first
            first.locator(".jp-InputPrompt").click()
            expect(first).to_have_class(re.compile(r"\bjp-mod-active\b"))
            page.keyboard.press("Escape")
            for _ in range(widget_cell + 1):
                page.keyboard.press("Shift+Enter")
                page.wait_for_timeout(100)

            form = page.locator(".skycore-send")
            form.wait_for(timeout=TIMEOUT_MS)  # ipywidgets rendered by JupyterLab's widget manager
            page.locator(".skycore-send-ddm-force").wait_for(timeout=TIMEOUT_MS)
            # rows have labels too: add one of each (blank rows are left out of the request)
            page.locator("button.skycore-send-add-slide").click()
            page.locator("button.skycore-send-add-data").click()
            page.locator(".skycore-send-data-row").wait_for(timeout=TIMEOUT_MS)
            labels = page.evaluate(COUNT_LABELS_JS, LABELS)
            truncated = page.evaluate(TRUNCATED_LABELS_JS, LABELS)
            ARTIFACTS.mkdir(exist_ok=True)
            form.screenshot(path=str(ARTIFACTS / FORM_SCREENSHOT))
            # The notebook prefills the MMS id and shortcode from the sandbox; type the recipient.
            expect(page.locator(".skycore-send-mms-id input")).to_have_value(make_account(seed).mms_ids[0])
            expect(page.locator(".skycore-send-sender input")).not_to_have_value("")
            send = page.locator("button.skycore-send-button")
            expect(send).to_be_disabled()  # until the form is valid: no recipient yet
            page.locator(".skycore-send-recipient input").fill(RECIPIENT)
            page.wait_for_function("() => !document.querySelector('button.skycore-send-button').disabled",
                                   timeout=TIMEOUT_MS)  # fmt: skip
            send.click()

            tracking = page.locator(".skycore-send-result code")
            tracking.wait_for(timeout=TIMEOUT_MS)
            tracking_id = tracking.inner_text().strip()
            result_text = page.locator(".skycore-send-result").inner_text()
            # the widget updates the history before the result; the browser may still be drawing it
            expect(page.locator(".skycore-send-history")).to_contain_text(tracking_id, timeout=TIMEOUT_MS)
            history_text = page.locator(".skycore-send-history").inner_text()
            # the form follows the notebook's receiver: the row changes from "sent" to "delivered in …"
            expect(page.locator(".skycore-send-history")).to_contain_text("delivered", timeout=TIMEOUT_MS)
            delivered_text = page.locator(".skycore-send-history").inner_text()
            content = page.content()
        finally:
            save_screenshot(page, SCREENSHOT)
            (ARTIFACTS / CONSOLE_LOG).write_text("\n".join(errors.messages) + "\n", encoding="utf-8")
        # While the kernel (and its sandbox and receiver) still runs: the postbacks of the send reach the log.
        posted = _wait_for_log_line(out / "quickstart_postbacks.log", tracking_id)

    assert any("Force the DDM even if the handset is cached" in text for text in labels), labels
    assert any(text.startswith("DDM timeout") for text in labels), labels
    assert {"Slide", "Text", "Name", "Value", "Remove"} <= set(labels), labels
    assert truncated == [], f"labels cut off at JupyterLab's width: {truncated}"
    assert re.search(r"delivered in \d+ s", delivered_text), delivered_text
    assert "Sent: tracking id" in result_text and RECIPIENT in result_text
    assert base64.b64decode(tracking_id).startswith(b"MMS_"), tracking_id
    assert tracking_id in history_text and "Success" in history_text
    assert posted, "the sandbox posted no notification of the send to the notebook's receiver"
    assert api_key not in content, "the sandbox's API key is visible in the page"
    # JupyterLab itself may log a transient error (e.g. while its kernel websocket connects): only
    # uncaught exceptions and errors of the widget machinery fail the test; all are kept as an artifact.
    widget_errors = [m for m in errors.messages if m.startswith("pageerror") or WIDGET_ERROR.search(m)]
    assert widget_errors == [], widget_errors
    assert (ARTIFACTS / SCREENSHOT).stat().st_size > 0 and (ARTIFACTS / FORM_SCREENSHOT).stat().st_size > 0
