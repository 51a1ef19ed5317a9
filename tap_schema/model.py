"""The vocabulary of the table declaration: columns, indexes, tables and schemas.

Every published fact about a column (VOTable type, unit, UCD, utype, flags) and
every storage fact (PostgreSQL type, indexes) lives on one object, so that the DDL,
the TAP_SCHEMA rows, the VOSI tableset and the ADQL metadata can never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# VOTable datatype (+ arraysize, xtype) -> PostgreSQL storage type, for columns
# that do not name their own.  TAP 1.1 sect. 4.3: TAP_SCHEMA.columns.datatype holds
# VOTable datatypes, with arraysize and xtype beside them.
_DEFAULT_PG_TYPES: dict[tuple[str, str | None], str] = {
    ("boolean", None): "boolean",
    ("short", None): "smallint",
    ("int", None): "integer",
    ("long", None): "bigint",
    ("float", None): "real",
    ("double", None): "double precision",
    ("char", None): "text",
    ("unicodeChar", None): "text",
    ("char", "timestamp"): "timestamp without time zone",
    ("double", "point"): "spoint",
    ("double", "circle"): "scircle",
    ("double", "polygon"): "spoly",
    ("char", "adql:REGION"): "spoly",
}


@dataclass(frozen=True)
class Column:
    """One column of a table; ``published=False`` columns exist only in storage."""

    name: str
    datatype: str
    description: str
    unit: str | None = None
    ucd: str | None = None
    utype: str | None = None
    arraysize: str | None = None
    xtype: str | None = None
    principal: bool = False
    indexed: bool = False
    std: bool = False
    nullable: bool = True
    published: bool = True
    pg_type: str | None = None
    default: str | None = None
    delimited: bool = False
    """The name is an ADQL reserved word: published (TAP_SCHEMA, VOSI) as ``"name"``."""
    bound: str | None = None
    """For a geometry column: an unpublished column holding an indexed circle that
    contains the geometry, NULL exactly where the geometry is.  The ADQL translator
    tests the circle before the geometry, so that the planner can use its index (see
    tap_schema.declaration.S_REGION_BOUND for why)."""

    @property
    def published_name(self) -> str:
        return f'"{self.name}"' if self.delimited else self.name

    @property
    def storage_type(self) -> str:
        if self.pg_type is not None:
            return self.pg_type
        return _DEFAULT_PG_TYPES[(self.datatype, self.xtype)]

    @property
    def adql_type(self) -> str:
        """The ADQL/TAP 1.0 style type name, used for the VODataService tableset."""
        if self.xtype == "timestamp":
            return "TIMESTAMP"
        if self.xtype in ("point", "circle", "polygon"):
            return self.xtype.upper()
        if self.datatype == "char":
            variable = self.arraysize is None or self.arraysize.endswith("*")
            return "VARCHAR" if variable else "CHAR"
        return {
            "boolean": "BOOLEAN",
            "short": "SMALLINT",
            "int": "INTEGER",
            "long": "BIGINT",
            "float": "REAL",
            "double": "DOUBLE",
            "unicodeChar": "VARCHAR",
        }[self.datatype]


@dataclass(frozen=True)
class Index:
    """A storage index; ``expression`` is SQL over the table's own columns."""

    name: str
    expression: str
    method: str = "btree"
    unique: bool = False


@dataclass(frozen=True)
class Check:
    """A CHECK constraint; ``expression`` is SQL over the table's own columns."""

    name: str
    expression: str


@dataclass(frozen=True)
class ForeignKey:
    """A published foreign key (TAP_SCHEMA.keys); ``columns`` pairs from→target names."""

    key_id: str
    target_table: str
    columns: tuple[tuple[str, str], ...]
    description: str = ""


@dataclass(frozen=True)
class Table:
    schema: str
    name: str
    description: str
    columns: tuple[Column, ...]
    utype: str | None = None
    primary_key: tuple[str, ...] = ()
    indexes: tuple[Index, ...] = ()
    foreign_keys: tuple[ForeignKey, ...] = ()
    checks: tuple[Check, ...] = ()
    published: bool = True

    @property
    def qualified_name(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def published_columns(self) -> tuple[Column, ...]:
        return tuple(c for c in self.columns if c.published)

    def column(self, name: str) -> Column:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(f"{self.qualified_name} has no column {name!r}")


@dataclass(frozen=True)
class Schema:
    name: str
    description: str
    tables: tuple[Table, ...] = field(default_factory=tuple)
    utype: str | None = None
