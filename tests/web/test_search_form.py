"""The search form without HTTP or database: angles, the URL's fields, the ADQL it makes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vo_service.adql import Metadata, translate
from vo_service.services import search as s
from vo_service.web.archive import format_dec, format_ra


@pytest.mark.parametrize(("text", "hours", "degrees"), [
    ("12:29:46.7", True, 187.44458333),
    ("12 29 46.7", True, 187.44458333),
    ("12h29m46.7s", True, 187.44458333),
    ("187.4446", True, 187.4446),
    ("+08:00:01", False, 8.00027778),
    ("-08:30", False, -8.5),
    ("-0:30:00", False, -0.5),
    ("8.0004", False, 8.0004),
    ("8.5d", False, 8.5),
])
def test_angles(text, hours, degrees):
    assert s.parse_angle(text, hours=hours) == pytest.approx(degrees, abs=1e-7)


@pytest.mark.parametrize("text", ["", "abc", "12:61:00", "12:00:60", "1e999", "12::3",
                                  "nan", "inf"])
def test_bad_angles(text):
    with pytest.raises(ValueError):
        s.parse_angle(text, hours=True)


@given(st.floats(min_value=0, max_value=359.9999, allow_nan=False))
def test_ra_shown_sexagesimal_reads_back(ra):
    assert s.parse_angle(format_ra(ra, "sexagesimal"), hours=True) == pytest.approx(
        ra, abs=0.01 / 3600 * 15 + 1e-9)


@given(st.floats(min_value=-90, max_value=90, allow_nan=False))
def test_dec_shown_sexagesimal_reads_back(dec):
    assert s.parse_angle(format_dec(dec, "sexagesimal"), hours=False) == pytest.approx(
        dec, abs=0.1 / 3600 + 1e-9)


def test_defaults():
    req = s.parse_search([("object", "")])
    assert req.size == 50 and req.sort == "date_obs" and req.descending
    assert req.cone is None and not req.count_only
    assert s.parse_search([("ra", "1"), ("dec", "2")]).cone == s.Cone(1.0, 2.0, 1 / 60)


def test_unknown_parameters_are_ignored():
    assert s.parse_search([("foo", "bar"), ("size", "5")]).size == 5


def test_like_wildcards_in_user_text_match_literally():
    adql = s.search_adql(s.parse_search([("object", "SN_2019%"), ("path", "a_b")]))
    assert r"ILIKE '%SN\_2019\%%'" in adql and r"filename LIKE 'a\_b%'" in adql


def test_quotes_stay_inside_the_literal():
    adql = s.search_adql(s.parse_search([("object", "O'Brien'); DROP TABLE x; --")]))
    assert "'%O''Brien''); DROP TABLE x; --%'" in adql


_METADATA = Metadata.from_declaration()
_TEXT = st.text(max_size=20)
_KEYS = st.one_of(st.none(), _TEXT, st.floats(allow_nan=False, allow_infinity=False))


@settings(max_examples=60, deadline=None)
@given(sort=st.sampled_from(s.SORT_FIELDS), order=st.sampled_from(["asc", "desc"]),
       value=_KEYS, did=_TEXT,
       before=st.booleans(), cone=st.booleans())
def test_every_page_query_translates(sort, order, value, did, before, cone):
    """Whatever the key (decoded from a URL), the page's ADQL is valid and keeps the
    key's text inside literals."""
    token = s.encode_key(value, did)
    pairs = [("sort", sort), ("order", order), ("before" if before else "after", token)]
    if cone:
        pairs += [("ra", "10:00:00"), ("dec", "-5"), ("radius", "3")]
    numeric = sort in s.FIELD_BY_NAME and s.FIELD_BY_NAME[sort].kind in (
        "float", "ra", "dec", "size")
    unusable = any(s._unusable(v) for v in (did, value) if isinstance(v, str))
    if unusable or (value is not None and isinstance(value, float) != numeric):
        with pytest.raises(s.FormErrors):  # a key that cannot be of this column
            s.parse_search(pairs)
        return
    req = s.parse_search(pairs)
    translation = translate(s.page_adql(req), _METADATA, limit=req.size + 2)
    assert did in translation.params.values()


@given(st.text(max_size=50))
def test_damaged_keys_are_a_field_error(token):
    try:
        s.parse_search([("after", token)])
    except s.FormErrors as exc:
        assert set(exc.messages) <= {"page", "after"}
