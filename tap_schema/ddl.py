"""PostgreSQL DDL derived from the declaration.

The initial Alembic migration carries a frozen copy of this output; a test checks
that the migrated database and the declaration agree, so a declaration change
without a migration fails the suite.
"""

from __future__ import annotations

from tap_schema.declaration import SCHEMAS
from tap_schema.model import Column, ForeignKey, Table


def _column_sql(column: Column) -> str:
    default = f" DEFAULT {column.default}" if column.default is not None else ""
    null = " NOT NULL" if not column.nullable else ""
    return f"    {column.name} {column.storage_type}{default}{null}"


def foreign_key(fk: ForeignKey) -> str:
    from_cols = ", ".join(a for a, _ in fk.columns)
    to_cols = ", ".join(b for _, b in fk.columns)
    return (f"CONSTRAINT {fk.key_id} FOREIGN KEY ({from_cols}) "
            f"REFERENCES {fk.target_table} ({to_cols}) ON DELETE CASCADE DEFERRABLE")


def create_table(table: Table) -> str:
    lines = [_column_sql(c) for c in table.columns]
    if table.primary_key:
        lines.append(f"    PRIMARY KEY ({', '.join(table.primary_key)})")
    lines.extend(f"    {foreign_key(fk)}" for fk in table.foreign_keys)
    lines.extend(f"    CONSTRAINT {c.name} CHECK ({c.expression})" for c in table.checks)
    body = ",\n".join(lines)
    return f"CREATE TABLE {table.qualified_name} (\n{body}\n)"


def create_indexes(table: Table) -> list[str]:
    statements = []
    for index in table.indexes:
        unique = "UNIQUE " if index.unique else ""
        statements.append(
            f"CREATE {unique}INDEX {index.name} ON {table.qualified_name} "
            f"USING {index.method} ({index.expression})"
        )
    return statements


def create_statements() -> list[str]:
    """Every statement that builds the published schemas from nothing, in order."""
    statements = [f"CREATE SCHEMA IF NOT EXISTS {s.name}" for s in SCHEMAS]
    for schema in SCHEMAS:
        for table in schema.tables:
            statements.append(create_table(table))
            statements.extend(create_indexes(table))
    return statements
