"""The ``skycore-lab`` command line, run as a real subprocess where it serves."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
import requests

from skycore_lab import PostbackReceiver, Sandbox, read_postbacks
from skycore_lab.cli import main

CLI = [sys.executable, "-m", "skycore_lab.cli"]


def _serve(args: list[str], pattern: str, env=None) -> tuple[subprocess.Popen, re.Match]:
    """Start a serving command and wait for the line announcing its URL."""
    # SIGINT back to its default in the child: a process started with SIGINT ignored (as a test
    # worker may have been) keeps it ignored across exec, and Python then never raises
    # KeyboardInterrupt, so Ctrl-C could not be what stops the command
    process = subprocess.Popen(CLI + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=env or os.environ.copy(),
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 30
    lines = []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        match = re.search(pattern, line)
        if match:
            return process, match
    process.kill()
    raise AssertionError(f"no line matching {pattern!r}; got {lines!r}; stderr {process.stderr.read()!r}")


def _stop(process: subprocess.Popen) -> int:
    process.send_signal(signal.SIGINT)
    try:
        # above ServerThread.stop's own bound (10 s graceful, then 10 s forced)
        return process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()


def test_demo_writes_its_files_and_prints_a_summary(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path / "demo"), "--numbers", "300", "--time-scale", "3600", "-q"]) == 0
    printed = capsys.readouterr().out
    assert re.search(r"no_ddm\s+\d+\s+\d+", printed) and "ddm_15" in printed and "intention-to-treat" in printed
    for name in ("postbacks.log", "manifest.csv", "experiment.json", "report.html", "report.xlsx"):
        assert (tmp_path / "demo" / name).stat().st_size > 0, name
    manifest = pd.read_csv(tmp_path / "demo" / "manifest.csv")
    assert len(manifest) == 300 and set(manifest["arm"]) == {"no_ddm", "ddm_5", "ddm_15"}
    # the report is the experiment result's: it opens with the decision
    page = (tmp_path / "demo" / "report.html").read_text(encoding="utf-8")
    assert page.index('<section class="verdict') < page.index("<h2>Summary</h2>")


def test_sandbox_command_serves_the_api_until_interrupted():
    process, match = _serve(["sandbox", "--port", "0", "--seed", "3"], r"listening: (http://127\.0\.0\.1:\d+\S*)")
    try:
        key = re.search(r"API key \(sandbox only\): (\S+)", process.stdout.readline()).group(1)
        answer = requests.get(match.group(1), params={"action": "sendSavedMMS", "api_key": key, "mmsid": "1001",
                                                      "to": "12125550123", "from": "60856"}, timeout=10)
        assert "<STATUS>Success</STATUS>" in answer.text
    finally:
        assert _stop(process) in (0, 130)


def test_listen_command_stores_postbacks(tmp_path):
    log = tmp_path / "pb.log"
    process, match = _serve(["listen", "--log", str(log), "--port", "0", "--token", "t0ken-abcdef123456"],
                            r"listening: (http://\S+)")
    try:
        url = match.group(1)
        assert "/postbacks/" in url
        body = "<POSTBACK><ORIGIN>MMS_MT</ORIGIN><CODE>N101</CODE><TRACKINGID>abc</TRACKINGID></POSTBACK>"
        assert requests.post(url, data=body, timeout=10).status_code == 200
        assert requests.post(url.rsplit("/", 1)[0] + "/wrong", data=body, timeout=10).status_code == 403
    finally:
        _stop(process)
    events = read_postbacks(log)
    assert list(events["tracking_id"]) == ["abc"]


def test_send_and_report_commands_against_the_sandbox(tmp_path, monkeypatch, capsys):
    log = tmp_path / "pb.log"
    numbers = tmp_path / "numbers.txt"
    numbers.write_text("# test numbers\n12125550123\n12125550124,alice\nnot-a-number\n")
    with PostbackReceiver(log) as rx, Sandbox(seed=5, time_scale=3600, postback_url=rx.url) as sb:
        monkeypatch.setenv("SKYCORE_API_KEY", sb.api_key)
        manifest = tmp_path / "manifest.csv"
        code = main(["send", "--url", sb.url, "--mms-id", str(sb.mms_ids[0]), "--sender", str(sb.shortcodes[0]),
                     "--to-file", str(numbers), "--out", str(manifest), "--ddm-text", "hi", "--ddm-timeout", "5",
                     "-q"])
        assert code == 1  # one number was invalid: not every send succeeded
        assert sb.wait_idle(timeout=60)
    printed = capsys.readouterr().out
    assert "2 Success" in printed and "1 Invalid" in printed and sb.api_key not in printed
    assert main(["report", str(log), "--manifest", str(manifest), "--out", str(tmp_path / "r.csv")]) == 0
    report = pd.read_csv(tmp_path / "r.csv")
    assert len(report) == 2 and set(report["to"].astype(str)) == {"12125550123", "12125550124"}


def test_single_send_prints_the_tracking_id(monkeypatch, capsys):
    with Sandbox(seed=6) as sb:
        monkeypatch.setenv("SKYCORE_API_KEY", sb.api_key)
        code = main(["send", "--url", sb.url, "--mms-id", str(sb.mms_ids[0]), "--sender", str(sb.shortcodes[0]),
                     "--to", "12125550199", "--method", "get"])
    assert code == 0
    assert re.search(r"Success: tracking id \S+ to 12125550199", capsys.readouterr().out)


def test_errors_are_one_line_without_the_key(monkeypatch, capsys):
    monkeypatch.setenv("SKYCORE_API_KEY", "very-secret-key-0123456789")
    with Sandbox(seed=7) as sb:
        code = main(["send", "--url", sb.url, "--mms-id", "1001", "--sender", "60856", "--to", "12125550100"])
    err = capsys.readouterr().err
    assert code == 1 and re.search(r"E\d{3}", err) and "very-secret-key" not in err
    assert len(err.strip().splitlines()) == 1


def test_usage_errors_exit_2():
    with pytest.raises(SystemExit) as info:
        main(["report"])
    assert info.value.code == 2
