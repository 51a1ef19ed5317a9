"""Running a TAP query: parameters → ADQL translation → a streaming database cursor.

Used by sync requests and by the async job runner alike.  A query always runs on a
query-role connection, in a transaction bound to the requester (row-level security
decides what it sees), read-only, with statement_timeout, work_mem and
temp_file_limit from the configuration.  Uploaded tables become temporary tables
that only this transaction sees.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import suppress
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import psycopg2
import psycopg2.extensions
import psycopg2.extras
from psycopg2 import sql
from sqlalchemy.pool import PoolProxiedConnection

from auth.identity import prepare_query_transaction, rejection_error
from auth.principals import Principal
from vo_service.adql import AdqlError, Metadata, Translation, UploadTable, translate
from vo_service.database.errors import database_fault, pg_message
from vo_service.database.pool import Pool, release
from vo_service.errors import UsageFault
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
from vo_service.services.descriptors import links_descriptor
from vo_service.services.fetch import fetch_upload
from vo_service.settings import TapSettings

# "tap_upload_" + the name must fit PostgreSQL's 63-byte identifiers
_UPLOAD_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,51}$")
_LANGS = {"ADQL", "ADQL-2.0", "ADQL-2.1"}
T = TypeVar("T")


@dataclass(frozen=True)
class Upload:
    """An UPLOAD table: its inline data, or the URL to fetch it from (``data`` None)."""

    name: str
    data: bytes | None
    url: str | None = None


@dataclass(frozen=True)
class TapRequest:
    """A validated TAP query request (TAP 1.1 sect. 2.3 and DALI 1.1 sect. 3)."""

    query: str
    maxrec: int
    format: OutputFormat
    uploads: tuple[Upload, ...] = ()

    @property
    def needs_fetch(self) -> bool:
        return any(upload.data is None for upload in self.uploads)


def parse_tap_request(params: Params, tap: TapSettings) -> TapRequest:
    """Validate the parameters (no database, no network: safe on the event loop)."""
    request = params.get("REQUEST")
    if request is not None and request.lower() != "doquery":
        raise UsageFault(f"REQUEST={request[:40]} is not supported; use REQUEST=doQuery "
                         "(or leave it out)")
    lang = params.get("LANG")
    if lang is None:
        raise UsageFault("missing required parameter LANG; use LANG=ADQL")
    if lang.upper() not in _LANGS:
        raise UsageFault(f"LANG={lang[:40]} is not supported; this service speaks ADQL "
                         "(ADQL-2.0, ADQL-2.1)")
    query = params.require("QUERY")  # its length is bounded by the translator
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
                      uploads=_parse_uploads(params, tap))


def _parse_uploads(params: Params, tap: TapSettings) -> tuple[Upload, ...]:
    uploads: list[Upload] = []
    seen: set[str] = set()
    for spec in params.get_all("UPLOAD"):
        for item in filter(None, (part.strip() for part in spec.split(";"))):
            name, _, uri = item.partition(",")
            name, uri = name.strip(), uri.strip()
            if not _UPLOAD_NAME.match(name):
                raise UsageFault(f"UPLOAD table name {name[:70]!r} is not allowed: a letter, "
                                 "then up to 51 letters, digits or underscores")
            if name.lower() in seen:
                raise UsageFault(f"UPLOAD table {name} given twice")
            seen.add(name.lower())
            if uri.startswith("param:"):
                field_name = uri[len("param:"):]
                data = params.files.get(field_name)
                if data is None:
                    raise UsageFault(f"UPLOAD {name}: the request has no multipart file "
                                     f"field named {field_name[:70]!r}")
                if len(data) > tap.upload_limit_bytes:
                    raise UsageFault(f"UPLOAD {name} is larger than the limit of "
                                     f"{tap.upload_limit_bytes} bytes")
                uploads.append(Upload(name.lower(), data))
            elif uri.lower().startswith(("http://", "https://")):
                uploads.append(Upload(name.lower(), None, uri))
            else:
                raise UsageFault(f"UPLOAD {name}: {uri[:70]!r}: only http and https URLs, "
                                 "or param:<multipart field>, are accepted")
    return tuple(uploads)


def fetch_uploads(request: TapRequest, tap: TapSettings) -> TapRequest:
    """Download the UPLOADs given by URL (blocking network I/O: run in a thread)."""
    if not request.needs_fetch:
        return request
    fetched = tuple(
        upload if upload.data is not None or upload.url is None else replace(
            upload, data=fetch_upload(upload.url, max_bytes=tap.upload_limit_bytes,
                                      timeout=tap.upload_fetch_timeout_s,
                                      allow_private=tap.upload_fetch_private))
        for upload in request.uploads)
    return replace(request, uploads=fetched)


@dataclass(frozen=True)
class QueryLimits:
    """Per-transaction limits of a user query (sync and async have their own)."""

    statement_timeout_ms: int
    work_mem: str
    temp_file_limit: str | None = None  # raised per transaction (embedded only)


class IdentitySecret:
    """The key binding query transactions to requesters, read once (owner role)."""

    def __init__(self, pool: Pool) -> None:
        self._pool = pool
        self._secret: bytes | None = None
        self._lock = threading.Lock()

    def get(self) -> bytes:
        with self._lock:
            if self._secret is None:
                from auth.identity import load_secret

                with self._pool.connection() as conn, conn.cursor() as cur:
                    self._secret = load_secret(cur)
            return self._secret


class CancelHandle:
    """Cancels a query from another thread, even before its connection is known.

    The HTTP layer creates one per request and calls :meth:`cancel` (off the event
    loop) when the client disconnects; the query registers its connection when it
    has one, and is cancelled at once if that already happened.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._connection: psycopg2.extensions.connection | None = None
        self.cancelled = False

    def register(self, connection: psycopg2.extensions.connection) -> None:
        with self._lock:
            self._connection = connection
            cancelled = self.cancelled
        if cancelled:
            connection.cancel()

    def cancel(self) -> None:
        with self._lock:
            if self.cancelled:
                return
            self.cancelled = True
            connection = self._connection
        if connection is not None and not connection.closed:
            with suppress(psycopg2.Error):
                connection.cancel()


class _OpenQuery:
    """A query transaction that holds a pooled connection until :meth:`close`.

    :meth:`cancel` may be called from another thread (the client went away) and
    stops the query inside PostgreSQL; :meth:`close` returns the connection (or
    discards it: a cancelled or failed connection is never reused).
    """

    def __init__(self, columns: tuple[ResultColumn, ...], lease: PoolProxiedConnection,
                 handle: CancelHandle) -> None:
        self.columns = columns
        self.lease = lease
        self.connection: psycopg2.extensions.connection = lease.dbapi_connection  # type: ignore[assignment]
        self.handle = handle
        self._closed = False
        self._lock = threading.Lock()

    def stream(self, fmt: OutputFormat, maxrec: int, info: ResultInfo) -> Iterator[bytes]:
        raise NotImplementedError

    def _stop(self) -> None:
        """Stop producing rows (before the connection is cancelled or released)."""

    def cancel(self) -> None:
        self._stop()
        with self._lock:
            if self._closed:
                return
        self.handle.cancel()

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._stop()
        # A cancel request travels on its own socket and may land after this query
        # ended, on whatever ran next on the connection: never reuse a cancelled one.
        release(self.lease, broken=self.handle.cancelled or bool(self.connection.closed))


class QueryExecution(_OpenQuery):
    """Rows fetched through a server-side cursor and written by the general writers."""

    def __init__(self, columns: tuple[ResultColumn, ...], first_batch: list[tuple[Any, ...]],
                 cursor: psycopg2.extensions.cursor, lease: PoolProxiedConnection,
                 handle: CancelHandle, batch_rows: int) -> None:
        super().__init__(columns, lease, handle)
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
            except psycopg2.Error as exc:
                raise database_fault(exc) from exc
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
                 lease: PoolProxiedConnection, handle: CancelHandle) -> None:
        super().__init__(columns, lease, handle)
        self.copy = copy

    def stream(self, fmt: OutputFormat, maxrec: int, info: ResultInfo) -> Iterator[bytes]:
        return self.copy.votable(info) if fmt.is_votable else self.copy.csv(info)

    def _stop(self) -> None:
        self.copy.cancel()
        if self._closed:
            self.copy.thread.join(timeout=30)


Execution = QueryExecution | CopyExecution


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


class TapService:
    """Runs TAP queries on one pool with one set of limits (sync, or the async runner's).

    Blocking: :meth:`start` runs in a worker thread of the pool (the HTTP layer holds
    an admission slot of it for the whole life of the result).
    """

    def __init__(self, pool: Pool, tap: TapSettings, limits: QueryLimits,
                 secret: IdentitySecret, links_url: str, upload_pool: Pool | None = None
                 ) -> None:
        self.pool = pool
        self.tap = tap
        self.limits = limits
        self.secret = secret
        self.links_url = links_url
        self.upload_pool = upload_pool

    def pool_for(self, request: TapRequest) -> Pool:
        """The pool a request's query runs on: with uploads, the primary's own when the
        others read from standbys (a standby cannot create their temporary tables)."""
        if request.uploads and self.upload_pool is not None:
            return self.upload_pool
        return self.pool

    def parse(self, params: Params) -> TapRequest:
        return parse_tap_request(params, self.tap)

    def result_info(self, execution: Execution, request: TapRequest) -> ResultInfo:
        """What the document says besides its rows; a VOTable with an
        ``obs_publisher_did`` column carries the DataLink service descriptor, so that
        clients find each row's links."""
        resources = (links_descriptor(self.links_url, execution.columns)
                     if request.format.is_votable else b"")
        return ResultInfo(query=request.query, resources=resources)

    def write(self, execution: Execution, request: TapRequest) -> Iterator[bytes]:
        """The result document (:meth:`result_info` around the rows)."""
        return execution.stream(request.format, request.maxrec,
                                self.result_info(execution, request))

    def start(self, principal: Principal, request: TapRequest,
              handle: CancelHandle | None = None) -> Execution:
        """Translate, open the cursor and fetch the first batch (uploads given by URL
        were fetched before, with :func:`fetch_uploads`, holding no connection).

        Errors that can be known before any byte is sent (bad ADQL, bad upload, a query
        PostgreSQL rejects at once) are raised here, so they become proper error
        documents.
        """
        handle = handle or CancelHandle()
        if request.needs_fetch:
            raise RuntimeError("fetch_uploads() must run before start()")
        parsed = _parse_upload_tables(request, self.tap)
        try:
            if parsed:
                metadata = Metadata.from_declaration(_upload_tables(parsed))
                translation = translate(request.query, metadata, limit=request.maxrec + 1)
            elif len(request.query) <= CACHED_QUERY_CHARS:
                translation = _translate_published(request.query, request.maxrec + 1)
            else:
                translation = translate(request.query, _published_metadata(),
                                        limit=request.maxrec + 1)
        except AdqlError as exc:
            raise UsageFault(str(exc)) from exc
        return self._run(principal, translation, request.format, request.maxrec, handle,
                         parsed, self.pool_for(request))

    def start_statement(self, principal: Principal, statement: Translation,
                        fmt: OutputFormat, maxrec: int, handle: CancelHandle | None = None
                        ) -> Execution:
        """Run a statement compiled by another protocol (SIA) exactly as a TAP query:
        same transaction bound to the requester, limits, cursor or COPY, writers.

        ``statement`` must cap its rows at ``maxrec + 1`` (the honest OVERFLOW), name
        its output columns ``c1 … cN`` like the translator, and take every value as a
        bound parameter.
        """
        return self._run(principal, statement, fmt, maxrec, handle or CancelHandle(), (),
                         self.pool)

    def read_as(self, principal: Principal,
                work: Callable[[psycopg2.extensions.cursor], T]) -> T:
        """``work`` on a cursor in a read-only transaction bound to ``principal``, with
        the query limits, rolled back afterwards: small reads besides a result (SIA's
        parameter values) see exactly the rows the requester's queries see."""
        secret = self.secret.get()
        try:
            with self.pool.connection() as conn:
                try:
                    self._begin(conn, principal, (), secret)
                    with conn.cursor() as cur:
                        return work(cur)
                finally:
                    with suppress(psycopg2.Error):
                        conn.rollback()
        except psycopg2.Error as exc:
            raise database_fault(exc, statement_timeout_ms=self.limits.statement_timeout_ms
                                 ) from exc

    def _run(self, principal: Principal, translation: Translation, fmt: OutputFormat,
             maxrec: int, handle: CancelHandle,
             parsed: Sequence[tuple[Upload, UploadedTable]], pool: Pool) -> Execution:
        secret = self.secret.get()
        lease = pool.checkout()
        conn: psycopg2.extensions.connection = lease.dbapi_connection  # type: ignore[assignment]
        handle.register(conn)
        try:
            self._begin(conn, principal, parsed, secret)
            return self._open(conn, lease, handle, fmt, maxrec, translation)
        except BaseException as exc:
            broken = handle.cancelled or bool(conn.closed) or isinstance(
                exc, (psycopg2.OperationalError, psycopg2.InterfaceError))
            release(lease, broken=broken)
            if isinstance(exc, psycopg2.Error):
                raise database_fault(exc, statement_timeout_ms=self.limits.statement_timeout_ms
                                     ) from exc
            raise

    def _begin(self, conn: psycopg2.extensions.connection, principal: Principal,
               parsed: Sequence[tuple[Upload, UploadedTable]], secret: bytes) -> None:
        limits = self.limits
        with conn.cursor() as cur:
            if parsed:
                cur.execute("SET TRANSACTION READ WRITE")
                for upload, table in parsed:
                    try:
                        _create_upload(cur, upload.name, table)
                    except (psycopg2.DataError, psycopg2.InternalError) as exc:
                        # pgSphere's own checks of uploaded geometry (a self-crossing
                        # polygon is XX000): the client's table, not our fault
                        raise UsageFault(f"cannot use the uploaded table {upload.name}: "
                                         f"{pg_message(exc)}") from exc
            assertion = prepare_query_transaction(cur, principal, secret)
            # the identity and the limits in one round trip (no protected table read)
            select = [assertion.expression, "set_config('statement_timeout', %s, true)",
                      "set_config('work_mem', %s, true)"]
            values: list[object] = [*assertion.params, str(limits.statement_timeout_ms),
                                    limits.work_mem]
            if limits.temp_file_limit is not None:
                select.append("public.lick_set_temp_file_limit(%s)")
                values.append(limits.temp_file_limit)
            try:
                cur.execute("SELECT " + ", ".join(select), values)
            except psycopg2.Error as exc:
                rejected = rejection_error(exc)
                if rejected is not None:
                    raise rejected from exc
                raise

    def _open(self, conn: psycopg2.extensions.connection, lease: PoolProxiedConnection,
              handle: CancelHandle, fmt: OutputFormat, maxrec: int,
              translation: Translation) -> Execution:
        copy_sql: Callable[[Any, Any], str | None] = {
            "votable-binary2": row_sql, "csv": csv_row_sql,
        }.get(fmt.name, lambda columns, sql: None)
        statement = copy_sql(translation.columns, translation.sql)
        if statement is not None:
            with conn.cursor() as cur:
                bound = cur.mogrify(statement, translation.params).decode()
            copy = CopyStream(conn, bound, translation.columns, maxrec,
                              csv=fmt.name == "csv")
            copy.start()
            return CopyExecution(translation.columns, copy, lease, handle)
        cursor = conn.cursor(name="tap_result")
        cursor.itersize = self.tap.fetch_batch_rows
        register_text_timestamps(cursor)
        cursor.execute(translation.sql, translation.params)
        first = cursor.fetchmany(self.tap.fetch_batch_rows)
        return QueryExecution(translation.columns, first, cursor, lease, handle,
                              self.tap.fetch_batch_rows)


#: Queries up to this long have their translations remembered (1024 of them: a few MB
#: at most; a long query's translation can be megabytes and is not kept).
CACHED_QUERY_CHARS = 4000


@functools.lru_cache(maxsize=1024)
def _translate_published(query: str, limit: int) -> Translation:
    """Translations over the published tables only, remembered: clients repeat queries
    (monitors, scripts in loops), and parsing costs more than running a small one.
    The declaration does not change while the service runs; errors are not cached."""
    return translate(query, _published_metadata(), limit=limit)


@functools.cache
def _published_metadata() -> Metadata:
    return Metadata.from_declaration()


def _parse_upload_tables(request: TapRequest, tap: TapSettings
                         ) -> list[tuple[Upload, UploadedTable]]:
    parsed = []
    for upload in request.uploads:
        assert upload.data is not None  # fetched
        try:
            parsed.append((upload, parse_votable(upload.data, max_bytes=tap.upload_limit_bytes,
                                                 max_rows=tap.upload_max_rows)))
        except (ValueError, OverflowError) as exc:
            raise UsageFault(f"cannot use the uploaded table {upload.name}: {exc}") from exc
    return parsed
