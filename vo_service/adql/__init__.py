"""ADQL 2.1 → PostgreSQL + pgSphere: grammar → typed tree → metadata check → SQL.

Pure code: no database access, no HTTP.  :func:`translate` is the whole interface;
the service binds ``Translation.params`` with psycopg2 and describes the result
with ``Translation.columns``.
"""

from __future__ import annotations

from dataclasses import dataclass

from vo_service.adql.compiler import Compiler, result_columns
from vo_service.adql.errors import AdqlError
from vo_service.adql.metadata import Metadata, UploadTable
from vo_service.adql.parser import parse
from vo_service.result import ResultColumn

__all__ = ["AdqlError", "Metadata", "Translation", "UploadTable", "translate"]


@dataclass(frozen=True)
class Translation:
    """One SQL statement with psycopg2 ``%(name)s`` parameters, and its output columns.

    The SQL names its output columns ``c1 … cN`` by position; the ADQL names are
    in ``columns``.
    """

    sql: str
    params: dict[str, object]
    columns: tuple[ResultColumn, ...]


def translate(text: str, metadata: Metadata, *, limit: int | None = None) -> Translation:
    """Translate one ADQL query; ``limit`` caps the rows (the service passes MAXREC+1).

    Raises :class:`AdqlError`, with line and column, for anything that is not a
    valid query over the tables in ``metadata``.
    """
    statement = parse(text)
    compiler = Compiler(metadata, limit)
    try:
        sql, cols = compiler.statement(statement)
    except RecursionError:
        # The nesting limit (state.MAX_DEPTH) keeps the compilers within Python's
        # recursion limit; this is the backstop for a caller already deep in its stack.
        deepest = compiler.state.deepest
        raise AdqlError("the query is nested too deeply here; simplify it", deepest.line,
                        deepest.column) from None
    return Translation(sql, compiler.params, result_columns(cols))
