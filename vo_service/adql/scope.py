"""Name resolution: the tables and columns a query part can see, and lookup in them.

A :class:`Scope` is one SELECT's FROM clause (its relations and the columns merged
by ``USING``/``NATURAL``) with a link to the enclosing query's scope, so that
correlated subqueries resolve outward.  Identifier matching follows ADQL: a
regular identifier matches case-insensitively, a delimited one exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vo_service.adql import nodes as n
from vo_service.adql.errors import AdqlError
from vo_service.adql.typed import Typed


def _matches(ident: n.Ident, name: str, case_insensitive: bool) -> bool:
    if case_insensitive and not ident.delimited:
        return ident.name.lower() == name.lower()
    return ident.key == name


def dotted(parts: list[n.Ident] | tuple[n.Ident, ...]) -> str:
    """A qualified name as the user wrote it, for messages."""
    return ".".join(f'"{p.name}"' if p.delimited else p.name for p in parts)


@dataclass(slots=True)
class Col:
    """A column visible in a FROM clause: its ADQL name and SQL reference."""

    name: str
    key: str  # the exact name a delimited identifier must spell
    meta: bool  # metadata columns match regular identifiers case-insensitively
    typed: Typed

    def matches(self, ident: n.Ident) -> bool:
        if ident.delimited:
            return ident.name == self.key
        return ident.name.lower() == self.name.lower() if self.meta else \
            ident.name.lower() == self.key


@dataclass(slots=True)
class Rel:
    """One table, CTE or derived table in a FROM clause."""

    names: tuple[str, ...]  # lower-case (schema, table) or the alias/CTE key
    alias: n.Ident | None
    columns: list[Col]
    pos: n.Pos

    def matches(self, qualifier: tuple[n.Ident, ...]) -> bool:
        if self.alias is not None:
            return len(qualifier) == 1 and qualifier[0].key == self.alias.key
        wanted = qualifier[-2:] if len(qualifier) == 3 else qualifier  # catalog ignored
        if len(wanted) > len(self.names):
            return False
        return all(_matches(q, name, True) for q, name in zip(
            wanted, self.names[-len(wanted):], strict=True))


@dataclass(slots=True)
class Scope:
    parent: Scope | None
    rels: list[Rel] = field(default_factory=list)
    merged: list[Col] = field(default_factory=list)
    # Set when the SELECT is grouped: the canonical SQL of its GROUP BY expressions
    # and the SQL of those that are plain columns (see :mod:`grouping`).
    group_sql: set[str] | None = None
    group_columns: set[str] = field(default_factory=set)
    # Columns of this scope named inside subqueries (correlated references), in order:
    # a grouped query must group those its HAVING subqueries use.
    outer_refs: list[tuple[n.ColumnRef, str]] = field(default_factory=list)


@dataclass(slots=True)
class OutCol:
    """One output column of a query: its ADQL name and value."""

    name: str
    delimited: bool
    typed: Typed
    # A geometry the SQL selects as its text (pgSphere types cannot be compared for
    # DISTINCT and set operations); read back as the geometry by an enclosing query.
    as_text: bool = False

    @property
    def key(self) -> str:
        return self.name if self.delimited else self.name.lower()


def resolve_column(ref: n.ColumnRef, scope: Scope) -> Typed:
    """The value a column reference names, searching outward through enclosing scopes."""
    *qualifier, ident = ref.parts
    s: Scope | None = scope
    while s is not None:
        found = _lookup(ref, qualifier, ident, s)
        if found is not None:
            if s is not scope:
                s.outer_refs.append((ref, found.sql))
            return found
        s = s.parent
    if qualifier:
        first = qualifier[0].pos
        raise AdqlError(f"unknown table or alias {dotted(qualifier)}", first.line,
                        first.column)
    raise AdqlError(f"unknown column {ident.name}", ident.pos.line, ident.pos.column)


def _lookup(ref: n.ColumnRef, qualifier: list[n.Ident], ident: n.Ident, s: Scope
            ) -> Typed | None:
    """The column in scope ``s`` alone, None when it is not there."""
    if qualifier:
        rels = [r for r in s.rels if r.matches(tuple(qualifier))]
        if len(rels) > 1:
            raise AdqlError(f"{dotted(qualifier)} is ambiguous; use an alias",
                            ref.pos.line, ref.pos.column)
        if not rels:
            return None
        cols = [c for c in rels[0].columns if c.matches(ident)]
        if not cols:
            raise AdqlError(f"{dotted(qualifier)} has no column {ident.name}",
                            ident.pos.line, ident.pos.column)
        if len(cols) > 1:
            raise AdqlError(f"column {ident.name} is ambiguous", ident.pos.line,
                            ident.pos.column)
        return cols[0].typed
    for col in s.merged:
        if col.matches(ident):
            return col.typed
    found = [c for r in s.rels for c in r.columns if c.matches(ident)]
    if len(found) > 1:
        raise AdqlError(f"column {ident.name} is ambiguous; qualify it with a "
                        "table name or alias", ident.pos.line, ident.pos.column)
    return found[0].typed if found else None
