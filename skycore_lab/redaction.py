"""Keeping API keys out of logs, reprs, exception messages and notebooks."""

from __future__ import annotations

import html
import logging
import threading
import weakref
from collections.abc import Iterable

__all__ = ["Secret", "SecretRegistry", "mask_secret", "redact", "RedactingFilter"]


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

    __slots__ = ("_value", "__weakref__")

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
    """Replace every occurrence of each non-empty secret in ``text`` (also URL-encoded or XML-escaped)."""
    from urllib.parse import quote, quote_plus

    for secret in secrets:
        if not secret:
            continue
        forms = {secret, quote(secret, safe=""), quote_plus(secret), html.escape(secret, quote=False),
                 html.escape(secret)}
        for form in sorted(forms, key=len, reverse=True):
            text = text.replace(form, mask_secret(secret))
    return text


class SecretRegistry:
    """The secrets of live holders, held weakly: a holder that is gone is forgotten.

    The client registers each key it is given, so one logging filter can mask
    every key in use without keeping every key ever used (20,000 clients made
    and dropped used to leave 20,000 keys to check on every log record).
    Thread-safe.
    """

    def __init__(self) -> None:
        self._holders: weakref.WeakSet[Secret] = weakref.WeakSet()
        self._lock = threading.Lock()

    def add(self, secret: Secret) -> None:
        """Remember ``secret`` for as long as it is alive (empty secrets are ignored)."""
        if secret:
            with self._lock:
                self._holders.add(secret)

    def values(self) -> list[str]:
        """The distinct secret values of the live holders."""
        with self._lock:
            holders = list(self._holders)
        return list(dict.fromkeys(value for holder in holders if (value := holder.reveal())))

    def live_secrets(self) -> int:
        """How many live holders are registered (holders sharing a value count once each)."""
        with self._lock:
            return len(self._holders)


class RedactingFilter(logging.Filter):
    """A logging filter that masks the given secrets in every record it passes.

    Attach it to the handlers (or loggers) that may see request URLs, such as
    ``urllib3.connectionpool``, which logs GET URLs with their ``api_key``.

    Parameters
    ----------
    secrets : iterable of str
        Fixed secrets to mask.
    registry : SecretRegistry, optional
        Also mask the secrets of the registry's live holders.
    """

    def __init__(self, secrets: Iterable[str | None] = (), *, registry: SecretRegistry | None = None):
        super().__init__()
        self.secrets = [s for s in secrets if s]
        self.registry = registry

    def live_secrets(self) -> int:
        """Secret holders the registry keeps alive-checked (0 without a registry)."""
        return 0 if self.registry is None else self.registry.live_secrets()

    def values(self) -> list[str]:
        """Every distinct secret this filter masks now."""
        registered = self.registry.values() if self.registry is not None else []
        return list(dict.fromkeys([*self.secrets, *registered]))

    def filter(self, record: logging.LogRecord) -> bool:
        secrets = self.values()
        if secrets:
            message = record.getMessage()
            cleaned = redact(message, secrets)
            if cleaned != message:
                record.msg, record.args = cleaned, None
        return True
