"""HTTP handlers of the ADQL page: ``/adql`` (query box, examples, tables, sync run,
the user's async jobs) and its two forms, ``/adql/jobs`` and ``/adql/jobs/delete``.

Everything goes through the services the VO endpoints use: a sync run and the table
browser are TAP queries of the requester (:func:`~vo_service.services.search.run_query`
on the ``query`` pool: the same translator, row-level security and limits); the
table browser reads ``TAP_SCHEMA`` that way too.  Async jobs are UWS jobs
(:class:`~vo_service.uws.service.UwsService` on the ``uws`` pool) that ``/tap/async``
serves as well; the page creates and deletes them with the web session's CSRF token.
A query the translator refuses is shown with its line and column marked.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response

from vo_service.adql import AdqlError
from vo_service.errors import ServiceError
from vo_service.params import Params
from vo_service.routes.common import client_address, principal_of, services
from vo_service.services.examples import EXAMPLES
from vo_service.services.search import QueryRows, run_query
from vo_service.uws.errors import UwsError
from vo_service.uws.model import Job
from vo_service.uws.service import ListFilters

if TYPE_CHECKING:
    from vo_service.web.routes import WebPages

#: rows a sync run shows on the page (more: the links to the whole result)
PAGE_MAXREC = 1000
DEFAULT_MAXREC = 100
MAX_QUERY_CHARS = 20_000
JOBS_SHOWN = 50
TABLES_ADQL = ("SELECT schema_name, table_name, table_type, description FROM TAP_SCHEMA.tables "
               "ORDER BY schema_name, table_name")
COLUMNS_ADQL = ("SELECT column_name, datatype, arraysize, unit, ucd, description, indexed "
                "FROM TAP_SCHEMA.columns WHERE table_name = {table} ORDER BY column_index, "
                "column_name")


@dataclass(frozen=True)
class QueryError:
    """A refused query: the message, and where (1-based) when the translator knows."""

    message: str
    line: int | None = None
    column: int | None = None


@dataclass(frozen=True)
class MarkedLine:
    number: int
    before: str
    at: str
    after: str
    marked: bool


def mark(query: str, error: QueryError) -> list[MarkedLine]:
    """The query's lines, the character at the error's position set apart."""
    lines = query.split("\n")
    marked: list[MarkedLine] = []
    for number, text in enumerate(lines, start=1):
        if number == error.line and error.column is not None:
            i = max(0, min(error.column - 1, len(text)))
            marked.append(MarkedLine(number, text[:i], text[i:i + 1] or " ", text[i + 1:],
                                     True))
        else:
            marked.append(MarkedLine(number, text, "", "", False))
    return marked


@dataclass(frozen=True)
class JobView:
    job: Job
    query: str
    seconds: float | None


class AdqlPages:
    def __init__(self, pages: WebPages) -> None:
        self.pages = pages

    async def page(self, request: Request, *, status: int = 200,
                   error: str | None = None) -> Response:
        found = services(request)
        principal = principal_of(request)
        params = request.query_params
        query = (params.get("query") or "")[:MAX_QUERY_CHARS]
        table = (params.get("table") or "")[:200]
        maxrec_text = params.get("maxrec") or str(DEFAULT_MAXREC)
        maxrec = int(maxrec_text) if maxrec_text.isdigit() else DEFAULT_MAXREC
        maxrec = max(1, min(maxrec, PAGE_MAXREC))
        pool = found.tap.pool

        def browse() -> tuple[QueryRows, QueryRows | None]:
            tables = run_query(found.tap, principal, TABLES_ADQL, 500)
            known = {f"{row[1]}" for row in tables.rows}
            columns = None
            if table in known:
                escaped = "'" + table.replace("'", "''") + "'"
                columns = run_query(found.tap, principal,
                                    COLUMNS_ADQL.format(table=escaped), 2000)
            return tables, columns

        tables, columns = await pool.run(browse)
        result: QueryRows | None = None
        query_error: QueryError | None = None
        if query.strip() and params.get("run"):
            try:
                result = await pool.run(lambda: run_query(found.tap, principal, query, maxrec))
            except ServiceError as exc:
                cause = exc.__cause__
                if isinstance(cause, AdqlError):
                    query_error = QueryError(cause.message, cause.line, cause.column)
                else:
                    query_error = QueryError(exc.message)
                status = exc.status if exc.status < 500 else status
                if exc.status >= 500:
                    raise
        jobs = await self._jobs(request) if principal.is_authenticated else []
        return self.pages._page(
            request, "adql.html", status, query=query, table=table, tables=tables,
            columns=columns, result=result, query_error=query_error,
            marked=mark(query, query_error) if query_error and query_error.line else None,
            maxrec=maxrec, examples=EXAMPLES, jobs=jobs, error=error,
            quote=lambda text: quote(text, safe=""), base_url=found.base_url,
            page_maxrec=PAGE_MAXREC)

    async def _jobs(self, request: Request) -> list[JobView]:
        found = services(request)
        owner = str(principal_of(request).user_id)

        def read() -> list[JobView]:
            views = []
            for ref in found.uws.list(owner, ListFilters(last=JOBS_SHOWN)):
                try:
                    job = found.uws.get(owner, ref.job_id)
                except UwsError:  # deleted meanwhile
                    continue
                seconds = None
                if job.start_time is not None and job.end_time is not None:
                    seconds = (job.end_time - job.start_time).total_seconds()
                views.append(JobView(job, job.parameters.get("QUERY") or "", seconds))
            return views

        return await found.pools.uws.run(read)

    async def submit(self, request: Request) -> Response:
        """Create an async TAP job of the query and start it (PHASE=RUN)."""
        found = services(request)
        post = await self.pages.checked_post_or_refusal(request)
        if isinstance(post, Response):
            return post
        query = post.form.get("query") or ""
        if not query.strip():
            return self.pages._error(request, 400, "No query",
                                     "Write a query in the box before submitting it.",
                                     back_path="/adql", back_label="Back to the ADQL page")
        owner = str(post.principal.user_id)
        params = Params([("LANG", "ADQL"), ("QUERY", query[:MAX_QUERY_CHARS]),
                         ("RESPONSEFORMAT", "votable"), ("PHASE", "RUN")])
        address = client_address(request.scope)
        try:
            await found.pools.uws.run(lambda: found.uws.create(owner, params, address=address))
        except UwsError as exc:
            return self.pages._error(request, exc.status, "The job was not accepted",
                                     exc.message, back_path="/adql",
                                     back_label="Back to the ADQL page")
        return self.pages._redirect(request, "/adql?done=job_created#jobs")

    async def delete(self, request: Request) -> Response:
        found = services(request)
        post = await self.pages.checked_post_or_refusal(request)
        if isinstance(post, Response):
            return post
        owner = str(post.principal.user_id)
        job_id = (post.form.get("job_id") or "").strip()[:100]
        try:
            await found.pools.uws.run(lambda: found.uws.delete(owner, job_id))
        except UwsError as exc:
            return self.pages._error(request, exc.status, "The job was not deleted",
                                     exc.message, back_path="/adql",
                                     back_label="Back to the ADQL page")
        return self.pages._redirect(request, "/adql?done=job_deleted#jobs")


def cell(value: Any) -> str:
    return "" if value is None else str(value)
