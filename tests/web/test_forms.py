"""The pages' form parsers, without HTTP: redirect targets, expiry dates, grant requests."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vo_service.web import forms

TODAY = date(2026, 3, 10)
DIRS = ("shane", "AO", "nickel")


@pytest.mark.parametrize(("value", "expected"), [
    (None, "/account"), ("", "/account"), ("/admin", "/admin"),
    ("/admin?grants=all", "/admin?grants=all"), ("//evil.example", "/account"),
    ("/\\evil.example", "/account"), ("https://evil.example/", "/account"),
    ("javascript:alert(1)", "/account"), ("/a\nb", "/account"), ("/a\\b", "/account"),
    ("admin", "/account"), ("/" + "a" * 3000, "/account"),
])
def test_safe_next(value, expected):
    assert forms.safe_next(value) == expected


def test_safe_next_under_a_root_prefix():
    assert forms.safe_next("//x", root="/archive") == "/archive/account"


@given(st.text(max_size=60))
def test_safe_next_never_leaves_the_site(value):
    """Whatever comes in, browsers resolve the result to a path on this host."""
    result = forms.safe_next(value)
    assert result.startswith("/") and not result.startswith(("//", "/\\"))
    assert "\\" not in result
    assert all(ord(c) >= 0x20 and ord(c) != 0x7F for c in result)


def test_expiry_is_the_end_of_the_day_in_utc():
    assert forms.parse_expiry("2026-03-10", TODAY) == datetime(2026, 3, 11, tzinfo=UTC)
    assert forms.parse_expiry(" ", TODAY) is None
    with pytest.raises(forms.FormError, match="in the past"):
        forms.parse_expiry("2026-03-09", TODAY)
    with pytest.raises(forms.FormError, match="not a date"):
        forms.parse_expiry("10/03/2026", TODAY)


def test_grant_request_for_a_night_and_instrument():
    request = forms.grant_request({"group": "kast-team", "night": "2026-01-02",
                                   "instrument_dir": "shane", "note": " n "}, TODAY, DIRS)
    assert request == forms.GrantRequest(None, "kast-team", None, date(2026, 1, 2), "shane",
                                         None, None, "n")


@pytest.mark.parametrize(("fields", "message"), [
    ({"user": "a@b"}, "exactly one target"),
    ({"user": "a@b", "group": "g", "program": "P"}, "exactly one grantee"),
    ({"user": "a@b", "program": "P", "instrument_dir": "AO"}, "narrows a night"),
    ({"user": "a@b", "night": "2026-01-02", "instrument_dir": "apf"}, "unknown instrument"),
    ({"user": "a@b", "program": "P", "note": "x" * 501}, "longer than 500"),
])
def test_grant_request_errors(fields, message):
    with pytest.raises(forms.FormError, match=message):
        forms.grant_request(fields, TODAY, DIRS)


def test_user_request():
    ok = forms.user_request({"login": " a@b.example ", "password": "p" * 8,
                             "password2": "p" * 8, "role": "admin"})
    assert ok.login == "a@b.example" and ok.is_admin
    with pytest.raises(forms.FormError, match="staff or admin"):
        forms.user_request({"login": "a@b", "role": "root"})
    with pytest.raises(forms.FormError, match="differ"):
        forms.user_request({"login": "a@b", "password": "p" * 8, "password2": "q" * 8})


def test_grant_id():
    assert forms.grant_id({"grant_id": "12"}) == 12
    with pytest.raises(forms.FormError):
        forms.grant_id({"grant_id": "12; DROP"})
