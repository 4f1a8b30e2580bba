"""The send guard: production batches need confirmation, allow-lists refuse, dry runs send nothing.

Every refusal is proven on a recording server (a real HTTP server on
127.0.0.1 that keeps every request it gets): the guard must refuse before
any request reaches it. The client is told that this loopback server is
production (``production=True``), as it would be told nothing for the real
endpoint.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest

import skycore_lab as sl
from skycore_lab import guard
from skycore_lab.exceptions import ConfirmationRequiredError, NumberNotAllowedError, SkycoreValidationError
from skycore_lab.redaction import mask_secret

KEY = "k3yV4lue-0123456789abcdefSECRET"
NUMBERS = [f"1774555{i:04d}" for i in range(60)]


@pytest.fixture(autouse=True)
def no_ambient_allow_list(monkeypatch):
    monkeypatch.delenv(guard.TEST_NUMBERS_ENV, raising=False)


def production_client(fake, **kwargs) -> sl.SkycoreClient:
    return sl.SkycoreClient(KEY, fake.url, production=True, max_retries=0, **kwargs)


# --- what is production ------------------------------------------------------------------------
def test_production_is_decided_from_the_url_unless_told():
    assert sl.SkycoreClient(KEY).production  # the default URL is the production endpoint
    assert sl.SkycoreClient(KEY, "https://secure.skycore.com/API/wxml/1.3/index.php").production
    assert not sl.SkycoreClient(KEY, "http://127.0.0.1:8000/API/wxml/1.3/index.php").production
    assert not sl.SkycoreClient(KEY, "http://localhost:8000/x").production
    assert sl.SkycoreClient(KEY, "http://127.0.0.1:8000/x", production=True).production
    assert not sl.SkycoreClient(KEY, "https://api.example.com/x", production=False).production
    assert "production=True" in repr(sl.SkycoreClient(KEY))
    with pytest.raises(SkycoreValidationError, match="production"):
        sl.SkycoreClient(KEY, production="yes")


def test_a_sandbox_client_is_never_production():
    with sl.Sandbox(seed=0) as sb:
        client = sb.client()
        assert not client.production and client.base_url == sb.url
        assert sb.client(production=True).production  # an explicit setting still wins


# --- batch confirmation -------------------------------------------------------------------------
def test_a_production_batch_above_50_needs_confirm_and_nothing_reaches_the_server(fake):
    client = production_client(fake, price_per_mms=0.02)
    assert client.guard.confirm_above == guard.DEFAULT_CONFIRM_ABOVE == 50
    with pytest.raises(ConfirmationRequiredError) as info:
        client.send_batch(NUMBERS[:51], 1001, "60856", progress=False)
    message = str(info.value)
    for part in ("51 recipient(s)", "MMS 1001", "shortcode 60856", "PRODUCTION", fake.url, "confirm=True",
                 "estimated cost 1.02 (51 × 0.02 per MMS)"):
        assert part in message, (part, message)
    assert info.value.recipients == 51 and isinstance(info.value, SkycoreValidationError)
    with pytest.raises(ConfirmationRequiredError):  # one request to 51 numbers counts 51 recipients
        client.send_saved_mms(1001, NUMBERS[:51], "60856")
    assert fake.requests == []


def test_without_a_price_the_message_has_no_cost_and_confirm_lets_the_batch_go(fake):
    client = production_client(fake, confirm_above=3)
    with pytest.raises(ConfirmationRequiredError) as info:
        client.send_batch(NUMBERS[:4], 1001, "60856", progress=False)
    assert "cost" not in str(info.value) and "4 recipient(s)" in str(info.value)
    assert fake.requests == []
    manifest = client.send_batch(NUMBERS[:4], 1001, "60856", progress=False, confirm=True)
    assert list(manifest["status"]) == ["Success"] * 4 and len(fake.requests) == 4
    client.send_batch(NUMBERS[:3], 1001, "60856", progress=False)  # at the threshold: no confirmation
    assert len(fake.requests) == 7


def test_a_sandbox_batch_needs_no_confirmation(fake):
    client = sl.SkycoreClient(KEY, fake.url, confirm_above=2)  # loopback: a sandbox
    client.send_batch(NUMBERS[:3], 1001, "60856", progress=False)
    assert len(fake.requests) == 3


def test_an_experiment_on_production_needs_confirm(fake):
    client = production_client(fake, confirm_above=5)
    experiment = sl.DdmExperiment({"a": None, "b": sl.DDM("hi")}, mms_id=1001, sender="60856", seed=1)
    with pytest.raises(ConfirmationRequiredError, match="6 recipient"):
        experiment.run(client, NUMBERS[:6], progress=False)
    assert fake.requests == [] and experiment.manifest is None


# --- allowed numbers ------------------------------------------------------------------------------
def test_numbers_off_the_allow_list_are_refused_by_name_before_anything_is_sent(fake):
    client = production_client(fake, allowed_numbers=NUMBERS[:2])
    batch = [NUMBERS[0], NUMBERS[5], NUMBERS[1], NUMBERS[7], NUMBERS[5]]
    with pytest.raises(NumberNotAllowedError) as info:
        client.send_batch(batch, 1001, "60856", progress=False, confirm=True)
    assert info.value.numbers == (NUMBERS[5], NUMBERS[7])
    assert f"2 number(s) not in the allowed numbers (allowed_numbers): {NUMBERS[5]}, {NUMBERS[7]}" in str(info.value)
    with pytest.raises(NumberNotAllowedError, match=NUMBERS[9]):
        client.send_saved_mms(1001, NUMBERS[9], "60856")
    with pytest.raises(NumberNotAllowedError, match=NUMBERS[9]):
        client.send_saved_mms(1001, [NUMBERS[0], NUMBERS[9]], "60856")
    with pytest.raises(NumberNotAllowedError):
        client.send(sl.SendRequest.create(1001, NUMBERS[9], "60856"))
    assert fake.requests == []
    assert client.send_saved_mms(1001, NUMBERS[1], "60856").sent and len(fake.requests) == 1


def test_an_explicit_allow_list_guards_a_sandbox_client_too(fake):
    client = sl.SkycoreClient(KEY, fake.url, allowed_numbers=f"{NUMBERS[0]}, {NUMBERS[1]}")
    with pytest.raises(NumberNotAllowedError, match=NUMBERS[2]):
        client.send_saved_mms(1001, NUMBERS[2], "60856")
    assert fake.requests == []


@pytest.mark.parametrize("form", ["comma list", "file"])
def test_the_environment_allow_list_guards_production_clients(fake, monkeypatch, tmp_path, form):
    if form == "file":
        path = tmp_path / "test-numbers.txt"
        path.write_text(f"# our test phones\n{NUMBERS[0]}\n{NUMBERS[1]}  # Ana's\n", encoding="utf-8")
        monkeypatch.setenv(guard.TEST_NUMBERS_ENV, str(path))
    else:
        monkeypatch.setenv(guard.TEST_NUMBERS_ENV, f"{NUMBERS[0]},{NUMBERS[1]}")
    client = production_client(fake)
    assert client.guard.allowed == frozenset(NUMBERS[:2])
    with pytest.raises(NumberNotAllowedError, match=rf"\$SKYCORE_TEST_NUMBERS.*{NUMBERS[3]}"):
        client.send_batch([NUMBERS[0], NUMBERS[3]], 1001, "60856", progress=False)
    assert fake.requests == []
    # a sandbox client (loopback, production not forced) is not bound by the production list
    sl.SkycoreClient(KEY, fake.url).send_saved_mms(1001, NUMBERS[3], "60856")
    assert len(fake.requests) == 1


def test_a_bad_allow_list_entry_is_an_error_naming_it(monkeypatch):
    monkeypatch.setenv(guard.TEST_NUMBERS_ENV, "17745550000,+1 774 555")
    with pytest.raises(SkycoreValidationError, match=r"SKYCORE_TEST_NUMBERS: entry '\+1 774 555'"):
        sl.SkycoreClient(KEY)
    with pytest.raises(SkycoreValidationError, match="lists no number"):
        sl.SkycoreClient(KEY, allowed_numbers=[])


# --- dry runs ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["post", "get"])
def test_a_dry_run_returns_the_exact_request_that_a_real_send_makes(fake, method):
    client = production_client(fake, method="post") if method == "post" else \
        sl.SkycoreClient(KEY, fake.url, method="get", production=True, max_retries=0)
    ddm = sl.DDM("Checking your phone & co", title="Check", timeout_min=10)
    dry = client.send_saved_mms(1001, NUMBERS[0], "60856", ddm=ddm, data={"first_name": "Zoë"}, dry_run=True)
    assert isinstance(dry, sl.DryRun) and fake.requests == []
    (wire,) = dry.requests
    client.send_saved_mms(1001, NUMBERS[0], "60856", ddm=ddm, data={"first_name": "Zoë"})
    (real,) = fake.requests
    masked = mask_secret(KEY)
    assert wire.method == real.method and urlsplit(wire.url).path == real.path
    headers = dict(wire.headers)
    for name in ("User-Agent", "Content-Type"):
        if name in headers:
            assert headers[name] == real.headers[name.lower()]
    if method == "post":
        assert wire.xml == real.form["xml"].replace(KEY, masked)
        assert "<DDMTIMEOUT>10</DDMTIMEOUT>" in wire.xml and "Zoë" in wire.xml
    else:
        sent = [(k, v.replace(KEY, masked)) for k, v in parse_qsl(real.query, keep_blank_values=True)]
        assert parse_qsl(urlsplit(wire.url).query, keep_blank_values=True) == sent and wire.body == ""
    shown = [str(dry), repr(dry), dry.summary(), dry._repr_html_(), dry.frame().to_string(), str(wire), wire.url]
    assert all(KEY not in text and KEY.lower() not in text.lower() for text in shown)


def test_a_batch_dry_run_validates_everything_and_needs_no_confirmation(fake):
    client = production_client(fake, confirm_above=2, price_per_mms=0.5)
    dry = client.send_batch([NUMBERS[0], "+17745550001", NUMBERS[2], NUMBERS[3]], 1001, "60856", dry_run=True,
                            progress=False)
    assert fake.requests == []
    assert len(dry.requests) == 3 and [w.to for w in dry.requests] == [(NUMBERS[0],), (NUMBERS[2],), (NUMBERS[3],)]
    assert dry.invalid[0][0] == "+17745550001" and "'+'" in dry.invalid[0][1]
    assert dry.production and dry.needs_confirmation and dry.estimated_cost == 1.5 and dry.recipients == 4
    assert "needs confirm=True" in dry.summary() and "Estimated cost: 1.50" in dry.summary()
    with pytest.raises(SkycoreValidationError, match="mms_id"):  # shared arguments are still checked
        client.send_batch(NUMBERS[:2], "abc", "60856", dry_run=True, progress=False)
    restricted = production_client(fake, allowed_numbers=[NUMBERS[0]])
    with pytest.raises(NumberNotAllowedError):  # as the real call would
        restricted.send_batch(NUMBERS[:2], 1001, "60856", dry_run=True, progress=False)
    assert fake.requests == []


def test_an_experiment_dry_run_shows_each_send_with_its_arm(fake):
    client = production_client(fake)
    arms = {"no_ddm": None, "ddm_5": sl.DDM("Checking your phone", timeout_min=5)}
    experiment = sl.DdmExperiment(arms, mms_id=1001, sender="60856", seed=4)
    dry = experiment.run(client, NUMBERS, progress=False, dry_run=True)
    assert fake.requests == [] and experiment.manifest is None
    assert dry.needs_confirmation and len(dry.requests) == len(NUMBERS)
    frame = dry.frame()
    assignment = experiment.assign(NUMBERS)
    expected = dict(zip(assignment["to"], assignment["arm"].astype(str), strict=True))
    assert dict(zip(frame["to"], frame["arm"], strict=True)) == expected
    with_ddm = frame[frame["body"].str.contains("DDMTEXT")]
    assert set(with_ddm["arm"]) == {"ddm_5"} and (frame["arm"] == "ddm_5").sum() == len(with_ddm)
    assert experiment.run(client, NUMBERS, progress=False, dry_run=True).frame()["to"].tolist() == \
        frame["to"].tolist()  # the same send order every time


def test_sending_statistics_dry_run_is_the_documented_request():
    client = sl.SkycoreClient(KEY)
    wire = client.sending_statistics("2010-10-01 12:00:00", "2010-10-02T12:00:00Z", dry_run=True)
    assert wire.method == "POST" and wire.url == sl.PRODUCTION_URL
    assert ("<ACTION>getSendingStatus</ACTION>" in wire.xml and "<START_DATE>2010-10-01 12:00:00</START_DATE>"
            in wire.xml and "<END_DATE>2010-10-02 12:00:00</END_DATE>" in wire.xml)
    assert KEY not in str(wire)
