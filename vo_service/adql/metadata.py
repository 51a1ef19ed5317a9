"""The tables a query may name: the published declaration plus this request's uploads.

Lookup follows ADQL's identifier rules: a regular identifier matches whatever its
lower-case form matches (TAP_SCHEMA names are lower case), a delimited one must
match exactly.  Only published columns are visible, so storage-only columns such
as ``owner_ids`` can neither be named nor ``*``-expanded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tap_schema.declaration import published_tables
from tap_schema.model import Column


@dataclass(frozen=True)
class UploadTable:
    """A table uploaded with the request (TAP 1.1 sect. 3.5), already in ``pg_temp``."""

    adql_name: str  # e.g. "TAP_UPLOAD.mine"
    sql_name: str  # e.g. "pg_temp.tap_upload_mine"
    columns: tuple[Column, ...]


@dataclass(frozen=True)
class TableInfo:
    """One nameable table: its ADQL name parts, its SQL name and published columns."""

    schema: str  # lower case
    name: str  # lower case
    sql_name: str
    columns: tuple[Column, ...]


class Metadata:
    """Case-folded index of the tables a query may name."""

    def __init__(self, tables: Sequence[TableInfo]):
        self._qualified: dict[tuple[str, str], TableInfo] = {}
        self._by_name: dict[str, list[TableInfo]] = {}
        for info in tables:
            self._qualified[(info.schema, info.name)] = info
            self._by_name.setdefault(info.name, []).append(info)

    @classmethod
    def from_declaration(cls, extra: Sequence[UploadTable] = ()) -> Metadata:
        """The published tables (published columns only) of the declaration, plus uploads."""
        infos = [
            TableInfo(t.schema.lower(), t.name.lower(), t.qualified_name, t.published_columns)
            for t in published_tables()
        ]
        for upload in extra:
            schema, _, name = upload.adql_name.rpartition(".")
            infos.append(TableInfo(schema.lower() or "tap_upload", name.lower(),
                                   upload.sql_name, upload.columns))
        return cls(infos)

    def lookup(self, schema: str | None, name: str) -> list[TableInfo]:
        """Tables called ``name`` (in ``schema`` if given); names already case-folded."""
        if schema is not None:
            info = self._qualified.get((schema, name))
            return [info] if info is not None else []
        return list(self._by_name.get(name, ()))

    def tables(self) -> list[TableInfo]:
        return list(self._qualified.values())
