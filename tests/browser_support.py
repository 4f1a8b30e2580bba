"""Helpers of the real-browser tests: find Chromium, launch it, collect console errors, run JupyterLab.

Playwright drives Debian's ``chromium`` (``.ci/run`` installs it); its own
browser downloads (``playwright install``) are never used.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
DATA = ROOT / "data"
#: Screenshots and other files worth keeping from a test run (git-ignored).
ARTIFACTS = ROOT / "test-artifacts"
#: Where Debian puts Chromium; other names are tried on PATH.
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser")
#: The venv's own Jupyter data (kernelspec ``python3`` of this interpreter).
VENV_JUPYTER_PATH = os.path.join(sys.prefix, "share", "jupyter")


def chromium_path() -> str | None:
    """Path of a Chromium executable, or None."""
    for candidate in CHROMIUM_CANDIDATES:
        found = candidate if os.path.isabs(candidate) and os.access(candidate, os.X_OK) else shutil.which(candidate)
        if found:
            return found
    return None


def require_chromium() -> str:
    """The Chromium path; skips the test (with the reason) when there is none."""
    path = chromium_path()
    if path is None:
        pytest.skip(
            "no Chromium found (looked for /usr/bin/chromium, chromium, chromium-browser on PATH): "
            "install Debian's `chromium` (.ci/run does)"
        )
    return path


@contextmanager
def browser():
    """A headless Chromium driven by Playwright, closed afterwards."""
    from playwright.sync_api import sync_playwright

    executable = require_chromium()
    with sync_playwright() as playwright:
        # --no-sandbox: CI runs as root in a container, where Chromium's sandbox cannot start.
        launched = playwright.chromium.launch(
            executable_path=executable, headless=True, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        try:
            yield launched
        finally:
            launched.close()


@dataclass
class PageErrors:
    """Console messages of type ``error`` and uncaught page exceptions, as text."""

    messages: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    @classmethod
    def watch(cls, page) -> PageErrors:
        errors = cls()
        page.on("console", lambda message: errors._console(message))
        page.on("pageerror", lambda error: errors.messages.append(f"pageerror: {error}"))

        def on_dialog(dialog) -> None:  # alert()/confirm() would mean injected script ran
            errors.dialogs.append(f"{dialog.type}: {dialog.message}")
            dialog.dismiss()

        page.on("dialog", on_dialog)
        return errors

    def _console(self, message) -> None:
        if message.type == "error":
            self.messages.append(f"console.error: {message.text} ({message.location})")


def save_screenshot(page, name: str) -> Path | None:
    """Full-page screenshot into ``test-artifacts/<name>``; never raises (it runs on failure too)."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    try:
        page.screenshot(path=str(path), full_page=True)
    except Exception:  # a closed or crashed page must not hide the test's own failure
        return None
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def jupyter_env(**extra: str) -> dict[str, str]:
    """Environment for kernels and servers: this venv's kernelspec first, no ambient Skycore credentials."""
    env = dict(os.environ)
    env.pop("SKYCORE_API_KEY", None)
    env.pop("SKYCORE_API_URL", None)
    env["JUPYTER_PATH"] = os.pathsep.join(p for p in (VENV_JUPYTER_PATH, env.get("JUPYTER_PATH")) if p)
    env["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"  # silences a debugger warning on kernel start
    env.update(extra)
    return env


def ensure_venv_kernelspec() -> None:
    """Install this interpreter's ``python3`` kernelspec into the venv when it is missing."""
    if not os.path.exists(os.path.join(VENV_JUPYTER_PATH, "kernels", "python3", "kernel.json")):
        subprocess.run([sys.executable, "-m", "ipykernel", "install", "--sys-prefix"], check=True,
                       capture_output=True)  # fmt: skip


@dataclass
class JupyterLab:
    """A running ``jupyter lab`` subprocess on 127.0.0.1 with a random token."""

    process: subprocess.Popen
    port: int
    token: str
    log_path: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}?token={self.token}"

    def api(self, method: str, path: str, **kwargs):
        headers = {"Authorization": f"token {self.token}"}
        return requests.request(method, f"{self.base_url}/api/{path.lstrip('/')}", headers=headers, timeout=10,
                                **kwargs)  # fmt: skip

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""


@contextmanager
def jupyter_lab(root_dir: Path, work_dir: Path, env_extra: dict[str, str] | None = None, start_timeout: float = 60.0):
    """Start JupyterLab serving ``root_dir``; yield a :class:`JupyterLab`; shut kernels and server down."""
    ensure_venv_kernelspec()
    port, token = free_port(), secrets.token_hex(16)
    settings, runtime = work_dir / "lab-settings", work_dir / "runtime"
    for folder in (settings, runtime, work_dir / "workspaces", work_dir / "config"):
        folder.mkdir(parents=True, exist_ok=True)
    # No news or update checks: nothing leaves loopback, and no toast covers the page.
    notification = settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    notification.parent.mkdir(parents=True, exist_ok=True)
    notification.write_text('{"fetchNews": "false", "checkForUpdates": false}')
    # Render every cell (not only those scrolled into view), so locators find them all.
    tracker = settings / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings"
    tracker.parent.mkdir(parents=True, exist_ok=True)
    tracker.write_text('{"windowingMode": "none"}')
    env = jupyter_env(
        JUPYTERLAB_SETTINGS_DIR=str(settings), JUPYTERLAB_WORKSPACES_DIR=str(work_dir / "workspaces"),
        JUPYTER_RUNTIME_DIR=str(runtime), JUPYTER_CONFIG_DIR=str(work_dir / "config"), **(env_extra or {}),
    )  # fmt: skip
    command = [
        sys.executable, "-m", "jupyterlab", "--no-browser",
        "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root_dir}",
        "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.extension_manager=readonly",  # the PyPI extension manager would query pypi.org
        "--ServerApp.terminals_enabled=False",
    ]  # fmt: skip
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")  # CI containers run as root; the server still binds loopback only
    log_path = work_dir / "jupyterlab.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, cwd=root_dir, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)  # fmt: skip
    lab = JupyterLab(process, port, token, log_path)
    try:
        deadline = time.monotonic() + start_timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"jupyter lab exited with {process.returncode}:\n{lab.log_text()}")
            try:
                if lab.api("GET", "status").status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"jupyter lab did not answer within {start_timeout:.0f} s:\n{lab.log_text()}")
            time.sleep(0.25)
        yield lab
    finally:
        _stop(lab)


def _stop(lab: JupyterLab) -> None:
    """Shut the kernels down through the API, then the server (SIGTERM, then SIGKILL of its group)."""
    if lab.process.poll() is None:
        try:
            for kernel in lab.api("GET", "kernels").json():
                lab.api("DELETE", f"kernels/{kernel['id']}")
        except (requests.RequestException, ValueError):
            pass
        lab.process.send_signal(signal.SIGTERM)
        try:
            lab.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(lab.process.pid, signal.SIGKILL)  # the group we started (new session)
            lab.process.wait(timeout=10)
