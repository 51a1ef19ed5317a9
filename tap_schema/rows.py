"""TAP_SCHEMA 1.1 rows derived from the declaration (TAP 1.1 sect. 4)."""

from __future__ import annotations

from typing import Any

from tap_schema.declaration import SCHEMAS

Row = dict[str, Any]


def schema_rows() -> list[Row]:
    return [
        {"schema_name": s.name, "utype": s.utype, "description": s.description,
         "schema_index": i}
        for i, s in enumerate(SCHEMAS)
    ]


def table_rows() -> list[Row]:
    rows: list[Row] = []
    for schema in SCHEMAS:
        for table in schema.tables:
            if table.published:
                rows.append({
                    "schema_name": schema.name, "table_name": table.qualified_name,
                    "table_type": "table", "utype": table.utype,
                    "description": table.description, "table_index": len(rows),
                })
    return rows


def column_rows() -> list[Row]:
    rows: list[Row] = []
    for schema in SCHEMAS:
        for table in schema.tables:
            for index, c in enumerate(table.published_columns):
                rows.append({
                    "table_name": table.qualified_name, "column_name": c.published_name,
                    "utype": c.utype, "ucd": c.ucd, "unit": c.unit,
                    "description": c.description, "datatype": c.datatype,
                    "arraysize": c.arraysize, "xtype": c.xtype, "size": None,
                    "principal": int(c.principal), "indexed": int(c.indexed),
                    "std": int(c.std), "column_index": index,
                })
    return rows


def key_rows() -> list[Row]:
    return [
        {"key_id": fk.key_id, "from_table": t.qualified_name, "target_table": fk.target_table,
         "utype": None, "description": fk.description}
        for s in SCHEMAS for t in s.tables for fk in t.foreign_keys
    ]


def key_column_rows() -> list[Row]:
    return [
        {"key_id": fk.key_id, "from_column": a, "target_column": b}
        for s in SCHEMAS for t in s.tables for fk in t.foreign_keys for a, b in fk.columns
    ]


ALL_ROWS = {
    "tap_schema.schemas": schema_rows,
    "tap_schema.tables": table_rows,
    "tap_schema.columns": column_rows,
    "tap_schema.keys": key_rows,
    "tap_schema.key_columns": key_column_rows,
}
