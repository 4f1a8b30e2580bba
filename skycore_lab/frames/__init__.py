"""Frames for the analysis: one row per send, per number, per reported message.

* :func:`deliveries` (:mod:`.deliveries`) — postback events (and a send
  manifest) → one row per send, with outcome and latencies;
* :func:`handset_profiles` (:mod:`.profiles`) — one row per phone number;
* :func:`read_sending_report` (:mod:`.sending_report`) — the platform's own
  sending-statistics report, in the shape of :func:`deliveries`;
* :func:`~.reconcile.reconcile` (:mod:`.reconcile`) — the postbacks' sends
  against that report, send by send.

Shared definitions: :mod:`.times` (reading times, an event's time, the
latest known time), :mod:`.latency` (every latency, once),
:mod:`.normalize` (dtypes, places, clock skew) and :mod:`.grouped` (text
as integer codes, one sort, first/last row per group).
"""

from __future__ import annotations

from ..exceptions import ClockSkewWarning, SendingReportWarning
from .deliveries import deliveries
from .normalize import NegativeLatency
from .profiles import handset_profiles
from .sending_report import read_sending_report

__all__ = [
    "deliveries",
    "handset_profiles",
    "read_sending_report",
    "ClockSkewWarning",
    "SendingReportWarning",
    "NegativeLatency",
]
