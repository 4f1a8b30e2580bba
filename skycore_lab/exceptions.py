"""Errors and warnings of skycore-lab: one tree each.

Every error a user can meet derives from :class:`SkycoreError`, so
``except SkycoreError`` catches them all; some also derive from the
built-in exception they are a kind of (``ValueError``, ``RuntimeError``,
``OSError``), so code written against those keeps working::

    SkycoreError
    ├── SkycoreValidationError        bad input, found before anything was done (also ValueError)
    │   └── SendGuardError            the send guard refused before anything was sent
    │       ├── NumberNotAllowedError      numbers off the allow-list (allowed_numbers, SKYCORE_TEST_NUMBERS)
    │       └── ConfirmationRequiredError  a production call above the threshold without confirm=True
    ├── SkycoreAPIError               the platform answered <STATUS>Failure</STATUS>
    │   └── SkycoreRateLimitError     throttling codes E106, E113, E120 (retried by the client)
    ├── SkycoreTransportError         no usable answer: HTTP status != 200, non-XML body, broken connection
    │   └── SkycoreTimeoutError       read time-out on a send: the MMS may or may not have gone out
    ├── PostbackParseError            a postback record could not be read (also ValueError)
    ├── PostbackSourceNotFound        no file matches a postback source (also FileNotFoundError)
    ├── ScenarioError                 an invalid sandbox scenario (also ValueError)
    ├── SkycoreStateError             not now: a server not started, a log another receiver writes
    │                                 (also RuntimeError)
    ├── SkycoreServerError            a local server could not start, e.g. its port is taken (also OSError)
    ├── DatasetError                  a Parquet events dataset cannot be used: its state file is damaged,
    │                                 a committed part is missing, another ingest holds it (also RuntimeError)
    └── MissingDependencyError        an optional package a call needs is not installed (also ImportError)
        └── DaskNotInstalledError     a dask DataFrame or a dataset needs the [dask] extra

Every warning derives from :class:`SkycoreWarning` (a ``UserWarning``), so
``warnings.filterwarnings("ignore", category=SkycoreWarning)`` silences
them all::

    SkycoreWarning
    ├── PostbackParseWarning          malformed postback records were skipped
    │   └── PostbackDataWarning       records were read, but some needed care: repaired XML, an
    │                                 inferred UTC offset, an implausible time, a capped extra
    ├── ClockSkewWarning              latencies came out negative: two systems' clocks disagree
    ├── LatencyDataWarning            sends without a usable latency were left out, or clipped at 0
    ├── SendingReportWarning          part of a sending-statistics report was read leniently
    ├── KeyExposureWarning            the API key would travel where others may read it (GET to a remote host)
    ├── SendOptionWarning             the platform will alter or ignore a send option (FROM_MASK cut off, ...)
    ├── MissingPostbacksWarning       the platform's report has sends (or outcomes) the postbacks lack
    └── PlotDataWarning               some rows were left out of a figure (e.g. times out of range)

No message, ``repr`` or attribute of these exceptions ever holds an API key:
the client masks it before building them (:func:`skycore_lab.redaction.redact`).
"""

from __future__ import annotations

__all__ = [
    "SkycoreError",
    "SkycoreValidationError",
    "SendGuardError",
    "NumberNotAllowedError",
    "ConfirmationRequiredError",
    "SkycoreAPIError",
    "SkycoreRateLimitError",
    "SkycoreTransportError",
    "SkycoreTimeoutError",
    "PostbackParseError",
    "PostbackSourceNotFound",
    "ScenarioError",
    "SkycoreStateError",
    "SkycoreServerError",
    "DatasetError",
    "MissingDependencyError",
    "DaskNotInstalledError",
    "SkycoreWarning",
    "PostbackParseWarning",
    "PostbackDataWarning",
    "ClockSkewWarning",
    "LatencyDataWarning",
    "SendingReportWarning",
    "KeyExposureWarning",
    "SendOptionWarning",
    "MissingPostbacksWarning",
    "PlotDataWarning",
    "RATE_LIMIT_CODES",
]

#: API error codes that mean "slow down", never "this request is wrong".
RATE_LIMIT_CODES = frozenset({"E106", "E113", "E120"})


class SkycoreError(Exception):
    """Base class of every error raised by skycore-lab."""


class SkycoreValidationError(SkycoreError, ValueError):
    """Invalid input, found before any request was made.

    Parameters
    ----------
    field : str
        The argument or form field at fault (``"to"``, ``"ddm.timeout_min"``, ...).
    message : str
        What is wrong with it, in words a user can act on.
    """

    def __init__(self, field: str, message: str):
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


class SendGuardError(SkycoreValidationError):
    """The send guard (:mod:`skycore_lab.guard`) refused a call before anything was sent."""


class NumberNotAllowedError(SendGuardError):
    """Numbers outside the allow-list (``allowed_numbers=`` or ``$SKYCORE_TEST_NUMBERS``).

    Attributes
    ----------
    numbers : tuple of str
        Every refused number, in the order given.
    """

    def __init__(self, message: str, numbers: tuple[str, ...] = ()):
        self.numbers = tuple(numbers)
        super().__init__("to", message)

    def __reduce__(self):
        return (type(self), (self.message, self.numbers))


class ConfirmationRequiredError(SendGuardError):
    """A production call to more recipients than the threshold, without ``confirm=True``.

    Attributes
    ----------
    recipients : int
        Recipients of the refused call.
    """

    def __init__(self, message: str, recipients: int = 0):
        self.recipients = int(recipients)
        super().__init__("confirm", message)

    def __reduce__(self):
        return (type(self), (self.message, self.recipients))


class SkycoreAPIError(SkycoreError):
    """The platform answered with ``<STATUS>Failure</STATUS>``.

    Attributes
    ----------
    code : str
        The documented error code, e.g. ``"E110"``.
    info : str
        The platform's ``ERRORINFO`` text.
    to : str or None
        The recipient the failed request was for, when known; for a
        whole-call failure of several numbers, all of them comma-separated
        (as the platform's ``TO``).
    numbers : tuple of str
        The numbers of ``to``, one each (empty when unknown).
    meaning : str or None
        The documented meaning of ``code`` (Appendix B), when known.
    """

    def __init__(self, code: str, info: str = "", to: str | None = None):
        from .reference import api_error_meaning  # deferred: reference loads CSVs

        self.code = code
        self.info = info
        self.to = to
        self.meaning = api_error_meaning(code)
        detail = info or self.meaning or "no error text"
        where = f" (to={to})" if to else ""
        super().__init__(f"{code}: {detail}{where}")

    @property
    def numbers(self) -> tuple[str, ...]:
        return tuple(n.strip() for n in (self.to or "").split(",") if n.strip())

    def __reduce__(self):  # keep pickling (multiprocessing, joblib) working
        return (type(self), (self.code, self.info, self.to))


class SkycoreRateLimitError(SkycoreAPIError):
    """Throttling (E106, E113, E120): the request was refused, not performed."""


class SkycoreTransportError(SkycoreError):
    """No usable API answer: HTTP error status, non-XML body or broken connection.

    Attributes
    ----------
    status : int or None
        HTTP status, or None when no response arrived.
    body_head : str
        The first bytes of the body (at most 200 characters), for diagnosis.
    may_have_sent : bool
        True when the request reached the server and the outcome is unknown:
        do not resend blindly, check the postbacks first.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        body_head: str = "",
        may_have_sent: bool = False,
    ):
        self.status = status
        self.body_head = body_head
        self.may_have_sent = may_have_sent
        super().__init__(message)


class SkycoreTimeoutError(SkycoreTransportError):
    """A send timed out after the request was written: its state is unknown.

    The client never retries this case: a second request could deliver (and
    bill) the MMS twice. Look for the recipient's postbacks before resending.
    """

    def __init__(self, message: str, *, status: int | None = None, body_head: str = ""):
        super().__init__(message, status=status, body_head=body_head, may_have_sent=True)


class PostbackParseError(SkycoreError, ValueError):
    """A postback record could not be parsed.

    Attributes
    ----------
    source : str
        The file (or other source) holding the record.
    line : int or None
        1-based line number where the record starts, when known.
    reason : str
        What was wrong.
    """

    def __init__(self, source: str, line: int | None, reason: str):
        self.source = source
        self.line = line
        self.reason = reason
        where = f"{source}:{line}" if line is not None else str(source)
        super().__init__(f"{where}: {reason}")

    def __reduce__(self):
        return (type(self), (self.source, self.line, self.reason))


class ScenarioError(SkycoreError, ValueError):
    """A sandbox scenario that cannot be simulated; the message names the key."""


class PostbackSourceNotFound(SkycoreError, FileNotFoundError):
    """A postback file, directory or glob that does not exist or matches nothing
    (also a missing manifest file: :func:`skycore_lab.read_manifest`)."""


class SkycoreStateError(SkycoreError, RuntimeError):
    """The call does not fit the object's state: a server not started (or started twice),
    a log file another receiver is writing."""


class SkycoreServerError(SkycoreError, OSError):
    """A local server (receiver, sandbox) could not start: its port is taken, it did not come up."""


class DatasetError(SkycoreError, RuntimeError):
    """A Parquet events dataset (:func:`skycore_lab.ingest`) cannot be used as it is."""


class MissingDependencyError(SkycoreError, ImportError):
    """An optional package is not installed; the message names the extra that installs it."""


class DaskNotInstalledError(MissingDependencyError):
    """Dask analysis (a dask DataFrame, ``read_events(engine="dask")``, ``report --dataset``) without
    dask and distributed installed.

    The message says what to install: ``pip install "skycore-lab[dask]"``.
    """


# --- warnings -----------------------------------------------------------------------------------
class SkycoreWarning(UserWarning):
    """Base class of every warning skycore-lab emits."""


class PostbackParseWarning(SkycoreWarning):
    """Some postback records were malformed and skipped (``on_bad_lines="warn"``)."""


class PostbackDataWarning(PostbackParseWarning):
    """Postback records were read, but some of their data needed care: a
    repaired (non-well-formed) document, a TIMESTAMP without a UTC offset, a
    time outside :data:`skycore_lab.frames.times.PLAUSIBLE_TIMES`, or an
    ``extra`` over its cap. The rows are kept and flagged; the message counts
    them and names the first places."""


class ClockSkewWarning(SkycoreWarning):
    """Some latencies came out negative: the timestamps of two systems disagree."""


class LatencyDataWarning(SkycoreWarning):
    """Some sends had no usable latency or censoring time and were left out,
    or had a negative one (clock skew) that was set to 0."""


class SendingReportWarning(SkycoreWarning):
    """Something in a sending report was read leniently or could not be used."""


class KeyExposureWarning(SkycoreWarning):
    """The API key would travel where others may read it: ``method="get"`` puts it in the URL,
    which proxies and servers log, and the host is not this machine."""


class SendOptionWarning(SkycoreWarning):
    """The platform documents that it alters or ignores a send option as given
    (a FROM_MASK longer than 11 characters is cut off; FROM_MASK is not supported in the US)."""


class MissingPostbacksWarning(SkycoreWarning):
    """The platform's sending report knows sends, or final outcomes, that no postback told:
    what a receiver outage (or a postback URL change) looks like (:func:`skycore_lab.reconcile`)."""


class PlotDataWarning(SkycoreWarning):
    """Some rows were left out of a figure, e.g. event times outside the plottable range;
    the data themselves are unchanged (a report lists the warning among its notes)."""
