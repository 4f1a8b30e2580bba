"""Plots of delivery rates, latency, outcomes, handsets and postback traffic.

Each function takes ``ax=None`` and returns the Axes (the seaborn contract):
:mod:`.data` computes a small tidy frame, :mod:`.draw` draws it. Colours,
orders and the other conventions are in :mod:`.draw`'s docstring.
"""

from __future__ import annotations

from .data import FAMILIES, FAMILY_DDM, FAMILY_DELIVERED, FAMILY_FAILED, FAMILY_OTHER, FAMILY_SENT, MISSING_LABEL
from .draw import (
    FAMILY_COLORS,
    GREY,
    LATENCY_KINDS,
    OKABE_ITO,
    OUTCOME_COLORS,
    PALETTE,
    plot_delivery_rates,
    plot_handsets,
    plot_latency,
    plot_outcomes,
    plot_timeline,
)

__all__ = [
    "plot_delivery_rates",
    "plot_latency",
    "plot_outcomes",
    "plot_handsets",
    "plot_timeline",
    "OKABE_ITO",
    "GREY",
    "PALETTE",
    "OUTCOME_COLORS",
    "FAMILY_COLORS",
    "LATENCY_KINDS",
    "FAMILIES",
    "FAMILY_SENT",
    "FAMILY_DELIVERED",
    "FAMILY_FAILED",
    "FAMILY_DDM",
    "FAMILY_OTHER",
    "MISSING_LABEL",
]
