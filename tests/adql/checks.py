"""What every generated query must satisfy, for the fuzz and combination tests.

Translation gives a Translation or an AdqlError whose message says where (line and
column) and can go into an XML document; PostgreSQL runs an accepted translation
failing at most with a data exception (SQLSTATE class 22: division by zero, an
overflow, a bad timestamp string) or a cancelled statement (57014).  Anything else
(class 42: a type or grouping error; XX000: pgSphere's internal errors) means the
translator accepted what it should have refused with a clear message.
"""

from __future__ import annotations

import re

import psycopg2
import psycopg2.extensions

from vo_service.adql import AdqlError, Metadata, Translation, translate

LIMIT = 101
_POSITION = re.compile(r" \(line (\d+), column (\d+)\)\Z")


def check_error(text: str, exc: AdqlError) -> None:
    """An AdqlError says where and is fit for an XML document and a person."""
    match = _POSITION.search(str(exc))
    assert match, f"no position in {str(exc)!r} for {text!r}"
    line, column = int(match[1]), int(match[2])
    assert 1 <= line <= text.count("\n") + 1 and column >= 1, (str(exc), text)
    assert (line, column) == (exc.line, exc.column)
    assert exc.message and exc.message.isprintable(), repr(exc.message)
    assert len(exc.message) <= 700


def translate_checked(text: str, metadata: Metadata) -> Translation | None:
    """The translation with a row limit, or None after checking the AdqlError."""
    try:
        return translate(text, metadata, limit=LIMIT)
    except AdqlError as exc:
        check_error(text, exc)
        return None


def run_checked(conn: psycopg2.extensions.connection, text: str, t: Translation) -> None:
    """Run a translation in a read-only transaction with a 1 s statement timeout."""
    try:
        with conn.cursor() as cur:
            cur.execute("SET LOCAL statement_timeout = '1s'")
            cur.execute(t.sql, t.params)
            rows = cur.fetchall()
        assert all(len(row) == len(t.columns) for row in rows)
    except psycopg2.Error as exc:
        code = exc.pgcode or ""
        assert code.startswith("22") or code == "57014", (
            f"{code} {exc.pgerror}\nADQL: {text}\nSQL: {t.sql}\nparams: {t.params}")
    finally:
        conn.rollback()
