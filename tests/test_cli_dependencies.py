"""Every command checks the packages and paths it needs before any work, never at the end.

A missing package is simulated by ``sys.modules[name] = None`` (``import``
then fails), so the checks are exercised without uninstalling anything.
Each test proves "before any work" with a spy on the first thing the command
would do, and an empty folder afterwards.
"""

from __future__ import annotations

import os
import re
import sys
import tomllib

import pytest

from skycore_lab import demo as demo_module
from skycore_lab import postbacks
from skycore_lab.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE_LOG = os.path.join(ROOT, "data", "sample_postbacks.log")


class Spy:
    def __init__(self):
        self.calls = 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        raise AssertionError("the command started working before checking what it needs")


@pytest.fixture
def missing(monkeypatch):
    def hide(module: str) -> None:
        monkeypatch.setitem(sys.modules, module, None)
    return hide


def test_report_to_xlsx_without_openpyxl_fails_before_reading_the_logs(tmp_path, monkeypatch, missing, capsys):
    spy = Spy()
    monkeypatch.setattr(postbacks, "read_postbacks", spy)
    missing("openpyxl")
    assert main(["report", SAMPLE_LOG, "--out", str(tmp_path / "r.xlsx")]) == 1
    err = capsys.readouterr().err
    assert re.search(r"openpyxl.*pip install 'skycore-lab\[excel\]'", err), err
    assert spy.calls == 0 and list(tmp_path.iterdir()) == []


def test_report_to_parquet_without_pyarrow_fails_at_once(tmp_path, monkeypatch, missing, capsys):
    spy = Spy()
    monkeypatch.setattr(postbacks, "read_postbacks", spy)
    missing("pyarrow")
    assert main(["report", SAMPLE_LOG, "--out", str(tmp_path / "r.parquet")]) == 1
    assert "skycore-lab[parquet]" in capsys.readouterr().err
    assert spy.calls == 0 and list(tmp_path.iterdir()) == []


def test_report_with_a_parquet_manifest_needs_pyarrow_first(tmp_path, monkeypatch, missing, capsys):
    spy = Spy()
    monkeypatch.setattr(postbacks, "read_postbacks", spy)
    missing("pyarrow")
    assert main(["report", SAMPLE_LOG, "--manifest", str(tmp_path / "m.parquet"), "--out",
                 str(tmp_path / "r.html")]) == 1
    assert "skycore-lab[parquet]" in capsys.readouterr().err and spy.calls == 0


@pytest.mark.parametrize("out, message", [("r.txt", r"unknown report format '\.txt'"),
                                          ("no/such/folder/r.html", r"folder of .* does not exist")])
def test_report_refuses_an_unusable_output_before_reading(tmp_path, monkeypatch, capsys, out, message):
    spy = Spy()
    monkeypatch.setattr(postbacks, "read_postbacks", spy)
    assert main(["report", SAMPLE_LOG, "--out", str(tmp_path / out)]) == 1
    assert re.search(message, capsys.readouterr().err) and spy.calls == 0


def test_demo_without_openpyxl_fails_before_it_starts(tmp_path, monkeypatch, missing, capsys):
    spy = Spy()
    monkeypatch.setattr(demo_module, "demo_numbers", spy)  # the demo's first step
    missing("openpyxl")
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--numbers", "30", "-q"]) == 1
    assert "skycore-lab[excel]" in capsys.readouterr().err
    assert spy.calls == 0 and not out.exists()
    with pytest.raises(ImportError, match="openpyxl"):  # and from Python, too
        demo_module.run_demo(out, numbers=30, progress=False)
    assert not out.exists()


def test_send_to_a_parquet_manifest_without_pyarrow_sends_nothing(tmp_path, monkeypatch, missing, capsys):
    from skycore_lab import client as client_module

    spy = Spy()
    monkeypatch.setattr(client_module.SkycoreClient, "send_each", spy)
    monkeypatch.setenv("SKYCORE_API_KEY", "k" * 32)
    missing("pyarrow")
    code = main(["send", "--url", "http://127.0.0.1:9/never", "--mms-id", "1", "--sender", "60856",
                 "--to", "17743199144", "--to", "17743199145", "--out", str(tmp_path / "m.parquet")])
    assert code == 1 and "skycore-lab[parquet]" in capsys.readouterr().err
    assert spy.calls == 0 and list(tmp_path.iterdir()) == []


def test_what_the_demo_needs_is_installed_by_a_plain_install():
    core = {re.match(r"[A-Za-z0-9_.-]+", dep).group(0).lower()
            for dep in tomllib.loads(open(os.path.join(ROOT, "pyproject.toml"), "rb").read().decode())
            ["project"]["dependencies"]}
    from skycore_lab.report.export import REPORT_DEPENDENCIES

    for suffix in demo_module.REPORT_SUFFIXES:
        if suffix in REPORT_DEPENDENCIES:
            assert REPORT_DEPENDENCIES[suffix][0] in core, suffix
