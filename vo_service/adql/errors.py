"""The one error the translator raises: what is wrong with the query, and where.

The message travels into XML documents (DALI error VOTables, UWS job documents)
and to people, so it never carries a raw control character nor a whole pasted
query: characters that are not printable are written as Python escapes
(``\\x07``, ``\\u202e``), and very long words and messages are shortened.
"""

from __future__ import annotations

import re

_LONG_WORD = re.compile(r"\S{81,}")
_MAX_MESSAGE = 600


def _escape(char: str) -> str:
    return char.encode("unicode_escape", "backslashreplace").decode("ascii")


def readable(text: str) -> str:
    """``text`` with non-printable characters escaped and its length bounded."""
    if not text.isprintable():
        text = "".join(c if c.isprintable() else _escape(c) for c in text)
    text = _LONG_WORD.sub(lambda m: f"{m[0][:60]}…{m[0][-12:]}", text)
    if len(text) > _MAX_MESSAGE:
        text = f"{text[:400]} … {text[-150:]}"
    return text


class AdqlError(Exception):
    """A query that is not ADQL we can run, with the 1-based line and column to look at."""

    def __init__(self, message: str, line: int, column: int):
        self.message = readable(message)
        self.line = line
        self.column = column
        super().__init__(str(self))

    def __str__(self) -> str:
        return f"{self.message} (line {self.line}, column {self.column})"
