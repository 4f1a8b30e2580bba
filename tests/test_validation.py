"""Property tests for the client's input validation (no network)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from skycore_lab.client import DDM, SendRequest, validate_number
from skycore_lab.exceptions import SkycoreValidationError
from skycore_lab.reference import MAX_DDM_TIMEOUT_MIN

VALID = re.compile(r"[1-9][0-9]{6,14}")


@given(st.from_regex(VALID, fullmatch=True))
def test_international_numbers_are_accepted_unchanged(number):
    assert validate_number(number) == number
    assert validate_number(f"  {number}\n") == number


@given(st.one_of(st.text(max_size=20), st.integers(), st.none(), st.floats(), st.binary(max_size=5)))
def test_anything_else_is_refused_with_a_reason(value):
    text = str(value).strip() if isinstance(value, (str, int)) and not isinstance(value, bool) else None
    if text is not None and VALID.fullmatch(text):
        assert validate_number(value) == text
        return
    with pytest.raises(SkycoreValidationError) as info:
        validate_number(value)
    assert info.value.field == "to" and info.value.message


@given(st.dictionaries(st.integers(-5, 50), st.text(max_size=30), max_size=5))
def test_slides_must_be_non_negative(slides):
    if any(slide < 0 for slide in slides):
        with pytest.raises(SkycoreValidationError, match="custom_text"):
            SendRequest.create(1, "17743199144", 1, custom_text=slides)
        return
    try:
        request = SendRequest.create(1, "17743199144", 1, custom_text=slides)
    except SkycoreValidationError as exc:  # only XML-incompatible characters may be refused
        assert "XML cannot carry" in str(exc)
        return
    assert [slide for slide, _ in request.custom_text] == sorted(slides)


@given(st.one_of(st.integers(-100, 100), st.integers(10_000, 10**40), st.floats(allow_nan=True),
                 st.text(max_size=6), st.sampled_from(["²", "٣", " 7 ", "10080", "10081", "9" * 5000])))
def test_ddm_timeout_must_be_a_non_negative_integer(timeout):
    ok = (isinstance(timeout, int) and timeout >= 0) or (
        isinstance(timeout, float) and timeout == timeout and timeout.is_integer() and timeout >= 0
    ) or (isinstance(timeout, str) and timeout.strip().isascii() and timeout.strip().isdigit())
    ok = ok and float(timeout) <= MAX_DDM_TIMEOUT_MIN  # at most a week (reference.MAX_DDM_TIMEOUT_MIN)
    if ok:
        assert SendRequest.create(1, "17743199144", 1, ddm=DDM("hi", timeout_min=timeout)).ddm.timeout_min >= 0
    else:
        with pytest.raises(SkycoreValidationError, match="ddm.timeout_min"):
            SendRequest.create(1, "17743199144", 1, ddm=DDM("hi", timeout_min=timeout))


def test_too_many_numbers_and_empty_ids_are_named():
    with pytest.raises(SkycoreValidationError, match="at most 100"):
        SendRequest.create(1, ["17743199144"] * 101, 1)
    for bad in ("", "  ", "12a", -3, None, True):
        with pytest.raises(SkycoreValidationError) as info:
            SendRequest.create(bad, "17743199144", 1)
        assert info.value.field == "mms_id"
