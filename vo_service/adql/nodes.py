"""The typed ADQL syntax tree built by the parser and read by the compiler.

Plain slotted dataclasses: the tree carries source positions (for error messages)
and the values of literals, never SQL text.  Expressions, conditions and queries
are separate unions so that the compiler's dispatch is checked by mypy.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


@dataclass(slots=True)
class Pos:
    """Where a node starts in the query text (1-based), for error messages."""

    line: int
    column: int


@dataclass(slots=True)
class Ident:
    """An identifier; ``delimited`` ones ("Foo") are case-sensitive."""

    name: str
    delimited: bool
    pos: Pos

    @property
    def key(self) -> str:
        """The form PostgreSQL would compare: regular identifiers fold to lower case."""
        return self.name if self.delimited else self.name.lower()


# --- expressions -------------------------------------------------------------


@dataclass(slots=True)
class Number:
    value: int | Decimal | float
    text: str
    pos: Pos


@dataclass(slots=True)
class String:
    value: str
    pos: Pos


@dataclass(slots=True)
class Null:
    pos: Pos


@dataclass(slots=True)
class ColumnRef:
    parts: tuple[Ident, ...]
    pos: Pos


@dataclass(slots=True)
class Unary:
    op: str
    operand: Expr
    pos: Pos


@dataclass(slots=True)
class Binary:
    op: str  # + - * / ||
    left: Expr
    right: Expr
    pos: Pos


@dataclass(slots=True)
class Call:
    """A built-in ADQL function (math, string, geometry); ``name`` is upper case."""

    name: str
    args: tuple[Expr, ...]
    pos: Pos


@dataclass(slots=True)
class Aggregate:
    name: str  # AVG MAX MIN SUM COUNT
    arg: Expr | None  # None: COUNT(*)
    distinct: bool
    pos: Pos


@dataclass(slots=True)
class UdfCall:
    name: str  # lower case
    args: tuple[Expr, ...]
    pos: Pos


@dataclass(slots=True)
class Cast:
    operand: Expr
    target: str  # CHAR VARCHAR SMALLINT INTEGER BIGINT REAL DOUBLE TIMESTAMP POINT CIRCLE POLYGON
    length: int | None
    pos: Pos


@dataclass(slots=True)
class Coalesce:
    args: tuple[Expr, ...]
    pos: Pos


@dataclass(slots=True)
class InUnit:
    operand: Expr
    unit: str
    pos: Pos


Expr = Number | String | Null | ColumnRef | Unary | Binary | Call | Aggregate | UdfCall | Cast \
    | Coalesce | InUnit


# --- conditions --------------------------------------------------------------


@dataclass(slots=True)
class Comparison:
    op: str
    left: Expr
    right: Expr
    pos: Pos


@dataclass(slots=True)
class Between:
    negated: bool
    operand: Expr
    low: Expr
    high: Expr


@dataclass(slots=True)
class InList:
    negated: bool
    operand: Expr
    items: tuple[Expr, ...]


@dataclass(slots=True)
class InQuery:
    negated: bool
    operand: Expr
    query: SelectExpression


@dataclass(slots=True)
class Like:
    negated: bool
    case_insensitive: bool
    operand: Expr
    pattern: Expr


@dataclass(slots=True)
class IsNull:
    negated: bool
    operand: Expr


@dataclass(slots=True)
class Exists:
    query: SelectExpression


@dataclass(slots=True)
class Not:
    operand: Condition


@dataclass(slots=True)
class BoolOp:
    op: str  # AND OR
    left: Condition
    right: Condition


Condition = Comparison | Between | InList | InQuery | Like | IsNull | Exists | Not | BoolOp


# --- queries -----------------------------------------------------------------


@dataclass(slots=True)
class DerivedColumn:
    expr: Expr
    alias: Ident | None


@dataclass(slots=True)
class QualifiedStar:
    qualifier: tuple[Ident, ...]
    pos: Pos


SelectItem = DerivedColumn | QualifiedStar


@dataclass(slots=True)
class TableName:
    parts: tuple[Ident, ...]
    alias: Ident | None


@dataclass(slots=True)
class DerivedTable:
    query: SelectExpression
    alias: Ident


@dataclass(slots=True)
class Join:
    left: FromItem
    right: FromItem
    natural: bool
    kind: str  # INNER LEFT RIGHT FULL
    on: Condition | None
    using: tuple[Ident, ...] | None
    pos: Pos


FromItem = TableName | DerivedTable | Join


@dataclass(slots=True)
class OrderTerm:
    expr: Expr
    descending: bool


@dataclass(slots=True)
class SelectQuery:
    distinct: bool
    top: int | None
    items: tuple[SelectItem, ...] | None  # None: SELECT *
    from_: tuple[FromItem, ...]
    where: Condition | None
    group_by: tuple[Expr, ...]
    having: Condition | None
    pos: Pos


@dataclass(slots=True)
class SetOperation:
    op: str  # UNION EXCEPT INTERSECT
    all: bool
    left: QueryBody
    right: QueryBody
    pos: Pos


@dataclass(slots=True)
class SelectExpression:
    body: QueryBody
    order_by: tuple[OrderTerm, ...]
    offset: int | None


QueryBody = SelectQuery | SetOperation | SelectExpression


@dataclass(slots=True)
class WithQuery:
    name: Ident
    query: SelectExpression


@dataclass(slots=True)
class Statement:
    ctes: tuple[WithQuery, ...]
    query: SelectExpression
