"""Running a TAP query: parameters → ADQL translation → a streaming database cursor.

Used by sync requests and by the async job runner alike.  A query always runs on a
query-role connection, in a transaction bound to the requester (row-level security
decides what it sees), read-only, with statement_timeout, work_mem and
temp_file_limit from the configuration.  Uploaded tables become temporary tables
that only this transaction sees.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, suppress
from dataclasses import dataclass
from typing import Any

import psycopg2
import psycopg2.extensions
import psycopg2.extras
from psycopg2 import sql

from auth.identity import begin_query_transaction
from auth.principals import Principal
from vo_service.adql import AdqlError, Metadata, UploadTable, translate
from vo_service.context import AppContext
from vo_service.errors import TransientFault, UsageFault
from vo_service.params import Params
from vo_service.result import ResultColumn
from vo_service.serialize.formats import OutputFormat, resolve_format
from vo_service.serialize.results import (
    ResultInfo,
    prefetch,
    register_text_timestamps,
    stream_result,
)
from vo_service.serialize.stcs import convert_rows
from vo_service.serialize.upload import UploadedTable, parse_votable
from vo_service.services.copy_results import CopyStream, csv_row_sql, row_sql
from vo_service.services.fetch import fetch_upload

_UPLOAD_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,62}$")
_LANGS = {"ADQL", "ADQL-2.0", "ADQL-2.1"}


@dataclass(frozen=True)
class Upload:
    name: str
    data: bytes


@dataclass(frozen=True)
class TapRequest:
    """A validated TAP query request (TAP 1.1 sect. 2.3 and DALI 1.1 sect. 3)."""

    query: str
    maxrec: int
    format: OutputFormat
    uploads: tuple[Upload, ...] = ()


def parse_tap_request(params: Params, ctx: AppContext) -> TapRequest:
    request = params.get("REQUEST")
    if request is not None and request.lower() != "doquery":
        raise UsageFault(f"REQUEST={request} is not supported; use REQUEST=doQuery "
                         "(or leave it out)")
    lang = params.get("LANG")
    if lang is None:
        raise UsageFault("missing required parameter LANG; use LANG=ADQL")
    if lang.upper() not in _LANGS:
        raise UsageFault(f"LANG={lang} is not supported; this service speaks ADQL "
                         "(ADQL-2.0, ADQL-2.1)")
    query = params.require("QUERY")
    tap = ctx.settings.tap
    maxrec = params.get_int("MAXREC")
    if maxrec is None:
        maxrec = tap.default_maxrec
    maxrec = min(maxrec, tap.hard_maxrec)
    requested_format = params.get("RESPONSEFORMAT") or params.get("FORMAT")
    try:
        fmt = resolve_format(requested_format)
    except ValueError as exc:
        raise UsageFault(str(exc)) from exc
    return TapRequest(query=query, maxrec=maxrec, format=fmt,
                      uploads=_parse_uploads(params, ctx))


def _parse_uploads(params: Params, ctx: AppContext) -> tuple[Upload, ...]:
    uploads: list[Upload] = []
    seen: set[str] = set()
    for spec in params.get_all("UPLOAD"):
        for item in filter(None, (part.strip() for part in spec.split(";"))):
            name, _, uri = item.partition(",")
            name, uri = name.strip(), uri.strip()
            if not _UPLOAD_NAME.match(name):
                raise UsageFault(f"UPLOAD table name {name!r} is not a valid ADQL "
                                 "identifier (letters, digits, underscores)")
            if name.lower() in seen:
                raise UsageFault(f"UPLOAD table {name} given twice")
            seen.add(name.lower())
            tap = ctx.settings.tap
            if uri.startswith("param:"):
                field_name = uri[len("param:"):]
                data = params.files.get(field_name)
                if data is None:
                    raise UsageFault(f"UPLOAD {name}: the request has no multipart file "
                                     f"field named {field_name!r}")
            else:
                data = fetch_upload(uri, max_bytes=tap.upload_limit_bytes,
                                    timeout=tap.upload_fetch_timeout_s,
                                    allow_private=tap.upload_fetch_private)
            if len(data) > ctx.settings.tap.upload_limit_bytes:
                raise UsageFault(f"UPLOAD {name} is larger than the limit of "
                                 f"{ctx.settings.tap.upload_limit_bytes} bytes")
            uploads.append(Upload(name.lower(), data))
    return tuple(uploads)


class _OpenQuery:
    """A query transaction that holds a pooled connection until :meth:`close`.

    :meth:`cancel` may be called from another thread (the client went away) and
    stops the query inside PostgreSQL; :meth:`close` returns the connection.
    """

    def __init__(self, columns: tuple[ResultColumn, ...],
                 connection: psycopg2.extensions.connection, stack: ExitStack) -> None:
        self.columns = columns
        self.connection = connection
        self.stack = stack
        self._closed = False
        self._cancelled = False
        self._lock = threading.Lock()

    def stream(self, fmt: OutputFormat, maxrec: int, info: ResultInfo) -> Iterator[bytes]:
        raise NotImplementedError

    def _stop(self) -> None:
        """Stop producing rows (before the connection is cancelled or released)."""

    def cancel(self) -> None:
        self._stop()
        with self._lock:
            if not self._closed and not self.connection.closed:
                self._cancelled = True
                self.connection.cancel()

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._stop()
        if self._cancelled:
            # A cancel request travels on its own socket and may land after this
            # query ended, on whatever ran next on the connection: never reuse it.
            self.connection.close()
        self.stack.close()


class QueryExecution(_OpenQuery):
    """Rows fetched through a server-side cursor and written by the general writers."""

    def __init__(self, columns: tuple[ResultColumn, ...], first_batch: list[tuple[Any, ...]],
                 cursor: psycopg2.extensions.cursor, connection: psycopg2.extensions.connection,
                 batch_rows: int, stack: ExitStack) -> None:
        super().__init__(columns, connection, stack)
        self.first_batch = first_batch
        self.cursor = cursor
        self.batch_rows = batch_rows

    def batches(self) -> Iterator[list[tuple[Any, ...]]]:
        regions = [i for i, c in enumerate(self.columns) if c.xtype == "adql:REGION"]
        for batch in self._raw_batches():
            yield convert_rows(batch, regions)

    def _raw_batches(self) -> Iterator[list[tuple[Any, ...]]]:
        if self.first_batch:
            yield self.first_batch
        if len(self.first_batch) < self.batch_rows:
            return
        while True:
            try:
                batch = self.cursor.fetchmany(self.batch_rows)
            except psycopg2.errors.QueryCanceled as exc:
                raise TransientFault("the query ran into its time limit and was "
                                     "cancelled; use async for long queries") from exc
            except psycopg2.Error as exc:
                raise UsageFault(_pg_message(exc)) from exc
            if not batch:
                return
            yield batch

    def stream(self, fmt: OutputFormat, maxrec: int, info: ResultInfo) -> Iterator[bytes]:
        return stream_result(fmt, self.columns, prefetch(self.batches()), maxrec=maxrec,
                             info=info)

    def _stop(self) -> None:
        if self._closed:
            with suppress(psycopg2.Error):
                self.cursor.close()


class CopyExecution(_OpenQuery):
    """A BINARY2 or CSV result PostgreSQL writes itself (see :mod:`copy_results`)."""

    def __init__(self, columns: tuple[ResultColumn, ...], copy: CopyStream,
                 connection: psycopg2.extensions.connection, stack: ExitStack) -> None:
        super().__init__(columns, connection, stack)
        self.copy = copy

    def stream(self, fmt: OutputFormat, maxrec: int, info: ResultInfo) -> Iterator[bytes]:
        return self.copy.votable(info) if fmt.is_votable else self.copy.csv(info)

    def _stop(self) -> None:
        self.copy.cancel()
        if self._closed:
            self.copy.thread.join(timeout=30)


Execution = QueryExecution | CopyExecution


def _pg_message(exc: psycopg2.Error) -> str:
    text = (exc.pgerror or str(exc)).strip().splitlines()
    first = text[0] if text else "query failed"
    return re.sub(r"^ERROR:\s*", "", first)


def _query_error(exc: BaseException, timeout_ms: int) -> Exception:
    """The user-facing error for a query PostgreSQL refused before sending rows."""
    if isinstance(exc, psycopg2.errors.QueryCanceled):
        return TransientFault(f"the query ran into its time limit ({timeout_ms // 1000} s) "
                              "and was cancelled; run it as an async job or narrow it")
    if isinstance(exc, psycopg2.errors.InsufficientPrivilege):
        return UsageFault("the query refers to something that is not published")
    if isinstance(exc, (psycopg2.DataError, psycopg2.ProgrammingError,
                        psycopg2.IntegrityError, psycopg2.InternalError)):
        return UsageFault(f"the database could not run the query: {_pg_message(exc)}")
    if isinstance(exc, psycopg2.OperationalError):
        return TransientFault("the database connection failed; try again")
    if isinstance(exc, Exception):
        return exc
    return RuntimeError(str(exc))


def _upload_tables(uploads: Sequence[tuple[Upload, UploadedTable]]) -> list[UploadTable]:
    return [
        UploadTable(adql_name=f"TAP_UPLOAD.{upload.name}",
                    sql_name=f"pg_temp.tap_upload_{upload.name}", columns=table.columns)
        for upload, table in uploads
    ]


def _create_upload(cur: psycopg2.extensions.cursor, name: str, table: UploadedTable) -> None:
    ident = sql.Identifier(f"tap_upload_{name}")
    columns = sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(c.name), sql.SQL(c.storage_type))
        for c in table.columns
    )
    cur.execute(sql.SQL("CREATE TEMP TABLE {} ({}) ON COMMIT DROP").format(ident, columns))
    if table.rows:
        insert = sql.SQL("INSERT INTO pg_temp.{} VALUES %s").format(ident).as_string(cur)
        psycopg2.extras.execute_values(cur, insert, table.rows, page_size=1000)
    cur.execute(sql.SQL("ANALYZE pg_temp.{}").format(ident))


def start_query(ctx: AppContext, principal: Principal, request: TapRequest, *,
                asynchronous: bool = False) -> Execution:
    """Translate, open the cursor and fetch the first batch (blocking: run in a thread).

    Errors that can be known before any byte is sent (bad ADQL, bad upload, a query
    PostgreSQL rejects at once) are raised here, so they become proper error documents.
    """
    tap = ctx.settings.tap
    try:
        parsed = [(u, parse_votable(u.data, max_bytes=tap.upload_limit_bytes,
                                    max_rows=tap.upload_max_rows))
                  for u in request.uploads]
    except ValueError as exc:
        raise UsageFault(f"cannot use the uploaded table: {exc}") from exc
    metadata = Metadata.from_declaration(_upload_tables(parsed))
    try:
        translation = translate(request.query, metadata, limit=request.maxrec + 1)
    except AdqlError as exc:
        raise UsageFault(str(exc)) from exc
    db = ctx.settings.database
    limits = (
        (db.async_statement_timeout_ms, db.async_work_mem, db.async_temp_file_limit)
        if asynchronous else
        (db.sync_statement_timeout_ms, db.sync_work_mem, db.sync_temp_file_limit)
    )
    secret = ctx.identity_secret()
    stack = ExitStack()
    try:
        conn = stack.enter_context(ctx.database.query())
        with conn.cursor() as cur:
            if parsed:
                cur.execute("SET TRANSACTION READ WRITE")
                for upload, table in parsed:
                    _create_upload(cur, upload.name, table)
            begin_query_transaction(cur, principal, secret)
            cur.execute(
                "SELECT set_config('statement_timeout', %s, true), "
                "set_config('work_mem', %s, true)",
                (str(limits[0]), limits[1]),
            )
            if asynchronous and ctx.settings.embedded:
                cur.execute("SELECT public.lick_set_temp_file_limit(%s)", (limits[2],))
        copy_sql = {
            "votable-binary2": row_sql, "csv": csv_row_sql,
        }.get(request.format.name, lambda columns, sql: None)(translation.columns,
                                                              translation.sql)
        if copy_sql is not None:
            with conn.cursor() as cur:
                statement = cur.mogrify(copy_sql, translation.params).decode()
            copy = CopyStream(conn, statement, translation.columns, request.maxrec,
                              csv=request.format.name == "csv")
            try:
                copy.start()
            except Exception as exc:
                raise _query_error(exc, limits[0]) from exc
            return CopyExecution(translation.columns, copy, conn, stack)
        cursor = conn.cursor(name="tap_result")
        cursor.itersize = tap.fetch_batch_rows
        register_text_timestamps(cursor)
        try:
            cursor.execute(translation.sql, translation.params)
            first = cursor.fetchmany(tap.fetch_batch_rows)
        except psycopg2.Error as exc:
            raise _query_error(exc, limits[0]) from exc
        return QueryExecution(translation.columns, first, cursor, conn,
                              tap.fetch_batch_rows, stack)
    except BaseException:
        stack.close()
        raise
