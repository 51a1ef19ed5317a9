"""The ADQL tokenizer: one compiled pattern, reserved words looked up in a dict.

lark's own lexers try each terminal of the grammar per position; ADQL's tokens are
simple enough for a single alternation, which roughly halves the tokenizing time.
Every word that is a keyword of the grammar is reserved everywhere (ADQL 2.1
sect. 2.1.2); such a word can still name a column when written in double quotes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from lark import Token
from lark.common import LexerConf
from lark.lexer import Lexer, LexerState

from vo_service.adql.errors import AdqlError

_PATTERN = re.compile(
    r"""(?P<ws>\s+|--[^\n]*)
      | (?P<NUMBER>(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)
      | (?P<word>[A-Za-z][A-Za-z0-9_]*)
      | (?P<DELIMITED>"(?:[^"]|"")+")
      | (?P<STRING>'(?:[^']|'')*')
      | (?P<op><>|!=|<=|>=|\|\||[=<>+\-*/(),.;])""",
    re.VERBOSE,
)
_COMPARISONS = {"=", "<>", "!=", "<=", ">=", "<", ">"}
# SQL-92 5.3: string literals separated by whitespace with a newline (and comments)
# are one literal: 'qua' -- note\n 'tsch' is 'quatsch'.
_CONTINUATION = re.compile(r"(?P<gap>(?:\s|--[^\n]*)*)(?P<literal>'(?:[^']|'')*')")


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
                raise AdqlError(f"unexpected character {char!r}", line, column)
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
