"""Every command-line argument is checked: a bad one is a usage error (exit 2) naming it; and the
receiver's token can stay out of the process list."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import requests

from skycore_lab.cli import TOKEN_ENV, main

CLI = [sys.executable, "-m", "skycore_lab.cli"]
TOKEN = "Zx9-k2_QpL7mN4vR8sT1"
pytestmark = pytest.mark.timeout(60)
BODY = b"<POSTBACK><CODE>N101</CODE><TRACKINGID>cli</TRACKINGID></POSTBACK>"


@pytest.fixture(autouse=True)
def _no_token_in_environment(monkeypatch):
    monkeypatch.delenv(TOKEN_ENV, raising=False)


def usage_error(argv: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


@pytest.mark.parametrize(
    "argv, option",
    [
        (["listen", "--max-body", "-1"], "--max-body"),
        (["listen", "--max-body", "lots"], "--max-body"),
        (["listen", "--port", "70000"], "--port"),
        (["listen", "--port", "-1"], "--port"),
        (["listen", "--sync-interval", "nan"], "--sync-interval"),
        (["listen", "--sync-interval", "0"], "--sync-interval"),
        (["listen", "--sync-every", "0"], "--sync-every"),
        (["listen", "--max-bytes", "0"], "--max-bytes"),
        (["listen", "--rotate", "size", "--max-bytes", "10"], "--max-bytes"),
        (["listen", "--rotate", "weekly"], "--rotate"),
        (["listen", "--header-timeout", "0"], "--header-timeout"),
        (["listen", "--body-timeout", "inf"], "--body-timeout"),
        (["listen", "--max-header-bytes", "-5"], "--max-header-bytes"),
        (["listen", "--max-connections", "0"], "--max-connections"),
        (["listen", "--keepalive-timeout", "-1"], "--keepalive-timeout"),
        (["listen", "--max-requests-per-connection", "0"], "--max-requests-per-connection"),
        (["listen", "--token", "a?b"], "--token"),
        (["listen", "--token", "has space"], "--token"),
        (["listen", "--token-file", "/no/such/token"], "--token-file"),
        (["listen", "--log", "/no/such/folder/p.log"], "--log"),
        (["listen", "--url-file", "/no/such/folder/url"], "--url-file"),
        (["listen", "--host", ""], "--host"),
        (["demo", "--numbers", "0"], "--numbers"),
        (["demo", "--numbers", "2.5"], "--numbers"),
        (["demo", "--seed", "-1"], "--seed"),
        (["demo", "--time-scale", "-3"], "--time-scale"),
        (["sandbox", "--port", "65536"], "--port"),
        (["sandbox", "--time-scale", "0"], "--time-scale"),
        (["sandbox", "--postback-url", "ftp://example.org/x"], "--postback-url"),
        (["sandbox", "--postback-url", "not a url"], "--postback-url"),
        (["sandbox", "--scenario", "/no/such/scenario.json"], "--scenario"),
        (["send", "--mms-id", "1", "--sender", "2", "--to", "1", "--rate", "0"], "--rate"),
        (["send", "--mms-id", "1", "--sender", "2", "--to", "1", "--ddm-timeout", "-5"], "--ddm-timeout"),
        (["send", "--mms-id", "1", "--sender", "2", "--to", "1", "--url", "localhost:1"], "--url"),
        (["send", "--mms-id", "", "--sender", "2", "--to", "1"], "--mms-id"),
        (["send", "--mms-id", "1", "--sender", "2", "--to-file", "/no/such/numbers"], "--to-file"),
        (["send", "--mms-id", "1", "--sender", "2"], "--to"),
        (["report", "p.log", "--out", "report.pdf"], "--out"),
        (["report", "p.log", "--out", "/no/such/folder/r.html"], "--out"),
        (["report", "p.log", "--out", "r.html", "--manifest", "/no/such/manifest.csv"], "--manifest"),
    ],
)
def test_bad_arguments_are_usage_errors_naming_the_argument(argv, option, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SKYCORE_API_KEY", "k" * 20)
    err = usage_error(argv, capsys)
    assert f"argument {option}" in err or f"{option}" in err.splitlines()[-1], err
    assert err.splitlines()[0].startswith("usage: skycore-lab")


def test_token_and_token_file_exclude_each_other(tmp_path, capsys):
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    err = usage_error(["listen", "--token", TOKEN, "--token-file", str(token_file)], capsys)
    assert "not allowed with argument" in err


@pytest.mark.parametrize("content", ["", "\n\n", "bad token\n"])
def test_unusable_token_file_is_a_usage_error_that_does_not_echo_it(tmp_path, capsys, content):
    token_file = tmp_path / "token"
    token_file.write_text(content)
    err = usage_error(["listen", "--log", str(tmp_path / "p.log"), "--token-file", str(token_file)], capsys)
    assert "argument --token-file" in err and "bad token" not in err


def _listen(tmp_path, *args: str, env=None) -> tuple[subprocess.Popen, str]:
    url_file = tmp_path / "url"
    cmd = [*CLI, "listen", "--log", str(tmp_path / "p.log"), "--url-file", str(url_file), *args]
    process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 30
    while not url_file.exists():
        if process.poll() is not None:
            raise AssertionError(process.stderr.read())
        assert time.monotonic() < deadline, "listen did not start"
        time.sleep(0.02)
    return process, url_file.read_text()


def _stop(process: subprocess.Popen) -> str:
    process.terminate()
    _, err = process.communicate(timeout=15)
    return err


@pytest.mark.parametrize("source", ["token-file", "environment"])
def test_token_from_a_file_or_the_environment_stays_out_of_the_process_list(tmp_path, source):
    env = {key: value for key, value in os.environ.items() if key != TOKEN_ENV}
    args: list[str] = []
    if source == "token-file":
        (tmp_path / "token").write_text(TOKEN + "\n")
        args = ["--token-file", str(tmp_path / "token")]
    else:
        env[TOKEN_ENV] = TOKEN
    process, url = _listen(tmp_path, *args, env=env)
    try:
        with open(f"/proc/{process.pid}/cmdline", "rb") as handle:
            assert TOKEN.encode() not in handle.read()  # what ps shows
        assert url.endswith(f"/postbacks/{TOKEN}")
        assert requests.post(url, data=BODY, timeout=5).status_code == 200
        assert requests.post(url.rsplit("/", 1)[0] + "/wrong", data=BODY, timeout=5).status_code == 403
    finally:
        err = _stop(process)
    assert "warning" not in err and TOKEN not in err


def test_token_on_the_command_line_works_with_a_warning(tmp_path):
    env = {key: value for key, value in os.environ.items() if key != TOKEN_ENV}
    process, url = _listen(tmp_path, "--token", TOKEN, env=env)
    try:
        assert requests.post(url, data=BODY, timeout=5).status_code == 200
    finally:
        err = _stop(process)
    assert "warning: --token is visible" in err and "--token-file" in err and TOKEN_ENV in err
    assert TOKEN not in err


def test_an_unexpected_error_is_one_line_and_the_traceback_comes_with_verbose(tmp_path, capsys, monkeypatch):
    from skycore_lab import report

    def broken(*args, **kwargs):
        raise ValueError("something nobody foresaw")

    monkeypatch.setattr(report, "export_report", broken)
    log = tmp_path / "p.log"
    log.write_bytes(b"#skycore-lab postback log v1\n")
    assert main(["report", str(log), "--out", str(tmp_path / "r.html")]) == 1
    err = capsys.readouterr().err
    assert err.strip() == (
        "skycore-lab report: unexpected error: ValueError: something nobody foresaw (run with -v for the traceback)"
    )
    with pytest.raises(ValueError, match="nobody foresaw"):
        main(["-v", "report", str(log), "--out", str(tmp_path / "r.html")])
