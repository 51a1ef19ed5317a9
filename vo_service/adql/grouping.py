"""Grouped queries and aggregates: where aggregates may stand and what a grouped
SELECT may use outside them.

PostgreSQL refuses (SQLSTATE 42803) a column that is neither grouped nor inside an
aggregate, aggregates inside aggregates, and aggregates in WHERE, ON or GROUP BY;
its messages name the generated aliases (``t1.s_dec``) and point into the SQL.  The
translator refuses them first, at the place in the ADQL text, with the user's names.

The rule is PostgreSQL's, slightly stricter: a select item, HAVING condition or
ORDER BY expression of a grouped SELECT is grouped when it is written as one of the
GROUP BY expressions, or when every column it uses outside aggregates is itself a
GROUP BY term.  (PostgreSQL also accepts a larger expression around a grouped
expression, ``(s_ra + 1) * 2`` under ``GROUP BY s_ra + 1``, and columns of a table
whose primary key is grouped.)  Columns of an enclosing query are constants here.

The walks use an explicit stack: left-deep chains (``a + b + c …``) are as deep as
they are long.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import fields, is_dataclass

from vo_service.adql import nodes as n
from vo_service.adql.errors import AdqlError
from vo_service.adql.scope import Scope, dotted, resolve_column
from vo_service.adql.udfs import REGISTRY

_PARAM = re.compile(r"%\((p\d+)\)s")
Node = n.Expr | n.Condition


def canonical(sql: str, params: dict[str, object]) -> str:
    """SQL with the bound values written in: the same ADQL expression compiled twice
    binds its literals twice, under different parameter names."""
    return _PARAM.sub(lambda m: repr(params[m[1]]), sql)


def is_aggregate_call(node: object) -> bool:
    return isinstance(node, n.Aggregate) or (
        isinstance(node, n.UdfCall) and node.name in REGISTRY
        and REGISTRY[node.name].aggregate)


_CHILD_FIELDS: dict[type, tuple[str, ...] | None] = {}


def _child_fields(cls: type) -> tuple[str, ...] | None:
    """The fields of a node class that may hold nodes (None: not a node), cached: the
    walks run over every WHERE clause and must stay cheap."""
    if cls not in _CHILD_FIELDS:
        if not is_dataclass(cls):
            _CHILD_FIELDS[cls] = None
        elif cls in (n.Pos, n.Ident):
            _CHILD_FIELDS[cls] = ()
        else:
            _CHILD_FIELDS[cls] = tuple(f.name for f in fields(cls) if f.name != "pos")
    return _CHILD_FIELDS[cls]


def _walk(root: Node, stop: Callable[[object], bool]) -> Iterator[object]:
    """The nodes of ``root`` in pre-order, not below subqueries nor below nodes for
    which ``stop`` is true (those are yielded, their insides are not)."""
    stack: list[object] = [root]
    while stack:
        node = stack.pop()
        if isinstance(node, tuple):
            stack.extend(reversed(node))
            continue
        names = _child_fields(type(node))
        if names is None:
            continue  # a value: str, int, bool, None…
        yield node
        if isinstance(node, n.SelectExpression) or stop(node):
            continue
        stack.extend(getattr(node, name) for name in reversed(names))


def contains_aggregate(root: Node) -> bool:
    """Whether an aggregate call stands in ``root`` (outside subqueries): read from the
    tree, so that no expression form can hide one from the grouping checks."""
    return any(is_aggregate_call(node) for node in _walk(root, is_aggregate_call))


def refuse_aggregates(root: Node, clause: str) -> None:
    """Aggregates cannot stand in ``clause`` (WHERE, ON, GROUP BY)."""
    for node in _walk(root, is_aggregate_call):
        if is_aggregate_call(node):
            assert isinstance(node, n.Aggregate | n.UdfCall)
            hint = "; use HAVING for conditions on aggregates" if clause != "GROUP BY" else ""
            raise AdqlError(f"an aggregate function ({node.name.upper()}) cannot stand in "
                            f"{clause}{hint}", node.pos.line, node.pos.column)


def check_grouped(root: Node, scope: Scope, columns: set[str], clause: str) -> None:
    """Every column of this SELECT that ``root`` uses outside aggregates is in
    ``columns`` (the SQL of the GROUP BY terms that are plain columns)."""
    local = Scope(None, scope.rels, scope.merged)
    for node in _walk(root, is_aggregate_call):
        if not isinstance(node, n.ColumnRef):
            continue
        try:
            sql = resolve_column(node, local).sql
        except AdqlError:
            continue  # a column of an enclosing query: a constant here
        if sql not in columns:
            raise _ungrouped(node, clause)


def check_correlated(refs: list[tuple[n.ColumnRef, str]], columns: set[str],
                     clause: str) -> None:
    """The columns of a grouped SELECT that subqueries in ``clause`` use are grouped
    (``refs``: the references and their SQL, from :attr:`Scope.outer_refs`)."""
    for ref, sql in refs:
        if sql not in columns:
            raise _ungrouped(ref, f"a subquery in {clause}")


def _ungrouped(ref: n.ColumnRef, clause: str) -> AdqlError:
    return AdqlError(f"{dotted(ref.parts)} in {clause} must be a GROUP BY term or stand "
                     "inside an aggregate function (COUNT, MIN, MAX, SUM, AVG)", ref.pos.line,
                     ref.pos.column)
