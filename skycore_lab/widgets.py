"""Notebook widgets: a form for one-off test sends, and a live delivery dashboard.

>>> from skycore_lab import SendWidget
>>> form = SendWidget()          # doctest: +SKIP
>>> form                         # shows the form in a notebook cell  # doctest: +SKIP
>>> form.history                 # this session's sends as a DataFrame  # doctest: +SKIP

:class:`LiveDashboard` lives in :mod:`skycore_lab.dashboard` and is re-exported here.

Decisions
---------
* **Validation reuses the client.** The form builds the arguments of
  :meth:`SkycoreClient.send_saved_mms` and checks them with
  :meth:`SendRequest.create` on every change, so the form and the client can
  never disagree. The form adds only what a form has and the client cannot see:
  duplicated slide numbers or data names (a mapping would silently keep one).
* **Blank rows are ignored.** A slide row whose text is empty, or a data row
  whose name and value are both empty, is left out of the request, so adding a
  row and not filling it in never sends an empty replacement text.
* **The API key never stays in the notebook.** ipywidgets can save widget
  state (every ``value``) into the notebook file. The key typed into the
  ``Password`` field is taken out of it at once (on Enter or leaving the
  field), kept in a masking holder, and the field is cleared; a note says a key
  is set. The key is never written into another widget, the history or a repr.
* **POST/GET per send.** With a given client, a different method is sent by a
  shallow copy of that client (same session and key) with the other method;
  the client you passed is never modified.
* **Production sends are confirmed one by one.** When the form sends to
  production (:mod:`skycore_lab.guard`: the client's ``production``, or a
  non-loopback API URL), a warning line under the fields says what Send
  would do — the number, the MMS, the shortcode, the estimated cost when
  the client knows a price — and Send stays disabled until the *confirm*
  box is ticked; it is unticked after every send. The client's allow-list
  (``allowed_numbers=``, or ``$SKYCORE_TEST_NUMBERS`` for production) is
  checked as you type: a number off the list is a problem of the form,
  and nothing is sent.
* **Following the sends.** With ``receiver=`` (or ``log=``) the form follows
  the receiver's log from the moment it is made (what the log held before is
  skipped) and rewrites the ``delivery`` cell of each accepted send as its
  postbacks arrive (:class:`skycore_lab.livestatus.SendFollower`): ``sent``,
  ``delivered in 5 s on <handset>``, ``failed: <code> <status> — <details>``,
  ``pending after N min``, the DDM step first. A daemon thread refreshes every
  ``refresh_s`` seconds; it never blocks the kernel and never raises into it
  (an error is shown under the history and kept in ``status_error``).
"""

from __future__ import annotations

import html
import os
import threading
from datetime import datetime, timezone

import ipywidgets as ipw
import pandas as pd

from . import columns as col
from .redaction import Secret, redact
from .reference import DEFAULT_DDM_TIMEOUT_MIN, MAX_DDM_TIMEOUT_MIN
from .client import DDM, PRODUCTION_URL, SendRequest, SkycoreClient, validate_number
from .guard import SendGuard
from .dashboard import LiveDashboard
from .livestatus import DELIVERY
from .exceptions import (
    SkycoreAPIError,
    SkycoreError,
    SkycoreTimeoutError,
    SkycoreTransportError,
    SkycoreValidationError,
)

__all__ = ["SendWidget", "LiveDashboard", "SEND_HISTORY_COLUMNS", "METHOD", "ERROR_MEANING", "DELIVERY"]

METHOD = "method"  # request form: "post" or "get"
ERROR_MEANING = "error_meaning"  # documented meaning of error_code, or the error message
#: Columns of :attr:`SendWidget.history`, in order.
SEND_HISTORY_COLUMNS: tuple[str, ...] = (
    col.REQUESTED_AT, col.TO, col.MMS_ID, col.SENDER, METHOD, col.STATUS, col.TRACKING_ID,
    col.ERROR_CODE, col.ERROR_INFO, ERROR_MEANING, col.OUTCOME, DELIVERY,
)  # fmt: skip
#: History columns the form's table leaves out (``delivery`` says it in words).
_HIDDEN_IN_TABLE = (col.OUTCOME,)
_HISTORY_SHOWN = 20
_OK, _BAD = "color:#1a7f37", "color:#cf222e"
# Wide enough for the longest label ("DDM timeout (min)") at JupyterLab's font: a label that does not
# fit is cut with an ellipsis (the browser test compares each label's scrollWidth with its clientWidth).
_STYLE = {"description_width": "11em"}
_ROW_STYLE = {"description_width": "3.5em"}  # the short labels of slide and data rows
_FIELD = {"width": "36em"}  # label + a field wide enough for its placeholder
_CHECKBOX = {"width": "auto"}  # a checkbox's label is as long as its text, never cut


def _html(text: str, style: str = "") -> str:
    return f'<span style="{style}">{html.escape(text)}</span>' if style else html.escape(text)


def _make(cls: type[ipw.Widget], css: str, **kwargs) -> ipw.Widget:
    widget = cls(**kwargs)
    widget.add_class(css)  # stable hook for browser tests and notebook CSS
    return widget


def _text(description: str, css: str, placeholder: str = "", **kwargs) -> ipw.Text:
    kwargs.setdefault("layout", dict(_FIELD))
    kwargs.setdefault("style", _STYLE)
    return _make(ipw.Text, css, description=description, placeholder=placeholder, **kwargs)


def _close_tree(widget: ipw.Widget) -> None:
    for child in getattr(widget, "children", ()):
        _close_tree(child)
    widget.close()


class _Row:
    """A form row: two Text fields and a Remove button."""

    def __init__(self, kind: str, first: ipw.Text, second: ipw.Text):
        self.fields = (first, second)
        self.remove_button = _make(ipw.Button, "skycore-send-remove", description="Remove", icon="minus",
                                   layout={"width": "7em"})  # fmt: skip
        self.box = _make(ipw.HBox, f"skycore-send-{kind}-row", children=[first, second, self.remove_button])


class _SlideRow(_Row):
    """Custom text of one slide: ``slide`` number (validated by the client) and its new ``text``."""

    def __init__(self, slide: int):
        self.slide = _text("Slide", "skycore-send-slide-number", value=str(slide), layout={"width": "9em"},
                           style=_ROW_STYLE)
        self.text = _text("Text", "skycore-send-slide-text", "new text of this slide", layout={"width": "30em"},
                          style=_ROW_STYLE)
        super().__init__("slide", self.slide, self.text)


class _DataRow(_Row):
    """One personalisation field: ``key`` (name) and ``value``."""

    def __init__(self):
        self.key = _text("Name", "skycore-send-data-key", "first_name", layout={"width": "18em"}, style=_ROW_STYLE)
        self.value = _text("Value", "skycore-send-data-value", layout={"width": "21em"}, style=_ROW_STYLE)
        super().__init__("data", self.key, self.value)


class SendWidget:
    """An ipywidgets form for one-off test sends of a saved MMS.

    Parameters
    ----------
    client : SkycoreClient, optional
        The client to send with. Without one the form shows an API URL field
        (default ``$SKYCORE_API_URL``, else production), an API key
        ``Password`` field and a *use sandbox* switch that starts a local
        :class:`skycore_lab.Sandbox` and fills in its URL, key, shortcode and
        MMS id. :meth:`close` stops a sandbox the form started.
    postback_url : str, optional
        Where that sandbox posts its notifications, e.g. a
        :class:`skycore_lab.PostbackReceiver`'s ``url`` watched by a
        :class:`LiveDashboard`. Default: ``receiver.url`` when a receiver is given.
    receiver : PostbackReceiver, optional
        Follow the sends in this receiver's log: each row of the history
        shows what its postbacks say so far (see Decisions).
    log : str or path-like, optional
        Follow the sends in this receiver log instead (another process's
        receiver writing it).
    refresh_s : float
        Seconds between looks at the log (default 1).

    Attributes
    ----------
    widget : ipywidgets.VBox
        The whole form (DOM class ``skycore-send``); showing the object shows it.
    mms_id, recipient, sender, campaign_ref, custom_subject : ipywidgets.Text
    recipient_reason : ipywidgets.HTML
        Why the recipient is (in)valid, updated as you type.
    ddm_enabled, ddm_force : ipywidgets.Checkbox
    ddm_title : ipywidgets.Text
    ddm_text : ipywidgets.Textarea
    ddm_timeout : ipywidgets.BoundedIntText
        Minutes (platform default 5).
    add_slide_button, add_data_button : ipywidgets.Button
    slide_rows, data_rows : list
        Rows with ``.slide``/``.text`` (resp. ``.key``/``.value``) Text widgets
        and a ``.remove_button``.
    method : ipywidgets.ToggleButtons
        ``"post"`` or ``"get"``.
    send_button : ipywidgets.Button
        Disabled while the form is invalid (or a production send is not
        confirmed); ``send_button.click()`` sends.
    guard_line : ipywidgets.HTML
        Before a production send: what Send would do, and that it costs
        money and reaches a person (empty otherwise).
    confirm : ipywidgets.Checkbox
        Shown for production only: tick it to allow the next send.
    problems : ipywidgets.HTML
        The first thing that makes the form invalid.
    result : ipywidgets.HTML
        Outcome of the last send: tracking id, or error code and meaning.
    api_url, api_key, use_sandbox, key_status
        Only without a client: Text, Password, Checkbox, HTML.
    status_line : ipywidgets.HTML
        When following: the last refresh, or the error that stopped it.
    status_error : Exception or None
        The last error of the refresh thread.

    Notes
    -----
    Everything works headlessly: set the widgets' ``value`` and call
    ``send_button.click()``. A send runs synchronously (one request, short).
    """

    def __init__(self, client: SkycoreClient | None = None, *, postback_url: str | None = None, receiver=None,
                 log: str | os.PathLike | None = None, refresh_s: float = 1.0):
        if receiver is not None and log is not None:
            raise SkycoreValidationError("log", "give receiver= or log=, not both")
        if not refresh_s > 0:
            raise SkycoreValidationError("refresh_s", f"must be positive, got {refresh_s!r}")
        if receiver is not None and postback_url is None:
            postback_url = getattr(receiver, "url", None)
        self._client = client
        self._postback_url = postback_url
        self._own_client: SkycoreClient | None = None
        self._own_client_for: tuple | None = None  # (url, method, key holder) it was made for
        self._key = Secret(None)
        self._sandbox = None
        self._saved_url, self._saved_key = "", Secret(None)
        self._rows: list[dict] = []
        self.slide_rows: list[_SlideRow] = []
        self.data_rows: list[_DataRow] = []

        self.mms_id = _text("MMS id", "skycore-send-mms-id", "e.g. 1001")
        self.recipient = _text("To", "skycore-send-recipient", "international digits, e.g. 17743199144")
        self.recipient_reason = _make(ipw.HTML, "skycore-send-recipient-reason")
        self.sender = _text("Shortcode", "skycore-send-sender", "e.g. 60856")
        self.campaign_ref = _text("Campaign ref", "skycore-send-campaign-ref", "optional")
        self.ddm_enabled = _make(ipw.Checkbox, "skycore-send-ddm-enabled", description="Send a DDM (Device Discovery "
                                 "Message)", indent=False, layout=dict(_CHECKBOX))  # fmt: skip
        self.ddm_title = _text("DDM title", "skycore-send-ddm-title", "optional (platform default: Device Discovery)")
        self.ddm_text = _make(ipw.Textarea, "skycore-send-ddm-text", description="DDM text", style=_STYLE,
                              layout=dict(_FIELD))
        self.ddm_timeout = _make(ipw.BoundedIntText, "skycore-send-ddm-timeout", value=DEFAULT_DDM_TIMEOUT_MIN, min=0, max=MAX_DDM_TIMEOUT_MIN,
                                 description="DDM timeout (min)", style=_STYLE, layout={"width": "18em"})  # fmt: skip
        self.ddm_force = _make(ipw.Checkbox, "skycore-send-ddm-force", indent=False, layout=dict(_CHECKBOX),
                               description="Force the DDM even if the handset is cached")  # fmt: skip
        self.custom_subject = _text("Subject", "skycore-send-custom-subject", "optional: replaces the MMS subject")
        self.add_slide_button = _make(ipw.Button, "skycore-send-add-slide", description="Add slide text", icon="plus")
        self.add_data_button = _make(ipw.Button, "skycore-send-add-data", description="Add data field", icon="plus")
        self._slides_box, self._data_box = ipw.VBox(), ipw.VBox()
        self.method = _make(ipw.ToggleButtons, "skycore-send-method", options=[("POST", "post"), ("GET", "get")],
                            description="Method", value=client.method if client is not None else "post",
                            style={**_STYLE, "button_width": "7em"})
        self.send_button = _make(ipw.Button, "skycore-send-button", description="Send", button_style="primary",
                                 icon="paper-plane", disabled=True)  # fmt: skip
        self.problems = _make(ipw.HTML, "skycore-send-problems")
        self.guard_line = _make(ipw.HTML, "skycore-send-guard")
        self.confirm = _make(ipw.Checkbox, "skycore-send-confirm", indent=False, layout=dict(_CHECKBOX, display="none"),
                             description="I confirm: send this real MMS (production)")  # fmt: skip
        self._guards: dict[str, SendGuard] = {}
        self.result = _make(ipw.HTML, "skycore-send-result")
        self._history_html = _make(ipw.HTML, "skycore-send-history")
        self.status_line = _make(ipw.HTML, "skycore-send-status")
        self.status_error: Exception | None = None
        self._lock = threading.RLock()  # the rows: the kernel adds them, the refresh thread updates them
        self._follow_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._refresh_s = float(refresh_s)
        self._follower = None
        if receiver is not None or log is not None:
            from .livestatus import SendFollower

            self._follower = SendFollower(receiver if receiver is not None else log)

        connection: list[ipw.Widget] = []
        if client is None:
            url = os.environ.get("SKYCORE_API_URL") or PRODUCTION_URL
            self.api_url = _text("API URL", "skycore-send-api-url", value=url, layout={"width": "50em"})
            # continuous_update=False: take the key once typed (Enter/blur), not per keystroke.
            self.api_key = _make(ipw.Password, "skycore-send-api-key", description="API key", style=_STYLE,
                                 continuous_update=False, placeholder="paste the key, then Enter",
                                 layout=dict(_FIELD))
            self.key_status = _make(ipw.HTML, "skycore-send-key-status")
            self.use_sandbox = _make(ipw.Checkbox, "skycore-send-use-sandbox", indent=False, layout=dict(_CHECKBOX),
                                     description="Use a local sandbox (no real sends)")
            self.api_key.observe(self._on_key, names="value")
            self.use_sandbox.observe(self._on_sandbox, names="value")
            self.api_url.observe(self._validate, names="value")
            connection = [self.use_sandbox, self.api_url, ipw.HBox([self.api_key, self.key_status])]
            if os.environ.get("SKYCORE_API_KEY"):
                self._set_key(os.environ["SKYCORE_API_KEY"])

        for widget in (self.mms_id, self.recipient, self.sender, self.campaign_ref, self.ddm_enabled, self.ddm_title,
                       self.ddm_text, self.ddm_timeout, self.ddm_force, self.custom_subject, self.method,
                       self.confirm):
            widget.observe(self._validate, names="value")
        self.add_slide_button.on_click(lambda _: self.add_slide())
        self.add_data_button.on_click(lambda _: self.add_data())
        self.send_button.on_click(lambda _: self.send())

        heading = ipw.HTML("<b>Skycore test send</b>")
        self.widget = ipw.VBox([
            heading, *connection, self.mms_id, ipw.HBox([self.recipient, self.recipient_reason]), self.sender,
            self.campaign_ref, self.ddm_enabled,
            ipw.VBox([self.ddm_title, self.ddm_text, self.ddm_timeout, self.ddm_force]), self.custom_subject,
            ipw.HTML("<b>Custom text per slide</b>"), self._slides_box, self.add_slide_button,
            ipw.HTML("<b>Data fields</b>"), self._data_box, self.add_data_button,
            self.method, self.problems, self.guard_line, self.confirm, self.send_button, self.result,
            ipw.HTML("<b>Sends this session</b>"),
            self._history_html, self.status_line,
        ])  # fmt: skip
        self.widget.add_class("skycore-send")
        self._render_history()
        self._validate()
        if self._follower is not None:
            self.status_line.value = _html("following the postbacks of each send")
            self._thread = threading.Thread(target=self._follow, name="skycore-send-status", daemon=True)
            self._thread.start()

    # -- rows -----------------------------------------------------------------------
    def add_slide(self, slide: int | None = None) -> _SlideRow:
        """Add a custom-text row (slide number default: one past the highest) and return it."""
        if slide is None:
            numbers = [int(r.slide.value) for r in self.slide_rows if r.slide.value.strip().isdigit()]
            slide = max(numbers, default=0) + 1
        return self._add_row(_SlideRow(slide), self.slide_rows, self._slides_box)

    def add_data(self) -> _DataRow:
        """Add a data field row and return it."""
        return self._add_row(_DataRow(), self.data_rows, self._data_box)

    def _add_row(self, row: _Row, rows: list, box: ipw.VBox):
        for widget in row.fields:
            widget.observe(self._validate, names="value")
        row.remove_button.on_click(lambda _: self._remove(rows, box, row))
        rows.append(row)
        box.children = [r.box for r in rows]
        self._validate()
        return row

    def _remove(self, rows: list, box: ipw.VBox, row) -> None:
        rows.remove(row)
        box.children = [r.box for r in rows]
        _close_tree(row.box)
        self._validate()

    # -- connection -------------------------------------------------------------------
    def _set_key(self, key: str) -> None:
        self._key = Secret(key.strip())
        self.key_status.value = _html("✓ API key set (field cleared: the key is not saved in the notebook)", _OK)

    def _on_key(self, change) -> None:
        if change["new"]:
            self._set_key(change["new"])
            self.api_key.value = ""  # never leave the key in widget state
        self._validate()

    def _on_sandbox(self, change) -> None:
        if change["new"]:
            try:
                from .sandbox import Sandbox  # lazy: heavy, and optional for this form

                sandbox = Sandbox(postback_url=self._postback_url).start()
            except Exception as exc:  # show it, never raise into the widget callback
                self.result.value = _html(f"Could not start the sandbox: {exc}", _BAD)
                self.use_sandbox.value = False
                return
            self._sandbox = sandbox
            self._saved_url = self.api_url.value
            self.api_url.value = sandbox.url
            self._saved_key, self._key = self._key, Secret(sandbox.api_key)
            self.key_status.value = _html("✓ sandbox key", _OK)
            self.sender.value = self.sender.value or str(sandbox.shortcodes[0])
            self.mms_id.value = self.mms_id.value or str(sandbox.mms_ids[0])
        else:
            if self._sandbox is None:
                return
            self._close_sandbox()
            self.api_url.value = self._saved_url
            self._key = self._saved_key
            self.key_status.value = _html("✓ API key set", _OK) if self._key.reveal() else ""
        for widget in (self.api_url, self.api_key):
            widget.disabled = self._sandbox is not None
        self._validate()

    def _close_sandbox(self) -> None:
        sandbox, self._sandbox = self._sandbox, None
        if sandbox is not None:
            sandbox.close()

    def _client_for(self, method: str) -> SkycoreClient:
        if self._client is not None:
            if self._client.method == method:
                return self._client
            return self._client.with_method(method)  # the caller's client stays as it was
        url = self.api_url.value.strip()
        wanted = (url, method, self._key)  # the key holder is replaced whenever the key changes
        if self._own_client is None or self._own_client_for != wanted:
            if self._own_client is not None:
                self._own_client.close()
            self._own_client = SkycoreClient(self._key.reveal(), url, method=method)
            self._own_client_for = wanted
        return self._own_client

    # -- validation and sending ---------------------------------------------------------
    def _arguments(self) -> dict:
        """Keyword arguments of ``send_saved_mms``; raises SkycoreValidationError naming the first problem."""
        if self._client is None:
            if not self.api_url.value.strip():
                raise SkycoreValidationError("api_url", "is empty")
            if not self._key.reveal():
                raise SkycoreValidationError("api_key", "enter the API key (then Enter), or use the sandbox")
        slides = {row.slide.value: row.text.value for row in self.slide_rows if row.text.value}
        if len(slides) != sum(1 for row in self.slide_rows if row.text.value):
            raise SkycoreValidationError("custom_text", "the same slide number appears in two rows")
        data = {}
        for row in self.data_rows:
            if not row.key.value.strip() and not row.value.value:
                continue
            if row.key.value in data:
                raise SkycoreValidationError("data", f"field {row.key.value!r} appears in two rows")
            data[row.key.value] = row.value.value
        ddm = None
        if self.ddm_enabled.value:
            ddm = DDM(self.ddm_text.value, self.ddm_title.value or None, self.ddm_timeout.value, self.ddm_force.value)
        arguments = dict(
            mms_id=self.mms_id.value, to=self.recipient.value, sender=self.sender.value,
            campaign_ref=self.campaign_ref.value or None, ddm=ddm, custom_text=slides,
            custom_subject=self.custom_subject.value or None, data=data,
        )  # fmt: skip
        request = SendRequest.create(**arguments)
        numbers = [slide for slide, _ in request.custom_text]
        if len(set(numbers)) != len(numbers):
            raise SkycoreValidationError("custom_text", "the same slide number appears in two rows")
        self._guard().check_numbers(request.to)  # the allow-list, as the client will check it
        return arguments

    def _guard(self) -> SendGuard:
        """The send guard of the client Send will use (its own, or one made for the URL field)."""
        if self._client is not None:
            return self._client.guard
        url = self.api_url.value.strip()
        if url not in self._guards:
            self._guards[url] = SendGuard.create(url, validate_number)
        return self._guards[url]

    def _show_guard(self, arguments: dict | None) -> bool:
        """Show the production warning and the confirm box; True when Send may go (confirmed or not production)."""
        try:
            guard = self._guard() if self._client is not None or self.api_url.value.strip() else None
        except SkycoreValidationError:  # a bad $SKYCORE_TEST_NUMBERS: the problem line says so
            guard = None
        if guard is None or not guard.production or self._sandbox is not None:
            self.guard_line.value = ""
            self.confirm.layout.display = "none"
            return True
        self.confirm.layout.display = None
        if arguments is None:
            self.guard_line.value = _html("⚠ Production: Send delivers a real MMS (it costs money and reaches a "
                                          "person); complete the form, then confirm.", _BAD)
            return False
        what = guard.describe(1, arguments["mms_id"], arguments["sender"]).replace(
            "1 recipient(s)", f"1 recipient ({str(arguments['to']).strip()})")
        self.guard_line.value = _html(f"⚠ Send delivers a real MMS: {what}. It costs money and reaches a person: "
                                      "tick the box to confirm this send.", _BAD)
        return bool(self.confirm.value)

    def _validate(self, _change=None) -> bool:
        """Refresh the recipient's reason, the problem line and the Send button; True when sendable."""
        number = self.recipient.value
        if not number.strip():
            self.recipient_reason.value = _html("required")
        else:
            try:
                validate_number(number)
                self.recipient_reason.value = _html("✓", _OK)
            except SkycoreValidationError as exc:
                self.recipient_reason.value = _html(f"✗ {exc.message}", _BAD)
        for widget in (self.ddm_title, self.ddm_text, self.ddm_timeout, self.ddm_force):
            widget.disabled = not self.ddm_enabled.value
        try:
            arguments = self._arguments()
        except SkycoreValidationError as exc:
            self.problems.value = _html(str(exc), _BAD)
            self.send_button.disabled = True
            self._show_guard(None)
            return False
        self.problems.value = ""
        confirmed = self._show_guard(arguments)
        self.send_button.disabled = not confirmed
        return confirmed

    def send(self) -> None:
        """Send the form as it stands (what the Send button does); records the attempt in :attr:`history`."""
        method = self.method.value
        row = {col.REQUESTED_AT: datetime.now(timezone.utc), col.TO: self.recipient.value.strip(),
               col.MMS_ID: self.mms_id.value.strip(), col.SENDER: self.sender.value.strip(), METHOD: method,
               col.STATUS: None, col.TRACKING_ID: None, col.ERROR_CODE: None, col.ERROR_INFO: None,
               ERROR_MEANING: None, col.OUTCOME: None, DELIVERY: None}  # fmt: skip
        production = False
        try:
            arguments = self._arguments()
            production = self._sandbox is None and self._guard().production
            if production and not self.confirm.value:
                raise SkycoreValidationError("confirm", "a production send needs the confirm box ticked: "
                                                        "it sends a real MMS")
            result = self._client_for(method).send_saved_mms(**arguments)
        except SkycoreValidationError as exc:
            shown = self._fail(row, "Invalid", None, str(exc), None)
        except SkycoreAPIError as exc:
            meaning = exc.meaning or "no documented meaning"
            shown = self._fail(row, "Failure", exc.code, exc.info, meaning)
        except SkycoreTransportError as exc:
            status = "Unknown" if isinstance(exc, SkycoreTimeoutError) or exc.may_have_sent else "Error"
            shown = self._fail(row, status, None, str(exc), None)
        except SkycoreError as exc:
            shown = self._fail(row, "Error", None, str(exc), None)
        else:
            row.update({col.REQUESTED_AT: result.requested_at, col.STATUS: "Success",
                        col.TRACKING_ID: result.tracking_id, col.SENDER: result.sender, col.TO: result.to})
            if self._follower is not None:
                row.update({col.OUTCOME: col.OUTCOME_PENDING, DELIVERY: "sent"})
            tracking = f"<code>{html.escape(result.tracking_id)}</code>"
            where = _html(f" (to {result.to} from {result.sender})")
            shown = _html("✓ Sent: tracking id ", _OK) + tracking + where
        with self._lock:
            self._rows.append(row)
            self._render_history()
        if production:
            self.confirm.value = False  # one confirmation, one send
        # last: the front end applies updates in order, so a shown result means the history is shown too
        self.result.value = shown

    def _fail(self, row: dict, status: str, code: str | None, info: str, meaning: str | None) -> str:
        """Record the failure in ``row``; returns the result line to show."""
        info = redact(info or "", [self._key.reveal()])
        row.update({col.STATUS: status, col.ERROR_CODE: code, col.ERROR_INFO: info, ERROR_MEANING: meaning})
        if code:
            same = info.strip(" .").lower() == (meaning or "").strip(" .").lower()
            return _html(f"✗ {code}: {meaning}" + (f" — platform says: {info}" if info and not same else ""), _BAD)
        return _html(f"✗ {status}: {info}", _BAD)

    # -- history --------------------------------------------------------------------------
    @property
    def history(self) -> pd.DataFrame:
        """This session's send attempts, oldest first.

        Returns
        -------
        pandas.DataFrame
            One row per click of Send, with :data:`SEND_HISTORY_COLUMNS`:

            ==============  =============================================================
            requested_at    UTC time of the request (``datetime64[us, UTC]``)
            to              recipient as entered (as the platform echoed it on success)
            mms_id          saved MMS id as entered
            sender          shortcode: the one actually used on success, else as entered
            method          ``post`` or ``get``
            status          ``Success``, ``Failure`` (API error), ``Invalid`` (refused by the
                            form, never sent), ``Error`` (not sent), ``Unknown`` (no answer
                            after the request was written: it may have gone out)
            tracking_id     on success, else missing
            error_code      the API error code (``E110``...) on ``Failure``
            error_info      the platform's ERRORINFO, or the error message
            error_meaning   documented meaning of ``error_code`` (Appendix B)
            outcome         what the postbacks say so far (``columns.OUTCOMES``), when
                            following a receiver; else missing
            delivery        the same in words: ``sent``, ``delivered in 5 s on <handset>``,
                            ``failed: E102 … — <details>``, ``pending after N min``, the DDM
                            step first (see Decisions); missing when not following
            ==============  =============================================================

            :func:`skycore_lab.write_manifest` writes it (:meth:`save_history`)
            and :func:`skycore_lab.read_manifest` reads it back.
        """
        with self._lock:
            rows = [dict(row) for row in self._rows]
        frame = pd.DataFrame(rows, columns=list(SEND_HISTORY_COLUMNS))
        frame[col.REQUESTED_AT] = pd.to_datetime(frame[col.REQUESTED_AT], utc=True).astype("datetime64[us, UTC]")
        for name in SEND_HISTORY_COLUMNS[1:]:
            frame[name] = frame[name].astype("str").where(frame[name].notna())
        return frame

    def save_history(self, path: str | os.PathLike):
        """Write :attr:`history` as a manifest (``.csv``, ``.json`` or ``.parquet``); returns the path.

        :func:`skycore_lab.read_manifest` reads it back, with the same dtypes.
        """
        from .manifest import write_manifest

        return write_manifest(self.history, path)

    def _render_history(self) -> None:
        with self._lock:
            if not self._rows:
                self._history_html.value = _html("no sends yet")
                return
            shown = self.history.iloc[::-1].head(_HISTORY_SHOWN).drop(columns=list(_HIDDEN_IN_TABLE))
            if self._follower is None:
                shown = shown.drop(columns=[DELIVERY])
            # error columns only when a shown send has an error: the table stays narrow enough for its words
            empty = [name for name in (col.ERROR_CODE, col.ERROR_INFO, ERROR_MEANING) if shown[name].isna().all()]
            shown = shown.drop(columns=empty)
            shown[col.REQUESTED_AT] = shown[col.REQUESTED_AT].dt.strftime("%H:%M:%S")
            self._history_html.value = shown.to_html(index=False, na_rep="", escape=True, border=0)

    # -- following the sends ----------------------------------------------------------------
    def refresh_status(self) -> int:
        """Look at the log once, now, and update the history; return how many rows changed.

        What the refresh thread does every ``refresh_s`` seconds; here an
        error is raised (the thread shows it instead).
        """
        if self._follower is None:
            raise SkycoreValidationError("receiver", "this form follows no receiver: pass receiver= or log=")
        return self._refresh()

    def _refresh(self) -> int:
        with self._follow_lock:  # the follower is used by one thread at a time
            return self._refresh_rows()

    def _refresh_rows(self) -> int:
        with self._lock:
            tracked = [row for row in self._rows if row[col.STATUS] == "Success" and row[col.TRACKING_ID]]
        self._follower.read([row[col.TRACKING_ID] for row in tracked])
        if not tracked:
            return 0
        sends = pd.DataFrame({col.TRACKING_ID: [row[col.TRACKING_ID] for row in tracked],
                              col.TO: [row[col.TO] for row in tracked],
                              col.REQUESTED_AT: pd.to_datetime([row[col.REQUESTED_AT] for row in tracked], utc=True)})
        statuses = self._follower.statuses(sends)
        changed = 0
        with self._lock:
            for row, outcome, words in zip(tracked, statuses[col.OUTCOME], statuses[DELIVERY], strict=True):
                if pd.notna(words) and (row[DELIVERY], row[col.OUTCOME]) != (words, outcome):
                    row[DELIVERY], row[col.OUTCOME] = words, outcome
                    changed += 1
            if changed:
                self._render_history()
        return changed

    def _follow(self) -> None:
        while not self._stop.wait(self._refresh_s):
            try:
                self._refresh()
                if self.status_error is not None:
                    self.status_error = None
                    self.status_line.value = _html("following the postbacks of each send")
            except Exception as exc:  # a thread has nobody to raise to: show it, keep following
                self.status_error = exc
                self.status_line.value = _html(f"could not read the postbacks: {type(exc).__name__}: "
                                               f"{redact(str(exc), [self._key.reveal()])}", _BAD)

    # -- life cycle and display --------------------------------------------------------------
    def close(self) -> None:
        """Stop following, stop a sandbox this form started, close its own client and the widgets."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(10)
        self._close_sandbox()
        if self._own_client is not None:
            self._own_client.close()
            self._own_client = None
        _close_tree(self.widget)

    def __repr__(self) -> str:
        target = self._client.base_url if self._client is not None else self.api_url.value
        following = f", following={self._follower.path!r}" if self._follower is not None else ""
        return f"SendWidget(url={target!r}, sends={len(self._rows)}, sandbox={self._sandbox is not None}{following})"

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)
