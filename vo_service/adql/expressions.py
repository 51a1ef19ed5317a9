"""Value expressions and search conditions → typed PostgreSQL SQL fragments.

The arithmetic, string, aggregate, CAST and condition rules live here; geometry
functions are delegated to :mod:`spatial`, user-defined functions to :mod:`udfs`,
and column names to :mod:`scope`.  Subqueries (``IN (SELECT …)``, ``EXISTS``)
need the query compiler, which sits above this layer: it hands itself in as the
``subquery`` callback.  Literals are bound through the shared :class:`State`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal

from vo_service.adql import nodes as n
from vo_service.adql import spatial, udfs
from vo_service.adql.errors import AdqlError
from vo_service.adql.geometry import SAFE_CIRCLE
from vo_service.adql.scope import Scope, resolve_column
from vo_service.adql.state import State
from vo_service.adql.typed import (
    INTEGRAL,
    Typed,
    as_double,
    check_arity,
    need_number,
    need_string,
    number_type,
    typed_null,
    wider,
)

SubqueryCompiler = Callable[[n.SelectExpression, Scope], tuple[str, list[Typed]]]


_BIGINT = 2**63
# The digits ROUND and TRUNCATE may keep: a double has none beyond 10^±330, and
# PostgreSQL would build numerics of that many digits for every row.
_MAX_DIGITS = 400
# PostgreSQL's own limit for CHAR(n) and VARCHAR(n).
_MAX_CHARS = 10_485_760


def condition_pos(c: n.Condition) -> n.Pos:
    """Where a condition starts: conditions without a keyword of their own start with
    their first operand."""
    while True:
        if isinstance(c, n.Comparison):
            return c.pos
        if isinstance(c, n.Not | n.BoolOp):
            c = c.operand if isinstance(c, n.Not) else c.left
        elif isinstance(c, n.Exists):
            return query_pos(c.query)
        else:
            return c.operand.pos


def query_pos(q: n.SelectExpression) -> n.Pos:
    """Where a query (or the first SELECT of a set operation) starts."""
    body: n.QueryBody = q
    while isinstance(body, n.SelectExpression):
        body = body.body
    return body.pos


@functools.lru_cache(maxsize=256)
def unit_factor(source: str, target: str) -> float:
    """Multiplicative factor between two VOUnits; ValueError says what is wrong.

    astropy is imported here, on first use, because importing it costs about a
    second and most processes (the CLI, ingest workers) never convert a unit.
    The cache is bounded: the target is the user's text.
    """
    from astropy import units as u

    try:
        src = u.Unit(source, format="vounit")
    except ValueError:
        src = u.Unit(source)
    try:
        dst = u.Unit(target, format="vounit")
    except (ValueError, TypeError, ArithmeticError, RecursionError):
        raise ValueError("the target is not a VOUnit unit string (such as 'arcsec', 'mas', "
                         "'rad', 'h', 'nm')") from None
    try:
        factor = float(src.to(dst))
    except (ValueError, TypeError, ArithmeticError):
        raise ValueError("the units measure different quantities") from None
    if not math.isfinite(factor) or factor == 0:
        raise ValueError("the conversion factor is out of range")
    return factor


_MATH_1 = {  # ADQL name -> PostgreSQL function on double precision
    "ACOS": "acos", "ASIN": "asin", "ATAN": "atan", "COS": "cos", "COT": "cot",
    "SIN": "sin", "TAN": "tan", "DEGREES": "degrees", "RADIANS": "radians",
    "EXP": "exp", "LOG": "ln", "LOG10": "log", "SQRT": "sqrt", "CEILING": "ceil",
    "FLOOR": "floor",
}
_COMPARE_FLIP = {"<": ">", ">": "<", "<=": ">=", ">=": "<=", "=": "=", "<>": "<>"}


class ExpressionCompiler:
    """Compiles the values and conditions of one statement into ``state``."""

    def __init__(self, state: State, subquery: SubqueryCompiler):
        self.state = state
        self.bind = state.bind
        self.subquery = subquery

    # --- values ----------------------------------------------------------------

    def expr(self, e: n.Expr, scope: Scope) -> Typed:
        """The typed SQL of a value expression (counted against the nesting limit)."""
        self.state.enter(e.pos)
        try:
            return self._expr(e, scope)
        finally:
            self.state.leave()

    def _expr(self, e: n.Expr, scope: Scope) -> Typed:
        if isinstance(e, n.ColumnRef):
            return resolve_column(e, scope)
        if isinstance(e, n.Number):
            return self._number(e)
        if isinstance(e, n.String):
            return Typed(self.bind(e.value), "char", "*", literal=e.value)
        if isinstance(e, n.Null):
            return Typed("NULL", "null")
        if isinstance(e, n.Binary):
            return self._binary(e, scope)
        if isinstance(e, n.Unary):
            t = typed_null(self.expr(e.operand, scope), "double precision", "double")
            need_number(t, "unary minus", e.pos)
            return replace(t, sql=f"(-{t.sql})", name=None, literal=None, predicate=None,
                           ucd=None)
        if isinstance(e, n.Call):
            return self._call(e, scope)
        if isinstance(e, n.Aggregate):
            return self._aggregate(e, scope)
        if isinstance(e, n.UdfCall):
            return self._udf(e, scope)
        if isinstance(e, n.Cast):
            return self._cast(e, scope)
        if isinstance(e, n.Coalesce):
            return self._coalesce(e, scope)
        return self._in_unit(e, scope)

    def _number(self, e: n.Number) -> Typed:
        """A numeric literal, refused where PostgreSQL's bigint or double cannot hold it."""
        if isinstance(e.value, int):
            if not -_BIGINT <= e.value < _BIGINT:
                raise AdqlError(f"the integer {e.text} is out of range (at most {_BIGINT - 1} "
                                "in magnitude); write it with a decimal point or an exponent "
                                "to make it a floating-point number", e.pos.line, e.pos.column)
            return Typed(self.bind(e.value), number_type(e.value), literal=e.value)
        value = float(e.value)
        if not math.isfinite(value):
            raise AdqlError(f"the number {e.text} is out of range for a double (at most about "
                            "1.8e308 in magnitude)", e.pos.line, e.pos.column)
        # Decimal literals are doubles in ADQL, not PostgreSQL numerics; bound as the
        # double itself, a literal too small for a double is 0 whichever way it is written.
        return Typed(f"CAST({self.bind(value)} AS double precision)", "double", literal=e.value)

    def _binary(self, e: n.Binary, scope: Scope) -> Typed:
        """Long chains (a + b + c …) are left-deep: the spine is walked with a loop, so
        that only real nesting counts against the depth limit, and the SQL is joined
        from its pieces once (rebuilding the growing left operand at every step would
        take time quadratic in the chain's length)."""
        spine: list[n.Binary] = [e]
        while isinstance(spine[-1].left, n.Binary):
            spine.append(spine[-1].left)
        first = acc = self.expr(spine[-1].left, scope)
        opens: list[str] = []
        closes: list[str] = []
        for node in reversed(spine):
            acc, before, after = self._binary_step(node, acc, self.expr(node.right, scope))
            opens.append(before)
            closes.append(after)
        opens.reverse()
        acc.sql = "".join(opens) + first.sql + "".join(closes)
        return acc

    @staticmethod
    def _binary_step(e: n.Binary, left: Typed, right: Typed) -> tuple[Typed, str, str]:
        """The type of ``left op right`` and the SQL around ``left.sql`` that makes it
        (the returned Typed has no SQL yet; `_binary` joins the pieces)."""
        const = left.const and right.const
        agg = left.aggregate or right.aggregate
        if e.op == "||":
            for t in (left, right):
                if t.geometry:
                    raise AdqlError("|| needs strings, not geometries", e.pos.line,
                                    e.pos.column)
            right = typed_null(right, "text", "char")
            right_sql = right.sql if right.is_string else f"CAST({right.sql} AS text)"
            if left.is_string:
                return Typed("", "char", "*", const=const, aggregate=agg), "(", \
                    f" || {right_sql})"
            return Typed("", "char", "*", const=const, aggregate=agg), "(CAST(", \
                f" AS text) || {right_sql})"
        need_number(left, f"operator {e.op}", e.pos)
        need_number(right, f"operator {e.op}", e.pos)
        before, cast_left = "(", ""
        if left.datatype == "null" or right.datatype == "null":
            right = typed_null(right, "double precision", "double")
            if left.datatype == "null":
                left = typed_null(left, "double precision", "double")
                before, cast_left = "(CAST(", " AS double precision)"
        unit = left.unit if e.op in "+-" and left.unit == right.unit else None
        datatype = wider(left.datatype, right.datatype)
        return Typed("", datatype, unit=unit, const=const, aggregate=agg), before, \
            f"{cast_left} {e.op} {right.sql})"

    def _args(self, e: n.Call | n.UdfCall, scope: Scope) -> list[Typed]:
        return [self.expr(a, scope) for a in e.args]

    def _call(self, e: n.Call, scope: Scope) -> Typed:
        name = e.name
        if name == "REGION":
            return spatial.region(e, self.state)
        if name in spatial.FUNCTIONS:
            args = [self.expr(a, scope) for a in spatial.coordsys_stripped(e)]
            return spatial.call(e, args, self.state)
        args = self._args(e, scope)
        const = all(a.const for a in args)
        agg = any(a.aggregate for a in args)
        if name in ("LOWER", "UPPER"):
            args = [typed_null(a, "text", "char") for a in args]
            check_arity(name, e.pos, args, 1)
            need_string(args[0], name, e.pos)
            return Typed(f"{name.lower()}({args[0].sql})", "char", "*", const=const,
                         name=name.lower(), aggregate=agg)
        for a in args:
            need_number(a, name, e.pos)
        args = [typed_null(a, "double precision", "double") for a in args]
        sql: str
        datatype = "double"
        unit = None
        if name in _MATH_1:
            check_arity(name, e.pos, args, 1)
            sql = f"{_MATH_1[name]}({as_double(args[0])})"
        elif name == "ABS":
            check_arity(name, e.pos, args, 1)
            sql, datatype, unit = f"abs({args[0].sql})", args[0].datatype, args[0].unit
            if datatype == "null":
                datatype = "double"
        elif name == "ATAN2":
            check_arity(name, e.pos, args, 2)
            sql = f"atan2({as_double(args[0])}, {as_double(args[1])})"
        elif name == "POWER":
            check_arity(name, e.pos, args, 2)
            sql = f"power({as_double(args[0])}, {as_double(args[1])})"
        elif name == "PI":
            check_arity(name, e.pos, args, 0)
            sql = "pi()"
        elif name == "RAND":
            check_arity(name, e.pos, args, 0, 1)
            sql, const = "random()", False
        elif name == "MOD":
            check_arity(name, e.pos, args, 2)
            if all(a.datatype in INTEGRAL for a in args):
                sql, datatype = f"mod({args[0].sql}, {args[1].sql})", wider(
                    args[0].datatype, args[1].datatype)
            else:
                sql = (f"CAST(mod(CAST({args[0].sql} AS numeric), CAST({args[1].sql} AS "
                       "numeric)) AS double precision)")
        elif name in ("ROUND", "TRUNCATE"):
            check_arity(name, e.pos, args, 1, 2)
            fn = "round" if name == "ROUND" else "trunc"
            if len(args) == 1:  # numeric rounding: halves go away from zero
                sql = f"CAST({fn}(CAST({args[0].sql} AS numeric)) AS double precision)"
            else:
                digits = args[1].literal
                if not isinstance(digits, int) or not -_MAX_DIGITS <= digits <= _MAX_DIGITS:
                    raise AdqlError(f"the second argument of {name} must be an integer literal "
                                    f"between {-_MAX_DIGITS} and {_MAX_DIGITS}", e.pos.line,
                                    e.pos.column)
                sql = (f"CAST({fn}(CAST({args[0].sql} AS numeric), {args[1].sql}) "
                       "AS double precision)")
            unit = args[0].unit
        else:  # pragma: no cover - the grammar names no other function
            raise AdqlError(f"unknown function {name}", e.pos.line, e.pos.column)
        return Typed(sql, datatype, unit=unit, const=const, name=name.lower(), aggregate=agg)

    def _aggregate(self, e: n.Aggregate, scope: Scope) -> Typed:
        if e.arg is None:
            return Typed("count(*)", "long", name="count", const=False, aggregate=True)
        arg = typed_null(self.expr(e.arg, scope), "double precision", "double")
        if arg.aggregate:
            raise AdqlError(f"aggregate functions cannot be nested: {e.name} of an aggregate; "
                            "compute the inner one in a derived table first",
                            e.pos.line, e.pos.column)
        distinct = "DISTINCT " if e.distinct else ""
        inner = f"{distinct}{arg.sql}"
        name = e.name.lower()
        if e.name == "COUNT":
            return Typed(f"count({inner})", "long", name=name, const=False, aggregate=True)
        if arg.geometry:
            raise AdqlError(f"{e.name} cannot aggregate {arg.geometry} values", e.pos.line,
                            e.pos.column)
        if e.name in ("MIN", "MAX"):
            return replace(arg, sql=f"{name}({inner})", name=name, const=False, literal=None,
                           predicate=None, aggregate=True)
        need_number(arg, e.name, e.pos)
        if e.name == "AVG":
            return Typed(f"CAST(avg({inner}) AS double precision)", "double", unit=arg.unit,
                         name=name, const=False, aggregate=True)
        if arg.datatype in INTEGRAL:
            return Typed(f"CAST(sum({inner}) AS bigint)", "long", unit=arg.unit, name=name,
                         const=False, aggregate=True)
        return Typed(f"sum({inner})", arg.datatype, unit=arg.unit, name=name, const=False,
                     aggregate=True)

    def _udf(self, e: n.UdfCall, scope: Scope) -> Typed:
        udf = udfs.lookup(e)
        return udfs.call(udf, e, self._args(e, scope))

    def _cast(self, e: n.Cast, scope: Scope) -> Typed:
        t = self.expr(e.operand, scope)
        target = e.target
        if target in ("POINT", "CIRCLE", "POLYGON"):
            return spatial.cast(e, t, self.state)
        if t.geometry:
            raise AdqlError(f"a {t.geometry} cannot be cast to {target}", e.pos.line,
                            e.pos.column)
        if target in ("CHAR", "VARCHAR"):
            if e.length is not None and not 1 <= e.length <= _MAX_CHARS:
                raise AdqlError(f"the length of {target}(n) must lie between 1 and "
                                f"{_MAX_CHARS}", e.pos.line, e.pos.column)
            if e.length is None:
                return Typed(f"CAST({t.sql} AS text)", "char", "*", const=t.const,
                             aggregate=t.aggregate)
            fn = "rpad" if target == "CHAR" else "left"
            arraysize = str(e.length) if target == "CHAR" else f"{e.length}*"
            return Typed(f"{fn}(CAST({t.sql} AS text), {self.bind(e.length)})", "char",
                         arraysize, const=t.const, aggregate=t.aggregate)
        if target == "TIMESTAMP":
            if not (t.is_string or t.xtype == "timestamp" or t.datatype == "null"):
                raise AdqlError("only strings and timestamps can be cast to TIMESTAMP",
                                e.pos.line, e.pos.column)
            return Typed(f"CAST({t.sql} AS timestamp)", "char", "*", "timestamp",
                         const=t.const, aggregate=t.aggregate)
        if not (t.is_numeric or t.is_string or t.datatype == "null"):
            raise AdqlError(f"a {t.xtype or t.datatype} value cannot be cast to {target}",
                            e.pos.line, e.pos.column)
        pg, datatype = {
            "SMALLINT": ("smallint", "short"), "INTEGER": ("integer", "int"),
            "BIGINT": ("bigint", "long"), "REAL": ("real", "float"),
            "DOUBLE": ("double precision", "double"),
        }[target]
        return Typed(f"CAST({t.sql} AS {pg})", datatype, unit=t.unit, const=t.const,
                     aggregate=t.aggregate)

    def _coalesce(self, e: n.Coalesce, scope: Scope) -> Typed:
        args = [self.expr(a, scope) for a in e.args]
        typed = [a for a in args if a.datatype != "null"]
        first = typed[0] if typed else args[0]
        for a in typed[1:]:
            same = (a.is_numeric and first.is_numeric) or (a.xtype == first.xtype and (
                a.datatype == first.datatype or (a.is_string and first.is_string)))
            if not same:
                raise AdqlError("all arguments of COALESCE must have the same type",
                                e.pos.line, e.pos.column)
        datatype = first.datatype
        for a in typed[1:]:
            if a.is_numeric:
                datatype = wider(datatype, a.datatype)
        if datatype == "null":
            datatype = "char"
        return Typed(f"COALESCE({', '.join(a.sql for a in args)})", datatype, first.arraysize,
                     first.xtype, unit=first.unit, ucd=first.ucd, name="coalesce",
                     const=all(a.const for a in args),
                     aggregate=any(a.aggregate for a in args))

    def _in_unit(self, e: n.InUnit, scope: Scope) -> Typed:
        t = self.expr(e.operand, scope)
        need_number(t, "IN_UNIT", e.pos)
        if not t.unit:
            raise AdqlError("IN_UNIT needs a value with a known unit (a column with a unit)",
                            e.pos.line, e.pos.column)
        if not e.unit.strip():
            raise AdqlError("IN_UNIT cannot convert into a unitless value", e.pos.line,
                            e.pos.column)
        try:
            factor = unit_factor(t.unit, e.unit)
        except ValueError as exc:
            raise AdqlError(f"IN_UNIT cannot convert {t.unit!r} to {e.unit!r}: {exc}",
                            e.pos.line, e.pos.column) from None
        return Typed(f"({as_double(t)} * {self.bind(factor)})", "double", unit=e.unit, ucd=t.ucd,
                     const=t.const, name=t.name, aggregate=t.aggregate)

    # --- conditions --------------------------------------------------------

    def condition(self, c: n.Condition, scope: Scope) -> str:
        """The SQL of a search condition (counted against the nesting limit)."""
        self.state.enter(condition_pos(c))
        try:
            return self._condition(c, scope)
        finally:
            self.state.leave()

    def _condition(self, c: n.Condition, scope: Scope) -> str:
        if isinstance(c, n.BoolOp):  # a left-deep chain, walked with a loop
            operands: list[n.Condition] = [c.right]
            left: n.Condition = c.left
            while isinstance(left, n.BoolOp) and left.op == c.op:
                operands.append(left.right)
                left = left.left
            operands.append(left)
            parts = [self.condition(x, scope) for x in reversed(operands)]
            return "(" + f" {c.op} ".join(parts) + ")"
        if isinstance(c, n.Not):
            return f"(NOT {self.condition(c.operand, scope)})"
        if isinstance(c, n.Comparison):
            return self._comparison(c, scope)
        if isinstance(c, n.Between):
            v, lo, hi = (self.expr(x, scope) for x in (c.operand, c.low, c.high))
            if v.geometry or lo.geometry or hi.geometry:
                raise AdqlError("BETWEEN cannot compare geometries", c.operand.pos.line,
                                c.operand.pos.column)
            self._comparable(v, lo, c.operand.pos)
            self._comparable(v, hi, c.operand.pos)
            neg = "NOT " if c.negated else ""
            return f"({v.sql} {neg}BETWEEN {lo.sql} AND {hi.sql})"
        if isinstance(c, n.InList):
            v = self.expr(c.operand, scope)
            items = [self.expr(x, scope) for x in c.items]
            for item in items:
                self._comparable(v, item, c.operand.pos)
            neg = "NOT " if c.negated else ""
            return f"({v.sql} {neg}IN ({', '.join(i.sql for i in items)}))"
        if isinstance(c, n.InQuery):
            v = self.expr(c.operand, scope)
            sql, cols = self.subquery(c.query, scope)
            if len(cols) != 1:
                raise AdqlError("the subquery of IN must select exactly one column",
                                c.operand.pos.line, c.operand.pos.column)
            self._comparable(v, cols[0], c.operand.pos)
            neg = "NOT " if c.negated else ""
            return f"({v.sql} {neg}IN {sql})"
        if isinstance(c, n.Like):
            v, p = self.expr(c.operand, scope), self.expr(c.pattern, scope)
            for t in (v, p):
                if not (t.is_string or t.datatype == "null"):
                    raise AdqlError("LIKE and ILIKE compare strings", c.operand.pos.line,
                                    c.operand.pos.column)
            op = ("NOT " if c.negated else "") + ("ILIKE" if c.case_insensitive else "LIKE")
            return f"({v.sql} {op} {p.sql})"
        if isinstance(c, n.IsNull):
            v = self.expr(c.operand, scope)
            return f"({v.sql} IS {'NOT ' if c.negated else ''}NULL)"
        sql, _ = self.subquery(c.query, scope)
        return f"(EXISTS {sql})"

    @staticmethod
    def _comparable(a: Typed, b: Typed, pos: n.Pos) -> None:
        if a.datatype == "null" or b.datatype == "null":
            return
        line, column = pos.line, pos.column
        if a.geometry or b.geometry:
            if a.geometry != b.geometry:
                raise AdqlError("geometries can only be compared with geometries of the "
                                "same kind", line, column)
            return
        ok = (a.is_numeric and b.is_numeric) or (a.is_string and b.is_string) or (
            a.xtype == "timestamp" and (b.xtype == "timestamp" or isinstance(b.literal, str))
        ) or (b.xtype == "timestamp" and isinstance(a.literal, str)) or (
            a.datatype == b.datatype and a.xtype == b.xtype)
        if not ok:
            raise AdqlError(f"cannot compare a {a.xtype or a.datatype} value with a "
                            f"{b.xtype or b.datatype} value", line, column)

    def _comparison(self, c: n.Comparison, scope: Scope) -> str:
        left, right = self.expr(c.left, scope), self.expr(c.right, scope)
        op = c.op
        if (left.geometry or right.geometry) and op not in ("=", "<>"):
            raise AdqlError(f"geometries cannot be compared with {op}", c.pos.line,
                            c.pos.column)
        self._comparable(left, right, c.pos)
        # CONTAINS(...) = 1 and friends: use the boolean itself (index-friendly).
        for fn, lit in ((left, right), (right, left)):
            if fn.predicate is not None and lit.literal in (0, 1) and op in ("=", "<>") \
                    and not isinstance(lit.literal, bool):
                truth = (lit.literal == 1) == (op == "=")
                return fn.predicate if truth else f"(NOT {fn.predicate})"
        # DISTANCE(a, b) < r: an index-using containment plus the exact test.
        if right.distance is not None and left.distance is None:
            left, right, op = right, left, _COMPARE_FLIP[op]
        if left.distance is not None and op in ("<", "<=") and isinstance(
                right.literal, int | float | Decimal) and 0 <= right.literal <= 90:
            p1, p2 = left.distance
            if p1.const and not p2.const:
                p1, p2 = p2, p1
            circle = "scircle" if p2.const else SAFE_CIRCLE  # a join: see spatial._circle
            cone = f"({p1.sql} @ {circle}({p2.sql}, radians({right.sql})))"
            return f"({cone} AND {left.sql} {op} {right.sql})"
        return f"({left.sql} {op} {right.sql})"
