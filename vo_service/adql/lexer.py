"""The ADQL tokenizer: one compiled pattern, reserved words looked up in a dict.

lark's own lexers try each terminal of the grammar per position; ADQL's tokens are
simple enough for a single alternation, which roughly halves the tokenizing time.
Every word that is a keyword of the grammar is reserved everywhere (ADQL 2.1
sect. 2.1.2); such a word can still name a column when written in double quotes.

Before any of that, :func:`screen` refuses text that no part of the service could
carry: NUL (PostgreSQL cannot store it), other control characters and unpaired
surrogates (not allowed in the XML documents that echo a query or its errors), and
queries beyond :data:`MAX_QUERY_LENGTH`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from lark import Token
from lark.common import LexerConf
from lark.lexer import Lexer, LexerState

from vo_service.adql.errors import AdqlError

# Digits are ASCII only (\d would take Arabic-Indic and other digits for numbers);
# white space is any Unicode space, as pasted text often has no-break spaces.
_PATTERN = re.compile(
    r"""(?P<ws>\s+|--[^\n]*)
      | (?P<NUMBER>(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)
      | (?P<word>[A-Za-z][A-Za-z0-9_]*)
      | (?P<DELIMITED>"(?:[^"]|"")+")
      | (?P<STRING>'(?:[^']|'')*')
      | (?P<op><>|!=|<=|>=|\|\||[=<>+\-*/(),.;])""",
    re.VERBOSE,
)
# A query is a few lines of text; one longer than this is generated, and a long list
# of values is better sent as an uploaded table.  The bound keeps the translation
# time, linear in the length (3 to 6 µs of CPU a character for the worst shapes:
# long IN lists, sums of literals, polygons with thousands of vertices), near a second.
MAX_QUERY_LENGTH = 200_000
# Refused anywhere in a query, even in string literals: C0 and C1 controls other
# than tab, line feed and carriage return, DEL, UTF-16 surrogates (Python strings
# hold them when bytes were decoded with surrogateescape) and U+FFFE, U+FFFF.
_REFUSED = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
_COMPARISONS = {"=", "<>", "!=", "<=", ">=", "<", ">"}
# SQL-92 5.3: string literals separated by whitespace with a newline (and comments)
# are one literal: 'qua' -- note\n 'tsch' is 'quatsch'.
_CONTINUATION = re.compile(r"(?P<gap>(?:\s|--[^\n]*)*)(?P<literal>'(?:[^']|'')*')")


def position(text: str, offset: int) -> tuple[int, int]:
    """1-based line and column of ``offset`` in ``text``."""
    return text.count("\n", 0, offset) + 1, offset - text.rfind("\n", 0, offset)


def screen(text: str) -> None:
    """Refuse a query that is too long or holds a character nothing downstream can take."""
    if len(text) > MAX_QUERY_LENGTH:
        raise AdqlError(f"the query is longer than {MAX_QUERY_LENGTH} characters; send long "
                        "lists of values as an uploaded table (TAP UPLOAD) and join it",
                        *position(text, MAX_QUERY_LENGTH))
    bad = _REFUSED.search(text)
    if bad is None:
        return
    char = bad.group()
    code = f"U+{ord(char):04X}"
    if char == "\x00":
        message = (f"the query contains a NUL character ({code}), which PostgreSQL cannot "
                   "take; remove it")
    elif "\ud800" <= char <= "\udfff":
        message = (f"the query contains {code}, half of a UTF-16 surrogate pair and no "
                   "character; send the query text as valid UTF-8")
    elif char in "\ufffe\uffff":
        message = f"the query contains {code}, which is not a character; remove it"
    else:
        message = (f"the query contains the control character {code}; remove it (only tab, "
                   "line feed and carriage return may appear in a query)")
    raise AdqlError(message, *position(text, bad.start()))


class AdqlLexer(Lexer):
    """A lark lexer (future interface 2) emitting the grammar's terminal names."""

    __future_interface__ = 2

    def __init__(self, conf: LexerConf):
        self.keywords: dict[str, str] = {}
        self.operators: dict[str, str] = {}
        for terminal in conf.terminals:
            pattern = terminal.pattern
            if pattern.type != "str":
                continue
            if pattern.value.replace("_", "").isalnum():
                self.keywords[pattern.value.upper()] = terminal.name
            else:
                self.operators[pattern.value] = terminal.name
        self.operators.update(dict.fromkeys(_COMPARISONS, "COMP_OP"))

    def lex(self, lexer_state: LexerState, parser_state: Any) -> Iterator[Token]:
        text = lexer_state.text.text
        assert isinstance(text, str)
        keywords, operators = self.keywords, self.operators
        line, line_start = 1, 0
        pos, end = 0, len(text)
        match = _PATTERN.match
        while pos < end:
            m = match(text, pos)
            if m is None:
                column = pos - line_start + 1
                char = text[pos]
                if text.startswith("::", pos) or (char == ":" and text[pos - 1:pos] == ":"):
                    raise AdqlError("'::' casts are not ADQL; use CAST(value AS type)", line,
                                    column)
                if char == "$":
                    raise AdqlError("'$' (dollar quoting or parameters) is not ADQL", line,
                                    column)
                if char == "'":
                    raise AdqlError("unterminated string literal", line, column)
                if char == '"':
                    raise AdqlError("unterminated or empty delimited identifier", line, column)
                hint = ("; a name with other characters than A-Z, 0-9 and _ must be written "
                        'in double quotes ("…")') if char.isalpha() else ""
                raise AdqlError(f"unexpected character {char!r}{hint}", line, column)
            kind = m.lastgroup
            value = m.group()
            column = pos - line_start + 1
            if kind == "ws":
                newlines = value.count("\n")
                if newlines:
                    line += newlines
                    line_start = pos + value.rfind("\n") + 1
            elif kind == "word":
                yield Token(keywords.get(value.upper(), "IDENTIFIER"), value, pos, line, column)
            elif kind == "op":
                yield Token(operators[value], value, pos, line, column)
            elif kind == "DELIMITED":
                yield Token("IDENTIFIER", value, pos, line, column)
            else:
                assert kind is not None
                stop = m.end()
                if kind == "STRING":
                    while (more := _CONTINUATION.match(text, stop)) is not None:
                        if "\n" not in more.group("gap"):
                            break
                        value = value[:-1] + more.group("literal")[1:]
                        stop = more.end()
                    span = text[pos:stop]
                else:
                    span = value
                yield Token(kind, value, pos, line, column)
                newlines = span.count("\n")
                if newlines:
                    line += newlines
                    line_start = pos + span.rfind("\n") + 1
                pos = stop
                continue
            pos = m.end()
