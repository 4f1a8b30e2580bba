"""A local HTTP server that behaves like the Skycore platform (``sendSavedMMS``, postbacks, ``getSendingStatistics``).

* :class:`Sandbox` — the server (``with Sandbox(seed=0) as sb: ...``).
* :class:`Scenario` — the documented, validated world description.
* :class:`World` — the pure world model, usable without HTTP.
* :class:`Account` — keys, shortcodes, saved MMS and campaigns of the sandbox account.
"""

from __future__ import annotations

from .account import Account
from .core import Sandbox
from .scenario import DEFAULTS, Scenario
from .model import truth_frame
from .world import Notification, NumberProfile, SendSimulation, World

__all__ = ["Sandbox", "Scenario", "World", "Account", "Notification", "NumberProfile", "SendSimulation", "DEFAULTS",
           "truth_frame"]
