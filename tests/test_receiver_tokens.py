"""Every token the receiver accepts gives a URL that works; the others are refused up front."""

from __future__ import annotations

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st

from skycore_lab.exceptions import SkycoreValidationError
from skycore_lab.postbacks.receiver import TOKEN_ALPHABET, PostbackReceiver, validate_token

BODY = b"<POSTBACK><CODE>N101</CODE><TRACKINGID>tok</TRACKINGID></POSTBACK>"
URL_SAFE = "ABCXYZabcxyz0189-._~"  # RFC 3986 unreserved characters (a sample of each kind)


@settings(max_examples=25, deadline=None)
@given(token=st.text(alphabet=URL_SAFE, min_size=1, max_size=40).filter(lambda t: t not in (".", "..")))
def test_every_accepted_token_gives_a_url_that_answers_200(tmp_path_factory, token):
    log = tmp_path_factory.mktemp("tok") / "p.log"
    with PostbackReceiver(log, token=token) as rx:
        assert requests.post(rx.url, data=BODY, timeout=5).status_code == 200
        assert requests.post(f"{rx.base_url}/postbacks?token={token}", data=BODY, timeout=5).status_code == 200
        assert rx.count == 2


@pytest.mark.parametrize("token", ["a?b", "a#b", "a%3Fb", "a/b", "a b", "tök", "a&b", "a+b", ".", "..", "", "x" * 257])
def test_tokens_outside_the_url_safe_alphabet_are_refused_without_echoing_them(token):
    with pytest.raises(SkycoreValidationError, match="token") as info:
        validate_token(token)
    assert TOKEN_ALPHABET in str(info.value)
    assert len(token) < 3 or token not in str(info.value)
