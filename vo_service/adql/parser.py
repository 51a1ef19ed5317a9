"""ADQL text → typed syntax tree (:mod:`vo_service.adql.nodes`).

The lark LALR parser is built once per process on first use (about 0.4 s) and
cached; the tree builder runs inside the parser, so no intermediate lark tree is
made.  Every lark error becomes an :class:`AdqlError` with line and column and,
for the usual non-ADQL habits (LIMIT, ``::``, ``$$``, a second statement), a
message that says what to write instead.
"""

from __future__ import annotations

import functools
import gc
import re
from decimal import Decimal
from importlib import resources
from typing import Any

from lark import Lark, Token, Transformer
from lark.exceptions import UnexpectedEOF, UnexpectedInput, UnexpectedToken

from vo_service.adql import nodes as n
from vo_service.adql.errors import AdqlError
from vo_service.adql.lexer import AdqlLexer, position, screen

# Words that are not ADQL keywords in our grammar but that a user of another SQL
# dialect may type; as regular identifiers they are refused with a hint.
_FOREIGN_WORDS = {
    "LIMIT": "LIMIT is not ADQL; use SELECT TOP n",
    "FETCH": "FETCH is not ADQL; use SELECT TOP n",
    "RETURNING": "RETURNING is not ADQL",
}


def _pos(token: Token) -> n.Pos:
    # AdqlLexer gives every token its line and column; lark's types allow None.
    return n.Pos(token.line or 1, token.column or 1)


def _error(message: str, token: Token) -> AdqlError:
    pos = _pos(token)
    return AdqlError(message, pos.line, pos.column)


def _int_token(token: Token, what: str) -> int:
    if not token.value.isdigit():
        raise _error(f"{what} needs an unsigned integer, not {token.value}", token)
    value = int(token.value)
    if value >= 2**63:
        raise _error(f"{what} {token.value} is too large: at most {2**63 - 1}", token)
    return value


class _TreeBuilder(Transformer[Token, n.Statement]):
    """Callbacks named after the grammar rules; children arrive already built."""

    def __init__(self, keywords: frozenset[str]):
        super().__init__(visit_tokens=False)
        self._keywords = keywords

    # --- identifiers -------------------------------------------------------

    def identifier(self, c: list[Token]) -> n.Ident:
        return self._ident(c[0])

    def _ident(self, token: Token) -> n.Ident:
        if token.value[0] == '"':
            return n.Ident(token.value[1:-1].replace('""', '"'), True, _pos(token))
        upper = token.value.upper()
        if upper in self._keywords:
            raise _error(
                f"{token.value} is a reserved word; write it in double quotes if it is a name",
                token)
        if upper in _FOREIGN_WORDS:
            raise _error(_FOREIGN_WORDS[upper], token)
        return n.Ident(token.value, False, _pos(token))

    def dotted(self, c: list[Any]) -> tuple[n.Ident, ...]:
        if len(c) == 1:
            return (self._ident(c[0]),)
        prefix: tuple[n.Ident, ...] = c[0]
        return (*prefix, self._ident(c[1]))

    # --- statement and queries ---------------------------------------------

    def start(self, c: list[n.Statement]) -> n.Statement:
        return c[0]

    def query_specification(self, c: list[Any]) -> n.Statement:
        if len(c) == 2:
            return n.Statement(tuple(c[0]), c[1])
        return n.Statement((), c[0])

    def with_clause(self, c: list[n.WithQuery]) -> list[n.WithQuery]:
        return c

    def with_query(self, c: list[Any]) -> n.WithQuery:
        return n.WithQuery(c[0], c[1])

    def select_expression(self, c: list[Any]) -> n.SelectExpression:
        order: tuple[n.OrderTerm, ...] = ()
        offset = None
        for item in c[1:]:
            if item[0] == "order":
                order = item[1]
            else:
                offset = item[1]
        return n.SelectExpression(c[0], order, offset)

    def _set_op(self, c: list[Any]) -> n.SetOperation:
        op = c[1]
        has_all = len(c) == 4
        return n.SetOperation(op.value.upper(), has_all, c[0], c[-1], _pos(op))

    set_union = set_except = set_intersect = _set_op

    def select_query(self, c: list[Any]) -> n.SelectQuery:
        select = c[0]
        distinct = False
        top = None
        items: tuple[n.SelectItem, ...] | None = None
        from_: tuple[n.FromItem, ...] = ()
        where = having = None
        group: tuple[n.Expr, ...] = ()
        for item in c[1:]:
            tag = item[0]
            if tag == "quantifier":
                distinct = item[1]
            elif tag == "top":
                top = item[1]
            elif tag == "items":
                items = item[1]
            elif tag == "from":
                from_ = item[1]
            elif tag == "where":
                where = item[1]
            elif tag == "group":
                group = item[1]
            else:
                having = item[1]
        return n.SelectQuery(distinct, top, items, from_, where, group, having, _pos(select))

    def set_quantifier(self, c: list[Token]) -> tuple[str, bool]:
        return ("quantifier", c[0].type == "DISTINCT")

    def set_limit(self, c: list[Token]) -> tuple[str, int]:
        return ("top", _int_token(c[1], "TOP"))

    def select_all(self, c: list[Token]) -> tuple[str, None]:
        return ("items", None)

    def select_list(self, c: list[n.SelectItem]) -> tuple[str, tuple[n.SelectItem, ...]]:
        return ("items", tuple(c))

    def derived_column(self, c: list[Any]) -> n.DerivedColumn:
        return n.DerivedColumn(c[0], c[1] if len(c) > 1 else None)

    def as_clause(self, c: list[n.Ident]) -> n.Ident:
        return c[0]

    correlation = as_clause

    def qualified_star(self, c: list[Any]) -> n.QualifiedStar:
        return n.QualifiedStar(c[0], c[0][0].pos)

    def from_clause(self, c: list[n.FromItem]) -> tuple[str, tuple[n.FromItem, ...]]:
        return ("from", tuple(c))

    def table_ref(self, c: list[Any]) -> n.TableName:
        return n.TableName(c[0], c[1] if len(c) > 1 else None)

    def derived_table(self, c: list[Any]) -> n.DerivedTable:
        return n.DerivedTable(c[0], c[1])

    def table_primary(self, c: list[n.FromItem]) -> n.FromItem:
        return c[0]

    def joined_table(self, c: list[Any]) -> n.Join:
        left = c[0]
        natural = False
        kind = "INNER"
        # The grammar gives every joined_table its JOIN keyword.
        join_pos = next(_pos(t) for t in c if isinstance(t, Token) and t.type == "JOIN")
        on = None
        using = None
        right = None
        for item in c[1:]:
            if isinstance(item, Token):
                if item.type == "NATURAL":
                    natural = True
            elif isinstance(item, str):
                kind = item
            elif isinstance(item, tuple) and item and item[0] in ("on", "using"):
                if item[0] == "on":
                    on = item[1]
                else:
                    using = item[1]
            else:
                right = item
        assert right is not None
        if natural and (on is not None or using is not None):
            raise AdqlError("a NATURAL join takes neither ON nor USING", join_pos.line,
                            join_pos.column)
        return n.Join(left, right, natural, kind, on, using, join_pos)

    def join_type(self, c: list[Token]) -> str:
        return c[0].type

    def join_on(self, c: list[Any]) -> tuple[str, n.Condition]:
        return ("on", c[0])

    def join_using(self, c: list[Any]) -> tuple[str, tuple[n.Ident, ...]]:
        return ("using", tuple(c[1:]))

    def where_clause(self, c: list[Any]) -> tuple[str, n.Condition]:
        return ("where", c[1])

    def group_by_clause(self, c: list[Any]) -> tuple[str, tuple[n.Expr, ...]]:
        return ("group", tuple(c[1:]))

    def having_clause(self, c: list[Any]) -> tuple[str, n.Condition]:
        return ("having", c[1])

    def order_by_clause(self, c: list[Any]) -> tuple[str, tuple[n.OrderTerm, ...]]:
        return ("order", tuple(c[1:]))

    def order_by_term(self, c: list[Any]) -> n.OrderTerm:
        return n.OrderTerm(c[0], len(c) > 1 and c[1])

    def order_by_direction(self, c: list[Token]) -> bool:
        return c[0].type == "DESC"

    def offset_clause(self, c: list[Token]) -> tuple[str, int]:
        return ("offset", _int_token(c[1], "OFFSET"))

    # --- conditions ----------------------------------------------------------

    def or_(self, c: list[n.Condition]) -> n.BoolOp:
        return n.BoolOp("OR", c[0], c[1])

    def and_(self, c: list[n.Condition]) -> n.BoolOp:
        return n.BoolOp("AND", c[0], c[1])

    def not_(self, c: list[Any]) -> n.Not:
        return n.Not(c[1])

    def comparison(self, c: list[Any]) -> n.Comparison:
        op = c[1].value
        return n.Comparison("<>" if op == "!=" else op, c[0], c[2], _pos(c[1]))

    @staticmethod
    def _negated(c: list[Any]) -> tuple[bool, list[Any]]:
        if isinstance(c[1], Token) and c[1].type == "NOT":
            return True, [c[0], *c[2:]]
        return False, c

    def between(self, c: list[Any]) -> n.Between:
        neg, c = self._negated(c)
        return n.Between(neg, c[0], c[2], c[3])

    def in_query(self, c: list[Any]) -> n.InQuery:
        neg, c = self._negated(c)
        return n.InQuery(neg, c[0], c[2])

    def in_list(self, c: list[Any]) -> n.InList:
        neg, c = self._negated(c)
        return n.InList(neg, c[0], tuple(c[2:]))

    def like(self, c: list[Any]) -> n.Like:
        neg, c = self._negated(c)
        return n.Like(neg, False, c[0], c[2])

    def ilike(self, c: list[Any]) -> n.Like:
        neg, c = self._negated(c)
        return n.Like(neg, True, c[0], c[2])

    def is_null(self, c: list[Any]) -> n.IsNull:
        return n.IsNull(len(c) == 4, c[0])

    def exists(self, c: list[Any]) -> n.Exists:
        return n.Exists(c[1])

    # --- expressions ---------------------------------------------------------

    def arith(self, c: list[Any]) -> n.Binary:
        return n.Binary(c[1].value, c[0], c[2], _pos(c[1]))

    def negate(self, c: list[Any]) -> n.Expr:
        operand = c[1]
        if isinstance(operand, n.Number):
            return n.Number(-operand.value, "-" + operand.text, _pos(c[0]))
        return n.Unary("-", operand, _pos(c[0]))

    def unary_plus(self, c: list[Any]) -> n.Expr:
        operand: n.Expr = c[1]
        return operand

    def number(self, c: list[Token]) -> n.Number:
        text = c[0].value
        value: int | Decimal | float
        if text.isdigit():
            value = int(text)
        elif "e" in text or "E" in text:
            value = float(text)
        else:
            value = Decimal(text)
        return n.Number(value, text, _pos(c[0]))

    def string(self, c: list[Token]) -> n.String:
        return n.String(c[0].value[1:-1].replace("''", "'"), _pos(c[0]))

    def null(self, c: list[Token]) -> n.Null:
        return n.Null(_pos(c[0]))

    def column_reference(self, c: list[tuple[n.Ident, ...]]) -> n.ColumnRef:
        return n.ColumnRef(c[0], c[0][0].pos)

    def count_star(self, c: list[Token]) -> n.Aggregate:
        if c[0].type != "COUNT":
            raise _error(f"{c[0].value}(*) is not ADQL; only COUNT(*) is", c[0])
        return n.Aggregate("COUNT", None, False, _pos(c[0]))

    def set_function(self, c: list[Any]) -> n.Aggregate:
        name: Token = c[0]
        distinct = len(c) == 3 and c[1][1]
        return n.Aggregate(name.type, c[-1], distinct, _pos(name))

    def set_function_type(self, c: list[Token]) -> Token:
        return c[0]

    def cast_specification(self, c: list[Any]) -> n.Cast:
        target, length = c[2]
        return n.Cast(c[1], target, length, _pos(c[0]))

    def cast_target(self, c: list[Token]) -> tuple[str, int | None]:
        length = _int_token(c[1], "a string length") if len(c) == 2 and c[0].type in (
            "CHAR", "VARCHAR") else None
        return c[0].type, length

    def coalesce_expression(self, c: list[Any]) -> n.Coalesce:
        return n.Coalesce(tuple(c[1:]), _pos(c[0]))

    def in_unit_function(self, c: list[Any]) -> n.InUnit:
        return n.InUnit(c[1], c[2].value[1:-1].replace("''", "'"), _pos(c[0]))

    def builtin_name(self, c: list[Token]) -> Token:
        return c[0]

    def builtin_function(self, c: list[Any]) -> n.Call:
        name: Token = c[0]
        args = c[1] if len(c) > 1 else ()
        return n.Call(name.type, args, _pos(name))

    def user_defined_function(self, c: list[Any]) -> n.UdfCall:
        name: Token = c[0]
        args = c[1] if len(c) > 1 else ()
        return n.UdfCall(name.value.lower(), args, _pos(name))

    def arguments(self, c: list[n.Expr]) -> tuple[n.Expr, ...]:
        return tuple(c)


@functools.cache
def _parser() -> Lark:
    """The LALR parser with the tree builder inside; built on first use, then cached.

    The parse tables are tens of thousands of permanent objects; ``gc.freeze`` moves
    them out of the collector's sight so that full collections stay cheap.
    """
    grammar = resources.files("vo_service.adql").joinpath("adql.lark").read_text()
    builder = _TreeBuilder(frozenset())
    lark = Lark(grammar, parser="lalr", lexer=AdqlLexer, transformer=builder)
    builder._keywords = frozenset(
        t.pattern.value.upper() for t in lark.terminals
        if t.pattern.type == "str" and t.pattern.value.replace("_", "").isalnum()
    )
    gc.freeze()
    return lark


def keywords() -> frozenset[str]:
    """The reserved words of the grammar (upper case), for tests and generators."""
    builder = _parser().options.transformer
    assert isinstance(builder, _TreeBuilder)
    return builder._keywords


_WORD_BEFORE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*$")
_TERMINAL_NAMES = {
    "LPAR": "'('", "RPAR": "')'", "COMMA": "','", "DOT": "'.'", "STAR": "'*'",
    "COMP_OP": "a comparison", "NUMBER": "a number", "STRING": "a string",
    "IDENTIFIER": "a name", "CONCAT": "'||'", "PLUS": "'+'",
    "MINUS": "'-'", "SOLIDUS": "'/'", "_SEMICOLON": "';'", "$END": "the end of the query",
}


def _describe_expected(expected: set[str]) -> str:
    names = sorted({_TERMINAL_NAMES.get(e, e.lstrip("_")) for e in expected
                    if not e.startswith("__ANON")})
    if not names or len(names) > 8:
        return ""
    return "; expected " + ", ".join(names)


def _offset_of(text: str, line: int, column: int) -> int:
    lines = text.split("\n")
    return sum(len(x) + 1 for x in lines[: line - 1]) + column - 1


def _translate_error(text: str, exc: UnexpectedInput) -> AdqlError:
    """The AdqlError for a parse error, saying what to write instead where we can tell.

    Characters the lexer cannot read never get here: AdqlLexer raises for them.
    """
    if isinstance(exc, UnexpectedEOF) or (
            isinstance(exc, UnexpectedToken) and exc.token.type == "$END"):
        expected: set[str] = set(getattr(exc, "expected", ()))
        line, column = position(text, len(text))  # just after the last character
        if exc.line and exc.line > 0 and exc.column and exc.column > 0:
            line, column = exc.line, exc.column  # the last token, where lark has one
        return AdqlError("unexpected end of query" + _describe_expected(expected), line,
                         column)
    if not isinstance(exc, UnexpectedToken):  # pragma: no cover - lark's other errors
        return AdqlError("the query cannot be parsed", exc.line or 1, exc.column or 1)
    token = exc.token
    before = text[: _offset_of(text, token.line or 1, token.column or 1)]
    if before.rstrip().endswith(";"):
        return _error("only one statement is allowed; remove what follows ';'", token)
    word = _WORD_BEFORE.search(before)
    if word and word.group(1).upper() in _FOREIGN_WORDS:
        return AdqlError(_FOREIGN_WORDS[word.group(1).upper()],
                         *position(before, word.start(1)))
    if "IDENTIFIER" in exc.expected and token.type != "IDENTIFIER" and str(
            token.value).replace("_", "").isalnum() and not str(token.value)[0].isdigit():
        return _error(f"{token.value} is a reserved word; write it in double quotes if it "
                      "is a name", token)
    if str(token.value).upper() in _FOREIGN_WORDS:
        return _error(_FOREIGN_WORDS[str(token.value).upper()], token)
    if token.type == "_SEMICOLON":
        return _error("only one statement is allowed", token)
    return _error(f"unexpected {token.value!r}" + _describe_expected(set(exc.expected)), token)


def parse(text: str) -> n.Statement:
    """Parse one ADQL query; raises :class:`AdqlError` for anything else.

    The text is screened first (:func:`lexer.screen`): characters PostgreSQL or an
    XML error document cannot carry are refused before anything else looks at them.
    """
    screen(text)
    try:
        tree = _parser().parse(text)
    except AdqlError:
        raise
    except UnexpectedInput as exc:
        raise _translate_error(text, exc) from None
    assert isinstance(tree, n.Statement)
    return tree
