"""The send guard where users meet it: ``skycore-lab send --dry-run / --yes`` and the send form.

A recording server on 127.0.0.1 stands in for production; the command
line is made to take it for production by the guard's own rule (the URL
test patched), the form by its client (``production=True``).
"""

from __future__ import annotations

import pytest

import skycore_lab as sl
from skycore_lab import columns as col
from skycore_lab import guard
from skycore_lab.cli import main
from skycore_lab.widgets import SendWidget

KEY = "sk-guard-KEY-0123456789abcdefXYZ"
NUMBERS = [f"1212555{i:04d}" for i in range(51)]


@pytest.fixture(autouse=True)
def environment(monkeypatch):
    monkeypatch.setenv("SKYCORE_API_KEY", KEY)
    monkeypatch.delenv(guard.TEST_NUMBERS_ENV, raising=False)


@pytest.fixture
def as_production(monkeypatch):
    monkeypatch.setattr(guard, "is_sandbox_url", lambda url: False)


def _numbers_file(tmp_path, numbers) -> str:
    path = tmp_path / "numbers.txt"
    path.write_text("\n".join(numbers) + "\n", encoding="utf-8")
    return str(path)


# --- the command line ------------------------------------------------------------------------------
def test_cli_refuses_a_large_production_send_without_yes(fake, as_production, tmp_path, capsys):
    numbers = _numbers_file(tmp_path, NUMBERS)
    out = tmp_path / "manifest.csv"
    args = ["send", "--url", fake.url, "--mms-id", "1001", "--sender", "60856", "--to-file", numbers,
            "--out", str(out), "-q", "--price-per-mms", "0.03"]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "51 recipient(s) of MMS 1001 from shortcode 60856 on PRODUCTION" in err and "--yes" in err
    assert "estimated cost 1.53" in err and KEY not in err
    assert fake.requests == [] and not out.exists()
    assert main([*args, "--yes"]) == 0
    assert len(fake.requests) == 51 and out.exists()


def test_cli_dry_run_prints_the_requests_and_sends_nothing(fake, as_production, tmp_path, capsys):
    numbers = _numbers_file(tmp_path, [*NUMBERS, "+1 555"])
    code = main(["send", "--url", fake.url, "--mms-id", "1001", "--sender", "60856", "--to-file", numbers,
                 "--dry-run", "--ddm-text", "Checking your phone"])
    printed = capsys.readouterr().out
    assert code == 0 and fake.requests == []
    assert printed.startswith("Dry run, nothing sent: 51 request(s) to PRODUCTION")
    assert "needs confirm=True" in printed and "1 recipient(s) would be refused as Invalid" in printed
    assert printed.count(f"POST {fake.url}") == 51 and "DDMTEXT" in printed
    assert KEY not in printed and not (tmp_path / "manifest.csv").exists()


def test_cli_allow_list_from_the_environment_refuses_before_sending(fake, as_production, monkeypatch, tmp_path,
                                                                  capsys):
    monkeypatch.setenv(guard.TEST_NUMBERS_ENV, NUMBERS[0])
    code = main(["send", "--url", fake.url, "--mms-id", "1001", "--sender", "60856", "--to", NUMBERS[0],
                 "--to", NUMBERS[1], "--out", str(tmp_path / "m.csv")])
    err = capsys.readouterr().err
    assert code == 1 and NUMBERS[1] in err and "SKYCORE_TEST_NUMBERS" in err
    assert fake.requests == []


# --- the send form -------------------------------------------------------------------------------------
def _fill(widget: SendWidget, recipient: str = NUMBERS[0]) -> None:
    widget.mms_id.value, widget.sender.value, widget.recipient.value = "1001", "60856", recipient


def test_the_form_asks_to_confirm_each_production_send(fake):
    client = sl.SkycoreClient(KEY, fake.url, production=True, max_retries=0, price_per_mms=0.02)
    widget = SendWidget(client)
    try:
        assert widget.confirm.layout.display is None  # shown for production
        _fill(widget)
        line = widget.guard_line.value
        assert "real MMS" in line and NUMBERS[0] in line and "MMS 1001" in line and "shortcode 60856" in line
        assert "estimated cost 0.02" in line and "costs money" in line
        assert widget.send_button.disabled and widget.problems.value == ""
        widget.send()  # a programmatic send is refused too
        assert fake.requests == [] and widget.history[col.STATUS].tolist() == ["Invalid"]
        widget.confirm.value = True
        assert not widget.send_button.disabled
        widget.send_button.click()
        assert len(fake.requests) == 1 and widget.history[col.STATUS].tolist() == ["Invalid", "Success"]
        assert widget.confirm.value is False and widget.send_button.disabled  # one confirmation, one send
    finally:
        widget.close()
        client.close()


def test_the_form_enforces_the_allow_list_and_hides_the_guard_on_a_sandbox(fake):
    client = sl.SkycoreClient(KEY, fake.url, max_retries=0, allowed_numbers=[NUMBERS[0]])  # loopback: sandbox
    widget = SendWidget(client)
    try:
        assert widget.confirm.layout.display == "none" and widget.guard_line.value == ""
        _fill(widget, NUMBERS[1])
        assert widget.send_button.disabled and NUMBERS[1] in widget.problems.value
        assert "allowed numbers" in widget.problems.value
        widget.send()
        assert fake.requests == [] and widget.history[col.STATUS].tolist() == ["Invalid"]
        widget.recipient.value = NUMBERS[0]
        assert not widget.send_button.disabled
        widget.send_button.click()
        assert len(fake.requests) == 1
    finally:
        widget.close()
        client.close()


def test_a_form_without_client_guards_a_production_url(monkeypatch):
    widget = SendWidget()  # the API URL defaults to production
    try:
        widget.api_key.value = KEY  # taken out of the field at once
        _fill(widget)
        assert widget.confirm.layout.display is None and widget.send_button.disabled
        assert "real MMS" in widget.guard_line.value
        widget.use_sandbox.value = True  # a local sandbox: no confirmation
        assert widget.confirm.layout.display == "none" and not widget.send_button.disabled
    finally:
        widget.close()
