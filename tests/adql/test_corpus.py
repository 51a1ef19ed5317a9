"""The corpus against PostgreSQL + pgSphere: translated ADQL vs hand-written SQL."""

from __future__ import annotations

import datetime
import re
from collections import Counter
from decimal import Decimal

import pytest

from tests.adql.corpus import CASES, INVALID, PARSE_INVALID, PARSE_VALID, Case, Invalid
from vo_service.adql import AdqlError, translate
from vo_service.adql.parser import parse

_NUMBER = re.compile(r"-?\d+(\.\d+)?(e[-+]?\d+)?")


def _norm(value: object) -> object:
    """Comparable form: numbers to 9 significant digits, pgSphere text likewise."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float | Decimal):
        f = float(value)
        return 0.0 if abs(f) < 1e-12 else float(f"{f:.9g}")
    if isinstance(value, str) and value[:1] in "{<(":
        return _NUMBER.sub(lambda m: _num(m.group(0)), value.replace(" ", ""))
    if isinstance(value, datetime.date):
        return str(value)
    return value


def _num(text: str) -> str:
    f = float(text)
    return "0" if abs(f) < 1e-9 else f"{f:.8g}"


def _rows(conn, sql: str, params: dict[str, object] | None = None) -> list[tuple]:
    with conn.cursor() as cur:
        cur.execute(sql, params)
        return [tuple(_norm(v) for v in row) for row in cur.fetchall()]


@pytest.mark.parametrize("case", CASES, ids=[f"c{i:03d}" for i in range(len(CASES))])
def test_case(case: Case, query_conn, metadata) -> None:
    translation = translate(case.adql, metadata)
    got = _rows(query_conn, translation.sql, translation.params)
    want = _rows(query_conn, case.reference)
    assert len(translation.columns) == (len(got[0]) if got else len(translation.columns))
    if case.ordered:
        assert got == want
    else:
        assert Counter(got) == Counter(want)
    if case.reference.count("LIMIT") == 0 and "WHERE false" not in case.reference:
        assert got, "the corpus should not have vacuous cases"


@pytest.mark.parametrize("case", INVALID, ids=[f"e{i:03d}" for i in range(len(INVALID))])
def test_invalid(case: Invalid, metadata) -> None:
    with pytest.raises(AdqlError) as info:
        translate(case.adql, metadata)
    err = info.value
    assert case.fragment.lower() in err.message.lower(), err.message
    if case.line is not None:
        assert (err.line, err.column) == (case.line, case.column), str(err)
        assert f"line {case.line}, column {case.column}" in str(err)


@pytest.mark.parametrize("text", PARSE_VALID)
def test_parses(text: str) -> None:
    parse(text)


@pytest.mark.parametrize("text", PARSE_INVALID)
def test_does_not_parse(text: str) -> None:
    with pytest.raises(AdqlError):
        parse(text)
