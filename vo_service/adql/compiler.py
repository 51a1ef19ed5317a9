"""Typed ADQL tree + metadata → one PostgreSQL statement with bound parameters.

The compiler resolves every table and column against :class:`Metadata` (and the
query's own CTEs and derived tables) while it writes SQL, so a name that is not
published cannot reach the output.  All generated names are the compiler's own:
tables are ``t0, t1, …``, CTEs ``q0, …`` and output columns ``c1 … cN`` by
position; the ADQL names travel in :class:`~vo_service.result.ResultColumn`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from vo_service.adql import nodes as n
from vo_service.adql.errors import AdqlError
from vo_service.adql.expressions import ExpressionCompiler, query_pos
from vo_service.adql.grouping import (
    canonical,
    check_correlated,
    check_grouped,
    contains_aggregate,
    refuse_aggregates,
)
from vo_service.adql.metadata import Metadata
from vo_service.adql.scope import Col, OutCol, Rel, Scope, dotted
from vo_service.adql.state import State
from vo_service.adql.typed import Typed, pg_type, type_family
from vo_service.result import ResultColumn

_PG_RESERVED_TEXT = """
all analyse analyze and any array as asc asymmetric authorization binary both case cast check
collate collation column concurrently constraint create cross current_catalog current_date
current_role current_schema current_time current_timestamp current_user default deferrable
desc distinct do else end except false fetch for foreign freeze from full grant group having
ilike in initially inner intersect into is isnull join lateral leading left like limit localtime
localtimestamp natural not notnull null offset on only or order outer overlaps placing primary
references returning right select session_user similar some symmetric table tablesample then
to trailing true union unique user using variadic verbose when where window with
"""
_PG_RESERVED = frozenset(_PG_RESERVED_TEXT.split())
# Table references in one query (FROM entries, joins, subqueries and CTE uses alike).
# PostgreSQL plans more than a dozen joined tables by a genetic search, and each one
# costs the translator its columns; no real query names a hundred.
MAX_TABLES = 100
_SIMPLE = re.compile(r"[a-z_][a-z0-9_]*\Z")


def quote_ident(name: str) -> str:
    """An identifier from the metadata, quoted only when PostgreSQL needs it."""
    if _SIMPLE.match(name) and name not in _PG_RESERVED:
        return name
    return '"' + name.replace('"', '""') + '"'


@dataclass(slots=True)
class FromResult:
    sql: str
    rels: list[Rel]
    merged: list[Col]
    star: list[Col]


@dataclass(slots=True)
class _Cte:
    ident: n.Ident
    sql_name: str
    columns: list[OutCol]


class Compiler:
    """One translation: parameters, generated names and CTEs live here."""

    def __init__(self, metadata: Metadata, limit: int | None):
        self.metadata = metadata
        self.limit = limit
        self.state = State()
        self.bind = self.state.bind
        self._expressions = ExpressionCompiler(self.state, self.subquery)
        self.expr = self._expressions.expr
        self.condition = self._expressions.condition
        self._tables = 0
        self._table_refs = 0
        self._ctes: dict[str, _Cte] = {}  # by Ident.key

    @property
    def params(self) -> dict[str, object]:
        return self.state.params

    # --- entry ----------------------------------------------------------------

    def statement(self, stmt: n.Statement) -> tuple[str, list[OutCol]]:
        parts = []
        for with_query in stmt.ctes:
            if with_query.name.key in self._ctes:
                pos = with_query.name.pos
                raise AdqlError(f"the common table expression {with_query.name.name} is "
                                "defined twice", pos.line, pos.column)
            sql, cols = self.select_expression(with_query.query, None, False)
            cte = _Cte(with_query.name, f"q{len(self._ctes)}", cols)
            self._ctes[cte.ident.key] = cte
            parts.append(f"{cte.sql_name} AS ({sql})")
        sql, cols = self.select_expression(stmt.query, None, True)
        if parts:
            sql = "WITH " + ", ".join(parts) + " " + sql
        return sql, cols

    # --- the expression compiler's callback -------------------------------------

    def subquery(self, query: n.SelectExpression, scope: Scope) -> tuple[str, list[Typed]]:
        sql, cols = self.select_expression(query, scope, False)
        # Outside its query a literal is a typed column (a bare NULL becomes text).
        return f"({sql})", [replace(c.typed, literal=None, datatype=(
            "char" if c.typed.datatype == "null" else c.typed.datatype)) for c in cols]

    # --- queries ---------------------------------------------------------------

    def select_expression(self, node: n.SelectExpression, parent: Scope | None,
                          top_level: bool, geometry_as_text: bool = False
                          ) -> tuple[str, list[OutCol]]:
        """A query with its ORDER BY, OFFSET and row limit (counted against the nesting
        limit: subqueries, derived tables and parenthesized queries recurse here)."""
        self.state.enter(query_pos(node))
        try:
            return self._select_expression(node, parent, top_level, geometry_as_text)
        finally:
            self.state.leave()

    def _select_expression(self, node: n.SelectExpression, parent: Scope | None,
                           top_level: bool, geometry_as_text: bool
                           ) -> tuple[str, list[OutCol]]:
        body = node.body
        scope: Scope | None = None
        top: int | None = None
        if isinstance(body, n.SelectQuery):
            sql, cols, scope = self.select_query(body, parent, geometry_as_text)
            top = body.top
        elif isinstance(body, n.SetOperation):
            sql, cols = self.set_operation(body, parent, geometry_as_text)
        else:
            inner, cols = self.select_expression(body, parent, False, geometry_as_text)
            sql = f"SELECT * FROM ({inner}) AS t{self._next_table()}"
        if node.order_by:
            distinct = isinstance(body, n.SelectQuery) and body.distinct
            sql += " ORDER BY " + ", ".join(self._order_term(t, cols, scope, distinct)
                                            for t in node.order_by)
        if node.offset:
            sql += f" OFFSET {self.bind(node.offset)}"
        limit = top
        if top_level and self.limit is not None:
            limit = self.limit if limit is None else min(limit, self.limit)
        if limit is not None:
            sql += f" LIMIT {self.bind(limit)}"
        return sql, cols

    def _order_term(self, term: n.OrderTerm, cols: list[OutCol], scope: Scope | None,
                    distinct: bool) -> str:
        """An ORDER BY term: an output column (by position, name or the same
        expression) or, unless the SELECT is DISTINCT, another expression."""
        direction = " DESC" if term.descending else ""
        e = term.expr
        index: int | None = None
        if isinstance(e, n.Number) and isinstance(e.value, int):
            if not 1 <= e.value <= len(cols):
                raise AdqlError(f"ORDER BY {e.value}: there are {len(cols)} output columns",
                                e.pos.line, e.pos.column)
            index = e.value - 1
        elif isinstance(e, n.ColumnRef) and len(e.parts) == 1:
            ident = e.parts[0]
            hits = [i for i, o in enumerate(cols) if (
                o.name.lower() == ident.name.lower() if not ident.delimited and not o.delimited
                else o.key == ident.key)]
            if len(hits) == 1 or (hits and scope is None):
                index = hits[0]
        if index is None and scope is None:
            raise AdqlError("ORDER BY of a set operation must name an output column or give "
                            "its position", e.pos.line, e.pos.column)
        if index is not None:
            typed = cols[index].typed
        else:
            assert scope is not None
            typed = self.expr(e, scope)
        if typed.geometry:
            raise AdqlError(f"cannot ORDER BY {typed.geometry} values", e.pos.line,
                            e.pos.column)
        if index is not None:
            return f"c{index + 1}{direction}"
        assert scope is not None  # set operations returned above
        text = canonical(typed.sql, self.params)
        for i, col in enumerate(cols):
            if canonical(col.typed.sql, self.params) == text:
                return f"c{i + 1}{direction}"
        if distinct:
            raise AdqlError("with SELECT DISTINCT, ORDER BY can only use the selected values: "
                            "add this one to the select list, or order by an output column",
                            e.pos.line, e.pos.column)
        if scope.group_sql is not None and text not in scope.group_sql:
            check_grouped(e, scope, scope.group_columns, "ORDER BY")
        return typed.sql + direction

    def _next_table(self) -> int:
        self._tables += 1
        return self._tables - 1

    def set_operation(self, node: n.SetOperation, parent: Scope | None,
                      geometry_as_text: bool = False) -> tuple[str, list[OutCol]]:
        """UNION, EXCEPT or INTERSECT; a chain of them nests (counted as levels)."""
        self.state.enter(node.pos)
        try:
            return self._set_operation(node, parent, geometry_as_text)
        finally:
            self.state.leave()

    def _set_operation(self, node: n.SetOperation, parent: Scope | None,
                       geometry_as_text: bool) -> tuple[str, list[OutCol]]:
        # Except for UNION ALL the database compares rows, and pgSphere types have no
        # equality operator class: geometry columns of the operands travel as their text.
        as_text = geometry_as_text or not (node.all and node.op == "UNION")
        left_sql, left = self._operand(node.left, parent, as_text)
        right_sql, right = self._operand(node.right, parent, as_text)
        if len(left) != len(right):
            raise AdqlError(f"the operands of {node.op} select {len(left)} and {len(right)} "
                            "columns; they must select the same number", node.pos.line,
                            node.pos.column)
        cols: list[OutCol] = []
        left_casts: dict[int, str] = {}
        right_casts: dict[int, str] = {}
        for i, (a, b) in enumerate(zip(left, right, strict=True)):
            ta, tb = a.typed, b.typed
            text = a.as_text or b.as_text
            cols.append(OutCol(a.name, a.delimited, ta if ta.datatype != "null" else tb, text))
            if ta.datatype == "null" and tb.datatype != "null":
                left_casts[i] = pg_type(tb, text)
            elif tb.datatype == "null" and ta.datatype != "null":
                right_casts[i] = pg_type(ta, text)
            elif type_family(ta) != type_family(tb):
                raise AdqlError(f"column {a.name} of {node.op} has different types in its "
                                "operands", node.pos.line, node.pos.column)
            elif text and not a.as_text:  # a DISTINCT operand selects a geometry as text
                left_casts[i] = "text"
            elif text and not b.as_text:
                right_casts[i] = "text"
        op = node.op + (" ALL" if node.all else "")
        return (f"{self._cast_columns(left_sql, len(left), left_casts)} {op} "
                f"{self._cast_columns(right_sql, len(right), right_casts)}"), cols

    def _cast_columns(self, operand: str, width: int, casts: dict[int, str]) -> str:
        """An operand with some columns cast to the other operand's type: a bare NULL
        (PostgreSQL makes it text when the operand is DISTINCT or nested, and then
        cannot match it with a number), or a geometry the other side selects as text."""
        if not casts:
            return operand
        alias = f"t{self._next_table()}"
        items = ", ".join(f"CAST({alias}.c{i + 1} AS {casts[i]}) AS c{i + 1}" if i in casts
                          else f"{alias}.c{i + 1}" for i in range(width))
        return f"(SELECT {items} FROM {operand} AS {alias})"

    def _operand(self, body: n.QueryBody, parent: Scope | None, geometry_as_text: bool
                 ) -> tuple[str, list[OutCol]]:
        if isinstance(body, n.SelectQuery):
            sql, cols, _ = self.select_query(body, parent, geometry_as_text)
            if body.top is not None:
                sql += f" LIMIT {self.bind(body.top)}"
            return f"({sql})", cols
        if isinstance(body, n.SetOperation):
            sql, cols = self.set_operation(body, parent, geometry_as_text)
            return f"({sql})", cols
        sql, cols = self.select_expression(body, parent, False, geometry_as_text)
        return f"({sql})", cols

    def select_query(self, q: n.SelectQuery, parent: Scope | None,
                     geometry_as_text: bool = False) -> tuple[str, list[OutCol], Scope]:
        scope = Scope(parent)
        from_sql = []
        star: list[Col] = []
        for from_item in q.from_:
            result = self.from_item(from_item, parent)
            from_sql.append(result.sql)
            scope.rels.extend(result.rels)
            scope.merged.extend(result.merged)
            star.extend(result.star)
        self._check_duplicate_names(scope)
        cols: list[OutCol] = []
        select_sql: list[str] = []
        if q.items is None:
            for col in star:
                cols.append(OutCol(col.name, not col.meta and col.key != col.name.lower(),
                                   col.typed))
        else:
            for item in q.items:
                if isinstance(item, n.QualifiedStar):
                    rels = [r for r in scope.rels if r.matches(item.qualifier)]
                    if len(rels) != 1:
                        what = "ambiguous" if rels else "not in the FROM clause"
                        raise AdqlError(f"{dotted(item.qualifier)}.* : the table is {what}",
                                        item.pos.line, item.pos.column)
                    for col in rels[0].columns:
                        cols.append(OutCol(col.name, not col.meta and col.key != col.name.lower(),
                                           col.typed))
                else:
                    typed = self.expr(item.expr, scope)
                    if item.alias is not None:
                        cols.append(OutCol(item.alias.name, item.alias.delimited, typed))
                    else:
                        cols.append(OutCol(typed.name or "expr", False, typed))
        for i, out in enumerate(cols):
            if out.typed.geometry and (q.distinct or geometry_as_text):
                # pgSphere types cannot be compared for DISTINCT; their text can.
                out.as_text = True
                select_sql.append(f"CAST({out.typed.sql} AS text) AS c{i + 1}")
            else:
                select_sql.append(f"{out.typed.sql} AS c{i + 1}")
        sql = "SELECT " + ("DISTINCT " if q.distinct else "") + ", ".join(select_sql)
        sql += " FROM " + ", ".join(from_sql)
        if q.where is not None:
            refuse_aggregates(q.where, "WHERE")
            sql += " WHERE " + self.condition(q.where, scope)
        if q.group_by:
            sql += " GROUP BY " + ", ".join(self._group_term(e, scope, cols)
                                            for e in q.group_by)
        if q.group_by or q.having is not None or any(
                isinstance(item, n.DerivedColumn) and contains_aggregate(item.expr)
                for item in q.items or ()):
            self._check_grouping(q, scope, cols)
        if q.having is not None:
            start = len(scope.outer_refs)
            sql += " HAVING " + self.condition(q.having, scope)
            check_correlated(scope.outer_refs[start:], scope.group_columns, "HAVING")
        return sql, cols, scope

    def _check_grouping(self, q: n.SelectQuery, scope: Scope, cols: list[OutCol]) -> None:
        """A grouped SELECT uses only grouped values outside aggregates (grouping.py)."""
        if scope.group_sql is None:
            scope.group_sql = set()
        items = q.items if q.items is not None else ()
        for item in items:
            if isinstance(item, n.QualifiedStar):
                raise AdqlError(f"{dotted(item.qualifier)}.* cannot be selected in a grouped "
                                "query; name the grouped columns", item.pos.line,
                                item.pos.column)
        if q.items is None:
            raise AdqlError("SELECT * cannot be used in a grouped query; name the grouped "
                            "columns", q.pos.line, q.pos.column)
        for item, col in zip(items, cols, strict=True):
            assert isinstance(item, n.DerivedColumn)
            if canonical(col.typed.sql, self.params) not in scope.group_sql:
                check_grouped(item.expr, scope, scope.group_columns, "the select list")
        if q.having is not None:
            check_grouped(q.having, scope, scope.group_columns, "HAVING")

    def _check_duplicate_names(self, scope: Scope) -> None:
        seen: set[tuple[str, ...]] = set()
        for rel in scope.rels:
            key = (rel.alias.key,) if rel.alias is not None else rel.names
            if key in seen:
                raise AdqlError(f"the table name or alias {'.'.join(key)} is used twice in "
                                "FROM; give each an alias", rel.pos.line, rel.pos.column)
            seen.add(key)

    def _group_term(self, e: n.Expr, scope: Scope, cols: list[OutCol]) -> str:
        """A GROUP BY term (a column, an expression, or an output column's name),
        remembered in ``scope`` for the grouping checks."""
        refuse_aggregates(e, "GROUP BY")
        try:
            typed = self.expr(e, scope)
        except AdqlError:
            if not (isinstance(e, n.ColumnRef) and len(e.parts) == 1):
                raise
            ident = e.parts[0]
            hits = [col.typed for col in cols if col.key == ident.key]
            if not hits:
                raise
            typed = hits[0]
        if typed.geometry:
            raise AdqlError(f"cannot GROUP BY {typed.geometry} values", e.pos.line,
                            e.pos.column)
        if scope.group_sql is None:
            scope.group_sql = set()
        scope.group_sql.add(canonical(typed.sql, self.params))
        scope.group_columns.add(typed.sql)
        return typed.sql

    # --- FROM ------------------------------------------------------------------

    def from_item(self, item: n.FromItem, parent: Scope | None) -> FromResult:
        """One FROM entry; joins nest (counted as levels)."""
        if isinstance(item, n.TableName):
            return self._table(item)
        self.state.enter(item.pos if isinstance(item, n.Join) else item.alias.pos)
        try:
            return self._from_item(item, parent)
        finally:
            self.state.leave()

    def _from_item(self, item: n.DerivedTable | n.Join, parent: Scope | None) -> FromResult:
        if isinstance(item, n.DerivedTable):
            sql, cols = self.select_expression(item.query, parent, False)
            alias = f"t{self._next_table()}"
            rel = self._rel_from_outcols((item.alias.key,), item.alias, alias, cols,
                                         item.alias.pos)
            return FromResult(f"({sql}) AS {alias}", [rel], [], list(rel.columns))
        return self._join(item, parent)

    def _rel_from_outcols(self, names: tuple[str, ...], alias_ident: n.Ident | None,
                          alias: str, cols: list[OutCol], pos: n.Pos) -> Rel:
        columns = []
        for i, o in enumerate(cols):
            sql = f"{alias}.c{i + 1}"
            if o.as_text and o.typed.geometry:  # back from its text to the geometry
                sql = f"CAST({sql} AS {pg_type(o.typed)})"
            typed = replace(o.typed, sql=sql, const=False, literal=None,
                            predicate=None, distance=None, vertices=None, lonlat=None,
                            aggregate=False, datatype=(
                                "char" if o.typed.datatype == "null" else o.typed.datatype))
            columns.append(Col(o.name, o.key, False, typed))
        return Rel(names, alias_ident, columns, pos)

    def _table(self, item: n.TableName) -> FromResult:
        parts = item.parts
        first = parts[0].pos
        self._table_refs += 1
        if self._table_refs > MAX_TABLES:
            raise AdqlError(f"the query names more than {MAX_TABLES} tables; join fewer, or "
                            "upload a table (TAP UPLOAD) to match against", first.line,
                            first.column)
        if len(parts) == 1:
            cte = self._ctes.get(parts[0].key)
            if cte is not None:
                alias = f"t{self._next_table()}"
                rel = self._rel_from_outcols((cte.ident.key,), item.alias, alias,
                                             cte.columns, (item.alias or parts[0]).pos)
                return FromResult(f"{cte.sql_name} AS {alias}", [rel], [], list(rel.columns))
        if len(parts) > 3:
            raise AdqlError(f"{dotted(parts)} is not a table name", first.line,
                            first.column)
        name = parts[-1].key if parts[-1].delimited else parts[-1].name.lower()
        schema = None
        if len(parts) >= 2:
            schema = parts[-2].key if parts[-2].delimited else parts[-2].name.lower()
        found = self.metadata.lookup(schema, name)
        if not found:
            raise AdqlError(f"unknown table {dotted(parts)}; the published tables are "
                            "listed in TAP_SCHEMA.tables", first.line, first.column)
        if len(found) > 1:
            raise AdqlError(f"table name {dotted(parts)} is ambiguous; qualify it with "
                            "its schema", first.line, first.column)
        info = found[0]
        alias = f"t{self._next_table()}"
        columns = []
        for c in info.columns:
            sql = f"{alias}.{quote_ident(c.name)}"
            bound = None
            if c.bound is not None:
                bound = (sql, f"{alias}.{quote_ident(c.bound)}")
            typed = Typed(sql, c.datatype, c.arraysize, c.xtype, c.unit, c.ucd, c.utype,
                          c.description, name=c.name, const=False, bound=bound)
            columns.append(Col(c.name, c.name, True, typed))
        rel = Rel((info.schema, info.name), item.alias, columns, (item.alias or parts[0]).pos)
        table_sql = ".".join(quote_ident(p) for p in info.sql_name.split("."))
        return FromResult(f"{table_sql} AS {alias}", [rel], [], list(columns))

    @staticmethod
    def _side_column(side: FromResult, ident: n.Ident, pos: n.Pos) -> Col:
        for col in side.merged:
            if col.matches(ident):
                return col
        found = [c for r in side.rels for c in r.columns if c.matches(ident)]
        if len(found) != 1:
            what = "ambiguous" if found else "missing"
            raise AdqlError(f"join column {ident.name} is {what} on one side of the join",
                            ident.pos.line or pos.line, ident.pos.column or pos.column)
        return found[0]

    def _join(self, item: n.Join, parent: Scope | None) -> FromResult:
        left = self.from_item(item.left, parent)
        right = self.from_item(item.right, parent)
        rels = left.rels + right.rels
        merged_before = left.merged + right.merged
        names: list[n.Ident] = []
        if item.natural:
            for col in left.star:
                ident = n.Ident(col.name, not col.meta, item.pos)
                if any(c.matches(ident) for c in right.star):
                    names.append(ident)
        elif item.using is not None:
            names = list(item.using)
        merged: list[Col] = []
        conditions: list[str] = []
        used_left: set[int] = set()
        used_right: set[int] = set()
        for ident in names:
            lc = self._side_column(left, ident, item.pos)
            rc = self._side_column(right, ident, item.pos)
            used_left.add(id(lc))
            used_right.add(id(rc))
            conditions.append(f"{lc.typed.sql} = {rc.typed.sql}")
            if item.kind == "FULL":
                sql = f"COALESCE({lc.typed.sql}, {rc.typed.sql})"
            else:
                sql = (rc if item.kind == "RIGHT" else lc).typed.sql
            merged.append(Col(lc.name, lc.key, lc.meta, replace(lc.typed, sql=sql)))
        if item.on is not None:
            refuse_aggregates(item.on, "ON")
            scope = Scope(parent, rels, merged_before)
            on_sql = self.condition(item.on, scope)
        elif names or item.natural:
            on_sql = " AND ".join(conditions) if conditions else "TRUE"
        else:
            raise AdqlError("JOIN needs ON or USING (or write NATURAL JOIN)", item.pos.line,
                            item.pos.column)
        star = merged + [c for c in left.star if id(c) not in used_left] + \
            [c for c in right.star if id(c) not in used_right]
        kind = {"INNER": "JOIN", "LEFT": "LEFT JOIN", "RIGHT": "RIGHT JOIN",
                "FULL": "FULL JOIN"}[item.kind]
        return FromResult(f"({left.sql} {kind} {right.sql} ON {on_sql})", rels,
                          merged_before + merged, star)


def result_columns(cols: list[OutCol]) -> tuple[ResultColumn, ...]:
    """FIELD descriptions with unique names (ADQL: alias, else column name, else generated)."""
    seen: set[str] = set()
    next_suffix: dict[str, int] = {}
    out = []
    for col in cols:
        name = col.name
        base = name
        while name.lower() in seen:
            k = next_suffix.get(base.lower(), 2)
            next_suffix[base.lower()] = k + 1
            name = f"{base}_{k}"
        seen.add(name.lower())
        t = col.typed
        datatype = "char" if t.datatype == "null" else t.datatype
        arraysize = "*" if t.datatype == "null" else t.arraysize
        out.append(ResultColumn(name, datatype, arraysize, t.xtype, t.unit, t.ucd, t.utype,
                                t.description))
    return tuple(out)
