"""The sandbox's account: keys, shortcodes, saved MMS and campaigns.

Every API error code the summary lists for ``sendSavedMMS`` can be reached
through it (see :class:`Account` for which input gives which code).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

from ..redaction import mask_secret
from ..reference import mm7_operator_ids

__all__ = ["Account", "make_account"]


@dataclass(frozen=True)
class Account:
    """What the sandbox's platform knows about the (single) account.

    Attributes
    ----------
    api_key : str
        The working key (never shown in ``repr``).
    billing_problem_key : str
        Authenticates, but every send gets E713 (billing problem).
    no_rights_key : str
        Authenticates, but the account has no API rights: E105.
    shortcodes : tuple of str
        Allowed ``FROM`` values (others: E111); they are US shortcodes.
    shortcode_country : str
        Country of :attr:`shortcodes`.
    country_shortcodes : mapping country → shortcode
        The default shortcode the platform substitutes when the recipient is
        in another country (the answer's ``FROM`` then differs from the one asked).
    mms_ids : tuple of str
        Saved MMS ready to send. Other numeric ids: E241; non-numeric: E625.
    encoding_mms_ids : tuple of str
        Saved MMS still encoding: E626.
    unsupported_mms_ids : tuple of str
        Saved MMS with an unrecognised content type: E629.
    campaigns : mapping campaign id → frozenset of numbers, or None
        ``CAMPAIGNREF`` values; None = any number may receive it, a set = only
        subscribed numbers (others: E715). Unknown campaign ids: E714.
    blacklisted : frozenset of str
        Numbers the platform refuses: E114.
    operator_ids : tuple of str
        ``OPERATORID`` values the platform knows and supports: the documented
        operator list (:func:`skycore_lab.reference.mm7_operator_ids`, 7-digit
        ids such as ``"0001470"`` AT&T) but the unsupported ones.
    unsupported_operator_ids : tuple of str
        Documented operator ids the platform does not support: E628 (by
        default those the list marks "Unused" or "Out of Business"; numbers on
        a scenario carrier with ``supported: false`` also get E628). Any
        other operator id: E651.
    """

    api_key: str = field(repr=False)
    billing_problem_key: str = field(repr=False)
    no_rights_key: str = field(repr=False)
    shortcodes: tuple[str, ...] = ("60856", "30500")
    shortcode_country: str = "United States"
    country_shortcodes: Mapping[str, str] = field(
        default_factory=lambda: MappingProxyType({"Canada": "393939", "United Kingdom": "88600"}))
    mms_ids: tuple[str, ...] = ("1001", "1002", "1003")
    encoding_mms_ids: tuple[str, ...] = ("2001",)
    unsupported_mms_ids: tuple[str, ...] = ("3001",)
    campaigns: Mapping[str, frozenset | None] = field(default_factory=lambda: MappingProxyType({
        "5001": frozenset(f"1774319{i:04d}" for i in range(1, 6)),
        "5002": None,
    }))
    blacklisted: frozenset = frozenset({"17745550100"})
    operator_ids: tuple[str, ...] = field(default_factory=lambda: _documented_operators(supported=True))
    unsupported_operator_ids: tuple[str, ...] = field(default_factory=lambda: _documented_operators(supported=False))

    def __repr__(self) -> str:  # keys masked
        return (f"Account(api_key={mask_secret(self.api_key)!r}, shortcodes={self.shortcodes}, "
                f"mms_ids={self.mms_ids}, encoding_mms_ids={self.encoding_mms_ids}, "
                f"unsupported_mms_ids={self.unsupported_mms_ids}, campaigns={sorted(self.campaigns)})")

    def sender_for(self, requested: str, country: str) -> str:
        """The shortcode actually used for a recipient in ``country``."""
        if country != self.shortcode_country and country in self.country_shortcodes:
            return self.country_shortcodes[country]
        return requested


def _documented_operators(*, supported: bool) -> tuple[str, ...]:
    operators = mm7_operator_ids()
    gone = {i for i, name in operators.items() if "unused" in name.lower() or "out of business" in name.lower()}
    return tuple(i for i in operators if (i not in gone) is supported)


def _key(seed: int, role: str) -> str:
    # Random-looking, reproducible from the seed; 32 hex characters like real keys.
    return hashlib.sha256(f"skycore-lab sandbox {seed} {role}".encode()).hexdigest()[:32]


def make_account(seed: int) -> Account:
    """The default account of a sandbox with this seed."""
    return Account(api_key=_key(seed, "api"), billing_problem_key=_key(seed, "billing"),
                   no_rights_key=_key(seed, "no-rights"))
