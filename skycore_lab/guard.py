"""The send guard: what may go to production — confirmation, allowed numbers, dry runs.

A test MMS to a real number costs money and reaches a person. Every
:class:`~skycore_lab.SkycoreClient` holds a :class:`SendGuard` that the
sending calls (``send``, ``send_saved_mms``, ``send_batch``, ``send_each``,
:meth:`DdmExperiment.run <skycore_lab.DdmExperiment.run>`, the send widget
and ``skycore-lab send``) consult **before anything is sent**:

* **Batch confirmation.** Against production, a call with more than
  ``confirm_above`` recipients (default :data:`DEFAULT_CONFIRM_ABOVE`, 50)
  raises :class:`~skycore_lab.exceptions.ConfirmationRequiredError` unless
  ``confirm=True`` is passed. Its message gives the count, the MMS id, the
  shortcode, the URL and, when a price per message is known
  (``price_per_mms=``), the estimated cost.
* **Allowed numbers.** With an allow-list, every other number is refused
  (:class:`~skycore_lab.exceptions.NumberNotAllowedError`, naming them)
  before the first request of the call.
* **Dry runs.** ``dry_run=True`` validates everything and returns a
  :class:`DryRun`: the exact HTTP requests the call would make (the API key
  masked), and nothing is sent.

Decisions
---------
* **What is production.** ``SkycoreClient(production=None)`` (the default)
  decides from the URL: a loopback host (``127.0.0.0/8``, ``::1``,
  ``localhost``) is a local sandbox, anything else production. A client made
  by :meth:`skycore_lab.Sandbox.client` is never production (a sandbox served
  on another interface is still a sandbox), and ``production=True`` makes
  any URL production — a test can point a guarded client at a recording
  server on 127.0.0.1.
* **Where the allow-list comes from.** ``allowed_numbers=`` (an iterable of
  numbers, a comma-separated text, or the path of a file with one number per
  line, ``#`` comments allowed) applies to every send of the client, sandbox
  included. Without it, the environment variable ``SKYCORE_TEST_NUMBERS``
  (:data:`TEST_NUMBERS_ENV`; a file path or a comma list) guards production
  clients only, so simulated numbers on a sandbox are never refused because
  of a production setting. Entries are validated like recipients; a bad one
  is an error naming the list.
* **A dry run never needs confirmation** (it sends nothing); it says whether
  the real call would (:attr:`DryRun.needs_confirmation`). Numbers off the
  allow-list make a dry run raise, as the real call would.
* **One request per recipient counts.** The threshold is on recipients, not
  on requests: one request to 60 numbers needs confirmation like 60
  requests to one number each.
"""

from __future__ import annotations

import html
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlsplit

from .exceptions import ConfirmationRequiredError, NumberNotAllowedError, SkycoreValidationError

__all__ = [
    "DEFAULT_CONFIRM_ABOVE",
    "TEST_NUMBERS_ENV",
    "SendGuard",
    "WireRequest",
    "DryRun",
    "is_sandbox_url",
    "read_allowed_numbers",
]

#: Recipients a production call may have without ``confirm=True``.
DEFAULT_CONFIRM_ABOVE = 50
#: Environment variable holding the production allow-list (a file path or a comma list).
TEST_NUMBERS_ENV = "SKYCORE_TEST_NUMBERS"
_SHOWN = 10  # numbers named in a message, at most


def is_sandbox_url(url: str) -> bool:
    """True when ``url``'s host is this machine (a local sandbox), by the rule of the module docstring."""
    from .server import is_loopback  # deferred: server imports uvicorn

    host = (urlsplit(str(url)).hostname or "").lower()
    return bool(host) and (is_loopback(host) or host == "[::1]")


def _entries(text: str) -> list[str]:
    entries = []
    for line in text.splitlines():
        line = line.split("#", 1)[0]
        entries.extend(part.strip() for part in line.replace(";", ",").split(","))
    return [entry for entry in entries if entry]


def read_allowed_numbers(value, validate: Callable[[object, str], str],
                         source: str = "allowed_numbers") -> frozenset[str]:
    """The validated numbers of an allow-list.

    Parameters
    ----------
    value : iterable of str or int, or str
        Numbers; or a text: the path of an existing file (one number per
        line, or comma-separated; ``#`` starts a comment), else a
        comma-separated list.
    validate : callable
        ``validate(number, field) -> number``, raising
        :class:`SkycoreValidationError` (the client's
        :func:`skycore_lab.validate_number`: entries are checked like recipients).
    source : str
        Where the list came from, for error messages.

    Raises
    ------
    SkycoreValidationError
        An entry is not a valid international number (the message names
        it), or the list is empty.
    """
    if isinstance(value, (str, os.PathLike)):
        text = os.fspath(value)
        if os.path.isfile(text):
            try:
                with open(text, encoding="utf-8") as handle:
                    raw = _entries(handle.read())
            except (OSError, UnicodeDecodeError) as exc:
                raise SkycoreValidationError(source, f"cannot read the file {text!r}: {exc}") from None
            source = f"{source} (file {text})"
        else:
            raw = _entries(text)
    elif isinstance(value, Iterable):
        raw = [str(item).strip() for item in value]
    else:
        raise SkycoreValidationError(source, f"expected numbers, a comma list or a file path, got {type(value).__name__}")
    numbers = []
    for entry in raw:
        try:
            numbers.append(validate(entry, source))
        except SkycoreValidationError as exc:
            raise SkycoreValidationError(source, f"entry {entry!r}: {exc.message}") from None
    if not numbers:
        raise SkycoreValidationError(source, "lists no number: every send would be refused")
    return frozenset(numbers)


def _named(numbers: list[str]) -> str:
    shown = ", ".join(numbers[:_SHOWN])
    return shown + (f" and {len(numbers) - _SHOWN:,} more" if len(numbers) > _SHOWN else "")


def _check_price(price: object) -> float | None:
    if price is None:
        return None
    if isinstance(price, bool) or not isinstance(price, (int, float)) or not price >= 0 or price == float("inf"):
        raise SkycoreValidationError("price_per_mms", f"must be a finite number >= 0, got {price!r}")
    return float(price)


@dataclass(frozen=True)
class SendGuard:
    """The checks a client makes before it sends (see the module docstring).

    Attributes
    ----------
    url : str
        The endpoint the client sends to.
    production : bool
        Whether that is production (decided by the client, see the module docstring).
    allowed : frozenset of str or None
        The allow-list in force (None: every number may be sent to).
    allowed_source : str
        Where it came from (``allowed_numbers=`` or the environment variable).
    confirm_above : int
        Recipients a production call may have without ``confirm=True``.
    price_per_mms : float or None
        Price of one MMS, for the estimated cost (any currency).
    """

    url: str
    production: bool
    allowed: frozenset[str] | None = None
    allowed_source: str = ""
    confirm_above: int = DEFAULT_CONFIRM_ABOVE
    price_per_mms: float | None = None

    @classmethod
    def create(cls, url: str, validate: Callable[[object, str], str], *, production: bool | None = None,
               allowed_numbers=None, confirm_above: int = DEFAULT_CONFIRM_ABOVE,
               price_per_mms: float | None = None) -> SendGuard:
        """Resolve ``production`` and the allow-list (argument, else :data:`TEST_NUMBERS_ENV` for production);
        ``validate`` checks the list's entries (see :func:`read_allowed_numbers`)."""
        if production is not None and not isinstance(production, bool):
            raise SkycoreValidationError("production", f"expected True, False or None (decide from the URL), "
                                                       f"got {production!r}")
        is_production = (not is_sandbox_url(url)) if production is None else production
        if isinstance(confirm_above, bool) or not isinstance(confirm_above, int) or confirm_above < 0:
            raise SkycoreValidationError("confirm_above", f"must be an integer >= 0, got {confirm_above!r}")
        allowed, source = None, ""
        if allowed_numbers is not None:
            allowed, source = read_allowed_numbers(allowed_numbers, validate), "allowed_numbers"
        elif is_production and os.environ.get(TEST_NUMBERS_ENV, "").strip():
            source = f"${TEST_NUMBERS_ENV}"
            allowed = read_allowed_numbers(os.environ[TEST_NUMBERS_ENV].strip(), validate, source)
        return cls(url=str(url), production=is_production, allowed=allowed, allowed_source=source,
                   confirm_above=confirm_above, price_per_mms=_check_price(price_per_mms))

    # -- the checks ---------------------------------------------------------------------
    def not_allowed(self, numbers: Iterable[str]) -> list[str]:
        """The numbers the allow-list refuses, in order, each once (empty without a list)."""
        if self.allowed is None:
            return []
        return list(dict.fromkeys(n for n in numbers if n not in self.allowed))

    def needs_confirmation(self, count: int) -> bool:
        """Whether a production call to ``count`` recipients needs ``confirm=True``."""
        return self.production and count > self.confirm_above

    def estimated_cost(self, count: int, price_per_mms: float | None = None) -> float | None:
        """``count`` × the price per MMS, or None when no price is known."""
        price = _check_price(price_per_mms) if price_per_mms is not None else self.price_per_mms
        return None if price is None else count * price

    def describe(self, count: int, mms_id: object, sender: object, price_per_mms: float | None = None) -> str:
        """What a call would do, in one sentence: count, MMS id, shortcode, where, estimated cost."""
        where = "PRODUCTION" if self.production else "a sandbox"
        cost = self.estimated_cost(count, price_per_mms)
        priced = ""
        if cost is not None:
            price = price_per_mms if price_per_mms is not None else self.price_per_mms
            priced = f"; estimated cost {cost:,.2f} ({count:,} × {price:g} per MMS)"
        return (f"{count:,} recipient(s) of MMS {mms_id} from shortcode {sender} on {where} "
                f"({self.url}){priced}")

    def check_numbers(self, numbers: Iterable[str]) -> None:
        """Raise :class:`NumberNotAllowedError` naming every number off the allow-list."""
        refused = self.not_allowed(numbers)
        if refused:
            raise NumberNotAllowedError(
                f"{len(refused):,} number(s) not in the allowed numbers ({self.allowed_source}): "
                f"{_named(refused)}; nothing was sent", tuple(refused))

    def check(self, numbers: Iterable[str], mms_id: object, sender: object, *, confirm: bool = False,
              price_per_mms: float | None = None) -> None:
        """Every check of a call to ``numbers`` (validated numbers); raises before anything is sent.

        Raises
        ------
        NumberNotAllowedError
            A number is off the allow-list (all of them are named).
        ConfirmationRequiredError
            A production call above ``confirm_above`` recipients without ``confirm=True``.
        """
        numbers = list(numbers)
        self.check_numbers(numbers)
        if not isinstance(confirm, bool):
            raise SkycoreValidationError("confirm", f"expected True or False, got {confirm!r}")
        if self.needs_confirmation(len(numbers)) and not confirm:
            raise ConfirmationRequiredError(
                f"this would send {self.describe(len(numbers), mms_id, sender, price_per_mms)}. More than "
                f"{self.confirm_above} recipients on production need confirm=True (the command line: --yes); "
                "dry_run=True shows the requests without sending", len(numbers))


# --- dry runs ------------------------------------------------------------------------------
@dataclass(frozen=True)
class WireRequest:
    """One HTTP request exactly as the client would send it, the API key masked.

    Attributes
    ----------
    method : str
        ``"POST"`` or ``"GET"``.
    url : str
        The full URL (a GET's query included).
    headers : tuple of (name, value)
        Every header the client's session would send (``Content-Length`` is
        the real request's, with the unmasked key).
    body : str
        The body as sent (form-encoded ``xml=…`` for POST), empty for GET.
    to : tuple of str
        The recipients of the request.
    """

    method: str
    url: str
    headers: tuple[tuple[str, str], ...]
    body: str
    to: tuple[str, ...]

    @property
    def xml(self) -> str | None:
        """The ``<REQUEST>`` document of a POST (the form field ``xml``, decoded), else None."""
        if self.method != "POST":
            return None
        return dict(parse_qsl(self.body, keep_blank_values=True)).get("xml")

    def __str__(self) -> str:
        lines = [f"{self.method} {self.url}", *(f"{name}: {value}" for name, value in self.headers)]
        return "\n".join(lines) + ("\n\n" + self.body if self.body else "")


@dataclass(frozen=True)
class DryRun:
    """What a sending call would do, without doing it (``dry_run=True``).

    Attributes
    ----------
    requests : tuple of WireRequest
        The requests, in the order they would be sent, the API key masked.
    invalid : tuple of (number, reason)
        Recipients the call would refuse itself (a batch's ``Invalid`` rows).
    url : str
    production : bool
    mms_id, sender : str
    recipients : int
        Recipients of the call (valid or not).
    needs_confirmation : bool
        The real call would need ``confirm=True``.
    estimated_cost : float or None
        Recipients that would be sent to × the price per MMS, when known.
    assignment : DataFrame or None
        An experiment's assignment (``to, arm, stratum``), for :meth:`DdmExperiment.run`.
    """

    requests: tuple[WireRequest, ...]
    url: str
    production: bool
    mms_id: str
    sender: str
    recipients: int
    needs_confirmation: bool = False
    estimated_cost: float | None = None
    invalid: tuple[tuple[str, str], ...] = ()
    assignment: object = field(default=None, repr=False)

    def frame(self):
        """One row per request.

        Returns
        -------
        pandas.DataFrame
            ``to`` (comma-separated recipients), ``method``, ``url``,
            ``body`` (key masked), and ``arm`` when :attr:`assignment` has one.
        """
        import pandas as pd

        frame = pd.DataFrame({
            "to": [",".join(request.to) for request in self.requests],
            "method": [request.method for request in self.requests],
            "url": [request.url for request in self.requests],
            "body": [request.body for request in self.requests],
        })
        assignment = self.assignment
        if assignment is not None and "arm" in getattr(assignment, "columns", ()):
            arms = dict(zip(assignment["to"].astype(str), assignment["arm"].astype(str), strict=True))
            frame["arm"] = frame["to"].map(arms)
        return frame

    def summary(self) -> str:
        """Plain words: what would be sent where, what needs confirming, what would be refused."""
        lines = [f"Dry run, nothing sent: {len(self.requests):,} request(s) to "
                 f"{'PRODUCTION' if self.production else 'a sandbox'} ({self.url}) for MMS {self.mms_id} "
                 f"from shortcode {self.sender}, {self.recipients:,} recipient(s)."]
        if self.estimated_cost is not None:
            lines.append(f"  Estimated cost: {self.estimated_cost:,.2f}.")
        if self.needs_confirmation:
            lines.append("  The real call needs confirm=True (more recipients than the production threshold).")
        if self.invalid:
            shown = "; ".join(f"{number}: {reason}" for number, reason in self.invalid[:3])
            lines.append(f"  {len(self.invalid):,} recipient(s) would be refused as Invalid, e.g. {shown}.")
        return "\n".join(lines)

    def __repr__(self) -> str:
        where = "production" if self.production else "sandbox"
        return f"<DryRun: {len(self.requests)} request(s) to {where}, {self.recipients} recipient(s), nothing sent>"

    def _repr_html_(self) -> str:
        lines = self.summary().splitlines()
        items = "".join(f"<li>{html.escape(line.strip())}</li>" for line in lines[1:])
        first = self.requests[0] if self.requests else None
        shown = f"<p>First request:</p><pre>{html.escape(str(first))}</pre>" if first is not None else ""
        return f"<div><p>{html.escape(lines[0])}</p><ul>{items}</ul>{shown}</div>"
