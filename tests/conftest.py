"""Shared test set-up: headless matplotlib, closed figures, fixed seeds."""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")  # before anything imports pyplot

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile(
    "ci", derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

DATA = os.path.join(os.path.dirname(__file__), "data")


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture
def data_dir() -> str:
    """Path of tests/data (recorded fixtures)."""
    return DATA


@pytest.fixture(autouse=True)
def _no_ambient_credentials(monkeypatch):
    # A developer's real key or URL in the environment must never leak into a test.
    monkeypatch.delenv("SKYCORE_API_KEY", raising=False)
    monkeypatch.delenv("SKYCORE_API_URL", raising=False)
