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


@pytest.fixture
def fake():
    """A recording fake of the Skycore API on 127.0.0.1 (``tests/fake_api.py``), at the documented path."""
    from fake_api import FakeAPI, serve

    api = FakeAPI()
    server = serve(api)
    api.url = server.base_url + "/API/wxml/1.3/index.php"
    yield api
    server.stop()


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
