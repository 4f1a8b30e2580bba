"""Keeping API keys out of logs, reprs, exception messages and notebooks."""

from __future__ import annotations

import logging
from collections.abc import Iterable

__all__ = ["Secret", "mask_secret", "redact", "RedactingFilter"]


def mask_secret(secret: str | None) -> str:
    """A recognisable but useless form of a secret: ``'ab…yz'`` (or ``'…'``)."""
    if not secret:
        return "<none>"
    if len(secret) < 12:
        return "…"
    return f"{secret[:2]}…{secret[-2:]}"


class Secret:
    """Holds a secret (an API key); every way of printing it shows a masked form.

    ``repr``, ``str`` and f-strings give :func:`mask_secret`'s form; only
    :meth:`reveal` gives the value. Not picklable, so a key never travels to
    a worker process or a cache file by accident. Two holders are equal only
    when they are the same object.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str | None):
        self._value = value

    def reveal(self) -> str | None:
        """The secret itself."""
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return repr(mask_secret(self._value))

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return format(repr(self), spec)

    def __reduce__(self):
        raise TypeError("API keys are not picklable: pass the key again where it is needed")


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """Replace every occurrence of each non-empty secret in ``text`` (also URL-encoded)."""
    from urllib.parse import quote, quote_plus

    for secret in secrets:
        if not secret:
            continue
        for form in {secret, quote(secret, safe=""), quote_plus(secret)}:
            text = text.replace(form, mask_secret(secret))
    return text


class RedactingFilter(logging.Filter):
    """A logging filter that masks the given secrets in every record it passes.

    Attach it to the handlers (or loggers) that may see request URLs, such as
    ``urllib3.connectionpool``, which logs GET URLs with their ``api_key``.
    """

    def __init__(self, secrets: Iterable[str | None]):
        super().__init__()
        self.secrets = [s for s in secrets if s]

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            message = record.getMessage()
            cleaned = redact(message, self.secrets)
            if cleaned != message:
                record.msg, record.args = cleaned, None
        return True
